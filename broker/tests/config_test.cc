#include "broker/config.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>

using namespace sluice;
using namespace sluice::broker;

TEST(config, defaults_are_kafkas) {
    auto c = broker_config::load(std::nullopt, {});
    ASSERT_TRUE(c) << c.error().describe();
    EXPECT_EQ(c->broker_id(), 0);
    EXPECT_EQ(c->int_value("num.partitions"), 1);
    EXPECT_EQ(c->int_value("message.max.bytes"), 1048588);
    EXPECT_TRUE(c->bool_value("auto.create.topics.enable"));
    ASSERT_EQ(c->listeners().size(), 1u);
    EXPECT_EQ(c->listeners()[0].port, 9092);
    EXPECT_EQ(c->log_dirs(), std::vector<std::string>{"/tmp/sluice-logs"});
    auto t = c->topic_defaults();
    EXPECT_EQ(t["retention.ms"], "604800000");
    EXPECT_EQ(t["segment.bytes"], "1073741824");
    EXPECT_EQ(t["cleanup.policy"], "delete");
}

TEST(config, file_then_overrides) {
    std::string path = ::testing::TempDir() + "/server.properties";
    {
        std::ofstream f(path);
        f << "# comment\n\nbroker.id=7\nlog.dirs=/a,/b\nnum.partitions = 3\n"
             "log.retention.hours=1\nlisteners=PLAINTEXT://127.0.0.1:9093\n";
    }
    auto c = broker_config::load(path, {{"num.partitions", "5"}, {"log.retention.ms", "1000"}});
    ASSERT_TRUE(c) << c.error().describe();
    EXPECT_EQ(c->broker_id(), 7);
    EXPECT_EQ(c->int_value("num.partitions"), 5);
    EXPECT_EQ(c->log_dirs(), (std::vector<std::string>{"/a", "/b"}));
    EXPECT_EQ(c->listeners()[0].host, "127.0.0.1");
    EXPECT_EQ(c->listeners()[0].port, 9093);
    EXPECT_EQ(c->topic_defaults()["retention.ms"], "1000");
    EXPECT_FALSE(c->is_default("broker.id"));
    EXPECT_TRUE(c->is_default("delete.topic.enable"));
}

TEST(config, retention_hours_and_minutes) {
    auto c = broker_config::load(std::nullopt, {{"log.retention.hours", "2"}});
    ASSERT_TRUE(c);
    EXPECT_EQ(c->topic_defaults()["retention.ms"], "7200000");
    c = broker_config::load(std::nullopt, {{"log.retention.minutes", "3"}});
    EXPECT_EQ(c->topic_defaults()["retention.ms"], "180000");
}

TEST(config, unknown_key_named_in_error) {
    auto c = broker_config::load(std::nullopt, {{"log.retension.hours", "1"}});
    ASSERT_FALSE(c);
    EXPECT_TRUE(c.error().is(errc::unknown_config));
    EXPECT_NE(c.error().describe().find("log.retension.hours"), std::string::npos);
}

TEST(config, bad_values_named_in_error) {
    for (auto [k, v] : std::vector<std::pair<std::string, std::string>>{
             {"num.partitions", "zero"},
             {"num.partitions", "0"},
             {"auto.create.topics.enable", "yes"},
             {"log.segment.bytes", "99999999999"},
             {"compression.type", "brotli"},
             {"listeners", "127.0.0.1:9092"},
             {"listeners", "PLAINTEXT://:99999"},
             {"log.cleanup.policy", "delete,forever"}}) {
        auto c = broker_config::load(std::nullopt, {{k, v}});
        ASSERT_FALSE(c) << k << "=" << v;
        EXPECT_TRUE(c.error().is(errc::invalid_config)) << k;
        EXPECT_NE(c.error().describe().find(k), std::string::npos) << c.error().describe();
    }
}

TEST(config, bad_line_in_file_names_line) {
    std::string path = ::testing::TempDir() + "/bad.properties";
    {
        std::ofstream f(path);
        f << "broker.id=1\nthis line has no separator\n";
    }
    auto c = broker_config::load(path, {});
    ASSERT_FALSE(c);
    EXPECT_NE(c.error().describe().find(":2"), std::string::npos);
    EXPECT_FALSE(broker_config::load("/nonexistent/server.properties", {}));
}

TEST(config, topic_keys_validated) {
    EXPECT_TRUE(validate_topic_config("retention.ms", "1000"));
    EXPECT_TRUE(validate_topic_config("cleanup.policy", "compact,delete"));
    EXPECT_FALSE(validate_topic_config("retention.ms", "soon"));
    EXPECT_FALSE(validate_topic_config("no.such.key", "1"));
    EXPECT_TRUE(is_topic_config_key("segment.bytes"));
    EXPECT_FALSE(is_topic_config_key("broker.id"));
}

TEST(config, describe_configs_synonyms_follow_kafkas_precedence) {
    auto c = broker_config::load(std::nullopt, {{"log.retention.minutes", "30"},
                                                {"log.segment.bytes", "1048576"}});
    ASSERT_TRUE(c) << c.error().describe();
    auto text = [](const std::vector<broker_config::synonym>& syns) {
        std::string out;
        for (const auto& s : syns) {
            out += s.name + "=" + s.value.value_or("null") +
                   (s.is_static ? " static;" : " default;");
        }
        return out;
    };
    // Set explicitly first, then the default of the broker key that has one.
    EXPECT_EQ(text(c->topic_key_synonyms("retention.ms")),
              "log.retention.minutes=30 static;log.retention.hours=168 default;");
    EXPECT_EQ(text(c->topic_key_synonyms("segment.bytes")),
              "log.segment.bytes=1048576 static;log.segment.bytes=1073741824 default;");
    EXPECT_EQ(text(c->topic_key_synonyms("cleanup.policy")), "log.cleanup.policy=delete default;");
    // A topic key no broker key supplies: its own default.
    EXPECT_EQ(text(c->topic_key_synonyms("max.compaction.lag.ms")),
              "max.compaction.lag.ms=9223372036854775807 default;");
    EXPECT_EQ(text(c->broker_key_synonyms("log.segment.bytes")),
              "log.segment.bytes=1048576 static;log.segment.bytes=1073741824 default;");
    EXPECT_EQ(text(c->broker_key_synonyms("num.partitions")), "num.partitions=1 default;");
    EXPECT_TRUE(c->broker_key_synonyms("no.such.key").empty());
}
