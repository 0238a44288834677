// The range assignor of `sluice bench --group` against the cases of Kafka's RangeAssignorTest:
// contiguous ranges per topic over the subscribed members in member order, the first
// `partitions % members` getting one more, and every member present in the result.

#include <gtest/gtest.h>

#include "tools/group_client.h"

namespace sluice::tools {
namespace {

using tps = std::vector<protocol::consumer_topic_partitions>;

TEST(range_assign, one_member_gets_every_partition) {
    auto a = range_assign({{"m", std::nullopt, {"t"}}}, {{"t", 3}});
    EXPECT_EQ(a.at("m"), (tps{{"t", {0, 1, 2}}}));
}

TEST(range_assign, a_member_without_subscriptions_is_present_with_nothing) {
    auto a = range_assign({{"m", std::nullopt, {}}}, {{"t", 3}});
    ASSERT_EQ(a.size(), 1u);
    EXPECT_TRUE(a.at("m").empty());
}

TEST(range_assign, the_first_members_get_the_remainder) {
    auto a = range_assign({{"c1", std::nullopt, {"t"}}, {"c0", std::nullopt, {"t"}}}, {{"t", 3}});
    EXPECT_EQ(a.at("c0"), (tps{{"t", {0, 1}}}));
    EXPECT_EQ(a.at("c1"), (tps{{"t", {2}}}));
}

TEST(range_assign, each_topic_is_split_on_its_own) {
    std::vector<assignor_member> m = {{"c0", std::nullopt, {"t1", "t2"}},
                                      {"c1", std::nullopt, {"t1", "t2"}}};
    auto a = range_assign(m, {{"t1", 3}, {"t2", 3}});
    EXPECT_EQ(a.at("c0"), (tps{{"t1", {0, 1}}, {"t2", {0, 1}}}));
    EXPECT_EQ(a.at("c1"), (tps{{"t1", {2}}, {"t2", {2}}}));
}

TEST(range_assign, only_subscribers_of_a_topic_share_it) {
    std::vector<assignor_member> m = {{"c1", std::nullopt, {"t1"}},
                                      {"c2", std::nullopt, {"t1", "t2"}},
                                      {"c3", std::nullopt, {"t1"}}};
    auto a = range_assign(m, {{"t1", 3}, {"t2", 2}});
    EXPECT_EQ(a.at("c1"), (tps{{"t1", {0}}}));
    EXPECT_EQ(a.at("c2"), (tps{{"t1", {1}}, {"t2", {0, 1}}}));
    EXPECT_EQ(a.at("c3"), (tps{{"t1", {2}}}));
}

TEST(range_assign, four_partitions_over_two_members_in_member_id_order) {
    // The bench's own shape: members named by the coordinator, compared as strings.
    std::vector<assignor_member> m = {{"sluice-b", std::nullopt, {"t"}},
                                      {"sluice-a", std::nullopt, {"t"}}};
    auto a = range_assign(m, {{"t", 4}});
    EXPECT_EQ(a.at("sluice-a"), (tps{{"t", {0, 1}}}));
    EXPECT_EQ(a.at("sluice-b"), (tps{{"t", {2, 3}}}));
}

TEST(range_assign, member_ids_compare_as_strings_not_numbers) {
    std::vector<assignor_member> m = {{"consumer-2", std::nullopt, {"t"}},
                                      {"consumer-10", std::nullopt, {"t"}}};
    auto a = range_assign(m, {{"t", 2}});
    EXPECT_EQ(a.at("consumer-10"), (tps{{"t", {0}}}));
    EXPECT_EQ(a.at("consumer-2"), (tps{{"t", {1}}}));
}

TEST(range_assign, static_members_come_first_in_instance_id_order) {
    std::vector<assignor_member> m = {{"a-dynamic", std::nullopt, {"t"}},
                                      {"z-member", std::string("instance-1"), {"t"}},
                                      {"b-member", std::string("instance-2"), {"t"}}};
    auto a = range_assign(m, {{"t", 3}});
    EXPECT_EQ(a.at("z-member"), (tps{{"t", {0}}}));
    EXPECT_EQ(a.at("b-member"), (tps{{"t", {1}}}));
    EXPECT_EQ(a.at("a-dynamic"), (tps{{"t", {2}}}));
}

TEST(range_assign, more_members_than_partitions_leaves_the_last_empty) {
    std::vector<assignor_member> m;
    for (const char* id : {"d", "c", "b", "a"}) m.push_back({id, std::nullopt, {"t"}});
    auto a = range_assign(m, {{"t", 2}});
    ASSERT_EQ(a.size(), 4u);
    EXPECT_EQ(a.at("a"), (tps{{"t", {0}}}));
    EXPECT_EQ(a.at("b"), (tps{{"t", {1}}}));
    EXPECT_TRUE(a.at("c").empty());
    EXPECT_TRUE(a.at("d").empty());
}

TEST(range_assign, a_topic_without_partitions_hands_out_nothing) {
    auto a = range_assign({{"m", std::nullopt, {"gone", "t"}}}, {{"gone", 0}, {"t", 1}});
    EXPECT_EQ(a.at("m"), (tps{{"t", {0}}}));
}

TEST(range_assign, every_partition_is_assigned_exactly_once) {
    for (int members = 1; members <= 7; ++members) {
        for (int32_t partitions = 0; partitions <= 20; ++partitions) {
            std::vector<assignor_member> m;
            for (int i = 0; i < members; ++i) m.push_back({"m" + std::to_string(i), {}, {"t"}});
            std::vector<int> owners(static_cast<size_t>(partitions), 0);
            size_t most = 0, least = SIZE_MAX;
            for (const auto& [id, list] : range_assign(m, {{"t", partitions}})) {
                size_t n = 0;
                for (const auto& tp : list) {
                    for (int32_t p : tp.partitions) ++owners.at(static_cast<size_t>(p));
                    n += tp.partitions.size();
                }
                most = std::max(most, n);
                least = std::min(least, n);
            }
            for (int o : owners) EXPECT_EQ(o, 1) << members << " members, " << partitions;
            EXPECT_LE(most - least, 1u) << members << " members, " << partitions;
        }
    }
}

}  // namespace
}  // namespace sluice::tools
