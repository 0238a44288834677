#include "net/ip_stack.h"

#include <netinet/in.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <deque>
#include <random>

#include "base/assert.h"
#include "base/bytes.h"
#include "base/log.h"
#include "net/errc.h"
#include "net/frame_reader.h"

namespace sluice::net {

using namespace std::chrono_literals;
using inet::tcp_flags::ack;
using inet::tcp_flags::rst;
using inet::tcp_flags::syn;

namespace {

std::string ms_or_dash(tcp::time_point p, tcp::time_point now) {
    if (p == tcp::time_point::max()) return "-";
    return std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(p - now).count());
}

socket_address make_address(inet::ipv4_address ip, uint16_t port) {
    sockaddr_in sin{};
    sin.sin_family = AF_INET;
    sin.sin_port = htons(port);
    sin.sin_addr.s_addr = htonl(ip);
    return socket_address(reinterpret_cast<const sockaddr*>(&sin), sizeof sin);
}

uint64_t mix64(uint64_t x) {
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ULL;
    x ^= x >> 33;
    return x;
}

constexpr size_t max_header_bytes =
    inet::ethernet_header_bytes + inet::ipv4_header_bytes + inet::tcp_header_bytes +
    inet::tcp_options_max_bytes;
constexpr auto arp_retry_interval = 500ms;

}  // namespace

// ---------------------------------------------------------------- arp_table

std::optional<inet::mac_address> arp_table::lookup(inet::ipv4_address ip, tcp::time_point now) {
    std::lock_guard lock(_mu);
    auto it = _entries.find(ip);
    if (it == _entries.end() || it->second.expires <= now) return std::nullopt;
    return it->second.mac;
}

void arp_table::learn(inet::ipv4_address ip, const inet::mac_address& mac, tcp::time_point now) {
    std::lock_guard lock(_mu);
    if (_entries.size() >= max_entries && !_entries.contains(ip)) {
        std::erase_if(_entries, [&](const auto& e) { return e.second.expires <= now; });
        if (_entries.size() >= max_entries) return;
    }
    _entries[ip] = {mac, now + entry_lifetime};
}

// ---------------------------------------------------------------- flow

struct ip_stack::flow {
    flow(const tcp::config& cfg, uint32_t iss, tcp::time_point now) : tcb(cfg, iss, now) {}
    uint64_t id = 0;
    flow_key key = 0;
    inet::ipv4_address rip = 0;
    uint16_t rport = 0;
    uint16_t lport = 0;
    tcp::tcb tcb;
    inet::mac_address peer_mac{};
    bool mac_known = false;
    bool waiting_arp = false;
    // Attached while the application has it open; the flow outlives it to finish the close.
    std::shared_ptr<connection_impl> conn;
    listener_impl* listener = nullptr;  // passive open not yet accepted
    bool half_open = false;
    connect_callback on_connected;      // active open not yet reported
    connect_options connect_opts;
    runtime::timer_id connect_timer = 0;
    tcp::time_point armed_at = tcp::time_point::max();
    int in_service = 0;
    bool again = false;
};

// ---------------------------------------------------------------- listener

class ip_stack::listener_impl final : public listener {
  public:
    listener_impl(ip_stack& s, uint16_t port, listen_options o, accept_callback cb)
        : _stack(s), _alive(s._alive), _address(make_address(s._cfg.ip, port)), _port(port),
          _options(std::move(o)), _on_accept(std::move(cb)) {}
    ~listener_impl() override { close(); }
    const socket_address& local_address() const override { return _address; }
    void close(std::function<void()> on_closed) override {
        if (!_closed) {
            _closed = true;
            if (*_alive) _stack.listener_closed(_port);
        }
        if (on_closed) {
            if (*_alive) {
                _stack._reactor.defer(std::move(on_closed));
            } else {
                on_closed();
            }
        }
    }
    void close() { close({}); }
    size_t connection_count() const override { return *_open; }

    ip_stack& _stack;
    std::shared_ptr<bool> _alive;
    socket_address _address;
    uint16_t _port;
    listen_options _options;
    accept_callback _on_accept;
    bool _closed = false;
    // Shared with the connections so a connection outliving its listener can still count down.
    std::shared_ptr<size_t> _open = std::make_shared<size_t>(0);
    size_t _pending = 0;  // half-open connections of this listener
};

// ---------------------------------------------------------------- connection

