// CreateTopics, DeleteTopics, CreatePartitions, DescribeConfigs, AlterConfigs,
// IncrementalAlterConfigs.

#include <algorithm>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <map>
#include <set>
#include <sstream>

#include "base/log.h"
#include "broker/config.h"
#include "broker/cluster.h"
#include "broker/handlers.h"
#include "broker/kafka_error.h"
#include "broker/log_dirs.h"
#include "broker/security.h"
#include "security/store.h"
#include "broker/server.h"
#include "broker/shard.h"
#include "runtime/reactor.h"
#include "replication/metadata_store.h"

namespace sluice::broker {

namespace sec = sluice::security;


namespace {

constexpr int8_t resource_topic = 2;
constexpr int8_t resource_broker = 4;

// Kafka's ConfigSource values.
using overrides = std::map<std::string, std::string>;

constexpr int8_t source_topic = 1;
constexpr int8_t source_dynamic_broker = 2;
constexpr int8_t source_dynamic_default = 3;
constexpr int8_t source_static_broker = 4;
constexpr int8_t source_default = 5;

protocol::uuid to_uuid(const replication::topic_id& id) {
    protocol::uuid u;
    std::memcpy(u.bytes.data(), id.data(), 16);
    return u;
}

// Calls `done` once `n` completions have been counted (n may be 0).
std::function<void()> countdown(size_t n, std::function<void()> done) {
    if (n == 0) {
        done();
        return [] {};
    }
    auto left = std::make_shared<size_t>(n);
    auto d = std::make_shared<std::function<void()>>(std::move(done));
    return [left, d] {
        if (--*left == 0) (*d)();
    };
}

}  // namespace

namespace {
struct to_open {
    std::string name;
    int32_t partitions;
};
}  // namespace

namespace {

// Cluster mode: runs `done` on the core once every partition of `topics` has a live leader in
// this broker's view, or at `deadline`; re-checked every 100 ms.
void wait_for_leaders(context_ptr ctx, std::shared_ptr<std::vector<to_open>> topics,
                      std::chrono::steady_clock::time_point deadline, std::function<void()> done) {
    auto view = ctx->srv.cluster_member()->view();
    bool ready = true;
    for (const auto& t : *topics) {
        auto it = view->topics->find(t.name);
        if (it == view->topics->end()) continue;  // deleted meanwhile
        for (const auto& st : it->second.states) ready &= st && view->live(st->leader);
    }
    if (ready || std::chrono::steady_clock::now() >= deadline) {
        done();
        return;
    }
    ctx->home.reactor().add_timer(std::chrono::milliseconds(100),
                                  [ctx, topics, deadline, done = std::move(done)]() mutable {
                                      wait_for_leaders(ctx, topics, deadline, std::move(done));
                                  });
}

}  // namespace

void handle_create_topics(context_ptr ctx, protocol::any_request& any) {
    auto held = std::make_shared<protocol::create_topics_request>(
        std::move(std::get<protocol::create_topics_request>(any)));
    auto resp = std::make_shared<protocol::create_topics_response>();
    auto created_ptr = std::make_shared<std::vector<to_open>>();
    // The writes may block on ZooKeeper: server::metadata_write runs them off the core.
    ctx->srv.metadata_write([ctx, held, resp, created_ptr] {
    const auto& req = *held;
    server& srv = ctx->srv;
    auto& created = *created_ptr;
    std::set<std::string> seen;
    for (const auto& t : req.topics) {
        protocol::create_topics_response::creatable_topic_result r;
        r.name = t.name;
        r.error_message = std::nullopt;  // null on success, as Kafka sends it
        r.num_partitions = -1;
        r.replication_factor = -1;
        auto fail = [&](kafka_error e, std::string msg) {
            r.error_code = code(e);
            r.error_message = std::move(msg);
            resp->topics.push_back(r);
        };
        if (!seen.insert(t.name).second) {
            fail(kafka_error::invalid_request, "topic " + t.name + " appears twice in the request");
            continue;
        }
        if (auto v = replication::validate_topic_name(t.name); !v) {
            fail(kafka_error::invalid_topic_exception, v.error().describe());
            continue;
        }
        if (!allowed_on_cluster(*ctx, sec::acl_operation::create) &&
            !allowed(*ctx, sec::acl_operation::create, sec::resource_type::topic, t.name)) {
            fail(kafka_error::topic_authorization_failed, "not authorized to create " + t.name);
            continue;
        }
        int32_t partitions = t.num_partitions;
        int16_t rf = t.replication_factor;
        bool clustered = srv.cluster_member() != nullptr;
        std::vector<std::vector<int32_t>> assignment;
        if (!t.assignments.empty()) {
            partitions = static_cast<int32_t>(t.assignments.size());
            rf = static_cast<int16_t>(t.assignments.front().broker_ids.size());
            bool ok = true;
            for (const auto& a : t.assignments) {
                for (int32_t b : a.broker_ids) ok &= clustered || b == srv.node_id();
                assignment.push_back(a.broker_ids);
            }
            if (!ok) {
                fail(kafka_error::invalid_replica_assignment,
                     "replica assignment names a broker other than " + std::to_string(srv.node_id()));
                continue;
            }
        }
        if (partitions == -1) partitions = static_cast<int32_t>(srv.config().int_value("num.partitions"));
        if (rf == -1) rf = static_cast<int16_t>(srv.config().int_value("default.replication.factor"));
        if (partitions <= 0) {
            fail(kafka_error::invalid_partitions, "number of partitions must be larger than 0");
            continue;
        }
        if (rf <= 0) {
            fail(kafka_error::invalid_replication_factor, "replication factor must be larger than 0");
            continue;
        }
        if (clustered) {
            // The store checks against the brokers registered at the moment of creation; a
            // validate-only request is checked here against the current view.
            int32_t live = static_cast<int32_t>(srv.cluster_member()->view()->brokers.size());
            if (req.validate_only && assignment.empty() && rf > live) {
                fail(kafka_error::invalid_replication_factor,
                     "replication factor " + std::to_string(rf) + " is larger than the " +
                         std::to_string(live) + " live broker(s)");
                continue;
            }
        } else if (rf != 1) {
            fail(kafka_error::invalid_replication_factor,
                 "replication factor " + std::to_string(rf) + " is larger than the 1 available broker");
            continue;
        }
        std::map<std::string, std::string> configs;
        std::string bad;
        for (const auto& c : t.configs) {
            if (!c.value) continue;
            if (auto v = validate_topic_config(c.name, *c.value); !v) {
                bad = v.error().describe();
                break;
            }
            configs[c.name] = *c.value;
        }
        if (!bad.empty()) {
            fail(kafka_error::invalid_config, bad);
            continue;
        }
        if (srv.metadata().snapshot()->contains(t.name)) {
            fail(kafka_error::topic_already_exists, "topic '" + t.name + "' already exists");
            continue;
        }
        r.num_partitions = partitions;
        r.replication_factor = rf;
        if (!req.validate_only) {
            replication::topic_spec spec;
            spec.name = t.name;
            spec.partitions = partitions;
            spec.replication_factor = rf;
            spec.assignment = assignment;
            spec.configs = configs;
            auto m = srv.metadata().create_topic(spec);
            if (!m) {
                fail(to_kafka_error(m.error()), m.error().describe());
                continue;
            }
            r.topic_id = to_uuid(m->id);
            created.push_back({t.name, partitions});
            log::info("broker", "created topic ", t.name, " with ", partitions,
                      " partition(s), replication factor ", rf);
        }
        if (ctx->version() >= 5) {
            r.configs.emplace();
            auto eff = effective_topic_config(*srv.topic_defaults(), configs);
            for (const auto& [k, v] : eff) {
                protocol::create_topics_response::creatable_topic_configs c;
                c.name = k;
                c.value = v;
                c.config_source = configs.contains(k) ? source_topic : source_default;
                r.configs->push_back(std::move(c));
            }
        }
        resp->topics.push_back(std::move(r));
    }
    }, [ctx, held, resp, created_ptr] {
        if (ctx->srv.cluster_member() != nullptr) {
            // As Kafka does, answer once the controller has given every new partition a leader
            // (or the request's timeout passed: the topics exist either way).
            auto deadline = std::chrono::steady_clock::now() +
                            std::chrono::milliseconds(std::clamp(held->timeout_ms, 0, 60000));
            wait_for_leaders(ctx, created_ptr, deadline, [ctx, resp] { ctx->respond(*resp); });
            return;
        }
        auto tick = countdown(created_ptr->size(), [ctx, resp] { ctx->respond(*resp); });
        for (const auto& c : *created_ptr) ctx->srv.open_partitions(c.name, 0, c.partitions, tick);
    });
}

void handle_delete_topics(context_ptr ctx, protocol::any_request& any) {
    auto held = std::make_shared<protocol::delete_topics_request>(
        std::move(std::get<protocol::delete_topics_request>(any)));
    auto resp = std::make_shared<protocol::delete_topics_response>();
    auto dropped_ptr = std::make_shared<std::vector<std::pair<std::string, int32_t>>>();
    ctx->srv.metadata_write([ctx, held, resp, dropped_ptr] {
    const auto& req = *held;
    server& srv = ctx->srv;
    struct target {
        std::optional<std::string> name;
        protocol::uuid id;
    };
    std::vector<target> targets;
    for (const auto& n : req.topic_names) targets.push_back({n, {}});
    for (const auto& t : req.topics) targets.push_back({t.name, t.topic_id});
    bool enabled = srv.config().bool_value("delete.topic.enable");
    auto& dropped = *dropped_ptr;
    for (const auto& t : targets) {
        protocol::delete_topics_response::deletable_topic_result r;
        r.name = t.name;
        r.topic_id = t.id;
        auto snap = srv.metadata().snapshot();
        const replication::topic_metadata* meta = nullptr;
        if (t.name) {
            auto it = snap->find(*t.name);
            if (it != snap->end()) meta = &it->second;
        } else {
            for (const auto& [n, m] : *snap) {
                if (to_uuid(m.id) == t.id) meta = &m;
            }
        }
        std::optional<std::string> named = meta != nullptr ? std::optional(meta->name) : t.name;
        if (named && !allowed(*ctx, sec::acl_operation::remove, sec::resource_type::topic, *named)) {
            r.error_code = code(kafka_error::topic_authorization_failed);
        } else if (!enabled) {
            r.error_code = code(kafka_error::topic_deletion_disabled);
            r.error_message = "delete.topic.enable is false";
        } else if (meta == nullptr) {
            r.error_code = code(t.name ? kafka_error::unknown_topic_or_partition
                                       : kafka_error::unknown_topic_id);
        } else {
            std::string name = meta->name;
            int32_t parts = meta->partitions;
            r.name = name;
            r.topic_id = to_uuid(meta->id);
            if (auto d = srv.metadata().delete_topic(name); !d) {
                r.error_code = code(to_kafka_error(d.error()));
                r.error_message = d.error().describe();
            } else {
                dropped.emplace_back(name, parts);
                log::info("broker", "deleted topic ", name);
            }
        }
        resp->responses.push_back(std::move(r));
    }
    }, [ctx, resp, dropped_ptr] {
        auto tick = countdown(dropped_ptr->size(), [ctx, resp] { ctx->respond(*resp); });
        for (const auto& [name, parts] : *dropped_ptr) ctx->srv.drop_topic(name, parts, tick);
    });
}

void handle_create_partitions(context_ptr ctx, protocol::any_request& any) {
    auto held = std::make_shared<protocol::create_partitions_request>(
        std::move(std::get<protocol::create_partitions_request>(any)));
    auto resp = std::make_shared<protocol::create_partitions_response>();
    auto grown_ptr = std::make_shared<std::vector<std::tuple<std::string, int32_t, int32_t>>>();
    ctx->srv.metadata_write([ctx, held, resp, grown_ptr] {
    const auto& req = *held;
    server& srv = ctx->srv;
    auto& grown = *grown_ptr;
    for (const auto& t : req.topics) {
        protocol::create_partitions_response::create_partitions_topic_result r;
        r.name = t.name;
        auto snap = srv.metadata().snapshot();
        auto it = snap->find(t.name);
        if (!allowed(*ctx, sec::acl_operation::alter, sec::resource_type::topic, t.name)) {
            r.error_code = code(kafka_error::topic_authorization_failed);
        } else if (it == snap->end()) {
            r.error_code = code(kafka_error::unknown_topic_or_partition);
            r.error_message = "topic '" + t.name + "' does not exist";
        } else if (t.count <= it->second.partitions) {
            r.error_code = code(kafka_error::invalid_partitions);
            r.error_message = "topic has " + std::to_string(it->second.partitions) +
                              " partitions; the new count must be larger";
        } else if (!req.validate_only) {
            int32_t old = it->second.partitions;
            if (auto s = srv.metadata().set_partition_count(t.name, t.count); !s) {
                r.error_code = code(to_kafka_error(s.error()));
                r.error_message = s.error().describe();
            } else {
                grown.emplace_back(t.name, old, t.count);
                log::info("broker", "topic ", t.name, " now has ", t.count, " partitions");
            }
        }
        resp->results.push_back(std::move(r));
    }
    }, [ctx, resp, grown_ptr] {
        auto tick = countdown(grown_ptr->size(), [ctx, resp] { ctx->respond(*resp); });
        for (const auto& [name, from, to] : *grown_ptr) ctx->srv.open_partitions(name, from, to, tick);
    });
}

void handle_describe_configs(context_ptr ctx, protocol::any_request& any) {
    auto& req = std::get<protocol::describe_configs_request>(any);
    server& srv = ctx->srv;
    protocol::describe_configs_response resp;
    for (const auto& res : req.resources) {
        protocol::describe_configs_response::describe_configs_result r;
        r.resource_type = res.resource_type;
        r.resource_name = res.resource_name;
        auto wanted = [&](const std::string& k) {
            if (!res.configuration_keys) return true;
            for (const auto& w : *res.configuration_keys) {
                if (w == k) return true;
            }
            return false;
        };
        const bool synonyms = ctx->version() >= 1 && req.include_synonyms;
        using synonym_list = std::vector<broker_config::synonym>;
        auto add = [&](const std::string& k, const std::string& v, int8_t source, bool read_only,
                       const synonym_list& broker_level) {
            if (!wanted(k)) return;
            protocol::describe_configs_response::describe_configs_resource_result c;
            c.name = k;
            if (!v.empty()) c.value = v;  // Kafka reports a config without a value as null
            c.read_only = read_only;
            c.is_default = source == source_default;
            c.config_source = source;
            if (synonyms) {
                // Kafka's order: the value in effect first, then what it overrides.
                if (source == source_topic) c.synonyms.push_back({k, c.value, source_topic, {}});
                for (const auto& s : broker_level) {
                    c.synonyms.push_back({s.name, s.value,
                                          s.is_static ? source_static_broker : source_default, {}});
                }
            }
            r.configs.push_back(std::move(c));
        };
        if (res.resource_type == resource_topic &&
            !allowed(*ctx, sec::acl_operation::describe_configs, sec::resource_type::topic, res.resource_name)) {
            r.error_code = code(kafka_error::topic_authorization_failed);
        } else if (res.resource_type == resource_broker &&
                   !allowed_on_cluster(*ctx, sec::acl_operation::describe_configs)) {
            r.error_code = code(kafka_error::cluster_authorization_failed);
        } else if (res.resource_type == resource_topic) {
            auto snap = srv.metadata().snapshot();
            auto it = snap->find(res.resource_name);
            if (it == snap->end()) {
                r.error_code = code(kafka_error::unknown_topic_or_partition);
                r.error_message = "topic '" + res.resource_name + "' does not exist";
            } else {
                auto eff = srv.effective_config(it->second);
                for (const auto& [k, v] : eff) {
                    int8_t source = it->second.configs.contains(k) ? source_topic : source_default;
                    auto broker_level = srv.config().topic_key_synonyms(k);
                    // A topic key supplied by an explicit broker setting is a broker config,
                    // a dynamic one first.
                    if (source == source_default && !broker_level.empty()) {
                        auto dyn = srv.dynamic_overrides();
                        auto state = srv.security().snapshot();
                        auto own = state->broker_configs.find(std::to_string(srv.node_id()));
                        const std::string& bk = broker_level.front().name;
                        if (own != state->broker_configs.end() && own->second.contains(bk)) {
                            source = source_dynamic_broker;
                        } else if (dyn.contains(bk)) {
                            source = source_dynamic_default;
                        } else if (broker_level.front().is_static) {
                            source = source_static_broker;
                        }
                    }
                    add(k, v, source, false, synonyms ? broker_level : synonym_list{});
                }
            }
        } else if (res.resource_type == resource_broker) {
            if (!res.resource_name.empty() && res.resource_name != std::to_string(srv.node_id())) {
                r.error_code = code(kafka_error::invalid_request);
                r.error_message = "this is broker " + std::to_string(srv.node_id());
            } else {
                auto state = srv.security().snapshot();
                auto dyn = [&](const std::string& entity) -> const overrides* {
                    auto it = state->broker_configs.find(entity);
                    return it == state->broker_configs.end() ? nullptr : &it->second;
                };
                const overrides* mine = dyn(std::to_string(srv.node_id()));
                const overrides* all = dyn("");
                for (const auto& [k, v] : srv.config().all()) {
                    if (mine != nullptr && mine->contains(k)) {
                        add(k, mine->at(k), source_dynamic_broker, false, synonym_list{});
                    } else if (all != nullptr && all->contains(k)) {
                        add(k, all->at(k), source_dynamic_default, false, synonym_list{});
                    } else {
                        add(k, v, srv.config().is_default(k) ? source_default : source_static_broker,
                            !is_dynamic_broker_key(k),
                            synonyms ? srv.config().broker_key_synonyms(k) : synonym_list{});
                    }
                }
            }
        } else {
            r.error_code = code(kafka_error::invalid_request);
            r.error_message = "unsupported resource type " + std::to_string(res.resource_type);
        }
        resp.results.push_back(std::move(r));
    }
    ctx->respond(resp);
}

namespace {

// Validates the new override set of a topic and stores it; `changed` collects topics whose
// partitions must pick up new settings.
std::pair<kafka_error, std::string> store_topic_overrides(server& srv, const std::string& topic,
                                                          const overrides& next, bool validate_only,
                                                          std::vector<std::string>& changed) {
    for (const auto& [k, v] : next) {
        if (auto ok = validate_topic_config(k, v); !ok) {
            return {kafka_error::invalid_config, ok.error().describe()};
        }
    }
    if (validate_only) return {kafka_error::none, {}};
    if (auto s = srv.metadata().set_topic_configs(topic, next); !s) {
        return {to_kafka_error(s.error()), s.error().describe()};
    }
    changed.push_back(topic);
    return {kafka_error::none, {}};
}

// AlterConfigs on a BROKER resource: `entity` "" is every broker (Kafka's cluster default),
// else a broker id. Only dynamic keys (is_dynamic_broker_key); each value is checked as a
// server.properties line would be. Stored with the security state (persisted, and shared
// through ZooKeeper in a cluster).
template <class Resource, class Apply>
std::pair<kafka_error, std::string> alter_broker_configs(server& srv, const std::string& entity,
                                                         bool validate_only, const Apply& apply,
                                                         const Resource& res) {
    if (!entity.empty() && entity.find_first_not_of("0123456789") != std::string::npos) {
        return {kafka_error::invalid_request, "broker resource '" + entity + "' is not a broker id"};
    }
    if (!entity.empty() && srv.cluster_member() == nullptr && entity != std::to_string(srv.node_id())) {
        return {kafka_error::invalid_request, "this is broker " + std::to_string(srv.node_id())};
    }
    auto state = srv.security().snapshot();
    overrides next;
    if (auto it = state->broker_configs.find(entity); it != state->broker_configs.end()) next = it->second;
    config_map current;
    for (const auto& [k, v] : srv.config_with_dynamic().all()) current[k] = v;
    std::string why;
    if (!apply(res, current, next, why)) return {kafka_error::invalid_config, why};
    broker_config check = srv.config();
    for (const auto& [k, v] : next) {
        if (!is_dynamic_broker_key(k)) {
            return {kafka_error::invalid_config,
                    k + " cannot be changed while the broker runs (set it in server.properties and restart)"};
        }
        if (auto ok = check.set(k, v); !ok) return {kafka_error::invalid_config, ok.error().detail()};
    }
    if (validate_only) return {kafka_error::none, {}};
    auto r = srv.security().update([&](security::security_state& s) -> result<void> {
        if (next.empty()) {
            s.broker_configs.erase(entity);
        } else {
            s.broker_configs[entity] = next;
        }
        return ok();
    });
    if (!r) return {kafka_error::unknown_server_error, r.error().describe()};
    log::info("broker", "dynamic broker configs of ", entity.empty() ? std::string("<default>") : entity,
              " set: ", next.size(), " key(s)");
    return {kafka_error::none, {}};
}

template <class Response, class Resource, class Apply>
void alter_configs_common(context_ptr ctx, const std::vector<Resource>& resources_in,
                          bool validate_only, Apply apply) {
    auto resp = std::make_shared<Response>();
    auto held = std::make_shared<std::vector<Resource>>(resources_in);
    auto changed_ptr = std::make_shared<std::vector<std::string>>();
    auto dynamic_changed = std::make_shared<bool>(false);
    // The writes may block on ZooKeeper: off the core in cluster mode.
    ctx->srv.metadata_write([ctx, resp, held, changed_ptr, dynamic_changed, validate_only, apply] {
    server& srv = ctx->srv;
    auto& changed = *changed_ptr;
    for (const auto& res : *held) {
        typename decltype(resp->responses)::value_type r;
        r.error_message = std::nullopt;  // null on success, as Kafka sends it
        r.resource_type = res.resource_type;
        r.resource_name = res.resource_name;
        if (res.resource_type == resource_topic &&
            !allowed(*ctx, sec::acl_operation::alter_configs, sec::resource_type::topic, res.resource_name)) {
            r.error_code = code(kafka_error::topic_authorization_failed);
        } else if (res.resource_type == resource_broker &&
                   !allowed_on_cluster(*ctx, sec::acl_operation::alter_configs)) {
            r.error_code = code(kafka_error::cluster_authorization_failed);
        } else if (res.resource_type == resource_topic) {
            auto snap = srv.metadata().snapshot();
            auto it = snap->find(res.resource_name);
            if (it == snap->end()) {
                r.error_code = code(kafka_error::unknown_topic_or_partition);
                r.error_message = "topic '" + res.resource_name + "' does not exist";
            } else {
                overrides next = it->second.configs;
                const config_map current = srv.effective_config(it->second);
                std::string why;
                if (!apply(res, current, next, why)) {
                    r.error_code = code(kafka_error::invalid_config);
                    r.error_message = why;
                } else {
                    auto [e, msg] = store_topic_overrides(srv, res.resource_name, next,
                                                          validate_only, changed);
                    r.error_code = code(e);
                    if (!msg.empty()) r.error_message = msg;
                }
            }
        } else if (res.resource_type == resource_broker) {
            auto [e, msg] = alter_broker_configs(srv, res.resource_name, validate_only, apply, res);
            r.error_code = code(e);
            if (!msg.empty()) r.error_message = msg;
            if (e == kafka_error::none && !validate_only) *dynamic_changed = true;
        } else {
            r.error_code = code(kafka_error::invalid_request);
            r.error_message = "unsupported resource type " + std::to_string(res.resource_type);
        }
        resp->responses.push_back(std::move(r));
    }
    }, [ctx, resp, changed_ptr, dynamic_changed] {
        auto topics = [ctx, resp, changed_ptr] {
            auto tick = countdown(changed_ptr->size(), [ctx, resp] { ctx->respond(*resp); });
            for (const auto& t : *changed_ptr) ctx->srv.apply_topic_config(t, tick);
        };
        if (*dynamic_changed) {
            ctx->srv.apply_dynamic_configs(topics);
        } else {
            topics();
        }
    });
}

}  // namespace

void handle_alter_configs(context_ptr ctx, protocol::any_request& any) {
    auto req = std::get<protocol::alter_configs_request>(any);
    // Non-incremental: the request's set replaces the topic's overrides.
    alter_configs_common<protocol::alter_configs_response>(
        ctx, req.resources, req.validate_only,
        [](const auto& res, const config_map&, overrides& next, std::string&) {
            next.clear();
            for (const auto& c : res.configs) {
                if (c.value) next[c.name] = *c.value;
            }
            return true;
        });
}

void handle_incremental_alter_configs(context_ptr ctx, protocol::any_request& any) {
    auto req = std::get<protocol::incremental_alter_configs_request>(any);
    alter_configs_common<protocol::incremental_alter_configs_response>(
        ctx, req.resources, req.validate_only,
        [](const auto& res, const config_map& current, overrides& next, std::string& why) {
            for (const auto& c : res.configs) {
                switch (c.config_operation) {
                    case 0:  // SET
                        if (!c.value) {
                            why = c.name + ": SET needs a value";
                            return false;
                        }
                        next[c.name] = *c.value;
                        break;
                    case 1:  // DELETE
                        next.erase(c.name);
                        break;
                    case 2:    // APPEND (list values)
                    case 3: {  // SUBTRACT
                        if (c.name != "cleanup.policy" || !c.value) {
                            why = c.name + ": APPEND/SUBTRACT apply only to list configs";
                            return false;
                        }
                        std::set<std::string> items;
                        // Start from the value in effect (override or broker default).
                        std::stringstream cur(next.contains(c.name) ? next[c.name]
                                                                    : current.at(c.name));
                        std::string item;
                        while (std::getline(cur, item, ',')) items.insert(item);
                        if (c.config_operation == 2) {
                            items.insert(*c.value);
                        } else {
                            items.erase(*c.value);
                        }
                        std::string joined;
                        for (const auto& i : items) joined += (joined.empty() ? "" : ",") + i;
                        next[c.name] = joined;
                        break;
                    }
                    default:
                        why = c.name + ": unknown operation " + std::to_string(c.config_operation);
                        return false;
                }
            }
            return true;
        });
}

}  // namespace sluice::broker

