// Behaviour of a healthy partition log: appends, reads, rolls, lookups, truncation.

#include <gtest/gtest.h>

#include <filesystem>

#include "base/bytes.h"
#include "engine/errc.h"
#include "engine/tests/engine_fixture.h"

namespace sluice::engine::test {
namespace {

using partition_log_test = engine_fixture;

TEST_F(partition_log_test, append_assigns_offsets_and_reads_back) {
    open();
    auto a = append(batch(3, 1000, "a"));
    ASSERT_TRUE(a.has_value()) << a.error().describe();
    EXPECT_EQ(a->base_offset(), 0);
    EXPECT_EQ(a->last_offset(), 2);
    EXPECT_EQ(a->log_append_time(), -1);
    auto b = append(batch(2, 2000, "b"));
    ASSERT_TRUE(b.has_value());
    EXPECT_EQ(b->base_offset(), 3);
    EXPECT_EQ(log->log_end_offset()(), 5);
    auto recs = read_all();
    ASSERT_EQ(recs.size(), 5u);
    EXPECT_EQ(recs[0].value, "a0");
    EXPECT_EQ(recs[3].value, "b0");
    EXPECT_EQ(recs[3].offset, 3);
    EXPECT_TRUE(std::filesystem::exists(seg_path(0, ".log")));
}

TEST_F(partition_log_test, appends_in_one_iteration_share_one_write) {
    open();
    int acked = 0;
    for (int i = 0; i < 10; ++i) {
        append_async(batch(1), [&](result<append_result> r) {
            EXPECT_TRUE(r.has_value());
            EXPECT_EQ(r->base_offset(), acked);  // acks in offset order
            ++acked;
        });
    }
    reactor->run_until([&] { return acked == 10; });
    EXPECT_EQ(log->stats().writes, 1u);
    EXPECT_EQ(log->stats().appends, 10u);
}

TEST_F(partition_log_test, invalid_batch_is_rejected_and_nothing_written) {
    open();
    ASSERT_TRUE(append(batch(1)).has_value());
    auto good = batch(2);
    auto bad = batch(2);
    bad[bad.size() - 1] ^= std::byte{0xff};  // CRC mismatch
    std::vector<std::byte> both = good;
    both.insert(both.end(), bad.begin(), bad.end());
    auto r = append(both);
    ASSERT_FALSE(r.has_value());
    EXPECT_TRUE(r.error().is(errc::invalid_batch)) << r.error().describe();
    auto trailing = good;
    trailing.push_back(std::byte{1});
    EXPECT_FALSE(append(trailing).has_value());
    EXPECT_EQ(log->log_end_offset()(), 1);
    EXPECT_EQ(read_all().size(), 1u);
    EXPECT_EQ(log->active_segment().size_bytes, batch(1).size());
}

TEST_F(partition_log_test, batch_over_max_message_bytes_is_rejected) {
    cfg.max_message_bytes = 100;
    open();
    auto r = append(batch(20));
    ASSERT_FALSE(r.has_value());
    EXPECT_TRUE(r.error().is(errc::batch_too_large));
}

TEST_F(partition_log_test, log_append_time_and_leader_epoch_are_rewritten) {
    cfg.message_timestamp_type = timestamp_type::log_append_time;
    open();
    clock.set_ms(1'800'000'000'000);
    append_options o;
    o.leader_epoch = model::leader_epoch(7);
    auto a = append(batch(2, 5), o);
    ASSERT_TRUE(a.has_value());
    EXPECT_EQ(a->log_append_time(), 1'800'000'000'000);
    auto rr = log->read(model::offset(0), 1 << 20, model::offset(INT64_MAX), false);
    ASSERT_TRUE(rr.has_value());
    auto bytes = region_bytes(*rr);
    auto h = model::validate(bytes, {1 << 20});
    ASSERT_TRUE(h.has_value()) << h.error().describe();  // CRC recomputed
    EXPECT_TRUE(h->log_append_time());
    EXPECT_EQ(h->max_timestamp, 1'800'000'000'000);
    EXPECT_EQ(h->partition_leader_epoch, 7);
    for (auto& rec : records_of(bytes)) EXPECT_EQ(rec.timestamp, 1'800'000'000'000);
}

TEST_F(partition_log_test, a_follower_append_keeps_the_leaders_offsets_and_epochs) {
    open();
    // The leader's log: offsets 0-2 at epoch 3, then (after compaction left a gap) 10-11.
    auto first = batch(3, 1000, "a");
    model::set_partition_leader_epoch(first, 3);
    auto second = batch(2, 2000, "b");
    model::set_base_offset(second, 10);
    model::set_partition_leader_epoch(second, 4);
    append_options follower;
    follower.keep_offsets = true;
    auto a = append(first, follower);
    ASSERT_TRUE(a.has_value()) << a.error().describe();
    EXPECT_EQ(a->base_offset(), 0);
    auto b = append(second, follower);
    ASSERT_TRUE(b.has_value()) << b.error().describe();
    EXPECT_EQ(b->base_offset(), 10);
    EXPECT_EQ(b->last_offset(), 11);
    EXPECT_EQ(log->log_end_offset()(), 12);
    auto recs = read_all();
    ASSERT_EQ(recs.size(), 5u);
    EXPECT_EQ(recs[3].offset, 10);
    EXPECT_EQ(recs[3].value, "b0");
    auto rr = log->read(model::offset(10), 1 << 20, model::offset(INT64_MAX), false);
    ASSERT_TRUE(rr.has_value());
    auto bytes = region_bytes(*rr);
    auto h = model::validate(bytes, {1 << 20});
    ASSERT_TRUE(h.has_value());
    EXPECT_EQ(h->partition_leader_epoch, 4);
    // A batch that goes back below the log end is refused and changes nothing.
    auto stale = batch(1, 3000, "c");
    model::set_base_offset(stale, 11);
    auto c = append(stale, follower);
    ASSERT_FALSE(c.has_value());
    EXPECT_TRUE(c.error().is(errc::invalid_batch)) << c.error().describe();
    EXPECT_EQ(log->log_end_offset()(), 12);
}

TEST_F(partition_log_test, rolls_on_size_and_reads_across_segments) {
    cfg.segment_bytes = 1024;
    open();
    for (int i = 0; i < 40; ++i) ASSERT_TRUE(append(batch(2, 1000 + i * 10, "x")).has_value());
    ASSERT_TRUE(flush().has_value());
    auto closed = log->closed_segments();
    ASSERT_GE(closed.size(), 3u);
    for (size_t i = 0; i < closed.size(); ++i) {
        EXPECT_LE(closed[i].size_bytes, 1024u);
        EXPECT_GT(closed[i].max_timestamp(), 0);
        EXPECT_EQ(std::filesystem::file_size(closed[i].path), closed[i].size_bytes);  // no prealloc tail
        if (i + 1 < closed.size()) {
            EXPECT_EQ(closed[i].next_offset, closed[i + 1].base_offset);
        }
    }
    auto recs = read_all();
    ASSERT_EQ(recs.size(), 80u);
    for (size_t i = 0; i < recs.size(); ++i) EXPECT_EQ(recs[i].offset, static_cast<int64_t>(i));
    // A read from the middle of a later segment starts at the batch containing the offset.
    auto mid = read_all(51);
    ASSERT_FALSE(mid.empty());
    EXPECT_EQ(mid.front().offset, 50);
    EXPECT_GE(log->stats().segments_rolled, 3u);
}

TEST_F(partition_log_test, rolls_on_segment_ms_with_manual_clock) {
    cfg.segment_ms = 60'000;
    open();
    ASSERT_TRUE(append(batch(1)).has_value());
    clock.advance_ms(30'000);
    ASSERT_TRUE(append(batch(1)).has_value());
    EXPECT_EQ(log->closed_segments().size(), 0u);
    clock.advance_ms(30'000);
    auto r = append(batch(1));
    ASSERT_TRUE(r.has_value());
    auto closed = log->closed_segments();
    ASSERT_EQ(closed.size(), 1u);
    EXPECT_EQ(log->active_segment().base_offset(), 2);
    EXPECT_TRUE(std::filesystem::exists(seg_path(2, ".log")));
}

TEST_F(partition_log_test, read_bounds_max_bytes_upper_offset_and_min_one_batch) {
    open();
    for (int i = 0; i < 5; ++i) ASSERT_TRUE(append(batch(2)).has_value());  // offsets 0..9
    const size_t one = batch(2).size();
    auto rr = log->read(model::offset(0), one * 2 + 1, model::offset(INT64_MAX), false);
    ASSERT_TRUE(rr.has_value());
    EXPECT_EQ(rr->total_bytes, one * 2);
    EXPECT_EQ(rr->first_offset(), 0);
    EXPECT_EQ(rr->last_offset(), 3);
    // upper_exclusive: only whole batches below it.
    rr = log->read(model::offset(0), 1 << 20, model::offset(5), false);
    ASSERT_TRUE(rr.has_value());
    EXPECT_EQ(rr->last_offset(), 3);
    // max_bytes smaller than a batch: nothing, unless min_one_batch.
    rr = log->read(model::offset(4), 10, model::offset(INT64_MAX), false);
    ASSERT_TRUE(rr.has_value());
    EXPECT_EQ(rr->total_bytes, 0u);
    EXPECT_TRUE(rr->regions.empty());
    rr = log->read(model::offset(5), 10, model::offset(INT64_MAX), true);
    ASSERT_TRUE(rr.has_value());
    EXPECT_EQ(rr->total_bytes, one);
    EXPECT_EQ(rr->first_offset(), 4);
    // At the log end: empty. Past it or below the start: out of range.
    rr = log->read(model::offset(10), 1 << 20, model::offset(INT64_MAX), true);
    ASSERT_TRUE(rr.has_value());
    EXPECT_EQ(rr->total_bytes, 0u);
    auto oor = log->read(model::offset(11), 1 << 20, model::offset(INT64_MAX), true);
    ASSERT_FALSE(oor.has_value());
    EXPECT_TRUE(oor.error().is(errc::offset_out_of_range));
}

TEST_F(partition_log_test, reads_that_skip_by_the_index_match_a_batch_by_batch_walk) {
    // Batches of varied sizes over several segments (16 KiB each, index every 512 bytes): a
    // read takes the batches between its first one and an indexed one without reading their
    // headers, and must still end exactly where walking every batch ends.
    open();
    struct info {
        int64_t base, last;
        size_t size;
    };
    std::vector<info> batches;
    for (int i = 0; i < 120; ++i) {
        auto b = batch(1 + (i * 7) % 23, 1000 + i, std::string(1 + (i * 13) % 90, 'x'));
        size_t size = b.size();
        auto r = append(std::move(b));
        ASSERT_TRUE(r.has_value()) << r.error().describe();
        batches.push_back({r->base_offset(), r->last_offset(), size});
    }
    ASSERT_GT(log->closed_segments().size(), 1u);
    const int64_t end = batches.back().last + 1;
    const size_t sizes[] = {1, 700, 3000, 9000, 30'000, 100'000, 1 << 20};
    const int64_t uppers[] = {end / 3, end - 5, INT64_MAX};
    int compared = 0;
    for (int64_t start = 0; start < end; start += 3) {
        for (size_t max_bytes : sizes) {
            for (int64_t upper : uppers) {
                for (bool min_one : {false, true}) {
                    // The walk: whole batches from the one holding `start`, per segment rules
                    // are the same because a read never splits a batch.
                    size_t total = 0;
                    int64_t first = -1, last = -1;
                    for (const auto& b : batches) {
                        if (b.last < start) continue;
                        if (b.last >= std::min(upper, end)) break;
                        if (total + b.size > max_bytes && !(min_one && total == 0)) break;
                        if (first < 0) first = b.base;
                        last = b.last;
                        total += b.size;
                    }
                    auto rr = log->read(model::offset(start), max_bytes, model::offset(upper),
                                        min_one);
                    ASSERT_TRUE(rr.has_value()) << rr.error().describe();
                    SCOPED_TRACE("start " + std::to_string(start) + " max " +
                                 std::to_string(max_bytes) + " upper " + std::to_string(upper) +
                                 " min_one " + std::to_string(min_one));
                    ASSERT_EQ(rr->total_bytes, total);
                    size_t in_regions = 0;
                    for (const auto& region : rr->regions) in_regions += region.length;
                    ASSERT_EQ(in_regions, total);
                    if (total > 0) {
                        ASSERT_EQ(rr->first_offset(), first);
                        ASSERT_EQ(rr->last_offset(), last);
                    }
                    ++compared;
                }
            }
        }
    }
    EXPECT_GT(compared, 1000);
}

TEST_F(partition_log_test, a_large_read_does_not_read_every_batch_header) {
    cfg.segment_bytes = 8 << 20;
    open();
    for (int i = 0; i < 64; ++i) {
        ASSERT_TRUE(append(batch(16, 1000, std::string(500, 'a' + i % 26))).has_value());
    }
    const uint64_t before = fs.reads();
    auto all = log->read(model::offset(0), 8 << 20, model::offset(INT64_MAX), false);
    ASSERT_TRUE(all.has_value());
    EXPECT_EQ(all->last_offset(), 64 * 16 - 1);
    EXPECT_EQ(all->regions.size(), 1u);
    // The first batch's header, the indexed last batch's header, the end: not 64 reads.
    EXPECT_LE(fs.reads() - before, 4u);
    // Half the log: still a handful of reads, and whole batches only.
    const uint64_t mid = fs.reads();
    auto half = log->read(model::offset(100), all->total_bytes / 2, model::offset(INT64_MAX), false);
    ASSERT_TRUE(half.has_value());
    EXPECT_LE(half->total_bytes, all->total_bytes / 2);
    EXPECT_EQ((half->last_offset() + 1) % 16, 0);
    EXPECT_LE(fs.reads() - mid, 6u);
}

TEST_F(partition_log_test, unwritten_appends_are_not_visible) {
    open();
    ASSERT_TRUE(append(batch(1)).has_value());
    bool acked = false;
    append_async(batch(1), [&](result<append_result>) { acked = true; });
    // The write has not even been submitted yet.
    EXPECT_EQ(log->log_end_offset()(), 1);
    auto rr = log->read(model::offset(0), 1 << 20, model::offset(INT64_MAX), true);
    ASSERT_TRUE(rr.has_value());
    EXPECT_EQ(rr->last_offset(), 0);
    EXPECT_FALSE(log->read(model::offset(2), 100, model::offset(INT64_MAX), true).has_value());
    reactor->run_until([&] { return acked; });
    EXPECT_EQ(log->log_end_offset()(), 2);
}

TEST_F(partition_log_test, offset_for_timestamp_uses_index_then_scan) {
    cfg.segment_bytes = 1024;
    cfg.index_interval_bytes = 64;
    open();
    for (int i = 0; i < 30; ++i) ASSERT_TRUE(append(batch(3, 10'000 + i * 100)).has_value());
    // Batch i holds offsets 3i..3i+2 with timestamps 10000+100i+{0,1,2}.
    auto r = log->offset_for_timestamp(model::timestamp_ms(10'000 + 17 * 100 + 1));
    ASSERT_TRUE(r.has_value() && r->has_value());
    EXPECT_EQ((*r)->offset(), 17 * 3 + 1);
    EXPECT_EQ((*r)->timestamp(), 10'000 + 17 * 100 + 1);
    r = log->offset_for_timestamp(model::timestamp_ms(10'000 + 17 * 100 + 50));
    ASSERT_TRUE(r->has_value());
    EXPECT_EQ((*r)->offset(), 18 * 3);
    r = log->offset_for_timestamp(model::timestamp_ms(0));
    EXPECT_EQ((*r)->offset(), 0);
    r = log->offset_for_timestamp(model::timestamp_ms(1'000'000));
    EXPECT_FALSE(r->has_value());
    r = log->offset_for_timestamp(model::timestamp_ms(partition_log::earliest_timestamp));
    EXPECT_EQ((*r)->offset(), 0);
    r = log->offset_for_timestamp(model::timestamp_ms(partition_log::latest_timestamp));
    EXPECT_EQ((*r)->offset(), 90);
    r = log->offset_for_timestamp(model::timestamp_ms(partition_log::max_timestamp));
    EXPECT_EQ((*r)->offset(), 89);
    EXPECT_EQ((*r)->timestamp(), 10'000 + 29 * 100 + 2);
}

TEST_F(partition_log_test, offset_for_timestamp_in_compressed_batch) {
    open();
    ASSERT_TRUE(append(batch(5, 100, "z", model::compression::zstd)).has_value());
    auto r = log->offset_for_timestamp(model::timestamp_ms(103));
    ASSERT_TRUE(r.has_value() && r->has_value());
    EXPECT_EQ((*r)->offset(), 3);
}

TEST_F(partition_log_test, truncate_to_drops_batches_and_reuses_offsets) {
    cfg.segment_bytes = 1024;
    open();
    for (int i = 0; i < 30; ++i) ASSERT_TRUE(append(batch(2, 1000 + i)).has_value());
    ASSERT_GE(log->closed_segments().size(), 2u);
    auto first_closed_end = log->closed_segments()[0].next_offset();
    ASSERT_TRUE(truncate(first_closed_end + 3).has_value());  // inside a batch: cut at its base
    EXPECT_EQ(log->log_end_offset()(), first_closed_end + 2);
    EXPECT_EQ(log->closed_segments().size(), 1u);
    auto r = append(batch(1, 5000, "new"));
    ASSERT_TRUE(r.has_value());
    EXPECT_EQ(r->base_offset(), first_closed_end + 2);
    auto recs = read_all();
    ASSERT_EQ(recs.size(), static_cast<size_t>(first_closed_end + 3));
    EXPECT_EQ(recs.back().value, "new0");
    ASSERT_TRUE(close().has_value());
    open();
    EXPECT_EQ(read_all().size(), static_cast<size_t>(first_closed_end + 3));
    // Truncating to the start empties the log and restarts it there.
    ASSERT_TRUE(truncate(0).has_value());
    EXPECT_EQ(log->log_end_offset()(), 0);
    EXPECT_TRUE(read_all().empty());
}

TEST_F(partition_log_test, delete_records_before_advances_start_and_deletes_segments) {
    cfg.segment_bytes = 1024;
    open();
    for (int i = 0; i < 60; ++i) ASSERT_TRUE(append(batch(2)).has_value());
    auto closed = log->closed_segments();
    ASSERT_GE(closed.size(), 3u);
    int64_t cut = closed[1].base_offset() + 1;
    ASSERT_TRUE(log->delete_records_before(model::offset(cut)).has_value());
    EXPECT_EQ(log->log_start_offset()(), cut);
    EXPECT_FALSE(std::filesystem::exists(closed[0].path));
    EXPECT_TRUE(std::filesystem::exists(closed[1].path));
    auto low = log->read(model::offset(cut - 1), 100, model::offset(INT64_MAX), true);
    ASSERT_FALSE(low.has_value());
    EXPECT_TRUE(low.error().is(errc::offset_out_of_range));
    EXPECT_FALSE(log->delete_records_before(model::offset(1000)).has_value());
    ASSERT_TRUE(close().has_value());
    open();
    EXPECT_EQ(log->log_start_offset()(), cut);  // checkpointed
    EXPECT_EQ(read_all().front().offset, cut - 1);  // whole batch containing the start
}

TEST_F(partition_log_test, delete_oldest_segments_and_replace_segment) {
    cfg.segment_bytes = 1024;
    open();
    for (int i = 0; i < 60; ++i) ASSERT_TRUE(append(batch(2)).has_value());
    auto closed = log->closed_segments();
    ASSERT_GE(closed.size(), 3u);
    ASSERT_TRUE(log->delete_oldest_segments(1).has_value());
    EXPECT_EQ(log->log_start_offset()(), closed[1].base_offset());
    // Rewrite the (now) oldest segment keeping only its first batch.
    auto seg = log->closed_segments()[0];
    auto rr = log->read(seg.base_offset, 1, model::offset(INT64_MAX), true);
    ASSERT_TRUE(rr.has_value());
    auto first = region_bytes(*rr);
    {
        auto f = fs.open(seg.path + ".cleaned", open_mode::truncate);
        ASSERT_TRUE(f.has_value());
        ASSERT_TRUE((*f)->write_sync(0, first).has_value());
        ASSERT_TRUE((*f)->sync().has_value());
    }
    ASSERT_TRUE(log->replace_segment(seg.base_offset).has_value());
    EXPECT_EQ(std::filesystem::file_size(seg.path), first.size());
    auto recs = read_all();
    EXPECT_EQ(recs[0].offset, seg.base_offset());
    EXPECT_EQ(recs[2].offset, closed[2].base_offset());  // the rest of the segment is gone
    ASSERT_TRUE(close().has_value());
    open();
    EXPECT_EQ(read_all().size(), recs.size());
}

TEST_F(partition_log_test, open_files_stay_within_the_lru_bound) {
    cfg.segment_bytes = 512;
    cfg.max_open_segment_files = 3;
    open();
    for (int i = 0; i < 80; ++i) ASSERT_TRUE(append(batch(2)).has_value());
    ASSERT_GE(log->closed_segments().size(), 8u);
    std::vector<read_result> held;
    for (const auto& s : log->closed_segments()) {
        auto rr = log->read(s.base_offset, 1 << 20, model::offset(INT64_MAX), true);
        ASSERT_TRUE(rr.has_value());
        held.push_back(*rr);
        EXPECT_LE(log->open_segment_files(), 3u + 1u);
    }
    // Regions of evicted segments still read correctly: their descriptors are kept alive.
    EXPECT_EQ(records_of(region_bytes(held.front())).front().offset, 0);
}

TEST_F(partition_log_test, reopen_after_clean_close_serves_identical_bytes) {
    cfg.segment_bytes = 2048;
    open();
    for (int i = 0; i < 25; ++i) ASSERT_TRUE(append(batch(3, 100 + i)).has_value());
    auto before = log->read(model::offset(0), 1 << 20, model::offset(INT64_MAX), true);
    ASSERT_TRUE(before.has_value());
    auto bytes_before = region_bytes(*before);
    auto segments_before = log->closed_segments().size();
    ASSERT_TRUE(close().has_value());
    EXPECT_TRUE(std::filesystem::exists(pdir() + "/.sluice_clean_shutdown"));
    open();
    EXPECT_FALSE(std::filesystem::exists(pdir() + "/.sluice_clean_shutdown"));
    EXPECT_EQ(log->stats().recovered_bytes, 0u);  // clean: nothing rescanned
    EXPECT_EQ(log->closed_segments().size(), segments_before);
    auto after = log->read(model::offset(0), 1 << 20, model::offset(INT64_MAX), true);
    ASSERT_TRUE(after.has_value());
    EXPECT_EQ(region_bytes(*after), bytes_before);
    EXPECT_EQ(log->log_end_offset()(), 75);
    auto r = append(batch(1));
    ASSERT_TRUE(r.has_value());
    EXPECT_EQ(r->base_offset(), 75);
}

TEST_F(partition_log_test, group_commit_fsyncs_fewer_times_than_appends) {
    cfg.fsync = fsync_policy::always;
    open();
    int acked = 0;
    constexpr int n = 50;
    for (int round = 0; round < 5; ++round) {
        for (int i = 0; i < n / 5; ++i) {
            append_async(batch(1), [&](result<append_result> r) {
                EXPECT_TRUE(r.has_value());
                ++acked;
            });
        }
        reactor->run_once(std::chrono::microseconds(0));
    }
    reactor->run_until([&] { return acked == n; });
    EXPECT_LT(log->stats().fsyncs, static_cast<uint64_t>(n));
    EXPECT_GE(log->stats().fsyncs, 1u);
    EXPECT_EQ(log->recovery_point()(), n);
}

TEST_F(partition_log_test, always_acks_only_after_fsync) {
    cfg.fsync = fsync_policy::always;
    open();
    uint64_t before = fs.fsyncs();
    ASSERT_TRUE(append(batch(1)).has_value());
    EXPECT_GT(fs.fsyncs(), before);
    EXPECT_EQ(log->recovery_point()(), 1);
}

TEST_F(partition_log_test, batch_policy_lingers_then_fsyncs) {
    cfg.fsync = fsync_policy::batch;
    cfg.batch_linger_ms = 5;
    open();
    int acked = 0;
    for (int i = 0; i < 20; ++i) {
        append_async(batch(1), [&](result<append_result> r) { acked += r.has_value(); });
        reactor->run_once(std::chrono::microseconds(0));
    }
    reactor->run_until([&] { return acked == 20; });
    EXPECT_LT(log->stats().fsyncs, 20u);
}

TEST_F(partition_log_test, never_policy_fsyncs_on_flush_messages) {
    cfg.flush_messages = 4;
    open();
    for (int i = 0; i < 4; ++i) ASSERT_TRUE(append(batch(1)).has_value());
    reactor->run_until([&] { return log->recovery_point()() == 4; });
    EXPECT_GE(log->stats().fsyncs, 1u);
}

TEST_F(partition_log_test, a_full_append_buffer_holds_appends_and_admits_them_in_order) {
    cfg.append_buffer_max_bytes = 1000;
    open();
    std::vector<int64_t> bases;
    int failed = 0;
    for (int i = 0; i < 50; ++i) {
        // Distinct values so that the log's order can be checked against the append order.
        append_async(batch(2, 1000, "a" + std::to_string(i) + "-"), [&](result<append_result> r) {
            if (r) {
                bases.push_back(r->base_offset());
            } else {
                ++failed;
            }
        });
        // The buffer is full after a few appends: the rest must wait, not be refused.
        if (i == 10) {
            EXPECT_FALSE(log->has_room(100));
        }
    }
    reactor->run_until([&] { return bases.size() + static_cast<size_t>(failed) == 50; });
    EXPECT_EQ(failed, 0);
    EXPECT_GT(log->stats().held_appends, 0u);
    ASSERT_EQ(bases.size(), 50u);
    for (size_t i = 0; i < bases.size(); ++i) EXPECT_EQ(bases[i], static_cast<int64_t>(2 * i));
    auto recs = read_all();
    ASSERT_EQ(recs.size(), 100u);
    for (size_t i = 0; i < recs.size(); ++i) {
        EXPECT_EQ(recs[i].value, "a" + std::to_string(i / 2) + "-" + std::to_string(i % 2));
    }
    EXPECT_TRUE(log->has_room(100));
}

TEST_F(partition_log_test, when_room_fires_once_the_buffer_drains) {
    cfg.append_buffer_max_bytes = 1000;
    open();
    int acked = 0;
    while (log->has_room(400)) {
        append_async(batch(4), [&](result<append_result> r) { acked += r.has_value(); });
    }
    const int issued = static_cast<int>(log->stats().appends);
    ASSERT_GT(issued, 0);
    EXPECT_EQ(log->stats().held_appends, 0u);  // has_room() kept every one of them admitted
    bool room = false;
    log->when_room(400, [&] { room = true; });
    EXPECT_FALSE(room);  // never from inside the call
    reactor->run_until([&] { return room; });
    EXPECT_TRUE(log->has_room(400));
    reactor->run_until([&] { return acked == issued; });
}

TEST_F(partition_log_test, appends_made_during_a_truncation_wait_and_follow_it) {
    open();
    for (int i = 0; i < 5; ++i) ASSERT_TRUE(append(batch(1)).has_value());
    std::optional<result<void>> truncated;
    log->truncate_to(model::offset(2), [&](result<void> r) { truncated = std::move(r); });
    EXPECT_FALSE(log->has_room(10));
    std::optional<result<append_result>> appended;
    append_async(batch(3, 1000, "late"), [&](result<append_result> r) {
        EXPECT_TRUE(truncated.has_value());  // admitted after the truncation, not before
        appended = std::move(r);
    });
    reactor->run_until([&] { return appended.has_value(); });
    ASSERT_TRUE(truncated->has_value());
    ASSERT_TRUE(appended->has_value()) << appended->error().describe();
    EXPECT_EQ((*appended)->base_offset(), 2);
    auto recs = read_all();
    ASSERT_EQ(recs.size(), 5u);
    EXPECT_EQ(recs[1].value, "v0");
    EXPECT_EQ(recs[2].value, "late0");
    EXPECT_EQ(recs[4].value, "late2");
}

TEST_F(partition_log_test, closing_writes_the_held_appends_first) {
    cfg.append_buffer_max_bytes = 1000;
    open();
    int answered = 0;
    for (int i = 0; i < 20; ++i) {
        append_async(batch(2), [&](result<append_result>) { ++answered; });
    }
    ASSERT_GT(log->stats().held_appends, 0u);
    // Closing still writes what was held: nothing accepted is dropped.
    ASSERT_TRUE(close().has_value());
    EXPECT_EQ(answered, 20);
    open();
    EXPECT_EQ(read_all().size(), 40u);
}

TEST_F(partition_log_test, preallocation_grows_in_steps_ahead_of_writes) {
    cfg.segment_bytes = 1 << 20;
    cfg.preallocate_step_bytes = 64 * 1024;
    open();
    // A new segment reserves one step, not the whole segment.
    EXPECT_EQ(std::filesystem::file_size(seg_path(0, ".log")), 64u * 1024);
    std::string big(30 * 1024, 'x');
    for (int i = 0; i < 4; ++i) ASSERT_TRUE(append(batch(1, 1000 + i, big)).has_value());
    // ~120 KiB written: the reservation moved ahead of the write position, still below 1 MiB.
    auto size = std::filesystem::file_size(seg_path(0, ".log"));
    EXPECT_GT(size, 120u * 1024);
    EXPECT_LE(size, 256u * 1024);
    auto recs = read_all();
    ASSERT_EQ(recs.size(), 4u);
    // A clean close drops the unused reservation.
    ASSERT_TRUE(close().has_value());
    EXPECT_LT(std::filesystem::file_size(seg_path(0, ".log")), 125u * 1024);
}


}  // namespace
}  // namespace sluice::engine::test