class ip_stack::connection_impl final : public connection,
                                        public tcp::rx_sink,
                                        public std::enable_shared_from_this<connection_impl> {
  public:
    connection_impl(ip_stack& s, flow& f, connection_options o, std::function<void()> on_final)
        : _stack(s), _alive(s._alive), _flow(&f), _local(make_address(s._cfg.ip, f.lport)),
          _peer(make_address(f.rip, f.rport)), _options(o),
          _reader(o.recv_buffer_bytes, o.max_frame_bytes, o.raw_stream), _on_final(std::move(on_final)) {
        if (o.memory) _reader.set_account(std::make_shared<memory_account>(o.memory));
    }
    ~connection_impl() override {
        if (_on_final) _on_final();
    }

    void start(connection_handlers h) override {
        SLUICE_ASSERT(!_started, "connection started twice");
        _handlers = std::move(h);
        _started = true;
        poke();
    }
    void send(output out) override;
    size_t bytes_queued() const override {
        return _backlog_bytes + (_flow != nullptr ? _flow->tcb.send_queued() : 0);
    }
    void pause_receive() override { _paused = true; }
    void resume_receive() override {
        if (_receive_dead) return;
        _paused = false;
        poke();
    }
    bool receive_paused() const override { return _paused; }
    void close() override { begin_close(error(errc::closed, "closed")); }
    void close_after_send() override {
        if (_closing) return;
        _close_when_sent = true;
        _paused = true;
        _receive_dead = true;
        poke();
    }
    bool is_open() const override { return !_closing; }
    const socket_address& peer_address() const override { return _peer; }
    const socket_address& local_address() const override { return _local; }
    runtime::reactor& owner() const override { return _stack._reactor; }
    const connection_stats& stats() const override { return _stats; }
    void set_max_frame_bytes(uint32_t bytes) override { _reader.set_max_frame_bytes(bytes); }

    // In-order bytes straight from the tcb into the frame chunk (one copy), while receiving.
    size_t take(std::span<const std::byte> bytes) override;
    // Called by ip_stack::service() with the flow attached.
    void feed();
    void deliver();
    void after_output();
    void flow_ended(tcp::close_reason r);
    void begin_close(error reason);

  private:
    void poke() {
        if (_flow != nullptr && *_alive) _stack.service(*_flow);
    }
    bool add_piece(output::piece& p);
    void finalize();
    void wait_for_memory();

    ip_stack& _stack;
    std::shared_ptr<bool> _alive;
    flow* _flow;
    socket_address _local;
    socket_address _peer;
    connection_options _options;
    frame_reader _reader;
    std::function<void()> _on_final;
    connection_handlers _handlers;
    connection_stats _stats;
    std::deque<tcp::tx_piece> _backlog;  // accepted by send(), not yet in the tcb
    size_t _backlog_bytes = 0;
    std::vector<frame> _batch;
    bool _started = false;
    bool _closing = false;
    bool _finalize_scheduled = false;
    bool _close_when_sent = false;
    bool _paused = false;
    bool _memory_wait = false;  // over the core's memory budget: not taking bytes meanwhile
    bool _receive_dead = false;
    bool _delivering = false;
    bool _had_queued = false;
    error _close_reason;
};

// Over the memory budget: stop taking bytes from the tcb (its window closes, the peer stops)
// until the budget's owner says memory came back.
void ip_stack::connection_impl::wait_for_memory() {
    _memory_wait = true;
    _reader.account()->budget()->wait([w = weak_from_this()] {
        if (auto c = w.lock()) {
            c->_memory_wait = false;
            c->poke();
        }
    });
}

bool ip_stack::connection_impl::add_piece(output::piece& p) {
    tcp::tx_piece t;
    if (auto* v = std::get_if<std::vector<std::byte>>(&p)) {
        auto owned = std::make_shared<std::vector<std::byte>>(std::move(*v));
        t.data = owned->data();
        t.size = owned->size();
        t.owner = std::move(owned);
    } else if (auto* b = std::get_if<shared_buffer>(&p)) {
        auto owned = std::make_shared<shared_buffer>(std::move(*b));
        t.data = owned->data();
        t.size = owned->size();
        t.owner = std::move(owned);
    } else {
        auto& region = std::get<file_region>(p);
        struct stat st{};
        if (!region.file || ::fstat(region.file->get(), &st) != 0 ||
            region.offset + region.length > static_cast<uint64_t>(st.st_size)) {
            begin_close(error(errc::file_region_short, "file ended before the region"));
            return false;
        }
        if (region.length == 0) return true;
        // The segment bytes stay in the page cache: the tcb references the mapping and the
        // link attaches it to mbufs (or copies from it where it cannot).
        if (auto m = _stack._mapped->map(region)) {
            t.data = m->at(region.offset);
            t.size = region.length;
            t.owner = std::move(m);
            _stats.file_bytes_mapped += region.length;
        } else {
            auto owned = std::make_shared<std::vector<std::byte>>(region.length);
            ssize_t n = ::pread(region.file->get(), owned->data(), region.length,
                                static_cast<off_t>(region.offset));
            if (n != static_cast<ssize_t>(region.length)) {
                begin_close(error(errc::io_error, "reading a file region to send failed"));
                return false;
            }
            t.data = owned->data();
            t.size = owned->size();
            t.owner = std::move(owned);
            _stats.file_bytes_copied += region.length;
        }
    }
    if (t.size == 0) return true;
    _backlog_bytes += t.size;
    _backlog.push_back(std::move(t));
    return true;
}

void ip_stack::connection_impl::send(output out) {
    if (_closing || _close_when_sent) return;
    ++_stats.sends;
    for (auto& p : out.pieces()) {
        if (!add_piece(p)) return;
    }
    poke();
}

void ip_stack::connection_impl::feed() {
    tcp::tcb& t = _flow->tcb;
    while (!_backlog.empty()) {
        size_t space = t.send_space();
        if (space == 0) break;
        tcp::tx_piece& front = _backlog.front();
        if (front.size <= space) {
            _backlog_bytes -= front.size;
            _stats.bytes_sent += front.size;
            t.send(std::move(front));
            _backlog.pop_front();
        } else {
            // Split: the tcb takes what fits, the rest waits with the same owner.
            t.send({front.data, space, front.owner});
            front.data += space;
            front.size -= space;
            _backlog_bytes -= space;
            _stats.bytes_sent += space;
        }
    }
    if (_close_when_sent && _backlog.empty() && !_closing) {
        begin_close(error(errc::closed, "closed after sending"));
    }
}

void ip_stack::connection_impl::after_output() {
    size_t queued = bytes_queued();
    if (queued > 0) {
        _had_queued = true;
    } else if (_had_queued) {
        _had_queued = false;
        if (_handlers.on_drain && !_closing) _handlers.on_drain();
    }
}

size_t ip_stack::connection_impl::take(std::span<const std::byte> bytes) {
    if (!_started || _paused || _closing || _receive_dead || _delivering || _memory_wait) return 0;
    size_t took = 0;
    while (took < bytes.size()) {
        if (!_reader.may_read()) {
            wait_for_memory();
            break;
        }
        std::span<std::byte> room = _reader.writable();
        size_t n = std::min(room.size(), bytes.size() - took);
        std::memcpy(room.data(), bytes.data() + took, n);
        _reader.commit(n);
        took += n;
    }
    _stats.bytes_received += took;
    _stats.recv_buffer_capacity_max = _reader.capacity_max();
    return took;
}

