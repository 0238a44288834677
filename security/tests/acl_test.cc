#include "security/acl.h"

#include <gtest/gtest.h>

namespace sluice::security {
namespace {

acl_binding allow(resource_type t, std::string name, std::string principal, acl_operation op,
                  pattern_type p = pattern_type::literal, std::string host = "*") {
    return {t, std::move(name), p, std::move(principal), std::move(host), op, acl_permission::allow};
}

const authorizer_config on{true, {"User:admin"}, false};

bool can(const acl_set& acls, const std::string& who, acl_operation op, resource_type t,
         const std::string& name, const std::string& host = "10.0.0.1",
         const authorizer_config& cfg = on) {
    return authorize(cfg, acls, who, host, op, t, name);
}

TEST(Authorize, OffAllowsEverythingSuperUsersAlways) {
    acl_set none;
    EXPECT_TRUE(authorize({}, none, "User:x", "h", acl_operation::write, resource_type::topic, "t"));
    EXPECT_TRUE(can(none, "User:admin", acl_operation::alter, resource_type::cluster, "kafka-cluster"));
    EXPECT_FALSE(can(none, "User:alice", acl_operation::read, resource_type::topic, "t"));
}

TEST(Authorize, NoAclFoundFollowsTheSetting) {
    acl_set acls{allow(resource_type::topic, "other", "User:bob", acl_operation::read)};
    authorizer_config open = on;
    open.allow_if_no_acl = true;
    EXPECT_TRUE(can(acls, "User:alice", acl_operation::write, resource_type::topic, "t", "h", open));
    // A resource that has ACLs is closed to everyone they do not name, whatever the setting.
    EXPECT_FALSE(can(acls, "User:alice", acl_operation::read, resource_type::topic, "other", "h", open));
    EXPECT_FALSE(can(acls, "User:alice", acl_operation::write, resource_type::topic, "t"));
}

TEST(Authorize, LiteralPrefixedAndWildcardPatterns) {
    acl_set acls{allow(resource_type::topic, "orders", "User:alice", acl_operation::write),
                 allow(resource_type::topic, "logs-", "User:alice", acl_operation::read, pattern_type::prefixed),
                 allow(resource_type::group, "*", "User:alice", acl_operation::read)};
    EXPECT_TRUE(can(acls, "User:alice", acl_operation::write, resource_type::topic, "orders"));
    EXPECT_FALSE(can(acls, "User:alice", acl_operation::write, resource_type::topic, "orders2"));
    EXPECT_TRUE(can(acls, "User:alice", acl_operation::read, resource_type::topic, "logs-app"));
    EXPECT_FALSE(can(acls, "User:alice", acl_operation::read, resource_type::topic, "log"));
    EXPECT_TRUE(can(acls, "User:alice", acl_operation::read, resource_type::group, "anything"));
    EXPECT_FALSE(can(acls, "User:bob", acl_operation::read, resource_type::group, "anything"));
    // The resource type must match: the group wildcard says nothing of topics.
    EXPECT_FALSE(can(acls, "User:alice", acl_operation::read, resource_type::topic, "anything"));
}

TEST(Authorize, DenyWinsAndImpliedDescribe) {
    acl_set acls{allow(resource_type::topic, "*", "User:*", acl_operation::all),
                 {resource_type::topic, "secret", pattern_type::literal, "User:eve", "*",
                  acl_operation::read, acl_permission::deny}};
    EXPECT_TRUE(can(acls, "User:eve", acl_operation::read, resource_type::topic, "public"));
    EXPECT_FALSE(can(acls, "User:eve", acl_operation::read, resource_type::topic, "secret"));
    EXPECT_TRUE(can(acls, "User:eve", acl_operation::write, resource_type::topic, "secret"));

    acl_set writer{allow(resource_type::topic, "t", "User:w", acl_operation::write),
                   allow(resource_type::topic, "t", "User:c", acl_operation::alter_configs)};
    EXPECT_TRUE(can(writer, "User:w", acl_operation::describe, resource_type::topic, "t"));
    EXPECT_FALSE(can(writer, "User:w", acl_operation::read, resource_type::topic, "t"));
    EXPECT_TRUE(can(writer, "User:c", acl_operation::describe_configs, resource_type::topic, "t"));
    EXPECT_FALSE(can(writer, "User:c", acl_operation::describe, resource_type::topic, "t"));
    // A DENY of READ does not deny DESCRIBE (implication works for ALLOW only).
    acl_set deny_read{allow(resource_type::topic, "t", "User:x", acl_operation::describe),
                      {resource_type::topic, "t", pattern_type::literal, "User:x", "*",
                       acl_operation::read, acl_permission::deny}};
    EXPECT_TRUE(can(deny_read, "User:x", acl_operation::describe, resource_type::topic, "t"));
}

TEST(Authorize, Hosts) {
    acl_set acls{allow(resource_type::topic, "t", "User:a", acl_operation::read, pattern_type::literal,
                       "127.0.0.1")};
    EXPECT_TRUE(can(acls, "User:a", acl_operation::read, resource_type::topic, "t", "127.0.0.1"));
    EXPECT_FALSE(can(acls, "User:a", acl_operation::read, resource_type::topic, "t", "10.1.1.1"));
}

TEST(Filters, MatchAnyAndExact) {
    acl_binding lit = allow(resource_type::topic, "orders", "User:a", acl_operation::read);
    acl_binding pre = allow(resource_type::topic, "ord", "User:a", acl_operation::read, pattern_type::prefixed);
    acl_binding star = allow(resource_type::topic, "*", "User:a", acl_operation::read);
    acl_filter all;
    EXPECT_TRUE(matches(all, lit) && matches(all, pre) && matches(all, star));
    acl_filter m;
    m.name = "orders";
    m.pattern = pattern_type::match;
    EXPECT_TRUE(matches(m, lit) && matches(m, pre) && matches(m, star));
    acl_filter exact;
    exact.name = "orders";
    exact.pattern = pattern_type::literal;
    EXPECT_TRUE(matches(exact, lit));
    EXPECT_FALSE(matches(exact, pre) || matches(exact, star));
    acl_filter by_principal;
    by_principal.principal = "User:b";
    EXPECT_FALSE(matches(by_principal, lit));
}

TEST(Bindings, Validation) {
    EXPECT_FALSE(invalid_binding(allow(resource_type::topic, "t", "User:a", acl_operation::read)));
    EXPECT_TRUE(invalid_binding(allow(resource_type::topic, "t", "alice", acl_operation::read)));
    EXPECT_TRUE(invalid_binding(allow(resource_type::any, "t", "User:a", acl_operation::read)));
    EXPECT_TRUE(invalid_binding(allow(resource_type::topic, "t", "User:a", acl_operation::any)));
    EXPECT_TRUE(invalid_binding(allow(resource_type::cluster, "c", "User:a", acl_operation::alter)));
    EXPECT_TRUE(invalid_binding(allow(resource_type::topic, "*", "User:a", acl_operation::read, pattern_type::prefixed)));
}

TEST(Names, ParseLikeKafkaTools) {
    EXPECT_EQ(parse_operation("Read"), acl_operation::read);
    EXPECT_EQ(parse_operation("DESCRIBE_CONFIGS"), acl_operation::describe_configs);
    EXPECT_EQ(parse_operation("IdempotentWrite"), acl_operation::idempotent_write);
    EXPECT_EQ(parse_resource_type("transactional-id"), resource_type::transactional_id);
    EXPECT_EQ(parse_pattern_type("PREFIXED"), pattern_type::prefixed);
    EXPECT_EQ(parse_permission("deny"), acl_permission::deny);
    EXPECT_FALSE(parse_operation("Fly"));
    EXPECT_STREQ(to_string(acl_operation::remove), "Delete");
}

}  // namespace
}  // namespace sluice::security
