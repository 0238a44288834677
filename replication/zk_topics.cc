#include "replication/zk_topics.h"

#include <algorithm>
#include <charconv>
#include <map>
#include <random>
#include <set>

#include "base/log.h"
#include "replication/json.h"

namespace sluice::replication {

namespace {

constexpr const char* topics_path = "/brokers/topics";
constexpr const char* configs_path = "/config/topics";
constexpr const char* cluster_id_path = "/cluster/id";
constexpr const char* shutdown_path = "/sluice/controlled_shutdown";
constexpr const char* offline_path = "/sluice/offline_replicas";
constexpr const char* controller_epoch_path = "/controller_epoch";
constexpr const char* preferred_election_path = "/admin/preferred_replica_election";

std::string topic_path(const std::string& t) { return std::string(topics_path) + "/" + t; }
std::string config_path(const std::string& t) { return std::string(configs_path) + "/" + t; }

std::optional<int32_t> parse_int(const std::string& s) {
    int32_t v = 0;
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc() || p != s.data() + s.size()) return std::nullopt;
    return v;
}

// A znode's data, or nullopt when it does not exist.
result<std::optional<zk_node>> get_optional(zk_client& zk, const std::string& path) {
    auto n = zk.get(path);
    if (n) return std::optional<zk_node>(std::move(*n));
    if (n.error().is(errc::no_node)) return std::optional<zk_node>();
    return n.error();
}

result<void> ensure_path(zk_client& zk, const std::string& path) {
    auto made = zk.create_recursive(path, "");
    if (made || made.error().is(errc::node_exists)) return ok();
    return made.error();
}

uint32_t random_seed() {
    static thread_local std::mt19937 rng{std::random_device{}()};
    return rng();
}

std::vector<assignable_broker> assignable(const cluster_view& view) {
    std::vector<assignable_broker> out;
    for (const auto& b : view.brokers) {
        if (!view.shutting_down.count(b.id)) out.push_back({b.id, b.rack});
    }
    return out;
}

}  // namespace

result<void> write_offline_replicas(zk_client& zk, int32_t broker, const replica_set& partitions) {
    std::string path = std::string(offline_path) + "/" + std::to_string(broker);
    std::string data = encode_offline_replicas(partitions);
    auto st = zk.exists(path);
    if (!st) return st.error();
    if (*st && (*st)->ephemeral_owner != zk.session_id()) {
        // Left by this broker's previous session, which has not expired yet: replace it so it
        // does not vanish with that session.
        if (auto r = zk.remove(path); !r && !r.error().is(errc::no_node)) return r;
        st = std::optional<zk_stat>{};
    }
    if (*st) {
        auto set = zk.set(path, data);
        if (!set) return set.error();
        return ok();
    }
    auto made = zk.create_recursive(path, data, zk_mode::ephemeral);
    if (!made) return made.error();
    return ok();
}

std::string partition_state_path(const std::string& topic, int32_t partition) {
    return topic_path(topic) + "/partitions/" + std::to_string(partition) + "/state";
}

result<std::string> ensure_cluster_layout(zk_client& zk) {
    for (const char* p : {"/brokers/ids", topics_path, configs_path, shutdown_path, offline_path,
                          "/admin"}) {
        if (auto r = ensure_path(zk, p); !r) return r.error();
    }
    for (int attempt = 0; attempt < 3; ++attempt) {
        auto cur = get_optional(zk, cluster_id_path);
        if (!cur) return cur.error();
        if (*cur) {
            auto doc = json::parse((*cur)->data);
            const json::value* id = doc ? doc->get("id") : nullptr;
            if (id == nullptr || id->as_string() == nullptr) {
                return error(errc::store_corrupt, std::string(cluster_id_path) + ": no id");
            }
            return *id->as_string();
        }
        std::string id = topic_id_base64(random_topic_id());
        auto made = zk.create_recursive(cluster_id_path,
                                        "{\"version\":\"1\",\"id\":" + json::quote(id) + "}");
        if (made) return id;
        if (!made.error().is(errc::node_exists)) return made.error();
    }
    return error(errc::store_corrupt, "cannot read or create /cluster/id");
}

