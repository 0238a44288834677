#include "net/network_stack.h"

#include "net/posix_stack.h"

namespace sluice::net {

result<std::unique_ptr<network_stack>> make_network_stack(std::string_view name) {
    if (name == "posix") return make_posix_stack();
    if (name == "dpdk") {
        return error(errc::stack_not_built,
                     "the dpdk network stack is not built into this binary (configure with "
                     "-DSLUICE_DPDK=ON); use --network-stack=posix");
    }
    return error(errc::stack_unknown,
                 "network stack '" + std::string(name) + "' is unknown (known: posix, dpdk)");
}

}  // namespace sluice::net
