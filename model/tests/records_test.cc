#include "model/records.h"

#include <gtest/gtest.h>

#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "base/bytes.h"
#include "base/crc32c.h"

using namespace sluice;
using namespace sluice::model;
namespace bf = sluice::model::batch_format;

namespace {

constexpr compression all_codecs[] = {compression::none, compression::gzip, compression::snappy,
                                      compression::lz4, compression::zstd};

// A decoded record with owned bytes, to compare what was written with what is read back.
struct owned_record {
    int64_t offset = 0;
    int64_t timestamp = 0;
    std::optional<std::string> key;
    std::optional<std::string> value;
    std::vector<std::pair<std::string, std::optional<std::string>>> headers;
    bool operator==(const owned_record&) const = default;
};

std::optional<std::string> own(const nullable_bytes& b) {
    if (!b) return std::nullopt;
    return std::string(string_of(*b));
}

result<std::vector<owned_record>> read_all(const std::vector<std::byte>& batch,
                                           size_t max_bytes = default_max_decompressed_bytes) {
    auto h = validate(batch, {.max_batch_bytes = 64 << 20});
    if (!h) return h.error();
    std::vector<owned_record> out;
    std::vector<std::byte> scratch;
    auto r = for_each_record(
        batch, *h, scratch,
        [&](const record_view& rec) {
            owned_record o{rec.offset(*h), rec.timestamp(*h), own(rec.key), own(rec.value), {}};
            for (const auto& hd : rec.headers)
                o.headers.emplace_back(string_of(hd.key), own(hd.value));
            EXPECT_EQ(static_cast<int32_t>(o.headers.size()), rec.headers.size());
            out.push_back(std::move(o));
        },
        max_bytes);
    if (!r) return r.error();
    return out;
}

std::vector<std::byte> must_build(const batch_builder& b) {
    auto r = b.build();
    EXPECT_TRUE(r) << r.error().describe();
    return r ? std::move(r).value() : std::vector<std::byte>{};
}

batch_header must_validate(const std::vector<std::byte>& batch) {
    auto h = validate(batch, {.max_batch_bytes = 64 << 20});
    EXPECT_TRUE(h) << h.error().describe();
    return h ? *h : batch_header{};
}

// A batch around a raw record area, so malformed records can be wrapped in a correct header
// (and compressed) without going through the builder.
std::vector<std::byte> assemble(const std::vector<uint8_t>& area, int32_t count, int32_t last_delta,
                                compression codec = compression::none) {
    std::vector<std::byte> raw(area.size());
    if (!area.empty()) std::memcpy(raw.data(), area.data(), area.size());
    std::vector<std::byte> b(bf::header_size);
    EXPECT_TRUE(compress(codec, raw, b));
    auto* p = reinterpret_cast<uint8_t*>(b.data());
    bytes::store_be32(p + bf::batch_length_pos, static_cast<uint32_t>(b.size() - 12));
    bytes::store_be32(p + bf::partition_leader_epoch_pos, 0xffffffffu);
    p[bf::magic_pos] = 2;
    bytes::store_be16(p + bf::attributes_pos, static_cast<uint16_t>(codec));
    bytes::store_be32(p + bf::last_offset_delta_pos, static_cast<uint32_t>(last_delta));
    bytes::store_be64(p + bf::producer_id_pos, ~0ull);
    bytes::store_be16(p + bf::producer_epoch_pos, 0xffff);
    bytes::store_be32(p + bf::base_sequence_pos, 0xffffffffu);
    bytes::store_be32(p + bf::record_count_pos, static_cast<uint32_t>(count));
    bytes::store_be32(p + bf::crc_pos, compute_crc(b));
    return b;
}

// One well-formed record: key "k", value "v", no headers, offset delta `od`.
std::vector<uint8_t> good_record(uint8_t od) {
    return {16, 0, 0, static_cast<uint8_t>(od * 2), 2, 'k', 2, 'v', 0};
}

errc walk_error(const std::vector<uint8_t>& area, int32_t count, int32_t last_delta,
                compression codec = compression::none) {
    auto batch = assemble(area, count, last_delta, codec);
    auto h = parse_header(batch);
    EXPECT_TRUE(h);
    std::vector<std::byte> scratch;
    auto r = for_each_record(batch, *h, scratch, [](const record_view&) {});
    if (r) return errc::ok;
    return static_cast<errc>(r.error().code().value());
}

}  // namespace

