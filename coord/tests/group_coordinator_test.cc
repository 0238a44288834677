// The group state machine on a manual clock: rebalances, timeouts, static membership, the errors
// for every wrong move, and replay of what it wrote.

#include <gtest/gtest.h>

#include <map>

#include "coord/group_coordinator.h"
#include "coord/tests/test_services.h"
#include "model/record_batch.h"
#include "runtime/clock.h"

namespace sluice::coord {
namespace {

bytes b(std::string_view s) {
    bytes out;
    for (char c : s) out.push_back(static_cast<std::byte>(c));
    return out;
}

struct fixture : ::testing::Test {
    runtime::manual_clock clock;
    manual_timers timers{clock};
    memory_storage storage;
    coordinator_config cfg = [] {
        coordinator_config c;
        c.initial_rebalance_delay_ms = 0;
        return c;
    }();
    std::unique_ptr<group_coordinator> coord;

    void SetUp() override { restart(); }
    void restart() {
        coord.reset();
        coord = std::make_unique<group_coordinator>(cfg, clock, timers, storage);
        coord->load_owned();
    }

    join_request join_req(const std::string& member, std::optional<std::string> instance = {},
                          std::string protocol = "range") {
        join_request r;
        r.group_id = "g";
        r.member_id = member;
        r.group_instance_id = std::move(instance);
        r.session_timeout_ms = 10000;
        r.rebalance_timeout_ms = 30000;
        r.protocol_type = "consumer";
        r.protocols = {{protocol, b("meta-" + protocol)}};
        r.client_id = "c";
        r.client_host = "/127.0.0.1";
        return r;
    }
    // Joins and records the answer (which may come later).
    std::shared_ptr<std::optional<join_result>> join(join_request r) {
        auto out = std::make_shared<std::optional<join_result>>();
        coord->join(std::move(r), [out](join_result res) { *out = std::move(res); });
        return out;
    }
    std::shared_ptr<std::optional<sync_result>> sync(const std::string& member, int32_t gen,
                                                     std::vector<std::pair<std::string, bytes>> a = {}) {
        sync_request r;
        r.group_id = "g";
        r.member_id = member;
        r.generation_id = gen;
        r.assignments = std::move(a);
        auto out = std::make_shared<std::optional<sync_result>>();
        coord->sync(std::move(r), [out](sync_result res) { *out = std::move(res); });
        return out;
    }
    errc heartbeat(const std::string& member, int32_t gen, std::optional<std::string> inst = {}) {
        return coord->heartbeat({"g", member, std::move(inst), gen});
    }
    errc commit(const std::string& member, int32_t gen, int64_t offset, int32_t partition = 0) {
        commit_request r;
        r.group_id = "g";
        r.member_id = member;
        r.generation_id = gen;
        r.offsets.push_back({{"t", partition}, offset, -1, std::nullopt});
        errc out = errc::storage_error;
        bool called = false;
        coord->commit(std::move(r), [&](commit_result res) {
            called = true;
            out = res.partitions.at(0);
        });
        EXPECT_TRUE(called);
        return out;
    }
    int64_t committed(int32_t partition = 0) {
        fetch_offsets_request r;
        r.group_id = "g";
        r.partitions = std::vector<partition_ref>{{"t", partition}};
        auto res = coord->fetch_offsets(r);
        return res.offsets.at(0).committed.offset;
    }
    // One member through the member-id-required round trip to a Stable group.
    std::string stable_single(int32_t& gen) {
        auto j = join_req("");
        j.require_known_member_id = true;
        auto first = join(j);
        EXPECT_EQ((*first)->error, errc::member_id_required);
        j.member_id = (*first)->member_id;
        auto second = join(j);
        EXPECT_TRUE(*second);
        EXPECT_EQ((*second)->error, errc::none);
        gen = (*second)->generation_id;
        auto s = sync(j.member_id, gen, {{j.member_id, b("A")}});
        EXPECT_TRUE(*s);
        return j.member_id;
    }
};

TEST(partition_for, matches_java_string_hash_code) {
    EXPECT_EQ(partition_for("my-group", 50), 12);
    EXPECT_EQ(partition_for("console-consumer-12345", 50), 6);
    EXPECT_EQ(partition_for("test", 50), 48);
    EXPECT_EQ(partition_for("grüppe", 50), 12);
    EXPECT_EQ(partition_for("\xf0\x9f\x98\x80g", 50), 22);  // a surrogate pair
    EXPECT_EQ(partition_for("", 50), 0);
}

TEST_F(fixture, single_member_reaches_stable_with_its_assignment) {
    int32_t gen = 0;
    std::string m = stable_single(gen);
    EXPECT_EQ(gen, 1);
    auto d = coord->describe("g");
    EXPECT_EQ(d.state, group_state::stable);
    ASSERT_EQ(d.members.size(), 1u);
    EXPECT_EQ(d.members[0].assignment, b("A"));
    EXPECT_EQ(d.protocol_name, "range");
    EXPECT_EQ(heartbeat(m, gen), errc::none);
}

TEST_F(fixture, two_members_leader_gets_metadata_follower_waits_for_sync) {
    auto a = join(join_req(""));
    ASSERT_TRUE(*a);  // alone: the rebalance completes at once
    int32_t gen = (*a)->generation_id;
    std::string ma = (*a)->member_id;
    auto sa = sync(ma, gen, {{ma, b("A")}});
    ASSERT_TRUE(*sa);
    // A second member: the group rebalances; the first learns through its heartbeat.
    auto jb = join(join_req(""));
    EXPECT_FALSE(*jb);
    EXPECT_EQ(heartbeat(ma, gen), errc::rebalance_in_progress);
    auto ja = join(join_req(ma));
    ASSERT_TRUE(*ja);
    ASSERT_TRUE(*jb);
    EXPECT_EQ((*ja)->generation_id, gen + 1);
    EXPECT_EQ((*jb)->generation_id, gen + 1);
    const auto& leader = (*ja)->leader_id == ma ? **ja : **jb;
    const auto& follower = (*ja)->leader_id == ma ? **jb : **ja;
    EXPECT_EQ(leader.members.size(), 2u);
    EXPECT_TRUE(follower.members.empty());
    auto sf = sync(follower.member_id, gen + 1);
    EXPECT_FALSE(*sf);  // waits for the leader
    auto sl = sync(leader.member_id, gen + 1,
                   {{leader.member_id, b("L")}, {follower.member_id, b("F")}});
    ASSERT_TRUE(*sl);
    ASSERT_TRUE(*sf);
    EXPECT_EQ((*sl)->assignment, b("L"));
    EXPECT_EQ((*sf)->assignment, b("F"));
    EXPECT_EQ(coord->describe("g").state, group_state::stable);
}

TEST_F(fixture, a_member_missing_its_session_timeout_is_removed_and_the_rest_rebalance) {
    auto a = join(join_req(""));
    std::string ma = (*a)->member_id;
    sync(ma, 1, {{ma, b("A")}});
    auto jb = join(join_req(""));
    join(join_req(ma));
    std::string mb = (*jb)->member_id;
    sync(ma, 2, {});
    sync(mb, 2, {});
    EXPECT_EQ(coord->describe("g").state, group_state::stable);
    // Only a heartbeats.
    for (int i = 0; i < 3; ++i) {
        timers.advance(3000);
        EXPECT_EQ(heartbeat(ma, 2), errc::none) << i;
    }
    timers.advance(1500);  // b's 10 s session is over
    EXPECT_EQ(coord->describe("g").state, group_state::preparing_rebalance);
    EXPECT_EQ(heartbeat(mb, 2), errc::unknown_member_id);
    EXPECT_EQ(heartbeat(ma, 2), errc::rebalance_in_progress);
    auto ja = join(join_req(ma));
    ASSERT_TRUE(*ja);
    EXPECT_EQ((*ja)->generation_id, 3);
    EXPECT_EQ((*ja)->members.size(), 1u);
}

TEST_F(fixture, a_member_not_rejoining_within_the_rebalance_timeout_is_dropped) {
    auto a = join(join_req(""));
    std::string ma = (*a)->member_id;
    sync(ma, 1, {{ma, b("A")}});
    auto jb = join(join_req(""));  // rebalance: a must rejoin within 30 s
    for (int i = 0; i < 10; ++i) {
        timers.advance(3000);
        heartbeat(ma, 1);  // heartbeats alone do not count as rejoining
    }
    timers.advance(1);
    ASSERT_TRUE(*jb);
    EXPECT_EQ((*jb)->generation_id, 2);
    EXPECT_EQ((*jb)->leader_id, (*jb)->member_id);
    EXPECT_EQ(heartbeat(ma, 1), errc::unknown_member_id);
}

TEST_F(fixture, leave_triggers_rebalance_and_last_leave_empties_the_group) {
    int32_t gen = 0;
    std::string m = stable_single(gen);
    auto res = coord->leave({"g", {{m, std::nullopt}, {"nobody", std::nullopt}}});
    ASSERT_EQ(res.members.size(), 2u);
    EXPECT_EQ(res.members[0], errc::none);
    EXPECT_EQ(res.members[1], errc::unknown_member_id);
    auto d = coord->describe("g");
    EXPECT_EQ(d.state, group_state::empty);
    EXPECT_TRUE(d.members.empty());
}

TEST_F(fixture, protocol_misuse_gets_kafkas_errors_and_the_group_stays_healthy) {
    int32_t gen = 0;
    std::string m = stable_single(gen);
    EXPECT_EQ(heartbeat("stranger", gen), errc::unknown_member_id);
    EXPECT_EQ(heartbeat(m, gen + 5), errc::illegal_generation);
    EXPECT_EQ(commit(m, gen - 1, 10), errc::illegal_generation);
    EXPECT_EQ(commit("stranger", gen, 10), errc::unknown_member_id);
    auto absurd = join_req("");
    absurd.session_timeout_ms = 1;
    EXPECT_EQ((*join(absurd))->error, errc::invalid_session_timeout);
    absurd.session_timeout_ms = 100'000'000;
    EXPECT_EQ((*join(absurd))->error, errc::invalid_session_timeout);
    auto other_type = join_req("");
    other_type.protocol_type = "connect";
    EXPECT_EQ((*join(other_type))->error, errc::inconsistent_group_protocol);
    EXPECT_EQ((*join(join_req("made-up-id")))->error, errc::unknown_member_id);
    auto empty_id = join_req("");
    empty_id.group_id = "";
    EXPECT_EQ((*join(empty_id))->error, errc::invalid_group_id);
    EXPECT_EQ((*sync(m, gen + 1))->error, errc::illegal_generation);
    // Still fine.
    EXPECT_EQ(heartbeat(m, gen), errc::none);
    EXPECT_EQ(commit(m, gen, 10), errc::none);
    EXPECT_EQ(committed(), 10);
    EXPECT_EQ(coord->describe("g").state, group_state::stable);
}

TEST_F(fixture, static_member_restart_within_session_timeout_causes_no_rebalance) {
    auto a = join(join_req("", "inst-a"));
    std::string ma = (*a)->member_id;
    sync(ma, 1, {{ma, b("A")}});
    auto jb = join(join_req("", "inst-b"));
    join(join_req(ma, "inst-a"));
    std::string mb = (*jb)->member_id;
    std::string leader = (*jb)->leader_id;
    sync(leader, 2, {{ma, b("A")}, {mb, b("B")}});
    sync(leader == ma ? mb : ma, 2);
    ASSERT_EQ(coord->describe("g").state, group_state::stable);
    // b restarts: same instance id, no member id.
    timers.advance(5000);
    heartbeat(ma, 2);
    auto again = join(join_req("", "inst-b"));
    ASSERT_TRUE(*again);
    EXPECT_EQ((*again)->error, errc::none);
    EXPECT_EQ((*again)->generation_id, 2);
    std::string mb2 = (*again)->member_id;
    EXPECT_NE(mb2, mb);
    auto s = sync(mb2, 2);
    ASSERT_TRUE(*s);
    EXPECT_EQ((*s)->assignment, b("B"));
    EXPECT_EQ(coord->describe("g").state, group_state::stable);
    EXPECT_EQ(heartbeat(ma, 2), errc::none);
    // The old incarnation is fenced.
    EXPECT_EQ(heartbeat(mb, 2, "inst-b"), errc::fenced_instance_id);
}

TEST_F(fixture, initial_rebalance_delay_collects_members_into_one_generation) {
    cfg.initial_rebalance_delay_ms = 3000;
    restart();
    auto a = join(join_req(""));
    timers.advance(2000);
    auto bj = join(join_req(""));
    timers.advance(2000);
    EXPECT_FALSE(*a);  // b arrived during the delay: another delay started at 3 s
    timers.advance(2000);
    ASSERT_TRUE(*a);
    ASSERT_TRUE(*bj);
    EXPECT_EQ((*a)->generation_id, 1);
    EXPECT_EQ((*bj)->generation_id, 1);
}

TEST_F(fixture, committed_offsets_and_group_survive_a_restart) {
    int32_t gen = 0;
    std::string m = stable_single(gen);
    EXPECT_EQ(commit(m, gen, 5, 0), errc::none);
    EXPECT_EQ(commit(m, gen, 7, 1), errc::none);
    EXPECT_EQ(commit(m, gen, 8, 1), errc::none);
    restart();
    EXPECT_EQ(committed(0), 5);
    EXPECT_EQ(committed(1), 8);
    auto d = coord->describe("g");
    EXPECT_EQ(d.state, group_state::stable);
    ASSERT_EQ(d.members.size(), 1u);
    EXPECT_EQ(d.members[0].assignment, b("A"));
    // The member carries on where it was.
    EXPECT_EQ(heartbeat(m, gen), errc::none);
    EXPECT_EQ(commit(m, gen, 9, 0), errc::none);
}

TEST_F(fixture, deleted_group_stays_deleted_after_restart) {
    EXPECT_EQ(commit("", -1, 3), errc::none);  // a commit from outside group management
    bool done = false;
    coord->delete_group("g", [&](errc e) {
        done = true;
        EXPECT_EQ(e, errc::none);
    });
    EXPECT_TRUE(done);
    restart();
    EXPECT_EQ(committed(), -1);
    EXPECT_EQ(coord->group_count(), 0u);
}

TEST_F(fixture, delete_group_refuses_a_group_with_members) {
    int32_t gen = 0;
    stable_single(gen);
    errc got = errc::none;
    coord->delete_group("g", [&](errc e) { got = e; });
    EXPECT_EQ(got, errc::non_empty_group);
    coord->delete_group("nope", [&](errc e) { got = e; });
    EXPECT_EQ(got, errc::group_id_not_found);
}

TEST_F(fixture, offsets_of_an_empty_group_expire_after_retention) {
    cfg.offsets_retention_ms = 60'000;
    cfg.offsets_retention_check_interval_ms = 10'000;
    restart();
    EXPECT_EQ(commit("", -1, 3), errc::none);
    timers.advance(30'000);
    EXPECT_EQ(committed(), 3);
    timers.advance(40'000);
    EXPECT_EQ(committed(), -1);
    EXPECT_EQ(coord->group_count(), 0u);
    restart();
    EXPECT_EQ(committed(), -1);
}

TEST_F(fixture, failed_commit_reports_a_storage_error_and_changes_nothing) {
    EXPECT_EQ(commit("", -1, 3), errc::none);
    storage.fail_appends = true;
    EXPECT_EQ(commit("", -1, 4), errc::storage_error);
    EXPECT_EQ(committed(), 3);
}

TEST_F(fixture, protocol_selection_takes_the_common_protocol) {
    auto ja = join_req("");
    ja.protocols = {{"cooperative-sticky", b("x")}, {"range", b("y")}};
    auto a = join(ja);
    std::string ma = (*a)->member_id;
    EXPECT_EQ((*a)->protocol_name, "cooperative-sticky");
    sync(ma, 1, {});
    auto bj = join(join_req("", std::nullopt, "range"));
    ja.member_id = ma;
    auto a2 = join(ja);
    ASSERT_TRUE(*a2);
    EXPECT_EQ((*a2)->protocol_name, "range");
    EXPECT_EQ((*bj)->protocol_name, "range");
    // A member with nothing in common is refused.
    EXPECT_EQ((*join(join_req("", std::nullopt, "roundrobin")))->error,
              errc::inconsistent_group_protocol);
}

}  // namespace
}  // namespace sluice::coord
