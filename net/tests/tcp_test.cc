// The TCP state machine against generated segment sequences (RFC 9293 cases), on a simulated
// clock: no packets, no threads. Each test plays the peer by hand.

#include <gtest/gtest.h>

#include <memory>
#include <vector>

#include "net/tcp.h"

namespace sluice::net::tcp {
namespace {

using namespace inet::tcp_flags;
using namespace std::chrono_literals;

struct peer_segment {
    uint32_t seq = 0;
    uint32_t ack = 0;
    uint8_t flags = 0;
    uint16_t window = 65535;
    std::vector<std::byte> data;
    inet::tcp_options options;
};

class tcb_test : public ::testing::Test {
  protected:
    static constexpr uint32_t iss = 1000;
    static constexpr uint32_t peer_iss = 50'000;

    config cfg() {
        config c;
        c.timestamps = false;  // most cases read clearer without; one test covers them
        c.window_scaling = false;
        c.recv_buffer_bytes = 65535;
        c.rto_initial = 1000ms;
        c.rto_min = 200ms;
        c.time_wait = 2000ms;
        c.keepalive = false;
        c.user_timeout = 10'000ms;
        return c;
    }

    void make(config c = {}, bool use_default = true) {
        if (use_default) c = cfg();
        t = std::make_unique<tcb>(c, iss, now);
    }

    void give(const peer_segment& s) {
        inet::tcp_header h;
        h.seq = s.seq;
        h.ack = s.ack;
        h.flags = s.flags;
        h.window = s.window;
        h.options = s.options;
        t->input(h, s.data, now);
    }

    std::vector<segment> drain() {
        std::vector<segment> out;
        while (auto s = t->output(now)) out.push_back(*s);
        return out;
    }

    void advance(std::chrono::milliseconds d) {
        now += d;
        while (t->deadline() <= now) {
            t->on_timer(now);
            if (t->deadline() <= now && t->finished()) break;
        }
    }

    // Passive open with config `c` to ESTABLISHED (the peer's SYN carries `o`).
    void establish_with(config c, inet::tcp_options o = {}) {
        make(c, false);
        t->accept_syn(peer_syn(o), now);
        drain();
        give({.seq = peer_iss + 1, .ack = iss + 1, .flags = ack,
              .options = {.timestamps = o.timestamps, .ts_val = o.ts_val + 1}});
    }

    inet::tcp_header peer_syn(inet::tcp_options o = {}) {
        inet::tcp_header syn;
        syn.seq = peer_iss;
        syn.flags = inet::tcp_flags::syn;
        syn.window = 65535;
        syn.options = o;
        return syn;
    }

    // Passive open to ESTABLISHED: peer SYN, our SYN-ACK, peer ACK.
    void establish_passive() {
        make();
        inet::tcp_header syn;
        syn.seq = peer_iss;
        syn.flags = inet::tcp_flags::syn;
        syn.window = 65535;
        syn.options.mss = 1460;
        t->accept_syn(syn, now);
        auto out = drain();
        ASSERT_EQ(out.size(), 1u);
        ASSERT_EQ(out[0].flags, inet::tcp_flags::syn | ack);
        ASSERT_EQ(out[0].ack, peer_iss + 1);
        give({.seq = peer_iss + 1, .ack = iss + 1, .flags = ack});
        ASSERT_EQ(t->current_state(), state::established);
    }

    void queue(size_t n) {
        auto bytes = std::make_shared<std::vector<std::byte>>(n, std::byte{'x'});
        t->send({bytes->data(), bytes->size(), bytes});
    }