result<cluster_view> read_cluster(zk_client& zk) {
    cluster_view v;
    auto brokers = read_live_brokers(zk);
    if (!brokers) return brokers.error();
    v.brokers = std::move(brokers->brokers);
    if (auto c = get_optional(zk, "/controller"); !c) {
        return c.error();
    } else if (*c) {
        auto doc = json::parse((*c)->data);
        const json::value* id = doc ? doc->get("brokerid") : nullptr;
        if (id != nullptr && id->as_int() != nullptr) v.controller_id = static_cast<int32_t>(*id->as_int());
    }
    if (auto e = get_optional(zk, controller_epoch_path); !e) {
        return e.error();
    } else if (*e) {
        v.controller_epoch = parse_int((*e)->data).value_or(0);
    }
    if (auto down = zk.get_children(shutdown_path); down) {
        for (const auto& name : *down) {
            if (auto id = parse_int(name)) v.shutting_down.insert(*id);
        }
    } else if (!down.error().is(errc::no_node)) {
        return down.error();
    }
    if (auto offline = zk.get_children(offline_path); offline) {
        for (const auto& name : *offline) {
            auto id = parse_int(name);
            auto node = get_optional(zk, std::string(offline_path) + "/" + name);
            if (!id || !node || !*node) continue;  // gone meanwhile (its session ended)
            auto parts = decode_offline_replicas((*node)->data);
            if (parts) v.offline_replicas[*id] = std::move(*parts);
        }
    } else if (!offline.error().is(errc::no_node)) {
        return offline.error();
    }
    if (auto id = get_optional(zk, cluster_id_path); id && *id) {
        auto doc = json::parse((**id).data);
        if (const json::value* s = doc ? doc->get("id") : nullptr; s && s->as_string()) {
            v.cluster_id = *s->as_string();
        }
    }
    auto names = zk.get_children(topics_path);
    if (!names && !names.error().is(errc::no_node)) return names.error();
    auto topics = std::make_shared<topic_map>();
    for (const auto& name : names ? *names : std::vector<std::string>{}) {
        auto node = get_optional(zk, topic_path(name));
        if (!node) return node.error();
        if (!*node) continue;  // deleted meanwhile
        auto tz = decode_topic_znode((*node)->data);
        if (!tz) {
            log::warn("replication", topic_path(name), " is unreadable, topic skipped: ",
                      tz.error().describe());
            continue;
        }
        topic_metadata t;
        t.name = name;
        t.id = tz->id;
        t.partitions = static_cast<int32_t>(tz->replicas.size());
        t.replicas = std::move(tz->replicas);
        t.adding = std::move(tz->adding);
        t.removing = std::move(tz->removing);
        if (auto cfg = get_optional(zk, config_path(name)); !cfg) {
            return cfg.error();
        } else if (*cfg) {
            auto c = decode_topic_config((*cfg)->data);
            if (c) {
                t.configs = std::move(*c);
            } else {
                log::warn("replication", config_path(name), " is unreadable, defaults used: ",
                          c.error().describe());
            }
        }
        for (int32_t p = 0; p < t.partitions; ++p) {
            auto st = get_optional(zk, partition_state_path(name, p));
            if (!st) return st.error();
            std::optional<partition_state> state;
            if (*st) {
                auto s = decode_partition_state((*st)->data, (*st)->stat.version);
                if (s) {
                    state = std::move(*s);
                } else {
                    log::warn("replication", partition_state_path(name, p),
                              " is unreadable: ", s.error().describe());
                }
            }
            t.states.push_back(std::move(state));
        }
        (*topics)[name] = std::move(t);
    }
    v.topics = std::move(topics);
    return v;
}

