#include "base/crc32c.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

using namespace sluice;

TEST(crc32c, known_vectors) {
    // RFC 3720 (iSCSI) test vectors.
    std::vector<uint8_t> zeros(32, 0), ones(32, 0xff), inc(32);
    for (int i = 0; i < 32; ++i) inc[i] = static_cast<uint8_t>(i);
    EXPECT_EQ(crc32c::value(zeros.data(), 32), 0x8a9136aau);
    EXPECT_EQ(crc32c::value(ones.data(), 32), 0x62a8ab43u);
    EXPECT_EQ(crc32c::value(inc.data(), 32), 0x46dd794eu);
    std::string s = "123456789";
    EXPECT_EQ(crc32c::value(s.data(), s.size()), 0xe3069283u);
}

TEST(crc32c, extend_equals_whole) {
    std::string s = "The quick brown fox jumps over the lazy dog, twice over.";
    for (size_t cut = 0; cut <= s.size(); ++cut) {
        uint32_t a = crc32c::extend(crc32c::value(s.data(), cut), s.data() + cut, s.size() - cut);
        EXPECT_EQ(a, crc32c::value(s.data(), s.size())) << cut;
    }
}

TEST(crc32c, striped_hardware_path_matches_table_for_all_sizes_and_alignments) {
    // Sizes straddle the short (3 x 256) and long (3 x 8192) stripe thresholds.
    std::vector<uint8_t> buf(3 * 8192 * 2 + 777);
    uint32_t x = 12345;
    for (auto& b : buf) {
        x = x * 1103515245 + 12345;
        b = static_cast<uint8_t>(x >> 16);
    }
    for (size_t len : {0, 1, 7, 8, 9, 767, 768, 769, 3000, 24575, 24576, 24577, 49152, 50000}) {
        for (size_t off : {0, 1, 3, 8}) {
            if (off + len > buf.size()) continue;
            EXPECT_EQ(crc32c::value(buf.data() + off, len),
                      crc32c::extend_portable(0, buf.data() + off, len))
                << "len " << len << " off " << off;
        }
    }
    // Chaining across calls still agrees.
    uint32_t a = crc32c::extend(crc32c::value(buf.data(), 30000), buf.data() + 30000, 19000);
    EXPECT_EQ(a, crc32c::extend_portable(0, buf.data(), 49000));
}
