#include "model/legacy_message.h"

#include <gtest/gtest.h>
#include <zlib.h>

#include <optional>
#include <string>
#include <vector>

#include "base/bytes.h"
#include "model/records.h"

using namespace sluice;
using namespace sluice::model;
namespace lf = sluice::model::legacy::message_format;

namespace {

struct owned {
    int64_t offset = 0;
    int64_t timestamp = 0;
    std::optional<std::string> key;
    std::optional<std::string> value;
    bool operator==(const owned&) const = default;
};

std::optional<std::string> own(const nullable_bytes& b) {
    if (!b) return std::nullopt;
    return std::string(string_of(*b));
}

std::vector<owned> records_of(const std::vector<std::byte>& batch) {
    auto h = validate(batch, {.max_batch_bytes = 64 << 20});
    EXPECT_TRUE(h);
    std::vector<owned> out;
    if (!h) return out;
    std::vector<std::byte> scratch;
    auto r = for_each_record(batch, *h, scratch, [&](const record_view& rec) {
        out.push_back({rec.offset(*h), rec.timestamp(*h), own(rec.key), own(rec.value)});
    });
    EXPECT_TRUE(r);
    return out;
}

std::vector<std::byte> sample_batch(int64_t base_offset, compression codec = compression::none) {
    batch_options opts;
    opts.base_offset = base_offset;
    opts.codec = codec;
    batch_builder b(opts);
    b.add(bytes_of("k0"), bytes_of("v0"), 1000);
    b.add(std::nullopt, bytes_of("v1"), 1001);
    record_header hd{bytes_of("h"), bytes_of("x")};
    b.add(bytes_of("k2"), std::nullopt, 1002, {&hd, 1});
    auto r = b.build();
    EXPECT_TRUE(r);
    return *r;
}

errc error_of(const result<legacy::up_converted>& r) {
    return r ? errc::ok : static_cast<errc>(r.error().code().value());
}

// A magic `magic` wrapper message whose value is `inner` compressed with `codec`.
std::vector<std::byte> wrapper(int8_t magic, compression codec, const std::vector<std::byte>& inner,
                               int64_t timestamp = 5000, bool log_append_time = false) {
    std::vector<std::byte> value;
    EXPECT_TRUE(compress(codec, inner, value));
    std::vector<std::byte> m(lf::timestamp_pos + (magic == 1 ? 8 : 0));
    m[lf::magic_pos] = static_cast<std::byte>(magic);
    m[lf::attributes_pos] = static_cast<std::byte>(static_cast<int8_t>(codec) |
                                                   (log_append_time ? lf::timestamp_type_bit : 0));
    if (magic == 1) bytes::store_be64(m.data() + lf::timestamp_pos, static_cast<uint64_t>(timestamp));
    size_t at = m.size();
    m.resize(at + 8);
    bytes::store_be32(m.data() + at, static_cast<uint32_t>(-1));  // null key
    bytes::store_be32(m.data() + at + 4, static_cast<uint32_t>(value.size()));
    m.insert(m.end(), value.begin(), value.end());
    bytes::store_be32(m.data() + lf::size_pos, static_cast<uint32_t>(m.size() - lf::log_overhead));
    auto crc = ::crc32(0, reinterpret_cast<const Bytef*>(m.data() + lf::magic_pos),
                       static_cast<uInt>(m.size() - lf::magic_pos));
    bytes::store_be32(m.data() + lf::crc_pos, static_cast<uint32_t>(crc));
    return m;
}

std::vector<std::byte> legacy_set(int8_t magic, int64_t from_offset = 0) {
    std::vector<std::byte> set;
    EXPECT_TRUE(legacy::down_convert(sample_batch(0), magic, from_offset, SIZE_MAX, set));
    return set;
}

}  // namespace

TEST(legacy_message, magic1_round_trip_keeps_keys_values_and_timestamps) {
    auto set = legacy_set(1);
    EXPECT_TRUE(legacy::is_legacy(set));
    auto up = legacy::up_convert(set, 99);
    ASSERT_TRUE(up);
    EXPECT_EQ(up->magic, 1);
    EXPECT_EQ(up->record_count, 3);
    std::vector<owned> want = {{0, 1000, "k0", "v0"}, {1, 1001, std::nullopt, "v1"},
                               {2, 1002, "k2", std::nullopt}};
    EXPECT_EQ(records_of(up->batch), want);
}

TEST(legacy_message, magic0_has_no_timestamp_so_records_get_the_arrival_time) {
    auto set = legacy_set(0);
    auto up = legacy::up_convert(set, 777);
    ASSERT_TRUE(up);
    EXPECT_EQ(up->magic, 0);
    for (const auto& r : records_of(up->batch)) EXPECT_EQ(r.timestamp, 777);
}

TEST(legacy_message, down_convert_keeps_offsets_and_skips_records_below_the_fetch_offset) {
    auto set = legacy_set(1, 1);
    auto up = legacy::up_convert(set, 0);
    ASSERT_TRUE(up);
    EXPECT_EQ(up->record_count, 2);
    // The message offsets are the log's: the second record is at offset 1.
    EXPECT_EQ(bytes::load_be64(set.data()), 1u);
}

