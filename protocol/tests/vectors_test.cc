// Hand-checked byte vectors: frames as real clients send them, decoded and re-encoded.

#include <fcntl.h>

#include <gtest/gtest.h>

#include "base/bytes.h"
#include "protocol/request.h"
#include "protocol/response.h"
#include "protocol/tests/test_util.h"

namespace sluice::protocol {
namespace {

using testing::append;
using testing::bytes_of;
using testing::copy_of;
using testing::hex;

// Re-encodes header + body and expects the original frame back.
template <class Msg>
void expect_reencodes(const request_header& h, const Msg& m, std::span<const std::byte> frame) {
    writer w;
    encode_request_header(w, h);
    m.encode(w, h.api_version);
    EXPECT_EQ(hex(w.memory()), hex(frame));
}

TEST(vectors, api_versions_v3_request_as_librdkafka_sends_it) {
    std::vector<std::byte> frame = bytes_of({0x00, 0x12, 0x00, 0x03, 0x00, 0x00, 0x00, 0x01});
    append(frame, {0x00, 0x07});  // client id: int16 length even in header v2
    append(frame, "rdkafka");
    append(frame, {0x00});        // header tagged fields
    append(frame, {0x0b});        // compact string, 10 bytes
    append(frame, "librdkafka");
    append(frame, {0x06});
    append(frame, "2.0.2");
    append(frame, {0x00});        // body tagged fields

    auto parsed = parse_request_frame(frame);
    ASSERT_TRUE(parsed) << parsed.error().describe();
    EXPECT_EQ(parsed->header.api_key, 18);
    EXPECT_EQ(parsed->header.api_version, 3);
    EXPECT_EQ(parsed->header.correlation_id, 1);
    EXPECT_EQ(parsed->header.client_id, "rdkafka");
    auto req = decode_request(18, 3, parsed->body);
    ASSERT_TRUE(req) << req.error().describe();
    const auto& av = std::get<api_versions_request>(*req);
    EXPECT_EQ(av.client_software_name, "librdkafka");
    EXPECT_EQ(av.client_software_version, "2.0.2");
    expect_reencodes(parsed->header, av, frame);
}

TEST(vectors, metadata_v1_request_with_one_topic_and_with_null_topics) {
    std::vector<std::byte> frame = bytes_of({0x00, 0x03, 0x00, 0x01, 0x00, 0x00, 0x00, 0x02});
    append(frame, {0x00, 0x07});
    append(frame, "rdkafka");
    append(frame, {0x00, 0x00, 0x00, 0x01, 0x00, 0x05});
    append(frame, "topic");

    auto parsed = parse_request_frame(frame);
    ASSERT_TRUE(parsed);
    EXPECT_EQ(request_header_version(3, 1), 1);
    auto req = decode_request(3, 1, parsed->body);
    ASSERT_TRUE(req) << req.error().describe();
    const auto& md = std::get<metadata_request>(*req);
    ASSERT_TRUE(md.topics.has_value());
    ASSERT_EQ(md.topics->size(), 1u);
    EXPECT_EQ((*md.topics)[0].name, "topic");
    expect_reencodes(parsed->header, md, frame);

    // -1 topics: "all topics" from v1; not allowed in v0.
    const auto all = bytes_of({0xff, 0xff, 0xff, 0xff});
    auto v1 = decode_request(3, 1, all);
    ASSERT_TRUE(v1);
    EXPECT_FALSE(std::get<metadata_request>(*v1).topics.has_value());
    auto v0 = decode_request(3, 0, all);
    ASSERT_FALSE(v0);
    EXPECT_TRUE(v0.error().is(base::errc::malformed));
}

TEST(vectors, produce_v3_request_header_and_records_view) {
    std::vector<std::byte> frame = bytes_of({0x00, 0x00, 0x00, 0x03, 0x00, 0x00, 0x00, 0x05});
    append(frame, {0x00, 0x07});
    append(frame, "rdkafka");
    const size_t body_at = frame.size();
    append(frame, {0xff, 0xff});              // transactional id: null
    append(frame, {0xff, 0xff});              // acks: -1
    append(frame, {0x00, 0x00, 0x75, 0x30});  // timeout 30000 ms
    append(frame, {0x00, 0x00, 0x00, 0x01, 0x00, 0x01});
    append(frame, "t");
    append(frame, {0x00, 0x00, 0x00, 0x01});  // one partition
    append(frame, {0x00, 0x00, 0x00, 0x00});  // index 0
    append(frame, {0x00, 0x00, 0x00, 0x04, 0xde, 0xad, 0xbe, 0xef});

    auto parsed = parse_request_frame(frame);
    ASSERT_TRUE(parsed);
    EXPECT_EQ(parsed->header.api_key, 0);
    EXPECT_EQ(parsed->header.api_version, 3);
    EXPECT_EQ(parsed->header.correlation_id, 5);
    EXPECT_EQ(parsed->body.data(), frame.data() + body_at);
    auto req = decode_request(0, 3, parsed->body);
    ASSERT_TRUE(req) << req.error().describe();
    const auto& p = std::get<produce_request>(*req);
    EXPECT_FALSE(p.transactional_id.has_value());
    EXPECT_EQ(p.acks, -1);
    EXPECT_EQ(p.timeout_ms, 30000);
    ASSERT_EQ(p.topic_data.size(), 1u);
    EXPECT_EQ(p.topic_data[0].name, "t");
    const auto& recs = p.topic_data[0].partition_data.at(0).records;
    ASSERT_TRUE(recs.in_memory());
    EXPECT_EQ(recs.size_bytes(), 4u);
    // A view into the frame, not a copy.
    EXPECT_EQ(recs.memory().data(), frame.data() + frame.size() - 4);
    expect_reencodes(parsed->header, p, frame);
}

TEST(vectors, api_versions_response_v0_frame) {
    api_versions_response resp;
    resp.error_code = 0;
    resp.api_keys.push_back({18, 0, 3});
    writer w;
    encode_response_frame(w, api_versions_key, 0, 7, resp);
    const auto expected = bytes_of({0x00, 0x00, 0x00, 0x10,   // size 16
                                    0x00, 0x00, 0x00, 0x07,   // correlation id
                                    0x00, 0x00,               // error code
                                    0x00, 0x00, 0x00, 0x01,   // one api
                                    0x00, 0x12, 0x00, 0x00, 0x00, 0x03});
    EXPECT_EQ(hex(w.memory()), hex(expected));
}

TEST(vectors, api_versions_v3_response_keeps_header_v0) {
    api_versions_response resp;
    resp.api_keys.push_back({0, 3, 9});
    writer w;
    encode_response_frame(w, api_versions_key, 3, 9, resp);
    // size, correlation id, then the body directly: no header tagged-field byte.
    const auto expected = bytes_of({0x00, 0x00, 0x00, 0x13, 0x00, 0x00, 0x00, 0x09,
                                    0x00, 0x00,                     // error code
                                    0x02,                           // compact array: 1 entry
                                    0x00, 0x00, 0x00, 0x03, 0x00, 0x09, 0x00,
                                    0x00, 0x00, 0x00, 0x00,         // throttle time
                                    0x00});                         // body tagged fields
    EXPECT_EQ(hex(w.memory()), hex(expected));
}

TEST(vectors, fetch_response_with_file_regions_is_zero_copy) {
    const int fd = ::open("/dev/null", O_RDONLY);
    ASSERT_GE(fd, 0);
    shared_fd file = make_shared_fd(fd);
    fetch_response resp;
    auto& topic = resp.responses.emplace_back();
    topic.topic = "t";
    for (int i = 0; i < 2; ++i) {
        auto& part = topic.partitions.emplace_back();
        part.partition_index = i;
        part.high_watermark = 100;
        part.records = records::from_files(
            {file_region{file, 4096u * static_cast<uint64_t>(i), 1000},
             file_region{file, 100000, 24}});
    }
    writer w;
    encode_response_frame(w, 1, 4, 42, resp);

    const auto pieces = w.pieces();
    // memory, file, file, memory (second partition's fields), file, file.
    ASSERT_EQ(pieces.size(), 6u);
    EXPECT_TRUE(std::holds_alternative<std::span<const std::byte>>(pieces[0]));
    EXPECT_EQ(std::get<file_region>(pieces[1]).length, 1000u);
    EXPECT_EQ(std::get<file_region>(pieces[2]).offset, 100000u);
    EXPECT_TRUE(std::holds_alternative<std::span<const std::byte>>(pieces[3]));
    EXPECT_EQ(std::get<file_region>(pieces[4]).offset, 4096u);
    EXPECT_EQ(std::get<file_region>(pieces[5]).length, 24u);

    uint64_t total = 0;
    for (const auto& p : pieces) {
        if (auto* m = std::get_if<std::span<const std::byte>>(&p)) {
            total += m->size();
        } else {
            total += std::get<file_region>(p).length;
        }
    }
    EXPECT_EQ(total, w.size_bytes());
    const auto first = std::get<std::span<const std::byte>>(pieces[0]);
    EXPECT_EQ(bytes::load_be32(first.data()), w.size_bytes() - 4);
    // The records length prefix just before the first region counts both regions.
    EXPECT_EQ(bytes::load_be32(first.data() + first.size() - 4), 1024u);
}

}  // namespace
}  // namespace sluice::protocol
