#include "model/compression.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

using namespace sluice;
using namespace sluice::model;

namespace {

constexpr compression all_codecs[] = {compression::gzip, compression::snappy, compression::lz4,
                                      compression::zstd};

std::vector<std::byte> to_bytes(std::string_view s) {
    std::vector<std::byte> v(s.size());
    if (!s.empty()) std::memcpy(v.data(), s.data(), s.size());
    return v;
}
std::vector<std::byte> to_bytes(std::initializer_list<int> l) {
    std::vector<std::byte> v;
    for (int b : l) v.push_back(static_cast<std::byte>(b));
    return v;
}

// The plain text behind the files in tests/data (see make_data.sh there).
std::vector<std::byte> interop_text() {
    std::string s;
    char line[64];
    for (int i = 0; i < 2500; ++i) {
        std::snprintf(line, sizeof(line), "sluice interop line %05d %d\n", i, i % 7);
        s += line;
    }
    return to_bytes(s);
}

std::vector<std::byte> read_data(const char* name) {
    std::string path = std::string(SLUICE_MODEL_TEST_DATA) + "/" + name;
    std::vector<std::byte> out;
    FILE* f = std::fopen(path.c_str(), "rb");
    if (!f) {
        ADD_FAILURE() << "cannot open " << path;
        return out;
    }
    std::byte buf[4096];
    size_t n;
    while ((n = std::fread(buf, 1, sizeof(buf), f)) > 0) out.insert(out.end(), buf, buf + n);
    std::fclose(f);
    return out;
}

std::vector<std::byte> random_bytes(size_t n, uint32_t seed) {
    std::mt19937 rng(seed);
    std::vector<std::byte> v(n);
    for (auto& b : v) b = static_cast<std::byte>(rng());
    return v;
}

std::vector<std::byte> must_compress(compression c, const std::vector<std::byte>& in) {
    std::vector<std::byte> out;
    auto r = compress(c, in, out);
    EXPECT_TRUE(r) << r.error().describe();
    return out;
}

void expect_decodes_to(compression c, const std::vector<std::byte>& framed,
                       const std::vector<std::byte>& plain) {
    std::vector<std::byte> out;
    auto r = decompress(c, framed, out, plain.size());
    ASSERT_TRUE(r) << r.error().describe();
    EXPECT_EQ(out.size(), plain.size());
    EXPECT_TRUE(out == plain);
}

}  // namespace

// ---- frames written by other tools ---------------------------------------------------------

TEST(compression_interop, gzip_from_cli) {
    expect_decodes_to(compression::gzip, read_data("plain.gz"), interop_text());
}

TEST(compression_interop, gzip_with_two_members) {
    expect_decodes_to(compression::gzip, read_data("plain.multi.gz"), interop_text());
}

TEST(compression_interop, zstd_stream_without_content_size) {
    expect_decodes_to(compression::zstd, read_data("plain.stream.zst"), interop_text());
}

TEST(compression_interop, lz4_frame_as_kafka_writes_it) {
    auto frame = read_data("plain.kafka.lz4");
    ASSERT_GE(frame.size(), 7u);
    EXPECT_EQ(static_cast<int>(frame[4]), 0x60);  // version 1, independent blocks
    EXPECT_EQ(static_cast<int>(frame[5]), 0x40);  // 64 KiB blocks
    expect_decodes_to(compression::lz4, frame, interop_text());
}

TEST(compression_interop, lz4_frame_with_dependent_blocks_and_checksum) {
    expect_decodes_to(compression::lz4, read_data("plain.dependent.lz4"), interop_text());
}

TEST(compression_interop, lz4_frame_with_pre_0_10_header_checksum) {
    auto broken = read_data("plain.broken_hc.lz4");
    auto good = read_data("plain.kafka.lz4");
    ASSERT_EQ(broken.size(), good.size());
    EXPECT_NE(broken[6], good[6]);  // only the header checksum differs
    expect_decodes_to(compression::lz4, broken, interop_text());
}

TEST(compression_interop, lz4_frame_with_random_bad_header_checksum_rejected) {
    auto frame = read_data("plain.kafka.lz4");
    frame[6] ^= std::byte{0x5a};
    std::vector<std::byte> out;
    auto r = decompress(compression::lz4, frame, out, 1 << 20);
    ASSERT_FALSE(r);
    EXPECT_TRUE(r.error().is(errc::compression_failed));
}

// Snappy blocks written by hand from the format description: a literal "hello " and then a
// copy of 12 bytes from 6 back (tag 0b10: 2-byte offset).
TEST(compression_interop, snappy_raw_block) {
    auto block = to_bytes({0x12, 0x14, 'h', 'e', 'l', 'l', 'o', ' ', 0x2e, 0x06, 0x00});
    expect_decodes_to(compression::snappy, block, to_bytes("hello hello hello "));
}