// ---- builder -> validate -> walk -----------------------------------------------------------

TEST(batch_builder, round_trip_keys_values_headers_timestamps) {
    batch_options o;
    o.base_offset = 1000;
    batch_builder b(o);
    record_header hs[] = {{bytes_of("h1"), bytes_of("v1")},
                          {bytes_of(""), std::nullopt},
                          {bytes_of("h3"), bytes_of("")}};
    b.add(std::nullopt, bytes_of("null key"), 5000);
    b.add(bytes_of(""), bytes_of("empty key"), 4990, hs);
    b.add(bytes_of("key"), std::nullopt, 5020);
    b.add(bytes_of("k4"), bytes_of(""), 5010);
    auto batch = must_build(b);

    auto h = must_validate(batch);
    EXPECT_EQ(h.base_offset, 1000);
    EXPECT_EQ(h.record_count, 4);
    EXPECT_EQ(h.last_offset_delta, 3);
    EXPECT_EQ(h.base_timestamp, 5000);  // the first record's, as Kafka does
    EXPECT_EQ(h.max_timestamp, 5020);
    EXPECT_EQ(h.codec(), compression::none);
    EXPECT_FALSE(h.log_append_time());
    EXPECT_EQ(h.producer_id, -1);
    EXPECT_EQ(h.size_bytes(), batch.size());

    auto recs = read_all(batch);
    ASSERT_TRUE(recs) << recs.error().describe();
    std::vector<owned_record> want = {
        {1000, 5000, std::nullopt, "null key", {}},
        {1001, 4990, "", "empty key", {{"h1", "v1"}, {"", std::nullopt}, {"h3", ""}}},
        {1002, 5020, "key", std::nullopt, {}},
        {1003, 5010, "k4", "", {}},
    };
    EXPECT_EQ(*recs, want);
}

TEST(batch_builder, producer_and_flag_fields) {
    batch_options o;
    o.base_offset = 7;
    o.partition_leader_epoch = 3;
    o.producer_id = 123456789;
    o.producer_epoch = 4;
    o.base_sequence = 42;
    o.transactional = true;
    batch_builder b(o);
    b.add(bytes_of("k"), bytes_of("v"), 1);
    auto h = must_validate(must_build(b));
    EXPECT_EQ(h.base_offset, 7);
    EXPECT_EQ(h.partition_leader_epoch, 3);
    EXPECT_EQ(h.producer_id, 123456789);
    EXPECT_EQ(h.producer_epoch, 4);
    EXPECT_EQ(h.base_sequence, 42);
    EXPECT_TRUE(h.transactional());
    EXPECT_FALSE(h.control());
    EXPECT_TRUE(h.idempotent());
}

TEST(batch_builder, log_append_time_sets_type_and_max_timestamp) {
    batch_options o;
    o.log_append_time_ms = 99999;
    batch_builder b(o);
    b.add(bytes_of("k"), bytes_of("v"), 10);
    b.add(bytes_of("k"), bytes_of("v"), 20);
    auto batch = must_build(b);
    auto h = must_validate(batch);
    EXPECT_TRUE(h.log_append_time());
    EXPECT_EQ(h.max_timestamp, 99999);
    auto recs = read_all(batch);
    ASSERT_TRUE(recs);
    for (const auto& r : *recs) EXPECT_EQ(r.timestamp, 99999);
}

