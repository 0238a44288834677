#pragma once
// Private to net/: the "posix" network_stack (kernel sockets driven by io_uring).

#include <memory>

#include "net/network_stack.h"

namespace sluice::net {
std::unique_ptr<network_stack> make_posix_stack();
}
