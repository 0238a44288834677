#include "security/store.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

namespace sluice::security {
namespace {

security_state sample() {
    security_state s;
    s.scram["alice"][scram_mechanism::sha512] =
        make_scram_credential(scram_mechanism::sha512, "the-secret-pw", 4096);
    s.scram["a b%c"][scram_mechanism::sha256] =
        make_scram_credential(scram_mechanism::sha256, "the-secret-pw", 8192);
    s.acls.insert({resource_type::topic, "orders", pattern_type::prefixed, "User:CN=x, O=y", "*",
                   acl_operation::write, acl_permission::allow});
    s.acls.insert({resource_type::cluster, "kafka-cluster", pattern_type::literal, "User:*", "10.0.0.1",
                   acl_operation::describe, acl_permission::deny});
    s.quotas[{true, "alice", false, std::nullopt}][producer_byte_rate] = 1048576;
    s.quotas[{true, std::nullopt, true, "app"}][consumer_byte_rate] = 2.5;
    s.broker_configs[""]["log.retention.ms"] = "3600000";
    s.broker_configs["2"]["log.cleanup.policy"] = "compact,delete";
    return s;
}

TEST(SecurityState, EncodeDecodeRoundTrip) {
    security_state s = sample();
    std::string text = encode_state(s);
    // No password in the file ('-' never appears in base64, so this cannot match by chance).
    EXPECT_EQ(text.find("the-secret-pw"), std::string::npos);
    auto back = decode_state(text);
    ASSERT_TRUE(back) << back.error().describe();
    EXPECT_EQ(back->scram, s.scram);
    EXPECT_EQ(back->acls, s.acls);
    EXPECT_EQ(back->quotas, s.quotas);
    EXPECT_EQ(back->broker_configs, s.broker_configs);
}

TEST(SecurityState, CorruptTextIsAnError) {
    EXPECT_TRUE(decode_state(""));  // nothing stored yet
    EXPECT_FALSE(decode_state("something else\n"));
    std::string text = encode_state(sample());
    EXPECT_FALSE(decode_state(text + "acl Topic Literal t User:a * Fly Allow\n"));
    EXPECT_FALSE(decode_state(text + "scram alice SCRAM-SHA-1 4096 AA== AA== AA==\n"));
    EXPECT_FALSE(decode_state(text + "quota - - producer_byte_rate 5\n"));
    EXPECT_FALSE(decode_state(text + "acl Topic Literal %G1 User:a * Read Allow\n"));
}

TEST(SecurityState, QuotaPrecedence) {
    security_state s;
    using opt = std::optional<std::string>;
    s.quotas[{false, opt(), true, opt()}][producer_byte_rate] = 1;       // default client
    s.quotas[{false, opt(), true, opt("app")}][producer_byte_rate] = 2;  // client app
    s.quotas[{true, opt(), false, opt()}][producer_byte_rate] = 3;       // default user
    s.quotas[{true, opt("alice"), false, opt()}][producer_byte_rate] = 4;
    s.quotas[{true, opt("alice"), true, opt("app")}][producer_byte_rate] = 5;
    EXPECT_EQ(s.quota_for("alice", "app", producer_byte_rate), 5);
    EXPECT_EQ(s.quota_for("alice", "other", producer_byte_rate), 4);
    EXPECT_EQ(s.quota_for("bob", "app", producer_byte_rate), 3);
    EXPECT_EQ(s.quota_for("bob", "app", consumer_byte_rate), std::nullopt);
    s.quotas.erase({true, opt(), false, opt()});
    EXPECT_EQ(s.quota_for("bob", "app", producer_byte_rate), 2);
    EXPECT_EQ(s.quota_for("bob", "x", producer_byte_rate), 1);
}

TEST(SecurityStore, PersistsAndRefusedChangesWriteNothing) {
    auto dir = std::filesystem::temp_directory_path() / ("sluice-sec-" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir);
    std::string path = (dir / "sluice-security").string();
    {
        auto st = security_store::open(file_backend(path));
        ASSERT_TRUE(st);
        ASSERT_TRUE((*st)->update([](security_state& s) {
            s = sample();
            return ok();
        }));
        auto refused = (*st)->update([](security_state& s) -> result<void> {
            s.acls.clear();
            return error(errc::invalid_request, "no");
        });
        EXPECT_FALSE(refused);
        EXPECT_EQ((*st)->snapshot()->acls.size(), 2u);
    }
    auto again = security_store::open(file_backend(path));
    ASSERT_TRUE(again);
    EXPECT_EQ((*again)->snapshot()->acls, sample().acls);
    EXPECT_EQ((*again)->snapshot()->scram.size(), 2u);
    std::ofstream(path) << "garbage";
    EXPECT_FALSE(security_store::open(file_backend(path)));
    std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace sluice::security
