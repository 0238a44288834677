// Topics, partition states and controller passes against a real ZooKeeper (zk_topics.h):
// what a 3-broker cluster writes when a topic is created, when its leader dies, when a leader
// changes its ISR, and that stale writers (an old leader, a deposed controller) are refused.

#include "replication/zk_topics.h"

#include <gtest/gtest.h>

#include <chrono>
#include <set>
#include <thread>

#include "replication/errc.h"
#include "replication/membership.h"
#include "replication/testing/zk_fixture.h"

using namespace sluice;
using namespace sluice::replication;

namespace {

class zk_topics_test : public test::zk_fixture {
protected:
    std::unique_ptr<zk_client> session() { return zk_fixture::client("/sluice", 6000); }

    // Brokers 1..n, each registered by its own session (so one can die alone).
    void start_brokers(int n, std::vector<std::string> racks = {}) {
        for (int id = 1; id <= n; ++id) {
            auto zk = session();
            ASSERT_TRUE(zk);
            broker_registration b;
            b.id = id;
            b.endpoints.push_back({"PLAINTEXT", "127.0.0.1", 9091 + id});
            if (!racks.empty()) b.rack = racks[static_cast<size_t>(id - 1)];
            ASSERT_TRUE(register_broker(*zk, b));
            brokers[id] = std::move(zk);
        }
    }

    cluster_view read() {
        auto v = read_cluster(*admin);
        EXPECT_TRUE(v) << v.error().describe();
        return v ? *v : cluster_view{};
    }

    void SetUp() override {
        zk_fixture::SetUp();
        if (IsSkipped() || HasFatalFailure()) return;
        admin = session();
        ASSERT_TRUE(admin);
        auto id = ensure_cluster_layout(*admin);
        ASSERT_TRUE(id) << id.error().describe();
        cluster_id = *id;
    }

    std::unique_ptr<zk_client> admin;
    std::map<int, std::unique_ptr<zk_client>> brokers;
    std::string cluster_id;
};

}  // namespace

TEST_F(zk_topics_test, the_cluster_id_is_made_once_and_read_back) {
    EXPECT_EQ(cluster_id.size(), 22u);
    auto again = ensure_cluster_layout(*admin);
    ASSERT_TRUE(again);
    EXPECT_EQ(*again, cluster_id);
    EXPECT_EQ(read().cluster_id, cluster_id);
}

TEST_F(zk_topics_test, a_created_topic_gets_leaders_and_full_isrs_from_the_controller) {
    start_brokers(3);
    ASSERT_FALSE(HasFatalFailure());
    auto view = read();
    ASSERT_EQ(view.brokers.size(), 3u);
    auto t = create_topic_znodes(*admin, view, {"orders", 6, 3, {}, {{"retention.ms", "5000"}}});
    ASSERT_TRUE(t) << t.error().describe();
    EXPECT_EQ(t->replicas.size(), 6u);
    auto dup = create_topic_znodes(*admin, view, {"orders", 1, 1, {}, {}});
    ASSERT_FALSE(dup);
    EXPECT_TRUE(dup.error().is(errc::topic_exists));
    auto too_many = create_topic_znodes(*admin, view, {"wide", 1, 4, {}, {}});
    ASSERT_FALSE(too_many);
    EXPECT_TRUE(too_many.error().is(errc::invalid_replication_factor));

    ASSERT_TRUE(claim_controller(*brokers[1], 1));
    auto me = read_controller_identity(*brokers[1]);
    ASSERT_TRUE(me);
    view = read();
    EXPECT_EQ(view.controller_id, 1);
    auto written = controller_pass(*brokers[1], view, *me, {});
    ASSERT_TRUE(written) << written.error().describe();
    EXPECT_EQ(*written, 6u);
    view = read();
    const auto& orders = view.topics->at("orders");
    EXPECT_EQ(orders.configs.at("retention.ms"), "5000");
    EXPECT_EQ(orders.id, t->id);
    std::map<int32_t, int> leaders;
    for (int32_t p = 0; p < 6; ++p) {
        const auto& s = orders.states[static_cast<size_t>(p)];
        ASSERT_TRUE(s.has_value());
        EXPECT_EQ(s->leader, orders.replicas[static_cast<size_t>(p)].front());
        EXPECT_EQ(s->isr.size(), 3u);
        EXPECT_EQ(s->leader_epoch, 0);
        ++leaders[s->leader];
    }
    EXPECT_EQ(leaders.size(), 3u);  // leadership is spread
    // Nothing left to do: a second pass writes nothing.
    auto again = controller_pass(*brokers[1], view, *me, {});
    ASSERT_TRUE(again);
    EXPECT_EQ(*again, 0u);
}

