#pragma once

#include "base/result.h"

namespace sluice::runtime {
enum class errc {
    ok = 0,
    io_uring_unavailable,  // io_uring_queue_init failed (kernel, seccomp or memlock limits)
};
const char* describe(errc e);
}  // namespace sluice::runtime
SLUICE_DECLARE_ERRC(sluice::runtime, errc)