TEST(batch_builder, explicit_offset_deltas_for_compaction) {
    batch_options o;
    o.base_offset = 500;
    o.last_offset_delta = 12;  // the original batch covered 500..512
    o.delete_horizon_ms = 70000;
    batch_builder b(o);
    b.add_with_offset_delta(2, bytes_of("a"), bytes_of("1"), 60000);
    b.add_with_offset_delta(5, bytes_of("b"), std::nullopt, 61000);  // tombstone
    b.add_with_offset_delta(11, bytes_of("c"), bytes_of("3"), 59000);
    auto batch = must_build(b);
    auto h = must_validate(batch);
    EXPECT_EQ(h.record_count, 3);
    EXPECT_EQ(h.last_offset_delta, 12);
    EXPECT_EQ(h.last_offset(), 512);
    EXPECT_EQ(h.base_timestamp, 70000);
    EXPECT_TRUE(h.attributes & bf::delete_horizon_bit);
    auto recs = read_all(batch);
    ASSERT_TRUE(recs);
    ASSERT_EQ(recs->size(), 3u);
    EXPECT_EQ((*recs)[0].offset, 502);
    EXPECT_EQ((*recs)[1].offset, 505);
    EXPECT_EQ((*recs)[2].offset, 511);
    EXPECT_EQ((*recs)[0].timestamp, 60000);
    EXPECT_EQ((*recs)[1].timestamp, 61000);
    EXPECT_EQ((*recs)[2].timestamp, 59000);
    EXPECT_FALSE((*recs)[1].value.has_value());
}

TEST(batch_builder, empty_batch_is_valid) {
    batch_options o;
    o.producer_id = 9;
    o.last_offset_delta = 4;
    batch_builder b(o);
    auto batch = must_build(b);
    auto h = must_validate(batch);
    EXPECT_EQ(h.record_count, 0);
    EXPECT_EQ(h.last_offset_delta, 4);
    EXPECT_EQ(h.max_timestamp, -1);
    auto recs = read_all(batch);
    ASSERT_TRUE(recs);
    EXPECT_TRUE(recs->empty());
}

TEST(batch_builder, build_is_repeatable_and_reset_reuses) {
    batch_builder b({}, 1024);
    b.add(bytes_of("k"), bytes_of("v"), 1);
    auto one = must_build(b);
    EXPECT_TRUE(must_build(b) == one);
    std::vector<std::byte> set;
    ASSERT_TRUE(b.build_into(set));
    ASSERT_TRUE(b.build_into(set));
    EXPECT_EQ(set.size(), 2 * one.size());
    batch_iterator it(set);
    batch_header h;
    std::span<const std::byte> s;
    int n = 0;
    while (it.next(h, s)) ++n;
    EXPECT_EQ(n, 2);

    b.reset({.base_offset = 10});
    EXPECT_TRUE(b.empty());
    b.add(bytes_of("x"), bytes_of("y"), 2);
    auto h2 = must_validate(must_build(b));
    EXPECT_EQ(h2.base_offset, 10);
    EXPECT_EQ(h2.record_count, 1);
}

TEST(batch_builder, every_codec_round_trips) {
    std::vector<owned_record> want;
    for (compression c : all_codecs) {
        SCOPED_TRACE(int(c));
        batch_options o;
        o.codec = c;
        o.base_offset = 100;
        batch_builder b(o);
        std::vector<owned_record> expect;
        for (int i = 0; i < 500; ++i) {
            std::string key = "key-" + std::to_string(i % 50);
            std::string value = "value number " + std::to_string(i) + " of the codec test";
            std::string hv = std::to_string(i);
            record_header hs[] = {{bytes_of("i"), bytes_of(hv)}};
            b.add(bytes_of(key), bytes_of(value), 1700000000000 + i, hs);
            expect.push_back({100 + i, 1700000000000 + i, key, value, {{"i", hv}}});
        }
        auto batch = must_build(b);
        auto h = must_validate(batch);
        EXPECT_EQ(h.codec(), c);
        EXPECT_EQ(h.record_count, 500);
        if (c != compression::none) {
            EXPECT_LT(batch.size(), b.uncompressed_batch_bytes() / 2);
        }
        auto recs = read_all(batch);
        ASSERT_TRUE(recs) << recs.error().describe();
        EXPECT_EQ(*recs, expect);
    }
}