TEST_F(zk_topics_test, an_offline_replica_loses_its_leadership_and_isr_place_for_that_partition_only) {
    start_brokers(3);
    ASSERT_FALSE(HasFatalFailure());
    ASSERT_TRUE(create_topic_znodes(*admin, read(), {"t", 2, 3, {{2, 3, 1}, {2, 1, 3}}, {}}));
    ASSERT_TRUE(claim_controller(*brokers[1], 1));
    auto me = read_controller_identity(*brokers[1]);
    ASSERT_TRUE(me);
    ASSERT_TRUE(controller_pass(*brokers[1], read(), *me, {}));
    // Broker 2's copy of t-0 is in a failed log dir; its copy of t-1 is fine.
    ASSERT_TRUE(write_offline_replicas(*brokers[2], 2, {{"t", 0}}));
    auto view = read();
    ASSERT_EQ(view.offline_replicas.count(2), 1u);
    EXPECT_EQ(view.offline_replicas.at(2), (replica_set{{"t", 0}}));
    auto written = controller_pass(*brokers[1], view, *me, {});
    ASSERT_TRUE(written) << written.error().describe();
    EXPECT_EQ(*written, 1u);
    auto t = read().topics->at("t");
    EXPECT_EQ(t.states[0]->leader, 3);
    EXPECT_EQ(t.states[0]->isr, (std::vector<int32_t>{3, 1}));
    EXPECT_EQ(t.states[1]->leader, 2);
    EXPECT_EQ(t.states[1]->isr.size(), 3u);
    // Rewritten in place (a second failed dir), and gone with the broker's session.
    ASSERT_TRUE(write_offline_replicas(*brokers[2], 2, {{"t", 0}, {"t", 1}}));
    EXPECT_EQ(read().offline_replicas.at(2).size(), 2u);
    brokers.erase(2);
    EXPECT_EQ(read().offline_replicas.count(2), 0u);
}

TEST_F(zk_topics_test, a_dead_brokers_partitions_move_to_an_isr_member_with_a_new_epoch) {
    start_brokers(3);
    ASSERT_FALSE(HasFatalFailure());
    auto view = read();
    ASSERT_TRUE(create_topic_znodes(*admin, view, {"t", 1, 3, {{2, 3, 1}}, {}}));
    ASSERT_TRUE(claim_controller(*brokers[1], 1));
    auto me = read_controller_identity(*brokers[1]);
    ASSERT_TRUE(me);
    ASSERT_TRUE(controller_pass(*brokers[1], read(), *me, {}));
    EXPECT_EQ(read().topics->at("t").states[0]->leader, 2);
    brokers.erase(2);  // closing the session removes /brokers/ids/2 at once
    view = read();
    ASSERT_EQ(view.brokers.size(), 2u);
    auto written = controller_pass(*brokers[1], view, *me, {});
    ASSERT_TRUE(written) << written.error().describe();
    EXPECT_EQ(*written, 1u);
    auto s = *read().topics->at("t").states[0];
    EXPECT_EQ(s.leader, 3);
    EXPECT_EQ(s.leader_epoch, 1);
    EXPECT_EQ(s.isr, (std::vector<int32_t>{3, 1}));
}

TEST_F(zk_topics_test, stale_leaders_and_deposed_controllers_cannot_write) {
    start_brokers(3);
    ASSERT_FALSE(HasFatalFailure());
    ASSERT_TRUE(create_topic_znodes(*admin, read(), {"t", 1, 3, {{1, 2, 3}}, {}}));
    ASSERT_TRUE(claim_controller(*brokers[1], 1));
    auto old_controller = read_controller_identity(*brokers[1]);
    ASSERT_TRUE(old_controller);
    ASSERT_TRUE(controller_pass(*brokers[1], read(), *old_controller, {}));
    model::tp tp{"t", model::partition_id(0)};
    // The leader shrinks its ISR on the version it read: accepted once, then stale.
    auto s = *read().topics->at("t").states[0];
    partition_state shrink = s;
    shrink.isr = {1, 2};
    auto w = write_partition_state(*brokers[1], tp, shrink);
    ASSERT_TRUE(w) << w.error().describe();
    EXPECT_EQ(w->version, s.version + 1);
    partition_state stale = s;
    stale.isr = {1, 3};
    auto refused = write_partition_state(*brokers[1], tp, stale);
    ASSERT_FALSE(refused);
    EXPECT_TRUE(refused.error().is(errc::bad_version));
    EXPECT_EQ(read().topics->at("t").states[0]->isr, (std::vector<int32_t>{1, 2}));

    // Broker 1 loses the controller role (its /controller goes, broker 2 wins and bumps the
    // epoch); the old controller's writes are refused even where the state version matches.
    ASSERT_TRUE(brokers[1]->remove("/controller"));
    auto claim = claim_controller(*brokers[2], 2);
    ASSERT_TRUE(claim && claim->won);
    brokers.erase(1);
    auto again = session();
    ASSERT_TRUE(again);
    auto deposed = controller_pass(*again, read(), *old_controller, {});
    ASSERT_FALSE(deposed);
    EXPECT_TRUE(deposed.error().is(errc::bad_version)) << deposed.error().describe();
    auto s2 = *read().topics->at("t").states[0];
    EXPECT_EQ(s2.leader, 1);  // unchanged by the deposed controller
    auto me = read_controller_identity(*brokers[2]);
    ASSERT_TRUE(me);
    EXPECT_EQ(me->epoch, old_controller->epoch + 1);
    ASSERT_TRUE(controller_pass(*brokers[2], read(), *me, {}));
    auto s3 = *read().topics->at("t").states[0];
    EXPECT_EQ(s3.leader, 2);
    EXPECT_EQ(s3.controller_epoch, me->epoch);
}