namespace sluice::broker {

namespace {

struct election_wait {
    context_ptr ctx;
    protocol::elect_leaders_response resp;
    struct pending {
        size_t topic, partition;
        model::tp tp;
        int32_t preferred;
    };
    std::vector<pending> waiting;
    std::vector<model::tp> asked;
    bool written = false;
    std::chrono::steady_clock::time_point deadline;
};

void election_check(std::shared_ptr<election_wait> w);

void election_poll(std::shared_ptr<election_wait> w) {
    cluster* cl = w->ctx->srv.cluster_member();
    if (w->written) {
        election_check(w);
        return;
    }
    // The request is one ZooKeeper write: off the core.
    auto outcome = std::make_shared<std::optional<error>>();
    auto busy = std::make_shared<bool>(false);
    w->ctx->srv.metadata_write(
        [cl, w, outcome, busy] {
            auto r = cl->request_preferred_election(w->asked);
            if (r) return;
            // An earlier request is still pending: ask again once the controller has taken it.
            if (r.error().is(replication::errc::node_exists)) {
                *busy = true;
            } else {
                *outcome = r.error();
            }
        },
        [w, outcome, busy] {
            if (!*busy) {
                w->written = true;
                if (*outcome) {
                    for (auto& p : w->waiting) {
                        auto& pr = w->resp.replica_election_results[p.topic].partition_result[p.partition];
                        pr.error_code = code(to_kafka_error(**outcome));
                        pr.error_message = (*outcome)->describe();
                    }
                    w->waiting.clear();
                }
            }
            election_check(w);
        });
}

void election_check(std::shared_ptr<election_wait> w) {
    cluster* cl = w->ctx->srv.cluster_member();
    auto view = cl->view();
    std::vector<election_wait::pending> still;
    for (auto& p : w->waiting) {
        auto t = view->topics->find(p.tp.topic);
        const auto* st = t == view->topics->end() ? nullptr
                                                  : &t->second.states[static_cast<size_t>(p.tp.partition())];
        if (st && *st && (*st)->leader == p.preferred) continue;  // done: error none
        still.push_back(p);
    }
    w->waiting = std::move(still);
    if (w->waiting.empty() || std::chrono::steady_clock::now() >= w->deadline) {
        for (auto& p : w->waiting) {
            auto& pr = w->resp.replica_election_results[p.topic].partition_result[p.partition];
            pr.error_code = code(kafka_error::request_timed_out);
            pr.error_message = "the preferred replica " + std::to_string(p.preferred) +
                               " did not take over in time";
        }
        w->ctx->respond(w->resp);
        return;
    }
    w->ctx->home.reactor().add_timer(std::chrono::milliseconds(100), [w] { election_poll(w); });
}

}  // namespace

void handle_elect_leaders(context_ptr ctx, protocol::any_request& any) {
    auto& req = std::get<protocol::elect_leaders_request>(any);
    server& srv = ctx->srv;
    if (!allowed_on_cluster(*ctx, sec::acl_operation::alter)) {
        protocol::elect_leaders_response resp;
        resp.error_code = code(kafka_error::cluster_authorization_failed);
        ctx->respond(resp);
        return;
    }
    auto w = std::make_shared<election_wait>();
    w->ctx = ctx;
    int8_t type = ctx->version() >= 1 ? req.election_type : 0;
    cluster* cl = srv.cluster_member();
    auto snap = srv.metadata().snapshot();
    // Null: every partition.
    std::vector<std::pair<std::string, std::vector<int32_t>>> wanted;
    if (!req.topic_partitions) {
        for (const auto& [name, t] : *snap) {
            std::vector<int32_t> ps;
            for (int32_t i = 0; i < t.partitions; ++i) ps.push_back(i);
            wanted.emplace_back(name, std::move(ps));
        }
    } else {
        for (const auto& t : *req.topic_partitions) wanted.emplace_back(t.topic, t.partitions);
    }
    auto view = cl ? cl->view() : nullptr;
    for (const auto& [topic, parts] : wanted) {
        protocol::elect_leaders_response::replica_election_result tr;
        tr.topic = topic;
        auto it = snap->find(topic);
        for (int32_t p : parts) {
            protocol::elect_leaders_response::partition_result_entry pr;
            pr.partition_id = p;
            pr.error_message = std::nullopt;
            if (it == snap->end() || p < 0 || p >= it->second.partitions) {
                pr.error_code = code(kafka_error::unknown_topic_or_partition);
                pr.error_message = "unknown partition " + topic + "-" + std::to_string(p);
            } else if (type != 0) {
                pr.error_code = code(kafka_error::invalid_request);
                pr.error_message = "only preferred elections (type 0) are served; unclean "
                                   "election follows unclean.leader.election.enable";
            } else if (!cl) {
                pr.error_code = code(kafka_error::election_not_needed);
                pr.error_message = "a single broker leads every partition";
            } else {
                const auto& replicas = it->second.replicas[static_cast<size_t>(p)];
                const auto& st = it->second.states[static_cast<size_t>(p)];
                int32_t preferred = replicas.empty() ? -1 : replicas.front();
                bool in_isr = st && std::find(st->isr.begin(), st->isr.end(), preferred) != st->isr.end();
                if (st && st->leader == preferred) {
                    pr.error_code = code(kafka_error::election_not_needed);
                    pr.error_message = "the preferred replica " + std::to_string(preferred) +
                                       " already leads";
                } else if (!in_isr || !view->live(preferred)) {
                    pr.error_code = code(kafka_error::preferred_leader_not_available);
                    pr.error_message = "the preferred replica " + std::to_string(preferred) +
                                       " is not live and in sync";
                } else {
                    w->waiting.push_back({w->resp.replica_election_results.size(),
                                          tr.partition_result.size(),
                                          {topic, model::partition_id(p)}, preferred});
                    w->asked.push_back({topic, model::partition_id(p)});
                }
            }
            tr.partition_result.push_back(std::move(pr));
        }
        w->resp.replica_election_results.push_back(std::move(tr));
    }
    if (w->waiting.empty()) {
        ctx->respond(w->resp);
        return;
    }
    w->deadline = std::chrono::steady_clock::now() +
                  std::chrono::milliseconds(std::clamp(req.timeout_ms, 100, 600000));
    election_poll(w);
}

}  // namespace sluice::broker