TEST(batch_builder, large_records_and_values) {
    std::string big(300000, 'z');
    for (compression c : all_codecs) {
        batch_builder b({.codec = c});
        b.add(bytes_of("big"), bytes_of(big), 1);
        b.add(bytes_of("small"), bytes_of("s"), 2);
        auto recs = read_all(must_build(b));
        ASSERT_TRUE(recs) << int(c);
        ASSERT_EQ(recs->size(), 2u);
        EXPECT_EQ((*recs)[0].value, big);
    }
}

TEST(records, early_stop_when_callable_returns_false) {
    batch_builder b;
    for (int i = 0; i < 10; ++i) b.add(std::nullopt, bytes_of("v"), i);
    auto batch = must_build(b);
    auto h = must_validate(batch);
    std::vector<std::byte> scratch;
    int seen = 0;
    auto r = for_each_record(batch, h, scratch, [&](const record_view&) { return ++seen < 3; });
    ASSERT_TRUE(r);
    EXPECT_EQ(seen, 3);
}

TEST(records, view_exposes_encoded_record_bytes) {
    batch_builder b;
    b.add(bytes_of("k"), bytes_of("v"), 0);
    auto batch = must_build(b);
    auto h = must_validate(batch);
    std::vector<std::byte> scratch;
    size_t total = 0;
    ASSERT_TRUE(for_each_record(batch, h, scratch, [&](const record_view& r) {
        total += r.encoded.size();
        EXPECT_EQ(r.encoded.data(), batch.data() + bf::header_size);  // in place, not copied
    }));
    EXPECT_EQ(total, batch.size() - bf::header_size);
}

// ---- control batches -----------------------------------------------------------------------

TEST(control_batch, commit_marker_round_trip) {
    auto batch = make_control_batch(77, 2, control_type::commit, 15, 123456, 40);
    auto h = must_validate(batch);
    EXPECT_TRUE(h.control());
    EXPECT_TRUE(h.transactional());
    EXPECT_EQ(h.producer_id, 77);
    EXPECT_EQ(h.producer_epoch, 2);
    EXPECT_EQ(h.base_sequence, -1);
    EXPECT_EQ(h.base_offset, 40);
    EXPECT_EQ(h.record_count, 1);
    std::vector<std::byte> scratch;
    int n = 0;
    ASSERT_TRUE(for_each_record(batch, h, scratch, [&](const record_view& r) {
        ++n;
        ASSERT_TRUE(r.key && r.value);
        EXPECT_EQ(r.key->size(), 4u);
        EXPECT_EQ(r.value->size(), 6u);
        auto m = parse_control_record(r);
        ASSERT_TRUE(m);
        EXPECT_EQ(m->type, control_type::commit);
        EXPECT_EQ(m->key_version, 0);
        EXPECT_EQ(m->value_version, 0);
        EXPECT_EQ(m->coordinator_epoch, 15);
        EXPECT_EQ(r.timestamp(h), 123456);
    }));
    EXPECT_EQ(n, 1);
}

TEST(control_batch, abort_marker_and_short_fields) {
    auto batch = make_control_batch(1, 0, control_type::abort, -1, 0);
    auto h = must_validate(batch);
    std::vector<std::byte> scratch;
    ASSERT_TRUE(for_each_record(batch, h, scratch, [&](const record_view& r) {
        auto m = parse_control_record(r);
        ASSERT_TRUE(m);
        EXPECT_EQ(m->type, control_type::abort);
        EXPECT_EQ(m->coordinator_epoch, -1);
    }));
    record_view short_key;
    short_key.key = bytes_of("ab");
    EXPECT_TRUE(parse_control_record(short_key).error().is(errc::bad_records));
    record_view no_value;
    uint8_t key[4] = {0, 0, 0, 1};
    no_value.key = bytes_view(reinterpret_cast<const std::byte*>(key), 4);
    EXPECT_TRUE(parse_control_record(no_value).error().is(errc::bad_records));
}