void ip_stack::connection_impl::deliver() {
    if (!_started || _closing || _delivering || _flow == nullptr) return;
    tcp::tcb& t = _flow->tcb;
    // Bytes arrive in the chunk from take() (straight from the tcb) or from the ring here.
    // Frames already in the reader are delivered even while waiting for memory (answering them
    // is what gives memory back); only taking more from the tcb waits.
    while (!_paused) {
        if (t.readable() > 0 && !_memory_wait && !_reader.may_read()) wait_for_memory();
        if (t.readable() > 0 && !_memory_wait) {
            std::span<std::byte> room = _reader.writable();
            size_t n = t.read(room);
            _reader.commit(n);
            _stats.bytes_received += n;
            _stats.recv_buffer_capacity_max = _reader.capacity_max();
        }
        error failure;
        auto self = shared_from_this();
        auto [ok, delivered] =
            deliver_frames(_reader, _batch, failure, _peer, _stats, _handlers, _delivering);
        if (delivered && (_closing || _flow == nullptr)) return;
        if (!ok) {
            if (!hand_bad_frame_to_owner(_handlers, failure, _receive_dead, _paused)) {
                begin_close(std::move(failure));
            }
            return;
        }
        _reader.rewind_if_idle();
        if (t.readable() == 0 || _memory_wait) break;
    }
    if (!_paused && !_memory_wait && t.at_eof()) {
        std::string detail = "peer " + _peer.to_string();
        if (_reader.pending() > 0) {
            detail += " closed mid-frame with " + std::to_string(_reader.pending()) +
                      " bytes pending";
        }
        begin_close(error(errc::peer_closed, std::move(detail)));
    }
}

void ip_stack::connection_impl::flow_ended(tcp::close_reason r) {
    _flow = nullptr;
    switch (r) {
        case tcp::close_reason::reset:
        case tcp::close_reason::normal:
            begin_close(error(errc::peer_closed, "peer " + _peer.to_string() + ": " +
                                                     tcp::to_string(r)));
            break;
        case tcp::close_reason::aborted:
            begin_close(error(errc::closed, "closed"));
            break;
        default:
            begin_close(error(errc::io_error,
                              "connection to " + _peer.to_string() + " " + tcp::to_string(r)));
    }
}

void ip_stack::connection_impl::begin_close(error reason) {
    if (_closing) return;
    _closing = true;
    _close_reason = std::move(reason);
    _backlog.clear();
    _backlog_bytes = 0;
    if (_flow != nullptr) {
        // Everything already handed to the tcb still goes out, then the FIN; the flow finishes
        // the close on its own after on_close.
        _flow->tcb.close();
    }
    if (!_finalize_scheduled && *_alive) {
        _finalize_scheduled = true;
        _stack._reactor.defer([self = shared_from_this()] { self->finalize(); });
    }
}

void ip_stack::connection_impl::finalize() {
    auto self = shared_from_this();
    _reader.release();
    if (_flow != nullptr) {
        flow* f = _flow;
        _flow = nullptr;
        f->tcb.set_sink(nullptr);
        if (*_alive) _stack.service(*f);
        if (*_alive) {
            auto it = _stack._flows.find(f->key);
            if (it != _stack._flows.end() && it->second.get() == f) f->conn.reset();
        }
    }
    auto handlers = std::move(_handlers);
    _handlers = {};
    if (handlers.on_close) handlers.on_close(_close_reason);
}

// ---------------------------------------------------------------- ip_stack

ip_stack::ip_stack(runtime::reactor& r, link& l, std::shared_ptr<arp_table> arp,
                   ip_stack_config cfg, unsigned self_core, owner_fn owner_of)
    : _reactor(r), _link(l), _arp(std::move(arp)), _cfg(std::move(cfg)), _self_core(self_core),
      _owner_of(std::move(owner_of)), _mapped(std::make_shared<mapped_files>(r)) {
    std::random_device rd;
    _iss_seed = (static_cast<uint64_t>(rd()) << 32) | rd();
    uint32_t span = _cfg.ephemeral_port_last - _cfg.ephemeral_port_first + 1u;
    _next_port = static_cast<uint16_t>(_cfg.ephemeral_port_first + (_iss_seed % span));
    // The MSS we announce follows the link (jumbo frames included).
    _cfg.tcp.mss = static_cast<uint16_t>(_link.caps().mtu - inet::ipv4_header_bytes -
                                         inet::tcp_header_bytes);
}

ip_stack::~ip_stack() {
    shutdown();
    *_alive = false;
}

const ip_stack_stats& ip_stack::stats() const {
    _stats.flows = _flows.size();
    return _stats;
}

void ip_stack::shutdown() {
    if (_reactor_gone) {
        // Only memory is left to free: the connections' owners and the timers went with it.
        _timer = 0;
        for (auto& [k, f] : _flows) f->connect_timer = 0;
        _flows.clear();
        _arp_waiters.clear();
        return;
    }
    if (_timer != 0) {
        _reactor.cancel_timer(_timer);
        _timer = 0;
    }
    _timer_at = tcp::time_point::max();
    _timers.clear();
    auto flows = std::move(_flows);
    _flows.clear();
    for (auto& [k, f] : flows) {
        if (f->connect_timer != 0) _reactor.cancel_timer(f->connect_timer);
        f->tcb.abort();
        auto now = tcp::clock::now();
        if (f->mac_known) {
            while (auto seg = f->tcb.output(now)) transmit_segment(*f, *seg);
        }
        if (f->conn) f->conn->flow_ended(tcp::close_reason::aborted);
        if (f->on_connected) {
            auto cb = std::move(f->on_connected);
            cb(error(errc::connect_failed, "the network stack is shutting down"));
        }
    }
    _link.flush();
    _arp_waiters.clear();
}