TEST(legacy_message, down_convert_skips_control_batches_and_decompresses) {
    std::vector<std::byte> log = sample_batch(0, compression::zstd);
    auto marker = make_control_batch(7, 0, control_type::commit, 0, 2000, 3);
    log.insert(log.end(), marker.begin(), marker.end());
    auto more = sample_batch(4, compression::lz4);
    log.insert(log.end(), more.begin(), more.end());
    std::vector<std::byte> set;
    ASSERT_TRUE(legacy::down_convert(log, 1, 0, SIZE_MAX, set));
    auto up = legacy::up_convert(set, 0);
    ASSERT_TRUE(up);
    EXPECT_EQ(up->record_count, 6);
}

TEST(legacy_message, down_convert_stops_after_the_batch_that_passes_the_limit) {
    auto a = sample_batch(0);
    auto b = sample_batch(3);
    std::vector<std::byte> log = a;
    log.insert(log.end(), b.begin(), b.end());
    std::vector<std::byte> set;
    ASSERT_TRUE(legacy::down_convert(log, 1, 0, 1, set));
    auto up = legacy::up_convert(set, 0);
    ASSERT_TRUE(up);
    EXPECT_EQ(up->record_count, 3);
}

TEST(legacy_message, down_convert_ignores_a_partial_trailing_batch) {
    auto log = sample_batch(0);
    auto b = sample_batch(3);
    log.insert(log.end(), b.begin(), b.begin() + 20);
    std::vector<std::byte> set;
    ASSERT_TRUE(legacy::down_convert(log, 0, 0, SIZE_MAX, set));
    EXPECT_EQ(legacy::up_convert(set, 0)->record_count, 3);
}

TEST(legacy_message, compressed_wrappers_unpack_with_every_legacy_codec) {
    for (auto codec : {compression::gzip, compression::snappy, compression::lz4}) {
        for (int8_t magic : {0, 1}) {
            auto inner = legacy_set(magic);
            auto set = wrapper(magic, codec, inner);
            auto up = legacy::up_convert(set, 42);
            ASSERT_TRUE(up) << static_cast<int>(codec) << " magic " << int(magic);
            EXPECT_EQ(up->record_count, 3);
            auto h = parse_header(up->batch);
            EXPECT_EQ(h->codec(), codec);
            auto recs = records_of(up->batch);
            ASSERT_EQ(recs.size(), 3u);
            EXPECT_EQ(recs[1].value, "v1");
            EXPECT_EQ(recs[0].timestamp, magic == 1 ? 1000 : 42);
        }
    }
}

TEST(legacy_message, a_log_append_time_wrapper_gives_its_timestamp_to_every_record) {
    auto set = wrapper(1, compression::gzip, legacy_set(1), 12345, true);
    auto up = legacy::up_convert(set, 0);
    ASSERT_TRUE(up);
    for (const auto& r : records_of(up->batch)) EXPECT_EQ(r.timestamp, 12345);
}

TEST(legacy_message, bad_message_sets_are_refused_with_the_reason) {
    auto set = legacy_set(1);
    auto flipped = set;
    flipped.back() ^= std::byte{1};
    EXPECT_EQ(error_of(legacy::up_convert(flipped, 0)), errc::crc_mismatch);

    auto cut = set;
    cut.resize(cut.size() - 3);
    EXPECT_EQ(error_of(legacy::up_convert(cut, 0)), errc::truncated);

    auto tiny = set;
    bytes::store_be32(tiny.data() + lf::size_pos, 3);
    EXPECT_EQ(error_of(legacy::up_convert(tiny, 0)), errc::bad_length);

    EXPECT_EQ(error_of(legacy::up_convert(wrapper(1, compression::zstd, set), 0)),
              errc::unknown_compression);
    auto nested = wrapper(1, compression::gzip, wrapper(1, compression::gzip, set));
    EXPECT_EQ(error_of(legacy::up_convert(nested, 0)), errc::bad_records);
    EXPECT_EQ(error_of(legacy::up_convert({}, 0)), errc::bad_records);

    auto garbage = wrapper(1, compression::gzip, set);
    garbage[lf::attributes_pos] = std::byte{2};  // says snappy, holds gzip
    auto crc = ::crc32(0, reinterpret_cast<const Bytef*>(garbage.data() + lf::magic_pos),
                       static_cast<uInt>(garbage.size() - lf::magic_pos));
    bytes::store_be32(garbage.data() + lf::crc_pos, static_cast<uint32_t>(crc));
    EXPECT_EQ(error_of(legacy::up_convert(garbage, 0)), errc::compression_failed);
}

TEST(legacy_message, a_decompression_bomb_is_bounded) {
    std::vector<std::byte> big;
    for (int i = 0; i < 2000; ++i) {
        std::vector<std::byte> one;
        ASSERT_TRUE(legacy::down_convert(sample_batch(i * 3), 1, 0, SIZE_MAX, one));
        big.insert(big.end(), one.begin(), one.end());
    }
    EXPECT_EQ(error_of(legacy::up_convert(wrapper(1, compression::gzip, big), 0, 1024)),
              errc::too_large);
}

TEST(legacy_message, v2_batches_are_not_legacy) {
    EXPECT_FALSE(legacy::is_legacy(sample_batch(0)));
    EXPECT_FALSE(legacy::is_legacy({}));
}
