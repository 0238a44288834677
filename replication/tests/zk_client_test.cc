// zk_client against a real ZooKeeper 3.8 server started per test (testing/zk_server.h). Tests
// that need the server skip when java or the jars are missing. Every wait is bounded.

#include "replication/zk_client.h"

#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>
#include <zookeeper/zookeeper.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "replication/testing/tcp_proxy.h"
#include "replication/testing/zk_fixture.h"
#include "replication/testing/zk_server.h"

using namespace sluice;
using namespace sluice::replication;
using namespace std::chrono_literals;

namespace {

constexpr int32_t session_ms = 10000;
constexpr int32_t connect_ms = 20000;
constexpr auto wait_max = 20s;

// Records what callbacks report, from libzookeeper's completion thread, for the test's thread.
template <class Event>
class recorder {
public:
    std::function<void(Event)> fn() {
        return [this](Event e) {
            std::lock_guard lock(_mu);
            _seen.push_back(e);
            _cv.notify_all();
        };
    }
    bool wait_for(Event e, std::chrono::milliseconds timeout = wait_max) {
        std::unique_lock lock(_mu);
        return _cv.wait_for(lock, timeout, [&] {
            return std::find(_seen.begin(), _seen.end(), e) != _seen.end();
        });
    }
    std::vector<Event> seen() {
        std::lock_guard lock(_mu);
        return _seen;
    }

private:
    std::mutex _mu;
    std::condition_variable _cv;
    std::vector<Event> _seen;
};
using watch_log = recorder<zk_event>;
using state_log = recorder<zk_session_state>;

template <class Pred>
bool eventually(Pred pred, std::chrono::milliseconds timeout = wait_max) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (!pred()) {
        if (std::chrono::steady_clock::now() >= deadline) return false;
        std::this_thread::sleep_for(20ms);
    }
    return true;
}

using zk_client_test = test::zk_fixture;

}  // namespace

TEST(zk_errc, zoo_codes_map_to_module_codes) {
    EXPECT_EQ(zk_errc_from_rc(ZOK), errc::ok);
    EXPECT_EQ(zk_errc_from_rc(ZNONODE), errc::no_node);
    EXPECT_EQ(zk_errc_from_rc(ZNODEEXISTS), errc::node_exists);
    EXPECT_EQ(zk_errc_from_rc(ZBADVERSION), errc::bad_version);
    EXPECT_EQ(zk_errc_from_rc(ZNOTEMPTY), errc::not_empty);
    EXPECT_EQ(zk_errc_from_rc(ZNOCHILDRENFOREPHEMERALS), errc::ephemeral_parent);
    EXPECT_EQ(zk_errc_from_rc(ZBADARGUMENTS), errc::invalid_argument);
    EXPECT_EQ(zk_errc_from_rc(ZNOAUTH), errc::not_authorized);
    EXPECT_EQ(zk_errc_from_rc(ZCONNECTIONLOSS), errc::connection_loss);
    EXPECT_EQ(zk_errc_from_rc(ZOPERATIONTIMEOUT), errc::connection_loss);
    EXPECT_EQ(zk_errc_from_rc(ZSESSIONEXPIRED), errc::session_expired);
    EXPECT_EQ(zk_errc_from_rc(ZINVALIDSTATE), errc::session_expired);
    EXPECT_EQ(zk_errc_from_rc(ZMARSHALLINGERROR), errc::zk_error);
    EXPECT_EQ(zk_errc_from_rc(-12345), errc::zk_error);
}

TEST(zk_connect, malformed_connect_strings_are_refused) {
    auto no_host = zk_client::connect("/chroot", session_ms, 1000);
    ASSERT_FALSE(no_host);
    EXPECT_TRUE(no_host.error().is(errc::invalid_argument)) << no_host.error().describe();
    auto trailing = zk_client::connect("127.0.0.1:2181/chroot/", session_ms, 1000);
    ASSERT_FALSE(trailing);
    EXPECT_TRUE(trailing.error().is(errc::invalid_argument)) << trailing.error().describe();
    EXPECT_FALSE(zk_client::connect("127.0.0.1:2181", 0, 1000));
}

