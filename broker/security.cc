#include "broker/security.h"

#include <algorithm>
#include <cctype>
#include <sstream>

#include "base/log.h"
#include "broker/handlers.h"
#include "broker/kafka_error.h"
#include "broker/metrics.h"
#include "broker/server.h"
#include "broker/shard.h"
#include "net/tls.h"
#include "security/sasl.h"
#include "security/store.h"

namespace sluice::broker {

namespace sec = sluice::security;

const char* to_string(security_protocol p) {
    switch (p) {
        case security_protocol::plaintext: return "PLAINTEXT";
        case security_protocol::ssl: return "SSL";
        case security_protocol::sasl_plaintext: return "SASL_PLAINTEXT";
        case security_protocol::sasl_ssl: return "SASL_SSL";
    }
    return "PLAINTEXT";
}

namespace {

std::string trim(std::string s) {
    s.erase(0, s.find_first_not_of(" \t"));
    s.erase(s.find_last_not_of(" \t") + 1);
    return s;
}

std::vector<std::string> split(const std::string& s, char sep) {
    std::vector<std::string> out;
    std::stringstream ss(s);
    std::string item;
    while (std::getline(ss, item, sep)) {
        item = trim(item);
        if (!item.empty()) out.push_back(item);
    }
    return out;
}

std::string lower(std::string s) {
    for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return s;
}

std::optional<security_protocol> parse_protocol(const std::string& s) {
    if (s == "PLAINTEXT") return security_protocol::plaintext;
    if (s == "SSL") return security_protocol::ssl;
    if (s == "SASL_PLAINTEXT") return security_protocol::sasl_plaintext;
    if (s == "SASL_SSL") return security_protocol::sasl_ssl;
    return std::nullopt;
}

// A listener's value of `key`: listener.name.<name>.<key> first, then <key>.
std::optional<std::string> listener_value(const broker_config& cfg, const std::string& listener,
                                          const std::string& key) {
    std::string prefixed = "listener.name." + lower(listener) + "." + key;
    if (!cfg.is_default(prefixed)) {
        if (auto v = cfg.get(prefixed)) return v;
    }
    auto v = cfg.get(key);
    if (v && v->empty()) return std::nullopt;
    return v;
}

result<net::tls_options> tls_options_for(const broker_config& cfg, const std::string& l) {
    auto get = [&](const char* key) { return listener_value(cfg, l, key).value_or(""); };
    net::tls_options o;
    std::string ks_type = get("ssl.keystore.type");
    std::string ks = get("ssl.keystore.location");
    if (ks_type == "JKS" && !ks.empty()) {
        return error(errc::invalid_config,
                     "ssl.keystore.type=JKS: Sluice reads PEM or PKCS12 keystores (convert with "
                     "keytool -importkeystore -deststoretype PKCS12)");
    }
    if (ks_type == "PKCS12" && !ks.empty()) {
        o.pkcs12_file = ks;
        o.pkcs12_password = get("ssl.keystore.password");
    } else if (!ks.empty()) {
        o.certificate_file = ks;  // a PEM keystore holds the key and the chain
    }
    if (auto c = get("ssl.certificate.location"); !c.empty()) o.certificate_file = c;
    o.key_file = get("ssl.key.location");
    o.key_password = get("ssl.key.password");
    o.certificate_pem = get("ssl.keystore.certificate.chain");
    o.key_pem = get("ssl.keystore.key");
    std::string ts_type = get("ssl.truststore.type");
    if (auto ts = get("ssl.truststore.location"); !ts.empty()) {
        if (ts_type != "PEM") {
            return error(errc::invalid_config,
                         "ssl.truststore.type=" + ts_type + ": Sluice reads PEM truststores");
        }
        o.ca_file = ts;
    }
    if (auto ca = get("ssl.ca.location"); !ca.empty()) o.ca_file = ca;
    o.ca_pem = get("ssl.truststore.certificates");
    std::string auth = get("ssl.client.auth");
    o.auth = auth == "required"    ? net::client_auth::required
             : auth == "requested" ? net::client_auth::requested
                                   : net::client_auth::none;
    if (auto p = get("ssl.enabled.protocols"); !p.empty()) o.enabled_protocols = p;
    o.cipher_list = get("ssl.cipher.suites");
    return o;
}

// PLAIN's users: the JAAS entry for this listener (listener.name.<l>.plain.sasl.jaas.config,
// then listener.name.<l>.sasl.jaas.config, then sasl.jaas.config).
result<std::map<std::string, std::string>> plain_users_for(const broker_config& cfg, const std::string& l) {
    std::optional<std::string> text;
    std::string key = "listener.name." + lower(l) + ".plain.sasl.jaas.config";
    if (!cfg.is_default(key)) text = cfg.get(key);
    if (!text) text = listener_value(cfg, l, "sasl.jaas.config");
    if (!text || text->empty()) return std::map<std::string, std::string>{};
    auto j = sec::parse_jaas(*text);
    if (!j) return error(errc::invalid_config, "sasl.jaas.config of listener " + l + ": " + j.error().detail());
    return j->users;
}

}  // namespace

result<std::vector<listener_security>> make_listener_security(const broker_config& cfg) {
    std::map<std::string, security_protocol> map;
    for (const auto& item : split(cfg.string_value("listener.security.protocol.map"), ',')) {
        auto colon = item.find(':');
        auto p = colon == std::string::npos ? std::nullopt : parse_protocol(trim(item.substr(colon + 1)));
        if (!p) {
            return error(errc::invalid_config,
                         "listener.security.protocol.map: '" + item + "' is not NAME:PROTOCOL");
        }
        map[trim(item.substr(0, colon))] = *p;
    }
    std::vector<listener_security> out;
    for (const auto& l : cfg.listeners()) {
        listener_security s;
        s.name = l.name;
        auto it = map.find(l.name);
        if (it == map.end()) {
            return error(errc::invalid_config, "listener " + l.name +
                                                   " has no security protocol in listener.security.protocol.map");
        }
        s.protocol = it->second;
        if (s.uses_tls()) {
            auto o = tls_options_for(cfg, l.name);
            if (!o) return o.error();
            auto ctx = net::tls_context::create_server(*o);
            if (!ctx) return error(errc::invalid_config, "listener " + l.name + ": " + ctx.error().describe());
            s.tls = std::move(*ctx);
        }
        if (s.uses_sasl()) {
            s.mechanisms = split(listener_value(cfg, l.name, "sasl.enabled.mechanisms").value_or(""), ',');
            auto users = plain_users_for(cfg, l.name);
            if (!users) return users.error();
            s.plain_users = std::move(*users);
            if (std::find(s.mechanisms.begin(), s.mechanisms.end(), "PLAIN") != s.mechanisms.end() &&
                s.plain_users.empty()) {
                log::warn("security", "listener ", l.name,
                          " offers SASL PLAIN but no JAAS entry names users (user_<name>=\"...\"): "
                          "every PLAIN login will fail");
            }
            auto reauth = listener_value(cfg, l.name, "connections.max.reauth.ms");
            s.reauth_ms = reauth ? std::stoll(*reauth) : 0;
        }
        out.push_back(std::move(s));
    }
    return out;
}

tools::connection_options inter_broker_auth::client_options() const {
    tools::connection_options o;
    o.sasl_mechanism = mechanism;
    o.sasl_username = username;
    o.sasl_password = password;
    o.tls = tls;
    o.tls_ca_file = ca_file;
    o.tls_certificate_file = certificate_file;
    o.tls_key_file = key_file;
    o.tls_verify_hostname = verify_hostname;
    return o;
}

result<inter_broker_auth> make_inter_broker_auth(const broker_config& cfg,
                                                 const std::vector<listener_security>& listeners) {
    inter_broker_auth a;
    std::string name = cfg.string_value("inter.broker.listener.name");
    const listener_security* l = listeners.empty() ? nullptr : &listeners.front();
    if (!name.empty()) {
        l = nullptr;
        for (const auto& x : listeners) {
            if (x.name == name) l = &x;
        }
        if (l == nullptr) {
            return error(errc::invalid_config, "inter.broker.listener.name " + name + " is not in listeners");
        }
    }
    if (l == nullptr) return a;
    a.listener = l->name;
    if (l->uses_tls()) {
        auto get = [&](const char* key) { return listener_value(cfg, l->name, key).value_or(""); };
        a.tls = true;
        a.ca_file = !get("ssl.ca.location").empty() ? get("ssl.ca.location") : get("ssl.truststore.location");
        a.certificate_file = !get("ssl.certificate.location").empty() ? get("ssl.certificate.location")
                                                                       : get("ssl.keystore.location");
        a.key_file = get("ssl.key.location");
        a.verify_hostname = !get("ssl.endpoint.identification.algorithm").empty();
        if (get("ssl.keystore.type") == "PKCS12" && get("ssl.certificate.location").empty()) {
            return error(errc::invalid_config, "the inter-broker listener " + l->name +
                                                   " uses TLS: brokers present a PEM certificate to each other "
                                                   "(set ssl.certificate.location and ssl.key.location)");
        }
    }
    if (!l->uses_sasl()) return a;
    a.mechanism = cfg.string_value("sasl.mechanism.inter.broker.protocol");
    std::string key = "listener.name." + lower(l->name) + "." + lower(a.mechanism) + ".sasl.jaas.config";
    std::optional<std::string> text;
    if (!cfg.is_default(key)) text = cfg.get(key);
    if (!text) text = listener_value(cfg, l->name, "sasl.jaas.config");
    auto j = text ? sec::parse_jaas(*text) : result<sec::jaas_config>(error(errc::invalid_config, "missing"));
    if (!j || !j->options.contains("username")) {
        return error(errc::invalid_config, "the inter-broker listener " + l->name +
                                               " uses SASL: its JAAS entry needs username= and password=");
    }
    a.username = j->options["username"];
    a.password = j->options.contains("password") ? j->options["password"] : "";
    return a;
}

result<sec::authorizer_config> make_authorizer_config(const broker_config& cfg) {
    sec::authorizer_config a;
    a.enabled = !cfg.string_value("authorizer.class.name").empty();
    a.allow_if_no_acl = cfg.bool_value("allow.everyone.if.no.acl.found");
    for (const auto& u : split(cfg.string_value("super.users"), ';')) {
        if (u.find(':') == std::string::npos) {
            return error(errc::invalid_config, "super.users: '" + u + "' is not of the form User:name");
        }
        a.super_users.insert(u);
    }
    return a;
}

bool allowed(const request_context& ctx, sec::acl_operation op, sec::resource_type type,
             const std::string& name) {
    const sec::authorizer_config& cfg = ctx.srv.authorizer();
    if (!cfg.enabled) return true;
    auto state = ctx.srv.security().snapshot();
    bool ok = sec::authorize(cfg, state->acls, ctx.principal, ctx.host(), op, type, name);
    if (!ok) {
        log::info("security", "denied ", ctx.principal, " from ", ctx.host(), ": ", sec::to_string(op),
                  " on ", sec::to_string(type), " ", name);
    }
    return ok;
}

bool allowed_on_cluster(const request_context& ctx, sec::acl_operation op) {
    return allowed(ctx, op, sec::resource_type::cluster, sec::cluster_resource_name);
}

bool allowed_on_any(const request_context& ctx, sec::acl_operation op, sec::resource_type type) {
    const sec::authorizer_config& cfg = ctx.srv.authorizer();
    if (!cfg.enabled || cfg.super_users.contains(ctx.principal)) return true;
    auto state = ctx.srv.security().snapshot();
    for (const auto& b : state->acls) {
        if (b.type != type || b.permission != sec::acl_permission::allow) continue;
        if (sec::authorize(cfg, state->acls, ctx.principal, ctx.host(), op, type,
                           b.pattern == sec::pattern_type::literal ? b.name : b.name + "x")) {
            return true;
        }
    }
    return false;
}

int32_t quota_tracker::record(const std::string& key, const std::string& user,
                              const std::string& client_id, double quota, uint64_t bytes,
                              clock::time_point now) {
    std::lock_guard lock(_mu);
    if (_meters.size() > quota_meters_max) _meters.clear();  // a flood of client ids: start over
    meter& m = _meters[key + "|" + user + "|" + client_id];
    if (m.samples.empty() || now - m.samples.back().first >= _window) m.samples.push_back({now, 0});
    m.samples.back().second += bytes;
    auto span = _window * _windows;
    while (m.samples.size() > 1 && now - m.samples.front().first > span) m.samples.erase(m.samples.begin());
    uint64_t total = 0;
    for (const auto& [start, b] : m.samples) total += b;
    // The rate over the measured span (at least one window, so a first burst is not judged
    // over a few microseconds); the wait is how long until that average equals the quota.
    double elapsed = std::max(std::chrono::duration<double>(now - m.samples.front().first).count(),
                              std::chrono::duration<double>(_window).count());
    if (quota <= 0 || static_cast<double>(total) / elapsed <= quota) return 0;
    double wait_s = static_cast<double>(total) / quota - elapsed;
    double cap = std::chrono::duration<double>(span).count();
    return static_cast<int32_t>(std::min(wait_s, cap) * 1000.0);
}

std::string quota_user(const request_context& ctx) {
    const std::string& p = ctx.principal;
    if (p == "User:ANONYMOUS") return "";
    auto colon = p.find(':');
    return colon == std::string::npos ? p : p.substr(colon + 1);
}

int32_t apply_quota(request_context& ctx, const char* key, uint64_t bytes) {
    if (!ctx.srv.security().has_quotas()) return 0;
    auto state = ctx.srv.security().snapshot();
    if (state->quotas.empty()) return 0;
    std::string user = quota_user(ctx);
    std::string client = ctx.header.client_id.value_or("");
    auto q = state->quota_for(user, client, key);
    if (!q) return 0;
    int32_t ms = ctx.srv.quotas().record(key, user, client, *q, bytes, quota_tracker::clock::now());
    if (ms > 0 && ctx.mute) ctx.mute(ms);
    if (ms > 0) ctx.srv.stats().core(ctx.home.id()).throttled_ms.fetch_add(static_cast<uint64_t>(ms));
    return ms;
}

// ---------------------------------------------------------------------------------------------
// SaslHandshake / SaslAuthenticate outside an authentication phase: the session answers them
// itself on SASL listeners while authenticating; anywhere else they are out of place.

void handle_sasl_handshake(context_ptr ctx, protocol::any_request&) {
    protocol::sasl_handshake_response resp;
    resp.error_code = code(kafka_error::illegal_sasl_state);
    ctx->respond(resp);
}

void handle_sasl_authenticate(context_ptr ctx, protocol::any_request&) {
    protocol::sasl_authenticate_response resp;
    resp.error_code = code(kafka_error::illegal_sasl_state);
    resp.error_message = "SaslAuthenticate outside of a SASL handshake";
    ctx->respond(resp);
}

// ---------------------------------------------------------------------------------------------
// ACLs

namespace {

sec::acl_filter to_filter(int8_t type, const std::optional<std::string>& name, int8_t pattern,
                          const std::optional<std::string>& principal,
                          const std::optional<std::string>& host, int8_t op, int8_t perm) {
    sec::acl_filter f;
    f.type = static_cast<sec::resource_type>(type);
    f.name = name;
    f.pattern = static_cast<sec::pattern_type>(pattern);
    f.principal = principal;
    f.host = host;
    f.operation = static_cast<sec::acl_operation>(op);
    f.permission = static_cast<sec::acl_permission>(perm);
    return f;
}

bool filter_valid(const sec::acl_filter& f) {
    auto in = [](int8_t v, int8_t lo, int8_t hi) { return v >= lo && v <= hi; };
    return in(static_cast<int8_t>(f.type), 1, 7) && in(static_cast<int8_t>(f.pattern), 1, 4) &&
           in(static_cast<int8_t>(f.operation), 1, 14) && in(static_cast<int8_t>(f.permission), 1, 3);
}

// Runs a security-store change off the core when it may block (a ZooKeeper write), then
// answers on the core.
void store_update(context_ptr ctx, std::function<result<void>(sec::security_state&)> change,
                  std::function<void(result<void>)> answer) {
    auto outcome = std::make_shared<result<void>>(ok());
    server& srv = ctx->srv;
    srv.metadata_write([&srv, outcome, change = std::move(change)] { *outcome = srv.security().update(change); },
                       [outcome, answer = std::move(answer)] { answer(*outcome); });
}

}  // namespace

void handle_describe_acls(context_ptr ctx, protocol::any_request& any) {
    auto& req = std::get<protocol::describe_acls_request>(any);
    protocol::describe_acls_response resp;
    if (!allowed_on_cluster(*ctx, sec::acl_operation::describe)) {
        resp.error_code = code(kafka_error::cluster_authorization_failed);
        ctx->respond(resp);
        return;
    }
    if (!ctx->srv.authorizer().enabled) {
        resp.error_code = code(kafka_error::security_disabled);
        resp.error_message = "no authorizer is configured (authorizer.class.name)";
        ctx->respond(resp);
        return;
    }
    auto f = to_filter(req.resource_type_filter, req.resource_name_filter, req.pattern_type_filter,
                       req.principal_filter, req.host_filter, req.operation, req.permission_type);
    if (!filter_valid(f)) {
        resp.error_code = code(kafka_error::invalid_request);
        resp.error_message = "the filter has an unknown resource type, pattern, operation or permission";
        ctx->respond(resp);
        return;
    }
    auto state = ctx->srv.security().snapshot();
    for (const auto& b : state->acls) {
        if (!sec::matches(f, b)) continue;
        if (resp.resources.empty() || resp.resources.back().resource_type != static_cast<int8_t>(b.type) ||
            resp.resources.back().resource_name != b.name ||
            resp.resources.back().pattern_type != static_cast<int8_t>(b.pattern)) {
            auto& r = resp.resources.emplace_back();
            r.resource_type = static_cast<int8_t>(b.type);
            r.resource_name = b.name;
            r.pattern_type = static_cast<int8_t>(b.pattern);
        }
        auto& a = resp.resources.back().acls.emplace_back();
        a.principal = b.principal;
        a.host = b.host;
        a.operation = static_cast<int8_t>(b.operation);
        a.permission_type = static_cast<int8_t>(b.permission);
    }
    ctx->respond(resp);
}

void handle_create_acls(context_ptr ctx, protocol::any_request& any) {
    auto req = std::get<protocol::create_acls_request>(any);
    auto resp = std::make_shared<protocol::create_acls_response>();
    resp->results.resize(req.creations.size());
    bool may = allowed_on_cluster(*ctx, sec::acl_operation::alter);
    bool enabled = ctx->srv.authorizer().enabled;
    auto bindings = std::make_shared<std::vector<std::optional<sec::acl_binding>>>();
    for (size_t i = 0; i < req.creations.size(); ++i) {
        const auto& c = req.creations[i];
        sec::acl_binding b{static_cast<sec::resource_type>(c.resource_type), c.resource_name,
                           static_cast<sec::pattern_type>(c.resource_pattern_type), c.principal, c.host,
                           static_cast<sec::acl_operation>(c.operation),
                           static_cast<sec::acl_permission>(c.permission_type)};
        auto& r = resp->results[i];
        if (!may) {
            r.error_code = code(kafka_error::cluster_authorization_failed);
        } else if (!enabled) {
            r.error_code = code(kafka_error::security_disabled);
            r.error_message = "no authorizer is configured (authorizer.class.name)";
        } else if (auto why = sec::invalid_binding(b)) {
            r.error_code = code(kafka_error::invalid_request);
            r.error_message = *why;
        } else {
            bindings->push_back(std::move(b));
            continue;
        }
        bindings->push_back(std::nullopt);
    }
    auto change = [bindings](sec::security_state& s) -> result<void> {
        for (const auto& b : *bindings) {
            if (b) s.acls.insert(*b);
        }
        return ok();
    };
    store_update(ctx, change, [ctx, resp, bindings](result<void> r) {
        if (!r) {
            log::error("security", "storing ACLs failed: ", r.error().describe());
            for (size_t i = 0; i < bindings->size(); ++i) {
                if ((*bindings)[i]) {
                    resp->results[i].error_code = code(kafka_error::unknown_server_error);
                    resp->results[i].error_message = r.error().describe();
                }
            }
        } else {
            for (const auto& b : *bindings) {
                if (b) {
                    log::info("security", ctx->principal, " added ACL ", sec::to_string(b->permission), " ",
                              b->principal, " ", sec::to_string(b->operation), " on ",
                              sec::to_string(b->type), " ", sec::to_string(b->pattern), " ", b->name);
                }
            }
        }
        ctx->respond(*resp);
    });
}

void handle_delete_acls(context_ptr ctx, protocol::any_request& any) {
    auto req = std::get<protocol::delete_acls_request>(any);
    auto resp = std::make_shared<protocol::delete_acls_response>();
    resp->filter_results.resize(req.filters.size());
    bool may = allowed_on_cluster(*ctx, sec::acl_operation::alter);
    bool enabled = ctx->srv.authorizer().enabled;
    auto filters = std::make_shared<std::vector<std::optional<sec::acl_filter>>>();
    for (size_t i = 0; i < req.filters.size(); ++i) {
        const auto& q = req.filters[i];
        auto f = to_filter(q.resource_type_filter, q.resource_name_filter, q.pattern_type_filter,
                           q.principal_filter, q.host_filter, q.operation, q.permission_type);
        auto& r = resp->filter_results[i];
        filters->push_back(std::nullopt);
        if (!may) {
            r.error_code = code(kafka_error::cluster_authorization_failed);
        } else if (!enabled) {
            r.error_code = code(kafka_error::security_disabled);
        } else if (!filter_valid(f)) {
            r.error_code = code(kafka_error::invalid_request);
            r.error_message = "unknown resource type, pattern, operation or permission";
        } else {
            filters->back() = f;
        }
    }
    auto change = [filters, resp](sec::security_state& s) -> result<void> {
        for (size_t i = 0; i < filters->size(); ++i) {
            if (!(*filters)[i]) continue;
            auto& r = resp->filter_results[i];
            r.matching_acls.clear();
            for (auto it = s.acls.begin(); it != s.acls.end();) {
                if (!sec::matches(*(*filters)[i], *it)) {
                    ++it;
                    continue;
                }
                auto& m = r.matching_acls.emplace_back();
                m.resource_type = static_cast<int8_t>(it->type);
                m.resource_name = it->name;
                m.pattern_type = static_cast<int8_t>(it->pattern);
                m.principal = it->principal;
                m.host = it->host;
                m.operation = static_cast<int8_t>(it->operation);
                m.permission_type = static_cast<int8_t>(it->permission);
                it = s.acls.erase(it);
            }
        }
        return ok();
    };
    store_update(ctx, change, [ctx, resp, filters](result<void> r) {
        if (!r) {
            for (size_t i = 0; i < filters->size(); ++i) {
                if ((*filters)[i]) {
                    resp->filter_results[i].error_code = code(kafka_error::unknown_server_error);
                    resp->filter_results[i].error_message = r.error().describe();
                    resp->filter_results[i].matching_acls.clear();
                }
            }
        }
        ctx->respond(*resp);
    });
}

// ---------------------------------------------------------------------------------------------
// SCRAM credentials

void handle_describe_user_scram_credentials(context_ptr ctx, protocol::any_request& any) {
    auto& req = std::get<protocol::describe_user_scram_credentials_request>(any);
    protocol::describe_user_scram_credentials_response resp;
    if (!allowed_on_cluster(*ctx, sec::acl_operation::describe)) {
        resp.error_code = code(kafka_error::cluster_authorization_failed);
        ctx->respond(resp);
        return;
    }
    auto state = ctx->srv.security().snapshot();
    auto describe = [&](const std::string& user) {
        auto& r = resp.results.emplace_back();
        r.user = user;
        auto it = state->scram.find(user);
        if (it == state->scram.end()) {
            r.error_code = code(kafka_error::resource_not_found);
            r.error_message = "user '" + user + "' has no SCRAM credentials";
            return;
        }
        for (const auto& [m, c] : it->second) {
            auto& info = r.credential_infos.emplace_back();
            info.mechanism = sec::mechanism_code(m);
            info.iterations = c.iterations;
        }
    };
    if (!req.users || req.users->empty()) {
        for (const auto& [user, _] : state->scram) describe(user);
    } else {
        std::set<std::string> seen;
        for (const auto& u : *req.users) {
            if (!seen.insert(u.name).second) {
                auto& r = resp.results.emplace_back();
                r.user = u.name;
                r.error_code = code(kafka_error::duplicate_resource);
                r.error_message = "user named more than once";
                continue;
            }
            describe(u.name);
        }
    }
    ctx->respond(resp);
}

void handle_alter_user_scram_credentials(context_ptr ctx, protocol::any_request& any) {
    auto req = std::get<protocol::alter_user_scram_credentials_request>(any);
    auto resp = std::make_shared<protocol::alter_user_scram_credentials_response>();
    bool may = allowed_on_cluster(*ctx, sec::acl_operation::alter);
    // One result per user; a user whose changes are all valid is changed, in one store update.
    std::map<std::string, std::pair<int16_t, std::string>> verdict;
    std::map<std::string, int> mentions;
    for (const auto& d : req.deletions) mentions[d.name]++;
    for (const auto& u : req.upsertions) mentions[u.name]++;
    auto refuse = [&](const std::string& user, kafka_error e, std::string why) {
        if (!verdict.contains(user)) verdict[user] = {code(e), std::move(why)};
    };
    std::set<std::pair<std::string, int8_t>> pairs;
    for (const auto& d : req.deletions) {
        if (!may) refuse(d.name, kafka_error::cluster_authorization_failed, "");
        if (d.name.empty()) refuse(d.name, kafka_error::unacceptable_credential, "empty user name");
        if (!sec::mechanism_from_code(d.mechanism)) {
            refuse(d.name, kafka_error::unsupported_sasl_mechanism, "unknown SCRAM mechanism");
        }
        if (!pairs.insert({d.name, d.mechanism}).second) {
            refuse(d.name, kafka_error::duplicate_resource, "a mechanism named twice for the user");
        }
    }
    for (const auto& u : req.upsertions) {
        if (!may) refuse(u.name, kafka_error::cluster_authorization_failed, "");
        if (u.name.empty()) refuse(u.name, kafka_error::unacceptable_credential, "empty user name");
        if (!sec::mechanism_from_code(u.mechanism)) {
            refuse(u.name, kafka_error::unsupported_sasl_mechanism, "unknown SCRAM mechanism");
        }
        if (u.iterations < sec::scram_min_iterations || u.iterations > sec::scram_max_iterations) {
            refuse(u.name, kafka_error::unacceptable_credential,
                   "iterations must be within [" + std::to_string(sec::scram_min_iterations) + ", " +
                       std::to_string(sec::scram_max_iterations) + "]");
        }
        if (u.salt.empty() || u.salted_password.empty()) {
            refuse(u.name, kafka_error::unacceptable_credential, "salt and salted password are required");
        }
        if (!pairs.insert({u.name, u.mechanism}).second) {
            refuse(u.name, kafka_error::duplicate_resource, "a mechanism named twice for the user");
        }
    }
    auto missing = std::make_shared<std::set<std::string>>();
    auto change = [req, verdict, missing](sec::security_state& s) -> result<void> {
        for (const auto& d : req.deletions) {
            if (verdict.contains(d.name)) continue;
            auto m = *sec::mechanism_from_code(d.mechanism);
            auto it = s.scram.find(d.name);
            if (it == s.scram.end() || !it->second.erase(m)) {
                missing->insert(d.name);
                continue;
            }
            if (it->second.empty()) s.scram.erase(it);
        }
        for (const auto& u : req.upsertions) {
            if (verdict.contains(u.name)) continue;
            auto m = *sec::mechanism_from_code(u.mechanism);
            std::vector<uint8_t> salt(reinterpret_cast<const uint8_t*>(u.salt.data()),
                                      reinterpret_cast<const uint8_t*>(u.salt.data()) + u.salt.size());
            std::span<const uint8_t> salted(reinterpret_cast<const uint8_t*>(u.salted_password.data()),
                                            u.salted_password.size());
            s.scram[u.name][m] = sec::scram_credential_from_salted(m, std::move(salt), salted, u.iterations);
        }
        return ok();
    };
    auto finish = [ctx, resp, verdict, mentions, missing](result<void> r) {
        for (const auto& [user, _] : mentions) {
            auto& out = resp->results.emplace_back();
            out.user = user;
            if (auto v = verdict.find(user); v != verdict.end()) {
                out.error_code = v->second.first;
                if (!v->second.second.empty()) out.error_message = v->second.second;
            } else if (!r) {
                out.error_code = code(kafka_error::unknown_server_error);
                out.error_message = r.error().describe();
            } else if (missing->contains(user)) {
                out.error_code = code(kafka_error::resource_not_found);
                out.error_message = "no such SCRAM credential to delete";
            } else {
                log::info("security", ctx->principal, " changed the SCRAM credentials of user ", user);
            }
        }
        ctx->respond(*resp);
    };
    store_update(ctx, change, finish);
}

// ---------------------------------------------------------------------------------------------
// Client quotas

namespace {

// Entity components of a quota request -> quota_entity, or the reason it cannot be one.
template <class Components>
std::optional<std::string> to_entity(const Components& parts, sec::quota_entity& e) {
    for (const auto& p : parts) {
        if (p.entity_type == "user" && !e.has_user) {
            e.has_user = true;
            e.user = p.entity_name;
        } else if (p.entity_type == "client-id" && !e.has_client_id) {
            e.has_client_id = true;
            e.client_id = p.entity_name;
        } else {
            return "entity type '" + p.entity_type + "' is unknown or repeated (user, client-id)";
        }
    }
    if (!e.has_user && !e.has_client_id) return "an entity needs a user or a client-id";
    return std::nullopt;
}

}  // namespace

void handle_describe_client_quotas(context_ptr ctx, protocol::any_request& any) {
    auto& req = std::get<protocol::describe_client_quotas_request>(any);
    protocol::describe_client_quotas_response resp;
    if (!allowed_on_cluster(*ctx, sec::acl_operation::describe_configs)) {
        resp.error_code = code(kafka_error::cluster_authorization_failed);
        ctx->respond(resp);
        return;
    }
    auto state = ctx->srv.security().snapshot();
    resp.entries.emplace();
    for (const auto& [e, values] : state->quotas) {
        bool ok = true;
        for (const auto& c : req.components) {
            bool is_user = c.entity_type == "user";
            if (!is_user && c.entity_type != "client-id") {
                ok = false;
                break;
            }
            bool has = is_user ? e.has_user : e.has_client_id;
            const auto& name = is_user ? e.user : e.client_id;
            // match_type 0: exactly `match`; 1: the default entity; 2: any entity of the type.
            if (!has) ok = false;
            else if (c.match_type == 0) ok = name && c.match && *name == *c.match;
            else if (c.match_type == 1) ok = !name;
            if (!ok) break;
        }
        if (ok && req.strict) {
            size_t parts = (e.has_user ? 1 : 0) + (e.has_client_id ? 1 : 0);
            ok = parts == req.components.size();
        }
        if (!ok) continue;
        auto& entry = resp.entries->emplace_back();
        if (e.has_user) entry.entity.push_back({"user", e.user, {}});
        if (e.has_client_id) entry.entity.push_back({"client-id", e.client_id, {}});
        for (const auto& [k, v] : values) entry.values.push_back({k, v, {}});
    }
    ctx->respond(resp);
}

void handle_alter_client_quotas(context_ptr ctx, protocol::any_request& any) {
    auto req = std::get<protocol::alter_client_quotas_request>(any);
    auto resp = std::make_shared<protocol::alter_client_quotas_response>();
    bool may = allowed_on_cluster(*ctx, sec::acl_operation::alter_configs);
    auto valid = std::make_shared<std::vector<bool>>();
    for (const auto& entry : req.entries) {
        auto& out = resp->entries.emplace_back();
        for (const auto& p : entry.entity) out.entity.push_back({p.entity_type, p.entity_name, {}});
        sec::quota_entity e;
        std::optional<std::string> why = may ? to_entity(entry.entity, e) : std::nullopt;
        if (!may) {
            out.error_code = code(kafka_error::cluster_authorization_failed);
        } else if (why) {
            out.error_code = code(kafka_error::invalid_request);
            out.error_message = *why;
        } else {
            for (const auto& op : entry.ops) {
                if (!sec::is_quota_key(op.key)) {
                    out.error_code = code(kafka_error::invalid_request);
                    out.error_message = "quota key '" + op.key + "' is not one Sluice enforces "
                                        "(producer_byte_rate, consumer_byte_rate)";
                } else if (!op.remove && !(op.value > 0)) {
                    out.error_code = code(kafka_error::invalid_request);
                    out.error_message = "quota " + op.key + " must be positive";
                }
            }
        }
        valid->push_back(out.error_code == 0);
    }
    if (req.validate_only) {
        ctx->respond(*resp);
        return;
    }
    auto change = [req, valid](sec::security_state& s) -> result<void> {
        for (size_t i = 0; i < req.entries.size(); ++i) {
            if (!(*valid)[i]) continue;
            sec::quota_entity e;
            to_entity(req.entries[i].entity, e);
            auto& values = s.quotas[e];
            for (const auto& op : req.entries[i].ops) {
                if (op.remove) {
                    values.erase(op.key);
                } else {
                    values[op.key] = op.value;
                }
            }
            if (values.empty()) s.quotas.erase(e);
        }
        return ok();
    };
    store_update(ctx, change, [ctx, resp, valid](result<void> r) {
        if (!r) {
            for (size_t i = 0; i < valid->size(); ++i) {
                if ((*valid)[i]) {
                    resp->entries[i].error_code = code(kafka_error::unknown_server_error);
                    resp->entries[i].error_message = r.error().describe();
                }
            }
        }
        ctx->respond(*resp);
    });
}

}  // namespace sluice::broker