std::string ip_stack::describe_flows() const {
    std::string out;
    auto now = tcp::clock::now();
    for (const auto& [k, f] : _flows) {
        const tcp::tcb& t = f->tcb;
        auto ms = [&](tcp::time_point p) { return ms_or_dash(p, now); };
        out += inet::ipv4_to_string(f->rip) + ":" + std::to_string(f->rport) + "->" +
               std::to_string(f->lport) + " " + tcp::to_string(t.current_state()) + " una " +
               std::to_string(t.snd_una()) + " nxt " + std::to_string(t.snd_nxt()) + " rcv " +
               std::to_string(t.rcv_nxt()) + " cwnd " + std::to_string(t.cwnd()) + " wnd " +
               std::to_string(t.peer_window()) + " rto " + std::to_string(t.rto().count()) +
               " queued " + std::to_string(t.send_queued()) + " readable " +
               std::to_string(t.readable()) + " deadline " + ms(t.deadline()) + " armed " +
               ms(f->armed_at) + " conn " + (f->conn ? "yes" : "no") + "\n";
    }
    out += "reactor timer " + ms_or_dash(_timer_at, now) + "\n";
    return out;
}

bool ip_stack::idle() const {
    if (!_listeners.empty()) return false;
    for (const auto& [k, f] : _flows) {
        if (f->conn || f->on_connected) return false;
    }
    return true;
}

uint32_t ip_stack::new_iss() {
    // RFC 6528: a clock that ticks every 4 us plus a secret per-stack offset.
    auto us = std::chrono::duration_cast<std::chrono::microseconds>(
                  tcp::clock::now().time_since_epoch())
                  .count();
    return static_cast<uint32_t>(us / 4) + static_cast<uint32_t>(mix64(_iss_seed ^ _flows.size()));
}

inet::ipv4_address ip_stack::next_hop(inet::ipv4_address dst) const {
    if ((dst & _cfg.netmask) == (_cfg.ip & _cfg.netmask) || _cfg.gateway == 0) return dst;
    return _cfg.gateway;
}

void ip_stack::receive(std::span<const std::byte> frame, rx_meta meta) {
    ++_stats.frames_in;
    auto eth = inet::parse_ethernet(frame);
    if (!eth) {
        ++_stats.dropped_malformed;
        return;
    }
    const auto& mine = _link.caps().mac;
    if (eth->dst != mine && eth->dst != inet::broadcast_mac) {
        ++_stats.dropped_not_ours;
        return;
    }
    auto payload = frame.subspan(inet::ethernet_header_bytes);
    if (eth->ethertype == inet::ethertype_arp) {
        receive_arp(*eth, payload);
    } else if (eth->ethertype == inet::ethertype_ipv4 && eth->dst == mine) {
        receive_ipv4(*eth, payload, meta);
    } else {
        ++_stats.dropped_not_ours;
    }
}

void ip_stack::receive_arp(const inet::ethernet_header& eth, std::span<const std::byte> payload) {
    auto a = inet::parse_arp(payload);
    if (!a) {
        ++_stats.dropped_malformed;
        return;
    }
    if (a->target_ip != _cfg.ip || a->sender_ip == 0) {
        ++_stats.dropped_not_ours;
        return;
    }
    auto now = tcp::clock::now();
    _arp->learn(a->sender_ip, a->sender_mac, now);
    if (a->op == inet::arp_request) {
        std::byte buf[inet::ethernet_header_bytes + inet::arp_ipv4_bytes];
        inet::arp_packet reply;
        reply.op = inet::arp_reply;
        reply.sender_mac = _link.caps().mac;
        reply.sender_ip = _cfg.ip;
        reply.target_mac = a->sender_mac;
        reply.target_ip = a->sender_ip;
        inet::write_arp(buf + inet::ethernet_header_bytes, reply);
        send_frame(eth.src, inet::ethertype_arp, buf, {}, false);
        ++_stats.arp_replies_sent;
    }
    // Connections that waited for this neighbour go on.
    if (auto it = _arp_waiters.find(a->sender_ip); it != _arp_waiters.end()) {
        auto waiters = std::move(it->second);
        _arp_waiters.erase(it);
        std::vector<uint64_t> ids;
        for (flow* f : waiters) ids.push_back(f->id);
        for (size_t i = 0; i < waiters.size(); ++i) {
            auto fit = _flows.find(waiters[i]->key);
            if (fit == _flows.end() || fit->second->id != ids[i]) continue;
            fit->second->waiting_arp = false;
            service(*fit->second);
        }
    }
}

void ip_stack::send_arp_request(inet::ipv4_address ip) {
    std::byte buf[inet::ethernet_header_bytes + inet::arp_ipv4_bytes];
    inet::arp_packet req;
    req.op = inet::arp_request;
    req.sender_mac = _link.caps().mac;
    req.sender_ip = _cfg.ip;
    req.target_ip = ip;
    inet::write_arp(buf + inet::ethernet_header_bytes, req);
    send_frame(inet::broadcast_mac, inet::ethertype_arp, buf, {}, false);
    ++_stats.arp_requests_sent;
}

void ip_stack::receive_ipv4(const inet::ethernet_header& eth, std::span<const std::byte> packet,
                            rx_meta meta) {
    auto ip = inet::parse_ipv4_header(packet, true);
    if (!ip) {
        ++_stats.dropped_malformed;
        return;
    }
    if (!meta.ip_checksum_good && !inet::parse_ipv4_header(packet, false)) {
        ++_stats.dropped_checksum;
        return;
    }
    if (ip->dst != _cfg.ip || ip->more_fragments || ip->fragment_offset != 0) {
        // Not ours, or a fragment: this stack sends with DF and reassembles nothing.
        ++_stats.dropped_not_ours;
        return;
    }
    auto body = packet.subspan(ip->header_bytes, ip->total_length - ip->header_bytes);
    if (ip->protocol == inet::ip_proto_tcp) {
        receive_tcp(eth, *ip, body, meta);
    } else if (ip->protocol == inet::ip_proto_icmp) {
        receive_icmp(eth, *ip, body);
    } else {
        ++_stats.dropped_not_ours;
    }
}

