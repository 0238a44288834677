#pragma once
// Private to net/: the "dpdk" network stack. One DPDK ethdev port; one RX/TX queue pair and one
// mempool per reactor core, each polled by that core's reactor (runtime::reactor::poller) and
// served by that core's ip_stack. Built only with -DSLUICE_DPDK=ON (SLUICE_HAVE_DPDK).

#include <memory>

#include "base/result.h"
#include "net/network_stack.h"

namespace sluice::net {

// Starts the EAL and the port (once per process). Errors: stack_start_failed (with DPDK's
// reason: no port, no memory, bad arguments) or address_invalid (sluice.dpdk.ip and friends).
result<std::unique_ptr<network_stack>> make_dpdk_stack(const stack_options& options);

}  // namespace sluice::net
