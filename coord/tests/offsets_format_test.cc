// The __consumer_offsets record formats: round trips, Kafka's exact bytes, and damaged input.

#include <gtest/gtest.h>

#include "coord/offsets_format.h"

namespace sluice::coord::format {
namespace {

bytes hex(std::initializer_list<int> v) {
    bytes b;
    for (int x : v) b.push_back(static_cast<std::byte>(x));
    return b;
}

TEST(offsets_format, offset_key_is_kafkas_version_1_layout) {
    auto k = encode_offset_key("g", "t", 3);
    EXPECT_EQ(k, hex({0, 1, 0, 1, 'g', 0, 1, 't', 0, 0, 0, 3}));
    auto d = decode_key(k);
    ASSERT_TRUE(d);
    auto* ok = std::get_if<offset_key>(&*d);
    ASSERT_NE(ok, nullptr);
    EXPECT_EQ(ok->group, "g");
    EXPECT_EQ(ok->topic, "t");
    EXPECT_EQ(ok->partition, 3);
}

TEST(offsets_format, group_key_is_version_2) {
    auto k = encode_group_key("grp");
    EXPECT_EQ(k, hex({0, 2, 0, 3, 'g', 'r', 'p'}));
    auto d = decode_key(k);
    ASSERT_TRUE(d);
    EXPECT_EQ(std::get<group_key>(*d).group, "grp");
}

TEST(offsets_format, offset_value_v3_round_trips) {
    committed_offset v{42, 7, "meta", 1700000000000};
    auto b = encode_offset_value(v);
    EXPECT_EQ(b.size(), 2u + 8 + 4 + 2 + 4 + 8);
    EXPECT_EQ(b[0], std::byte{0});
    EXPECT_EQ(b[1], std::byte{3});
    auto d = decode_offset_value(b);
    ASSERT_TRUE(d);
    EXPECT_EQ(d->offset, 42);
    EXPECT_EQ(d->leader_epoch, 7);
    EXPECT_EQ(d->metadata, "meta");
    EXPECT_EQ(d->commit_timestamp_ms, 1700000000000);
}

TEST(offsets_format, offset_value_v1_with_expire_timestamp_is_read) {
    auto b = hex({0, 1, 0, 0, 0, 0, 0, 0, 0, 9, 0, 0, 0, 0, 0, 0, 0, 0, 0, 5, 0, 0, 0, 0, 0, 0, 0, 6});
    auto d = decode_offset_value(b);
    ASSERT_TRUE(d);
    EXPECT_EQ(d->offset, 9);
    EXPECT_EQ(d->leader_epoch, -1);
    EXPECT_EQ(d->commit_timestamp_ms, 5);
}

TEST(offsets_format, group_value_v3_round_trips_members) {
    group_value v;
    v.protocol_type = "consumer";
    v.generation = 5;
    v.protocol = "range";
    v.leader = "m1";
    v.current_state_timestamp_ms = 99;
    v.members.push_back({"m1", "inst-1", "client", "/127.0.0.1", 300000, 10000, hex({1, 2}), hex({3})});
    v.members.push_back({"m2", std::nullopt, "client", "/127.0.0.1", 300000, 10000, {}, {}});
    auto d = decode_group_value(encode_group_value(v));
    ASSERT_TRUE(d);
    EXPECT_EQ(d->protocol_type, "consumer");
    EXPECT_EQ(d->generation, 5);
    EXPECT_EQ(d->protocol, "range");
    EXPECT_EQ(d->leader, "m1");
    EXPECT_EQ(d->current_state_timestamp_ms, 99);
    ASSERT_EQ(d->members.size(), 2u);
    EXPECT_EQ(d->members[0].group_instance_id, "inst-1");
    EXPECT_EQ(d->members[0].subscription, hex({1, 2}));
    EXPECT_EQ(d->members[0].assignment, hex({3}));
    EXPECT_EQ(d->members[1].group_instance_id, std::nullopt);
}

TEST(offsets_format, empty_group_has_null_protocol_and_leader) {
    group_value v;
    v.protocol_type = "consumer";
    auto b = encode_group_value(v);
    auto d = decode_group_value(b);
    ASSERT_TRUE(d);
    EXPECT_FALSE(d->protocol);
    EXPECT_FALSE(d->leader);
}

TEST(offsets_format, truncated_values_are_errors_not_crashes) {
    group_value v;
    v.protocol_type = "consumer";
    v.members.push_back({"m1", "i", "c", "h", 1, 2, hex({1, 2, 3}), hex({4})});
    auto full = encode_group_value(v);
    for (size_t n = 0; n < full.size(); ++n) {
        EXPECT_FALSE(decode_group_value(std::span(full).first(n))) << n;
    }
    auto off = encode_offset_value({1, 2, "x", 3});
    for (size_t n = 0; n < off.size(); ++n) {
        EXPECT_FALSE(decode_offset_value(std::span(off).first(n))) << n;
    }
    auto key = encode_offset_key("g", "t", 1);
    for (size_t n = 0; n < key.size(); ++n) EXPECT_FALSE(decode_key(std::span(key).first(n))) << n;
}

TEST(offsets_format, unknown_versions) {
    auto d = decode_key(hex({0, 9, 0, 0}));
    ASSERT_TRUE(d);
    EXPECT_EQ(std::get<other_key>(*d).version, 9);
    EXPECT_FALSE(decode_offset_value(hex({0, 4, 0})));
    EXPECT_FALSE(decode_group_value(hex({0, 7, 0})));
    // A negative member count.
    EXPECT_FALSE(decode_group_value(hex({0, 3, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0,
                                         0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff})));
}

}  // namespace
}  // namespace sluice::coord::format