// ---- malformed records ---------------------------------------------------------------------

TEST(records_malformed, well_formed_area_passes) {
    auto area = good_record(0);
    auto second = good_record(1);
    area.insert(area.end(), second.begin(), second.end());
    EXPECT_EQ(walk_error(area, 2, 1), errc::ok);
    EXPECT_EQ(walk_error(area, 2, 1, compression::zstd), errc::ok);
}

TEST(records_malformed, unterminated_length_varint) {
    EXPECT_EQ(walk_error({0xff, 0xff, 0xff, 0xff, 0xff, 0x01}, 1, 0), errc::bad_records);
    EXPECT_EQ(walk_error({0x80}, 1, 0), errc::bad_records);
}

TEST(records_malformed, record_length_past_end_or_zero) {
    auto r = good_record(0);
    r[0] = 40;  // 20 bytes claimed, 8 present
    EXPECT_EQ(walk_error(r, 1, 0), errc::bad_records);
    EXPECT_EQ(walk_error({0x00}, 1, 0), errc::bad_records);
    EXPECT_EQ(walk_error({0x01}, 1, 0), errc::bad_records);  // negative length
}

TEST(records_malformed, key_length_beyond_record) {
    auto r = good_record(0);
    r[4] = 20;  // key length 10 inside an 8-byte record
    EXPECT_EQ(walk_error(r, 1, 0), errc::bad_records);
    r[4] = 3;  // key length -2
    EXPECT_EQ(walk_error(r, 1, 0), errc::bad_records);
}

TEST(records_malformed, negative_header_count_and_bad_header) {
    auto r = good_record(0);
    r.back() = 1;  // header count -1
    EXPECT_EQ(walk_error(r, 1, 0), errc::bad_records);
    // header count 1 with a key length running past the record
    std::vector<uint8_t> h = {0, 0, 0, 0, 2, 'k', 2, 'v', 2, 20, 'a', 0, 0};
    h[0] = static_cast<uint8_t>((h.size() - 1) * 2);
    EXPECT_EQ(walk_error(h, 1, 0), errc::bad_records);
    // header count 1, key "a", value null: fine
    std::vector<uint8_t> ok_h = {0, 0, 0, 0, 2, 'k', 2, 'v', 2, 2, 'a', 1};
    ok_h[0] = static_cast<uint8_t>((ok_h.size() - 1) * 2);
    EXPECT_EQ(walk_error(ok_h, 1, 0), errc::ok);
}

TEST(records_malformed, fields_shorter_than_record_length) {
    auto r = good_record(0);
    r[0] = 18;       // claims 9 bytes of body
    r.push_back(0);  // ... the ninth byte belongs to no field
    EXPECT_EQ(walk_error(r, 1, 0), errc::bad_records);
}

TEST(records_malformed, count_disagrees_with_bytes) {
    auto area = good_record(0);
    auto second = good_record(1);
    area.insert(area.end(), second.begin(), second.end());
    EXPECT_EQ(walk_error(area, 1, 1), errc::bad_records);  // bytes left after the last record
    EXPECT_EQ(walk_error(area, 3, 2), errc::bad_records);  // fewer records than counted
    EXPECT_EQ(walk_error(area, 3, 2, compression::lz4), errc::bad_records);
}

TEST(records_malformed, offset_deltas_out_of_order_or_range) {
    auto area = good_record(1);
    auto second = good_record(1);
    area.insert(area.end(), second.begin(), second.end());
    EXPECT_EQ(walk_error(area, 2, 1), errc::bad_records);            // repeated delta
    EXPECT_EQ(walk_error(good_record(5), 1, 2), errc::bad_records);  // past last_offset_delta
}