result<topic_metadata> create_topic_znodes(zk_client& zk, const cluster_view& view,
                                           const topic_spec& spec) {
    if (auto r = validate_topic_name(spec.name); !r) return r.error();
    std::vector<std::vector<int32_t>> replicas = spec.assignment;
    if (!replicas.empty()) {
        size_t rf = replicas.front().size();
        for (size_t p = 0; p < replicas.size(); ++p) {
            const auto& r = replicas[p];
            std::set<int32_t> distinct(r.begin(), r.end());
            std::string where = "partition " + std::to_string(p) + ": ";
            if (r.empty() || r.size() != rf) {
                return error(errc::invalid_replica_assignment,
                             where + "every partition needs the same, non-zero number of replicas");
            }
            if (distinct.size() != r.size()) {
                return error(errc::invalid_replica_assignment, where + "a broker appears twice");
            }
            for (int32_t b : r) {
                if (!view.live(b)) {
                    return error(errc::invalid_replica_assignment,
                                 where + "broker " + std::to_string(b) + " is not registered");
                }
            }
        }
    } else {
        if (spec.partitions <= 0 || spec.partitions > 100000) {
            return error(errc::invalid_partitions, std::to_string(spec.partitions));
        }
        int32_t rf = spec.replication_factor < 0 ? 1 : spec.replication_factor;
        auto a = assign_replicas(assignable(view), 0, spec.partitions, rf, random_seed());
        if (!a) return a.error();
        replicas = std::move(*a);
    }
    auto exists = zk.exists(topic_path(spec.name));
    if (!exists) return exists.error();
    if (*exists) return error(errc::topic_exists, spec.name);
    // The config first, so that no broker ever sees the topic without its overrides.
    if (auto r = set_topic_config_znode(zk, spec.name, spec.configs); !r) return r.error();
    topic_metadata t;
    t.name = spec.name;
    t.id = random_topic_id();
    t.partitions = static_cast<int32_t>(replicas.size());
    t.configs = spec.configs;
    t.replicas = replicas;
    t.states.resize(replicas.size());
    auto made = zk.create_recursive(topic_path(spec.name), encode_topic_znode(t.id, replicas));
    if (!made) {
        if (made.error().is(errc::node_exists)) return error(errc::topic_exists, spec.name);
        return made.error();
    }
    return t;
}

result<void> delete_topic_znodes(zk_client& zk, const std::string& name) {
    auto node = zk.exists(topic_path(name));
    if (!node) return node.error();
    if (!*node) return error(errc::unknown_topic, name);
    std::vector<zk_op> ops;
    std::string parts = topic_path(name) + "/partitions";
    if (auto children = zk.get_children(parts); children) {
        for (const auto& p : *children) {
            std::string dir = parts + "/" + p;
            if (auto sub = zk.get_children(dir); sub) {
                for (const auto& c : *sub) ops.push_back(zk_op::remove(dir + "/" + c));
            }
            ops.push_back(zk_op::remove(dir));
        }
        ops.push_back(zk_op::remove(parts));
    } else if (!children.error().is(errc::no_node)) {
        return children.error();
    }
    ops.push_back(zk_op::remove(topic_path(name)));
    if (auto cfg = zk.exists(config_path(name)); cfg && *cfg) ops.push_back(zk_op::remove(config_path(name)));
    if (auto r = zk.multi(ops); !r) return r.error();
    return ok();
}

result<void> add_partitions_znodes(zk_client& zk, const cluster_view& view, const std::string& name,
                                   int32_t partitions) {
    auto node = zk.get(topic_path(name));
    if (!node) return node.error().is(errc::no_node) ? error(errc::unknown_topic, name) : node.error();
    auto tz = decode_topic_znode(node->data);
    if (!tz) return tz.error();
    int32_t have = static_cast<int32_t>(tz->replicas.size());
    if (partitions <= have) {
        return error(errc::invalid_partitions,
                     "topic " + name + " has " + std::to_string(have) + " partitions already");
    }
    auto more = assign_replicas(assignable(view), have, partitions - have,
                                static_cast<int32_t>(tz->replicas.front().size()), random_seed());
    if (!more) return more.error();
    tz->replicas.insert(tz->replicas.end(), more->begin(), more->end());
    auto set = zk.set(topic_path(name), encode_topic_znode(tz->id, tz->replicas, tz->adding, tz->removing),
                      node->stat.version);
    if (!set) return set.error();
    return ok();
}

