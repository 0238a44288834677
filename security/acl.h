#pragma once
// Kafka's authorization model: ACL bindings (resource pattern + principal, host, operation,
// allow/deny), the filters DescribeAcls and DeleteAcls match them with, and the decision
// itself (`authorize`), with Kafka's rules: super users may do anything; a matching DENY wins
// over any ALLOW; READ, WRITE, DELETE and ALTER imply DESCRIBE, ALTER_CONFIGS implies
// DESCRIBE_CONFIGS; a resource no ACL names at all is open to everyone only when
// allow.everyone.if.no.acl.found is set.
//
// The numeric codes are the wire values of the Acl APIs.
//
// Threading: plain values. An `acl_set` is immutable once published (security/store.h).

#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace sluice::security {

enum class resource_type : int8_t {
    unknown = 0, any = 1, topic = 2, group = 3, cluster = 4, transactional_id = 5,
    delegation_token = 6, user = 7,
};
enum class pattern_type : int8_t { unknown = 0, any = 1, match = 2, literal = 3, prefixed = 4 };
enum class acl_operation : int8_t {
    unknown = 0, any = 1, all = 2, read = 3, write = 4, create = 5, remove = 6, alter = 7,
    describe = 8, cluster_action = 9, describe_configs = 10, alter_configs = 11,
    idempotent_write = 12, create_tokens = 13, describe_tokens = 14,
};
enum class acl_permission : int8_t { unknown = 0, any = 1, deny = 2, allow = 3 };

// Names as Kafka's tools print and take them ("Topic", "Read", "Allow", "Prefixed"), matched
// case-insensitively (also "TRANSACTIONAL_ID", "transactional-id").
const char* to_string(resource_type t);
const char* to_string(pattern_type t);
const char* to_string(acl_operation o);
const char* to_string(acl_permission p);
std::optional<resource_type> parse_resource_type(std::string_view s);
std::optional<pattern_type> parse_pattern_type(std::string_view s);
std::optional<acl_operation> parse_operation(std::string_view s);
std::optional<acl_permission> parse_permission(std::string_view s);

inline constexpr const char* cluster_resource_name = "kafka-cluster";
inline constexpr const char* wildcard = "*";

struct acl_binding {
    resource_type type = resource_type::topic;
    std::string name;
    pattern_type pattern = pattern_type::literal;
    std::string principal;  // "User:alice", "User:*"
    std::string host = "*";
    acl_operation operation = acl_operation::all;
    acl_permission permission = acl_permission::allow;
    auto operator<=>(const acl_binding&) const = default;
};

// A binding that can be stored: concrete type, pattern, operation and permission; a principal
// of the form Type:name; a wildcard or prefixed name only where Kafka allows it. The reason
// otherwise (for CreateAcls' error message).
std::optional<std::string> invalid_binding(const acl_binding& b);

// DescribeAcls / DeleteAcls filters: `any` matches everything; a null name, principal or host
// matches any; pattern `match` matches literal bindings of the name, the wildcard, and prefixed
// bindings the name starts with.
struct acl_filter {
    resource_type type = resource_type::any;
    std::optional<std::string> name;
    pattern_type pattern = pattern_type::any;
    std::optional<std::string> principal;
    std::optional<std::string> host;
    acl_operation operation = acl_operation::any;
    acl_permission permission = acl_permission::any;
};
bool matches(const acl_filter& f, const acl_binding& b);

using acl_set = std::set<acl_binding>;

struct authorizer_config {
    bool enabled = false;  // authorizer.class.name set: off means everything is allowed
    std::set<std::string> super_users;  // super.users: "User:admin;User:bob"
    bool allow_if_no_acl = false;       // allow.everyone.if.no.acl.found
};

// The decision for one action on one resource.
bool authorize(const authorizer_config& cfg, const acl_set& acls, const std::string& principal,
               const std::string& host, acl_operation op, resource_type type,
               const std::string& name);

}  // namespace sluice::security
