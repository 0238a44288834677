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