result<void> write_reassignment(zk_client& zk, const cluster_view& view, const model::tp& tp,
                                const std::optional<std::vector<int32_t>>& target) {
    auto node = zk.get(topic_path(tp.topic));
    if (!node) {
        return node.error().is(errc::no_node) ? error(errc::unknown_topic, tp.topic) : node.error();
    }
    auto tz = decode_topic_znode(node->data);
    if (!tz) return tz.error();
    int32_t p = tp.partition();
    if (p < 0 || p >= static_cast<int32_t>(tz->replicas.size())) {
        return error(errc::unknown_topic, tp.dir_name());
    }
    auto& replicas = tz->replicas[static_cast<size_t>(p)];
    // The replicas before any move in progress.
    std::vector<int32_t> original;
    const auto& adding = tz->adding[p];
    for (int32_t r : replicas) {
        if (std::find(adding.begin(), adding.end(), r) == adding.end()) original.push_back(r);
    }
    bool pending = !tz->adding[p].empty() || !tz->removing[p].empty();
    if (!target) {
        if (!pending) {
            return error(errc::no_reassignment, "no reassignment of " + tp.dir_name() + " is in progress");
        }
        replicas = original;
        tz->adding.erase(p);
        tz->removing.erase(p);
    } else {
        std::set<int32_t> seen;
        if (target->empty()) {
            return error(errc::invalid_replica_assignment, "an empty replica list for " + tp.dir_name());
        }
        for (int32_t r : *target) {
            if (!seen.insert(r).second) {
                return error(errc::invalid_replica_assignment,
                             "broker " + std::to_string(r) + " named twice for " + tp.dir_name());
            }
            if (!view.live(r)) {
                return error(errc::invalid_replica_assignment,
                             "broker " + std::to_string(r) + " is not registered");
            }
        }
        std::vector<int32_t> add, remove, full = *target;
        for (int32_t r : *target) {
            if (std::find(original.begin(), original.end(), r) == original.end()) add.push_back(r);
        }
        for (int32_t r : original) {
            if (!seen.count(r)) {
                remove.push_back(r);
                full.push_back(r);
            }
        }
        replicas = full;
        if (add.empty() && remove.empty()) {
            tz->adding.erase(p);
            tz->removing.erase(p);
        } else {
            tz->adding[p] = add;
            tz->removing[p] = remove;
        }
    }
    auto set = zk.set(topic_path(tp.topic),
                      encode_topic_znode(tz->id, tz->replicas, tz->adding, tz->removing),
                      node->stat.version);
    if (!set) return set.error();
    log::info("replication", "reassignment of ", tp.dir_name(), ": replicas now ", [&] {
        std::string out;
        for (int32_t r : replicas) out += (out.empty() ? "" : ",") + std::to_string(r);
        return "[" + out + "]";
    }(), target ? "" : " (cancelled)");
    return ok();
}

