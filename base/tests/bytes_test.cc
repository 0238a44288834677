#include "base/bytes.h"

#include <gtest/gtest.h>

#include <limits>

using namespace sluice;

TEST(bytes, big_endian_round_trip) {
    uint8_t b[8];
    bytes::store_be32(b, 0x01020304u);
    EXPECT_EQ(b[0], 1);
    EXPECT_EQ(b[3], 4);
    EXPECT_EQ(bytes::load_be32(b), 0x01020304u);
    bytes::store_be64(b, 0x0102030405060708ull);
    EXPECT_EQ(bytes::load_be64(b), 0x0102030405060708ull);
    bytes::store_be16(b, 0xbeef);
    EXPECT_EQ(bytes::load_be16(b), 0xbeef);
}

TEST(bytes, varlong_round_trip_extremes) {
    for (int64_t v : {int64_t{0}, int64_t{-1}, int64_t{1}, int64_t{63}, int64_t{-64},
                      std::numeric_limits<int64_t>::min(), std::numeric_limits<int64_t>::max()}) {
        uint8_t buf[10];
        size_t n = bytes::write_varlong(buf, v);
        EXPECT_EQ(n, bytes::varlong_size(v));
        const uint8_t* p = buf;
        auto r = bytes::read_varlong(p, buf + n);
        ASSERT_TRUE(r);
        EXPECT_EQ(*r, v);
        EXPECT_EQ(p, buf + n);
    }
}

TEST(bytes, varint_truncated_and_overlong_rejected) {
    uint8_t trunc[] = {0x80, 0x80};
    const uint8_t* p = trunc;
    EXPECT_FALSE(bytes::read_uvarint(p, trunc + 2));
    uint8_t overlong[] = {0xff, 0xff, 0xff, 0xff, 0xff, 0x01};
    p = overlong;
    EXPECT_FALSE(bytes::read_varint(p, overlong + 6));
    uint8_t zig[] = {0x03};  // zigzag 3 == -2
    p = zig;
    EXPECT_EQ(*bytes::read_varint(p, zig + 1), -2);
}
