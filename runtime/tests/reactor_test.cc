#include "runtime/reactor.h"

#include <fcntl.h>
#include <gtest/gtest.h>

#include <thread>

using namespace sluice;
using namespace std::chrono_literals;

TEST(reactor, nop_completes_through_ring) {
    auto r = runtime::reactor::create({});
    ASSERT_TRUE(r) << r.error().describe();
    int got = -1;
    auto* sqe = (*r)->get_sqe();
    io_uring_prep_nop(sqe);
    (*r)->submit(sqe, [&](int res) { got = res; });
    (*r)->run_until([&] { return got != -1; });
    EXPECT_EQ(got, 0);
}

TEST(reactor, many_sqes_beyond_ring_size) {
    auto r = runtime::reactor::create({.sq_entries = 8, .cq_entries = 16});
    ASSERT_TRUE(r);
    int done = 0;
    for (int i = 0; i < 1000; ++i) {
        auto* sqe = (*r)->get_sqe();
        io_uring_prep_nop(sqe);
        (*r)->submit(sqe, [&](int) { ++done; });
    }
    (*r)->run_until([&] { return done == 1000; });
    EXPECT_EQ(done, 1000);
}

TEST(reactor, timers_fire_in_order_and_cancel) {
    auto r = runtime::reactor::create({});
    ASSERT_TRUE(r);
    std::vector<int> order;
    (*r)->add_timer(20ms, [&] { order.push_back(2); });
    (*r)->add_timer(5ms, [&] { order.push_back(1); });
    auto id = (*r)->add_timer(10ms, [&] { order.push_back(99); });
    (*r)->cancel_timer(id);
    (*r)->run_until([&] { return order.size() == 2; });
    EXPECT_EQ(order, (std::vector<int>{1, 2}));
}

TEST(reactor, post_from_other_thread_wakes_loop) {
    auto r = runtime::reactor::create({});
    ASSERT_TRUE(r);
    auto* re = r->get();
    bool ran = false;
    std::thread t([&] {
        std::this_thread::sleep_for(20ms);
        re->post([&] {
            ran = true;
            re->stop();
        });
    });
    re->run();
    t.join();
    EXPECT_TRUE(ran);
}

TEST(reactor, file_write_and_read) {
    auto r = runtime::reactor::create({});
    ASSERT_TRUE(r);
    char path[] = "/tmp/sluice_reactor_XXXXXX";
    int fd = mkstemp(path);
    ASSERT_GE(fd, 0);
    unlink(path);
    const char msg[] = "hello ring";
    int wres = -100, rres = -100;
    auto* sqe = (*r)->get_sqe();
    io_uring_prep_write(sqe, fd, msg, sizeof msg, 0);
    (*r)->submit(sqe, [&](int res) { wres = res; });
    (*r)->run_until([&] { return wres != -100; });
    EXPECT_EQ(wres, static_cast<int>(sizeof msg));
    char buf[sizeof msg] = {};
    sqe = (*r)->get_sqe();
    io_uring_prep_read(sqe, fd, buf, sizeof buf, 0);
    (*r)->submit(sqe, [&](int res) { rres = res; });
    (*r)->run_until([&] { return rres != -100; });
    EXPECT_EQ(rres, static_cast<int>(sizeof msg));
    EXPECT_STREQ(buf, msg);
    close(fd);
}

// A poller is called every iteration; while it reports work the loop never blocks, once idle it
// is asked to arm a wakeup, and one that cannot makes the loop nap instead of sleeping the full
// wait.
TEST(reactor, pollers_run_every_iteration_and_arm_a_wakeup_when_idle) {
    auto r = sluice::runtime::reactor::create({}).value();
    struct counting : sluice::runtime::reactor::poller {
        int polls = 0;
        int arms = 0;
        int work_left = 50;
        bool can_arm = false;
        bool poll() override {
            ++polls;
            return work_left-- > 0;
        }
        bool arm_wakeup() override {
            ++arms;
            return can_arm;
        }
    } p;
    r->add_poller(&p);
    for (int i = 0; i < 50; ++i) r->run_once(std::chrono::seconds(1));
    EXPECT_EQ(p.polls, 50);
    EXPECT_EQ(p.arms, 0);  // busy: never asked to sleep
    // Idle and unable to arm: each iteration naps (100 us), far below the 1 s wait.
    auto start = std::chrono::steady_clock::now();
    while (p.arms < 5) r->run_once(std::chrono::seconds(1));
    EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(900));
    // Able to arm: the loop sleeps the full wait (here a short one).
    p.can_arm = true;
    int arms = p.arms;
    r->run_once(std::chrono::milliseconds(20));
    EXPECT_EQ(p.arms, arms + 1);
    r->remove_poller(&p);
    int polls = p.polls;
    r->run_once(std::chrono::milliseconds(1));
    EXPECT_EQ(p.polls, polls);
}