result<size_t> controller_reassign(zk_client& zk, const cluster_view& view,
                                   const controller_identity& me) {
    size_t written = 0;
    for (const auto& [name, t] : *view.topics) {
        std::optional<topic_znode> tz;
        int32_t version = -1;
        for (int32_t p = 0; p < t.partitions; ++p) {
            const auto& st = t.states[static_cast<size_t>(p)];
            const auto& replicas = t.replicas[static_cast<size_t>(p)];
            auto a = t.adding.find(p);
            auto r = t.removing.find(p);
            bool pending = (a != t.adding.end() && !a->second.empty()) ||
                           (r != t.removing.end() && !r->second.empty());
            if (!st || st->leader < 0) continue;
            std::vector<int32_t> target;
            for (int32_t id : replicas) {
                if (r == t.removing.end() ||
                    std::find(r->second.begin(), r->second.end(), id) == r->second.end()) {
                    target.push_back(id);
                }
            }
            auto in = [](const std::vector<int32_t>& v, int32_t id) {
                return std::find(v.begin(), v.end(), id) != v.end();
            };
            bool stray_isr = false;  // ISR members no longer assigned (a cancelled move)
            for (int32_t id : st->isr) stray_isr |= !in(replicas, id);
            if (!pending && !stray_isr) continue;
            bool caught_up = true;
            for (int32_t id : target) caught_up &= in(st->isr, id) && view.live(id);
            if (pending && !caught_up) continue;  // the new replicas are still copying
            partition_state next = *st;
            next.controller_epoch = me.epoch;
            next.isr.clear();
            for (int32_t id : st->isr) {
                if (in(target, id)) next.isr.push_back(id);
            }
            if (!in(target, st->leader)) {
                next.leader = -1;
                for (int32_t id : target) {
                    if (in(next.isr, id) && view.live(id) && !view.shutting_down.count(id)) {
                        next.leader = id;
                        break;
                    }
                }
                if (next.leader < 0) continue;
                next.leader_epoch = st->leader_epoch + 1;
            }
            std::vector<zk_op> ops{zk_op::check(controller_epoch_path, me.epoch_version),
                                   zk_op::set(partition_state_path(name, p),
                                              encode_partition_state(next), st->version)};
            if (pending) {
                if (!tz) {
                    auto node = zk.get(topic_path(name));
                    if (!node) return node.error();
                    auto d = decode_topic_znode(node->data);
                    if (!d) return d.error();
                    tz = std::move(*d);
                    version = node->stat.version;
                }
                tz->replicas[static_cast<size_t>(p)] = target;
                tz->adding.erase(p);
                tz->removing.erase(p);
                ops.push_back(zk_op::set(topic_path(name),
                                         encode_topic_znode(tz->id, tz->replicas, tz->adding,
                                                            tz->removing),
                                         version));
            }
            auto w = zk.multi(ops);
            if (!w) {
                auto check = zk.get(controller_epoch_path);
                if (check && check->stat.version != me.epoch_version) {
                    return error(errc::bad_version, "controller epoch superseded");
                }
                tz.reset();  // stale: the next pass rereads
                continue;
            }
            if (pending) version = (*w)[2].stat.version;
            log::info("replication", "controller: reassignment of ", name, "-", p,
                      pending ? " completed" : " cleaned up", "; leader ", next.leader, " epoch ",
                      next.leader_epoch);
            ++written;
        }
    }
    return written;
}

result<void> set_topic_config_znode(zk_client& zk, const std::string& name,
                                    const std::map<std::string, std::string>& configs) {
    std::string body = encode_topic_config(configs);
    auto set = zk.set(config_path(name), body);
    if (set) return ok();
    if (!set.error().is(errc::no_node)) return set.error();
    auto made = zk.create_recursive(config_path(name), body);
    if (!made) return made.error();
    return ok();
}

result<controller_identity> read_controller_identity(zk_client& zk) {
    auto node = zk.get(controller_epoch_path);
    if (!node) return node.error();
    controller_identity me;
    me.epoch = parse_int(node->data).value_or(0);
    me.epoch_version = node->stat.version;
    return me;
}

result<void> write_preferred_election(zk_client& zk, const std::vector<model::tp>& tps) {
    std::string parts;
    for (const auto& tp : tps) {
        parts += std::string(parts.empty() ? "" : ",") + "{\"topic\":" + json::quote(tp.topic) +
                 ",\"partition\":" + std::to_string(tp.partition()) + "}";
    }
    auto made = zk.create_recursive(preferred_election_path,
                                    "{\"version\":1,\"partitions\":[" + parts + "]}");
    if (!made) return made.error();
    return ok();
}

result<std::optional<std::vector<model::tp>>> read_preferred_election(zk_client& zk) {
    auto node = get_optional(zk, preferred_election_path);
    if (!node) return node.error();
    if (!*node) return std::optional<std::vector<model::tp>>();
    std::vector<model::tp> out;
    auto doc = json::parse((*node)->data);
    const json::value* parts = doc ? doc->get("partitions") : nullptr;
    if (parts != nullptr && parts->as_array() != nullptr) {
        for (const auto& e : *parts->as_array()) {
            const json::value* t = e.get("topic");
            const json::value* p = e.get("partition");
            if (t && t->as_string() && p && p->as_int()) {
                out.push_back({*t->as_string(), model::partition_id(static_cast<int32_t>(*p->as_int()))});
            }
        }
    } else {
        log::warn("replication", preferred_election_path, " does not decode; ignored");
    }
    return std::optional<std::vector<model::tp>>(std::move(out));
}

result<void> clear_preferred_election(zk_client& zk) {
    auto r = zk.remove(preferred_election_path);
    if (!r && !r.error().is(errc::no_node)) return r.error();
    return ok();
}

