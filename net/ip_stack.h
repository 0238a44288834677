#pragma once
// Private to net/: one core's share of the userspace TCP/IP stack. It takes Ethernet frames
// from a link (`receive()`), answers ARP and ICMP echo, and runs the TCP connections whose
// packets this core owns, exposing them through the ordinary net::listener / net::connection
// interfaces. Frames go out through the `link` it was given. Nothing here knows DPDK: the dpdk
// stack (net/dpdk_stack.cc) gives each core an ip_stack over one RX/TX queue pair, and the unit
// tests wire two ip_stacks together through an in-memory link that drops, reorders and
// duplicates frames (net/tests/ip_stack_test.cc).
//
// Threading: an ip_stack belongs to one reactor and is used only on its thread. The ARP table
// is the one thing shared between the cores' stacks (a mutex; consulted when a connection
// starts, not per packet).
//
// Layering (net/README.md, "The dpdk stack"):
//   link (frames) -> ip_stack::receive: Ethernet -> ARP | IPv4 -> ICMP | TCP demux -> tcb
//   tcb segments -> ip_stack::transmit: TCP + IPv4 + Ethernet headers -> link

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <mutex>
#include <set>
#include <span>
#include <unordered_map>
#include <vector>

#include "net/inet.h"
#include "net/mapped_files.h"
#include "net/network_stack.h"
#include "net/tcp.h"
#include "runtime/reactor.h"

namespace sluice::net {

// Shared by the cores' stacks of one port. Entries learned from ARP replies and requests that
// name our address; they expire and are asked for again.
class arp_table {
  public:
    static constexpr std::chrono::seconds entry_lifetime{300};
    static constexpr size_t max_entries = 4096;
    std::optional<inet::mac_address> lookup(inet::ipv4_address ip, tcp::time_point now);
    void learn(inet::ipv4_address ip, const inet::mac_address& mac, tcp::time_point now);

  private:
    struct entry {
        inet::mac_address mac;
        tcp::time_point expires;
    };
    std::mutex _mu;
    std::unordered_map<inet::ipv4_address, entry> _entries;
};

// A run of payload bytes for a frame and what keeps them alive.
struct payload_run {
    const std::byte* data;
    size_t size;
    const std::shared_ptr<const void>* owner;
};

// What a link can do for the stack.
struct link_caps {
    inet::mac_address mac{};
    uint16_t mtu = 1500;
    bool tx_ip_checksum = false;   // the port fills the IPv4 header checksum
    bool tx_tcp_checksum = false;  // the port fills the TCP checksum (pseudo-header pre-set)
    // Nobody checks: a link inside the host whose both ends skip checksums (trusted_link).
    bool checksums_unneeded = false;
};

// Metadata the link passes with a received frame.
struct rx_meta {
    bool ip_checksum_good = false;   // the port verified it
    bool tcp_checksum_good = false;  // the port verified it
};

class link {
  public:
    virtual ~link() = default;
    virtual const link_caps& caps() const = 0;
    // One frame: `headers` (copied) then the payload runs (referenced or copied, as the link
    // can; a run's owner must be kept until the frame has left). `l4_offload` asks the port to
    // finish the TCP checksum.
    virtual void transmit(std::span<const std::byte> headers, std::span<const payload_run> payload,
                          bool l4_offload) = 0;
    // End of a burst: hand what was queued to the port.
    virtual void flush() = 0;
};

struct ip_stack_config {
    inet::ipv4_address ip = 0;
    inet::ipv4_address netmask = 0;
    inet::ipv4_address gateway = 0;  // 0: none (only the local subnet is reachable)
    tcp::config tcp;
    // Bounds per core.
    size_t max_flows = 65'536;   // connections in any state, TIME_WAIT included
    size_t max_half_open = 1024;  // SYN_RECEIVED connections; beyond, SYN cookies
    uint16_t ephemeral_port_first = 32768;
    uint16_t ephemeral_port_last = 60999;
};

struct ip_stack_stats {
    uint64_t frames_in = 0;
    uint64_t frames_out = 0;
    uint64_t dropped_malformed = 0;     // unparsable Ethernet / ARP / IPv4 / TCP headers
    uint64_t dropped_checksum = 0;
    uint64_t dropped_not_ours = 0;      // another address, another protocol, fragments
    uint64_t dropped_syn_limit = 0;     // SYNs past max_flows / max_connections
    uint64_t syn_cookies_sent = 0;      // SYN-ACKs sent statelessly at the half-open budget
    uint64_t syn_cookies_accepted = 0;  // connections established from a valid cookie
    uint64_t resets_sent = 0;           // to segments of no connection
    uint64_t arp_requests_sent = 0;
    uint64_t arp_replies_sent = 0;
    uint64_t icmp_echo_replies = 0;
    uint64_t flows = 0;                 // now
};

class ip_stack {
  public:
    // `owner_of` names the core that owns a connection (4-tuple); frames for another core are
    // never given to this stack, and a connect() picks a local port that maps to `self_core`.
    using owner_fn = std::function<unsigned(inet::ipv4_address remote_ip, uint16_t remote_port,
                                            uint16_t local_port)>;
    ip_stack(runtime::reactor& r, link& l, std::shared_ptr<arp_table> arp, ip_stack_config cfg,
             unsigned self_core = 0, owner_fn owner_of = {});
    ~ip_stack();
    ip_stack(const ip_stack&) = delete;
    ip_stack& operator=(const ip_stack&) = delete;

