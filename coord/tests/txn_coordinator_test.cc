// The transaction state machine on a manual clock with in-memory storage and a recording marker
// writer: producer ids and epochs, fencing, commit and abort with their markers, retries of
// markers, timeouts, every misuse error, and replay of what it wrote.

#include <gtest/gtest.h>

#include "coord/tests/test_services.h"
#include "coord/txn_coordinator.h"
#include "coord/txn_format.h"

namespace sluice::coord {
namespace {

// Records every marker write; fails the partitions named in `failing` (until cleared).
class recording_markers final : public marker_writer {
public:
    struct call {
        marker m;
        std::vector<txn_partition> partitions;
    };
    void write(const marker& m, std::vector<txn_partition> partitions,
               std::function<void(std::vector<txn_partition>)> done) override {
        calls.push_back({m, partitions});
        std::vector<txn_partition> failed;
        for (const auto& p : partitions) {
            if (failing.count(p)) failed.push_back(p);
        }
        if (hold) {
            held = [done, failed] { done(failed); };
            return;
        }
        done(failed);
    }
    std::vector<call> calls;
    std::set<txn_partition> failing;
    bool hold = false;
    std::function<void()> held;
};

struct txn_fixture : ::testing::Test {
    runtime::manual_clock clock{1'000'000};
    manual_timers timers{clock};
    memory_storage storage;
    recording_markers markers;
    int64_t next_pid = 1000;
    std::unique_ptr<txn_coordinator> c;