std::vector<model::tp> imbalanced_partitions(const cluster_view& view, int32_t imbalance_percent) {
    // preferred broker -> (partitions it should lead, those it does not)
    std::map<int32_t, std::pair<int, std::vector<model::tp>>> by_broker;
    for (const auto& [name, t] : *view.topics) {
        for (int32_t p = 0; p < t.partitions; ++p) {
            const auto& replicas = t.replicas[static_cast<size_t>(p)];
            const auto& st = t.states[static_cast<size_t>(p)];
            if (replicas.empty() || !st) continue;
            int32_t preferred = replicas.front();
            auto& entry = by_broker[preferred];
            ++entry.first;
            bool in_isr = std::find(st->isr.begin(), st->isr.end(), preferred) != st->isr.end();
            if (st->leader != preferred && in_isr && view.live(preferred) &&
                !view.shutting_down.count(preferred)) {
                entry.second.push_back({name, model::partition_id(p)});
            }
        }
    }
    std::vector<model::tp> out;
    for (auto& [broker, entry] : by_broker) {
        if (entry.first == 0) continue;
        if (static_cast<int64_t>(entry.second.size()) * 100 >
            static_cast<int64_t>(imbalance_percent) * entry.first) {
            out.insert(out.end(), entry.second.begin(), entry.second.end());
        }
    }
    return out;
}

result<size_t> controller_pass(zk_client& zk, const cluster_view& view,
                               const controller_identity& me, election_rules rules,
                               const std::set<model::tp>* only) {
    std::set<int32_t> live;
    for (const auto& b : view.brokers) live.insert(b.id);
    size_t written = 0;
    for (const auto& [name, t] : *view.topics) {
        for (int32_t p = 0; p < t.partitions; ++p) {
            if (only != nullptr && !only->count({name, model::partition_id(p)})) continue;
            const auto& current = t.states[static_cast<size_t>(p)];
            // A replica in a failed log dir counts as dead for its partition.
            const std::set<int32_t>* usable = &live;
            std::set<int32_t> without_offline;
            for (const auto& [broker, parts] : view.offline_replicas) {
                if (!parts.count({name, p})) continue;
                if (usable == &live) without_offline = live;
                without_offline.erase(broker);
                usable = &without_offline;
            }
            auto next = decide_partition(t.replicas[static_cast<size_t>(p)], current, *usable,
                                         view.shutting_down, me.epoch, rules);
            if (!next) continue;
            std::string path = partition_state_path(name, p);
            std::vector<zk_op> ops{zk_op::check(controller_epoch_path, me.epoch_version)};
            if (current) {
                ops.push_back(zk_op::set(path, encode_partition_state(*next), current->version));
            } else {
                if (auto r = ensure_path(zk, topic_path(name) + "/partitions/" + std::to_string(p)); !r) {
                    return r.error();
                }
                ops.push_back(zk_op::create(path, encode_partition_state(*next)));
            }
            auto r = zk.multi(ops);
            if (!r) {
                // The epoch check is op 0: a failure there means a newer controller exists.
                auto check = zk.get(controller_epoch_path);
                if (check && check->stat.version != me.epoch_version) {
                    return error(errc::bad_version,
                                 "controller epoch " + std::to_string(me.epoch) + " was superseded");
                }
                if (r.error().is(errc::bad_version) || r.error().is(errc::node_exists) ||
                    r.error().is(errc::no_node)) {
                    continue;  // the view was stale for this partition; the next pass rereads
                }
                return r.error();
            }
            log::info("replication", "controller: ", name, "-", p, " leader ", next->leader,
                      " epoch ", next->leader_epoch, " isr ", [&] {
                          std::string s;
                          for (int32_t i : next->isr) s += (s.empty() ? "" : ",") + std::to_string(i);
                          return "[" + s + "]";
                      }());
            ++written;
        }
    }
    return written;
}

result<partition_state> write_partition_state(zk_client& zk, const model::tp& tp,
                                              const partition_state& next) {
    auto set = zk.set(partition_state_path(tp.topic, tp.partition()), encode_partition_state(next),
                      next.version);
    if (!set) return set.error();
    partition_state out = next;
    out.version = set->version;
    return out;
}

}  // namespace sluice::replication
