// A catalogue of bad input: every decoder returns an error, never crashes, never allocates from
// an unchecked length.

#include <gtest/gtest.h>

#include "protocol/generated/messages.h"
#include "protocol/generated/sample.h"
#include "protocol/request.h"
#include "protocol/tests/test_util.h"

namespace sluice::protocol {
namespace {

using testing::append;
using testing::bytes_of;
using testing::copy_of;

template <class Api, class Msg>
void check_truncations(const char* kind) {
    for (int16_t v = Api::min_version; v <= Api::max_version; ++v) {
        for (uint64_t seed = 1; seed <= 2; ++seed) {
            sample_rng g(seed * 31 + static_cast<uint64_t>(v));
            Msg m;
            fill_sample(m, v, g);
            writer w;
            m.encode(w, v);
            const auto full = copy_of(w);
            for (size_t n = 0; n < full.size(); ++n) {
                reader r{std::span<const std::byte>(full).first(n)};
                Msg d;
                auto st = d.decode(r, v);
                ASSERT_FALSE(st) << Api::name << " " << kind << " v" << v << " cut at " << n
                                 << " of " << full.size();
                EXPECT_TRUE(st.error().is(base::errc::malformed));
            }
        }
    }
}

TEST(malformed, truncated_at_every_byte_of_every_message) {
#define SLUICE_CHECK_API(api, request, response) \
    check_truncations<api, request>("request");  \
    check_truncations<api, response>("response");
    SLUICE_PROTOCOL_APIS(SLUICE_CHECK_API)
#undef SLUICE_CHECK_API
}

result<any_request> decode(int16_t key, int16_t version, const std::vector<std::byte>& body,
                           const reader_limits& limits = {}) {
    return decode_request(key, version, body, limits);
}

TEST(malformed, huge_string_length_is_an_error) {
    // ApiVersions v3 with a compact string claiming 2^32-2 bytes.
    auto body = bytes_of({0xff, 0xff, 0xff, 0xff, 0x0f, 'a'});
    auto r = decode(18, 3, body);
    ASSERT_FALSE(r);
    EXPECT_TRUE(r.error().is(base::errc::limit_exceeded));
    // Classic int16 string longer than the input.
    auto body2 = bytes_of({0x00, 0x00, 0x00, 0x01, 0x7f, 0xff, 'a'});  // Metadata v1 topic
    r = decode(3, 1, body2);
    ASSERT_FALSE(r);
    EXPECT_TRUE(r.error().is(base::errc::malformed));
}

TEST(malformed, string_over_configured_limit) {
    std::vector<std::byte> body = bytes_of({0x00, 0x00, 0x00, 0x01, 0x00, 0x10});
    append(body, "0123456789abcdef");
    reader_limits limits;
    limits.string_bytes_max = 8;
    auto r = decode(3, 1, body, limits);
    ASSERT_FALSE(r);
    EXPECT_TRUE(r.error().is(base::errc::limit_exceeded));
    EXPECT_TRUE(decode(3, 1, body));
}

TEST(malformed, huge_bytes_and_records_lengths) {
    // SaslAuthenticate v0: auth bytes with an int32 length of 2^31-1.
    auto r = decode(36, 0, bytes_of({0x7f, 0xff, 0xff, 0xff, 1, 2, 3}));
    ASSERT_FALSE(r);
    EXPECT_TRUE(r.error().is(base::errc::limit_exceeded));
    reader_limits big;
    big.blob_bytes_max = UINT32_MAX;
    r = decode(36, 0, bytes_of({0x7f, 0xff, 0xff, 0xff, 1, 2, 3}), big);
    ASSERT_FALSE(r);
    EXPECT_TRUE(r.error().is(base::errc::malformed));

    // Produce v3: records claiming more bytes than follow.
    std::vector<std::byte> body = bytes_of({0xff, 0xff, 0x00, 0x01, 0x00, 0x00, 0x00, 0x10,
                                            0x00, 0x00, 0x00, 0x01, 0x00, 0x01, 't',
                                            0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00,
                                            0x00, 0x10, 0x00, 0x00, 0xaa});
    r = decode(0, 3, body);
    ASSERT_FALSE(r);
    EXPECT_TRUE(r.error().is(base::errc::malformed));
}

TEST(malformed, array_counts) {
    // Metadata v1: a count far beyond the bytes left (each topic needs at least 2 bytes).
    auto r = decode(3, 1, bytes_of({0x00, 0x01, 0x00, 0x00, 0x00, 0x01}));
    ASSERT_FALSE(r);
    EXPECT_TRUE(r.error().is(base::errc::malformed));
    // Beyond the configured maximum.
    r = decode(3, 1, bytes_of({0x7f, 0xff, 0xff, 0xff}));
    ASSERT_FALSE(r);
    EXPECT_TRUE(r.error().is(base::errc::limit_exceeded));
    // Negative counts other than -1.
    r = decode(3, 1, bytes_of({0xff, 0xff, 0xff, 0xfe}));
    ASSERT_FALSE(r);
    EXPECT_TRUE(r.error().is(base::errc::malformed));
    r = decode(3, 1, bytes_of({0x80, 0x00, 0x00, 0x00}));
    ASSERT_FALSE(r);
    // -1 where the array is not nullable (Produce topics).
    r = decode(0, 3, bytes_of({0xff, 0xff, 0x00, 0x01, 0x00, 0x00, 0x00, 0x10,
                               0xff, 0xff, 0xff, 0xff}));
    ASSERT_FALSE(r);
    EXPECT_TRUE(r.error().is(base::errc::malformed));
    // Scalar arrays are checked with their element size: 3 int32s need 12 bytes.
    // (Heartbeat has none; DeleteGroups v0 has []string: 3 strings need at least 6 bytes.)
    r = decode(42, 0, bytes_of({0x00, 0x00, 0x00, 0x03, 0x00, 0x00, 0x00, 0x00}));
    ASSERT_FALSE(r);
}

TEST(malformed, negative_string_lengths) {
    // -1 where the string is not nullable (Heartbeat group id).
    auto r = decode(12, 0, bytes_of({0xff, 0xff, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00}));
    ASSERT_FALSE(r);
    EXPECT_TRUE(r.error().is(base::errc::malformed));
    r = decode(12, 0, bytes_of({0xff, 0xfe, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00}));
    ASSERT_FALSE(r);
}

TEST(malformed, varint_overflow) {
    // ApiVersions v3: compact string length with six continuation bytes.
    auto r = decode(18, 3, bytes_of({0xff, 0xff, 0xff, 0xff, 0xff, 0x01, 0x00}));
    ASSERT_FALSE(r);
    EXPECT_TRUE(r.error().is(base::errc::malformed));
    // Five bytes whose value exceeds 32 bits.
    r = decode(18, 3, bytes_of({0xff, 0xff, 0xff, 0xff, 0x7f, 0x00}));
    ASSERT_FALSE(r);
    EXPECT_TRUE(r.error().is(base::errc::malformed));
    // Varint running off the end.
    r = decode(18, 3, bytes_of({0x80, 0x80}));
    ASSERT_FALSE(r);
}

TEST(malformed, tagged_fields) {
    // ApiVersions v3 request: empty strings, then a tag whose size runs past the end.
    auto r = decode(18, 3, bytes_of({0x01, 0x01, 0x01, 0x05, 0x10, 0xaa}));
    ASSERT_FALSE(r);
    // A tag count larger than the bytes left.
    r = decode(18, 3, bytes_of({0x01, 0x01, 0x7f, 0x00}));
    ASSERT_FALSE(r);
    // A known tag (Fetch request v12 ClusterId, tag 0) whose size disagrees with its content.
    fetch_request f;
    f.cluster_id = "abc";
    writer w;
    f.encode(w, 12);
    auto body = copy_of(w);
    // The tag section is the last bytes: count 1, tag 0, size 4, compact string "abc".
    ASSERT_GE(body.size(), 6u);
    auto* size_byte = &body[body.size() - 5];
    ASSERT_EQ(*size_byte, std::byte{4});
    *size_byte = std::byte{3};
    body.push_back(std::byte{0});
    auto bad = decode(1, 12, body);
    ASSERT_FALSE(bad);
}

TEST(malformed, unknown_tags_are_kept) {
    auto body = bytes_of({0x01, 0x01, 0x02, 0x07, 0x02, 0xab, 0xcd, 0x09, 0x00});
    auto r = decode(18, 3, body);
    ASSERT_TRUE(r) << r.error().describe();
    const auto& m = std::get<api_versions_request>(*r);
    ASSERT_EQ(m.unknown_tags.size(), 2u);
    EXPECT_EQ(m.unknown_tags[0].tag, 7u);
    EXPECT_EQ(m.unknown_tags[0].data, bytes_of({0xab, 0xcd}));
    EXPECT_EQ(m.unknown_tags[1].tag, 9u);
    writer w;
    m.encode(w, 3);
    EXPECT_EQ(copy_of(w), body);
}

TEST(malformed, unsupported_api_and_version) {
    auto r = decode(9999, 0, {});
    ASSERT_FALSE(r);
    EXPECT_TRUE(r.error().is(errc::unsupported_api));
    r = decode(0, 10, {});  // Produce above v9
    ASSERT_FALSE(r);
    EXPECT_TRUE(r.error().is(errc::unsupported_version));
    r = decode(18, 4, {});
    ASSERT_FALSE(r);
    EXPECT_TRUE(r.error().is(errc::unsupported_version));
    r = decode(18, -1, {});
    ASSERT_FALSE(r);
}

}  // namespace
}  // namespace sluice::protocol
