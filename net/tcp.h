#pragma once
// Private to net/: one TCP connection's state machine (a transmission control block), as in
// RFC 9293 with RFC 7323 (window scaling, timestamps), RFC 6298 (RTO), RFC 5681/6582 (NewReno
// congestion control, fast retransmit and recovery), RFC 5961 (challenge ACKs for in-window RST
// and SYN) and RFC 1122 (delayed ACKs, keepalive, silly-window avoidance).
//
// The tcb knows nothing of packets, clocks or threads: the owner (the userspace stack's core,
// net/ip_stack.h) hands it parsed segments with `input()`, asks for segments to send with
// `output()` until it returns nothing, and calls `on_timer()` once `deadline()` has passed. The
// time is always passed in, so tests drive the whole machine on a simulated clock
// (net/tests/tcp_test.cc). One thread at a time; in the broker, the owning reactor's.
//
// Sending: the application queues `tx_piece`s (views that keep their owner alive: a frame's
// chunk, a vector, a page-cache mapping of a segment file) up to `send_space()`. The bytes are
// never copied into the tcb: a segment names a range of the queue, and the link attaches or
// copies that range into the packet. A piece is released when every byte of it is acknowledged.
//
// Receiving: in-order bytes go to a bounded ring (`config::recv_buffer_bytes`, which is also the
// largest window advertised) that the application drains with `read()`; out-of-order segments
// wait in a bounded reassembly map. No SACK: the peer learns of holes from duplicate ACKs.

#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "net/inet.h"