    tcp::time_point now = tcp::clock::now();
    std::unique_ptr<tcb> t;
};

TEST_F(tcb_test, active_open_sends_syn_with_options_and_completes_on_syn_ack) {
    config c = cfg();
    c.window_scaling = true;
    c.timestamps = true;
    c.recv_buffer_bytes = 1 << 20;
    make(c, false);
    t->connect(now);
    auto out = drain();
    ASSERT_EQ(out.size(), 1u);
    EXPECT_EQ(out[0].flags, syn);
    EXPECT_EQ(out[0].seq, iss);
    EXPECT_EQ(out[0].options.mss, 1460);
    EXPECT_GE(out[0].options.window_scale, 4);  // 1 MiB needs a shift of at least 4
    EXPECT_TRUE(out[0].options.timestamps);
    inet::tcp_options o;
    o.mss = 1400;
    o.window_scale = 7;
    o.timestamps = true;
    o.ts_val = 777;
    o.ts_ecr = out[0].options.ts_val;
    give({.seq = peer_iss, .ack = iss + 1, .flags = syn | ack, .window = 1000, .options = o});
    EXPECT_EQ(t->current_state(), state::established);
    EXPECT_EQ(t->send_mss(), 1400 - 12);  // timestamps take 12 bytes of every segment
    EXPECT_EQ(t->peer_window(), 1000u);   // a SYN's window is never scaled
    out = drain();
    ASSERT_EQ(out.size(), 1u);
    EXPECT_EQ(out[0].flags, ack);
    EXPECT_EQ(out[0].ack, peer_iss + 1);
    EXPECT_EQ(out[0].options.ts_ecr, 777u);
    // Later windows are scaled by the peer's shift.
    give({.seq = peer_iss + 1, .ack = iss + 1, .flags = ack, .window = 100,
          .options = {.timestamps = true, .ts_val = 778}});
    EXPECT_EQ(t->peer_window(), 100u << 7);
}

TEST_F(tcb_test, syn_is_retransmitted_with_backoff_and_gives_up) {
    make();
    t->connect(now);
    ASSERT_EQ(drain().size(), 1u);
    int sends = 1;
    auto rto = 1000ms;
    for (int i = 0; i < 10 && !t->finished(); ++i) {
        advance(rto);
        auto out = drain();
        if (t->finished()) break;
        ASSERT_EQ(out.size(), 1u);
        EXPECT_EQ(out[0].flags, syn);
        ++sends;
        rto *= 2;
    }
    EXPECT_TRUE(t->finished());
    EXPECT_EQ(t->reason(), close_reason::timed_out);
    EXPECT_EQ(sends, cfg().syn_retries + 1);
}

TEST_F(tcb_test, rst_answer_to_syn_is_connection_refused) {
    make();
    t->connect(now);
    drain();
    give({.seq = 0, .ack = iss + 1, .flags = rst | ack});
    EXPECT_TRUE(t->finished());
    EXPECT_EQ(t->reason(), close_reason::refused);
}

TEST_F(tcb_test, syn_ack_with_a_bad_ack_gets_a_reset_and_is_ignored) {
    make();
    t->connect(now);
    drain();
    give({.seq = peer_iss, .ack = iss + 500, .flags = syn | ack});
    EXPECT_EQ(t->current_state(), state::syn_sent);
    auto out = drain();
    ASSERT_EQ(out.size(), 1u);
    EXPECT_EQ(out[0].flags, rst);
    EXPECT_EQ(out[0].seq, iss + 500);  // <SEQ=SEG.ACK><CTL=RST>
}

TEST_F(tcb_test, simultaneous_open_goes_through_syn_received) {
    make();
    t->connect(now);
    drain();
    give({.seq = peer_iss, .flags = syn, .options = {.mss = 1460}});
    EXPECT_EQ(t->current_state(), state::syn_received);
    auto out = drain();
    ASSERT_EQ(out.size(), 1u);
    EXPECT_EQ(out[0].flags, syn | ack);
    EXPECT_EQ(out[0].seq, iss);
    EXPECT_EQ(out[0].ack, peer_iss + 1);
    give({.seq = peer_iss + 1, .ack = iss + 1, .flags = syn | ack});  // peer's SYN,ACK
    // A SYN in the window of a synchronised connection is challenged, not obeyed; the ACK of
    // our SYN still arrives with the next segment.
    give({.seq = peer_iss + 1, .ack = iss + 1, .flags = ack});
    EXPECT_EQ(t->current_state(), state::established);
}

TEST_F(tcb_test, data_is_delivered_in_order_and_acknowledged_with_delay) {
    establish_passive();
    std::vector<std::byte> a(100, std::byte{'a'});
    give({.seq = peer_iss + 1, .ack = iss + 1, .flags = ack | psh, .data = a});
    EXPECT_EQ(t->readable(), 100u);
    EXPECT_TRUE(drain().empty());  // one segment: the ACK waits for the delayed-ACK timer
    advance(40ms);
    auto out = drain();
    ASSERT_EQ(out.size(), 1u);
    EXPECT_EQ(out[0].ack, peer_iss + 101);
    // Two segments: acknowledged at once.
    give({.seq = peer_iss + 101, .ack = iss + 1, .flags = ack, .data = a});
    give({.seq = peer_iss + 201, .ack = iss + 1, .flags = ack, .data = a});
    out = drain();
    ASSERT_EQ(out.size(), 1u);
    EXPECT_EQ(out[0].ack, peer_iss + 301);
    std::vector<std::byte> got(300);
    EXPECT_EQ(t->read(got), 300u);
}

TEST_F(tcb_test, out_of_order_segments_are_reassembled_and_dup_acked) {
    establish_passive();
    std::vector<std::byte> first(100, std::byte{'1'});
    std::vector<std::byte> second(100, std::byte{'2'});
    give({.seq = peer_iss + 101, .ack = iss + 1, .flags = ack, .data = second});
    EXPECT_EQ(t->readable(), 0u);
    auto out = drain();
    ASSERT_EQ(out.size(), 1u);
    EXPECT_EQ(out[0].ack, peer_iss + 1);  // duplicate ACK at once: there is a hole
    give({.seq = peer_iss + 1, .ack = iss + 1, .flags = ack, .data = first});
    EXPECT_EQ(t->readable(), 200u);
    std::vector<std::byte> got(200);
    t->read(got);
    EXPECT_EQ(got[0], std::byte{'1'});
    EXPECT_EQ(got[150], std::byte{'2'});
    out = drain();
    ASSERT_FALSE(out.empty());
    EXPECT_EQ(out.back().ack, peer_iss + 201);
}

TEST_F(tcb_test, duplicate_and_overlapping_data_is_trimmed) {
    establish_passive();
    std::vector<std::byte> a(100, std::byte{'a'});
    give({.seq = peer_iss + 1, .ack = iss + 1, .flags = ack, .data = a});
    std::vector<std::byte> b(100, std::byte{'b'});
    give({.seq = peer_iss + 51, .ack = iss + 1, .flags = ack, .data = b});  // 50 old, 50 new
    EXPECT_EQ(t->readable(), 150u);
    give({.seq = peer_iss + 1, .ack = iss + 1, .flags = ack, .data = a});  // all old
    EXPECT_EQ(t->readable(), 150u);
    EXPECT_EQ(t->rcv_nxt(), peer_iss + 151);
}

TEST_F(tcb_test, out_of_window_segment_is_dropped_and_answered_with_an_ack) {
    establish_passive();
    std::vector<std::byte> a(10, std::byte{'a'});
    give({.seq = peer_iss + 1 + 200'000, .ack = iss + 1, .flags = ack, .data = a});
    EXPECT_EQ(t->readable(), 0u);
    EXPECT_EQ(t->stats().dropped_out_of_window, 1u);
    auto out = drain();
    ASSERT_EQ(out.size(), 1u);
    EXPECT_EQ(out[0].ack, peer_iss + 1);
}

TEST_F(tcb_test, ack_of_unsent_data_is_ignored) {
    establish_passive();
    queue(100);
    drain();
    give({.seq = peer_iss + 1, .ack = iss + 1 + 5000, .flags = ack});
    EXPECT_EQ(t->snd_una(), iss + 1);
    EXPECT_EQ(t->send_queued(), 100u);
}

TEST_F(tcb_test, rst_with_exact_sequence_resets_other_in_window_rst_is_challenged) {
    establish_passive();
    give({.seq = peer_iss + 10, .flags = rst});
    EXPECT_EQ(t->current_state(), state::established);
    EXPECT_EQ(t->stats().challenge_acks, 1u);
    auto out = drain();
    ASSERT_EQ(out.size(), 1u);
    EXPECT_EQ(out[0].flags, ack);
    give({.seq = peer_iss + 1, .flags = rst});
    EXPECT_TRUE(t->finished());
    EXPECT_EQ(t->reason(), close_reason::reset);
}

TEST_F(tcb_test, rst_out_of_window_is_ignored_silently) {
    establish_passive();
    give({.seq = peer_iss + 1 + 1'000'000, .flags = rst});
    EXPECT_EQ(t->current_state(), state::established);
    EXPECT_TRUE(drain().empty());
}

TEST_F(tcb_test, rst_is_honoured_in_each_synchronised_state) {
    for (state target : {state::syn_received, state::established, state::fin_wait_1,
                         state::fin_wait_2, state::close_wait, state::closing, state::last_ack}) {
        SCOPED_TRACE(to_string(target));
        make();
        t->accept_syn(peer_syn(), now);
        drain();
        uint32_t rcv = peer_iss + 1;
        if (target != state::syn_received) {
            give({.seq = rcv, .ack = iss + 1, .flags = ack});
        }
        if (target == state::fin_wait_1 || target == state::fin_wait_2 ||
            target == state::closing) {
            t->close();
            drain();  // our FIN: seq iss+1
            if (target == state::fin_wait_2) give({.seq = rcv, .ack = iss + 2, .flags = ack});
            if (target == state::closing) {
                give({.seq = rcv, .ack = iss + 1, .flags = fin | ack});
                rcv += 1;
            }
        }
        if (target == state::close_wait || target == state::last_ack) {
            give({.seq = rcv, .ack = iss + 1, .flags = fin | ack});
            rcv += 1;
            if (target == state::last_ack) {
                t->close();
                drain();
            }
        }
        ASSERT_EQ(t->current_state(), target);
        give({.seq = rcv, .flags = rst});
        EXPECT_TRUE(t->finished());
    }
}

TEST_F(tcb_test, syn_in_established_state_gets_a_challenge_ack) {
    establish_passive();
    give({.seq = peer_iss + 1, .flags = syn});
    EXPECT_EQ(t->current_state(), state::established);
    EXPECT_EQ(t->stats().challenge_acks, 1u);
    EXPECT_EQ(drain().size(), 1u);
}

TEST_F(tcb_test, active_close_goes_through_fin_wait_and_time_wait) {
    establish_passive();
    t->close();
    auto out = drain();
    ASSERT_EQ(out.size(), 1u);
    EXPECT_TRUE(out[0].flags & fin);
    EXPECT_EQ(t->current_state(), state::fin_wait_1);
    give({.seq = peer_iss + 1, .ack = iss + 2, .flags = ack});
    EXPECT_EQ(t->current_state(), state::fin_wait_2);
    give({.seq = peer_iss + 1, .ack = iss + 2, .flags = fin | ack});
    EXPECT_EQ(t->current_state(), state::time_wait);
    out = drain();
    ASSERT_EQ(out.size(), 1u);
    EXPECT_EQ(out[0].ack, peer_iss + 2);
    advance(1000ms);
    EXPECT_EQ(t->current_state(), state::time_wait);
    advance(1001ms);
    EXPECT_TRUE(t->finished());
    EXPECT_EQ(t->reason(), close_reason::normal);
}

TEST_F(tcb_test, simultaneous_close_goes_through_closing) {
    establish_passive();
    t->close();
    drain();
    give({.seq = peer_iss + 1, .ack = iss + 1, .flags = fin | ack});  // FIN crossing ours
    EXPECT_EQ(t->current_state(), state::closing);
    drain();
    give({.seq = peer_iss + 2, .ack = iss + 2, .flags = ack});
    EXPECT_EQ(t->current_state(), state::time_wait);
}

TEST_F(tcb_test, passive_close_goes_through_close_wait_and_last_ack) {
    establish_passive();
    give({.seq = peer_iss + 1, .ack = iss + 1, .flags = fin | ack});
    EXPECT_EQ(t->current_state(), state::close_wait);
    EXPECT_TRUE(t->at_eof());
    drain();
    queue(10);
    t->close();
    auto out = drain();
    ASSERT_EQ(out.size(), 1u);  // the data and the FIN in one segment
    EXPECT_EQ(out[0].payload_bytes, 10u);
    EXPECT_TRUE(out[0].flags & fin);
    EXPECT_EQ(t->current_state(), state::last_ack);
    give({.seq = peer_iss + 2, .ack = iss + 12, .flags = ack});
    EXPECT_TRUE(t->finished());
}

TEST_F(tcb_test, lost_fin_is_retransmitted) {
    establish_passive();
    t->close();
    ASSERT_EQ(drain().size(), 1u);
    advance(1000ms);
    auto out = drain();
    ASSERT_EQ(out.size(), 1u);
    EXPECT_TRUE(out[0].flags & fin);
    EXPECT_EQ(out[0].seq, iss + 1);
}

TEST_F(tcb_test, fin_beyond_a_hole_waits_for_the_missing_data) {
    establish_passive();
    std::vector<std::byte> a(100, std::byte{'a'});
    give({.seq = peer_iss + 101, .ack = iss + 1, .flags = fin | ack, .data = a});
    EXPECT_EQ(t->current_state(), state::established);
    give({.seq = peer_iss + 1, .ack = iss + 1, .flags = ack, .data = a});
    EXPECT_EQ(t->current_state(), state::close_wait);
    EXPECT_EQ(t->rcv_nxt(), peer_iss + 202);
}

TEST_F(tcb_test, rto_retransmits_from_snd_una_and_collapses_cwnd) {
    establish_passive();
    queue(10'000);
    auto out = drain();
    ASSERT_GE(out.size(), 5u);
    uint32_t cwnd_before = t->cwnd();
    advance(1000ms);
    out = drain();
    ASSERT_EQ(out.size(), 1u);  // cwnd is one segment after a timeout
    EXPECT_EQ(out[0].seq, iss + 1);
    EXPECT_LT(t->cwnd(), cwnd_before);
    EXPECT_EQ(t->stats().rto_expiries, 1u);
    EXPECT_EQ(t->rto(), 2000ms);  // backed off
}

TEST_F(tcb_test, pure_ack_after_a_timeout_carries_the_highest_sequence_sent) {
    // Both directions lose their ACKs and back off at once: each side must still accept the
    // other's ACKs, so they must not be numbered below what the peer already received.
    establish_passive();
    queue(4 * 1460);
    auto out = drain();
    uint32_t highest = out.back().seq + out.back().payload_bytes;
    advance(1000ms);  // RTO: snd_nxt goes back to snd_una
    out = drain();
    ASSERT_EQ(out.size(), 1u);
    EXPECT_EQ(out[0].seq, iss + 1);
    std::vector<std::byte> a(100, std::byte{'a'});
    give({.seq = peer_iss + 1, .ack = iss + 1, .flags = ack, .data = a});
    give({.seq = peer_iss + 101, .ack = iss + 1, .flags = ack, .data = a});
    out = drain();
    ASSERT_EQ(out.size(), 1u);
    EXPECT_EQ(out[0].payload_bytes, 0u);
    EXPECT_EQ(out[0].seq, highest);
    EXPECT_EQ(out[0].ack, peer_iss + 201);
}

TEST_F(tcb_test, three_duplicate_acks_trigger_fast_retransmit_and_recovery) {
    establish_passive();
    queue(20 * 1460);
    auto out = drain();
    ASSERT_GE(out.size(), 8u);
    uint32_t mss = t->send_mss();
    // The first segment is lost: the peer acknowledges nothing new, three times.
    for (int i = 0; i < 3; ++i) give({.seq = peer_iss + 1, .ack = iss + 1, .flags = ack});
    EXPECT_EQ(t->stats().fast_retransmits, 1u);
    out = drain();
    ASSERT_FALSE(out.empty());
    EXPECT_EQ(out[0].seq, iss + 1);  // the hole, at once, no timer
    EXPECT_EQ(out[0].payload_bytes, mss);
    // A full ACK ends recovery with cwnd at ssthresh.
    give({.seq = peer_iss + 1, .ack = t->snd_nxt(), .flags = ack});
    EXPECT_LE(t->cwnd(), 10u * mss);
}

TEST_F(tcb_test, zero_window_is_probed_and_reopens) {
    establish_passive();
    give({.seq = peer_iss + 1, .ack = iss + 1, .flags = ack, .window = 0});
    queue(1000);
    EXPECT_TRUE(drain().empty());
    advance(1000ms);  // persist timer
    auto out = drain();
    ASSERT_EQ(out.size(), 1u);
    EXPECT_EQ(out[0].payload_bytes, 1u);  // a one-byte probe
    // Still zero: the probe is not acknowledged; it is sent again after a backed-off timer.
    give({.seq = peer_iss + 1, .ack = iss + 1, .flags = ack, .window = 0});
    advance(2000ms);
    out = drain();
    ASSERT_EQ(out.size(), 1u);
    EXPECT_EQ(out[0].payload_bytes, 1u);
    EXPECT_EQ(t->current_state(), state::established);  // probing never gives up on a live peer
    // The window opens: everything flows.
    give({.seq = peer_iss + 1, .ack = iss + 2, .flags = ack, .window = 65535});
    out = drain();
    uint32_t sent = 0;
    for (auto& s : out) sent += s.payload_bytes;
    EXPECT_EQ(sent, 999u);
}

TEST_F(tcb_test, receive_window_shrinks_as_the_buffer_fills_and_reopens_after_read) {
    config c = cfg();
    c.recv_buffer_bytes = 4000;
    establish_with(c);
    std::vector<std::byte> a(1000, std::byte{'a'});
    for (int i = 0; i < 4; ++i) {
        give({.seq = peer_iss + 1 + 1000u * i, .ack = iss + 1, .flags = ack, .data = a});
    }
    auto out = drain();
    ASSERT_FALSE(out.empty());
    EXPECT_EQ(out.back().window, 0);
    // Past the window: refused.
    give({.seq = peer_iss + 4001, .ack = iss + 1, .flags = ack, .data = a});
    EXPECT_EQ(t->readable(), 4000u);
    std::vector<std::byte> sink(4000);
    t->read(sink);
    out = drain();  // window update
    ASSERT_EQ(out.size(), 1u);
    EXPECT_EQ(out[0].window, 4000);
}

TEST_F(tcb_test, vanished_peer_times_out_after_the_user_timeout) {
    establish_passive();
    queue(5000);
    drain();
    for (int i = 0; i < 20 && !t->finished(); ++i) {
        advance(t->rto());
        drain();
    }
    EXPECT_TRUE(t->finished());
    EXPECT_EQ(t->reason(), close_reason::timed_out);
}

TEST_F(tcb_test, keepalive_probes_an_idle_peer_then_gives_up) {
    config c = cfg();
    c.keepalive = true;
    c.keepalive_idle = 5000ms;
    c.keepalive_interval = 1000ms;
    c.keepalive_probes = 3;
    establish_with(c);
    advance(5000ms);
    auto out = drain();
    ASSERT_EQ(out.size(), 1u);
    EXPECT_EQ(out[0].seq, iss);  // snd_una - 1: makes the peer answer with an ACK
    // An answer resets the count.
    give({.seq = peer_iss + 1, .ack = iss + 1, .flags = ack});
    EXPECT_EQ(t->current_state(), state::established);
    for (int i = 0; i < 10 && !t->finished(); ++i) {
        advance(1000ms);
        drain();
    }
    EXPECT_TRUE(t->finished());
    EXPECT_EQ(t->reason(), close_reason::timed_out);
}

TEST_F(tcb_test, paws_drops_a_segment_with_an_old_timestamp) {
    config c = cfg();
    c.timestamps = true;
    establish_with(c, {.timestamps = true, .ts_val = 1000});  // the ACK carries 1001
    std::vector<std::byte> a(10, std::byte{'a'});
    give({.seq = peer_iss + 1, .ack = iss + 1, .flags = ack, .data = a,
          .options = {.timestamps = true, .ts_val = 500}});
    EXPECT_EQ(t->readable(), 0u);
    give({.seq = peer_iss + 1, .ack = iss + 1, .flags = ack, .data = a,
          .options = {.timestamps = true, .ts_val = 1002}});
    EXPECT_EQ(t->readable(), 10u);
}

TEST_F(tcb_test, send_buffer_is_bounded) {
    config c = cfg();
    c.send_buffer_bytes = 10'000;
    establish_with(c);
    EXPECT_EQ(t->send_space(), 10'000u);
    queue(10'000);
    EXPECT_EQ(t->send_space(), 0u);
    drain();
    give({.seq = peer_iss + 1, .ack = iss + 1 + 4000, .flags = ack});
    EXPECT_EQ(t->send_space(), 4000u);
}

TEST_F(tcb_test, sequence_numbers_wrap_around) {
    make();
    t = std::make_unique<tcb>(cfg(), 0xffffff00u, now);
    inet::tcp_header syn;
    syn.seq = 0xfffffff0u;
    syn.flags = inet::tcp_flags::syn;
    syn.window = 65535;
    t->accept_syn(syn, now);
    drain();
    give({.seq = 0xfffffff1u, .ack = 0xffffff01u, .flags = ack});
    ASSERT_EQ(t->current_state(), state::established);
    std::vector<std::byte> a(100, std::byte{'w'});
    give({.seq = 0xfffffff1u, .ack = 0xffffff01u, .flags = ack, .data = a});
    EXPECT_EQ(t->readable(), 100u);
    EXPECT_EQ(t->rcv_nxt(), 0xfffffff1u + 100u);  // wrapped past zero
    queue(1000);
    drain();
    give({.seq = t->rcv_nxt(), .ack = 0xffffff01u + 1000u, .flags = ack});
    EXPECT_EQ(t->send_queued(), 0u);
}

}  // namespace
}  // namespace sluice::net::tcp
