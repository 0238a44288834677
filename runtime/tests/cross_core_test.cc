// The SPSC ring and the reactors' cross-core messaging built on it: wrap-around, a full ring,
// batches, and a stress run across real threads with every message counted and per-sender
// order checked.

#include <gtest/gtest.h>

#include <atomic>
#include <functional>
#include <memory>
#include <thread>
#include <vector>

#include "runtime/reactor.h"
#include "runtime/spsc_ring.h"

using namespace sluice;
using namespace std::chrono_literals;
using runtime::spsc_ring;

TEST(spsc_ring, wraps_around_many_times_in_order) {
    spsc_ring<int> ring(4);
    int next_in = 0, next_out = 0;
    for (int round = 0; round < 100; ++round) {
        for (int i = 0; i < 3; ++i) {
            int v = next_in;
            ASSERT_TRUE(ring.try_push(v));
            ++next_in;
        }
        ring.pop_batch([&](int&& v) { EXPECT_EQ(v, next_out++); });
    }
    EXPECT_EQ(next_out, 300);
    EXPECT_TRUE(ring.empty());
}

TEST(spsc_ring, a_full_ring_refuses_and_keeps_the_value_until_a_slot_frees) {
    spsc_ring<std::unique_ptr<int>> ring(4);
    for (int i = 0; i < 4; ++i) {
        auto v = std::make_unique<int>(i);
        ASSERT_TRUE(ring.try_push(v));
        EXPECT_EQ(v, nullptr);  // moved in
    }
    auto extra = std::make_unique<int>(4);
    EXPECT_FALSE(ring.try_push(extra));
    ASSERT_NE(extra, nullptr);  // untouched when refused
    EXPECT_EQ(*extra, 4);
    EXPECT_EQ(ring.pop_batch([](std::unique_ptr<int>&& v) { EXPECT_EQ(*v, 0); }, 1), 1u);
    EXPECT_TRUE(ring.try_push(extra));
    std::vector<int> rest;
    ring.pop_batch([&](std::unique_ptr<int>&& v) { rest.push_back(*v); });
    EXPECT_EQ(rest, (std::vector<int>{1, 2, 3, 4}));
}

TEST(spsc_ring, pop_batch_takes_at_most_max_and_nothing_from_an_empty_ring) {
    spsc_ring<int> ring(8);
    EXPECT_EQ(ring.pop_batch([](int&&) { FAIL(); }), 0u);
    for (int i = 0; i < 7; ++i) ASSERT_TRUE(ring.try_push(i));
    std::vector<int> got;
    EXPECT_EQ(ring.pop_batch([&](int&& v) { got.push_back(v); }, 5), 5u);
    EXPECT_EQ(ring.pop_batch([&](int&& v) { got.push_back(v); }, 5), 2u);
    EXPECT_EQ(got, (std::vector<int>{0, 1, 2, 3, 4, 5, 6}));
}

TEST(spsc_ring, two_threads_pass_a_million_values_in_order) {
    constexpr uint64_t count = 1'000'000;
    spsc_ring<uint64_t> ring(64);
    std::thread producer([&] {
        for (uint64_t i = 0; i < count;) {
            uint64_t v = i;
            if (ring.try_push(v)) ++i;
        }
    });
    uint64_t expect = 0, sum = 0;
    while (expect < count) {
        ring.pop_batch([&](uint64_t&& v) {
            EXPECT_EQ(v, expect);
            ++expect;
            sum += v;
        });
    }
    producer.join();
    EXPECT_EQ(sum, count * (count - 1) / 2);
}

namespace {

// `n` reactors on their own threads, joined to one group with small rings (so outboxes fill).
struct cores {
    explicit cores(unsigned n, size_t ring_entries) : group(n, ring_entries), reactors(n) {
        std::atomic<unsigned> ready{0};
        for (unsigned i = 0; i < n; ++i) {
            threads.emplace_back([this, i, &ready] {
                auto r = runtime::reactor::create({.core = i});
                ASSERT_TRUE(r);
                (*r)->join(group);
                reactors[i] = r->get();
                ++ready;
                (*r)->run();
                // Stay alive until every core stopped: others may still post (never run).
                while (stopped.load() < reactors.size()) std::this_thread::sleep_for(1ms);
            });
            while (ready.load() <= i) std::this_thread::yield();
        }
    }
    ~cores() {
        for (auto* r : reactors) r->post([this, r] {
            r->stop();
            ++stopped;
        });
        for (auto& t : threads) t.join();
    }
    runtime::reactor_group group;
    std::vector<runtime::reactor*> reactors;
    std::vector<std::thread> threads;
    std::atomic<unsigned> stopped{0};
};

}  // namespace

TEST(cross_core, every_message_arrives_once_in_sender_order_even_through_full_rings) {
    constexpr unsigned n = 3;
    constexpr int per_pair = 20'000;
    cores c(n, 8);
    // received[to][from]: the next sequence number expected from `from` (touched by `to` only).
    std::vector<std::vector<int>> received(n, std::vector<int>(n, 0));
    std::atomic<int> out_of_order{0}, delivered{0}, waited{0};
    std::atomic<unsigned> senders_done{0};
    for (unsigned from = 0; from < n; ++from) {
        c.reactors[from]->post([&, from] {
            auto* self = runtime::reactor::local();
            for (int seq = 0; seq < per_pair; ++seq) {
                for (unsigned to = 0; to < n; ++to) {
                    if (to == from) continue;
                    c.reactors[to]->post([&, from, to, seq] {
                        if (received[to][from] != seq) ++out_of_order;
                        received[to][from] = seq + 1;
                        ++delivered;
                    });
                }
            }
            // The counters are read on this thread once its loop has flushed the outboxes.
            self->post([&, self] {
                waited += static_cast<int>(self->outbox_waits_total());
                ++senders_done;
            });
        });
    }
    int total = static_cast<int>(n * (n - 1)) * per_pair;
    for (int i = 0; i < 60'000 && delivered.load() < total; ++i) std::this_thread::sleep_for(1ms);
    EXPECT_EQ(delivered.load(), total);
    EXPECT_EQ(out_of_order.load(), 0);
    for (int i = 0; i < 10'000 && senders_done.load() < n; ++i) std::this_thread::sleep_for(1ms);
    // Rings of 8 cannot take 20,000 messages at once: the outboxes were used, and drained.
    EXPECT_GT(waited.load(), 0);
}

TEST(cross_core, a_post_never_runs_inside_the_call_and_a_sleeping_core_is_woken) {
    cores c(2, 64);
    std::atomic<int> result{0};
    std::atomic<bool> returned{false};
    c.reactors[0]->post([&] {
        // To another core, and to this very core: neither runs before post() returns.
        c.reactors[1]->post([&] {
            c.reactors[0]->post([&] { result = returned ? 1 : -1; });
        });
        c.reactors[0]->post([&] {
            if (!returned) result = -2;
        });
        returned = true;
    });
    // Core 1 sleeps in the kernel (nothing else to do) when the ring message arrives; only the
    // wake-up gets it there.
    for (int i = 0; i < 60'000 && result.load() == 0; ++i) std::this_thread::sleep_for(1ms);
    EXPECT_EQ(result.load(), 1);
    std::atomic<uint64_t> sent{0};
    std::atomic<bool> read{false};
    c.reactors[0]->post([&] {
        sent = runtime::reactor::local()->ring_sent_total();
        read = true;
    });
    for (int i = 0; i < 10'000 && !read.load(); ++i) std::this_thread::sleep_for(1ms);
    EXPECT_GE(sent.load(), 1u) << "core 0 reached core 1 through its ring";
}