TEST(zk_connect, nothing_listening_fails_within_the_timeout_naming_the_address) {
    // A bound socket that never listens: connections to its port are refused, and nobody else
    // can take the port while the test runs.
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ASSERT_GE(fd, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    socklen_t len = sizeof a;
    ASSERT_EQ(::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len), 0);
    std::string address = "127.0.0.1:" + std::to_string(ntohs(a.sin_port));

    constexpr int32_t timeout_ms = 1500;
    auto start = std::chrono::steady_clock::now();
    auto c = zk_client::connect(address, session_ms, timeout_ms);
    auto elapsed = std::chrono::steady_clock::now() - start;
    ::close(fd);
    ASSERT_FALSE(c);
    EXPECT_TRUE(c.error().is(errc::connect_failed)) << c.error().describe();
    EXPECT_NE(c.error().describe().find(address), std::string::npos) << c.error().describe();
    // Bounded by the timeout (with room for a loaded machine), not by libzookeeper's retries.
    EXPECT_LT(elapsed, std::chrono::milliseconds(timeout_ms) + 10s);
}

TEST_F(zk_client_test, create_get_set_and_version_conflicts) {
    auto c = client();
    ASSERT_TRUE(c);
    auto created = c->create("/a", "one");
    ASSERT_TRUE(created) << created.error().describe();
    EXPECT_EQ(*created, "/a");
    auto dup = c->create("/a", "again");
    ASSERT_FALSE(dup);
    EXPECT_TRUE(dup.error().is(errc::node_exists));

    auto n = c->get("/a");
    ASSERT_TRUE(n) << n.error().describe();
    EXPECT_EQ(n->data, "one");
    EXPECT_EQ(n->stat.version, 0);
    EXPECT_EQ(n->stat.ephemeral_owner, 0);

    auto s = c->set("/a", "two", 0);
    ASSERT_TRUE(s) << s.error().describe();
    EXPECT_EQ(s->version, 1);
    auto stale = c->set("/a", "three", 0);
    ASSERT_FALSE(stale);
    EXPECT_TRUE(stale.error().is(errc::bad_version)) << stale.error().describe();
    EXPECT_EQ(c->get("/a")->data, "two");
    auto any = c->set("/a", "four");
    ASSERT_TRUE(any);
    EXPECT_EQ(any->version, 2);

    EXPECT_TRUE(c->remove("/a", 1).error().is(errc::bad_version));
    EXPECT_TRUE(c->remove("/a", 2));
    auto gone = c->exists("/a");
    ASSERT_TRUE(gone);
    EXPECT_FALSE(gone->has_value());
    EXPECT_TRUE(c->get("/a").error().is(errc::no_node));
    EXPECT_TRUE(c->set("/a", "x").error().is(errc::no_node));
    EXPECT_TRUE(c->create("/missing/child", "").error().is(errc::no_node));
    EXPECT_TRUE(c->create("relative", "").error().is(errc::invalid_argument));
}

TEST_F(zk_client_test, values_of_any_size_round_trip) {
    auto c = client();
    ASSERT_TRUE(c);
    std::string big(300 * 1024, '\0');
    for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>(i * 7);
    ASSERT_TRUE(c->create("/big", big));
    auto n = c->get("/big");
    ASSERT_TRUE(n) << n.error().describe();
    EXPECT_EQ(n->data, big);
    EXPECT_EQ(n->stat.data_bytes, static_cast<int32_t>(big.size()));

    ASSERT_TRUE(c->create("/empty", ""));
    auto e = c->get("/empty");
    ASSERT_TRUE(e);
    EXPECT_EQ(e->data, "");
    EXPECT_TRUE(c->create("/huge", std::string(2 * 1024 * 1024, 'x'))
                    .error()
                    .is(errc::invalid_argument));
}