    void SetUp() override { start(); }
    void start() {
        txn_coordinator_config cfg;
        cfg.state_partitions = 4;
        cfg.max_timeout_ms = 60000;
        cfg.abort_check_interval_ms = 1000;
        c = std::make_unique<txn_coordinator>(cfg, clock, timers, storage, markers,
                                              [this]() -> result<int64_t> { return next_pid++; });
        c->load_owned();
    }
    init_pid_result init(const std::string& id, int32_t timeout_ms = 30000, int64_t pid = -1,
                         int16_t epoch = -1) {
        init_pid_result out{errc::storage_error};
        c->init_producer_id({id, timeout_ms, pid, epoch}, [&](init_pid_result r) { out = r; });
        return out;
    }
    errc add(const std::string& id, const init_pid_result& p, std::vector<txn_partition> parts) {
        errc out = errc::storage_error;
        c->add_partitions({id, p.producer_id, p.producer_epoch, std::move(parts)},
                          [&](errc e) { out = e; });
        return out;
    }
    // Kills the coordinator and starts another on the same log: the markers its replay wrote.
    std::vector<recording_markers::call> restart() {
        markers.calls.clear();
        c.reset();
        start();
        return markers.calls;
    }
    errc end(const std::string& id, const init_pid_result& p, bool commit) {
        errc out = errc::storage_error;
        c->end_txn({id, p.producer_id, p.producer_epoch, commit}, [&](errc e) { out = e; });
        return out;
    }
};

const txn_partition t0{"orders", 0};
const txn_partition t1{"orders", 1};

TEST_F(txn_fixture, init_gives_a_producer_id_and_each_init_bumps_the_epoch) {
    auto a = init("app");
    ASSERT_EQ(a.error, errc::none);
    EXPECT_EQ(a.producer_id, 1000);
    EXPECT_EQ(a.producer_epoch, 0);
    auto b = init("app");
    ASSERT_EQ(b.error, errc::none);
    EXPECT_EQ(b.producer_id, 1000);
    EXPECT_EQ(b.producer_epoch, 1);
    EXPECT_EQ(init("other").producer_id, 1001);
}

TEST_F(txn_fixture, timeout_above_the_maximum_or_not_positive_is_refused) {
    EXPECT_EQ(init("app", 60001).error, errc::invalid_transaction_timeout);
    EXPECT_EQ(init("app", 0).error, errc::invalid_transaction_timeout);
    EXPECT_EQ(c->describe("app").error, errc::transactional_id_not_found);
}

TEST_F(txn_fixture, commit_writes_commit_markers_to_every_partition_then_completes) {
    auto p = init("app");
    ASSERT_EQ(add("app", p, {t0}), errc::none);
    ASSERT_EQ(add("app", p, {t1, t0}), errc::none);
    EXPECT_EQ(c->describe("app").state, txn_state::ongoing);
    EXPECT_EQ(c->describe("app").partitions.size(), 2u);
    ASSERT_EQ(end("app", p, true), errc::none);
    ASSERT_EQ(markers.calls.size(), 1u);
    EXPECT_TRUE(markers.calls[0].m.commit);
    EXPECT_EQ(markers.calls[0].m.producer_id, p.producer_id);
    EXPECT_EQ(markers.calls[0].m.producer_epoch, p.producer_epoch);
    EXPECT_EQ(markers.calls[0].partitions, (std::vector<txn_partition>{t0, t1}));
    auto d = c->describe("app");
    EXPECT_EQ(d.state, txn_state::complete_commit);
    EXPECT_TRUE(d.partitions.empty());
    // A retried EndTxn of the same outcome succeeds; the other outcome is a state error.
    EXPECT_EQ(end("app", p, true), errc::none);
    EXPECT_EQ(end("app", p, false), errc::invalid_txn_state);
    // The next transaction can start with the same epoch.
    EXPECT_EQ(add("app", p, {t1}), errc::none);
    EXPECT_EQ(c->describe("app").state, txn_state::ongoing);
}

TEST_F(txn_fixture, abort_writes_abort_markers) {
    auto p = init("app");
    ASSERT_EQ(add("app", p, {t0}), errc::none);
    ASSERT_EQ(end("app", p, false), errc::none);
    ASSERT_EQ(markers.calls.size(), 1u);
    EXPECT_FALSE(markers.calls[0].m.commit);
    EXPECT_EQ(c->describe("app").state, txn_state::complete_abort);
}

TEST_F(txn_fixture, end_without_a_transaction_is_a_state_error) {
    auto p = init("app");
    EXPECT_EQ(end("app", p, true), errc::invalid_txn_state);
    EXPECT_EQ(end("app", p, false), errc::invalid_txn_state);
    EXPECT_TRUE(markers.calls.empty());
}

TEST_F(txn_fixture, wrong_producer_id_or_old_epoch_is_refused) {
    auto old = init("app");
    auto cur = init("app");
    ASSERT_EQ(cur.producer_epoch, old.producer_epoch + 1);
    EXPECT_EQ(add("app", old, {t0}), errc::producer_fenced);
    init_pid_result stranger{errc::none, 4242, cur.producer_epoch};
    EXPECT_EQ(add("app", stranger, {t0}), errc::invalid_producer_id_mapping);
    EXPECT_EQ(add("nobody", cur, {t0}), errc::invalid_producer_id_mapping);
    EXPECT_EQ(end("app", old, true), errc::producer_fenced);
    EXPECT_EQ(add("app", cur, {t0}), errc::none);
}

TEST_F(txn_fixture, kip360_init_with_a_stale_epoch_is_fenced) {
    auto old = init("app");
    auto cur = init("app");
    EXPECT_EQ(init("app", 30000, old.producer_id, old.producer_epoch).error, errc::producer_fenced);
    auto next = init("app", 30000, cur.producer_id, cur.producer_epoch);
    ASSERT_EQ(next.error, errc::none);
    EXPECT_EQ(next.producer_epoch, cur.producer_epoch + 1);
}

TEST_F(txn_fixture, markers_are_retried_until_every_partition_has_one) {
    auto p = init("app");
    ASSERT_EQ(add("app", p, {t0, t1}), errc::none);
    markers.failing = {t1};
    ASSERT_EQ(end("app", p, true), errc::none);
    EXPECT_EQ(c->describe("app").state, txn_state::prepare_commit);
    // Meanwhile the producer's next transaction waits: its AddPartitionsToTxn is held, not
    // answered; a repeated EndTxn of the completing transaction is told to retry.
    errc held = errc::storage_error;
    bool answered = false;
    c->add_partitions({"app", p.producer_id, p.producer_epoch, {t0}}, [&](errc e) {
        held = e;
        answered = true;
    });
    EXPECT_FALSE(answered);
    EXPECT_EQ(end("app", p, true), errc::concurrent_transactions);
    timers.advance(300);
    ASSERT_GE(markers.calls.size(), 2u);
    EXPECT_EQ(markers.calls.back().partitions, (std::vector<txn_partition>{t1}));
    EXPECT_EQ(c->describe("app").state, txn_state::prepare_commit);
    EXPECT_FALSE(answered);
    markers.failing.clear();
    timers.advance(300);
    // The commit completed, then the held request ran: the next transaction is open.
    ASSERT_TRUE(answered);
    EXPECT_EQ(held, errc::none);
    auto d = c->describe("app");
    EXPECT_EQ(d.state, txn_state::ongoing);
    EXPECT_EQ(d.partitions, (std::set<txn_partition>{t0}));
}

TEST_F(txn_fixture, held_requests_are_bounded_and_answered_when_the_partition_moves) {
    auto p = init("app");
    ASSERT_EQ(add("app", p, {t0}), errc::none);
    markers.failing = {t0};
    ASSERT_EQ(end("app", p, true), errc::none);
    std::vector<errc> answers;
    for (int i = 0; i < 17; ++i) {
        c->add_partitions({"app", p.producer_id, p.producer_epoch, {t1}},
                          [&](errc e) { answers.push_back(e); });
    }
    // Sixteen wait; the seventeenth is told to retry.
    ASSERT_EQ(answers.size(), 1u);
    EXPECT_EQ(answers[0], errc::concurrent_transactions);
    storage.owned = false;
    c->unload_lost();
    ASSERT_EQ(answers.size(), 17u);
    for (size_t i = 1; i < answers.size(); ++i) EXPECT_EQ(answers[i], errc::not_coordinator);
}

TEST_F(txn_fixture, a_new_incarnation_aborts_the_open_transaction_and_fences_the_old_producer) {
    auto zombie = init("app");
    ASSERT_EQ(add("app", zombie, {t0}), errc::none);
    EXPECT_EQ(init("app").error, errc::concurrent_transactions);
    ASSERT_EQ(markers.calls.size(), 1u);
    EXPECT_FALSE(markers.calls[0].m.commit);
    // The abort markers carry the bumped epoch, which fences the zombie at the partitions.
    EXPECT_EQ(markers.calls[0].m.producer_epoch, zombie.producer_epoch + 1);
    EXPECT_EQ(c->describe("app").state, txn_state::complete_abort);
    auto fresh = init("app");
    ASSERT_EQ(fresh.error, errc::none);
    EXPECT_EQ(fresh.producer_epoch, zombie.producer_epoch + 2);
    EXPECT_EQ(end("app", zombie, true), errc::producer_fenced);
    EXPECT_EQ(add("app", zombie, {t1}), errc::producer_fenced);
}

TEST_F(txn_fixture, a_transaction_past_its_timeout_is_aborted_and_its_producer_fenced) {
    auto p = init("app", 5000);
    ASSERT_EQ(add("app", p, {t0}), errc::none);
    timers.advance(4000);
    EXPECT_EQ(c->describe("app").state, txn_state::ongoing);
    timers.advance(2500);
    ASSERT_EQ(markers.calls.size(), 1u);
    EXPECT_FALSE(markers.calls[0].m.commit);
    EXPECT_EQ(c->describe("app").state, txn_state::complete_abort);
    EXPECT_EQ(end("app", p, true), errc::producer_fenced);
}

TEST_F(txn_fixture, a_failed_state_write_changes_nothing_and_is_retriable) {
    auto p = init("app");
    storage.fail_appends = true;
    EXPECT_EQ(add("app", p, {t0}), errc::coordinator_not_available);
    EXPECT_EQ(c->describe("app").state, txn_state::empty);
    EXPECT_EQ(init("fresh").error, errc::coordinator_not_available);
    EXPECT_EQ(c->describe("fresh").error, errc::transactional_id_not_found);
    storage.fail_appends = false;
    EXPECT_EQ(add("app", p, {t0}), errc::none);
}

TEST_F(txn_fixture, replay_restores_ids_and_completes_a_prepared_transaction) {
    auto p = init("app");
    ASSERT_EQ(add("app", p, {t0, t1}), errc::none);
    markers.hold = true;  // the coordinator "dies" with its markers in flight
    ASSERT_EQ(end("app", p, true), errc::none);
    auto q = init("other");
    ASSERT_EQ(add("other", q, {t1}), errc::none);
    markers.hold = false;
    markers.calls.clear();
    c.reset();
    start();
    // The prepared commit is finished by the new coordinator; the open one stays open.
    ASSERT_EQ(markers.calls.size(), 1u);
    EXPECT_TRUE(markers.calls[0].m.commit);
    EXPECT_EQ(markers.calls[0].partitions.size(), 2u);
    EXPECT_EQ(c->describe("app").state, txn_state::complete_commit);
    auto d = c->describe("other");
    EXPECT_EQ(d.state, txn_state::ongoing);
    EXPECT_EQ(d.producer_id, q.producer_id);
    EXPECT_EQ(d.partitions.size(), 1u);
    EXPECT_EQ(end("other", q, false), errc::none);
    // Epochs continue from the replayed state.
    EXPECT_EQ(init("app").producer_epoch, p.producer_epoch + 1);
}

// The completion's record waits completion_write_delay_ms (100 by default) for the next one.
TEST_F(txn_fixture, completion_record_is_written_after_the_delay_when_nothing_follows) {
    auto p = init("app");
    ASSERT_EQ(add("app", p, {t0}), errc::none);
    ASSERT_EQ(end("app", p, true), errc::none);
    const int appended = storage.appends;  // InitProducerId, Ongoing, PrepareCommit
    EXPECT_EQ(appended, 3);
    EXPECT_EQ(c->describe("app").state, txn_state::complete_commit);
    // Killed now, the coordinator's successor finds PrepareCommit and writes the markers again.
    auto replayed = restart();
    ASSERT_EQ(replayed.size(), 1u);
    EXPECT_TRUE(replayed[0].m.commit);
    EXPECT_EQ(replayed[0].partitions, (std::vector<txn_partition>{t0}));
    EXPECT_EQ(c->describe("app").state, txn_state::complete_commit);
    EXPECT_EQ(storage.appends, appended);
    timers.advance(99);
    EXPECT_EQ(storage.appends, appended);
    timers.advance(2);
    EXPECT_EQ(storage.appends, appended + 1);
    // Now the log says CompleteCommit: another restart writes no markers.
    EXPECT_TRUE(restart().empty());
    EXPECT_EQ(c->describe("app").state, txn_state::complete_commit);
    timers.advance(1000);
    EXPECT_EQ(storage.appends, appended + 1);
}

TEST_F(txn_fixture, next_transaction_supersedes_the_completion_record) {
    auto p = init("app");
    ASSERT_EQ(add("app", p, {t0}), errc::none);
    ASSERT_EQ(end("app", p, true), errc::none);
    ASSERT_EQ(add("app", p, {t1}), errc::none);  // at once: no wait for a completion write
    EXPECT_EQ(storage.appends, 4);                // InitProducerId, Ongoing, Prepare, Ongoing
    timers.advance(1000);
    EXPECT_EQ(storage.appends, 4);
    // The log's last record of the id is the open transaction: a restart writes no markers
    // of the first and keeps the second open.
    EXPECT_TRUE(restart().empty());
    auto d = c->describe("app");
    EXPECT_EQ(d.state, txn_state::ongoing);
    EXPECT_EQ(d.partitions, (std::set<txn_partition>{t1}));
}

TEST_F(txn_fixture, a_failed_superseding_write_leaves_the_completion_to_be_written) {
    auto p = init("app");
    ASSERT_EQ(add("app", p, {t0}), errc::none);
    ASSERT_EQ(end("app", p, true), errc::none);
    storage.fail_appends = true;
    EXPECT_EQ(add("app", p, {t1}), errc::coordinator_not_available);
    EXPECT_EQ(c->describe("app").state, txn_state::complete_commit);
    storage.fail_appends = false;
    const int appended = storage.appends;
    timers.advance(101);
    EXPECT_EQ(storage.appends, appended + 1);
    EXPECT_TRUE(restart().empty());
    EXPECT_EQ(c->describe("app").state, txn_state::complete_commit);
}

TEST_F(txn_fixture, with_no_delay_the_completion_is_written_at_once) {
    txn_coordinator_config cfg;
    cfg.state_partitions = 4;
    cfg.completion_write_delay_ms = 0;
    c = std::make_unique<txn_coordinator>(cfg, clock, timers, storage, markers,
                                          [this]() -> result<int64_t> { return next_pid++; });
    c->load_owned();
    auto p = init("app");
    ASSERT_EQ(add("app", p, {t0}), errc::none);
    ASSERT_EQ(end("app", p, false), errc::none);
    EXPECT_EQ(storage.appends, 4);
    EXPECT_EQ(c->describe("app").state, txn_state::complete_abort);
}

TEST_F(txn_fixture, an_answer_for_an_unloaded_incarnation_of_the_id_is_ignored) {
    auto p = init("app");
    ASSERT_EQ(add("app", p, {t0}), errc::none);
    markers.hold = true;
    ASSERT_EQ(end("app", p, true), errc::none);  // its markers in flight
    auto first_round = std::move(markers.held);
    // The partition leaves and comes back in the same process: a new entry for "app" (quite
    // possibly at the old one's address), whose replay sends the markers again.
    storage.owned = false;
    c->unload_lost();
    storage.owned = true;
    c->load_owned();
    ASSERT_EQ(markers.calls.size(), 2u);
    auto second_round = std::move(markers.held);
    markers.hold = false;
    first_round();  // the old entry's answer: not the new one's
    EXPECT_EQ(c->describe("app").state, txn_state::prepare_commit);
    second_round();
    EXPECT_EQ(c->describe("app").state, txn_state::complete_commit);
}

TEST_F(txn_fixture, losing_the_partition_forgets_its_ids) {
    auto p = init("app");
    storage.owned = false;
    c->unload_lost();
    EXPECT_EQ(c->describe("app").error, errc::not_coordinator);
    EXPECT_EQ(add("app", p, {t0}), errc::not_coordinator);
    EXPECT_EQ(c->id_count(), 0u);
}

TEST_F(txn_fixture, list_shows_every_id_with_its_state) {
    auto a = init("a");
    auto b = init("b");
    ASSERT_EQ(add("b", b, {t0}), errc::none);
    auto l = c->list();
    ASSERT_EQ(l.size(), 2u);
    EXPECT_EQ(l[0].transactional_id, "a");
    EXPECT_EQ(l[0].state, txn_state::empty);
    EXPECT_EQ(l[1].state, txn_state::ongoing);
    EXPECT_EQ(l[1].producer_id, b.producer_id);
    EXPECT_GE(l[1].start_ms, 0);
    (void)a;
}

TEST_F(txn_fixture, idle_ids_expire) {
    txn_coordinator_config cfg;
    cfg.state_partitions = 4;
    cfg.abort_check_interval_ms = 1000;
    cfg.id_expiration_ms = 10000;
    c = std::make_unique<txn_coordinator>(cfg, clock, timers, storage, markers,
                                          [this]() -> result<int64_t> { return next_pid++; });
    c->load_owned();
    ASSERT_EQ(init("app").error, errc::none);
    timers.advance(12000);
    EXPECT_EQ(c->describe("app").error, errc::transactional_id_not_found);
    c.reset();
    start();  // the tombstone keeps it gone after a replay
    EXPECT_EQ(c->describe("app").error, errc::transactional_id_not_found);
}

TEST(txn_format, value_round_trips_and_bad_bytes_are_malformed) {
    format::txn_value v;
    v.producer_id = 77;
    v.producer_epoch = 3;
    v.timeout_ms = 60000;
    v.state = txn_state::prepare_commit;
    v.partitions = {{"a", 0}, {"a", 2}, {"b", 1}};
    v.last_update_ms = 123;
    v.start_ms = 100;
    auto bytes = format::encode_txn_value(v);
    auto back = format::decode_txn_value(bytes);
    ASSERT_TRUE(back.has_value());
    EXPECT_EQ(back->producer_id, 77);
    EXPECT_EQ(back->producer_epoch, 3);
    EXPECT_EQ(back->state, txn_state::prepare_commit);
    EXPECT_EQ(back->partitions, v.partitions);
    EXPECT_EQ(back->start_ms, 100);
    for (size_t n = 0; n < bytes.size(); ++n) {
        EXPECT_FALSE(format::decode_txn_value(std::span(bytes).first(n)).has_value()) << n;
    }
    auto key = format::encode_txn_key("my-id");
    // version 0, then a two-byte length and the id.
    ASSERT_EQ(key.size(), 2u + 2u + 5u);
    EXPECT_EQ(*format::decode_txn_key(key), "my-id");
    key[1] = std::byte{1};
    EXPECT_FALSE(format::decode_txn_key(key).has_value());
    bytes[16] = std::byte{42};  // the state byte
    EXPECT_FALSE(format::decode_txn_value(bytes).has_value());
}

TEST(txn_state_names, parse_is_case_insensitive) {
    EXPECT_EQ(parse_txn_state("ongoing"), txn_state::ongoing);
    EXPECT_EQ(parse_txn_state("PrepareCommit"), txn_state::prepare_commit);
    EXPECT_FALSE(parse_txn_state("Nope").has_value());
}

}  // namespace
}  // namespace sluice::coord