TEST_F(zk_topics_test, partitions_grow_configs_change_and_topics_delete) {
    start_brokers(3, {"a", "b", "c"});
    ASSERT_FALSE(HasFatalFailure());
    auto view = read();
    ASSERT_TRUE(create_topic_znodes(*admin, view, {"t", 2, 2, {}, {}}));
    ASSERT_TRUE(claim_controller(*brokers[1], 1));
    auto me = read_controller_identity(*brokers[1]);
    ASSERT_TRUE(me);
    ASSERT_TRUE(controller_pass(*brokers[1], read(), *me, {}));
    ASSERT_TRUE(add_partitions_znodes(*admin, read(), "t", 5));
    auto shrink = add_partitions_znodes(*admin, read(), "t", 3);
    ASSERT_FALSE(shrink);
    EXPECT_TRUE(shrink.error().is(errc::invalid_partitions));
    auto written = controller_pass(*brokers[1], read(), *me, {});
    ASSERT_TRUE(written);
    EXPECT_EQ(*written, 3u);
    auto grown = read();
    const auto& t = grown.topics->at("t");
    ASSERT_EQ(t.partitions, 5);
    for (const auto& r : t.replicas) EXPECT_EQ(r.size(), 2u);
    ASSERT_TRUE(set_topic_config_znode(*admin, "t", {{"cleanup.policy", "compact"}}));
    EXPECT_EQ(read().topics->at("t").configs.at("cleanup.policy"), "compact");
    auto bad = create_topic_znodes(*admin, read(), {"u", -1, -1, {{1, 9}}, {}});
    ASSERT_FALSE(bad);
    EXPECT_TRUE(bad.error().is(errc::invalid_replica_assignment));
    ASSERT_TRUE(delete_topic_znodes(*admin, "t"));
    EXPECT_FALSE(read().topics->contains("t"));
    auto gone = delete_topic_znodes(*admin, "t");
    ASSERT_FALSE(gone);
    EXPECT_TRUE(gone.error().is(errc::unknown_topic));
    // A corrupt topic znode is skipped, not fatal.
    ASSERT_TRUE(admin->create("/brokers/topics/broken", "{not json"));
    EXPECT_FALSE(read().topics->contains("broken"));
}