TEST_F(zk_client_test, create_recursive_children_and_sequential_nodes) {
    auto c = client();
    ASSERT_TRUE(c);
    auto b1 = c->create_recursive("/brokers/ids/1", "b1", zk_mode::ephemeral);
    ASSERT_TRUE(b1) << b1.error().describe();
    EXPECT_EQ(*b1, "/brokers/ids/1");
    EXPECT_TRUE(c->create_recursive("/brokers/ids/1", "b1").error().is(errc::node_exists));
    ASSERT_TRUE(c->create("/brokers/ids/0", "b0", zk_mode::ephemeral));
    auto ids = c->get_children("/brokers/ids");
    ASSERT_TRUE(ids) << ids.error().describe();
    EXPECT_EQ(*ids, (std::vector<std::string>{"0", "1"}));
    EXPECT_EQ(c->exists("/brokers")->value().children, 1);
    EXPECT_TRUE(c->get_children("/nope").error().is(errc::no_node));
    EXPECT_TRUE(c->remove("/brokers").error().is(errc::not_empty));
    EXPECT_TRUE(c->create("/brokers/ids/1/x", "").error().is(errc::ephemeral_parent));

    auto s0 = c->create_recursive("/seq/n-", "", zk_mode::persistent_sequential);
    auto s1 = c->create("/seq/n-", "", zk_mode::persistent_sequential);
    ASSERT_TRUE(s0 && s1);
    EXPECT_EQ(*s0, "/seq/n-0000000000");
    EXPECT_EQ(*s1, "/seq/n-0000000001");
}

TEST_F(zk_client_test, ephemeral_node_lives_and_dies_with_its_session) {
    watch_log events;  // outlives the clients whose callbacks write to it
    auto owner = client();
    auto other = client();
    ASSERT_TRUE(owner && other);
    ASSERT_NE(owner->session_id(), 0);
    ASSERT_NE(owner->session_id(), other->session_id());
    ASSERT_TRUE(owner->create("/controller", "1", zk_mode::ephemeral));
    EXPECT_EQ(other->get("/controller")->stat.ephemeral_owner, owner->session_id());

    auto second = other->create("/controller", "2", zk_mode::ephemeral);
    ASSERT_FALSE(second);
    EXPECT_TRUE(second.error().is(errc::node_exists)) << second.error().describe();

    ASSERT_TRUE(other->exists("/controller", events.fn())->has_value());
    owner.reset();  // closes the session
    ASSERT_TRUE(events.wait_for(zk_event::deleted));
    auto now_mine = other->create("/controller", "2", zk_mode::ephemeral);
    EXPECT_TRUE(now_mine) << now_mine.error().describe();
}

TEST_F(zk_client_test, watches_fire_once_on_change_delete_create_and_children) {
    watch_log changed, deleted, created, children, missing;
    auto c = client();
    ASSERT_TRUE(c);
    ASSERT_TRUE(c->create("/w", "v0"));
    ASSERT_TRUE(c->get("/w", changed.fn()));
    ASSERT_TRUE(c->set("/w", "v1"));
    ASSERT_TRUE(changed.wait_for(zk_event::changed));
    ASSERT_TRUE(c->set("/w", "v2"));  // the watch was one-shot: no second event

    ASSERT_TRUE(c->get("/w", deleted.fn()));
    ASSERT_TRUE(c->remove("/w"));
    ASSERT_TRUE(deleted.wait_for(zk_event::deleted));

    // get() of a missing znode fails and leaves no watch; exists() leaves one.
    EXPECT_TRUE(c->get("/w", missing.fn()).error().is(errc::no_node));
    auto absent = c->exists("/w", created.fn());
    ASSERT_TRUE(absent);
    EXPECT_FALSE(absent->has_value());
    ASSERT_TRUE(c->create("/w", "v3"));
    ASSERT_TRUE(created.wait_for(zk_event::created));

    ASSERT_TRUE(c->get_children("/w", children.fn()));
    ASSERT_TRUE(c->create("/w/kid", ""));
    ASSERT_TRUE(children.wait_for(zk_event::children_changed));

    // Events arrive in order on one thread, so by now any stray event would have been seen.
    EXPECT_EQ(changed.seen(), std::vector<zk_event>{zk_event::changed});
    EXPECT_EQ(deleted.seen(), std::vector<zk_event>{zk_event::deleted});
    EXPECT_EQ(created.seen(), std::vector<zk_event>{zk_event::created});
    EXPECT_TRUE(missing.seen().empty());
}

