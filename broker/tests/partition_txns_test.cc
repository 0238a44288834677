// The partition's transaction bookkeeping: open transactions and the last stable offset they
// hold back, the aborted-transaction index and its files (write, reload, truncate, retention),
// and the producer-state snapshot (round trip, and every way a snapshot must be refused).

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "broker/partition_txns.h"
#include "broker/producer_snapshot.h"
#include "broker/producer_state.h"
#include "broker/txn_index_format.h"
#include "engine/log_format.h"

using namespace sluice::broker;

namespace {

struct temp_dir {
    std::string path;
    temp_dir() {
        char tmpl[] = "/tmp/sluice-txn-test-XXXXXX";
        path = ::mkdtemp(tmpl);
    }
    ~temp_dir() { std::filesystem::remove_all(path); }
    // An empty segment file, so index files of that base count as belonging to a segment.
    void segment(int64_t base) const {
        std::ofstream(path + "/" +
                      sluice::engine::log_format::segment_file_name(
                          base, sluice::engine::log_format::log_suffix));
    }
    std::string index(int64_t base) const {
        return path + "/" +
               sluice::engine::log_format::segment_file_name(base, txn_format::txn_index_suffix);
    }
};

// Indexes the aborted transaction [first, marker] of `producer_id` (segment `segment_base`).
void index_abort(partition_txns& t, int64_t producer_id, int64_t first, int64_t marker,
                 int64_t segment_base = 0) {
    t.on_data(producer_id, first);
    ASSERT_TRUE(t.on_marker(producer_id, false, marker, segment_base, first).has_value());
}

}  // namespace

TEST(partition_txns, oldest_open_transaction_bounds_the_last_stable_offset) {
    temp_dir d;
    partition_txns t;
    ASSERT_TRUE(t.load(d.path, 0).has_value());
    EXPECT_FALSE(t.first_unstable_offset().has_value());
    t.on_data(7, 10);
    t.on_data(7, 15);  // the same transaction goes on: its first offset stays
    t.on_data(8, 12);
    EXPECT_EQ(t.first_unstable_offset(), 10);
    ASSERT_TRUE(t.on_marker(7, true, 20, 0, 10).has_value());
    EXPECT_EQ(t.first_unstable_offset(), 12);
    ASSERT_TRUE(t.on_marker(8, false, 21, 0, 12).has_value());
    EXPECT_FALSE(t.first_unstable_offset().has_value());
    // Only the abort is indexed.
    ASSERT_EQ(t.aborted().size(), 1u);
    EXPECT_EQ(t.aborted()[0], (aborted_txn{8, 12, 21, 12, 0}));
}

TEST(partition_txns, a_repeated_marker_changes_nothing) {
    temp_dir d;
    partition_txns t;
    ASSERT_TRUE(t.load(d.path, 0).has_value());
    t.on_data(3, 0);
    ASSERT_TRUE(t.on_marker(3, false, 5, 0, 0).has_value());
    ASSERT_TRUE(t.on_marker(3, false, 6, 0, 6).has_value());  // a coordinator's retry
    EXPECT_EQ(t.aborted().size(), 1u);
    EXPECT_EQ(std::filesystem::file_size(d.index(0)), txn_format::txn_index_entry_bytes);
}

TEST(partition_txns, aborted_between_finds_overlapping_transactions) {
    temp_dir d;
    partition_txns t;
    ASSERT_TRUE(t.load(d.path, 0).has_value());
    index_abort(t, 1, 0, 9);
    index_abort(t, 2, 20, 30);
    auto all = t.aborted_between(0, 100);
    EXPECT_EQ(all.size(), 2u);
    auto first = t.aborted_between(5, 20);  // [20, 30] starts at the end: not overlapping
    ASSERT_EQ(first.size(), 1u);
    EXPECT_EQ(first[0].producer_id, 1);
    auto second = t.aborted_between(10, 21);
    ASSERT_EQ(second.size(), 1u);
    EXPECT_EQ(second[0].producer_id, 2);
    EXPECT_TRUE(t.aborted_between(31, 100).empty());
}

TEST(partition_txns, index_files_reload_and_follow_truncation_and_retention) {
    temp_dir d;
    d.segment(0);
    d.segment(100);
    {
        partition_txns t;
        ASSERT_TRUE(t.load(d.path, 0).has_value());
        index_abort(t, 1, 10, 50);
        index_abort(t, 2, 110, 150, 100);
    }
    partition_txns t;
    ASSERT_TRUE(t.load(d.path, 0).has_value());
    ASSERT_EQ(t.aborted().size(), 2u);
    EXPECT_EQ(t.aborted()[1], (aborted_txn{2, 110, 150, 110, 100}));
    // A torn last entry is ignored.
    {
        std::ofstream f(d.index(100), std::ios::app | std::ios::binary);
        f << "junk";
    }
    ASSERT_TRUE(t.load(d.path, 0).has_value());
    EXPECT_EQ(t.aborted().size(), 2u);
    // Truncation below the second abort drops it, and its file with it.
    ASSERT_TRUE(t.truncate(120).has_value());
    EXPECT_EQ(t.aborted().size(), 1u);
    EXPECT_FALSE(std::filesystem::exists(d.index(100)));
    ASSERT_TRUE(t.load(d.path, 0).has_value());
    EXPECT_EQ(t.aborted().size(), 1u);
    // Retention deleted segment 0: its index goes, and entries below the new start too.
    std::filesystem::remove(d.path + "/" + sluice::engine::log_format::segment_file_name(
                                               0, sluice::engine::log_format::log_suffix));
    t.drop_before(100);
    EXPECT_TRUE(t.aborted().empty());
    EXPECT_FALSE(std::filesystem::exists(d.index(0)));
}

