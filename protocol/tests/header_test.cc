// Request/response header versions and codecs.

#include <gtest/gtest.h>

#include "protocol/header.h"
#include "protocol/tests/test_util.h"

namespace sluice::protocol {
namespace {

using testing::bytes_of;
using testing::copy_of;

TEST(header, versions_follow_flexible_versions) {
    EXPECT_EQ(request_header_version(3, 8), 1);   // Metadata v8: not flexible
    EXPECT_EQ(request_header_version(3, 9), 2);   // Metadata v9: flexible
    EXPECT_EQ(response_header_version(3, 8), 0);
    EXPECT_EQ(response_header_version(3, 9), 1);
    EXPECT_EQ(request_header_version(17, 1), 1);  // SaslHandshake: never flexible
    EXPECT_EQ(request_header_version(9999, 0), 1);  // unknown api
}

TEST(header, api_versions_response_always_uses_header_v0) {
    for (int16_t v = 0; v <= 10; ++v) EXPECT_EQ(response_header_version(api_versions_key, v), 0);
    EXPECT_EQ(request_header_version(api_versions_key, 3), 2);
    // A newer client asking for an undefined ApiVersions version still gets its header parsed.
    EXPECT_EQ(request_header_version(api_versions_key, 4), 2);
    EXPECT_EQ(request_header_version(api_versions_key, 2), 1);
}

TEST(header, request_header_v2_roundtrip_with_unknown_tags) {
    request_header h;
    h.api_key = 3;
    h.api_version = 12;
    h.correlation_id = -5;
    h.client_id = std::nullopt;
    h.unknown_tags.push_back({3, {std::byte{9}}});
    writer w;
    encode_request_header(w, h);
    const auto b = copy_of(w);
    EXPECT_EQ(b, bytes_of({0x00, 0x03, 0x00, 0x0c, 0xff, 0xff, 0xff, 0xfb, 0xff, 0xff, 0x01,
                           0x03, 0x01, 0x09}));
    reader r(b);
    auto d = decode_request_header(r);
    ASSERT_TRUE(d);
    EXPECT_EQ(*d, h);
    EXPECT_EQ(r.remaining(), 0u);
}

TEST(header, response_header_v1_has_tag_section) {
    writer w;
    encode_response_header(w, 1, response_header{0x01020304, {}});
    EXPECT_EQ(copy_of(w), bytes_of({0x01, 0x02, 0x03, 0x04, 0x00}));
    reader r(w.memory());
    auto h = decode_response_header(r, 1);
    ASSERT_TRUE(h);
    EXPECT_EQ(h->correlation_id, 0x01020304);
    writer w0;
    encode_response_header(w0, 0, response_header{1, {}});
    EXPECT_EQ(copy_of(w0).size(), 4u);
}

TEST(header, truncated_headers_are_errors) {
    const auto full = bytes_of({0x00, 0x03, 0x00, 0x0c, 0x00, 0x00, 0x00, 0x01, 0x00, 0x01,
                                0x61, 0x00});
    for (size_t n = 0; n < full.size(); ++n) {
        reader r{std::span<const std::byte>(full).first(n)};
        EXPECT_FALSE(decode_request_header(r)) << n;
    }
    reader r(full);
    EXPECT_TRUE(decode_request_header(r));
}

}  // namespace
}  // namespace sluice::protocol
