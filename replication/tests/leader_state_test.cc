// leader_epoch_cache, truncation_point and leader_state: the cases KIP-101/279 and Kafka's
// ISR rules name, one by one.

#include <gtest/gtest.h>

#include "replication/leader_epoch_cache.h"
#include "replication/leader_state.h"

namespace sluice::replication {
namespace {

using model::leader_epoch;
using model::node_id;
using model::offset;

leader_epoch_cache cache_of(std::vector<std::pair<int, int64_t>> e) {
    leader_epoch_cache c;
    for (auto [epoch, start] : e) EXPECT_TRUE(c.assign(leader_epoch(epoch), offset(start)));
    return c;
}

TEST(leader_epoch_cache, assign_keeps_epochs_increasing_and_ignores_older_ones) {
    auto c = cache_of({{0, 0}, {2, 10}});
    EXPECT_TRUE(c.assign(leader_epoch(2), offset(15)));  // same epoch: no new entry
    EXPECT_FALSE(c.assign(leader_epoch(1), offset(20)));
    ASSERT_EQ(c.entries().size(), 2u);
    EXPECT_EQ(c.latest_epoch()(), 2);
}

TEST(leader_epoch_cache, a_newer_epoch_starting_lower_replaces_the_entries_it_overlaps) {
    auto c = cache_of({{0, 0}, {1, 10}, {2, 20}});
    EXPECT_TRUE(c.assign(leader_epoch(3), offset(10)));
    ASSERT_EQ(c.entries().size(), 2u);
    EXPECT_EQ(c.entries()[1], (epoch_entry{leader_epoch(3), offset(10)}));
}

TEST(leader_epoch_cache, end_offset_for_each_kind_of_request) {
    auto c = cache_of({{1, 5}, {3, 10}, {4, 18}});
    const offset leo(25);
    EXPECT_EQ(c.end_offset_for(leader_epoch(4), leo), (epoch_end{leader_epoch(4), leo}));
    EXPECT_EQ(c.end_offset_for(leader_epoch(3), leo), (epoch_end{leader_epoch(3), offset(18)}));
    // An epoch this log never had: the largest below it, ending where the next one starts.
    EXPECT_EQ(c.end_offset_for(leader_epoch(2), leo), (epoch_end{leader_epoch(1), offset(10)}));
    // Older than everything: the requested epoch ends where this log's first epoch starts.
    EXPECT_EQ(c.end_offset_for(leader_epoch(0), leo), (epoch_end{leader_epoch(0), offset(5)}));
    EXPECT_TRUE(c.end_offset_for(leader_epoch(7), leo).undefined());
    EXPECT_TRUE(c.end_offset_for(leader_epoch(-1), leo).undefined());
    EXPECT_TRUE(leader_epoch_cache{}.end_offset_for(leader_epoch(1), leo).undefined());
}

TEST(leader_epoch_cache, truncation_from_either_end) {
    auto c = cache_of({{1, 0}, {2, 10}, {3, 20}});
    c.truncate_from_end(offset(20));
    EXPECT_EQ(c.latest_epoch()(), 2);
    c.truncate_from_start(offset(12));
    ASSERT_EQ(c.entries().size(), 1u);
    EXPECT_EQ(c.entries()[0], (epoch_entry{leader_epoch(2), offset(12)}));
}

TEST(truncation_point, same_latest_epoch_truncates_to_the_leaders_end_of_it) {
    auto f = cache_of({{0, 0}, {1, 10}});
    auto t = truncation_point(f, offset(30), offset(8), {leader_epoch(1), offset(25)});
    EXPECT_EQ(t.offset(), 25);
    EXPECT_TRUE(t.done);
    // A follower shorter than the leader's end keeps everything.
    t = truncation_point(f, offset(20), offset(8), {leader_epoch(1), offset(25)});
    EXPECT_EQ(t.offset(), 20);
}

TEST(truncation_point, an_epoch_the_leader_never_had_is_cut_where_the_leaders_epoch_ends) {
    // The follower led epoch 2 briefly (offsets 10..14) while the leader it now follows went
    // from epoch 1 straight to 3: epoch 1 ends at 10 on the leader.
    auto f = cache_of({{1, 0}, {2, 10}});
    auto t = truncation_point(f, offset(15), offset(9), {leader_epoch(1), offset(10)});
    EXPECT_EQ(t.offset(), 10);
    EXPECT_TRUE(t.done);
}

TEST(truncation_point, the_follower_asks_again_when_it_lacks_the_leaders_epoch) {
    // Follower epochs 0 and 2; the leader answers epoch 1 (which the follower lacks) ending at
    // 12: cut at min(own end of its epoch below 1 -> 10, 12), then ask again.
    auto f = cache_of({{0, 0}, {2, 10}});
    auto t = truncation_point(f, offset(20), offset(5), {leader_epoch(1), offset(12)});
    EXPECT_EQ(t.offset(), 10);
    EXPECT_FALSE(t.done);
}

TEST(truncation_point, an_undefined_answer_falls_back_to_the_high_watermark) {
    auto f = cache_of({{4, 0}});
    auto t = truncation_point(f, offset(20), offset(7), epoch_end{});
    EXPECT_EQ(t.offset(), 7);
}

leader_state three_replicas(int64_t now = 0) {
    return leader_state(node_id(1), leader_epoch(5), offset(100), {node_id(1), node_id(2), node_id(3)},
                        {node_id(1), node_id(2), node_id(3)}, offset(100), offset(90), now);
}

TEST(leader_state, the_high_watermark_is_the_smallest_log_end_in_the_isr) {
    auto l = three_replicas();
    EXPECT_EQ(l.high_watermark()(), 90);
    EXPECT_FALSE(l.on_append(offset(110)));  // followers' ends unknown: it holds
    EXPECT_FALSE(l.on_fetch(node_id(2), offset(105), 1));
    EXPECT_TRUE(l.on_fetch(node_id(3), offset(102), 1));
    EXPECT_EQ(l.high_watermark()(), 102);
    EXPECT_TRUE(l.on_fetch(node_id(3), offset(110), 2));
    EXPECT_EQ(l.high_watermark()(), 105);
}

TEST(leader_state, the_high_watermark_never_moves_back_and_never_passes_the_leader) {
    auto l = three_replicas();
    l.on_fetch(node_id(2), offset(100), 1);
    l.on_fetch(node_id(3), offset(100), 1);
    EXPECT_EQ(l.high_watermark()(), 100);
    // A follower that restarted with a shorter log reports less: the watermark stays.
    EXPECT_FALSE(l.on_fetch(node_id(2), offset(95), 2));
    EXPECT_EQ(l.high_watermark()(), 100);
    // A report beyond the leader's log end counts only up to it.
    l.on_fetch(node_id(2), offset(500), 3);
    EXPECT_EQ(l.follower_log_end(node_id(2))->operator()(), 100);
}

TEST(leader_state, a_follower_behind_for_longer_than_the_lag_limit_is_lagging) {
    auto l = three_replicas(0);
    l.on_append(offset(120));
    l.on_fetch(node_id(2), offset(120), 50);  // caught up at 50
    l.on_fetch(node_id(3), offset(100), 50);  // behind since the start (0)
    EXPECT_TRUE(l.lagging(200, 300).empty());
    auto lag = l.lagging(301, 300);
    ASSERT_EQ(lag.size(), 1u);
    EXPECT_EQ(lag[0](), 3);
    // Reaching the log end the leader had at its previous fetch (120, at 50) counts as caught
    // up at that earlier time: not lagging until 50 + 300.
    l.on_append(offset(130));
    l.on_fetch(node_id(3), offset(120), 320);
    EXPECT_TRUE(l.lagging(340, 300).empty());
    EXPECT_FALSE(l.lagging(351, 300).empty());
}

TEST(leader_state, a_shrunk_isr_lets_the_high_watermark_move_and_a_caught_up_replica_rejoins) {
    auto l = three_replicas();
    l.on_append(offset(120));
    l.on_fetch(node_id(2), offset(120), 1);
    EXPECT_EQ(l.high_watermark()(), 90);  // replica 3 unknown
    EXPECT_TRUE(l.set_isr({node_id(1), node_id(2)}));
    EXPECT_EQ(l.high_watermark()(), 120);
    EXPECT_TRUE(l.joinable().empty());
    l.on_fetch(node_id(3), offset(110), 2);  // below the watermark: not yet
    EXPECT_TRUE(l.joinable().empty());
    l.on_fetch(node_id(3), offset(120), 3);
    ASSERT_EQ(l.joinable().size(), 1u);
    EXPECT_EQ(l.joinable()[0](), 3);
}

TEST(leader_state, a_replica_joins_only_once_it_reaches_the_start_of_the_leaders_epoch) {
    // A new leader's high watermark (90) can lag what the old leader acknowledged, which is
    // all below this leader's epoch start (100): a replica between the two lacks some of it.
    // Replica 3 is in the ISR but has not fetched yet, which holds the watermark at 90.
    leader_state l(node_id(1), leader_epoch(5), offset(100),
                   {node_id(1), node_id(2), node_id(3)}, {node_id(1), node_id(3)}, offset(100),
                   offset(90), 0);
    l.on_fetch(node_id(2), offset(95), 1);
    EXPECT_EQ(l.high_watermark()(), 90);
    EXPECT_TRUE(l.joinable().empty());
    l.on_fetch(node_id(2), offset(100), 2);
    ASSERT_EQ(l.joinable().size(), 1u);
}

TEST(leader_state, an_isr_of_one_commits_on_append) {
    leader_state l(node_id(1), leader_epoch(0), offset(0), {node_id(1)}, {node_id(1)}, offset(0),
                   offset(0), 0);
    EXPECT_TRUE(l.on_append(offset(3)));
    EXPECT_EQ(l.high_watermark()(), 3);
}

}  // namespace
}  // namespace sluice::replication