TEST(partition_txns, markers_removed_by_compaction_leave_the_index) {
    temp_dir d;
    d.segment(0);
    partition_txns t;
    ASSERT_TRUE(t.load(d.path, 0).has_value());
    index_abort(t, 1, 0, 9);
    index_abort(t, 2, 10, 20);
    // Markers that are not indexed (a COMMIT) change nothing.
    ASSERT_TRUE(t.forget_markers({{1, 5}, {3, 9}}).has_value());
    EXPECT_EQ(t.aborted().size(), 2u);
    ASSERT_TRUE(t.forget_markers({{1, 9}}).has_value());
    ASSERT_EQ(t.aborted().size(), 1u);
    EXPECT_EQ(t.aborted()[0].producer_id, 2);
    EXPECT_TRUE(t.aborted_between(0, 10).empty());
    // The file says the same after a reload; the last entry gone removes it.
    partition_txns again;
    ASSERT_TRUE(again.load(d.path, 0).has_value());
    EXPECT_EQ(again.aborted(), t.aborted());
    ASSERT_TRUE(t.forget_markers({{2, 20}}).has_value());
    EXPECT_FALSE(std::filesystem::exists(d.index(0)));
}

TEST(producer_snapshot, round_trip_restores_producers_and_open_transactions) {
    temp_dir d;
    producer_state ps;
    ps.commit({5, 2, 0, 10}, 100, 109);
    ps.commit({5, 2, 10, 10}, 110, 119);
    ps.commit({6, 0, 0, 1}, 120, 120);
    partition_txns txns;
    ASSERT_TRUE(txns.load(d.path, 0).has_value());
    txns.on_data(6, 120);
    ASSERT_TRUE(save_producer_snapshot(d.path, 121, ps, txns).has_value());
    producer_state back;
    partition_txns open;
    ASSERT_TRUE(open.load(d.path, 0).has_value());
    auto at = load_producer_snapshot(d.path, 0, 200, back, open);
    ASSERT_EQ(at, 121);
    // A retry of producer 5's last batch is recognised with its first offsets.
    auto dup = back.check({5, 2, 10, 10});
    EXPECT_EQ(dup.v, producer_state::verdict::duplicate);
    EXPECT_EQ(dup.base_offset, 110);
    EXPECT_EQ(back.check({5, 2, 20, 1}).v, producer_state::verdict::accept);
    EXPECT_EQ(back.check({5, 1, 20, 1}).v, producer_state::verdict::fenced_epoch);
    EXPECT_EQ(open.first_unstable_offset(), 120);
}

TEST(producer_snapshot, refused_when_torn_corrupt_or_outside_the_log) {
    temp_dir d;
    producer_state ps;
    ps.commit({5, 0, 0, 1}, 10, 10);
    partition_txns txns;
    ASSERT_TRUE(txns.load(d.path, 0).has_value());
    ASSERT_TRUE(save_producer_snapshot(d.path, 11, ps, txns).has_value());
    std::string path = d.path + "/" + std::string(txn_format::snapshot_file);
    producer_state out;
    partition_txns t;
    // Its offset lies past the log end (a tail was lost) or below the log start.
    EXPECT_FALSE(load_producer_snapshot(d.path, 0, 10, out, t).has_value());
    EXPECT_FALSE(load_producer_snapshot(d.path, 12, 20, out, t).has_value());
    EXPECT_EQ(out.producers(), 0u);
    // A flipped byte fails the checksum; a cut file is refused.
    auto size = std::filesystem::file_size(path);
    {
        std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
        f.seekp(static_cast<std::streamoff>(size - 1));
        f.put('\x7f');
    }
    EXPECT_FALSE(load_producer_snapshot(d.path, 0, 20, out, t).has_value());
    std::filesystem::resize_file(path, size / 2);
    EXPECT_FALSE(load_producer_snapshot(d.path, 0, 20, out, t).has_value());
    remove_producer_snapshot(d.path);
    EXPECT_FALSE(std::filesystem::exists(path));
    EXPECT_FALSE(load_producer_snapshot(d.path, 0, 20, out, t).has_value());
    EXPECT_EQ(out.producers(), 0u);
}

TEST(producer_state, a_marker_with_a_bumped_epoch_fences_the_old_producer) {
    producer_state s;
    s.commit({4, 1, 0, 5}, 0, 4);
    s.on_marker(4, 2);  // the coordinator aborted with epoch 2
    EXPECT_EQ(s.check({4, 1, 5, 1}).v, producer_state::verdict::fenced_epoch);
    // Markers and offset commits carry no sequence; their epoch is still checked.
    EXPECT_EQ(s.check({4, 1, -1, 1}).v, producer_state::verdict::fenced_epoch);
    EXPECT_EQ(s.check({4, 3, 0, 1}).v, producer_state::verdict::accept);
    // A marker of the current epoch keeps the sequences.
    s.commit({4, 3, 0, 1}, 10, 10);
    s.on_marker(4, 3);
    EXPECT_EQ(s.check({4, 3, 0, 1}).v, producer_state::verdict::duplicate);
}