TEST_F(zk_client_test, watch_callback_can_read_and_watch_again) {
    auto c = client();
    ASSERT_TRUE(c);
    ASSERT_TRUE(c->create("/cfg", "0"));
    std::mutex mu;
    std::condition_variable cv;
    std::vector<std::string> values;
    // Re-reads and re-arms from the completion thread, as the controller will.
    std::function<void(zk_event)> on_change = [&](zk_event) {
        auto n = c->get("/cfg", on_change);
        std::lock_guard lock(mu);
        values.push_back(n ? n->data : n.error().describe());
        cv.notify_all();
    };
    ASSERT_TRUE(c->get("/cfg", on_change));
    for (int i = 1; i <= 3; ++i) {
        ASSERT_TRUE(c->set("/cfg", std::to_string(i)));
        std::unique_lock lock(mu);
        ASSERT_TRUE(cv.wait_for(lock, wait_max, [&] { return values.size() == size_t(i); }));
        EXPECT_EQ(values.back(), std::to_string(i));
    }
    c.reset();  // the last re-armed watch is dropped, never called
}

TEST_F(zk_client_test, multi_applies_everything_or_nothing) {
    auto c = client();
    ASSERT_TRUE(c);
    ASSERT_TRUE(c->create("/state", "leader=1"));

    auto done = c->multi({zk_op::check("/state", 0), zk_op::set("/state", "leader=2", 0),
                          zk_op::create("/state-log", "e1")});
    ASSERT_TRUE(done) << done.error().describe();
    ASSERT_EQ(done->size(), 3u);
    EXPECT_EQ((*done)[1].stat.version, 1);
    EXPECT_EQ((*done)[2].path, "/state-log");

    // A stale check (version 0 is gone) fails the whole transaction.
    auto stale = c->multi({zk_op::check("/state", 0), zk_op::create("/other", "x"),
                           zk_op::set("/state", "leader=3")});
    ASSERT_FALSE(stale);
    EXPECT_TRUE(stale.error().is(errc::bad_version)) << stale.error().describe();
    EXPECT_NE(stale.error().detail().find("op 0"), std::string::npos) << stale.error().detail();
    EXPECT_FALSE(c->exists("/other")->has_value());
    EXPECT_EQ(c->get("/state")->data, "leader=2");

    auto twice = c->multi({zk_op::create("/t", ""), zk_op::create("/t", "")});
    ASSERT_FALSE(twice);
    EXPECT_TRUE(twice.error().is(errc::node_exists));
    EXPECT_NE(twice.error().detail().find("op 1"), std::string::npos) << twice.error().detail();
    EXPECT_FALSE(c->exists("/t")->has_value());

    auto removed = c->multi({zk_op::remove("/state-log"), zk_op::remove("/state", 1)});
    ASSERT_TRUE(removed) << removed.error().describe();
    EXPECT_FALSE(c->exists("/state")->has_value());
}

TEST_F(zk_client_test, chroot_is_created_then_used) {
    auto root = client();
    ASSERT_TRUE(root);
    EXPECT_FALSE(root->exists("/sluice")->has_value());

    auto inside = client("/sluice/cluster-a");
    ASSERT_TRUE(inside);
    ASSERT_TRUE(inside->create("/controller", "1"));
    EXPECT_EQ(*inside->get_children("/"), std::vector<std::string>{"controller"});
    EXPECT_EQ(root->get("/sluice/cluster-a/controller")->data, "1");

    // A chroot that exists already is simply used.
    auto again = client("/sluice/cluster-a");
    ASSERT_TRUE(again);
    EXPECT_EQ(again->get("/controller")->data, "1");
}