TEST(compression_interop, snappy_xerial_framing) {
    // magic, version 1, compatible version 1, then two chunks: [int32 length][snappy block].
    auto framed =
        to_bytes({0x82, 'S',  'N',  'A', 'P', 'P', 'Y',  0,    0,    0,   0,   1,   0,   0,
                  0,    1,    0,    0,   0,   11,  0x12, 0x14, 'h',  'e', 'l', 'l', 'o', ' ',
                  0x2e, 0x06, 0x00, 0,   0,   0,   5,    0x03, 0x08, 'b', 'y', 'e'});
    // The second chunk: preamble 3, literal tag (3-1)<<2, "bye".
    expect_decodes_to(compression::snappy, framed, to_bytes("hello hello hello bye"));
}

TEST(compression_interop, our_snappy_uses_xerial_framing) {
    auto in = interop_text();
    auto framed = must_compress(compression::snappy, in);
    ASSERT_GT(framed.size(), xerial_format::header_size);
    EXPECT_EQ(std::memcmp(framed.data(), xerial_format::magic, 8), 0);
    // 70000 bytes in 32 KiB chunks: three chunks.
    size_t pos = xerial_format::header_size, chunks = 0;
    while (pos + 4 <= framed.size()) {
        uint32_t n = (uint32_t(framed[pos]) << 24) | (uint32_t(framed[pos + 1]) << 16) |
                     (uint32_t(framed[pos + 2]) << 8) | uint32_t(framed[pos + 3]);
        pos += 4 + n;
        ++chunks;
    }
    EXPECT_EQ(pos, framed.size());
    EXPECT_EQ(chunks, 3u);
}

TEST(compression_interop, our_lz4_frame_matches_kafka_header) {
    auto framed = must_compress(compression::lz4, interop_text());
    ASSERT_GE(framed.size(), 7u);
    EXPECT_EQ(static_cast<int>(framed[4]), 0x60);
    EXPECT_EQ(static_cast<int>(framed[5]), 0x40);
}

// ---- round trips ---------------------------------------------------------------------------

TEST(compression, round_trip_every_codec_and_size) {
    std::vector<std::vector<std::byte>> inputs = {
        {}, to_bytes("x"), interop_text(), random_bytes(100000, 1)};
    for (compression c : all_codecs) {
        for (const auto& in : inputs) {
            SCOPED_TRACE(testing::Message() << "codec " << int(c) << " size " << in.size());
            auto framed = must_compress(c, in);
            expect_decodes_to(c, framed, in);
        }
    }
}

TEST(compression, levels_are_accepted) {
    auto in = interop_text();
    for (compression c : all_codecs) {
        for (int level : {1, 5, 9, 12, 99, -5}) {
            std::vector<std::byte> framed;
            ASSERT_TRUE(compress(c, in, framed, level)) << int(c) << " level " << level;
            expect_decodes_to(c, framed, in);
        }
    }
}

TEST(compression, compress_appends_and_decompress_appends) {
    auto in = interop_text();
    for (compression c : all_codecs) {
        std::vector<std::byte> framed = to_bytes("prefix");
        ASSERT_TRUE(compress(c, in, framed));
        std::vector<std::byte> out = to_bytes("keep");
        ASSERT_TRUE(decompress(c, std::span(framed).subspan(6), out, in.size()));
        ASSERT_EQ(out.size(), 4 + in.size());
        EXPECT_EQ(std::memcmp(out.data(), "keep", 4), 0);
        EXPECT_EQ(std::memcmp(out.data() + 4, in.data(), in.size()), 0);
    }
}

TEST(compression, none_codec_copies_and_is_bounded) {
    auto in = to_bytes("plain");
    std::vector<std::byte> out;
    ASSERT_TRUE(decompress(compression::none, in, out, 5));
    EXPECT_TRUE(out == in);
    out.clear();
    EXPECT_TRUE(decompress(compression::none, in, out, 4).error().is(errc::too_large));
}

TEST(compression, unknown_codec_rejected) {
    std::vector<std::byte> out;
    auto bad = static_cast<compression>(5);
    EXPECT_TRUE(decompress(bad, to_bytes("abc"), out, 100).error().is(errc::unknown_compression));
    EXPECT_TRUE(compress(bad, to_bytes("abc"), out).error().is(errc::unknown_compression));
}

// ---- limits --------------------------------------------------------------------------------

