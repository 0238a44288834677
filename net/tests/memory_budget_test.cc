// The per-core memory budget (net/memory_budget.h): what is charged, who is made to wait, and
// that reading resumes as memory returns.

#include "net/memory_budget.h"

#include <cstring>
#include <thread>

#include "net/frame_reader.h"
#include "net/tests/test_util.h"

using namespace sluice;
using namespace sluice::net;
using namespace sluice::net::testing;
using namespace std::chrono_literals;

namespace {

constexpr size_t kib = 1024;
constexpr size_t mib = 1024 * kib;

std::vector<std::byte> to_vector(const frame& f) {
    return {f.data(), f.data() + f.size()};
}

}  // namespace

class memory_budget_test : public net_fixture {};

TEST_F(memory_budget_test, admits_light_connections_always_and_heavy_ones_under_their_share) {
    auto b = std::make_shared<memory_budget>(*reactor, 1 * mib);
    EXPECT_EQ(b->receive_limit_bytes(), 768 * kib);
    EXPECT_EQ(b->send_limit_bytes(), 256 * kib);
    EXPECT_TRUE(b->admits(0, 0, 512 * kib));
    b->charge(700 * kib);
    // Heavy: admitted while the new chunk fits the requests' share.
    EXPECT_TRUE(b->admits(256 * kib, 0, 68 * kib));
    EXPECT_FALSE(b->admits(256 * kib, 0, 69 * kib));
    b->charge(100 * kib);
    EXPECT_FALSE(b->admits(256 * kib, 0, 100 * kib));
    EXPECT_FALSE(b->admits(256 * kib, 0, 0));  // over the share, a heavy holder may not read on
    // Light (at most light_bytes once admitted): always, even over the limit.
    EXPECT_TRUE(b->admits(0, 0, memory_budget::light_bytes));
    EXPECT_TRUE(b->admits(64 * kib, 0, 64 * kib));
    EXPECT_FALSE(b->admits(64 * kib, 0, 64 * kib + 1));
    EXPECT_EQ(b->peak_bytes(), 800 * kib);
    b->release(800 * kib);
    // Queued answers over their quarter: a connection whose own answers pile up stops reading;
    // one that holds requests only is not held back by them.
    b->charge(300 * kib, true);
    EXPECT_EQ(b->send_used_bytes(), 300 * kib);
    EXPECT_FALSE(b->admits(400 * kib, 200 * kib, 0));
    EXPECT_TRUE(b->admits(200 * kib, 0, 512 * kib));
    b->release(300 * kib, true);
    EXPECT_EQ(b->used_bytes(), 0u);
    EXPECT_EQ(b->send_used_bytes(), 0u);

    auto unlimited = std::make_shared<memory_budget>(*reactor, 0);
    unlimited->charge(100 * mib);
    EXPECT_TRUE(unlimited->admits(10 * mib, 10 * mib, 10 * mib));
    unlimited->release(100 * mib);
}

TEST_F(memory_budget_test, accounts_release_what_they_hold_from_any_thread) {
    auto b = std::make_shared<memory_budget>(*reactor, 4 * mib);
    auto a = std::make_shared<memory_account>(b);
    a->charge(3 * mib);
    a->charge_send(1 * mib);
    a->release_send(1 * mib);
    EXPECT_EQ(a->held_bytes(), 3 * mib);
    EXPECT_EQ(b->used_bytes(), 3 * mib);
    std::thread t([a] { a->release(2 * mib); });
    t.join();
    EXPECT_EQ(b->used_bytes(), 1 * mib);
    a.reset();  // the rest is given back with the account
    EXPECT_EQ(b->used_bytes(), 0u);
}

