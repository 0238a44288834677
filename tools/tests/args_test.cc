#include "tools/args.h"

#include <gtest/gtest.h>

#include "tools/kafka_client.h"

namespace sluice::tools {
namespace {

result<args> parse(std::vector<std::string> v, const std::vector<option_spec>& specs) {
    std::vector<char*> argv;
    for (auto& s : v) argv.push_back(s.data());
    return args::parse(static_cast<int>(argv.size()), argv.data(), specs);
}

const std::vector<option_spec> specs = {
    {"partitions"}, {"config", true, true}, {"print-key", false}};

TEST(args, values_flags_repeats_and_positionals) {
    auto a = parse(
        {"create", "t1", "--partitions", "3", "--config=a=1", "--config", "b=2", "--print-key"},
        specs);
    ASSERT_TRUE(a) << a.error().describe();
    EXPECT_EQ(a->positional(), (std::vector<std::string>{"create", "t1"}));
    EXPECT_EQ(*a->integer("partitions", 0), 3);
    EXPECT_EQ(a->all("config"), (std::vector<std::string>{"a=1", "b=2"}));
    EXPECT_TRUE(a->has("print-key"));
}

TEST(args, errors_name_the_option) {
    auto unknown = parse({"--nope"}, specs);
    ASSERT_FALSE(unknown);
    EXPECT_TRUE(unknown.error().is(errc::bad_argument));
    EXPECT_NE(unknown.error().detail().find("--nope"), std::string::npos);
    EXPECT_FALSE(parse({"--partitions"}, specs));
    EXPECT_FALSE(parse({"--print-key=yes"}, specs));
    auto range = parse({"--partitions", "0"}, specs);
    ASSERT_TRUE(range);
    EXPECT_FALSE(range->integer("partitions", 1, 1, 10));
}

TEST(args, scaled_numbers) {
    EXPECT_EQ(*parse_scaled("16KiB"), 16384);
    EXPECT_EQ(*parse_scaled("1MiB"), 1 << 20);
    EXPECT_EQ(*parse_scaled("2G"), int64_t{2} << 30);
    EXPECT_EQ(*parse_scaled("5k"), 5000);
    EXPECT_EQ(*parse_scaled("-1"), -1);
    EXPECT_FALSE(parse_scaled("12parsecs"));
    EXPECT_FALSE(parse_scaled(""));
}

TEST(args, key_values) {
    auto kv = parse_key_value("retention.ms=1000=x");
    ASSERT_TRUE(kv);
    EXPECT_EQ(kv->first, "retention.ms");
    EXPECT_EQ(kv->second, "1000=x");
    EXPECT_FALSE(parse_key_value("novalue"));
    EXPECT_FALSE(parse_key_value("=v"));
}

TEST(addresses, host_port_forms) {
    auto a = parse_host_port("broker1:9093");
    ASSERT_TRUE(a);
    EXPECT_EQ(a->host, "broker1");
    EXPECT_EQ(a->port, 9093);
    EXPECT_EQ(parse_host_port("localhost")->port, 9092);
    EXPECT_EQ(parse_host_port("[::1]:19092")->host, "::1");
    EXPECT_FALSE(parse_host_port("h:0"));
    EXPECT_FALSE(parse_host_port("h:99999"));
    auto list = parse_bootstrap("a:1,b:2");
    ASSERT_TRUE(list);
    EXPECT_EQ(list->size(), 2u);
}

TEST(partitioner, matches_kafka_murmur2) {
    // Values from Kafka's UtilsTest.testMurmur2.
    auto m = [](std::string_view s) {
        return murmur2(std::as_bytes(std::span(s.data(), s.size())));
    };
    EXPECT_EQ(m("21"), -973932308);
    EXPECT_EQ(m("foobar"), -790332482);
    EXPECT_EQ(m("a-little-bit-long-string"), -985981536);
    EXPECT_EQ(m("a-little-bit-longer-string"), -1486304829);
    EXPECT_EQ(m("lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8"), -58897971);
    EXPECT_EQ(m(std::string_view("abc", 3)), 479470107);
}

TEST(args, acks_and_compression_parse_as_producers_spell_them) {
    EXPECT_EQ(*parse_acks("all"), -1);
    EXPECT_EQ(*parse_acks("-1"), -1);
    EXPECT_EQ(*parse_acks("0"), 0);
    EXPECT_EQ(*parse_acks("1"), 1);
    EXPECT_FALSE(parse_acks("2"));
    EXPECT_FALSE(parse_acks(""));
    EXPECT_EQ(*parse_compression("none"), model::compression::none);
    EXPECT_EQ(*parse_compression("zstd"), model::compression::zstd);
    EXPECT_EQ(*parse_compression("snappy"), model::compression::snappy);
    auto bad = parse_compression("brotli");
    ASSERT_FALSE(bad);
    EXPECT_NE(bad.error().describe().find("brotli"), std::string::npos);
}


}  // namespace
}  // namespace sluice::tools
