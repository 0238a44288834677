// enforce_retention: time, size, both, unlimited; the active segment is never deleted; the new
// log start offset survives a reopen and reads below it are out of range.

#include "engine/retention.h"

#include <gtest/gtest.h>

#include "engine/tests/log_harness.h"

namespace sluice::engine {
namespace {

using test::log_harness;

constexpr int64_t hour_ms = 3600 * 1000;

// Appends `segments` closed segments of `batches` one-record batches each (values of a fixed
// size), the records of segment i stamped `t0 + i hours`, then leaves an active segment holding
// one more batch stamped at the latest time.
void fill(log_harness& h, int segments, int batches, int64_t t0) {
    const std::string value(100, 'v');
    for (int s = 0; s < segments; ++s) {
        for (int b = 0; b < batches; ++b) {
            h.append_records({{test::numbered("k", b), value}}, t0 + s * hour_ms);
        }
        h.roll();
    }
    h.append_records({{"active", value}}, t0 + segments * hour_ms);
}

TEST(retention, unlimited_policy_deletes_nothing) {
    log_harness h;
    h.open();
    fill(h, 3, 4, h.clock.now_ms());
    h.clock.advance_ms(1000 * hour_ms);
    auto n = enforce_retention(*h.log, {}, h.clock.now_ms());
    ASSERT_TRUE(n.has_value()) << n.error().describe();
    EXPECT_EQ(*n, 0u);
    EXPECT_EQ(h.log->closed_segments().size(), 3u);
    EXPECT_EQ(h.log->log_start_offset()(), 0);
}

TEST(retention, time_deletes_segments_older_than_retention_ms) {
    log_harness h;
    h.open();
    const int64_t t0 = h.clock.now_ms();
    fill(h, 4, 3, t0);  // segment i max timestamp t0 + i h; active at t0 + 4 h
    auto closed = h.log->closed_segments();
    ASSERT_EQ(closed.size(), 4u);
    // now = t0 + 10 h, retention 8 h: horizon t0 + 2 h; segments 0 and 1 are strictly older.
    h.clock.set_ms(t0 + 10 * hour_ms);
    auto n = enforce_retention(*h.log, {.retention_ms = 8 * hour_ms}, h.clock.now_ms());
    ASSERT_TRUE(n.has_value()) << n.error().describe();
    EXPECT_EQ(*n, 2u);
    auto left = h.log->closed_segments();
    ASSERT_EQ(left.size(), 2u);
    EXPECT_EQ(left[0].base_offset, closed[2].base_offset);
    EXPECT_EQ(h.log->log_start_offset()(), closed[2].base_offset());
    // A second pass at the same time has nothing more to do.
    auto again = enforce_retention(*h.log, {.retention_ms = 8 * hour_ms}, h.clock.now_ms());
    ASSERT_TRUE(again.has_value());
    EXPECT_EQ(*again, 0u);
}

TEST(retention, time_never_deletes_the_active_segment) {
    log_harness h;
    h.open();
    fill(h, 2, 2, h.clock.now_ms());
    const int64_t end = h.log->log_end_offset()();
    h.clock.advance_ms(1000 * hour_ms);  // everything, the active segment too, is expired
    auto n = enforce_retention(*h.log, {.retention_ms = 1}, h.clock.now_ms());
    ASSERT_TRUE(n.has_value()) << n.error().describe();
    EXPECT_EQ(*n, 2u);
    EXPECT_TRUE(h.log->closed_segments().empty());
    EXPECT_EQ(h.log->active_segment().base_offset(), 4);
    EXPECT_EQ(h.log->log_start_offset()(), 4);
    EXPECT_EQ(h.log->log_end_offset()(), end);
    auto recs = h.read_all();
    ASSERT_EQ(recs.size(), 1u);
    EXPECT_EQ(recs[0].key, "active");
}

TEST(retention, size_deletes_oldest_while_the_rest_stays_above_retention_bytes) {
    log_harness h;
    h.open();
    fill(h, 5, 4, h.clock.now_ms());
    auto closed = h.log->closed_segments();
    ASSERT_EQ(closed.size(), 5u);
    const uint64_t seg_bytes = closed[0].size_bytes;
    for (const auto& s : closed) ASSERT_EQ(s.size_bytes, seg_bytes);
    const uint64_t active_bytes = h.log->active_segment().size_bytes;
    // Keep at least 2 segments + the active: deleting a third would leave less than that.
    const int64_t limit = static_cast<int64_t>(2 * seg_bytes + active_bytes);
    auto n = enforce_retention(*h.log, {.retention_bytes = limit}, h.clock.now_ms());
    ASSERT_TRUE(n.has_value()) << n.error().describe();
    EXPECT_EQ(*n, 3u);
    ASSERT_EQ(h.log->closed_segments().size(), 2u);
    EXPECT_EQ(h.log->log_start_offset()(), closed[3].base_offset());
    // One byte more than what is left: nothing more may go.
    auto more = enforce_retention(*h.log, {.retention_bytes = limit + 1}, h.clock.now_ms());
    ASSERT_TRUE(more.has_value());
    EXPECT_EQ(*more, 0u);
}

TEST(retention, size_zero_keeps_only_the_active_segment) {
    log_harness h;
    h.open();
    fill(h, 3, 2, h.clock.now_ms());
    auto n = enforce_retention(*h.log, {.retention_bytes = 0}, h.clock.now_ms());
    ASSERT_TRUE(n.has_value());
    EXPECT_EQ(*n, 3u);
    EXPECT_TRUE(h.log->closed_segments().empty());
    EXPECT_EQ(h.read_all().size(), 1u);
}

TEST(retention, time_and_size_together_delete_the_union) {
    log_harness h;
    h.open();
    const int64_t t0 = h.clock.now_ms();
    fill(h, 6, 2, t0);
    auto closed = h.log->closed_segments();
    const uint64_t seg_bytes = closed[0].size_bytes;
    const uint64_t active_bytes = h.log->active_segment().size_bytes;
    h.clock.set_ms(t0 + 10 * hour_ms);
    // Time alone: horizon t0 + 1 h removes segment 0 only. Size alone: keep 3 segments + active,
    // removing 3. Together: the larger, 3.
    retention_policy both{.retention_ms = 9 * hour_ms,
                          .retention_bytes = static_cast<int64_t>(3 * seg_bytes + active_bytes)};
    auto n = enforce_retention(*h.log, both, h.clock.now_ms());
    ASSERT_TRUE(n.has_value());
    EXPECT_EQ(*n, 3u);
    // Now time dominates: horizon t0 + 5 h (retention 5 h) removes segments 3 and 4 too.
    both.retention_ms = 5 * hour_ms;
    n = enforce_retention(*h.log, both, h.clock.now_ms());
    ASSERT_TRUE(n.has_value());
    EXPECT_EQ(*n, 2u);
    ASSERT_EQ(h.log->closed_segments().size(), 1u);
    EXPECT_EQ(h.log->closed_segments()[0].base_offset, closed[5].base_offset);
}

TEST(retention, time_stops_at_the_first_segment_within_retention) {
    log_harness h;
    h.open();
    const int64_t t0 = h.clock.now_ms();
    // Segment 0 is newer than segment 1 (producer timestamps need not increase).
    h.append_records({{"a", "1"}}, t0 + 5 * hour_ms);
    h.roll();
    h.append_records({{"b", "2"}}, t0);
    h.roll();
    h.append_records({{"c", "3"}}, t0 + 6 * hour_ms);
    h.clock.set_ms(t0 + 6 * hour_ms);
    auto n = enforce_retention(*h.log, {.retention_ms = 2 * hour_ms}, h.clock.now_ms());
    ASSERT_TRUE(n.has_value());
    EXPECT_EQ(*n, 0u);  // segment 1 is expired but segment 0 before it is not
}

TEST(retention, new_log_start_is_persisted_and_reads_below_it_are_out_of_range) {
    log_harness h;
    h.open();
    fill(h, 3, 5, h.clock.now_ms());
    const int64_t end = h.log->log_end_offset()();
    auto n = enforce_retention(*h.log, {.retention_bytes = 0}, h.clock.now_ms());
    ASSERT_TRUE(n.has_value());
    ASSERT_EQ(*n, 3u);
    EXPECT_EQ(h.log->log_start_offset()(), 15);

    h.reopen();
    EXPECT_EQ(h.log->log_start_offset()(), 15);
    EXPECT_EQ(h.log->log_end_offset()(), end);
    for (int64_t below : {0, 7, 14}) {
        auto r = h.log->read(model::offset(below), 1 << 20, model::offset(end), true);
        ASSERT_FALSE(r.has_value()) << "offset " << below;
        EXPECT_TRUE(r.error().is(errc::offset_out_of_range)) << r.error().describe();
    }
    auto recs = h.read_all();
    ASSERT_EQ(recs.size(), 1u);
    EXPECT_EQ(recs[0].offset, 15);
    // Appends continue after the reopen.
    auto a = h.append_records({{"after", "x"}}, h.clock.now_ms());
    EXPECT_EQ(a.base_offset(), 16);
}

}  // namespace
}  // namespace sluice::engine