void ip_stack::receive_icmp(const inet::ethernet_header& eth, const inet::ipv4_header& ip,
                            std::span<const std::byte> body) {
    if (body.size() < 8) {
        ++_stats.dropped_malformed;
        return;
    }
    inet::checksum c;
    c.add(body);
    if (c.finish() != 0) {
        ++_stats.dropped_checksum;
        return;
    }
    if (static_cast<uint8_t>(body[0]) != inet::icmp_echo_request || body[1] != std::byte{0}) {
        ++_stats.dropped_not_ours;
        return;
    }
    if (body.size() > _link.caps().mtu - inet::ipv4_header_bytes) {
        ++_stats.dropped_malformed;
        return;
    }
    // The reply is the request with the type changed and the checksum redone.
    std::byte hdr[inet::ethernet_header_bytes + inet::ipv4_header_bytes + 8];
    std::byte* icmp = hdr + inet::ethernet_header_bytes + inet::ipv4_header_bytes;
    std::memcpy(icmp, body.data(), 8);
    icmp[0] = std::byte{inet::icmp_echo_reply};
    bytes::store_be16(icmp + 2, 0);
    inet::checksum rc;
    rc.add({icmp, 8});
    rc.add(body.subspan(8));
    bytes::store_be16(icmp + 2, rc.finish());
    inet::write_ipv4(hdr + inet::ethernet_header_bytes, _cfg.ip, ip.src, inet::ip_proto_icmp,
                     static_cast<uint16_t>(body.size()), _ip_id++, false);
    payload_run run{body.data() + 8, body.size() - 8, nullptr};
    send_frame(eth.src, inet::ethertype_ipv4, hdr, std::span(&run, run.size > 0 ? 1 : 0), false);
    ++_stats.icmp_echo_replies;
}

void ip_stack::receive_tcp(const inet::ethernet_header& eth, const inet::ipv4_header& ip,
                           std::span<const std::byte> segment, rx_meta meta) {
    auto h = inet::parse_tcp(segment);
    if (!h) {
        ++_stats.dropped_malformed;
        return;
    }
    if (!meta.tcp_checksum_good) {
        inet::checksum c;
        inet::add_pseudo_header(c, ip.src, ip.dst, inet::ip_proto_tcp,
                                static_cast<uint16_t>(segment.size()));
        c.add(segment);
        if (c.finish() != 0) {
            ++_stats.dropped_checksum;
            return;
        }
    }
    if (h->dst_port == 0 || h->src_port == 0) {
        ++_stats.dropped_malformed;
        return;
    }
    auto payload = segment.subspan(h->header_bytes);
    auto it = _flows.find(key_of(ip.src, h->src_port, h->dst_port));
    if (it != _flows.end()) {
        flow& f = *it->second;
        if (!f.mac_known) {
            f.peer_mac = eth.src;
            f.mac_known = true;
        }
        f.tcb.input(*h, payload, now());
        service(f);
        return;
    }
    if ((h->flags & (syn | ack | rst)) == syn) {
        accept_syn(eth, ip, *h);
        return;
    }
    if (accept_cookie(eth, ip, *h, payload)) return;
    if (!(h->flags & rst)) send_reset_for(eth, ip, *h, payload.size());
}

void ip_stack::accept_syn(const inet::ethernet_header& eth, const inet::ipv4_header& ip,
                          const inet::tcp_header& h) {
    auto lit = _listeners.find(h.dst_port);
    if (lit == _listeners.end()) {
        send_reset_for(eth, ip, h, 0);
        return;
    }
    listener_impl& l = *lit->second;
    // At the half-open budget (the stack's, or the listener's backlog) SYNs are answered with
    // SYN cookies (RFC 4987): a SYN-ACK whose sequence number encodes the connection, and no
    // state until the client's ACK proves it. A flood of forged SYNs costs no memory and real
    // clients still get in. Past the flow or connection limits the SYN is dropped.
    size_t backlog = static_cast<size_t>(std::max(1, l._options.backlog));
    if (_flows.size() >= _cfg.max_flows || *l._open + l._pending >= l._options.max_connections) {
        ++_stats.dropped_syn_limit;
        return;
    }
    if (_half_open >= _cfg.max_half_open || l._pending >= backlog) {
        send_syn_cookie(eth, ip, h);
        return;
    }
    auto now = tcp::clock::now();
    flow& f = add_passive_flow(eth, ip, h, l, new_iss(), now);
    f.half_open = true;
    ++_half_open;
    ++l._pending;
    f.tcb.accept_syn(h, now);
    service(f);
}

namespace {
// MSS values a cookie can carry (3 bits), as Linux's table does.
constexpr uint16_t cookie_mss[8] = {536, 1200, 1300, 1400, 1440, 1460, 4000, 8960};
constexpr int cookie_period_s = 64;
}  // namespace

uint32_t ip_stack::cookie_hash(inet::ipv4_address rip, uint16_t rport, uint16_t lport,
                               uint32_t peer_iss, uint32_t period) const {
    uint64_t x = _iss_seed ^ (static_cast<uint64_t>(rip) << 16) ^
                 (static_cast<uint64_t>(rport) << 48) ^ lport;
    x = mix64(x ^ (static_cast<uint64_t>(peer_iss) << 5) ^ period);
    return static_cast<uint32_t>(x) & 0xffffff;
}

