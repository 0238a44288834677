#include "security/acl.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <utility>

namespace sluice::security {

namespace {

template <class E, size_t N>
std::optional<E> parse_named(std::string_view s, const std::array<std::pair<E, const char*>, N>& names) {
    std::string norm;
    for (char c : s) {
        if (c == '_' || c == '-') continue;
        norm += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    }
    for (const auto& [e, n] : names) {
        std::string want;
        for (const char* p = n; *p; ++p) {
            if (*p != '_' && *p != '-') want += static_cast<char>(std::tolower(static_cast<unsigned char>(*p)));
        }
        if (want == norm) return e;
    }
    return std::nullopt;
}

template <class E, size_t N>
const char* name_of(E e, const std::array<std::pair<E, const char*>, N>& names) {
    for (const auto& [v, n] : names) {
        if (v == e) return n;
    }
    return "Unknown";
}

constexpr std::array<std::pair<resource_type, const char*>, 8> resource_names{{
    {resource_type::unknown, "Unknown"}, {resource_type::any, "Any"},
    {resource_type::topic, "Topic"}, {resource_type::group, "Group"},
    {resource_type::cluster, "Cluster"}, {resource_type::transactional_id, "TransactionalId"},
    {resource_type::delegation_token, "DelegationToken"}, {resource_type::user, "User"},
}};
constexpr std::array<std::pair<pattern_type, const char*>, 5> pattern_names{{
    {pattern_type::unknown, "Unknown"}, {pattern_type::any, "Any"}, {pattern_type::match, "Match"},
    {pattern_type::literal, "Literal"}, {pattern_type::prefixed, "Prefixed"},
}};
constexpr std::array<std::pair<acl_operation, const char*>, 15> operation_names{{
    {acl_operation::unknown, "Unknown"}, {acl_operation::any, "Any"}, {acl_operation::all, "All"},
    {acl_operation::read, "Read"}, {acl_operation::write, "Write"}, {acl_operation::create, "Create"},
    {acl_operation::remove, "Delete"}, {acl_operation::alter, "Alter"},
    {acl_operation::describe, "Describe"}, {acl_operation::cluster_action, "ClusterAction"},
    {acl_operation::describe_configs, "DescribeConfigs"}, {acl_operation::alter_configs, "AlterConfigs"},
    {acl_operation::idempotent_write, "IdempotentWrite"}, {acl_operation::create_tokens, "CreateTokens"},
    {acl_operation::describe_tokens, "DescribeTokens"},
}};
constexpr std::array<std::pair<acl_permission, const char*>, 4> permission_names{{
    {acl_permission::unknown, "Unknown"}, {acl_permission::any, "Any"},
    {acl_permission::deny, "Deny"}, {acl_permission::allow, "Allow"},
}};

// Does a stored binding's resource pattern cover the resource `name`?
bool pattern_covers(const acl_binding& b, const std::string& name) {
    if (b.pattern == pattern_type::literal) return b.name == name || b.name == wildcard;
    if (b.pattern == pattern_type::prefixed) return name.compare(0, b.name.size(), b.name) == 0;
    return false;
}

// Does a stored binding's operation allow `op` (ALLOW), or forbid it (DENY)?
bool operation_covers(acl_operation stored, acl_operation op, acl_permission perm) {
    if (stored == acl_operation::all || stored == op) return true;
    if (perm != acl_permission::allow) return false;
    if (op == acl_operation::describe) {
        return stored == acl_operation::read || stored == acl_operation::write ||
               stored == acl_operation::remove || stored == acl_operation::alter;
    }
    if (op == acl_operation::describe_configs) return stored == acl_operation::alter_configs;
    return false;
}

}  // namespace

const char* to_string(resource_type t) { return name_of(t, resource_names); }
const char* to_string(pattern_type t) { return name_of(t, pattern_names); }
const char* to_string(acl_operation o) { return name_of(o, operation_names); }
const char* to_string(acl_permission p) { return name_of(p, permission_names); }
std::optional<resource_type> parse_resource_type(std::string_view s) { return parse_named(s, resource_names); }
std::optional<pattern_type> parse_pattern_type(std::string_view s) { return parse_named(s, pattern_names); }
std::optional<acl_operation> parse_operation(std::string_view s) { return parse_named(s, operation_names); }
std::optional<acl_permission> parse_permission(std::string_view s) { return parse_named(s, permission_names); }

std::optional<std::string> invalid_binding(const acl_binding& b) {
    if (b.type == resource_type::unknown || b.type == resource_type::any) return "resource type must be concrete";
    if (b.pattern != pattern_type::literal && b.pattern != pattern_type::prefixed) {
        return "pattern type must be LITERAL or PREFIXED";
    }
    if (b.operation == acl_operation::unknown || b.operation == acl_operation::any) return "operation must be concrete";
    if (b.permission != acl_permission::allow && b.permission != acl_permission::deny) {
        return "permission must be ALLOW or DENY";
    }
    if (b.name.empty()) return "resource name is empty";
    if (b.pattern == pattern_type::prefixed && b.name == wildcard) return "a PREFIXED pattern cannot be '*'";
    if (b.type == resource_type::cluster && b.name != cluster_resource_name) {
        return "the cluster resource is named kafka-cluster";
    }
    size_t colon = b.principal.find(':');
    if (colon == std::string::npos || colon == 0 || colon + 1 == b.principal.size()) {
        return "principal '" + b.principal + "' is not of the form Type:name (User:alice)";
    }
    if (b.host.empty()) return "host is empty (use * for any host)";
    return std::nullopt;
}

bool matches(const acl_filter& f, const acl_binding& b) {
    if (f.type != resource_type::any && f.type != b.type) return false;
    if (f.operation != acl_operation::any && f.operation != b.operation) return false;
    if (f.permission != acl_permission::any && f.permission != b.permission) return false;
    if (f.principal && *f.principal != b.principal) return false;
    if (f.host && *f.host != b.host) return false;
    switch (f.pattern) {
        case pattern_type::any:
            return !f.name || *f.name == b.name;
        case pattern_type::match:
            if (!f.name) return true;
            if (b.pattern == pattern_type::literal) return b.name == *f.name || b.name == wildcard;
            return b.pattern == pattern_type::prefixed && f.name->compare(0, b.name.size(), b.name) == 0;
        case pattern_type::literal:
        case pattern_type::prefixed:
            return b.pattern == f.pattern && (!f.name || *f.name == b.name);
        default:
            return false;
    }
}

bool authorize(const authorizer_config& cfg, const acl_set& acls, const std::string& principal,
               const std::string& host, acl_operation op, resource_type type, const std::string& name) {
    if (!cfg.enabled) return true;
    if (cfg.super_users.contains(principal)) return true;
    size_t colon = principal.find(':');
    std::string any_principal = (colon == std::string::npos ? std::string("User") : principal.substr(0, colon)) + ":*";
    bool any_acl = false;
    bool allowed = false;
    for (const acl_binding& b : acls) {
        if (b.type != type || !pattern_covers(b, name)) continue;
        any_acl = true;
        if (b.principal != principal && b.principal != any_principal) continue;
        if (b.host != wildcard && b.host != host) continue;
        if (!operation_covers(b.operation, op, b.permission)) continue;
        if (b.permission == acl_permission::deny) return false;
        allowed = true;
    }
    if (!any_acl) return cfg.allow_if_no_acl;
    return allowed;
}

}  // namespace sluice::security
