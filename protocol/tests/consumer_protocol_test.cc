// The consumer protocol inside JoinGroup metadata and SyncGroup assignments: the exact bytes of
// each version, Kafka's "read a newer version as the newest known" rule, and input that does not
// parse (truncated at every byte, negative versions and counts).

#include "protocol/consumer_protocol.h"

#include <gtest/gtest.h>

#include "base/errc.h"
#include "protocol/tests/test_util.h"

namespace sluice::protocol {
namespace {

using testing::append;
using testing::bytes_of;
using testing::hex;

consumer_subscription full_subscription(int16_t version) {
    consumer_subscription s;
    s.version = version;
    s.topics = {"orders", "payments"};
    s.user_data = bytes_of({0xca, 0xfe});
    if (version >= 1) s.owned_partitions = {{"orders", {0, 2}}, {"payments", {}}};
    if (version >= 2) s.generation_id = 7;
    if (version >= 3) s.rack_id = "rack-a";
    return s;
}

TEST(consumer_protocol, subscription_v0_bytes) {
    consumer_subscription s;
    s.topics = {"orders"};
    std::vector<std::byte> want = bytes_of({0, 0, 0, 0, 0, 1, 0, 6});
    append(want, "orders");
    append(want, {0xff, 0xff, 0xff, 0xff});  // null user data
    EXPECT_EQ(hex(encode_subscription(s)), hex(want));
}

TEST(consumer_protocol, subscription_v3_bytes) {
    consumer_subscription s;
    s.version = 3;
    s.topics = {"t"};
    s.owned_partitions = {{"t", {1}}};
    s.generation_id = 5;
    std::vector<std::byte> want = bytes_of({0, 3, 0, 0, 0, 1, 0, 1, 't'});
    append(want, {0xff, 0xff, 0xff, 0xff});              // user data: null
    append(want, {0, 0, 0, 1, 0, 1, 't', 0, 0, 0, 1});   // owned: one topic, one partition
    append(want, {0, 0, 0, 1, 0, 0, 0, 5, 0xff, 0xff});  // partition 1, generation 5, rack null
    EXPECT_EQ(hex(encode_subscription(s)), hex(want));
}

TEST(consumer_protocol, assignment_v0_bytes) {
    consumer_assignment a;
    a.partitions = {{"orders", {0, 2}}};
    std::vector<std::byte> want = bytes_of({0, 0, 0, 0, 0, 1, 0, 6});
    append(want, "orders");
    append(want, {0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 2, 0xff, 0xff, 0xff, 0xff});
    EXPECT_EQ(hex(encode_assignment(a)), hex(want));
}

TEST(consumer_protocol, every_version_round_trips) {
    for (int16_t v = 0; v <= consumer_protocol_version_max; ++v) {
        auto s = full_subscription(v);
        auto ds = decode_subscription(encode_subscription(s));
        ASSERT_TRUE(ds) << ds.error().describe();
        EXPECT_EQ(*ds, s) << "subscription v" << v;

        consumer_assignment a;
        a.version = v;
        a.partitions = {{"orders", {1, 3}}, {"payments", {0}}};
        a.user_data = bytes_of({1});
        auto da = decode_assignment(encode_assignment(a));
        ASSERT_TRUE(da) << da.error().describe();
        EXPECT_EQ(*da, a) << "assignment v" << v;
    }
}

TEST(consumer_protocol, fields_of_later_versions_keep_defaults_in_older_bytes) {
    auto d = decode_subscription(encode_subscription(full_subscription(0)));
    ASSERT_TRUE(d);
    EXPECT_TRUE(d->owned_partitions.empty());
    EXPECT_EQ(d->generation_id, -1);
    EXPECT_EQ(d->rack_id, std::nullopt);
}

TEST(consumer_protocol, a_newer_version_is_read_as_the_newest_known) {
    auto bytes = encode_subscription(full_subscription(3));
    bytes[1] = std::byte{9};                // version 9
    append(bytes, {0, 0, 0, 42, 1, 2, 3});  // fields a future version appended
    auto d = decode_subscription(bytes);
    ASSERT_TRUE(d) << d.error().describe();
    EXPECT_EQ(d->version, 9);
    EXPECT_EQ(d->topics, full_subscription(3).topics);
    EXPECT_EQ(d->rack_id, "rack-a");

    consumer_assignment a;
    a.partitions = {{"orders", {4}}};
    auto ab = encode_assignment(a);
    ab[1] = std::byte{4};
    append(ab, {7, 7});
    auto da = decode_assignment(ab);
    ASSERT_TRUE(da) << da.error().describe();
    EXPECT_EQ(da->partitions, a.partitions);
}

TEST(consumer_protocol, truncation_at_every_byte_is_malformed) {
    auto sub = encode_subscription(full_subscription(3));
    for (size_t n = 0; n < sub.size(); ++n) {
        auto d = decode_subscription(std::span(sub).first(n));
        EXPECT_FALSE(d) << "subscription cut at " << n;
    }
    consumer_assignment a;
    a.partitions = {{"orders", {1, 3}}};
    a.user_data = bytes_of({5});
    auto asg = encode_assignment(a);
    for (size_t n = 0; n < asg.size(); ++n) {
        auto d = decode_assignment(std::span(asg).first(n));
        EXPECT_FALSE(d) << "assignment cut at " << n;
    }
}

TEST(consumer_protocol, negative_versions_and_counts_are_malformed) {
    auto neg_version = bytes_of({0xff, 0xff, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff});
    auto d = decode_subscription(neg_version);
    ASSERT_FALSE(d);
    EXPECT_TRUE(d.error().is(base::errc::malformed));

    auto neg_count = bytes_of({0, 0, 0xff, 0xff, 0xff, 0xfe, 0xff, 0xff, 0xff, 0xff});
    EXPECT_FALSE(decode_assignment(neg_count));
    // A count far beyond the bytes present fails before anything is reserved.
    auto huge = bytes_of({0, 0, 0x00, 0x0f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff});
    auto h = decode_assignment(huge);
    ASSERT_FALSE(h);
}

}  // namespace
}  // namespace sluice::protocol