uint32_t ip_stack::cookie_period() const {
    auto s = std::chrono::duration_cast<std::chrono::seconds>(
                 tcp::clock::now().time_since_epoch())
                 .count();
    return static_cast<uint32_t>(s / cookie_period_s) & 0x1f;
}

void ip_stack::send_syn_cookie(const inet::ethernet_header& eth, const inet::ipv4_header& ip,
                               const inet::tcp_header& h) {
    uint16_t want = std::min<uint16_t>(h.options.mss != 0 ? h.options.mss : 536, _cfg.tcp.mss);
    uint32_t idx = 0;
    for (uint32_t i = 0; i < 8; ++i) {
        if (cookie_mss[i] <= want) idx = i;
    }
    uint32_t period = cookie_period();
    inet::tcp_header r;
    r.src_port = h.dst_port;
    r.dst_port = h.src_port;
    r.seq = (period << 27) | (idx << 24) | cookie_hash(ip.src, h.src_port, h.dst_port, h.seq, period);
    r.ack = h.seq + 1;
    r.flags = syn | ack;
    r.window = static_cast<uint16_t>(std::min<uint32_t>(_cfg.tcp.recv_buffer_bytes, 0xffff));
    r.options.mss = _cfg.tcp.mss;  // no window scale or timestamps: nothing to remember them in
    send_bare_segment(eth.src, ip.src, r);
    ++_stats.syn_cookies_sent;
}

bool ip_stack::accept_cookie(const inet::ethernet_header& eth, const inet::ipv4_header& ip,
                             const inet::tcp_header& h, std::span<const std::byte> payload) {
    if ((h.flags & (syn | rst | ack)) != ack) return false;
    auto lit = _listeners.find(h.dst_port);
    if (lit == _listeners.end()) return false;
    uint32_t cookie = h.ack - 1;
    uint32_t period = cookie >> 27;
    uint32_t now_period = cookie_period();
    if (period != now_period && period != ((now_period + 31) & 0x1f)) return false;
    if ((cookie & 0xffffff) != cookie_hash(ip.src, h.src_port, h.dst_port, h.seq - 1, period)) {
        return false;
    }
    listener_impl& l = *lit->second;
    if (_flows.size() >= _cfg.max_flows || *l._open + l._pending >= l._options.max_connections) {
        ++_stats.dropped_syn_limit;
        return true;  // a valid cookie, but no room: dropped like the SYN would have been
    }
    auto now = tcp::clock::now();
    flow& f = add_passive_flow(eth, ip, h, l, cookie, now);
    f.tcb.accept_cookie(h.seq - 1, cookie_mss[(cookie >> 24) & 7], h, now);
    ++_stats.syn_cookies_accepted;
    if (!payload.empty() || (h.flags & inet::tcp_flags::fin)) f.tcb.input(h, payload, now);
    service(f);
    return true;
}

void ip_stack::send_bare_segment(const inet::mac_address& dst_mac, inet::ipv4_address dst_ip,
                                 const inet::tcp_header& r) {
    std::byte hdr[max_header_bytes];
    std::byte* t = hdr + inet::ethernet_header_bytes + inet::ipv4_header_bytes;
    size_t tlen = inet::write_tcp(t, r);
    inet::checksum c;
    inet::add_pseudo_header(c, _cfg.ip, dst_ip, inet::ip_proto_tcp, static_cast<uint16_t>(tlen));
    c.add({t, tlen});
    bytes::store_be16(t + 16, c.finish());
    inet::write_ipv4(hdr + inet::ethernet_header_bytes, _cfg.ip, dst_ip, inet::ip_proto_tcp,
                     static_cast<uint16_t>(tlen), _ip_id++, false);
    send_frame(dst_mac, inet::ethertype_ipv4,
               {hdr, inet::ethernet_header_bytes + inet::ipv4_header_bytes + tlen}, {}, false);
}

ip_stack::flow& ip_stack::add_passive_flow(const inet::ethernet_header& eth,
                                           const inet::ipv4_header& ip, const inet::tcp_header& h,
                                           listener_impl& l, uint32_t iss, tcp::time_point now) {
    auto f = std::make_unique<flow>(_cfg.tcp, iss, now);
    f->id = _next_flow_id++;
    f->rip = ip.src;
    f->rport = h.src_port;
    f->lport = h.dst_port;
    f->key = key_of(ip.src, h.src_port, h.dst_port);
    f->peer_mac = eth.src;
    f->mac_known = true;
    f->listener = &l;
    flow& ref = *f;
    _flows.emplace(ref.key, std::move(f));
    return ref;
}

void ip_stack::send_reset_for(const inet::ethernet_header& eth, const inet::ipv4_header& ip,
                              const inet::tcp_header& h, size_t payload_bytes) {
    // RFC 9293 3.10.7.1: a segment for no connection gets a RST that it will accept.
    inet::tcp_header r;
    r.src_port = h.dst_port;
    r.dst_port = h.src_port;
    if (h.flags & ack) {
        r.seq = h.ack;
        r.flags = rst;
    } else {
        r.seq = 0;
        r.ack = h.seq + static_cast<uint32_t>(payload_bytes) + ((h.flags & syn) ? 1 : 0) +
                ((h.flags & inet::tcp_flags::fin) ? 1 : 0);
        r.flags = rst | ack;
    }
    send_bare_segment(eth.src, ip.src, r);
    ++_stats.resets_sent;
}

void ip_stack::send_frame(const inet::mac_address& dst, uint16_t ethertype,
                          std::span<const std::byte> headers,
                          std::span<const payload_run> payload, bool l4_offload) {
    inet::ethernet_header e;
    e.dst = dst;
    e.src = _link.caps().mac;
    e.ethertype = ethertype;
    // The caller left the first 14 bytes of `headers` for the Ethernet header.
    inet::write_ethernet(const_cast<std::byte*>(headers.data()), e);
    _link.transmit(headers, payload, l4_offload);
    ++_stats.frames_out;
    schedule_flush();
}