namespace sluice::broker {

void handle_alter_partition_reassignments(context_ptr ctx, protocol::any_request& any) {
    auto held = std::make_shared<protocol::alter_partition_reassignments_request>(
        std::move(std::get<protocol::alter_partition_reassignments_request>(any)));
    auto resp_ptr = std::make_shared<protocol::alter_partition_reassignments_response>();
    if (!allowed_on_cluster(*ctx, sec::acl_operation::alter)) {
        resp_ptr->error_code = code(kafka_error::cluster_authorization_failed);
        resp_ptr->error_message = std::nullopt;
        ctx->respond(*resp_ptr);
        return;
    }
    // The writes may block on ZooKeeper: off the core in cluster mode.
    ctx->srv.metadata_write([ctx, held, resp_ptr] {
    auto& resp = *resp_ptr;
    resp.error_message = std::nullopt;
    cluster* cl = ctx->srv.cluster_member();
    for (const auto& t : held->topics) {
        protocol::alter_partition_reassignments_response::reassignable_topic_response tr;
        tr.name = t.name;
        for (const auto& p : t.partitions) {
            protocol::alter_partition_reassignments_response::reassignable_partition_response pr;
            pr.partition_index = p.partition_index;
            pr.error_message = std::nullopt;
            if (cl == nullptr) {
                pr.error_code = code(kafka_error::invalid_replica_assignment);
                pr.error_message = "a single broker holds every replica; there is nowhere to move";
            } else {
                auto r = cl->request_reassignment({t.name, model::partition_id(p.partition_index)},
                                                  p.replicas);
                if (!r) {
                    pr.error_code = code(to_kafka_error(r.error()));
                    pr.error_message = r.error().describe();
                }
            }
            tr.partitions.push_back(std::move(pr));
        }
        resp.responses.push_back(std::move(tr));
    }
    }, [ctx, resp_ptr] { ctx->respond(*resp_ptr); });
}

void handle_list_partition_reassignments(context_ptr ctx, protocol::any_request& any) {
    auto& req = std::get<protocol::list_partition_reassignments_request>(any);
    protocol::list_partition_reassignments_response resp;
    resp.error_message = std::nullopt;
    if (!allowed_on_cluster(*ctx, sec::acl_operation::describe)) {
        resp.error_code = code(kafka_error::cluster_authorization_failed);
        ctx->respond(resp);
        return;
    }
    auto snap = ctx->srv.metadata().snapshot();
    auto add = [&](const replication::topic_metadata& t, const std::vector<int32_t>* only) {
        protocol::list_partition_reassignments_response::ongoing_topic_reassignment tr;
        tr.name = t.name;
        for (int32_t p = 0; p < t.partitions; ++p) {
            if (only && std::find(only->begin(), only->end(), p) == only->end()) continue;
            auto a = t.adding.find(p);
            auto r = t.removing.find(p);
            if (a == t.adding.end() && r == t.removing.end()) continue;
            protocol::list_partition_reassignments_response::ongoing_partition_reassignment pr;
            pr.partition_index = p;
            pr.replicas = t.replicas[static_cast<size_t>(p)];
            if (a != t.adding.end()) pr.adding_replicas = a->second;
            if (r != t.removing.end()) pr.removing_replicas = r->second;
            tr.partitions.push_back(std::move(pr));
        }
        if (!tr.partitions.empty()) resp.topics.push_back(std::move(tr));
    };
    if (!req.topics) {
        for (const auto& [name, t] : *snap) add(t, nullptr);
    } else {
        for (const auto& want : *req.topics) {
            auto it = snap->find(want.name);
            if (it != snap->end()) add(it->second, &want.partition_indexes);
        }
    }
    ctx->respond(resp);
}

}  // namespace sluice::broker