// A connection that holds large requests stops being read once its core is over budget; a
// connection sending small requests is read all along; releasing the held requests lets the
// first one finish, and everything it sent arrives intact and in order.
TEST_F(memory_budget_test, heavy_connection_waits_light_one_is_served_both_resume) {
    auto budget = std::make_shared<memory_budget>(*reactor, 1 * mib);
    listen_options opts;
    opts.connection.memory = budget;
    auto addr = start_server(opts, nullptr);  // keeps every frame it receives (holds memory)
    auto& heavy = connect(addr);
    constexpr int big_frames = 8;
    constexpr size_t big = 400 * kib;
    for (int i = 0; i < big_frames; ++i) heavy.conn->send(one_piece(framed(pattern(big, i))));
    ASSERT_TRUE(run_until(*reactor, [&] { return budget->waiting() > 0; }));
    ASSERT_EQ(servers.size(), 1u);
    endpoint& heavy_server = *servers[0];
    for (int i = 0; i < 50; ++i) reactor->run_once(1ms);
    size_t first_round = heavy_server.frames.size();
    EXPECT_GE(first_round, 1u);
    EXPECT_LT(first_round, static_cast<size_t>(big_frames));
    EXPECT_LE(budget->used_bytes(), budget->limit_bytes() + big + memory_budget::light_bytes);
    EXPECT_GE(budget->waits_total(), 1u);

    auto& light = connect(addr);
    for (int i = 0; i < 20; ++i) light.conn->send(one_piece(framed(pattern(100, 1000 + i))));
    ASSERT_TRUE(run_until(*reactor, [&] {
        return servers.size() == 2 && servers[1]->frames.size() == 20;
    }));
    EXPECT_EQ(heavy_server.frames.size(), first_round);  // still waiting
    EXPECT_EQ(to_vector(servers[1]->frames[19]), pattern(100, 1019));
    servers[1]->frames.clear();

    // Memory returns (the handler finishes with the requests): reading resumes until done.
    std::vector<std::vector<std::byte>> seen;
    ASSERT_TRUE(run_until(*reactor, [&] {
        for (auto& f : heavy_server.frames) seen.push_back(to_vector(f));
        heavy_server.frames.clear();
        return seen.size() == static_cast<size_t>(big_frames);
    }));
    for (int i = 0; i < big_frames; ++i) EXPECT_EQ(seen[i], pattern(big, i)) << "frame " << i;
    EXPECT_LE(budget->peak_bytes(), budget->limit_bytes() + big + 2 * memory_budget::light_bytes);
    EXPECT_FALSE(heavy.closed());
    EXPECT_FALSE(light.closed());
}

// In-memory answers waiting in the send queue are charged until the socket takes them; file
// regions are not (they hold no memory).
TEST_F(memory_budget_test, queued_answers_are_charged_until_sent) {
    auto budget = std::make_shared<memory_budget>(*reactor, 64 * mib);
    listen_options opts;
    opts.connection.memory = budget;
    auto addr = start_server(opts, [](endpoint& ep, std::span<frame>) {
        ep.conn->send(one_piece(framed(pattern(4 * mib, 7))));
    });
    auto& client = connect(addr);
    client.conn->send(one_piece(framed(pattern(10, 1))));
    ASSERT_TRUE(run_until(*reactor, [&] { return client.frames.size() == 1; }));
    EXPECT_EQ(to_vector(client.frames[0]), pattern(4 * mib, 7));
    EXPECT_GE(budget->peak_bytes(), 4 * mib);
    // Once sent, only the server's receive chunk is left.
    ASSERT_TRUE(run_until(*reactor, [&] { return budget->used_bytes() <= memory_budget::light_bytes; }));
    client.conn->close();
    servers[0]->conn->close();
    ASSERT_TRUE(run_until(*reactor, [&] { return servers[0]->closed() && client.closed(); }));
    servers[0]->frames.clear();
    EXPECT_EQ(budget->used_bytes(), 0u);
}

// Bytes committed over several writable() calls without a parse in between (the multishot and
// dpdk paths copy that way): a completed large frame is cut in place, never copied into a new
// chunk with the next one, and both come out whole and in order.
TEST_F(memory_budget_test, completed_frames_are_not_copied_again_before_the_next_parse) {
    auto budget = std::make_shared<memory_budget>(*reactor, 0);
    auto account = std::make_shared<memory_account>(budget);
    frame_reader r(64 * kib, 100 * mib);
    r.set_account(account);
    auto a = pattern(200 * kib, 1);
    auto b = pattern(10, 2);
    std::vector<std::byte> wire = framed(a);
    auto fb = framed(b);
    wire.insert(wire.end(), fb.begin(), fb.end());
    size_t off = 0;
    std::vector<shared_buffer> out;
    error failure;
    while (off < wire.size()) {
        if (off == 0) {  // the prefix first, parsed: the reader learns A's size
            auto room = r.writable();
            std::memcpy(room.data(), wire.data(), 4);
            r.commit(4);
            off = 4;
            ASSERT_TRUE(r.parse(out, failure, socket_address::ipv4_loopback(0)));
            continue;
        }
        auto room = r.writable();
        size_t n = std::min({room.size(), wire.size() - off, size_t{16 * kib}});
        std::memcpy(room.data(), wire.data() + off, n);
        r.commit(n);
        off += n;
    }
    ASSERT_TRUE(r.parse(out, failure, socket_address::ipv4_loopback(0)));
    ASSERT_EQ(out.size(), 2u);
    EXPECT_EQ(to_vector(out[0]), a);
    EXPECT_EQ(to_vector(out[1]), b);
    // A's own chunk plus one default chunk for B (before: a second ~200 KiB chunk holding A).
    EXPECT_LE(account->held_bytes(), 200 * kib + 4 + frame_reader::min_room + 64 * kib);
    EXPECT_LE(budget->peak_bytes(), 200 * kib + 4 + frame_reader::min_room + 64 * kib);
}
