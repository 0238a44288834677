// Injected disk faults through testing::fault_fs: write and fsync errors fail-stop the
// partition; a full disk only refuses appends until space returns; power loss keeps every
// append acknowledged under fsync=always; torn writes recover to the last valid batch.

#include <gtest/gtest.h>

#include "engine/errc.h"
#include "engine/tests/engine_fixture.h"

namespace sluice::engine::test {
namespace {

using fault_test = engine_fixture;

// The same faults whether segment writes go through the ring or, small enough, are written on
// the reactor thread (log_config::inline_write_bytes).
class write_path_fault_test : public engine_fixture,
                              public ::testing::WithParamInterface<uint64_t> {
  protected:
    void SetUp() override { cfg.inline_write_bytes = GetParam(); }
    void expect_write_path() {
        if (GetParam() > 0) {
            EXPECT_GT(log->stats().inline_writes, 0u);
        } else {
            EXPECT_EQ(log->stats().inline_writes, 0u);
        }
    }
};

INSTANTIATE_TEST_SUITE_P(write_paths, write_path_fault_test,
                         ::testing::Values(uint64_t{0}, uint64_t{1} << 20),
                         [](const auto& info) {
                             return std::string(info.param == 0 ? "ring" : "inline");
                         });

TEST_P(write_path_fault_test, failed_write_fail_stops_the_partition) {
    open();
    ASSERT_TRUE(append(batch(1)).has_value());
    fs.fail_next_write(".log");
    auto r = append(batch(1));
    ASSERT_FALSE(r.has_value());
    EXPECT_TRUE(r.error().is(errc::partition_failed));
    EXPECT_NE(r.error().detail().find(seg_path(0, ".log")), std::string::npos) << r.error().detail();
    EXPECT_TRUE(log->failed());
    // Never retried: everything later gets the stored error.
    auto again = append(batch(1));
    ASSERT_FALSE(again.has_value());
    EXPECT_EQ(again.error().detail(), r.error().detail());
    EXPECT_FALSE(log->read(model::offset(0), 100, model::offset(INT64_MAX), true).has_value());
    EXPECT_FALSE(flush().has_value());
    EXPECT_EQ(log->log_end_offset()(), 1);
    expect_write_path();
}

TEST_F(fault_test, failed_fsync_fail_stops_and_nothing_later_is_acked) {
    cfg.fsync = fsync_policy::always;
    open();
    ASSERT_TRUE(append(batch(1)).has_value());
    fs.fail_next_fsync(".log");
    int errors = 0, acks = 0;
    for (int i = 0; i < 5; ++i) {
        append_async(batch(1), [&](result<append_result> r) { r ? ++acks : ++errors; });
    }
    reactor->run_until([&] { return errors + acks == 5; });
    EXPECT_EQ(acks, 0);
    EXPECT_EQ(errors, 5);
    EXPECT_TRUE(log->failed());
    EXPECT_NE(log->status().error().detail().find("fdatasync"), std::string::npos);
    EXPECT_FALSE(append(batch(1)).has_value());
    EXPECT_EQ(log->recovery_point()(), 1);
}

TEST_F(fault_test, failed_fsync_of_a_rolled_segment_fail_stops) {
    open();
    ASSERT_TRUE(append(batch(10)).has_value());
    fs.fail_next_fsync(seg_path(0, ".log"));
    ASSERT_TRUE(log->roll().has_value());  // the old segment's fdatasync fails
    reactor->run_until([&] { return log->failed(); });
    EXPECT_FALSE(append(batch(1)).has_value());
}

TEST_P(write_path_fault_test, power_loss_under_always_keeps_every_acked_append) {
    cfg.fsync = fsync_policy::always;
    cfg.segment_bytes = 2048;
    open();
    int64_t acked_end = 0;
    for (int i = 0; i < 40; ++i) {
        auto r = append(batch(2, 100 + i, "p"));
        ASSERT_TRUE(r.has_value());
        acked_end = r->last_offset() + 1;
    }
    expect_write_path();
    // In flight when the power goes: not acknowledged, may or may not survive.
    append_async(batch(2), [](result<append_result>) {});
    reactor->run_once(std::chrono::microseconds(0));
    crash();
    fs.lose_power();
    open();
    ASSERT_TRUE(log->status().has_value()) << log->status().error().describe();
    EXPECT_GE(log->log_end_offset()(), acked_end);
    auto recs = read_all();
    ASSERT_GE(recs.size(), static_cast<size_t>(acked_end));
    for (int64_t i = 0; i < acked_end; ++i) EXPECT_EQ(recs[static_cast<size_t>(i)].offset, i);
}

TEST_F(fault_test, power_loss_with_torn_unsynced_write_recovers_to_last_valid_batch) {
    cfg.preallocate = false;
    open();
    ASSERT_TRUE(append(batch(3)).has_value());
    ASSERT_TRUE(flush().has_value());  // offsets 0..2 durable
    for (int i = 0; i < 5; ++i) ASSERT_TRUE(append(batch(3)).has_value());  // acked, not synced
    crash();
    fs.lose_power(20);  // a torn piece of the first unsynced write survives
    open();
    ASSERT_TRUE(log->status().has_value()) << log->status().error().describe();
    EXPECT_EQ(log->log_end_offset()(), 3);
    EXPECT_EQ(log->stats().truncated_bytes, 20u);
    EXPECT_EQ(read_all().size(), 3u);
    ASSERT_TRUE(append(batch(1)).has_value());
}

TEST_F(fault_test, torn_write_fails_then_recovers_on_reopen) {
    cfg.preallocate = false;
    open();
    ASSERT_TRUE(append(batch(2)).has_value());
    fs.tear_next_write(".log", 25);
    auto r = append(batch(2));
    ASSERT_FALSE(r.has_value());
    EXPECT_TRUE(log->failed());
    crash();
    open();
    ASSERT_TRUE(log->status().has_value()) << log->status().error().describe();
    EXPECT_EQ(log->log_end_offset()(), 2);
    EXPECT_EQ(log->stats().truncated_bytes, 25u);
}

TEST_F(fault_test, failed_checkpoint_write_fail_stops) {
    open();
    ASSERT_TRUE(append(batch(2)).has_value());
    fs.fail_next_fsync("partition.checkpoint");
    auto r = log->delete_records_before(model::offset(1));
    ASSERT_FALSE(r.has_value());
    EXPECT_TRUE(log->failed());
}

TEST_F(fault_test, a_full_disk_refuses_appends_until_space_returns_and_loses_nothing) {
    cfg.segment_bytes = 4096;  // preallocated in steps capped at the segment size
    open();
    ASSERT_TRUE(append(batch(5)).has_value());
    fs.set_full(true);
    // Appends fill the space already allocated, then the roll to a new segment needs more.
    int64_t acked_end = 5;
    std::optional<error> refused;
    for (int i = 0; i < 200 && !refused; ++i) {
        auto r = append(batch(5, 2000 + i));
        if (r) {
            EXPECT_EQ(r->base_offset(), acked_end);
            acked_end = r->last_offset() + 1;
        } else {
            refused = r.error();
        }
    }
    ASSERT_TRUE(refused.has_value());
    EXPECT_TRUE(refused->is(errc::no_space)) << refused->describe();
    EXPECT_FALSE(log->failed()) << "a full disk is not a failed partition";
    EXPECT_EQ(log->stats().no_space_refusals, 1u);
    // Refused again while full; nothing was assigned an offset meanwhile.
    EXPECT_FALSE(append(batch(1)).has_value());
    EXPECT_EQ(log->log_end_offset()(), acked_end);
    // Reads go on.
    EXPECT_EQ(read_all().size(), static_cast<size_t>(acked_end));
    // Space returns: appends resume right after the last acknowledged offset.
    fs.set_full(false);
    auto again = append(batch(3));
    ASSERT_TRUE(again.has_value()) << again.error().describe();
    EXPECT_EQ(again->base_offset(), acked_end);
    ASSERT_TRUE(flush().has_value());
    crash();
    open();
    ASSERT_TRUE(log->status().has_value()) << log->status().error().describe();
    auto recs = read_all();
    ASSERT_EQ(recs.size(), static_cast<size_t>(acked_end + 3));
    for (size_t i = 0; i < recs.size(); ++i) EXPECT_EQ(recs[i].offset, static_cast<int64_t>(i));
}

TEST_F(fault_test, a_full_disk_refuses_delete_records_without_moving_the_log_start) {
    open();
    ASSERT_TRUE(append(batch(4)).has_value());
    fs.set_full(true);
    auto r = log->delete_records_before(model::offset(2));
    ASSERT_FALSE(r.has_value());
    EXPECT_TRUE(r.error().is(errc::no_space));
    EXPECT_FALSE(log->failed());
    EXPECT_EQ(log->log_start_offset()(), 0);
    fs.set_full(false);
    ASSERT_TRUE(log->delete_records_before(model::offset(2)).has_value());
    EXPECT_EQ(log->log_start_offset()(), 2);
}

TEST_F(fault_test, retention_frees_space_on_a_full_disk) {
    cfg.segment_bytes = 1024;
    open();
    for (int i = 0; i < 20; ++i) ASSERT_TRUE(append(batch(5, 1000 + i)).has_value());
    ASSERT_TRUE(flush().has_value());
    reactor->run_until([&] { return log->closed_segments().size() >= 2; });
    fs.set_full(true);
    // Deleting whole segments needs no new space, even though the checkpoint cannot be written.
    ASSERT_TRUE(log->delete_oldest_segments(1).has_value());
    EXPECT_FALSE(log->failed());
    int64_t start = log->log_start_offset()();
    EXPECT_GT(start, 0);
    fs.set_full(false);
    crash();
    open();
    EXPECT_EQ(log->log_start_offset()(), start);
}

TEST_F(fault_test, the_owner_hears_of_a_failure_with_its_cause_and_can_take_a_log_offline) {
    open();
    std::vector<error> heard;
    log->on_failure([&](const error& e) { heard.push_back(e); });
    ASSERT_TRUE(append(batch(1)).has_value());
    fs.fail_next_write(".log");
    EXPECT_FALSE(append(batch(1)).has_value());
    reactor->run_until([&] { return !heard.empty(); });
    ASSERT_EQ(heard.size(), 1u);
    EXPECT_TRUE(heard[0].is(errc::io_error)) << heard[0].describe();

    // A healthy partition whose dir went offline: fail-stopped from outside.
    crash();
    open();
    ASSERT_TRUE(log->status().has_value());
    log->take_offline(error(errc::io_error, "log dir offline"));
    EXPECT_TRUE(log->failed());
    auto r = append(batch(1));
    ASSERT_FALSE(r.has_value());
    EXPECT_NE(r.error().detail().find("log dir offline"), std::string::npos);
}

}  // namespace
}  // namespace sluice::engine::test
