// Primitive encodings, limits and writer output pieces.

#include <gtest/gtest.h>

#include "base/bytes.h"
#include "protocol/reader.h"
#include "protocol/tests/test_util.h"
#include "protocol/writer.h"

namespace sluice::protocol {
namespace {

using testing::bytes_of;
using testing::copy_of;

TEST(reader_writer, fixed_width_integers_are_big_endian) {
    writer w;
    w.write_int8(-2);
    w.write_int16(0x0102);
    w.write_int32(-1);
    w.write_int64(0x0102030405060708);
    w.write_uint16(0xfffe);
    w.write_float64(1.5);
    w.write_bool(true);
    auto b = copy_of(w);
    EXPECT_EQ(b, bytes_of({0xfe, 0x01, 0x02, 0xff, 0xff, 0xff, 0xff, 1, 2, 3, 4, 5, 6, 7, 8,
                           0xff, 0xfe, 0x3f, 0xf8, 0, 0, 0, 0, 0, 0, 0x01}));
    reader r(b);
    EXPECT_EQ(r.read_int8(), -2);
    EXPECT_EQ(r.read_int16(), 0x0102);
    EXPECT_EQ(r.read_int32(), -1);
    EXPECT_EQ(r.read_int64(), 0x0102030405060708);
    EXPECT_EQ(r.read_uint16(), 0xfffe);
    EXPECT_EQ(r.read_float64(), 1.5);
    EXPECT_TRUE(r.read_bool());
    EXPECT_TRUE(r.status());
    EXPECT_EQ(r.remaining(), 0u);
}

TEST(reader_writer, compact_and_classic_strings) {
    writer w;
    w.write_string("ab", false);
    w.write_string("ab", true);
    w.write_nullable_string(std::nullopt, false, true);
    w.write_nullable_string(std::nullopt, true, true);
    w.write_nullable_string(std::nullopt, true, false);  // not nullable here: empty
    EXPECT_EQ(copy_of(w), bytes_of({0, 2, 'a', 'b', 3, 'a', 'b', 0xff, 0xff, 0, 1}));
    reader r(w.memory());
    EXPECT_EQ(r.read_string(false), "ab");
    EXPECT_EQ(r.read_string(true), "ab");
    EXPECT_EQ(r.read_nullable_string(false, true), std::nullopt);
    EXPECT_EQ(r.read_nullable_string(true, true), std::nullopt);
    EXPECT_EQ(r.read_nullable_string(true, false), std::string());
    EXPECT_TRUE(r.status());
}

TEST(reader_writer, uvarint_edges) {
    for (uint64_t v : {0ull, 127ull, 128ull, 16383ull, 16384ull, 0xffffffffull}) {
        writer w;
        w.write_uvarint(v);
        reader r(w.memory());
        EXPECT_EQ(r.read_uvarint32(), v);
        EXPECT_TRUE(r.status());
    }
    const int64_t longs[] = {0, -1, 1, INT64_MIN, INT64_MAX};
    for (int64_t v : longs) {
        writer w;
        w.write_varlong(v);
        reader r(w.memory());
        EXPECT_EQ(r.read_varlong(), v);
    }
}

TEST(reader_writer, failure_is_sticky_and_reports_position) {
    const auto b = bytes_of({0x00, 0x01, 0x02});
    reader r(b);
    EXPECT_EQ(r.read_int16(), 1);
    EXPECT_EQ(r.read_int32(), 0);
    EXPECT_FALSE(r.ok());
    EXPECT_EQ(r.read_int8(), 0);  // nothing more is read after a failure
    auto st = r.status();
    ASSERT_FALSE(st);
    EXPECT_TRUE(st.error().is(base::errc::malformed));
    EXPECT_NE(st.error().detail().find("at byte 2"), std::string::npos);
}

TEST(reader_writer, tags_are_written_in_ascending_order) {
    tagged_field known[] = {{1, {std::byte{0x11}}}, {5, {}}};
    tagged_fields unknown = {{9, {std::byte{0x99}}}, {3, {std::byte{0x33}}}};
    writer w;
    w.write_tags(known, unknown);
    EXPECT_EQ(copy_of(w), bytes_of({4, 1, 1, 0x11, 3, 1, 0x33, 5, 0, 9, 1, 0x99}));
    reader r(w.memory());
    tagged_fields back;
    r.read_unknown_tags(back);
    ASSERT_EQ(back.size(), 4u);
    EXPECT_EQ(back[1].tag, 3u);
}

TEST(reader_writer, pieces_interleave_memory_and_files) {
    writer w;
    const size_t at = w.reserve(4);
    w.write_int8(1);
    w.append_file({nullptr, 10, 100});
    w.append_file({nullptr, 500, 0});  // empty regions are dropped
    w.write_int8(2);
    w.append_file({nullptr, 20, 200});
    w.patch_int32(at, static_cast<int32_t>(w.size_bytes() - 4));
    EXPECT_EQ(w.size_bytes(), 4u + 1 + 100 + 1 + 200);
    EXPECT_TRUE(w.has_files());
    auto p = w.pieces();
    ASSERT_EQ(p.size(), 4u);
    EXPECT_EQ(std::get<std::span<const std::byte>>(p[0]).size(), 5u);
    EXPECT_EQ(std::get<file_region>(p[1]).offset, 10u);
    EXPECT_EQ(std::get<std::span<const std::byte>>(p[2]).size(), 1u);
    EXPECT_EQ(std::get<file_region>(p[3]).length, 200u);
    EXPECT_EQ(bytes::load_be32(std::get<std::span<const std::byte>>(p[0]).data()), 302u);
}

TEST(reader_writer, records_equality) {
    const auto a = bytes_of({1, 2, 3});
    const auto b = bytes_of({1, 2, 3});
    EXPECT_EQ(records::from_memory(a), records::from_memory(b));
    EXPECT_NE(records::from_memory(a), records());
    EXPECT_EQ(records(), records());
    EXPECT_EQ(records::from_memory(a).size_bytes(), 3u);
}

}  // namespace
}  // namespace sluice::protocol
