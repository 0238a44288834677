#include "net/tcp.h"

#include <algorithm>
#include <cstring>

#include "base/assert.h"

namespace sluice::net::tcp {

using namespace inet::tcp_flags;

const char* to_string(state s) {
    switch (s) {
        case state::closed: return "CLOSED";
        case state::syn_sent: return "SYN_SENT";
        case state::syn_received: return "SYN_RECEIVED";
        case state::established: return "ESTABLISHED";
        case state::fin_wait_1: return "FIN_WAIT_1";
        case state::fin_wait_2: return "FIN_WAIT_2";
        case state::close_wait: return "CLOSE_WAIT";
        case state::closing: return "CLOSING";
        case state::last_ack: return "LAST_ACK";
        case state::time_wait: return "TIME_WAIT";
    }
    return "?";
}

const char* to_string(close_reason r) {
    switch (r) {
        case close_reason::none: return "open";
        case close_reason::normal: return "closed";
        case close_reason::reset: return "reset by peer";
        case close_reason::refused: return "connection refused";
        case close_reason::timed_out: return "timed out";
        case close_reason::aborted: return "aborted";
    }
    return "?";
}

namespace {
// The window scale we ask for: the smallest shift that lets a 16-bit field cover the buffer.
uint8_t scale_for(uint32_t bytes) {
    uint8_t s = 0;
    while (s < 14 && (bytes >> s) > 0xffff) ++s;
    return s;
}
constexpr uint32_t initial_window_segments = 10;  // RFC 6928
}  // namespace

tcb::tcb(const config& cfg, uint32_t iss, time_point now)
    : _cfg(cfg),
      _epoch(now - std::chrono::seconds(1)),
      _iss(iss),
      _snd_una(iss),
      _snd_nxt(iss),
      _snd_max(iss),
      _sq_seq(iss + 1),
      _last_heard(now),
      _rto(std::chrono::duration_cast<micros>(cfg.rto_initial)) {
    _rx.resize(cfg.recv_buffer_bytes);
}

bool tcb::synchronized() const {
    return _state != state::closed && _state != state::syn_sent && _state != state::syn_received;
}

void tcb::enter(state s) {
    _state = s;
    if (s == state::established) _was_established = true;
    if (s == state::time_wait) {
        _rto_at = _persist_at = _keepalive_at = _delack_at = time_point::max();
        _sq.clear();
        _sq_bytes = 0;
        _sq_front_used = 0;
    }
}

void tcb::finish(close_reason r) {
    if (_reason == close_reason::none) _reason = r;
    enter(state::closed);
    _rto_at = _persist_at = _keepalive_at = _delack_at = _time_wait_at = time_point::max();
    _sq.clear();
    _sq_bytes = 0;
    _sq_front_used = 0;
    _ooo.clear();
    _ooo_bytes = 0;
}

uint32_t tcb::ts_now(time_point now) const {
    return static_cast<uint32_t>(
        std::chrono::duration_cast<milliseconds>(now - _epoch).count());
}

void tcb::connect(time_point now) {
    SLUICE_ASSERT(_state == state::closed, "connect() on an open tcb");
    enter(state::syn_sent);
    _syn_sends = 0;
    _last_heard = now;
    _rcv_wscale = _cfg.window_scaling ? scale_for(_cfg.recv_buffer_bytes) : 0;
}

void tcb::take_syn_options(const inet::tcp_options& o) {
    uint16_t peer_mss = o.mss != 0 ? o.mss : 536;
    _snd_mss = std::min<uint16_t>(peer_mss, _cfg.mss);
    if (_cfg.window_scaling && o.window_scale >= 0) {
        _snd_wscale = static_cast<uint8_t>(o.window_scale);
    } else {
        _snd_wscale = 0;
        _rcv_wscale = 0;
    }
    _ts_on = _cfg.timestamps && o.timestamps;
    if (_ts_on) {
        _ts_recent = o.ts_val;
        _snd_mss = static_cast<uint16_t>(_snd_mss - 12);
    }
    _snd_mss = std::max<uint16_t>(_snd_mss, 64);
    _cwnd = std::min<uint32_t>(initial_window_segments * _snd_mss,
                               std::max<uint32_t>(2u * _snd_mss, 14600));
}

void tcb::accept_syn(const inet::tcp_header& syn, time_point now) {
    SLUICE_ASSERT(_state == state::closed, "accept_syn() on an open tcb");
    _irs = syn.seq;
    _rcv_nxt = syn.seq + 1;
    _rcv_wscale = _cfg.window_scaling ? scale_for(_cfg.recv_buffer_bytes) : 0;
    take_syn_options(syn.options);
    _snd_wnd = syn.window;  // a SYN's window is never scaled
    _snd_wl1 = syn.seq;
    _last_heard = now;
    enter(state::syn_received);
}

void tcb::accept_cookie(uint32_t irs, uint16_t mss, const inet::tcp_header& h, time_point now) {
    SLUICE_ASSERT(_state == state::closed, "accept_cookie() on an open tcb");
    _irs = irs;
    _rcv_nxt = irs + 1;
    _rcv_wscale = 0;
    inet::tcp_options o;
    o.mss = mss;
    take_syn_options(o);  // no scale, no timestamps
    _snd_una = _snd_nxt = _snd_max = _iss + 1;
    _snd_wnd = h.window;
    _snd_wl1 = h.seq;
    _snd_wl2 = h.ack;
    _rcv_adv = _rcv_nxt + std::min<uint32_t>(rx_window(), 0xffff);
    _last_heard = now;
    enter(state::established);
    if (_cfg.keepalive) _keepalive_at = now + _cfg.keepalive_idle;
}

size_t tcb::send_space() const {
    if (_fin_queued || _state == state::closed || _state == state::time_wait) return 0;
    return _sq_bytes >= _cfg.send_buffer_bytes ? 0 : _cfg.send_buffer_bytes - _sq_bytes;
}

void tcb::send(tx_piece piece) {
    if (_fin_queued || piece.size == 0) return;
    if (_state == state::closed || _state == state::time_wait) return;
    _sq_bytes += piece.size;
    _sq.push_back(std::move(piece));
}

void tcb::close() {
    switch (_state) {
        case state::closed:
        case state::time_wait:
            return;
        case state::syn_sent:
            finish(close_reason::normal);
            return;
        default:
            _fin_queued = true;
    }
}

void tcb::abort() {
    if (_state == state::closed) return;
    if (_state != state::syn_sent && _state != state::time_wait) _rst_pending = true;
    auto keep = _rst_pending;
    finish(close_reason::aborted);
    _rst_pending = keep;
}

size_t tcb::read(std::span<std::byte> out) {
    size_t n = std::min(out.size(), _rx_size);
    size_t first = std::min(n, _rx.size() - _rx_head);
    std::memcpy(out.data(), _rx.data() + _rx_head, first);
    std::memcpy(out.data() + first, _rx.data(), n - first);
    _rx_head = (_rx_head + n) % _rx.size();
    _rx_size -= n;
    // Window update (RFC 1122 4.2.3.3): tell the peer once the window grew by a segment or by
    // half the buffer, whichever is smaller, beyond what it last heard.
    if (n > 0 && synchronized()) {
        uint32_t now_edge = _rcv_nxt + rx_window();
        uint32_t grown = seq_gt(now_edge, _rcv_adv) ? now_edge - _rcv_adv : 0;
        if (grown >= std::min<uint32_t>(2u * _cfg.mss, _cfg.recv_buffer_bytes / 2)) _ack_now = true;
    }
    return n;
}

uint32_t tcb::rx_window() const {
    size_t free = _rx.size() - _rx_size;
    return static_cast<uint32_t>(free);
}

uint16_t tcb::advertised_window() {
    // rcv_nxt + free ring space never decreases (arrivals move both, reads grow the space),
    // so every right edge advertised fits the ring; keep the furthest one for the acceptance
    // test, as the window is never shrunk (RFC 9293 3.8.6.2.2).
    uint32_t field = std::min<uint32_t>(rx_window() >> _rcv_wscale, 0xffff);
    uint32_t edge = _rcv_nxt + (field << _rcv_wscale);
    if (seq_gt(edge, _rcv_adv)) _rcv_adv = edge;
    return static_cast<uint16_t>(field);
}

segment tcb::base_segment(time_point now, uint8_t flags, uint32_t seq) {
    segment s;
    s.seq = seq;
    s.flags = flags;
    if (flags & ack) {
        s.ack = _rcv_nxt;
        _last_ack_sent = _rcv_nxt;
        _ack_now = false;
        _unacked_segments = 0;
        _delack_at = time_point::max();
    }
    if (flags & syn) {
        // A SYN's window field is not scaled (RFC 7323 2.2).
        s.window = static_cast<uint16_t>(std::min<uint32_t>(rx_window(), 0xffff));
        _rcv_adv = _rcv_nxt + s.window;
        s.options.mss = _cfg.mss;
        if (_cfg.window_scaling && (_state == state::syn_sent || _rcv_wscale > 0 || _snd_wscale > 0)) {
            s.options.window_scale = static_cast<int8_t>(_rcv_wscale);
        }
        if (_cfg.timestamps && (_state == state::syn_sent || _ts_on)) {
            s.options.timestamps = true;
            s.options.ts_val = ts_now(now);
            s.options.ts_ecr = _state == state::syn_sent ? 0 : _ts_recent;
        }
    } else {
        s.window = (flags & rst) ? 0 : advertised_window();
        if (_ts_on && !(flags & rst)) {
            s.options.timestamps = true;
            s.options.ts_val = ts_now(now);
            s.options.ts_ecr = _ts_recent;
        }
    }
    ++_stats.segments_out;
    return s;
}

void tcb::arm_rto(time_point now) {
    if (_snd_max == _snd_una) {
        _rto_at = time_point::max();
        return;
    }
    _rto_at = now + _rto;
}

std::optional<segment> tcb::output(time_point now) {
    if (_rst_pending) {
        _rst_pending = false;
        if (_rst_seq) {  // answer to an unacceptable ACK: <SEQ=SEG.ACK><CTL=RST>
            segment s = base_segment(now, rst, *_rst_seq);
            _rst_seq.reset();
            return s;
        }
        return base_segment(now, rst | ack, _snd_max);
    }
    switch (_state) {
        case state::closed:
            return std::nullopt;
        case state::syn_sent:
        case state::syn_received: {
            if (_snd_nxt != _iss) return std::nullopt;  // SYN already out; RTO resends it
            uint8_t f = _state == state::syn_sent ? syn : (syn | ack);
            segment s = base_segment(now, f, _iss);
            if (_snd_max == _iss) {
                _snd_max = _iss + 1;
            } else {
                ++_stats.retransmits;
            }
            _snd_nxt = _iss + 1;
            ++_syn_sends;
            if (_rto_at == time_point::max()) arm_rto(now);
            return s;
        }
        default:
            break;
    }
    if (auto d = data_segment(now)) return d;
    if (_keepalive_now) {
        _keepalive_now = false;
        return base_segment(now, ack, _snd_una - 1);  // RFC 1122 4.2.3.6: an old sequence
    }
    // A pure ACK carries the highest sequence sent, not snd_nxt: after a timeout snd_nxt goes
    // back to snd_una, and a peer that already holds those bytes would find an ACK numbered
    // below its rcv_nxt unacceptable and drop it (both sides backing off at once would then
    // never hear each other again).
    if (_ack_now) return base_segment(now, ack, _snd_max);
    return std::nullopt;
}

std::optional<segment> tcb::data_segment(time_point now) {
    if (_state == state::time_wait) return std::nullopt;
    uint32_t end = data_end_seq();
    bool fin_allowed = _fin_queued;
    uint32_t fin_seq = end;  // the FIN follows the last data byte
    uint32_t seq = _snd_nxt;
    bool retransmission = false;
    uint32_t window_room = 0;
    if (_retransmit_una) {
        _retransmit_una = false;
        seq = _snd_una;
        retransmission = true;
        window_room = _snd_mss;
    } else {
        uint32_t wnd = std::min(_snd_wnd, _cwnd);
        window_room = wnd > flight() ? wnd - flight() : 0;
        if (_probe_now) {
            _probe_now = false;
            window_room = std::max<uint32_t>(window_room, 1);
        }
        retransmission = seq_lt(seq, _snd_max);
    }
    uint32_t avail = seq_lt(seq, end) ? end - seq : 0;
    uint32_t len = std::min<uint32_t>({avail, window_room, _snd_mss});
    // Silly-window avoidance (RFC 1122 4.2.3.4): a short segment only when it carries the last
    // queued byte, or nothing else is in flight.
    if (len > 0 && len < _snd_mss && len < avail && flight() > 0 && !retransmission) len = 0;
    // The FIN rides on the segment that reaches the end of the data (or goes alone).
    bool fin = fin_allowed && seq_le(seq, fin_seq) && seq + len == fin_seq;
    if (len == 0 && !fin) {
        if (avail > 0 && _snd_wnd == 0 && flight() == 0 && _persist_at == time_point::max()) {
            _persist_at = now + _rto;  // zero window: probe it later
        }
        return std::nullopt;
    }
    uint8_t flags = ack | (fin ? inet::tcp_flags::fin : 0);
    if (len > 0 && seq + len == end) flags |= psh;
    segment s = base_segment(now, flags, seq);
    s.payload_offset = seq - _sq_seq;
    s.payload_bytes = len;
    uint32_t after = seq + len + (fin ? 1 : 0);
    if (retransmission) ++_stats.retransmits;
    if (seq_gt(after, _snd_nxt)) _snd_nxt = after;
    if (seq_gt(after, _snd_max)) {
        if (!_ts_on && !_rtt_seq && !retransmission) {
            _rtt_seq = seq;
            _rtt_start = now;
        }
        _snd_max = after;
    }
    if (fin && _state == state::established) enter(state::fin_wait_1);
    if (fin && _state == state::close_wait) enter(state::last_ack);
    _persist_at = time_point::max();
    if (_rto_at == time_point::max()) arm_rto(now);
    return s;
}

time_point tcb::deadline() const {
    return std::min({_rto_at, _persist_at, _keepalive_at, _time_wait_at, _delack_at});
}

void tcb::on_timer(time_point now) {
    if (_time_wait_at <= now) {
        _time_wait_at = time_point::max();
        finish(close_reason::normal);
        return;
    }
    if (_delack_at <= now) {
        _delack_at = time_point::max();
        _ack_now = true;
    }
    if (_rto_at <= now) on_rto(now);
    if (_state == state::closed) return;
    if (_persist_at <= now) {
        _persist_at = time_point::max();
        _probe_now = true;
    }
    if (_keepalive_at <= now) {
        _keepalive_at = time_point::max();
        if (_keepalive_sent >= _cfg.keepalive_probes) {
            finish(close_reason::timed_out);
            return;
        }
        ++_keepalive_sent;
        _keepalive_now = true;
        _keepalive_at = now + _cfg.keepalive_interval;
    }
}

void tcb::on_rto(time_point now) {
    _rto_at = time_point::max();
    if (_snd_max == _snd_una) return;
    ++_stats.rto_expiries;
    bool handshake = _state == state::syn_sent || _state == state::syn_received;
    if (handshake ? _syn_sends > _cfg.syn_retries : now - _last_heard >= _cfg.user_timeout) {
        finish(close_reason::timed_out);
        return;
    }
    _rto = std::min(_rto * 2, std::chrono::duration_cast<micros>(_cfg.rto_max));
    _rtt_seq.reset();  // Karn: no sample from a retransmitted range
    if (handshake) {
        _snd_nxt = _iss;  // output() resends the SYN
    } else if (_snd_wnd == 0) {
        _snd_nxt = _snd_una;  // a lost zero-window probe: probe again, no congestion signal
        _probe_now = true;
    } else {
        uint32_t fl = _snd_max - _snd_una;
        _ssthresh = std::max<uint32_t>(fl / 2, 2u * _snd_mss);
        _cwnd = _snd_mss;
        _cwnd_acc = 0;
        _in_recovery = false;
        _dupacks = 0;
        _recover = _snd_max;
        _snd_nxt = _snd_una;  // go back: resend from the first unacknowledged byte
    }
    _rto_at = now + _rto;
}

bool tcb::acceptable(const inet::tcp_header& h, size_t len) const {
    // RFC 9293 3.10.7.4: the segment acceptability test. Our advertised window is measured to
    // the right edge we announced.
    uint32_t wnd = seq_gt(_rcv_adv, _rcv_nxt) ? _rcv_adv - _rcv_nxt : 0;
    uint32_t seg_len = static_cast<uint32_t>(len) + ((h.flags & syn) ? 1 : 0) +
                       ((h.flags & fin) ? 1 : 0);
    if (seg_len == 0) {
        if (wnd == 0) return h.seq == _rcv_nxt;
        return seq_le(_rcv_nxt, h.seq) && seq_lt(h.seq, _rcv_nxt + wnd);
    }
    if (wnd == 0) return false;
    uint32_t last = h.seq + seg_len - 1;
    return (seq_le(_rcv_nxt, h.seq) && seq_lt(h.seq, _rcv_nxt + wnd)) ||
           (seq_le(_rcv_nxt, last) && seq_lt(last, _rcv_nxt + wnd));
}

void tcb::input_syn_sent(const inet::tcp_header& h, time_point now) {
    bool has_ack = (h.flags & ack) != 0;
    if (has_ack && (seq_le(h.ack, _iss) || seq_gt(h.ack, _snd_max))) {
        if (!(h.flags & rst)) {
            // RFC 9293 3.10.7.3: <SEQ=SEG.ACK><CTL=RST>. Sent through the pending-RST path
            // with our snd_nxt replaced by the peer's ack.
            _rst_pending = true;
            _rst_seq = h.ack;
        }
        return;
    }
    if (h.flags & rst) {
        if (has_ack) finish(close_reason::refused);
        return;
    }
    if (!(h.flags & syn)) return;
    _irs = h.seq;
    _rcv_nxt = h.seq + 1;
    take_syn_options(h.options);
    _last_heard = now;
    if (has_ack) {
        _snd_una = h.ack;
        _snd_wnd = h.window;  // a SYN's window is never scaled
        _rcv_adv = _rcv_nxt + std::min<uint32_t>(rx_window(), 0xffff);
        _snd_wl1 = h.seq;
        _snd_wl2 = h.ack;
        _rto_at = time_point::max();
        _rto = std::chrono::duration_cast<micros>(_cfg.rto_initial);
        if (_ts_on && h.options.ts_ecr != 0) {
            rtt_sample(milliseconds(ts_now(now) - h.options.ts_ecr));
        }
        enter(state::established);
        _ack_now = true;
        if (_cfg.keepalive) _keepalive_at = now + _cfg.keepalive_idle;
        return;
    }
    // Simultaneous open (RFC 9293 figure 7): answer with SYN,ACK from the same ISS.
    _snd_wnd = h.window;
    _rcv_adv = _rcv_nxt + std::min<uint32_t>(rx_window(), 0xffff);
    enter(state::syn_received);
    _snd_nxt = _iss;
}

void tcb::input(const inet::tcp_header& h, std::span<const std::byte> payload, time_point now) {
    ++_stats.segments_in;
    if (_state == state::closed) return;
    if (_state == state::syn_sent) {
        input_syn_sent(h, now);
        return;
    }
    size_t len = payload.size();
    bool is_rst = (h.flags & rst) != 0;
    // PAWS (RFC 7323 5): an older timestamp than the last in-sequence one is a stale duplicate.
    if (_ts_on && h.options.timestamps && !is_rst && seq_lt(h.options.ts_val, _ts_recent)) {
        ++_stats.dropped_out_of_window;
        _ack_now = true;
        return;
    }
    if (!acceptable(h, len)) {
        ++_stats.dropped_out_of_window;
        if (!is_rst) _ack_now = true;
        return;
    }
    if (is_rst) {
        // RFC 5961 3.2: only an exact match resets; any other in-window RST gets a challenge.
        if (h.seq == _rcv_nxt) {
            finish(_state == state::syn_received && !_was_established ? close_reason::refused
                                                                       : close_reason::reset);
        } else {
            ++_stats.challenge_acks;
            _ack_now = true;
        }
        return;
    }
    if (h.flags & syn) {
        if (_state == state::syn_received && h.seq == _irs) {
            _snd_nxt = _iss;  // our SYN,ACK was lost: send it again
            return;
        }
        ++_stats.challenge_acks;  // RFC 5961 4.2
        _ack_now = true;
        return;
    }
    if (!(h.flags & ack)) return;
    _last_heard = now;
    if (_ts_on && h.options.timestamps && seq_le(h.seq, _last_ack_sent)) {
        _ts_recent = h.options.ts_val;
    }
    if (!process_ack(h, len, now)) return;
    if (_state == state::closed) return;
    process_data(h, payload, now);
    if (h.flags & fin) {
        uint32_t fin_seq = h.seq + static_cast<uint32_t>(len);
        if (fin_seq == _rcv_nxt) {
            receive_fin();
        } else if (seq_gt(fin_seq, _rcv_nxt)) {
            _peer_fin_seq = fin_seq;
        } else if (_state == state::time_wait) {
            _ack_now = true;  // a retransmitted FIN: ACK it and restart 2 MSL
            _time_wait_at = now + _cfg.time_wait;
        }
    }
    if (_state == state::time_wait && _time_wait_at == time_point::max()) {
        _time_wait_at = now + _cfg.time_wait;
    }
    if (_cfg.keepalive && synchronized() && _state != state::time_wait) {
        _keepalive_sent = 0;
        _keepalive_at = now + _cfg.keepalive_idle;
    }
}

bool tcb::process_ack(const inet::tcp_header& h, size_t len, time_point now) {
    if (_state == state::syn_received) {
        if (seq_lt(_snd_una, h.ack) && seq_le(h.ack, _snd_max)) {
            enter(state::established);
            _snd_wnd = static_cast<uint32_t>(h.window) << _snd_wscale;
            _snd_wl1 = h.seq;
            _snd_wl2 = h.ack;
            _rto = std::chrono::duration_cast<micros>(_cfg.rto_initial);
            if (_ts_on && h.options.ts_ecr != 0) {
                rtt_sample(milliseconds(ts_now(now) - h.options.ts_ecr));
            }
            if (_cfg.keepalive) _keepalive_at = now + _cfg.keepalive_idle;
        } else {
            _rst_pending = true;
            _rst_seq = h.ack;
            return false;
        }
    }
    if (seq_gt(h.ack, _snd_max)) {
        _ack_now = true;  // acknowledges something never sent
        return false;
    }
    if (seq_gt(h.ack, _snd_una)) {
        on_new_ack(h.ack, h, now);
    } else if (h.ack == _snd_una) {
        bool dup = len == 0 && !(h.flags & fin) && _snd_max != _snd_una &&
                   (static_cast<uint32_t>(h.window) << _snd_wscale) == _snd_wnd;
        update_window(h);
        if (dup) on_duplicate_ack();
    }
    // FIN acknowledged?
    bool fin_acked = _fin_queued && _snd_una == data_end_seq() + 1;
    switch (_state) {
        case state::fin_wait_1:
            if (fin_acked) enter(state::fin_wait_2);
            break;
        case state::closing:
            if (fin_acked) enter(state::time_wait);
            break;
        case state::last_ack:
            if (fin_acked) {
                finish(close_reason::normal);
                return false;
            }
            break;
        default:
            break;
    }
    return true;
}

void tcb::update_window(const inet::tcp_header& h) {
    // RFC 9293 3.10.7.4: take the window from the newest segment only.
    if (seq_lt(_snd_wl1, h.seq) || (_snd_wl1 == h.seq && seq_le(_snd_wl2, h.ack))) {
        _snd_wnd = static_cast<uint32_t>(h.window) << _snd_wscale;
        _snd_wl1 = h.seq;
        _snd_wl2 = h.ack;
        if (_snd_wnd > 0) _persist_at = time_point::max();
    }
}

void tcb::trim_send_queue(uint32_t ack) {
    if (!seq_gt(ack, _sq_seq)) return;
    size_t acked = std::min<size_t>(ack - _sq_seq, _sq_bytes);
    _sq_seq += static_cast<uint32_t>(acked);
    _sq_bytes -= acked;
    while (acked > 0) {
        tx_piece& p = _sq.front();
        size_t left = p.size - _sq_front_used;
        if (acked >= left) {
            acked -= left;
            _sq_front_used = 0;
            _sq.pop_front();
        } else {
            _sq_front_used += acked;
            acked = 0;
        }
    }
}

void tcb::on_new_ack(uint32_t ackno, const inet::tcp_header& h, time_point now) {
    uint32_t acked = ackno - _snd_una;
    // RTT: from the echoed timestamp, or from the one timed segment (Karn's rule).
    if (_ts_on && h.options.timestamps && h.options.ts_ecr != 0) {
        rtt_sample(milliseconds(ts_now(now) - h.options.ts_ecr));
    } else if (_rtt_seq && seq_gt(ackno, *_rtt_seq)) {
        rtt_sample(std::chrono::duration_cast<micros>(now - _rtt_start));
        _rtt_seq.reset();
    }
    _snd_una = ackno;
    if (seq_lt(_snd_nxt, _snd_una)) _snd_nxt = _snd_una;
    trim_send_queue(ackno);
    // NewReno (RFC 6582).
    if (_in_recovery) {
        if (seq_ge(ackno, _recover)) {
            _in_recovery = false;
            _cwnd = std::min(_ssthresh, flight() + _snd_mss);
        } else {
            _retransmit_una = true;  // partial ACK: the next hole
            _cwnd = (_cwnd > acked ? _cwnd - acked : 0) + _snd_mss;
        }
    } else if (_cwnd < _ssthresh) {
        _cwnd += std::min<uint32_t>(acked, 2u * _snd_mss);  // slow start, ABC with L = 2
    } else {
        _cwnd_acc += acked;
        if (_cwnd_acc >= _cwnd) {
            _cwnd_acc -= _cwnd;
            _cwnd += _snd_mss;
        }
    }
    _dupacks = 0;
    update_window(h);
    arm_rto(now);
}

void tcb::on_duplicate_ack() {
    ++_dupacks;
    if (_in_recovery) {
        _cwnd += _snd_mss;  // each dup ACK means a segment left the network
        return;
    }
    if (_dupacks == 3 && seq_gt(_snd_una + 1, _recover)) {
        _ssthresh = std::max<uint32_t>(flight() / 2, 2u * _snd_mss);
        _cwnd = _ssthresh + 3u * _snd_mss;
        _recover = _snd_max;
        _in_recovery = true;
        _retransmit_una = true;
        ++_stats.fast_retransmits;
    }
}

void tcb::rtt_sample(micros r) {
    if (r.count() < 0) return;
    if (_srtt.count() == 0) {
        _srtt = r;
        _rttvar = r / 2;
    } else {
        micros diff = _srtt > r ? _srtt - r : r - _srtt;
        _rttvar = (_rttvar * 3 + diff) / 4;
        _srtt = (_srtt * 7 + r) / 8;
    }
    micros rto = _srtt + std::max(micros(1000), _rttvar * 4);
    _rto = std::clamp(rto, std::chrono::duration_cast<micros>(_cfg.rto_min),
                      std::chrono::duration_cast<micros>(_cfg.rto_max));
}

void tcb::process_data(const inet::tcp_header& h, std::span<const std::byte> payload,
                       time_point now) {
    if (payload.empty()) return;
    if (_state != state::established && _state != state::fin_wait_1 &&
        _state != state::fin_wait_2) {
        return;  // after the peer's FIN no data can follow
    }
    uint32_t seq = h.seq;
    if (seq_lt(seq, _rcv_nxt)) {  // trim what we already have
        uint32_t dup = _rcv_nxt - seq;
        if (dup >= payload.size()) {
            _ack_now = true;
            return;
        }
        payload = payload.subspan(dup);
        seq = _rcv_nxt;
    }
    uint32_t wnd = rx_window();
    if (seq == _rcv_nxt) {
        bool filled_hole = !_ooo.empty();
        append_in_order(payload.subspan(0, std::min<size_t>(payload.size(), wnd)));
        merge_reassembly();
        if (_peer_fin_seq && *_peer_fin_seq == _rcv_nxt) receive_fin();
        // Delayed ACK (RFC 1122 4.2.3.2, RFC 5681 4.2): at least every second full segment,
        // immediately when the segment fills (part of) a hole or holes remain.
        if (++_unacked_segments >= 2 || filled_hole || !_ooo.empty()) {
            _ack_now = true;
        } else if (_delack_at == time_point::max()) {
            _delack_at = now + _cfg.delayed_ack;
        }
        return;
    }
    // Out of order: keep it (bounded by the window) and send a duplicate ACK at once.
    _ack_now = true;
    uint32_t offset = seq - _rcv_nxt;
    if (offset >= wnd) return;
    size_t keep = std::min<size_t>(payload.size(), wnd - offset);
    if (_ooo_bytes + keep > _cfg.recv_buffer_bytes) return;
    auto [it, inserted] = _ooo.try_emplace(seq);
    if (!inserted && it->second.size() >= keep) return;
    _ooo_bytes += keep - it->second.size();
    it->second.assign(payload.begin(), payload.begin() + static_cast<ptrdiff_t>(keep));
    ++_stats.out_of_order;
}

void tcb::append_in_order(std::span<const std::byte> bytes) {
    if (_sink != nullptr && _rx_size == 0 && !bytes.empty()) {
        size_t took = std::min(_sink->take(bytes), bytes.size());
        _rcv_nxt += static_cast<uint32_t>(took);
        _stats.bytes_to_sink += took;
        bytes = bytes.subspan(took);
    }
    size_t n = bytes.size();
    SLUICE_ASSERT(n <= _rx.size() - _rx_size, "receive ring overrun");
    size_t tail = (_rx_head + _rx_size) % _rx.size();
    size_t first = std::min(n, _rx.size() - tail);
    std::memcpy(_rx.data() + tail, bytes.data(), first);
    std::memcpy(_rx.data(), bytes.data() + first, n - first);
    _rx_size += n;
    _rcv_nxt += static_cast<uint32_t>(n);
}

void tcb::merge_reassembly() {
    while (!_ooo.empty()) {
        auto it = _ooo.begin();
        uint32_t seq = it->first;
        if (seq_gt(seq, _rcv_nxt)) break;
        std::vector<std::byte> bytes = std::move(it->second);
        _ooo_bytes -= bytes.size();
        _ooo.erase(it);
        uint32_t skip = _rcv_nxt - seq;
        if (skip >= bytes.size()) continue;
        size_t n = std::min<size_t>(bytes.size() - skip, rx_window());
        append_in_order(std::span<const std::byte>(bytes).subspan(skip, n));
    }
}

void tcb::receive_fin() {
    if (_fin_received) return;
    _fin_received = true;
    _peer_fin_seq.reset();
    _rcv_nxt += 1;
    _ack_now = true;
    switch (_state) {
        case state::syn_received:
        case state::established:
            enter(state::close_wait);
            break;
        case state::fin_wait_1:
            // Our FIN is acknowledged already if process_ack moved us to FIN_WAIT_2.
            enter(state::closing);
            break;
        case state::fin_wait_2:
            enter(state::time_wait);
            break;
        default:
            break;
    }
}

}  // namespace sluice::net::tcp