TEST(compression, bomb_rejected_with_bounded_output) {
    std::vector<std::byte> zeros(16 << 20);  // 16 MiB of zeros packs into a few KiB
    for (compression c : all_codecs) {
        SCOPED_TRACE(int(c));
        auto framed = must_compress(c, zeros);
        // Snappy's copies top out near 64 bytes per 3 bytes of input; the others do far better.
        EXPECT_LT(framed.size(), zeros.size() / (c == compression::snappy ? 20 : 100));
        std::vector<std::byte> out = to_bytes("old");
        auto r = decompress(c, framed, out, 1 << 20);
        ASSERT_FALSE(r);
        EXPECT_TRUE(r.error().is(errc::too_large)) << r.error().describe();
        EXPECT_EQ(out.size(), 3u);                   // cut back on failure
        EXPECT_LE(out.capacity(), size_t{2} << 20);  // never allocated toward 16 MiB
    }
}

TEST(compression, limit_is_inclusive) {
    auto in = interop_text();
    for (compression c : all_codecs) {
        SCOPED_TRACE(int(c));
        auto framed = must_compress(c, in);
        std::vector<std::byte> out;
        EXPECT_TRUE(decompress(c, framed, out, in.size()));
        out.clear();
        auto r = decompress(c, framed, out, in.size() - 1);
        ASSERT_FALSE(r);
        EXPECT_TRUE(r.error().is(errc::too_large));
    }
}

TEST(compression, snappy_declared_length_checked_before_allocating) {
    // A raw block that claims 2^31 bytes of output: refused from the preamble alone.
    auto block = to_bytes({0x80, 0x80, 0x80, 0x80, 0x08, 0x00});
    std::vector<std::byte> out;
    auto r = decompress(compression::snappy, block, out, 1 << 20);
    ASSERT_FALSE(r);
    EXPECT_TRUE(r.error().is(errc::too_large));
    EXPECT_LT(out.capacity(), size_t{1} << 20);
}

// ---- corrupt input -------------------------------------------------------------------------

TEST(compression, truncated_payloads_never_decode_to_the_original) {
    auto in = interop_text();
    for (compression c : all_codecs) {
        SCOPED_TRACE(int(c));
        auto framed = must_compress(c, in);
        for (size_t cut = 0; cut < framed.size(); cut += 1 + cut / 8) {
            std::vector<std::byte> out;
            auto r = decompress(c, std::span(framed).first(cut), out, in.size());
            if (r) {
                EXPECT_FALSE(out == in) << "cut at " << cut;
            }
        }
    }
}

TEST(compression, truncated_gzip_lz4_zstd_are_errors) {
    auto in = interop_text();
    for (compression c : {compression::gzip, compression::lz4, compression::zstd}) {
        SCOPED_TRACE(int(c));
        auto framed = must_compress(c, in);
        std::vector<std::byte> out;
        auto r = decompress(c, std::span(framed).first(framed.size() - 1), out, in.size());
        ASSERT_FALSE(r);
        EXPECT_TRUE(r.error().is(errc::compression_failed)) << r.error().describe();
    }
}

TEST(compression, flipped_bytes_fail_or_differ_never_crash) {
    auto in = interop_text();
    std::mt19937 rng(42);
    for (compression c : all_codecs) {
        SCOPED_TRACE(int(c));
        auto framed = must_compress(c, in);
        for (int round = 0; round < 300; ++round) {
            auto bad = framed;
            int flips = 1 + static_cast<int>(rng() % 4);
            for (int i = 0; i < flips; ++i) bad[rng() % bad.size()] ^= std::byte(1 + rng() % 255);
            std::vector<std::byte> out;
            auto r = decompress(c, bad, out, in.size() * 2);
            if (!r) {
                EXPECT_TRUE(r.error().is(errc::compression_failed) ||
                            r.error().is(errc::too_large));
            }
        }
    }
}

TEST(compression, garbage_is_rejected) {
    for (compression c : all_codecs) {
        for (uint32_t seed = 0; seed < 50; ++seed) {
            auto junk = random_bytes(1 + seed * 7, seed);
            std::vector<std::byte> out;
            (void)decompress(c, junk, out, 1 << 16);  // must not crash; result may vary
        }
        std::vector<std::byte> out;
        EXPECT_FALSE(decompress(c, {}, out, 100)) << int(c);
    }
}

TEST(compression, xerial_chunk_length_past_end_rejected) {
    auto framed = to_bytes({0x82, 'S', 'N', 'A', 'P', 'P',  'Y',  0,    0,    0,    0,
                            1,    0,   0,   0,   1,   0x7f, 0xff, 0xff, 0xff, 0x01, 0x00});
    std::vector<std::byte> out;
    auto r = decompress(compression::snappy, framed, out, 1 << 20);
    ASSERT_FALSE(r);
    EXPECT_TRUE(r.error().is(errc::compression_failed));
}