namespace sluice::broker {

namespace {
struct log_dir_entry {
    std::string dir;  // the log dir holding the partition directory
    model::tp tp;
    int64_t bytes = 0;
    int64_t lag = 0;  // a follower's distance to its leader's high watermark, as last told
};
}  // namespace

void handle_describe_log_dirs(context_ptr ctx, protocol::any_request& any) {
    auto req = std::make_shared<protocol::describe_log_dirs_request>(
        std::move(std::get<protocol::describe_log_dirs_request>(any)));
    server& srv = ctx->srv;
    if (!allowed_on_cluster(*ctx, sec::acl_operation::describe)) {
        protocol::describe_log_dirs_response resp;
        resp.error_code = code(kafka_error::cluster_authorization_failed);
        ctx->respond(resp);
        return;
    }
    auto collected = std::make_shared<std::vector<log_dir_entry>>();
    runtime::reactor* origin = runtime::reactor::local();
    srv.run_on_all(
        [req, collected, origin](shard& s) {
            std::vector<log_dir_entry> mine;
            s.for_each_partition([&](const partition& p) {
                if (req->topics) {
                    bool wanted = false;
                    for (const auto& t : *req->topics) {
                        if (t.topic != p.tp.topic) continue;
                        for (int32_t i : t.partitions) wanted |= i == p.tp.partition();
                    }
                    if (!wanted) return;
                }
                log_dir_entry e;
                e.dir = std::filesystem::path(p.log->dir()).parent_path().string();
                e.tp = p.tp;
                for (const auto& seg : p.log->closed_segments()) e.bytes += static_cast<int64_t>(seg.size_bytes);
                e.bytes += static_cast<int64_t>(p.log->active_segment().size_bytes);
                if (p.role == replica_role::follower) {
                    e.lag = std::max<int64_t>(0, p.follower_hw - p.log->log_end_offset()());
                }
                mine.push_back(std::move(e));
            });
            auto add = [collected, mine = std::move(mine)] {
                collected->insert(collected->end(), mine.begin(), mine.end());
            };
            if (runtime::reactor::local() == origin) {
                add();
            } else {
                origin->post(add);
            }
        },
        [ctx, collected] {
            // Each core's entries were posted here before its completion was: all are in.
            {
                protocol::describe_log_dirs_response resp;
                for (const auto& dir : ctx->srv.config().log_dirs()) {
                    protocol::describe_log_dirs_response::describe_log_dirs_result r;
                    r.log_dir = dir;
                    std::error_code ec;
                    auto space = std::filesystem::space(dir, ec);
                    r.total_bytes = ec ? -1 : static_cast<int64_t>(space.capacity);
                    r.usable_bytes = ec ? -1 : static_cast<int64_t>(space.available);
                    if (ec || ctx->srv.log_dirs().offline_reason(dir)) {
                        r.error_code = code(kafka_error::kafka_storage_error);
                    }
                    std::map<std::string, std::vector<const log_dir_entry*>> by_topic;
                    for (const auto& e : *collected) {
                        if (std::filesystem::path(e.dir) == std::filesystem::path(dir)) {
                            by_topic[e.tp.topic].push_back(&e);
                        }
                    }
                    for (auto& [name, es] : by_topic) {
                        protocol::describe_log_dirs_response::describe_log_dirs_topic t;
                        t.name = name;
                        std::sort(es.begin(), es.end(), [](auto* a, auto* b) {
                            return a->tp.partition() < b->tp.partition();
                        });
                        for (const auto* e : es) {
                            protocol::describe_log_dirs_response::describe_log_dirs_partition p;
                            p.partition_index = e->tp.partition();
                            p.partition_size = e->bytes;
                            p.offset_lag = e->lag;
                            p.is_future_key = false;
                            t.partitions.push_back(p);
                        }
                        r.topics.push_back(std::move(t));
                    }
                    resp.results.push_back(std::move(r));
                }
                ctx->respond(resp);
            }
        });
}

}  // namespace sluice::broker