void ip_stack::transmit_segment(flow& f, const tcp::segment& seg) {
    std::byte hdr[max_header_bytes];
    inet::tcp_header h;
    h.src_port = f.lport;
    h.dst_port = f.rport;
    h.seq = seg.seq;
    h.ack = seg.ack;
    h.flags = seg.flags;
    h.window = seg.window;
    h.options = seg.options;
    std::byte* t = hdr + inet::ethernet_header_bytes + inet::ipv4_header_bytes;
    size_t tlen = inet::write_tcp(t, h);
    std::array<payload_run, 32> runs;
    size_t nruns = 0;
    bool overflow = false;
    f.tcb.for_each_payload_piece(seg, [&](const std::byte* d, size_t n,
                                          const std::shared_ptr<const void>& owner) {
        if (nruns < runs.size()) {
            runs[nruns++] = {d, n, &owner};
        } else {
            overflow = true;
        }
    });
    SLUICE_ASSERT(!overflow, "a segment spans more than 32 send pieces");
    auto total = static_cast<uint16_t>(tlen + seg.payload_bytes);
    const link_caps& caps = _link.caps();
    inet::checksum c;
    inet::add_pseudo_header(c, _cfg.ip, f.rip, inet::ip_proto_tcp, total);
    // Offload only where every segment before the last has an even length (the headers always
    // do): ports that sum segment by segment get an odd boundary wrong.
    bool offload = !caps.checksums_unneeded && caps.tx_tcp_checksum && nruns <= 1;
    if (caps.checksums_unneeded) {
        bytes::store_be16(t + 16, 0);
    } else if (offload) {
        // The port finishes it: it wants the folded pseudo-header sum in the field.
        bytes::store_be16(t + 16, static_cast<uint16_t>(~c.finish()));
    } else {
        c.add({t, tlen});
        for (size_t i = 0; i < nruns; ++i) c.add({runs[i].data, runs[i].size});
        bytes::store_be16(t + 16, c.finish());
    }
    inet::write_ipv4(hdr + inet::ethernet_header_bytes, _cfg.ip, f.rip, inet::ip_proto_tcp, total,
                     _ip_id++, caps.tx_ip_checksum || caps.checksums_unneeded);
    send_frame(f.peer_mac, inet::ethertype_ipv4,
               {hdr, inet::ethernet_header_bytes + inet::ipv4_header_bytes + tlen},
               std::span(runs.data(), nruns), offload);
}

bool ip_stack::resolve(flow& f) {
    if (f.mac_known) return true;
    auto now = tcp::clock::now();
    inet::ipv4_address hop = next_hop(f.rip);
    if (auto m = _arp->lookup(hop, now)) {
        f.peer_mac = *m;
        f.mac_known = true;
        return true;
    }
    if (!f.waiting_arp) {
        auto& w = _arp_waiters[hop];  // bounded by max_flows
        w.push_back(&f);
        f.waiting_arp = true;
        send_arp_request(hop);
        // Ask again while anyone still waits (the connect timeout ends the wait).
        auto alive = _alive;
        _reactor.add_timer(arp_retry_interval, [this, alive, hop] {
            if (!*alive) return;
            auto it = _arp_waiters.find(hop);
            if (it == _arp_waiters.end() || it->second.empty()) return;
            for (flow* g : it->second) g->waiting_arp = false;
            auto waiters = std::move(it->second);
            _arp_waiters.erase(it);
            for (flow* g : waiters) resolve(*g);
        });
    }
    return false;
}

void ip_stack::service(flow& f) {
    if (f.in_service > 0) {
        f.again = true;
        return;
    }
    ++f.in_service;
    do {
        f.again = false;
        auto t = now();
        if (f.conn) f.conn->feed();
        if (resolve(f)) {
            while (auto seg = f.tcb.output(t)) transmit_segment(f, *seg);
        }
        bool established = f.tcb.established_once() && !f.tcb.finished();
        if (established && f.listener != nullptr) {
            listener_impl* l = f.listener;
            f.listener = nullptr;
            if (f.half_open) {  // a SYN cookie's flow never was
                f.half_open = false;
                --_half_open;
                --l->_pending;
            }
            if (l->_closed) {
                f.tcb.abort();
                f.again = true;
                continue;
            }
            ++*l->_open;
            auto open = l->_open;
            f.conn = std::make_shared<connection_impl>(*this, f, l->_options.connection,
                                                       [open] { --*open; });
            f.tcb.set_sink(f.conn.get());
            l->_on_accept(f.conn);
        }
        if (established && f.on_connected) {
            if (f.connect_timer != 0) _reactor.cancel_timer(f.connect_timer);
            f.connect_timer = 0;
            f.conn = std::make_shared<connection_impl>(*this, f, f.connect_opts.connection,
                                                       std::function<void()>{});
            f.tcb.set_sink(f.conn.get());
            auto cb = std::move(f.on_connected);
            f.on_connected = nullptr;
            cb(connection_ptr(f.conn));
        }
        if (f.conn) {
            auto c = f.conn;  // deliver() may close and detach it
            c->deliver();
            if (f.conn) f.conn->after_output();
        }
    } while (f.again);
    --f.in_service;
    if (f.tcb.finished()) {
        retire(f);
        return;
    }
    arm_timer(f);
}

void ip_stack::retire(flow& f) {
    if (f.armed_at != tcp::time_point::max()) _timers.erase({f.armed_at, &f});
    if (f.connect_timer != 0) _reactor.cancel_timer(f.connect_timer);
    if (f.half_open) {
        --_half_open;
        if (f.listener != nullptr) --f.listener->_pending;
    }
    if (f.waiting_arp) {
        for (auto& [hop, list] : _arp_waiters) std::erase(list, &f);
    }
    auto node = _flows.extract(f.key);
    SLUICE_ASSERT(!node.empty() && node.mapped().get() == &f, "retiring an unknown flow");
    if (f.conn) {
        auto c = std::move(f.conn);
        c->flow_ended(f.tcb.reason());
    }
    if (f.on_connected) {
        auto cb = std::move(f.on_connected);
        std::string why = tcp::to_string(f.tcb.reason());
        cb(error(errc::connect_failed, "connect to " + inet::ipv4_to_string(f.rip) + ":" +
                                           std::to_string(f.rport) + ": " + why));
    }
}

