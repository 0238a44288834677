#pragma once
// The network stack interface (DESIGN.md section 5), chosen at run time by name, Seastar-style:
//
//   auto stack = net::make_network_stack("posix");   // once per process; shared by all cores
//   // on each core, on that core's thread:
//   auto l = (*stack)->listen(reactor, addr, {}, [](net::connection_ptr c) { ... c->start(h); });
//
// Implementations: "posix" (kernel sockets driven by io_uring; always built) and "dpdk"
// (DPDK ethdev queues with the project's own ARP/IPv4/ICMP/TCP, net/ip_stack.h and net/tcp.h;
// built when DPDK is found, else make_network_stack() returns errc::stack_not_built).
// The broker uses only this interface, connection.h and socket_address.h: no descriptor leaks
// out, and the only file descriptors that go in are file_regions to send.
//
// Threading: a network_stack object is immutable and may be used from every core. listen()
// and connect() run on the calling reactor's thread; the listener and the connections they
// produce belong to that reactor.

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "base/result.h"
#include "net/connection.h"
#include "net/errc.h"
#include "net/socket_address.h"

namespace sluice::runtime {
class reactor;
}

namespace sluice::net {

struct listen_options {
    // One listener per core on the same port; the kernel spreads connections across them.
    bool reuse_port = true;
    int backlog = 1024;
    // Open connections of this listener; connections accepted beyond it are closed at once
    // (logged). Bounds memory per core.
    size_t max_connections = 10'000;
    // Applied to every accepted connection (max_frame_bytes = socket.request.max.bytes).
    connection_options connection;
};

struct connect_options {
    connection_options connection;
    // Gives up (errc::connect_failed, "timed out") if the handshake has not completed by then.
    std::chrono::milliseconds timeout{30'000};
};

// Receives each accepted connection (not yet started: call start() on it).
using accept_callback = std::function<void(connection_ptr)>;
// Receives the connected connection (not yet started) or errc::connect_failed.
using connect_callback = std::function<void(result<connection_ptr>)>;

// Accepts connections on one reactor. Owned by the caller; destroying it closes it.
class listener {
  public:
    virtual ~listener() = default;
    // The bound address (with the real port when listening on port 0).
    virtual const socket_address& local_address() const = 0;
    // Stops accepting. `on_closed` runs on the reactor once the listening socket is closed and
    // no kernel operation refers to it. Existing connections are not affected.
    virtual void close(std::function<void()> on_closed = {}) = 0;
    // Open connections accepted by this listener.
    virtual size_t connection_count() const = 0;
};

class network_stack {
  public:
    virtual ~network_stack() = default;
    virtual std::string_view name() const = 0;

    // Binds and listens on `address` on reactor `r` (the calling thread's reactor).
    virtual result<std::unique_ptr<listener>> listen(runtime::reactor& r,
                                                     const socket_address& address,
                                                     listen_options options,
                                                     accept_callback on_accept) = 0;

    // Connects to `address` from reactor `r`; `on_connected` runs on `r`, exactly once.
    virtual void connect(runtime::reactor& r, const socket_address& address,
                         connect_options options, connect_callback on_connected) = 0;
};

// What the dpdk stack needs at start (the posix stack ignores it). Broker keys in brackets.
struct stack_options {
    // Reactor cores that will listen or connect: one RX/TX queue pair each (sluice.cores).
    unsigned cores = 1;
    // EAL arguments, split at whitespace (sluice.dpdk.args), e.g. "--no-pci --vdev=net_tap0
    // --no-huge -m 512" or "-a 0000:01:00.0". Sluice adds "-l 0" unless -l/--lcores is given,
    // and --no-shconf unless --file-prefix, --in-memory or --proc-type is.
    std::string dpdk_args;
    std::string ip;       // IPv4 address of the stack's interface (sluice.dpdk.ip)
    std::string netmask = "255.255.255.0";  // (sluice.dpdk.netmask)
    std::string gateway;  // empty: none (sluice.dpdk.gateway)
    unsigned mtu = 1500;  // of the port (sluice.dpdk.mtu); above ~1.9 KiB the mbufs grow
    // net_memif only (sluice.dpdk.link.trusted): the link is memory shared inside the host and
    // cannot corrupt a frame, so neither TCP nor IPv4 checksums are computed or verified, as
    // Linux does on loopback. Both ends must agree: a peer that verifies drops every segment.
    bool trusted_link = false;
    // TCP tunables (sluice.dpdk.tcp.*): 0 keeps the stack's default.
    uint32_t tcp_user_timeout_ms = 0;
    uint32_t tcp_keepalive_idle_ms = 0;
    uint32_t tcp_keepalive_interval_ms = 0;
    uint32_t tcp_recv_buffer_bytes = 0;
    uint32_t tcp_send_buffer_bytes = 0;
    uint32_t max_connections_per_core = 0;
    // For fault tests where the kernel has no netem (sluice.dpdk.test.faults): frames dropped,
    // duplicated or reordered at the port, both directions, e.g. "loss=0.02,duplicate=0.02,
    // reorder=0.05". Empty: none.
    std::string dpdk_test_faults;
};

// "posix", "dpdk", or "auto" (dpdk if it starts, else a log line and posix). Unknown names:
// errc::stack_unknown; dpdk when not built: stack_not_built; dpdk that cannot start (no port,
// no memory, bad EAL arguments): stack_start_failed with DPDK's reason.
[[nodiscard]] result<std::unique_ptr<network_stack>> make_network_stack(
    std::string_view name, const stack_options& options = {});

}  // namespace sluice::net
