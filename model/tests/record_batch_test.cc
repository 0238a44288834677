#include "model/record_batch.h"

#include <gtest/gtest.h>

#include <cstring>

#include <vector>

#include "base/bytes.h"
#include "base/crc32c.h"

using namespace sluice;
using namespace sluice::model;

namespace {
// A hand-built uncompressed batch with one record (key "k", value "v"), so this test does not
// depend on the batch builder it is meant to check against.
std::vector<std::byte> one_record_batch() {
    std::vector<uint8_t> rec = {0, /*ts delta*/ 0, /*offset delta*/ 0, /*key len 1*/ 2, 'k',
                                /*value len 1*/ 2, 'v', /*headers*/ 0};
    std::vector<uint8_t> b(batch_format::header_size, 0);
    b.push_back(static_cast<uint8_t>(rec.size() << 1));
    b.insert(b.end(), rec.begin(), rec.end());
    bytes::store_be32(&b[batch_format::batch_length_pos], static_cast<uint32_t>(b.size() - 12));
    bytes::store_be32(&b[batch_format::partition_leader_epoch_pos], 0xffffffffu);
    b[batch_format::magic_pos] = 2;
    bytes::store_be64(&b[batch_format::base_timestamp_pos], 1000);
    bytes::store_be64(&b[batch_format::max_timestamp_pos], 1000);
    bytes::store_be64(&b[batch_format::producer_id_pos], ~0ull);
    bytes::store_be16(&b[batch_format::producer_epoch_pos], 0xffff);
    bytes::store_be32(&b[batch_format::base_sequence_pos], 0xffffffffu);
    bytes::store_be32(&b[batch_format::record_count_pos], 1);
    bytes::store_be32(&b[batch_format::crc_pos],
                      crc32c::value(&b[batch_format::attributes_pos], b.size() - batch_format::attributes_pos));
    std::vector<std::byte> out(b.size());
    std::memcpy(out.data(), b.data(), b.size());
    return out;
}
}  // namespace

TEST(record_batch, valid_batch_parses) {
    auto b = one_record_batch();
    auto h = validate(b, {});
    ASSERT_TRUE(h) << h.error().describe();
    EXPECT_EQ(h->record_count, 1);
    EXPECT_EQ(h->size_bytes(), b.size());
    EXPECT_EQ(h->max_timestamp, 1000);
}

TEST(record_batch, crc_mismatch_detected) {
    auto b = one_record_batch();
    b.back() ^= std::byte{1};
    auto h = validate(b, {});
    ASSERT_FALSE(h);
    EXPECT_TRUE(h.error().is(errc::crc_mismatch));
}

TEST(record_batch, truncated_and_bad_magic) {
    auto b = one_record_batch();
    EXPECT_TRUE(validate(std::span(b).first(b.size() - 1), {}).error().is(errc::truncated));
    EXPECT_TRUE(validate(std::span(b).first(20), {}).error().is(errc::truncated));
    b[batch_format::magic_pos] = std::byte{1};
    EXPECT_TRUE(validate(b, {}).error().is(errc::bad_magic));
}

TEST(record_batch, limits_enforced) {
    auto b = one_record_batch();
    validation_limits small{.max_batch_bytes = 40};
    EXPECT_TRUE(validate(b, small).error().is(errc::too_large));
}

TEST(record_batch, base_offset_rewrite_keeps_crc_valid) {
    auto b = one_record_batch();
    set_base_offset(b, 12345);
    set_partition_leader_epoch(b, 7);
    auto h = validate(b, {});
    ASSERT_TRUE(h);
    EXPECT_EQ(h->base_offset, 12345);
    EXPECT_EQ(h->partition_leader_epoch, 7);
    set_log_append_time(b, 999999);
    h = validate(b, {});
    ASSERT_TRUE(h);
    EXPECT_TRUE(h->log_append_time());
    EXPECT_EQ(h->max_timestamp, 999999);
}

TEST(record_batch, bad_record_count_rejected) {
    auto b = one_record_batch();
    bytes::store_be32(reinterpret_cast<uint8_t*>(&b[batch_format::record_count_pos]), 2);
    bytes::store_be32(reinterpret_cast<uint8_t*>(&b[batch_format::crc_pos]), compute_crc(b));
    auto h = validate(b, {});
    ASSERT_FALSE(h);
}

TEST(record_batch, iterator_splits_back_to_back_batches) {
    auto a = one_record_batch();
    std::vector<std::byte> two = a;
    two.insert(two.end(), a.begin(), a.end());
    two.push_back(std::byte{0});  // a torn third batch
    batch_iterator it(two);
    batch_header h;
    std::span<const std::byte> s;
    int n = 0;
    while (it.next(h, s)) ++n;
    EXPECT_EQ(n, 2);
    EXPECT_EQ(it.remaining(), 1u);
}