TEST_F(zk_topics_test, a_reassignment_completes_once_the_new_replica_is_in_sync) {
    start_brokers(3);
    ASSERT_FALSE(HasFatalFailure());
    auto view = read();
    ASSERT_TRUE(create_topic_znodes(*admin, view, {"moved", -1, -1, {{1, 2}}, {}}));
    ASSERT_TRUE(claim_controller(*brokers[1], 1));
    auto me = read_controller_identity(*brokers[1]);
    ASSERT_TRUE(me);
    ASSERT_TRUE(controller_pass(*brokers[1], read(), *me, {}));
    // Cancelling what is not moving; a target naming an unregistered broker.
    auto none = write_reassignment(*admin, read(), {"moved", model::partition_id(0)}, std::nullopt);
    ASSERT_FALSE(none);
    EXPECT_TRUE(none.error().is(errc::no_reassignment));
    auto bad = write_reassignment(*admin, read(), {"moved", model::partition_id(0)},
                                  std::vector<int32_t>{3, 9});
    ASSERT_FALSE(bad);
    EXPECT_TRUE(bad.error().is(errc::invalid_replica_assignment));

    // Move [1, 2] to [3, 2]: meanwhile the assignment holds both, target first.
    ASSERT_TRUE(write_reassignment(*admin, read(), {"moved", model::partition_id(0)},
                                   std::vector<int32_t>{3, 2}));
    view = read();
    const auto& t = view.topics->at("moved");
    EXPECT_EQ(t.replicas[0], (std::vector<int32_t>{3, 2, 1}));
    EXPECT_EQ(t.adding.at(0), (std::vector<int32_t>{3}));
    EXPECT_EQ(t.removing.at(0), (std::vector<int32_t>{1}));
    // Broker 3 is not in the ISR yet: nothing completes.
    auto early = controller_reassign(*brokers[1], view, *me);
    ASSERT_TRUE(early) << early.error().describe();
    EXPECT_EQ(*early, 0u);
    // The leader (1) adds 3 to its ISR; then the controller completes the move, electing 3
    // (the first of the target in the ISR) in a new epoch since the leader leaves.
    auto st = *t.states[0];
    EXPECT_EQ(st.leader, 1);
    st.isr = {1, 2, 3};
    ASSERT_TRUE(write_partition_state(*brokers[1], {"moved", model::partition_id(0)}, st));
    auto done = controller_reassign(*brokers[1], read(), *me);
    ASSERT_TRUE(done) << done.error().describe();
    EXPECT_EQ(*done, 1u);
    view = read();
    const auto& after = view.topics->at("moved");
    EXPECT_EQ(after.replicas[0], (std::vector<int32_t>{3, 2}));
    EXPECT_TRUE(after.adding.empty());
    EXPECT_TRUE(after.removing.empty());
    ASSERT_TRUE(after.states[0]);
    EXPECT_EQ(after.states[0]->leader, 3);
    EXPECT_EQ(after.states[0]->leader_epoch, st.leader_epoch + 1);
    EXPECT_EQ(after.states[0]->isr, (std::vector<int32_t>{2, 3}));
}

TEST_F(zk_topics_test, preferred_elections_are_asked_for_and_found_by_the_imbalance_rule) {
    start_brokers(3);
    ASSERT_FALSE(HasFatalFailure());
    ASSERT_TRUE(create_topic_znodes(*admin, read(), {"pref", -1, -1, {{1, 2}, {2, 1}}, {}}));
    ASSERT_TRUE(claim_controller(*brokers[3], 3));
    auto me = read_controller_identity(*brokers[3]);
    ASSERT_TRUE(me);
    ASSERT_TRUE(controller_pass(*brokers[3], read(), *me, {}));
    // Broker 1 dies: partition 0 moves to 2; back, it is in the ISR again (its leader adds it).
    brokers[1].reset();
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (read().live(1) && std::chrono::steady_clock::now() < deadline) {
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    ASSERT_TRUE(controller_pass(*brokers[3], read(), *me, {}));
    EXPECT_EQ(read().topics->at("pref").states[0]->leader, 2);
    start_brokers(1);
    ASSERT_FALSE(HasFatalFailure());
    auto st = *read().topics->at("pref").states[0];
    st.isr = {2, 1};
    ASSERT_TRUE(write_partition_state(*brokers[2], {"pref", model::partition_id(0)}, st));
    // Broker 1 leads none of the 1 partition it prefers: 100 % > 10 %.
    auto off = imbalanced_partitions(read(), 10);
    ASSERT_EQ(off.size(), 1u);
    EXPECT_EQ(off[0], (model::tp{"pref", model::partition_id(0)}));
    // An admin's request, read back by the controller; a second one waits for the first.
    ASSERT_TRUE(write_preferred_election(*admin, off));
    auto again = write_preferred_election(*admin, off);
    ASSERT_FALSE(again);
    EXPECT_TRUE(again.error().is(errc::node_exists));
    auto asked = read_preferred_election(*brokers[3]);
    ASSERT_TRUE(asked && *asked);
    EXPECT_EQ(**asked, off);
    std::set<model::tp> only(off.begin(), off.end());
    election_rules rules;
    rules.preferred = true;
    auto moved = controller_pass(*brokers[3], read(), *me, rules, &only);
    ASSERT_TRUE(moved);
    EXPECT_EQ(*moved, 1u);
    ASSERT_TRUE(clear_preferred_election(*brokers[3]));
    auto gone = read_preferred_election(*brokers[3]);
    ASSERT_TRUE(gone);
    EXPECT_FALSE(*gone);
    EXPECT_EQ(read().topics->at("pref").states[0]->leader, 1);
    EXPECT_TRUE(imbalanced_partitions(read(), 10).empty());
}
