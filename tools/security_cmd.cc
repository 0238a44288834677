// `sluice user`, `sluice acl`, `sluice quota`: SCRAM credentials (AlterUserScramCredentials /
// DescribeUserScramCredentials), ACL bindings (CreateAcls / DescribeAcls / DeleteAcls) and
// client quotas (AlterClientQuotas / DescribeClientQuotas), the jobs of Kafka's
// kafka-configs.sh and kafka-acls.sh. They talk to any broker; the change reaches every broker
// of a cluster through its shared metadata.

#include <cstdio>
#include <openssl/rand.h>

#include "security/acl.h"
#include "security/sasl.h"
#include "tools/commands.h"

namespace sluice::tools {

namespace sec = sluice::security;

namespace {

// ---------------------------------------------------------------------------------------------
// user

void user_usage() {
    std::fprintf(stderr,
                 "usage: sluice user add NAME --password PW [--mechanism SCRAM-SHA-512|SCRAM-SHA-256]\n"
                 "                           [--iterations N]\n"
                 "  Stores a salted SCRAM credential for NAME (the password itself is never sent\n"
                 "  or stored: the tool salts and hashes it).\n"
                 "       sluice user list [NAME...]\n"
                 "       sluice user delete NAME [--mechanism M]   (every mechanism by default)\n"
                 "  Connection: --bootstrap-server, --command-config FILE (Kafka client\n"
                 "  properties), or --sasl-mechanism/--sasl-username/--sasl-password.\n");
}

int print_alter_results(const char* what, const protocol::alter_user_scram_credentials_response& r) {
    int rc = exit_ok;
    for (const auto& res : r.results) {
        if (res.error_code != 0) {
            std::fprintf(stderr, "sluice %s: %s: %s%s%s\n", what, res.user.c_str(),
                         kafka_error_name(res.error_code).c_str(), res.error_message ? ": " : "",
                         res.error_message.value_or("").c_str());
            rc = exit_failed;
        } else {
            std::printf("%s: ok\n", res.user.c_str());
        }
    }
    return rc;
}

int user_add(connection& c, const args& a, const std::string& name) {
    auto pw = a.get("password");
    if (!pw) return report("user add", error(errc::bad_argument, "--password is required"));
    auto mech = sec::parse_mechanism(a.get_or("mechanism", "SCRAM-SHA-512"));
    if (!mech) return report("user add", error(errc::bad_argument, "--mechanism: SCRAM-SHA-256 or SCRAM-SHA-512"));
    auto iterations = a.integer("iterations", 8192, sec::scram_min_iterations, sec::scram_max_iterations);
    if (!iterations) return report("user add", iterations.error());
    std::vector<uint8_t> salt(32);
    RAND_bytes(salt.data(), static_cast<int>(salt.size()));
    auto salted = sec::scram_salted_password(*mech, *pw, salt, static_cast<int32_t>(*iterations));
    protocol::alter_user_scram_credentials_request req;
    auto& u = req.upsertions.emplace_back();
    u.name = name;
    u.mechanism = sec::mechanism_code(*mech);
    u.iterations = static_cast<int32_t>(*iterations);
    u.salt.assign(reinterpret_cast<const std::byte*>(salt.data()), reinterpret_cast<const std::byte*>(salt.data()) + salt.size());
    u.salted_password.assign(reinterpret_cast<const std::byte*>(salted.data()),
                             reinterpret_cast<const std::byte*>(salted.data()) + salted.size());
    auto r = c.call<protocol::alter_user_scram_credentials_api>(req);
    if (!r) return report("user add", r.error());
    return print_alter_results("user add", *r);
}

int user_list(connection& c, const std::vector<std::string>& names) {
    protocol::describe_user_scram_credentials_request req;
    if (!names.empty()) {
        req.users.emplace();
        for (const auto& n : names) req.users->push_back({n, {}});
    }
    auto r = c.call<protocol::describe_user_scram_credentials_api>(req);
    if (!r) return report("user list", r.error());
    if (r->error_code != 0) return report("user list", kafka_failure(r->error_code, r->error_message.value_or("")));
    int rc = exit_ok;
    for (const auto& res : r->results) {
        if (res.error_code != 0) {
            std::fprintf(stderr, "sluice user list: %s: %s\n", res.user.c_str(), kafka_error_name(res.error_code).c_str());
            rc = exit_failed;
            continue;
        }
        std::printf("%s", res.user.c_str());
        for (const auto& ci : res.credential_infos) {
            auto m = sec::mechanism_from_code(ci.mechanism);
            std::printf(" %s(iterations=%d)", m ? sec::mechanism_name(*m) : "UNKNOWN", ci.iterations);
        }
        std::printf("\n");
    }
    return rc;
}

int user_delete(connection& c, const args& a, const std::string& name) {
    protocol::alter_user_scram_credentials_request req;
    std::vector<sec::scram_mechanism> mechs;
    if (a.has("mechanism")) {
        auto m = sec::parse_mechanism(a.get_or("mechanism", ""));
        if (!m) return report("user delete", error(errc::bad_argument, "--mechanism: SCRAM-SHA-256 or SCRAM-SHA-512"));
        mechs.push_back(*m);
    } else {
        // Every mechanism the user has.
        protocol::describe_user_scram_credentials_request d;
        d.users.emplace();
        d.users->push_back({name, {}});
        auto r = c.call<protocol::describe_user_scram_credentials_api>(d);
        if (!r) return report("user delete", r.error());
        for (const auto& res : r->results) {
            if (res.error_code != 0) return report("user delete", kafka_failure(res.error_code, name));
            for (const auto& ci : res.credential_infos) {
                if (auto m = sec::mechanism_from_code(ci.mechanism)) mechs.push_back(*m);
            }
        }
    }
    for (auto m : mechs) req.deletions.push_back({name, sec::mechanism_code(m), {}});
    auto r = c.call<protocol::alter_user_scram_credentials_api>(req);
    if (!r) return report("user delete", r.error());
    return print_alter_results("user delete", *r);
}

// ---------------------------------------------------------------------------------------------
// acl

void acl_usage() {
    std::fprintf(stderr,
                 "usage: sluice acl add (--allow-principal P | --deny-principal P) --operation OP...\n"
                 "                      RESOURCE [--resource-pattern-type literal|prefixed] [--host H]\n"
                 "       sluice acl list [RESOURCE] [--principal P] [--resource-pattern-type T]\n"
                 "       sluice acl remove [RESOURCE] [--principal P] [--operation OP]\n"
                 "                         [--resource-pattern-type T] [--host H]\n"
                 "  RESOURCE: --topic NAME | --group NAME | --cluster | --transactional-id NAME\n"
                 "  (NAME may be * for every resource of the type). OP: Read, Write, Create,\n"
                 "  Delete, Alter, Describe, ClusterAction, DescribeConfigs, AlterConfigs,\n"
                 "  IdempotentWrite, All. P: User:name.\n");
}

struct resource_arg {
    sec::resource_type type = sec::resource_type::any;
    std::optional<std::string> name;
};

result<resource_arg> resource_from(const args& a) {
    resource_arg r;
    int given = 0;
    auto take = [&](const char* opt, sec::resource_type t) {
        if (!a.has(opt)) return;
        ++given;
        r.type = t;
        r.name = a.get_or(opt, "");
    };
    take("topic", sec::resource_type::topic);
    take("group", sec::resource_type::group);
    take("transactional-id", sec::resource_type::transactional_id);
    if (a.has("cluster")) {
        ++given;
        r.type = sec::resource_type::cluster;
        r.name = sec::cluster_resource_name;
    }
    if (given > 1) return error(errc::bad_argument, "name one resource (--topic, --group, --cluster or --transactional-id)");
    return r;
}

result<sec::pattern_type> pattern_from(const args& a, sec::pattern_type fallback) {
    if (!a.has("resource-pattern-type")) return fallback;
    auto p = sec::parse_pattern_type(a.get_or("resource-pattern-type", ""));
    if (!p) return error(errc::bad_argument, "--resource-pattern-type: literal, prefixed, match or any");
    return *p;
}

result<std::vector<sec::acl_operation>> operations_from(const args& a, bool required) {
    std::vector<sec::acl_operation> ops;
    for (const auto& o : a.all("operation")) {
        auto op = sec::parse_operation(o);
        if (!op) return error(errc::bad_argument, "--operation: unknown operation '" + o + "'");
        ops.push_back(*op);
    }
    if (ops.empty() && required) return error(errc::bad_argument, "--operation is required");
    return ops;
}

int acl_add(connection& c, const args& a) {
    auto res = resource_from(a);
    if (!res) return report("acl add", res.error());
    if (res->type == sec::resource_type::any) return report("acl add", error(errc::bad_argument, "name a resource"));
    auto pattern = pattern_from(a, sec::pattern_type::literal);
    if (!pattern) return report("acl add", pattern.error());
    auto ops = operations_from(a, true);
    if (!ops) return report("acl add", ops.error());
    protocol::create_acls_request req;
    for (const auto& [opt, perm] : {std::pair{"allow-principal", sec::acl_permission::allow},
                                    std::pair{"deny-principal", sec::acl_permission::deny}}) {
        for (const auto& p : a.all(opt)) {
            for (auto op : *ops) {
                auto& cr = req.creations.emplace_back();
                cr.resource_type = static_cast<int8_t>(res->type);
                cr.resource_name = *res->name;
                cr.resource_pattern_type = static_cast<int8_t>(*pattern);
                cr.principal = p;
                cr.host = a.get_or("host", "*");
                cr.operation = static_cast<int8_t>(op);
                cr.permission_type = static_cast<int8_t>(perm);
            }
        }
    }
    if (req.creations.empty()) {
        return report("acl add", error(errc::bad_argument, "--allow-principal or --deny-principal is required"));
    }
    auto r = c.call<protocol::create_acls_api>(req);
    if (!r) return report("acl add", r.error());
    int rc = exit_ok;
    for (size_t i = 0; i < r->results.size() && i < req.creations.size(); ++i) {
        const auto& cr = req.creations[i];
        const auto& out = r->results[i];
        std::string line = std::string(sec::to_string(static_cast<sec::acl_permission>(cr.permission_type))) + " " +
                           cr.principal + " " + sec::to_string(static_cast<sec::acl_operation>(cr.operation)) +
                           " on " + sec::to_string(static_cast<sec::resource_type>(cr.resource_type)) + ":" +
                           sec::to_string(static_cast<sec::pattern_type>(cr.resource_pattern_type)) + ":" +
                           cr.resource_name;
        if (out.error_code != 0) {
            std::fprintf(stderr, "sluice acl add: %s: %s%s%s\n", line.c_str(), kafka_error_name(out.error_code).c_str(),
                         out.error_message ? ": " : "", out.error_message.value_or("").c_str());
            rc = exit_failed;
        } else {
            std::printf("added %s\n", line.c_str());
        }
    }
    return rc;
}

void print_binding(const char* prefix, int8_t type, const std::string& name, int8_t pattern,
                   const std::string& principal, const std::string& host, int8_t op, int8_t perm) {
    std::printf("%s%s:%s:%s %s %s %s from host %s\n", prefix, sec::to_string(static_cast<sec::resource_type>(type)),
                sec::to_string(static_cast<sec::pattern_type>(pattern)), name.c_str(),
                sec::to_string(static_cast<sec::acl_permission>(perm)), principal.c_str(),
                sec::to_string(static_cast<sec::acl_operation>(op)), host.c_str());
}

int acl_list(connection& c, const args& a) {
    auto res = resource_from(a);
    if (!res) return report("acl list", res.error());
    auto pattern = pattern_from(a, res->name ? sec::pattern_type::literal : sec::pattern_type::any);
    if (!pattern) return report("acl list", pattern.error());
    protocol::describe_acls_request req;
    req.resource_type_filter = static_cast<int8_t>(res->type);
    req.resource_name_filter = res->name;
    req.pattern_type_filter = static_cast<int8_t>(*pattern);
    req.principal_filter = a.get("principal");  // null: any (the generated default is "")
    req.host_filter = a.get("host");
    req.operation = static_cast<int8_t>(sec::acl_operation::any);
    req.permission_type = static_cast<int8_t>(sec::acl_permission::any);
    auto r = c.call<protocol::describe_acls_api>(req);
    if (!r) return report("acl list", r.error());
    if (r->error_code != 0) return report("acl list", kafka_failure(r->error_code, r->error_message.value_or("")));
    for (const auto& rs : r->resources) {
        for (const auto& acl : rs.acls) {
            print_binding("", rs.resource_type, rs.resource_name, rs.pattern_type, acl.principal, acl.host,
                          acl.operation, acl.permission_type);
        }
    }
    return exit_ok;
}

int acl_remove(connection& c, const args& a) {
    auto res = resource_from(a);
    if (!res) return report("acl remove", res.error());
    auto pattern = pattern_from(a, res->name ? sec::pattern_type::literal : sec::pattern_type::any);
    if (!pattern) return report("acl remove", pattern.error());
    auto ops = operations_from(a, false);
    if (!ops) return report("acl remove", ops.error());
    if (ops->empty()) ops->push_back(sec::acl_operation::any);
    std::vector<std::string> principals = a.all("principal");
    for (const char* opt : {"allow-principal", "deny-principal"}) {
        for (const auto& p : a.all(opt)) principals.push_back(p);
    }
    if (res->type == sec::resource_type::any && principals.empty()) {
        return report("acl remove", error(errc::bad_argument, "name a resource or a --principal (refusing to remove every ACL)"));
    }
    protocol::delete_acls_request req;
    auto add = [&](std::optional<std::string> principal, sec::acl_operation op) {
        auto& f = req.filters.emplace_back();
        f.resource_type_filter = static_cast<int8_t>(res->type);
        f.resource_name_filter = res->name;
        f.pattern_type_filter = static_cast<int8_t>(*pattern);
        f.principal_filter = std::move(principal);
        f.host_filter = a.get("host");
        f.operation = static_cast<int8_t>(op);
        f.permission_type = static_cast<int8_t>(sec::acl_permission::any);
    };
    for (auto op : *ops) {
        if (principals.empty()) add(std::nullopt, op);
        for (const auto& p : principals) add(p, op);
    }
    auto r = c.call<protocol::delete_acls_api>(req);
    if (!r) return report("acl remove", r.error());
    int rc = exit_ok;
    size_t removed = 0;
    for (const auto& fr : r->filter_results) {
        if (fr.error_code != 0) {
            std::fprintf(stderr, "sluice acl remove: %s%s%s\n", kafka_error_name(fr.error_code).c_str(),
                         fr.error_message ? ": " : "", fr.error_message.value_or("").c_str());
            rc = exit_failed;
        }
        for (const auto& m : fr.matching_acls) {
            print_binding("removed ", m.resource_type, m.resource_name, m.pattern_type, m.principal, m.host,
                          m.operation, m.permission_type);
            ++removed;
        }
    }
    if (rc == exit_ok && removed == 0) std::printf("no matching ACLs\n");
    return rc;
}

// ---------------------------------------------------------------------------------------------
// quota

void quota_usage() {
    std::fprintf(stderr,
                 "usage: sluice quota alter ENTITY (--add KEY=VALUE | --delete KEY)...\n"
                 "       sluice quota describe [ENTITY]\n"
                 "  ENTITY: --user NAME | --user-default, and/or --client ID | --client-default\n"
                 "  (ID: the client id the application connects with).\n"
                 "  KEY: producer_byte_rate, consumer_byte_rate (bytes per second).\n");
}

template <class Entity>
std::vector<Entity> entity_from(const args& a) {
    std::vector<Entity> out;
    if (a.has("user")) out.push_back({"user", a.get_or("user", ""), {}});
    if (a.has("user-default")) out.push_back({"user", std::nullopt, {}});
    if (a.has("client")) out.push_back({"client-id", a.get_or("client", ""), {}});
    if (a.has("client-default")) out.push_back({"client-id", std::nullopt, {}});
    return out;
}

int quota_alter(connection& c, const args& a) {
    protocol::alter_client_quotas_request req;
    auto& e = req.entries.emplace_back();
    e.entity = entity_from<protocol::alter_client_quotas_request::entity_data>(a);
    if (e.entity.empty()) return report("quota alter", error(errc::bad_argument, "name an entity (--user, --client-id, ...)"));
    for (const auto& kv : a.all("add")) {
        auto p = parse_key_value(kv);
        if (!p) return report("quota alter", p.error());
        char* end = nullptr;
        double v = std::strtod(p->second.c_str(), &end);
        if (end == p->second.c_str() || *end != 0) {
            return report("quota alter", error(errc::bad_argument, "--add " + kv + ": the value is not a number"));
        }
        e.ops.push_back({p->first, v, false, {}});
    }
    for (const auto& k : a.all("delete")) e.ops.push_back({k, 0, true, {}});
    if (e.ops.empty()) return report("quota alter", error(errc::bad_argument, "--add or --delete is required"));
    auto r = c.call<protocol::alter_client_quotas_api>(req);
    if (!r) return report("quota alter", r.error());
    for (const auto& out : r->entries) {
        if (out.error_code != 0) {
            return report("quota alter", kafka_failure(out.error_code, out.error_message.value_or("")));
        }
    }
    std::printf("ok\n");
    return exit_ok;
}

int quota_describe(connection& c, const args& a) {
    protocol::describe_client_quotas_request req;
    for (const auto& e : entity_from<protocol::alter_client_quotas_request::entity_data>(a)) {
        auto& comp = req.components.emplace_back();
        comp.entity_type = e.entity_type;
        comp.match_type = e.entity_name ? 0 : 1;
        comp.match = e.entity_name;
    }
    auto r = c.call<protocol::describe_client_quotas_api>(req);
    if (!r) return report("quota describe", r.error());
    if (r->error_code != 0) return report("quota describe", kafka_failure(r->error_code, r->error_message.value_or("")));
    for (const auto& entry : r->entries.value_or(std::vector<protocol::describe_client_quotas_response::entry_data>{})) {
        std::string who;
        for (const auto& e : entry.entity) {
            who += (who.empty() ? "" : ",") + e.entity_type + "=" + e.entity_name.value_or("<default>");
        }
        std::printf("%s", who.c_str());
        for (const auto& v : entry.values) std::printf(" %s=%.0f", v.key.c_str(), v.value);
        std::printf("\n");
    }
    return exit_ok;
}

template <class Run>
int run_with_connection(const char* what, const args& a, Run&& run) {
    auto opts = client_options_from(a);
    if (!opts) return report(what, opts.error());
    auto c = client::connect(*opts);
    if (!c) return report(what, c.error());
    return run((*c)->any());
}

}  // namespace

int user_main(int argc, char** argv) {
    auto specs = common_options();
    specs.insert(specs.end(), {{"password"}, {"mechanism"}, {"iterations"}});
    auto a = args::parse(argc, argv, specs);
    if (!a) {
        user_usage();
        return report("user", a.error());
    }
    const auto& pos = a->positional();
    bool ok = !pos.empty() && (((pos[0] == "add" || pos[0] == "delete") && pos.size() == 2) || pos[0] == "list");
    if (a->has("help") || !ok) {
        user_usage();
        return a->has("help") ? exit_ok : exit_usage;
    }
    return run_with_connection("user", *a, [&](connection& c) {
        if (pos[0] == "add") return user_add(c, *a, pos[1]);
        if (pos[0] == "delete") return user_delete(c, *a, pos[1]);
        return user_list(c, std::vector<std::string>(pos.begin() + 1, pos.end()));
    });
}

int acl_main(int argc, char** argv) {
    auto specs = common_options();
    specs.insert(specs.end(), {{"allow-principal", true, true}, {"deny-principal", true, true},
                               {"principal", true, true}, {"operation", true, true}, {"topic"},
                               {"group"}, {"transactional-id"}, {"cluster", false},
                               {"resource-pattern-type"}, {"host"}});
    auto a = args::parse(argc, argv, specs);
    if (!a) {
        acl_usage();
        return report("acl", a.error());
    }
    const auto& pos = a->positional();
    bool ok = pos.size() == 1 && (pos[0] == "add" || pos[0] == "list" || pos[0] == "remove");
    if (a->has("help") || !ok) {
        acl_usage();
        return a->has("help") ? exit_ok : exit_usage;
    }
    return run_with_connection("acl", *a, [&](connection& c) {
        if (pos[0] == "add") return acl_add(c, *a);
        if (pos[0] == "list") return acl_list(c, *a);
        return acl_remove(c, *a);
    });
}

int quota_main(int argc, char** argv) {
    auto specs = common_options();
    specs.insert(specs.end(), {{"user"}, {"user-default", false}, {"client"}, {"client-default", false},
                               {"add", true, true}, {"delete", true, true}});
    auto a = args::parse(argc, argv, specs);
    if (!a) {
        quota_usage();
        return report("quota", a.error());
    }
    const auto& pos = a->positional();
    bool ok = pos.size() == 1 && (pos[0] == "alter" || pos[0] == "describe");
    if (a->has("help") || !ok) {
        quota_usage();
        return a->has("help") ? exit_ok : exit_usage;
    }
    return run_with_connection("quota", *a, [&](connection& c) {
        return pos[0] == "alter" ? quota_alter(c, *a) : quota_describe(c, *a);
    });
}

}  // namespace sluice::tools