void ip_stack::arm_timer(flow& f) {
    tcp::time_point d = f.tcb.deadline();
    if (d == f.armed_at) return;
    if (f.armed_at != tcp::time_point::max()) _timers.erase({f.armed_at, &f});
    f.armed_at = d;
    if (d == tcp::time_point::max()) return;
    _timers.insert({d, &f});
    arm_reactor_timer();
}

// One reactor timer per core, at the earliest flow deadline.
void ip_stack::arm_reactor_timer() {
    if (_timers.empty() || _timers.begin()->first >= _timer_at) return;
    if (_timer != 0) _reactor.cancel_timer(_timer);
    _timer_at = _timers.begin()->first;
    auto delay = std::chrono::duration_cast<std::chrono::microseconds>(_timer_at - tcp::clock::now());
    auto alive = _alive;
    _timer = _reactor.add_timer(std::max(delay, std::chrono::microseconds(0)), [this, alive] {
        if (!*alive) return;
        _timer = 0;
        _timer_at = tcp::time_point::max();
        on_timer();
    });
}

void ip_stack::on_timer() {
    auto now = tcp::clock::now();
    std::vector<flow*> due;
    while (!_timers.empty() && _timers.begin()->first <= now) {
        flow* f = _timers.begin()->second;
        _timers.erase(_timers.begin());
        f->armed_at = tcp::time_point::max();
        due.push_back(f);
    }
    for (flow* f : due) {
        // A flow retired by an earlier one's callbacks is gone from _flows.
        auto it = _flows.find(f->key);
        if (it == _flows.end() || it->second.get() != f) continue;
        f->tcb.on_timer(now);
        service(*f);
    }
    arm_reactor_timer();
    flush();
}

void ip_stack::schedule_flush() {
    if (_flush_scheduled) return;
    _flush_scheduled = true;
    auto alive = _alive;
    _reactor.defer([this, alive] {
        if (!*alive) return;
        _flush_scheduled = false;
        _link.flush();
    });
}

void ip_stack::flush() { _link.flush(); }

result<std::unique_ptr<listener>> ip_stack::listen(uint16_t port, listen_options options,
                                                   accept_callback on_accept) {
    if (port == 0) {
        return error(errc::listen_failed, "the dpdk stack needs an explicit listener port");
    }
    if (_listeners.contains(port)) {
        return error(errc::listen_failed, "port " + std::to_string(port) + " is already in use");
    }
    auto l = std::make_unique<listener_impl>(*this, port, std::move(options), std::move(on_accept));
    _listeners[port] = l.get();
    return std::unique_ptr<listener>(std::move(l));
}

void ip_stack::listener_closed(uint16_t port) {
    auto it = _listeners.find(port);
    if (it == _listeners.end()) return;
    listener_impl* l = it->second;
    _listeners.erase(it);
    // Half-open connections of the listener are dropped with it.
    std::vector<flow*> orphans;
    for (auto& [k, f] : _flows) {
        if (f->listener == l) orphans.push_back(f.get());
    }
    for (flow* f : orphans) {
        f->tcb.abort();
        service(*f);
    }
}

void ip_stack::connect(inet::ipv4_address ip, uint16_t port, connect_options options,
                       connect_callback on_connected) {
    uint32_t span = _cfg.ephemeral_port_last - _cfg.ephemeral_port_first + 1u;
    std::optional<uint16_t> chosen;
    for (uint32_t i = 0; i < span; ++i) {
        uint16_t p = _next_port;
        _next_port = p >= _cfg.ephemeral_port_last ? _cfg.ephemeral_port_first
                                                   : static_cast<uint16_t>(p + 1);
        if (_flows.contains(key_of(ip, port, p))) continue;
        if (_owner_of && _owner_of(ip, port, p) != _self_core) continue;
        chosen = p;
        break;
    }
    if (!chosen || _flows.size() >= _cfg.max_flows) {
        on_connected(error(errc::connect_failed, "no free local port or flow slot for " +
                                                     inet::ipv4_to_string(ip)));
        return;
    }
    auto now = tcp::clock::now();
    auto f = std::make_unique<flow>(_cfg.tcp, new_iss(), now);
    f->id = _next_flow_id++;
    f->rip = ip;
    f->rport = port;
    f->lport = *chosen;
    f->key = key_of(ip, port, *chosen);
    f->on_connected = std::move(on_connected);
    f->connect_opts = options;
    f->tcb.connect(now);
    flow& ref = *f;
    _flows.emplace(ref.key, std::move(f));
    auto alive = _alive;
    uint64_t id = ref.id;
    flow_key key = ref.key;
    ref.connect_timer = _reactor.add_timer(
        std::chrono::duration_cast<std::chrono::microseconds>(options.timeout),
        [this, alive, id, key] {
            if (!*alive) return;
            auto it = _flows.find(key);
            if (it == _flows.end() || it->second->id != id) return;
            flow& g = *it->second;
            g.connect_timer = 0;
            if (!g.on_connected) return;
            g.tcb.abort();
            auto cb = std::move(g.on_connected);
            g.on_connected = nullptr;
            std::string peer = inet::ipv4_to_string(g.rip) + ":" + std::to_string(g.rport);
            service(g);  // retires it
            cb(error(errc::connect_failed, "connect to " + peer + " timed out"));
        });
    service(ref);
}

}  // namespace sluice::net