namespace sluice::net::tcp {

using clock = std::chrono::steady_clock;
using time_point = clock::time_point;
using std::chrono::milliseconds;

// Sequence-space comparisons (RFC 9293 3.4): modulo 2^32.
inline bool seq_lt(uint32_t a, uint32_t b) { return static_cast<int32_t>(a - b) < 0; }
inline bool seq_le(uint32_t a, uint32_t b) { return static_cast<int32_t>(a - b) <= 0; }
inline bool seq_gt(uint32_t a, uint32_t b) { return seq_lt(b, a); }
inline bool seq_ge(uint32_t a, uint32_t b) { return seq_le(b, a); }

enum class state : uint8_t {
    closed,
    syn_sent,
    syn_received,
    established,
    fin_wait_1,
    fin_wait_2,
    close_wait,
    closing,
    last_ack,
    time_wait,
};
const char* to_string(state s);

struct config {
    uint16_t mss = 1460;  // what we accept (link MTU - 40)
    uint32_t recv_buffer_bytes = 1u << 20;
    uint32_t send_buffer_bytes = 4u << 20;
    bool window_scaling = true;
    bool timestamps = true;
    milliseconds rto_initial{1000};
    milliseconds rto_min{200};
    milliseconds rto_max{60'000};
    milliseconds delayed_ack{40};
    milliseconds time_wait{60'000};  // 2 * MSL
    // Gives up when data or a SYN/FIN is outstanding and nothing has been heard from the peer for
    // this long (like TCP_USER_TIMEOUT).
    milliseconds user_timeout{60'000};
    int syn_retries = 6;
    bool keepalive = true;
    milliseconds keepalive_idle{7'200'000};
    milliseconds keepalive_interval{75'000};
    int keepalive_probes = 9;
};

// A view of bytes to send that keeps its owner alive.
struct tx_piece {
    const std::byte* data = nullptr;
    size_t size = 0;
    std::shared_ptr<const void> owner;
};

// A segment the tcb wants sent. The payload is [payload_offset, +payload_bytes) of the send
// queue (see for_each_payload).
struct segment {
    uint32_t seq = 0;
    uint32_t ack = 0;
    uint8_t flags = 0;
    uint16_t window = 0;  // scaled, as written on the wire
    inet::tcp_options options;
    uint32_t payload_offset = 0;
    uint32_t payload_bytes = 0;
};

// Why a connection ended (reported once through take_closed_reason()).
enum class close_reason : uint8_t {
    none,
    normal,       // both FINs exchanged and acknowledged (or our side finished TIME_WAIT)
    reset,        // the peer sent a valid RST
    refused,      // RST answer to our SYN
    timed_out,    // retransmissions, SYN retries or keepalive probes went unanswered
    aborted,      // abort() on this side
};
const char* to_string(close_reason r);

struct tcb_stats {
    uint64_t segments_in = 0;
    uint64_t segments_out = 0;
    uint64_t retransmits = 0;       // segments sent again (RTO, fast retransmit, probes)
    uint64_t fast_retransmits = 0;
    uint64_t rto_expiries = 0;
    uint64_t out_of_order = 0;      // segments buffered for reassembly
    uint64_t dropped_out_of_window = 0;
    uint64_t challenge_acks = 0;
    uint64_t bytes_to_sink = 0;     // in-order bytes handed straight to the sink
};

// Where in-order bytes go first while the receive ring is empty (the connection's frame chunk),
// so they are copied once; what it does not take (paused, not started) waits in the ring.
class rx_sink {
  public:
    virtual size_t take(std::span<const std::byte> bytes) = 0;

  protected:
    ~rx_sink() = default;
};

class tcb {
  public:
    tcb(const config& cfg, uint32_t iss, time_point now);

    // Active open: CLOSED -> SYN_SENT.
    void connect(time_point now);
    // Passive open from a listener: CLOSED -> SYN_RECEIVED with the peer's SYN.
    void accept_syn(const inet::tcp_header& syn, time_point now);
    // Straight to ESTABLISHED from a valid SYN cookie (the tcb was made with iss = the cookie):
    // the peer's initial sequence `irs` and the MSS the cookie carried; no window scaling or
    // timestamps (the stateless SYN-ACK offered neither). `ack` is the completing ACK.
    void accept_cookie(uint32_t irs, uint16_t mss, const inet::tcp_header& ack, time_point now);

    // One segment for this connection (header already checksum-verified).
    void input(const inet::tcp_header& h, std::span<const std::byte> payload, time_point now);
    // The next segment to send now, or nothing. Call until it returns nothing.
    std::optional<segment> output(time_point now);
    // Calls `fn(data, size)` for each contiguous run of `seg`'s payload, in order.
    template <typename Fn>
    void for_each_payload(const segment& seg, Fn&& fn) const;
    // Same, handing each run with the piece's owner (to keep it alive, e.g. in an mbuf).
    template <typename Fn>
    void for_each_payload_piece(const segment& seg, Fn&& fn) const;

    // When on_timer() must run next (time_point::max() if nothing is pending).
    time_point deadline() const;
    void on_timer(time_point now);

    // Application side.
    size_t send_space() const;  // bytes send() takes now
    void send(tx_piece piece);  // must fit send_space(); ignored once closed for sending
    size_t send_queued() const { return _sq_bytes; }  // queued and not yet acknowledged
    void close();               // FIN after everything queued (half close)
    void abort();               // RST now, then CLOSED
    size_t readable() const { return _rx_size; }
    // The sink must outlive its registration; set nullptr before it goes.
    void set_sink(rx_sink* s) { _sink = s; }
    size_t read(std::span<std::byte> out);
    // The peer sent FIN and every byte before it has been read.
    bool at_eof() const { return _fin_received && _rx_size == 0; }

    state current_state() const { return _state; }
    // CLOSED (or TIME_WAIT, where nothing more flows): the owner can retire it.
    bool finished() const { return _state == state::closed; }
    bool established_once() const { return _was_established; }
    close_reason reason() const { return _reason; }
    const tcb_stats& stats() const { return _stats; }
    uint16_t send_mss() const { return _snd_mss; }
    uint32_t cwnd() const { return _cwnd; }
    milliseconds rto() const { return std::chrono::duration_cast<milliseconds>(_rto); }
    uint32_t peer_window() const { return _snd_wnd; }
    uint32_t rcv_nxt() const { return _rcv_nxt; }
    uint32_t snd_una() const { return _snd_una; }
    uint32_t snd_nxt() const { return _snd_nxt; }

  private:
    using micros = std::chrono::microseconds;
    void enter(state s);
    void finish(close_reason r);
    void take_syn_options(const inet::tcp_options& o);
    void input_syn_sent(const inet::tcp_header& h, time_point now);
    bool acceptable(const inet::tcp_header& h, size_t len) const;
    bool process_ack(const inet::tcp_header& h, size_t len, time_point now);
    void on_new_ack(uint32_t ack, const inet::tcp_header& h, time_point now);
    void on_duplicate_ack();
    void update_window(const inet::tcp_header& h);
    void process_data(const inet::tcp_header& h, std::span<const std::byte> payload,
                      time_point now);
    void append_in_order(std::span<const std::byte> bytes);
    void merge_reassembly();
    void receive_fin();
    void rtt_sample(micros r);
    void on_rto(time_point now);
    void arm_rto(time_point now);
    void trim_send_queue(uint32_t ack);
    uint32_t data_end_seq() const { return _sq_seq + static_cast<uint32_t>(_sq_bytes); }
    uint32_t flight() const { return _snd_nxt - _snd_una; }
    uint32_t rx_window() const;
    uint16_t advertised_window();
    segment base_segment(time_point now, uint8_t flags, uint32_t seq);
    std::optional<segment> data_segment(time_point now);
    uint32_t ts_now(time_point now) const;
    bool synchronized() const;

    config _cfg;
    state _state = state::closed;
    close_reason _reason = close_reason::none;
    bool _was_established = false;
    time_point _epoch;  // timestamp clock origin

    // Send sequence space.
    uint32_t _iss;
    uint32_t _snd_una;
    uint32_t _snd_nxt;
    uint32_t _snd_max;  // highest sequence sent so far (+1)
    uint32_t _snd_wnd = 0;
    uint32_t _snd_wl1 = 0;
    uint32_t _snd_wl2 = 0;
    uint16_t _snd_mss = 536;  // RFC 9293 default until the peer's MSS option says otherwise
    uint8_t _snd_wscale = 0;  // shift applied to the peer's window field
    uint8_t _rcv_wscale = 0;  // shift we apply to ours
    bool _ts_on = false;
    uint32_t _ts_recent = 0;
    uint32_t _last_ack_sent = 0;

    // Send queue: bytes from _sq_seq on.
    std::deque<tx_piece> _sq;
    size_t _sq_front_used = 0;  // bytes of _sq.front() already acknowledged
    size_t _sq_bytes = 0;
    uint32_t _sq_seq = 0;
    bool _fin_queued = false;
    bool _rst_pending = false;
    std::optional<uint32_t> _rst_seq;  // RST without ACK at this sequence

    // Receive side.
    uint32_t _irs = 0;
    uint32_t _rcv_nxt = 0;
    uint32_t _rcv_adv = 0;  // right edge of the last window advertised
    rx_sink* _sink = nullptr;
    std::vector<std::byte> _rx;  // ring
    size_t _rx_head = 0;
    size_t _rx_size = 0;
    std::map<uint32_t, std::vector<std::byte>> _ooo;  // by sequence
    size_t _ooo_bytes = 0;
    bool _fin_received = false;
    std::optional<uint32_t> _peer_fin_seq;  // a FIN seen beyond a hole

    // ACK scheduling.
    bool _ack_now = false;
    int _unacked_segments = 0;
    time_point _delack_at = time_point::max();

    // Timers and RTT.
    time_point _rto_at = time_point::max();
    time_point _persist_at = time_point::max();
    time_point _keepalive_at = time_point::max();
    time_point _time_wait_at = time_point::max();
    time_point _last_heard;
    micros _srtt{0};
    micros _rttvar{0};
    micros _rto;
    int _syn_sends = 0;
    int _keepalive_sent = 0;
    bool _probe_now = false;      // zero-window probe: one byte past the window
    bool _keepalive_now = false;
    bool _retransmit_una = false;  // fast retransmit: resend the segment at snd_una
    std::optional<uint32_t> _rtt_seq;  // Karn timing when timestamps are off
    time_point _rtt_start;

    // NewReno.
    uint32_t _cwnd = 0;
    uint32_t _ssthresh = 0xffffffff;
    uint32_t _cwnd_acc = 0;
    int _dupacks = 0;
    bool _in_recovery = false;
    uint32_t _recover = 0;

    tcb_stats _stats;
};

template <typename Fn>
void tcb::for_each_payload_piece(const segment& seg, Fn&& fn) const {
    size_t skip = seg.payload_offset + _sq_front_used;
    size_t left = seg.payload_bytes;
    for (const tx_piece& p : _sq) {
        if (left == 0) break;
        if (skip >= p.size) {
            skip -= p.size;
            continue;
        }
        size_t n = std::min(p.size - skip, left);
        fn(p.data + skip, n, p.owner);
        left -= n;
        skip = 0;
    }
}

template <typename Fn>
void tcb::for_each_payload(const segment& seg, Fn&& fn) const {
    for_each_payload_piece(seg, [&](const std::byte* d, size_t n, const auto&) { fn(d, n); });
}

}  // namespace sluice::net::tcp
