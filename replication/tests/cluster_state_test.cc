// The znode codecs of the cluster layout and the controller's pure decisions: replica
// assignment (rack-aware) and what it writes for a partition when brokers come and go.

#include <gtest/gtest.h>

#include <set>

#include "replication/cluster_state.h"
#include "replication/errc.h"

namespace sluice::replication {
namespace {

TEST(cluster_state, topic_znode_round_trips_with_a_base64_topic_id) {
    topic_id id{};
    for (size_t i = 0; i < id.size(); ++i) id[i] = static_cast<uint8_t>(i * 17 + 3);
    std::vector<std::vector<int32_t>> replicas = {{1, 2, 3}, {2, 3, 1}};
    std::string json = encode_topic_znode(id, replicas);
    EXPECT_NE(json.find("\"partitions\":{\"0\":[1,2,3],\"1\":[2,3,1]}"), std::string::npos) << json;
    auto back = decode_topic_znode(json);
    ASSERT_TRUE(back.has_value()) << back.error().describe();
    EXPECT_EQ(back->id, id);
    EXPECT_EQ(back->replicas, replicas);
    EXPECT_EQ(topic_id_base64(id).size(), 22u);
}

TEST(cluster_state, malformed_topic_znodes_are_errors_not_crashes) {
    for (const char* bad : {"", "{}", "{\"partitions\":{}}",
                            "{\"topic_id\":\"AAAAAAAAAAAAAAAAAAAAAA\",\"partitions\":{\"1\":[1]}}",
                            "{\"topic_id\":\"AAAAAAAAAAAAAAAAAAAAAA\",\"partitions\":{\"0\":[]}}",
                            "{\"topic_id\":\"short\",\"partitions\":{\"0\":[1]}}",
                            "{\"topic_id\":\"AAAAAAAAAAAAAAAAAAAAAA\",\"partitions\":{\"x\":[1]}}"}) {
        auto r = decode_topic_znode(bad);
        ASSERT_FALSE(r.has_value()) << bad;
        EXPECT_TRUE(r.error().is(errc::store_corrupt)) << bad;
    }
}

TEST(cluster_state, partition_state_and_topic_config_round_trip) {
    partition_state s{2, 7, {2, 3}, 4, -1};
    std::string json = encode_partition_state(s);
    EXPECT_EQ(json, "{\"controller_epoch\":4,\"leader\":2,\"version\":1,\"leader_epoch\":7,\"isr\":[2,3]}");
    auto back = decode_partition_state(json, 9);
    ASSERT_TRUE(back.has_value());
    EXPECT_EQ(back->leader, 2);
    EXPECT_EQ(back->leader_epoch, 7);
    EXPECT_EQ(back->isr, (std::vector<int32_t>{2, 3}));
    EXPECT_EQ(back->controller_epoch, 4);
    EXPECT_EQ(back->version, 9);
    EXPECT_FALSE(decode_partition_state("{\"leader\":1}", 0).has_value());
    auto cfg = decode_topic_config(encode_topic_config({{"retention.ms", "1000"}, {"a\"b", "c"}}));
    ASSERT_TRUE(cfg.has_value());
    EXPECT_EQ(cfg->at("retention.ms"), "1000");
    EXPECT_EQ(cfg->at("a\"b"), "c");
}

TEST(cluster_state, offline_replicas_round_trip_and_bad_ones_are_refused) {
    replica_set parts{{"a", 0}, {"we\"ird", 7}};
    auto back = decode_offline_replicas(encode_offline_replicas(parts));
    ASSERT_TRUE(back.has_value());
    EXPECT_EQ(*back, parts);
    EXPECT_TRUE(decode_offline_replicas(encode_offline_replicas({}))->empty());
    for (const char* bad : {"{}", "{\"partitions\":[{\"topic\":\"a\"}]}", "nope"}) {
        EXPECT_FALSE(decode_offline_replicas(bad).has_value()) << bad;
    }
}

TEST(cluster_state, assignment_spreads_leaders_and_never_repeats_a_broker) {
    auto a = assign_replicas({{1, {}}, {2, {}}, {3, {}}}, 0, 6, 3, 0);
    ASSERT_TRUE(a.has_value());
    std::map<int32_t, int> leaders;
    for (const auto& r : *a) {
        ASSERT_EQ(r.size(), 3u);
        EXPECT_EQ(std::set<int32_t>(r.begin(), r.end()).size(), 3u);
        ++leaders[r.front()];
    }
    EXPECT_EQ(leaders, (std::map<int32_t, int>{{1, 2}, {2, 2}, {3, 2}}));
    auto too_many = assign_replicas({{1, {}}, {2, {}}}, 0, 1, 3, 0);
    ASSERT_FALSE(too_many.has_value());
    EXPECT_TRUE(too_many.error().is(errc::invalid_replication_factor));
}

TEST(cluster_state, rack_aware_assignment_puts_replicas_on_different_racks) {
    std::vector<assignable_broker> brokers = {
        {1, "a"}, {2, "a"}, {3, "b"}, {4, "b"}, {5, "c"}, {6, "c"}};
    std::map<int32_t, std::string> rack_of = {{1, "a"}, {2, "a"}, {3, "b"},
                                              {4, "b"}, {5, "c"}, {6, "c"}};
    for (uint32_t seed = 0; seed < 6; ++seed) {
        auto a = assign_replicas(brokers, 0, 12, 3, seed);
        ASSERT_TRUE(a.has_value());
        for (const auto& r : *a) {
            std::set<std::string> racks;
            for (int32_t b : r) racks.insert(rack_of[b]);
            EXPECT_EQ(racks.size(), 3u) << "seed " << seed;
        }
    }
}

TEST(cluster_state, a_new_partition_starts_with_every_live_replica_in_sync) {
    auto s = decide_partition({2, 1, 3}, std::nullopt, {1, 2, 3}, {}, 5, {});
    ASSERT_TRUE(s.has_value());
    EXPECT_EQ(s->leader, 2);
    EXPECT_EQ(s->leader_epoch, 0);
    EXPECT_EQ(s->isr, (std::vector<int32_t>{2, 1, 3}));
    EXPECT_EQ(s->controller_epoch, 5);
    EXPECT_FALSE(decide_partition({2, 1}, std::nullopt, {3}, {}, 5, {}).has_value());
}

TEST(cluster_state, a_dead_leader_is_replaced_from_the_isr_with_a_new_epoch) {
    partition_state cur{1, 4, {1, 2, 3}, 1, 10};
    auto s = decide_partition({1, 2, 3}, cur, {2, 3}, {}, 2, {});
    ASSERT_TRUE(s.has_value());
    EXPECT_EQ(s->leader, 2);
    EXPECT_EQ(s->leader_epoch, 5);
    EXPECT_EQ(s->isr, (std::vector<int32_t>{2, 3}));
    EXPECT_EQ(s->version, 10);  // the write is conditional on the version read
}

TEST(cluster_state, a_replica_outside_the_isr_is_never_elected_unless_unclean) {
    partition_state cur{1, 4, {1}, 1, 3};
    auto s = decide_partition({1, 2, 3}, cur, {2, 3}, {}, 2, {});
    ASSERT_TRUE(s.has_value());
    EXPECT_EQ(s->leader, -1);  // offline
    EXPECT_EQ(s->isr, (std::vector<int32_t>{1}));
    EXPECT_EQ(s->leader_epoch, 5);
    // Offline stays offline without another write...
    EXPECT_FALSE(decide_partition({1, 2, 3}, *s, {2, 3}, {}, 2, {}).has_value());
    // ...until the last in-sync replica comes back.
    auto back = decide_partition({1, 2, 3}, *s, {1, 2, 3}, {}, 2, {});
    ASSERT_TRUE(back.has_value());
    EXPECT_EQ(back->leader, 1);
    EXPECT_EQ(back->leader_epoch, 6);
    auto unclean = decide_partition({1, 2, 3}, cur, {2, 3}, {}, 2, {.unclean = true});
    ASSERT_TRUE(unclean.has_value());
    EXPECT_EQ(unclean->leader, 2);
    EXPECT_EQ(unclean->isr, (std::vector<int32_t>{2}));
}

TEST(cluster_state, dead_followers_leave_the_isr_without_an_epoch_change) {
    partition_state cur{1, 4, {1, 2, 3}, 1, 3};
    auto s = decide_partition({1, 2, 3}, cur, {1, 2}, {}, 2, {});
    ASSERT_TRUE(s.has_value());
    EXPECT_EQ(s->leader, 1);
    EXPECT_EQ(s->leader_epoch, 4);
    EXPECT_EQ(s->isr, (std::vector<int32_t>{1, 2}));
    EXPECT_FALSE(decide_partition({1, 2, 3}, *s, {1, 2}, {}, 2, {}).has_value());
}

TEST(cluster_state, controlled_shutdown_moves_leadership_to_another_isr_member) {
    partition_state cur{1, 4, {1, 2, 3}, 1, 3};
    auto s = decide_partition({1, 2, 3}, cur, {1, 2, 3}, {1}, 2, {});
    ASSERT_TRUE(s.has_value());
    EXPECT_EQ(s->leader, 2);
    EXPECT_EQ(s->leader_epoch, 5);
    EXPECT_EQ(s->isr, (std::vector<int32_t>{2, 3}));
    // The only in-sync replica keeps leading while it shuts down (nothing else is safe).
    partition_state alone{1, 4, {1}, 1, 3};
    EXPECT_FALSE(decide_partition({1, 2, 3}, alone, {1, 2, 3}, {1}, 2, {}).has_value());
}

TEST(cluster_state, preferred_election_moves_back_to_the_first_replica_once_in_sync) {
    partition_state cur{2, 5, {2, 3}, 1, 3};
    EXPECT_FALSE(decide_partition({1, 2, 3}, cur, {1, 2, 3}, {}, 2, {.preferred = true}).has_value());
    cur.isr = {2, 3, 1};
    auto s = decide_partition({1, 2, 3}, cur, {1, 2, 3}, {}, 2, {.preferred = true});
    ASSERT_TRUE(s.has_value());
    EXPECT_EQ(s->leader, 1);
    EXPECT_EQ(s->leader_epoch, 6);
    EXPECT_FALSE(decide_partition({1, 2, 3}, cur, {1, 2, 3}, {}, 2, {}).has_value());
}

}  // namespace
}  // namespace sluice::replication