TEST(records_malformed, reader_errors_are_sticky) {
    std::vector<std::byte> area = {std::byte{0x80}};
    record_reader reader(area, 1, 0);
    record_view rec;
    EXPECT_FALSE(reader.next(rec));
    EXPECT_FALSE(reader.next(rec));
}

TEST(records_malformed, random_areas_never_crash) {
    std::mt19937 rng(7);
    for (int round = 0; round < 2000; ++round) {
        std::vector<std::byte> area(rng() % 64);
        for (auto& b : area) b = static_cast<std::byte>(rng());
        record_reader reader(area, static_cast<int32_t>(rng() % 5),
                             static_cast<int32_t>(rng() % 5));
        record_view rec;
        for (int i = 0; i < 10; ++i) {
            auto r = reader.next(rec);
            if (!r || !*r) break;
            for (const auto& h : rec.headers) (void)h;
        }
    }
}

// ---- compressed batches gone bad -----------------------------------------------------------

TEST(records_compressed, decompression_bomb_rejected) {
    // One record with a 4 MiB value of zeros.
    std::vector<std::byte> big(4 << 20);
    batch_builder b({.codec = compression::zstd});
    b.add(bytes_of("k"), bytes_view(big), 0);
    auto batch = must_build(b);
    EXPECT_LT(batch.size(), 4096u);
    auto h = must_validate(batch);
    std::vector<std::byte> scratch;
    auto r = for_each_record(
        batch, h, scratch, [](const record_view&) {}, 1 << 20);
    ASSERT_FALSE(r);
    EXPECT_TRUE(r.error().is(errc::too_large));
    EXPECT_TRUE(validate_records(batch, h, scratch));  // the default bound is larger
}

TEST(records_compressed, corrupt_payload_is_an_error) {
    for (compression c :
         {compression::gzip, compression::snappy, compression::lz4, compression::zstd}) {
        SCOPED_TRACE(int(c));
        batch_builder b({.codec = c});
        for (int i = 0; i < 100; ++i) b.add(bytes_of("key"), bytes_of("some value"), i);
        auto batch = must_build(b);
        // Damage the middle of the compressed payload, then fix the CRC so only the payload is
        // wrong (as when a producer sends garbage with a correct checksum).
        for (size_t at = bf::header_size; at < batch.size(); at += 7) {
            auto bad = batch;
            bad[at] ^= std::byte{0xa5};
            bytes::store_be32(reinterpret_cast<uint8_t*>(&bad[bf::crc_pos]), compute_crc(bad));
            auto h = validate(bad, {});
            ASSERT_TRUE(h);
            std::vector<std::byte> scratch;
            (void)validate_records(bad, *h, scratch);  // error or not, never a crash
        }
        // A payload cut short is always an error.
        auto cut = assemble({0x01, 0x02, 0x03}, 1, 0, compression::none);
        cut[bf::attributes_pos + 1] = static_cast<std::byte>(c);
        bytes::store_be32(reinterpret_cast<uint8_t*>(&cut[bf::crc_pos]), compute_crc(cut));
        auto h = must_validate(cut);
        std::vector<std::byte> scratch;
        auto r = validate_records(cut, h, scratch);
        ASSERT_FALSE(r);
        EXPECT_TRUE(r.error().is(errc::compression_failed)) << r.error().describe();
    }
}

TEST(records_compressed, record_area_requires_the_whole_batch) {
    batch_builder b({.codec = compression::gzip});
    b.add(bytes_of("k"), bytes_of("v"), 0);
    auto batch = must_build(b);
    auto h = must_validate(batch);
    std::vector<std::byte> scratch;
    auto r = record_area(std::span(batch).first(batch.size() - 1), h, scratch);
    ASSERT_FALSE(r);
    EXPECT_TRUE(r.error().is(errc::truncated));
}
