// Compaction: the pure batch filter, then whole logs for every codec -- latest value per key,
// original offsets readable through partition_log::read, tombstones dropped only after
// delete.retention.ms, records without keys and control batches kept, the key map bound, and
// appends that go on while a compaction is in flight.

#include "engine/compaction.h"

#include <gtest/gtest.h>

#include <future>
#include <map>

#include "engine/tests/log_harness.h"

namespace sluice::engine {
namespace {

using model::compression;
using test::log_harness;
using test::stored_record;

constexpr int64_t hour_ms = 3600 * 1000;
using kv = std::pair<std::optional<std::string>, std::optional<std::string>>;

// Runs one compaction to completion on the harness's reactor.
result<compaction_stats> compact(log_harness& h, compaction_options opts = {}) {
    compactor c;
    std::optional<result<compaction_stats>> got;
    auto started = c.start(*h.log, h.fs, *h.reactor, std::move(opts), h.clock.now_ms(),
                           [&](result<compaction_stats> r) { got.emplace(std::move(r)); });
    if (!started) return started.error();
    h.reactor->run_until([&] { return got.has_value(); });
    return std::move(*got);
}

// offset -> (key, value) of everything readable.
std::map<int64_t, std::pair<std::optional<std::string>, std::optional<std::string>>> contents(
    log_harness& h) {
    std::map<int64_t, std::pair<std::optional<std::string>, std::optional<std::string>>> out;
    for (auto& r : h.read_all()) out[r.offset] = {r.key, r.value};
    return out;
}

// Headers of every batch readable from the log (to check codecs and offsets of rebuilt batches).
std::vector<model::batch_header> batch_headers(log_harness& h) {
    std::vector<model::batch_header> out;
    auto rr = h.log->read(model::offset(h.log->log_start_offset()()), 64 << 20,
                          model::offset(h.log->log_end_offset()()), true);
    EXPECT_TRUE(rr.has_value());
    if (!rr) return out;
    for (const auto& region : rr->regions) {
        std::vector<std::byte> bytes(region.length);
        EXPECT_EQ(::pread(region.file->get(), bytes.data(), bytes.size(),
                          static_cast<off_t>(region.offset)),
                  static_cast<ssize_t>(bytes.size()));
        model::batch_iterator it(bytes);
        model::batch_header hd;
        std::span<const std::byte> b;
        while (it.next(hd, b)) out.push_back(hd);
    }
    return out;
}

std::vector<std::byte> make_batch(const std::vector<kv>& recs, int64_t base_offset,
                                  compression codec = compression::none) {
    model::batch_options o;
    o.base_offset = base_offset;
    o.codec = codec;
    o.producer_id = 42;
    o.producer_epoch = 3;
    o.base_sequence = 100;
    o.partition_leader_epoch = 7;
    model::batch_builder b(o);
    for (const auto& [k, v] : recs) {
        model::nullable_bytes key, value;
        if (k) key = model::bytes_of(*k);
        if (v) value = model::bytes_of(*v);
        b.add(key, value, 1000 + static_cast<int64_t>(b.record_count()));
    }
    auto bytes = b.build();
    SLUICE_ASSERT(bytes.has_value(), "build");
    return *bytes;
}

// ---------------------------------------------------------------------------------------------
// The pure parts.

TEST(key_map, keeps_latest_offset_and_respects_its_bound) {
    key_map m(2 * (key_map::entry_overhead_bytes + 1));
    EXPECT_TRUE(m.update(model::bytes_of("a"), 1));
    EXPECT_TRUE(m.update(model::bytes_of("b"), 2));
    EXPECT_TRUE(m.update(model::bytes_of("a"), 5));  // existing key: no new bytes
    EXPECT_FALSE(m.update(model::bytes_of("c"), 6));
    EXPECT_EQ(m.latest(model::bytes_of("a")), 5);
    EXPECT_EQ(m.latest(model::bytes_of("b")), 2);
    EXPECT_EQ(m.latest(model::bytes_of("c")), std::nullopt);
    EXPECT_EQ(m.size(), 2u);
}

TEST(filter_batch, keeps_header_fields_and_offsets_of_retained_records) {
    for (compression codec : {compression::none, compression::gzip, compression::snappy,
                              compression::lz4, compression::zstd}) {
        SCOPED_TRACE(static_cast<int>(codec));
        auto batch = make_batch(
            {{"a", "1"}, {"b", "2"}, {"a", "3"}, {std::nullopt, "x"}, {"c", "4"}}, 500, codec);
        auto h = model::parse_header(batch);
        ASSERT_TRUE(h.has_value());
        key_map m(1 << 20);
        ASSERT_TRUE(m.update(model::bytes_of("a"), 502));
        ASSERT_TRUE(m.update(model::bytes_of("b"), 501));
        ASSERT_TRUE(m.update(model::bytes_of("c"), 900));  // superseded in a later batch
        compaction_scratch scratch;
        compaction_stats stats;
        std::vector<std::byte> out;
        auto fate = filter_batch(batch, *h, m, false, false, 1 << 20, scratch, out, stats);
        ASSERT_TRUE(fate.has_value()) << fate.error().describe();
        EXPECT_EQ(*fate, batch_fate::rewritten);

        auto v = model::validate(out, {});
        ASSERT_TRUE(v.has_value()) << v.error().describe();
        EXPECT_EQ(v->base_offset, 500);
        EXPECT_EQ(v->last_offset_delta, 4);  // the original batch's range is kept
        EXPECT_EQ(v->record_count, 3);
        EXPECT_EQ(v->producer_id, 42);
        EXPECT_EQ(v->producer_epoch, 3);
        EXPECT_EQ(v->base_sequence, 100);
        EXPECT_EQ(v->partition_leader_epoch, 7);
        EXPECT_EQ(v->codec(), codec);
        std::vector<std::pair<int64_t, std::string>> got;
        std::vector<std::byte> tmp;
        auto walk = model::for_each_record(out, *v, tmp, [&](const model::record_view& r) {
            got.emplace_back(r.offset(*v), std::string(model::string_of(*r.value)));
            EXPECT_EQ(r.timestamp(*v), 1000 + r.offset_delta);  // timestamps survive
        });
        ASSERT_TRUE(walk.has_value());
        EXPECT_EQ(got, (std::vector<std::pair<int64_t, std::string>>{
                           {501, "2"}, {502, "3"}, {503, "x"}}));
        EXPECT_EQ(stats.records_superseded, 2u);
        EXPECT_EQ(stats.records_kept, 3u);
    }
}

TEST(filter_batch, batch_keeping_everything_is_copied_byte_for_byte) {
    auto batch = make_batch({{"a", "1"}, {"b", "2"}}, 10, compression::lz4);
    auto h = model::parse_header(batch);
    ASSERT_TRUE(h.has_value());
    key_map m(1 << 20);
    ASSERT_TRUE(m.update(model::bytes_of("a"), 10));
    ASSERT_TRUE(m.update(model::bytes_of("b"), 11));
    compaction_scratch scratch;
    compaction_stats stats;
    std::vector<std::byte> out;
    auto fate = filter_batch(batch, *h, m, true, false, 1 << 20, scratch, out, stats);
    ASSERT_TRUE(fate.has_value());
    EXPECT_EQ(*fate, batch_fate::copied);
    EXPECT_EQ(out, batch);
}

TEST(filter_batch, empty_result_is_dropped_or_kept_as_an_empty_batch) {
    auto batch = make_batch({{"a", "1"}, {"a", std::nullopt}}, 20, compression::zstd);
    auto h = model::parse_header(batch);
    ASSERT_TRUE(h.has_value());
    key_map m(1 << 20);
    ASSERT_TRUE(m.update(model::bytes_of("a"), 21));
    compaction_scratch scratch;
    compaction_stats stats;
    std::vector<std::byte> out;
    // Not past delete.retention.ms: the tombstone stays.
    auto fate = filter_batch(batch, *h, m, false, false, 1 << 20, scratch, out, stats);
    ASSERT_TRUE(fate.has_value());
    EXPECT_EQ(*fate, batch_fate::rewritten);
    out.clear();
    fate = filter_batch(batch, *h, m, true, false, 1 << 20, scratch, out, stats);
    ASSERT_TRUE(fate.has_value());
    EXPECT_EQ(*fate, batch_fate::dropped);
    EXPECT_TRUE(out.empty());
    fate = filter_batch(batch, *h, m, true, true, 1 << 20, scratch, out, stats);
    ASSERT_TRUE(fate.has_value());
    EXPECT_EQ(*fate, batch_fate::emptied);
    auto v = model::validate(out, {});
    ASSERT_TRUE(v.has_value()) << v.error().describe();
    EXPECT_EQ(v->record_count, 0);
    EXPECT_EQ(v->base_offset, 20);
    EXPECT_EQ(v->last_offset(), 21);
    EXPECT_EQ(v->producer_id, 42);
}

TEST(filter_batch, control_batches_are_kept) {
    auto batch = model::make_control_batch(42, 3, model::control_type::commit, 5, 1234, 77);
    auto h = model::parse_header(batch);
    ASSERT_TRUE(h.has_value());
    key_map m(1 << 20);
    compaction_scratch scratch;
    compaction_stats stats;
    std::vector<std::byte> out;
    auto fate = filter_batch(batch, *h, m, true, false, 1 << 20, scratch, out, stats);
    ASSERT_TRUE(fate.has_value());
    EXPECT_EQ(*fate, batch_fate::copied);
    EXPECT_EQ(out, batch);
}

// ---------------------------------------------------------------------------------------------
// Whole logs.

class compaction_codec : public ::testing::TestWithParam<compression> {};

// Three closed segments and an active one:
//   seg A: 0 k1=a1, 1 k2=a2, 2 k3=a3, 3 (no key)=n1
//   seg B: 4 k1=b1, 5 k2=null (tombstone), 6 k4=b4
//   seg C: 7 k3=c3, 8 k4=c4
//   active: 9 k1=d1
void fill_standard(log_harness& h, compression codec, int64_t ts) {
    h.append_records({{"k1", "a1"}, {"k2", "a2"}, {"k3", "a3"}, {std::nullopt, "n1"}}, ts, codec);
    h.roll();
    h.append_records({{"k1", "b1"}, {"k2", std::nullopt}}, ts, codec);
    h.append_records({{"k4", "b4"}}, ts, codec);
    h.roll();
    h.append_records({{"k3", "c3"}, {"k4", "c4"}}, ts, codec);
    h.roll();
    h.append_records({{"k1", "d1"}}, ts, codec);
}

TEST_P(compaction_codec, keeps_latest_value_per_key_at_original_offsets) {
    log_harness h;
    h.open();
    fill_standard(h, GetParam(), h.clock.now_ms());
    auto stats = compact(h);
    ASSERT_TRUE(stats.has_value()) << stats.error().describe();
    EXPECT_EQ(stats->segments_mapped, 3u);
    EXPECT_EQ(stats->segments_rewritten, 2u);  // A and B lose records; C keeps all
    EXPECT_EQ(stats->segments_unchanged, 1u);
    EXPECT_EQ(stats->records_superseded, 4u);  // k1 a1, k2 a2, k3 a3, k4 b4
    EXPECT_EQ(stats->tombstones_dropped, 0u);

    using m = std::map<int64_t, kv>;
    const m expected{{3, {std::nullopt, "n1"}}, {4, {"k1", "b1"}}, {5, {"k2", std::nullopt}},
                     {7, {"k3", "c3"}},         {8, {"k4", "c4"}}, {9, {"k1", "d1"}}};
    EXPECT_EQ(contents(h), expected);
    EXPECT_EQ(h.log->log_end_offset()(), 10);
    // Rebuilt batches keep their codec; the emptied last batch of segment B is written plain.
    for (const auto& hd : batch_headers(h)) {
        EXPECT_EQ(hd.codec(), hd.record_count > 0 ? GetParam() : compression::none);
    }

    // Reads starting at a removed offset land on the batch that covered it.
    auto rr = h.log->read(model::offset(1), 1 << 20, model::offset(10), true);
    ASSERT_TRUE(rr.has_value()) << rr.error().describe();
    EXPECT_EQ(rr->first_offset(), 0);  // the rebuilt batch kept its base offset
    auto from6 = h.read_from(6);
    ASSERT_FALSE(from6.empty());
    EXPECT_EQ(from6.front().offset, 7);

    // Everything survives a reopen (recovery scans the rewritten segments).
    h.reopen();
    EXPECT_EQ(contents(h), expected);
    EXPECT_EQ(h.log->log_end_offset()(), 10);

    // Compacting again finds nothing more to do.
    auto again = compact(h);
    ASSERT_TRUE(again.has_value());
    EXPECT_EQ(again->segments_rewritten, 0u);
    EXPECT_EQ(contents(h), expected);
}

TEST_P(compaction_codec, tombstones_dropped_only_after_delete_retention_ms) {
    log_harness h;
    h.open();
    const int64_t t0 = h.clock.now_ms();
    fill_standard(h, GetParam(), t0);
    compaction_options opts;
    opts.delete_retention_ms = 2 * hour_ms;

    h.clock.set_ms(t0 + hour_ms);
    auto early = compact(h, opts);
    ASSERT_TRUE(early.has_value()) << early.error().describe();
    EXPECT_EQ(early->tombstones_dropped, 0u);
    EXPECT_TRUE(contents(h).contains(5));

    h.clock.set_ms(t0 + 2 * hour_ms);  // exactly at the horizon: still kept
    auto edge = compact(h, opts);
    ASSERT_TRUE(edge.has_value());
    EXPECT_EQ(edge->tombstones_dropped, 0u);

    h.clock.set_ms(t0 + 2 * hour_ms + 1);
    auto late = compact(h, opts);
    ASSERT_TRUE(late.has_value()) << late.error().describe();
    EXPECT_EQ(late->tombstones_dropped, 1u);
    auto c = contents(h);
    EXPECT_FALSE(c.contains(5));
    for (const auto& [off, rec] : c) EXPECT_NE(rec.first, "k2") << off;
    EXPECT_TRUE(c.contains(4));
    EXPECT_EQ(h.log->log_end_offset()(), 10);
}

INSTANTIATE_TEST_SUITE_P(codecs, compaction_codec,
                         ::testing::Values(compression::none, compression::gzip,
                                           compression::snappy, compression::lz4,
                                           compression::zstd),
                         [](const auto& info) {
                             switch (info.param) {
                                 case compression::none:
                                     return std::string("none");
                                 case compression::gzip:
                                     return std::string("gzip");
                                 case compression::snappy:
                                     return std::string("snappy");
                                 case compression::lz4:
                                     return std::string("lz4");
                                 case compression::zstd:
                                     return std::string("zstd");
                             }
                             return std::string("unknown");
                         });

TEST(compaction, active_segment_is_never_compacted) {
    log_harness h;
    h.open();
    h.append_records({{"k", "1"}}, h.clock.now_ms());
    h.roll();
    h.append_records({{"k", "2"}}, h.clock.now_ms());
    h.append_records({{"k", "3"}}, h.clock.now_ms());  // both stay: they are in the active segment
    auto stats = compact(h);
    ASSERT_TRUE(stats.has_value());
    EXPECT_EQ(stats->segments_mapped, 1u);
    EXPECT_EQ(stats->segments_rewritten, 0u);  // its only record is the latest of the closed ones
    auto c = contents(h);
    EXPECT_EQ(c.size(), 3u);
}

TEST(compaction, records_without_keys_are_kept) {
    log_harness h;
    h.open();
    for (int i = 0; i < 5; ++i)
        h.append_records({{std::nullopt, std::to_string(i)}, {"k", "v"}}, 1);
    h.roll();
    h.append_records({{"x", "y"}}, 1);
    auto stats = compact(h);
    ASSERT_TRUE(stats.has_value()) << stats.error().describe();
    auto c = contents(h);
    int unkeyed = 0;
    for (const auto& [off, rec] : c) unkeyed += rec.first ? 0 : 1;
    EXPECT_EQ(unkeyed, 5);
    EXPECT_EQ(c.size(), 7u);  // 5 unkeyed, the latest k, x
    EXPECT_EQ(c.at(9).second, "v");
}

// A transactional batch of `producer_id` with the given records, all at timestamp `ts`.
std::vector<std::byte> txn_batch(const std::vector<kv>& recs, int32_t base_sequence, int64_t ts,
                                 int64_t producer_id = 9, int16_t producer_epoch = 1) {
    model::batch_options o;
    o.producer_id = producer_id;
    o.producer_epoch = producer_epoch;
    o.base_sequence = base_sequence;
    o.transactional = true;
    model::batch_builder b(o);
    for (const auto& [k, v] : recs) {
        model::nullable_bytes key, value;
        if (k) key = model::bytes_of(*k);
        if (v) value = model::bytes_of(*v);
        b.add(key, value, ts);
    }
    auto bytes = b.build();
    EXPECT_TRUE(bytes.has_value());
    return bytes ? std::move(*bytes) : std::vector<std::byte>{};
}

TEST(compaction, control_batches_and_transactional_batches_are_kept) {
    log_harness h;
    h.open();
    ASSERT_TRUE(h.append(txn_batch({{"k", "old"}, {"k", "new"}}, 0, 5)).has_value());
    ASSERT_TRUE(
        h.append(model::make_control_batch(9, 1, model::control_type::commit, 0, 7)).has_value());
    h.roll();
    h.append_records({{"z", "z"}}, 8);
    auto stats = compact(h);
    ASSERT_TRUE(stats.has_value()) << stats.error().describe();
    auto headers = batch_headers(h);
    ASSERT_EQ(headers.size(), 3u);
    EXPECT_TRUE(headers[0].transactional());
    EXPECT_EQ(headers[0].record_count, 1);
    EXPECT_EQ(headers[0].producer_id, 9);
    EXPECT_TRUE(headers[1].control());
    EXPECT_EQ(headers[1].base_offset, 2);
    auto c = contents(h);
    EXPECT_EQ(c.at(1).second, "new");
}

TEST(compaction, aborted_transactions_are_removed_and_do_not_hide_committed_values) {
    log_harness h;
    h.open();
    h.append_records({{"k", "committed"}}, 1);  // offset 0
    // offsets 1 and 2
    ASSERT_TRUE(h.append(txn_batch({{"k", "aborted"}, {"x", "aborted"}}, 0, 5)).has_value());
    ASSERT_TRUE(  // offset 3
        h.append(model::make_control_batch(9, 1, model::control_type::abort, 0, 7)).has_value());
    h.append_records({{"y", "1"}}, 8);  // offset 4
    h.roll();
    h.append_records({{"z", "z"}}, 9);
    compaction_options opts;
    opts.aborted[9] = {{1, 3}};
    auto stats = compact(h, opts);
    ASSERT_TRUE(stats.has_value()) << stats.error().describe();
    EXPECT_EQ(stats->aborted_records_dropped, 2u);
    auto c = contents(h);
    // The aborted value of k neither survives nor supersedes the committed one.
    EXPECT_EQ(c.at(0).second, "committed");
    EXPECT_EQ(c.count(1), 0u);
    EXPECT_EQ(c.count(2), 0u);
    auto headers = batch_headers(h);
    bool marker = false;
    for (const auto& hd : headers) marker |= hd.control() && hd.base_offset == 3;
    EXPECT_TRUE(marker) << "the ABORT marker stays";
    // (Without the aborted range the transactional records stay:
    // control_batches_and_transactional_batches_are_kept.)
}

// Appends a COMMIT or ABORT marker of `producer_id` at timestamp 1000.
void append_marker(log_harness& h, model::control_type type, int64_t producer_id = 9,
                   int16_t producer_epoch = 1) {
    auto marker = model::make_control_batch(producer_id, producer_epoch, type, 0, 1000);
    ASSERT_TRUE(h.append(std::move(marker)).has_value());
}

bool has_marker_at(log_harness& h, int64_t offset) {
    for (const auto& hd : batch_headers(h)) {
        if (hd.control() && hd.base_offset == offset) return true;
    }
    return false;
}

// Offsets 0-1: a committed transaction (k=t1, x=t1), 2: its COMMIT, 3-4: an aborted one
// (k=bad, y=bad), 5: its ABORT, then k and x overwritten outside transactions (6, 7), then the
// producer's next transaction (8) and its COMMIT (9), then a plain record so no marker ends the
// segment. Everything is at timestamp 1000; the segment is closed.
void write_marker_log(log_harness& h) {
    ASSERT_TRUE(h.append(txn_batch({{"k", "t1"}, {"x", "t1"}}, 0, 1000)).has_value());
    append_marker(h, model::control_type::commit);
    ASSERT_TRUE(h.append(txn_batch({{"k", "bad"}, {"y", "bad"}}, 2, 1000)).has_value());
    append_marker(h, model::control_type::abort);
    h.append_records({{"k", "plain"}, {"x", "plain"}}, 1000);
    ASSERT_TRUE(h.append(txn_batch({{"z", "t3"}}, 4, 1000)).has_value());
    append_marker(h, model::control_type::commit);
    h.append_records({{"w", "1"}}, 1000);
    h.roll();
    h.append_records({{"active", "1"}}, 1000);
}

compaction_options marker_opts() {
    compaction_options opts;
    opts.delete_retention_ms = hour_ms;
    opts.aborted[9] = {{3, 5}};
    return opts;
}

TEST(compaction, markers_are_removed_a_pass_after_their_transaction_data) {
    log_harness h;
    h.open();
    write_marker_log(h);
    h.clock.set_ms(1000 + 2 * hour_ms);  // past delete.retention.ms
    // First pass: the superseded committed records and the aborted ones go; every marker stays,
    // since the pass met data of each transaction.
    auto first = compact(h, marker_opts());
    ASSERT_TRUE(first.has_value()) << first.error().describe();
    EXPECT_EQ(first->markers_dropped, 0u);
    EXPECT_TRUE(first->markers_removed.empty());
    EXPECT_TRUE(has_marker_at(h, 2));
    EXPECT_TRUE(has_marker_at(h, 5));
    auto c = contents(h);
    EXPECT_EQ(c.count(0), 0u);
    EXPECT_EQ(c.count(3), 0u);
    EXPECT_EQ(c.at(8).second, "t3");
    // Second pass: the COMMIT at 2 and the ABORT at 5 have no data left and go, reported for
    // the aborted-transaction index. The COMMIT at 9 stays: its transaction's record is live.
    auto second = compact(h, marker_opts());
    ASSERT_TRUE(second.has_value()) << second.error().describe();
    EXPECT_EQ(second->markers_dropped, 2u);
    std::vector<std::pair<int64_t, int64_t>> want{{9, 2}, {9, 5}};
    EXPECT_EQ(second->markers_removed, want);
    EXPECT_FALSE(has_marker_at(h, 2));
    EXPECT_FALSE(has_marker_at(h, 5));
    EXPECT_TRUE(has_marker_at(h, 9));
    c = contents(h);
    EXPECT_EQ(c.at(6).second, "plain");
    EXPECT_EQ(c.at(7).second, "plain");
    EXPECT_EQ(c.at(10).second, "1");
    EXPECT_EQ(h.log->log_end_offset()(), 12);
}

TEST(compaction, the_owner_is_asked_before_markers_go_and_can_keep_them) {
    log_harness h;
    h.open();
    write_marker_log(h);
    h.clock.set_ms(1000 + 2 * hour_ms);
    ASSERT_TRUE(compact(h, marker_opts()).has_value());
    std::vector<std::pair<int64_t, int64_t>> asked;
    auto opts = marker_opts();
    opts.before_markers_removed = [&](const auto& markers) {
        asked = markers;
        return false;  // e.g. the index could not be rewritten
    };
    auto refused = compact(h, opts);
    ASSERT_TRUE(refused.has_value()) << refused.error().describe();
    std::vector<std::pair<int64_t, int64_t>> want{{9, 2}, {9, 5}};
    EXPECT_EQ(asked, want);
    EXPECT_EQ(refused->segments_skipped, 1u);
    EXPECT_TRUE(refused->markers_removed.empty());
    EXPECT_TRUE(has_marker_at(h, 2));
    EXPECT_TRUE(has_marker_at(h, 5));
    opts.before_markers_removed = [&](const auto&) { return true; };
    auto allowed = compact(h, opts);
    ASSERT_TRUE(allowed.has_value());
    EXPECT_EQ(allowed->markers_removed, want);
    EXPECT_FALSE(has_marker_at(h, 5));
}

TEST(compaction, markers_stay_before_delete_retention_and_at_the_snapshot) {
    log_harness h;
    h.open();
    write_marker_log(h);
    h.clock.set_ms(1000 + hour_ms);  // exactly at the horizon: not past it
    ASSERT_TRUE(compact(h, marker_opts()).has_value());
    auto again = compact(h, marker_opts());
    ASSERT_TRUE(again.has_value());
    EXPECT_EQ(again->markers_dropped, 0u);
    EXPECT_TRUE(has_marker_at(h, 2));
    EXPECT_TRUE(has_marker_at(h, 5));
    // Past the horizon, but a replay would start at offset 4: the ABORT at 5 must stay.
    h.clock.set_ms(1000 + 2 * hour_ms);
    auto opts = marker_opts();
    opts.marker_removal_below = 4;
    auto third = compact(h, opts);
    ASSERT_TRUE(third.has_value());
    std::vector<std::pair<int64_t, int64_t>> want{{9, 2}};
    EXPECT_EQ(third->markers_removed, want);
    EXPECT_FALSE(has_marker_at(h, 2));
    EXPECT_TRUE(has_marker_at(h, 5));
}

TEST(compaction, the_last_marker_of_a_producer_and_of_a_segment_stays) {
    log_harness h;
    h.open();
    // A transaction whose only record is superseded; its COMMIT is producer 9's last batch.
    ASSERT_TRUE(h.append(txn_batch({{"k", "t1"}}, 0, 1000)).has_value());
    append_marker(h, model::control_type::commit);
    h.append_records({{"k", "plain"}}, 1000);
    h.roll();
    // Producer 8: a superseded transaction whose COMMIT ends its segment, then more from it.
    ASSERT_TRUE(h.append(txn_batch({{"j", "t"}}, 0, 1000, 8, 0)).has_value());  // 3
    append_marker(h, model::control_type::commit, 8, 0);  // 4, the segment's last batch
    h.roll();
    h.append_records({{"j", "plain"}}, 1000);  // 5
    // 6: producer 8's last batch (an epoch bump's abort of nothing)
    append_marker(h, model::control_type::abort, 8, 0);
    h.append_records({{"q", "1"}}, 1000);
    h.roll();
    h.append_records({{"active", "1"}}, 1000);
    h.clock.set_ms(1000 + 2 * hour_ms);
    compaction_options opts;
    opts.delete_retention_ms = hour_ms;
    ASSERT_TRUE(compact(h, opts).has_value());
    auto again = compact(h, opts);
    ASSERT_TRUE(again.has_value()) << again.error().describe();
    EXPECT_EQ(again->markers_dropped, 0u);
    EXPECT_TRUE(has_marker_at(h, 1)) << "producer 9's last batch";
    EXPECT_TRUE(has_marker_at(h, 4)) << "its segment's last batch";
    EXPECT_TRUE(has_marker_at(h, 6)) << "producer 8's last batch";
}

TEST(compaction, segment_left_with_nothing_keeps_an_empty_last_batch) {
    log_harness h;
    h.open();
    h.append_records({{"a", "1"}}, 1);
    h.append_records({{"b", "1"}, {"a", "1.5"}}, 1);
    h.roll();  // segment 0: offsets 0..2, everything superseded below
    h.append_records({{"a", "2"}, {"b", "2"}}, 1);
    h.roll();
    h.append_records({{"c", "3"}}, 1);
    auto stats = compact(h);
    ASSERT_TRUE(stats.has_value()) << stats.error().describe();
    EXPECT_EQ(stats->batches_dropped, 1u);
    EXPECT_EQ(stats->batches_emptied, 1u);
    auto closed = h.log->closed_segments();
    ASSERT_EQ(closed.size(), 2u);
    EXPECT_EQ(closed[0].next_offset(), 3);  // the empty batch still covers offsets 1..2
    auto c = contents(h);
    EXPECT_EQ(c.size(), 3u);
    EXPECT_EQ(c.begin()->first, 3);
    h.reopen();
    EXPECT_EQ(contents(h), c);
    EXPECT_EQ(h.log->closed_segments()[0].next_offset(), 3);
}

TEST(compaction, key_map_bound_limits_the_cleaned_prefix) {
    log_harness h;
    h.open();
    // Each segment has 10 distinct new keys plus a rewrite of "hot".
    for (int s = 0; s < 4; ++s) {
        std::vector<kv> recs;
        for (int i = 0; i < 10; ++i) recs.push_back({test::numbered("key", s * 10 + i), "v"});
        recs.push_back({"hot", std::to_string(s)});
        h.append_records(recs, 1);
        h.roll();
    }
    h.append_records({{"tail", "t"}}, 1);
    // Room for ~25 keys: segments 0 and 1 (21 keys) fit, segment 2 does not.
    compaction_options opts;
    opts.key_map_max_bytes = 25 * (key_map::entry_overhead_bytes + 6);
    auto stats = compact(h, opts);
    ASSERT_TRUE(stats.has_value()) << stats.error().describe();
    EXPECT_EQ(stats->segments_mapped, 2u);
    EXPECT_EQ(stats->segments_beyond_map, 2u);
    EXPECT_LE(stats->key_map_bytes, opts.key_map_max_bytes);
    EXPECT_EQ(stats->segments_rewritten, 1u);  // segment 0 loses "hot"=0
    auto c = contents(h);
    EXPECT_FALSE(c.contains(10));  // "hot"=0
    EXPECT_TRUE(c.contains(21));   // "hot"=1: segment 1 was mapped but its hot is the latest known
    EXPECT_TRUE(c.contains(32));   // segment 2 not cleaned
    EXPECT_EQ(c.size(), 4u * 11 + 1 - 1);

    opts.key_map_max_bytes = 5 * (key_map::entry_overhead_bytes + 6);
    auto too_small = compact(h, opts);
    ASSERT_FALSE(too_small.has_value());
    EXPECT_TRUE(too_small.error().is(errc::invalid_argument)) << too_small.error().describe();
}

TEST(compaction, appends_proceed_while_a_compaction_is_in_flight) {
    log_harness h;
    h.open();
    const int64_t ts = h.clock.now_ms();
    for (int s = 0; s < 3; ++s) {
        for (int i = 0; i < 20; ++i)
            h.append_records({{test::numbered("k", i), test::numbered("s", s)}}, ts);
        h.roll();
    }
    std::promise<void> worker_done_writing;
    std::promise<void> release;
    auto release_future = release.get_future();
    compaction_options opts;
    opts.before_swap_hook = [&] {
        worker_done_writing.set_value();
        release_future.wait();
    };
    compactor c;
    std::optional<result<compaction_stats>> got;
    ASSERT_TRUE(c.start(*h.log, h.fs, *h.reactor, opts, ts, [&](result<compaction_stats> r) {
                     got.emplace(std::move(r));
                 }).has_value());
    EXPECT_TRUE(c.running());
    auto busy = c.start(*h.log, h.fs, *h.reactor, {}, ts, [](result<compaction_stats>) {});
    ASSERT_FALSE(busy.has_value());
    EXPECT_TRUE(busy.error().is(errc::busy));

    // The worker holds its result; the reactor keeps taking appends meanwhile, and a roll.
    worker_done_writing.get_future().wait();
    for (int i = 0; i < 20; ++i) h.append_records({{test::numbered("k", i), "active"}}, ts);
    h.roll();
    h.append_records({{"late", "x"}}, ts);
    EXPECT_FALSE(got.has_value());
    release.set_value();
    h.reactor->run_until([&] { return got.has_value(); });
    ASSERT_TRUE(got->has_value()) << got->error().describe();
    EXPECT_EQ((*got)->segments_rewritten, 2u);  // segments 0 and 1 lose everything but a last batch
    EXPECT_FALSE(c.running());

    auto all = h.read_all();
    std::map<std::string, std::string> latest;
    for (const auto& r : all) latest[*r.key] = *r.value;
    for (int i = 0; i < 20; ++i) EXPECT_EQ(latest[test::numbered("k", i)], "active");
    EXPECT_EQ(latest["late"], "x");
    EXPECT_EQ(h.log->log_end_offset()(), 81);
    EXPECT_EQ(all.back().offset, 80);
    // Offsets only increase.
    for (size_t i = 1; i < all.size(); ++i) EXPECT_LT(all[i - 1].offset, all[i].offset);
}

TEST(compaction, segment_deleted_by_retention_meanwhile_is_not_replaced) {
    log_harness h;
    h.open();
    for (int s = 0; s < 3; ++s) {
        h.append_records({{"k", std::to_string(s)}, {"j", std::to_string(s)}}, 1);
        h.roll();
    }
    h.append_records({{"x", "y"}}, 1);
    std::promise<void> written;
    std::promise<void> release;
    auto release_future = release.get_future();
    compaction_options opts;
    opts.before_swap_hook = [&] {
        written.set_value();
        release_future.wait();
    };
    compactor c;
    std::optional<result<compaction_stats>> got;
    ASSERT_TRUE(c.start(*h.log, h.fs, *h.reactor, opts, 1, [&](result<compaction_stats> r) {
                     got.emplace(std::move(r));
                 }).has_value());
    written.get_future().wait();  // the worker has read every segment and written its output
    ASSERT_TRUE(h.log->delete_oldest_segments(1).has_value());
    release.set_value();
    h.reactor->run_until([&] { return got.has_value(); });
    ASSERT_TRUE(got->has_value()) << got->error().describe();
    EXPECT_EQ((*got)->segments_skipped, 1u);
    EXPECT_EQ((*got)->segments_rewritten, 1u);
    auto c2 = contents(h);
    EXPECT_EQ(c2.size(), 3u);  // k=2, j=2 at offsets 4, 5 and x
    EXPECT_EQ(c2.begin()->first, 4);
}

TEST(compaction, segment_deleted_before_the_worker_reads_it_is_a_lost_race_not_an_error) {
    log_harness h;
    h.open();
    for (int s = 0; s < 3; ++s) {
        h.append_records({{"k", std::to_string(s)}}, 1);
        h.roll();
    }
    h.append_records({{"x", "y"}}, 1);
    compactor c;
    std::optional<result<compaction_stats>> got;
    ASSERT_TRUE(c.start(*h.log, h.fs, *h.reactor, {}, 1, [&](result<compaction_stats> r) {
                     got.emplace(std::move(r));
                 }).has_value());
    ASSERT_TRUE(h.log->delete_oldest_segments(2).has_value());  // races with the worker
    h.reactor->run_until([&] { return got.has_value(); });
    ASSERT_TRUE(got->has_value()) << got->error().describe();
    auto c2 = contents(h);
    ASSERT_EQ(c2.size(), 2u);
    EXPECT_EQ(c2.at(2).second, "2");
}

TEST(compaction, destroying_a_running_compactor_cancels_it) {
    log_harness h;
    h.open();
    for (int s = 0; s < 2; ++s) {
        h.append_records({{"k", std::to_string(s)}}, 1);
        h.roll();
    }
    bool called = false;
    {
        compactor c;
        ASSERT_TRUE(c.start(*h.log, h.fs, *h.reactor, {}, 1, [&](result<compaction_stats>) {
                         called = true;
                     }).has_value());
    }
    for (int i = 0; i < 10; ++i) h.reactor->run_once(std::chrono::milliseconds(1));
    EXPECT_FALSE(called);
    EXPECT_EQ(contents(h).size(), 2u);
}

}  // namespace
}  // namespace sluice::engine
