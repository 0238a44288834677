// Broker registration and controller election (membership.h) against a real ZooKeeper server
// (testing/zk_server.h; skipped where java or the jars are missing), and the JSON the znodes
// hold (json.h, no server needed).

#include "replication/membership.h"

#include <gtest/gtest.h>

#include <chrono>
#include <thread>

#include "replication/json.h"
#include "replication/testing/zk_fixture.h"

using namespace sluice;
using namespace sluice::replication;

namespace {

broker_registration broker(int32_t id, std::optional<std::string> rack = std::nullopt) {
    broker_registration b;
    b.id = id;
    b.endpoints.push_back({"PLAINTEXT", "127.0.0.1", 9092 + id});
    b.rack = std::move(rack);
    b.timestamp_ms = 1700000000000 + id;
    return b;
}

// Short sessions, so that a closed client's ephemeral znodes are gone quickly, and a chroot.
class membership_test : public test::zk_fixture {
protected:
    std::unique_ptr<zk_client> client() { return zk_fixture::client("/sluice-test", 6000); }
};

}  // namespace

TEST(membership_json, a_registration_round_trips_in_kafkas_layout) {
    auto b = broker(3, "rack-a");
    b.endpoints.push_back({"PLAINTEXT", "::1", 9200});
    std::string text = encode_registration(b);
    auto doc = json::parse(text);
    ASSERT_TRUE(doc) << doc.error().describe();
    EXPECT_EQ(*doc->get("version")->as_int(), 5);
    EXPECT_EQ(*doc->get("host")->as_string(), "127.0.0.1");
    EXPECT_EQ(*doc->get("port")->as_int(), 9095);
    EXPECT_EQ(*doc->get("endpoints")->as_array()->at(1).as_string(), "PLAINTEXT://[::1]:9200");
    auto back = decode_registration(3, text);
    ASSERT_TRUE(back) << back.error().describe();
    ASSERT_EQ(back->endpoints.size(), 2u);
    EXPECT_EQ(back->endpoints[1].host, "::1");
    EXPECT_EQ(back->endpoints[1].port, 9200);
    EXPECT_EQ(back->rack, "rack-a");
    EXPECT_EQ(back->timestamp_ms, b.timestamp_ms);
}

TEST(membership_json, malformed_znodes_are_errors_not_crashes) {
    for (const char* bad : {"", "{", "{\"endpoints\":", "[1,2", "{\"a\" 1}", "\"\\x\"", "1.5",
                            "{\"endpoints\":[\"PLAINTEXT://h:99999\"]}",
                            "{\"endpoints\":[\"nohost\"]}", "{\"endpoints\":7}", "nul"}) {
        EXPECT_FALSE(decode_registration(1, bad)) << bad;
    }
    std::string deep(100, '[');
    EXPECT_FALSE(json::parse(deep));
    EXPECT_EQ(*json::parse(" {\"a\": [true, null, -12, \"x\\\"y\"]} ")
                   ->get("a")
                   ->as_array()
                   ->at(3)
                   .as_string(),
              "x\"y");
}

TEST_F(membership_test, brokers_register_and_a_second_broker_with_the_same_id_is_refused) {
    auto a = client(), b = client();
    ASSERT_TRUE(a && b);
    ASSERT_TRUE(register_broker(*a, broker(1, "r1")));
    ASSERT_TRUE(register_broker(*b, broker(2)));
    EXPECT_TRUE(register_broker(*a, broker(1, "r1")));  // again from its own session: fine
    auto dup = register_broker(*b, broker(1));
    ASSERT_FALSE(dup);
    EXPECT_TRUE(dup.error().is(errc::broker_id_in_use));
    EXPECT_NE(dup.error().describe().find("broker.id 1"), std::string::npos)
        << dup.error().describe();
    auto live = read_live_brokers(*b);
    ASSERT_TRUE(live) << live.error().describe();
    ASSERT_EQ(live->brokers.size(), 2u);
    EXPECT_EQ(live->brokers[0].id, 1);
    EXPECT_EQ(live->brokers[0].rack, "r1");
    EXPECT_EQ(live->brokers[1].endpoints[0].port, 9094);
    // A broker that goes away (its session closes) leaves the list, and its id is free again.
    a.reset();
    live = read_live_brokers(*b);
    ASSERT_TRUE(live);
    ASSERT_EQ(live->brokers.size(), 1u);
    EXPECT_EQ(live->brokers[0].id, 2);
    EXPECT_TRUE(register_broker(*b, broker(1)));
}

TEST_F(membership_test, one_controller_at_a_time_and_each_new_one_bumps_the_epoch) {
    auto a = client(), b = client();
    ASSERT_TRUE(a && b);
    auto first = claim_controller(*a, 1);
    ASSERT_TRUE(first) << first.error().describe();
    EXPECT_TRUE(first->won);
    EXPECT_EQ(first->epoch, 1);
    auto second = claim_controller(*b, 2);
    ASSERT_TRUE(second) << second.error().describe();
    EXPECT_FALSE(second->won);
    EXPECT_EQ(second->controller_id, 1);
    EXPECT_EQ(second->epoch, 1);
    // The controller's session ends: the next bid wins with a higher epoch.
    a.reset();
    auto third = claim_controller(*b, 2);
    ASSERT_TRUE(third) << third.error().describe();
    EXPECT_TRUE(third->won);
    EXPECT_EQ(third->controller_id, 2);
    EXPECT_EQ(third->epoch, 2);
}
