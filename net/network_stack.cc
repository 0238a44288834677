#include "net/network_stack.h"

#include "base/log.h"
#include "net/posix_stack.h"

#ifdef SLUICE_HAVE_DPDK
#include "net/dpdk_stack.h"
#endif

namespace sluice::net {

result<std::unique_ptr<network_stack>> make_network_stack(std::string_view name,
                                                          const stack_options& options) {
    if (name == "posix") return make_posix_stack();
    if (name == "dpdk" || name == "auto") {
#ifdef SLUICE_HAVE_DPDK
        auto s = make_dpdk_stack(options);
#else
        (void)options;
        result<std::unique_ptr<network_stack>> s =
            error(errc::stack_not_built,
                  "the dpdk network stack is not built into this binary (configure with "
                  "-DSLUICE_DPDK=ON and Debian's dpdk-dev); use --network-stack=posix");
#endif
        if (s || name == "dpdk") return s;
        log::warn("net", "the dpdk network stack did not start (", s.error().describe(),
                  "); using the posix sockets stack");
        return make_posix_stack();
    }
    return error(errc::stack_unknown, "network stack '" + std::string(name) +
                                          "' is unknown (known: posix, dpdk, auto)");
}

}  // namespace sluice::net
