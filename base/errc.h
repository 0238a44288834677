#pragma once
// Error codes shared by the lowest layer: decoding of bytes that came from outside.

#include "base/result.h"

namespace sluice::base {
enum class errc {
    ok = 0,
    malformed,       // bytes do not parse (truncated, bad varint, length past the end)
    limit_exceeded,  // a length or count is larger than the configured limit
};
const char* describe(errc e);
}  // namespace sluice::base
SLUICE_DECLARE_ERRC(sluice::base, errc)