    // One received frame (any protocol); everything not for us is counted and dropped.
    void receive(std::span<const std::byte> frame, rx_meta meta = {});
    // While one lives, the stack reads the clock once: the frames of one receive burst are
    // handled with the time it began (the clock's vDSO read costs ~50 ns on a VM, and a segment
    // took several). Outside one, every reading is fresh.
    class burst {
      public:
        explicit burst(ip_stack& s) : _s(s) { _s._burst_now = tcp::clock::now(); }
        ~burst() { _s._burst_now.reset(); }
        burst(const burst&) = delete;
        burst& operator=(const burst&) = delete;

      private:
        ip_stack& _s;
    };
    tcp::time_point now() const { return _burst_now ? *_burst_now : tcp::clock::now(); }
    // Sends what receive() and the timers queued (the link's burst).
    void flush();

    result<std::unique_ptr<listener>> listen(uint16_t port, listen_options options,
                                             accept_callback on_accept);
    void connect(inet::ipv4_address ip, uint16_t port, connect_options options,
                 connect_callback on_connected);
    // Aborts every connection (RST) and stops the timers; for shutdown. The stack can be used
    // again afterwards.
    void shutdown();
    // No listener, no open connection and no connect under way: nothing the application holds.
    bool idle() const;
    // The reactor has been destroyed (process shutdown): from now on nothing touches it.
    void forget_reactor() { _reactor_gone = true; }

    const ip_stack_config& config() const { return _cfg; }
    // One line per connection (state, sequence numbers, windows, timers): for logs and tests.
    std::string describe_flows() const;
    const ip_stack_stats& stats() const;
    runtime::reactor& reactor() { return _reactor; }

    // Implementation types, public for the connection and listener classes in ip_stack.cc.
    struct flow;
    class connection_impl;
    class listener_impl;
    void transmit_segment(flow& f, const tcp::segment& seg);
    void service(flow& f);  // after anything changed a flow: send, deliver, re-arm, retire
    void listener_closed(uint16_t port);

  private:
    using flow_key = uint64_t;
    static flow_key key_of(inet::ipv4_address rip, uint16_t rport, uint16_t lport) {
        return (static_cast<uint64_t>(rip) << 32) | (static_cast<uint64_t>(rport) << 16) | lport;
    }
    void receive_arp(const inet::ethernet_header& eth, std::span<const std::byte> payload);
    void receive_ipv4(const inet::ethernet_header& eth, std::span<const std::byte> packet,
                      rx_meta meta);
    void receive_icmp(const inet::ethernet_header& eth, const inet::ipv4_header& ip,
                      std::span<const std::byte> body);
    void receive_tcp(const inet::ethernet_header& eth, const inet::ipv4_header& ip,
                     std::span<const std::byte> segment, rx_meta meta);
    void accept_syn(const inet::ethernet_header& eth, const inet::ipv4_header& ip,
                    const inet::tcp_header& h);
    flow& add_passive_flow(const inet::ethernet_header& eth, const inet::ipv4_header& ip,
                           const inet::tcp_header& h, listener_impl& l, uint32_t iss,
                           tcp::time_point now);
    void send_syn_cookie(const inet::ethernet_header& eth, const inet::ipv4_header& ip,
                         const inet::tcp_header& h);
    bool accept_cookie(const inet::ethernet_header& eth, const inet::ipv4_header& ip,
                       const inet::tcp_header& h, std::span<const std::byte> payload);
    uint32_t cookie_hash(inet::ipv4_address rip, uint16_t rport, uint16_t lport, uint32_t peer_iss,
                         uint32_t period) const;
    uint32_t cookie_period() const;
    void send_bare_segment(const inet::mac_address& dst_mac, inet::ipv4_address dst_ip,
                           const inet::tcp_header& h);
    void send_reset_for(const inet::ethernet_header& eth, const inet::ipv4_header& ip,
                        const inet::tcp_header& h, size_t payload_bytes);
    void send_frame(const inet::mac_address& dst, uint16_t ethertype,
                    std::span<const std::byte> headers, std::span<const payload_run> payload,
                    bool l4_offload);
    void send_arp_request(inet::ipv4_address ip);
    inet::ipv4_address next_hop(inet::ipv4_address dst) const;
    bool resolve(flow& f);
    void arm_timer(flow& f);
    void arm_reactor_timer();
    void on_timer();
    void schedule_flush();
    void retire(flow& f);
    uint32_t new_iss();

    runtime::reactor& _reactor;
    link& _link;
    std::shared_ptr<arp_table> _arp;
    ip_stack_config _cfg;
    unsigned _self_core;
    owner_fn _owner_of;
    std::unordered_map<flow_key, std::unique_ptr<flow>> _flows;
    std::unordered_map<uint16_t, listener_impl*> _listeners;
    size_t _half_open = 0;
    std::set<std::pair<tcp::time_point, flow*>> _timers;
    runtime::timer_id _timer = 0;
    tcp::time_point _timer_at = tcp::time_point::max();
    bool _flush_scheduled = false;
    bool _reactor_gone = false;
    uint16_t _ip_id = 0;
    uint64_t _next_flow_id = 1;  // tells a flow from a later one on the same 4-tuple
    uint16_t _next_port;
    uint64_t _iss_seed;
    // Frames waiting for the next hop's ARP reply, by next hop.
    std::unordered_map<inet::ipv4_address, std::vector<flow*>> _arp_waiters;
    std::shared_ptr<mapped_files> _mapped;
    mutable ip_stack_stats _stats;
    std::optional<tcp::time_point> _burst_now;  // set while a burst lives
    std::shared_ptr<bool> _alive = std::make_shared<bool>(true);
};

}  // namespace sluice::net