TEST_F(zk_client_test, server_restart_keeps_data_and_session) {
    state_log states;
    auto c = client("", session_ms, states.fn());
    ASSERT_TRUE(c);
    int64_t session = c->session_id();
    ASSERT_TRUE(c->create("/kept", "v"));
    ASSERT_TRUE(c->create("/mine", "", zk_mode::ephemeral));

    server->stop();
    ASSERT_TRUE(states.wait_for(zk_session_state::connecting));
    auto r = server->start();
    ASSERT_TRUE(r) << r.error().describe();
    ASSERT_TRUE(states.wait_for(zk_session_state::connected));
    EXPECT_EQ(c->session_id(), session);
    EXPECT_EQ(c->get("/kept")->data, "v");
    EXPECT_TRUE(c->exists("/mine")->has_value());  // the session outlived the restart
}

TEST_F(zk_client_test, hung_server_loses_the_connection_but_not_the_session) {
    // Long enough that the client notices the silence (after two thirds of it) well before the
    // server would expire the session.
    constexpr int32_t session = 6000;
    state_log states;
    auto c = client("", session, states.fn());
    ASSERT_TRUE(c);
    int64_t id = c->session_id();
    ASSERT_TRUE(c->create("/eph", "", zk_mode::ephemeral));

    server->pause();
    auto during = c->get("/eph");  // unanswered until the client gives up on the connection
    ASSERT_FALSE(during);
    EXPECT_TRUE(during.error().is(errc::connection_loss)) << during.error().describe();
    EXPECT_TRUE(states.wait_for(zk_session_state::connecting));
    server->resume();

    ASSERT_TRUE(states.wait_for(zk_session_state::connected));
    EXPECT_EQ(c->session_id(), id);
    auto eph = c->get("/eph");
    ASSERT_TRUE(eph) << eph.error().describe();
    EXPECT_EQ(eph->stat.ephemeral_owner, id);
}

TEST_F(zk_client_test, session_expiry_is_reported) {
    constexpr int32_t short_session_ms = 2000;  // the server accepts 1 s and up
    auto proxy = test::tcp_proxy::start(server->port());
    ASSERT_TRUE(proxy) << proxy.error().describe();
    state_log states;
    watch_log watch;
    auto c = zk_client::connect("127.0.0.1:" + std::to_string((*proxy)->port()),
                                short_session_ms, connect_ms, states.fn());
    ASSERT_TRUE(c) << c.error().describe();
    ASSERT_TRUE((*c)->create("/eph", "", zk_mode::ephemeral));
    ASSERT_TRUE((*c)->get("/eph", watch.fn()));

    // A partition: the server goes on running, stops hearing from the session and expires it,
    // which a direct client sees as the ephemeral znode going away.
    (*proxy)->cut();
    ASSERT_TRUE(states.wait_for(zk_session_state::connecting));
    auto direct = client();
    ASSERT_TRUE(direct);
    ASSERT_TRUE(eventually([&] {
        auto e = direct->exists("/eph");
        return e && !e->has_value();
    }));

    // Back in touch, the client learns its session is gone.
    (*proxy)->restore();
    ASSERT_TRUE(states.wait_for(zk_session_state::expired));
    EXPECT_EQ((*c)->state(), zk_session_state::expired);
    EXPECT_TRUE(watch.wait_for(zk_event::session_expired));
    auto after = (*c)->get("/eph");
    ASSERT_FALSE(after);
    EXPECT_TRUE(after.error().is(errc::session_expired)) << after.error().describe();

    // Its owner makes a new client, which works.
    auto fresh = client();
    ASSERT_TRUE(fresh);
    EXPECT_TRUE(fresh->create("/eph", "", zk_mode::ephemeral));
}
