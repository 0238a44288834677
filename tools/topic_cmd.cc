// `sluice topic create | list | describe | alter-config | add-partitions | delete`: what operators
// reach for in kafka-topics.sh and kafka-configs.sh, over CreateTopics, Metadata,
// DescribeConfigs, IncrementalAlterConfigs, CreatePartitions and DeleteTopics.

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "tools/commands.h"

namespace sluice::tools {

namespace {

constexpr int8_t resource_type_topic = 2;
constexpr int32_t admin_timeout_ms = 30000;

void usage() {
    std::fprintf(stderr,
                 "usage: sluice topic <action> [--bootstrap-server host:port] ...\n"
                 "  create NAME [--partitions N] [--replication-factor R] [--config k=v ...]\n"
                 "  list\n"
                 "  describe NAME\n"
                 "  alter-config NAME [--set k=v ...] [--delete k ...]\n"
                 "  add-partitions NAME --partitions N\n"
                 "  delete NAME\n"
                 "  reassign NAME --partition P (--replicas 1,2,3 | --cancel)\n"
                 "  reassignments        the partition moves in progress\n");
}

std::string join_ids(const std::vector<int32_t>& ids) {
    std::string s;
    for (int32_t id : ids) s += (s.empty() ? "" : ",") + std::to_string(id);
    return s;
}

std::string uuid_text(const protocol::uuid& u) {
    // Kafka shows topic ids as URL-safe base64 without padding.
    static const char* alphabet =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    std::string out;
    uint32_t acc = 0;
    int bits = 0;
    for (std::byte b : u.bytes) {
        acc = (acc << 8) | std::to_integer<uint32_t>(b);
        bits += 8;
        while (bits >= 6) {
            bits -= 6;
            out += alphabet[(acc >> bits) & 63];
        }
    }
    if (bits > 0) out += alphabet[(acc << (6 - bits)) & 63];
    return out;
}

const char* config_source_name(int8_t s) {
    switch (s) {
        case 1:
            return "DYNAMIC_TOPIC_CONFIG";
        case 2:
            return "DYNAMIC_BROKER_CONFIG";
        case 3:
            return "DYNAMIC_DEFAULT_BROKER_CONFIG";
        case 4:
            return "STATIC_BROKER_CONFIG";
        case 5:
            return "DEFAULT_CONFIG";
        case 6:
            return "DYNAMIC_BROKER_LOGGER_CONFIG";
        default:
            return "UNKNOWN";
    }
}

int create(client& c, const std::string& name, const args& a) {
    auto partitions = a.integer("partitions", -1, -1, 1000000);
    auto rf = a.integer("replication-factor", -1, -1, 32767);
    if (!partitions) return report("topic create", partitions.error());
    if (!rf) return report("topic create", rf.error());
    protocol::create_topics_request req;
    req.timeout_ms = admin_timeout_ms;
    auto& t = req.topics.emplace_back();
    t.name = name;
    t.num_partitions = static_cast<int32_t>(*partitions);
    t.replication_factor = static_cast<int16_t>(*rf);
    for (const auto& kv : a.all("config")) {
        auto p = parse_key_value(kv);
        if (!p) return report("topic create", p.error());
        auto& cfg = t.configs.emplace_back();
        cfg.name = p->first;
        cfg.value = p->second;
    }
    auto ctl = c.controller();
    if (!ctl) return report("topic create", ctl.error());
    // Brokers before CreateTopics v4 need explicit counts; -1 ("broker default") came with v4.
    int16_t v = (*ctl)->version<protocol::create_topics_api>();
    if (v >= 0 && v < 4 && (*partitions < 0 || *rf < 0)) {
        return report(
            "topic create",
            error(errc::bad_argument, "this broker needs --partitions and --replication-factor"));
    }
    auto resp = (*ctl)->call<protocol::create_topics_api>(req);
    if (!resp) return report("topic create", resp.error());
    for (const auto& r : resp->topics) {
        if (r.error_code != 0) {
            return report("topic create",
                          kafka_failure(r.error_code, r.error_message.value_or("")));
        }
    }
    std::printf("Created topic %s.\n", name.c_str());
    return exit_ok;
}

int list(client& c, const args& a) {
    auto md = c.metadata(std::nullopt);
    if (!md) return report("topic list", md.error());
    bool internal = a.has("include-internal");
    for (const auto& [name, t] : (*md)->topics) {
        if (t.internal && !internal) continue;
        std::printf("%s\n", name.c_str());
    }
    return exit_ok;
}

// The topic's configs, non-default ones marked with '*' and their source.
int describe_configs(client& c, const std::string& name) {
    protocol::describe_configs_request req;
    auto& res = req.resources.emplace_back();
    res.resource_type = resource_type_topic;
    res.resource_name = name;
    res.configuration_keys.reset();  // all of them
    auto resp = c.any().call<protocol::describe_configs_api>(req);
    if (!resp) return report("topic describe", resp.error());
    int16_t v = c.any().version<protocol::describe_configs_api>();
    for (const auto& r : resp->results) {
        if (r.error_code != 0) {
            return report("topic describe",
                          kafka_failure(r.error_code, r.error_message.value_or("")));
        }
        auto configs = r.configs;
        std::sort(configs.begin(), configs.end(),
                  [](const auto& x, const auto& y) { return x.name < y.name; });
        std::printf("Configs (* = not the default):\n");
        for (const auto& cfg : configs) {
            bool is_default = v == 0 ? cfg.is_default : cfg.config_source == 5;
            std::string value = cfg.is_sensitive ? "(sensitive)" : cfg.value.value_or("(null)");
            if (is_default) {
                std::printf("    %s=%s\n", cfg.name.c_str(), value.c_str());
            } else {
                std::printf("  * %s=%s  (%s)\n", cfg.name.c_str(), value.c_str(),
                            v == 0 ? "non-default" : config_source_name(cfg.config_source));
            }
        }
    }
    return exit_ok;
}

int describe(client& c, const std::string& name) {
    auto t = c.topic(name, true);
    if (!t) return report("topic describe", t.error());
    const topic_info& ti = **t;
    size_t rf = ti.partitions.empty() ? 0 : ti.partitions.front().replicas.size();
    std::printf("Topic: %s\tTopicId: %s\tPartitionCount: %zu\tReplicationFactor: %zu\n",
                ti.name.c_str(), uuid_text(ti.id).c_str(), ti.partitions.size(), rf);
    for (const auto& p : ti.partitions) {
        std::printf("\tTopic: %s\tPartition: %d\tLeader: %d\tReplicas: %s\tIsr: %s",
                    ti.name.c_str(), p.partition, p.leader, join_ids(p.replicas).c_str(),
                    join_ids(p.isr).c_str());
        if (!p.offline.empty()) std::printf("\tOffline: %s", join_ids(p.offline).c_str());
        if (p.error_code != 0) std::printf("\tError: %s", kafka_error_name(p.error_code).c_str());
        std::printf("\n");
    }
    return describe_configs(c, name);
}

int alter_config(client& c, const std::string& name, const args& a) {
    protocol::incremental_alter_configs_request req;
    auto& res = req.resources.emplace_back();
    res.resource_type = resource_type_topic;
    res.resource_name = name;
    for (const auto& kv : a.all("set")) {
        auto p = parse_key_value(kv);
        if (!p) return report("topic alter-config", p.error());
        auto& cfg = res.configs.emplace_back();
        cfg.name = p->first;
        cfg.config_operation = 0;  // SET
        cfg.value = p->second;
    }
    for (const auto& k : a.all("delete")) {
        auto& cfg = res.configs.emplace_back();
        cfg.name = k;
        cfg.config_operation = 1;  // DELETE
        cfg.value.reset();
    }
    if (res.configs.empty()) {
        return report("topic alter-config", error(errc::bad_argument,
                                                  "nothing to change: "
                                                  "give --set k=v or --delete k"));
    }
    auto resp = c.any().call<protocol::incremental_alter_configs_api>(req);
    if (!resp) return report("topic alter-config", resp.error());
    for (const auto& r : resp->responses) {
        if (r.error_code != 0) {
            return report("topic alter-config",
                          kafka_failure(r.error_code, r.error_message.value_or("")));
        }
    }
    std::printf("Updated the configs of topic %s.\n", name.c_str());
    return exit_ok;
}

int add_partitions(client& c, const std::string& name, const args& a) {
    if (!a.has("partitions")) {
        return report("topic add-partitions",
                      error(errc::bad_argument, "--partitions N (the new total) is required"));
    }
    auto n = a.integer("partitions", 0, 1, 1000000);
    if (!n) return report("topic add-partitions", n.error());
    protocol::create_partitions_request req;
    req.timeout_ms = admin_timeout_ms;
    auto& t = req.topics.emplace_back();
    t.name = name;
    t.count = static_cast<int32_t>(*n);
    t.assignments.reset();
    auto ctl = c.controller();
    if (!ctl) return report("topic add-partitions", ctl.error());
    auto resp = (*ctl)->call<protocol::create_partitions_api>(req);
    if (!resp) return report("topic add-partitions", resp.error());
    for (const auto& r : resp->results) {
        if (r.error_code != 0) {
            return report("topic add-partitions",
                          kafka_failure(r.error_code, r.error_message.value_or("")));
        }
    }
    std::printf("Topic %s now has %lld partitions.\n", name.c_str(), static_cast<long long>(*n));
    return exit_ok;
}

int remove(client& c, const std::string& name) {
    protocol::delete_topics_request req;
    req.timeout_ms = admin_timeout_ms;
    auto ctl = c.controller();
    if (!ctl) return report("topic delete", ctl.error());
    int16_t v = (*ctl)->version<protocol::delete_topics_api>();
    if (v >= 6) {
        auto& t = req.topics.emplace_back();
        t.name = name;
    } else {
        req.topic_names.push_back(name);
    }
    auto resp = (*ctl)->call<protocol::delete_topics_api>(req);
    if (!resp) return report("topic delete", resp.error());
    for (const auto& r : resp->responses) {
        if (r.error_code != 0) {
            return report(
                "topic delete",
                kafka_failure(r.error_code, r.error_message.value_or("topic '" + name + "'")));
        }
    }
    std::printf("Deleted topic %s.\n", name.c_str());
    return exit_ok;
}

int reassign(client& c, const std::string& name, const args& a) {
    auto part = a.integer("partition", -1, 0, 1 << 30);
    if (!part || *part < 0) {
        return report("topic reassign", part ? error(errc::bad_argument, "--partition P is needed")
                                              : part.error());
    }
    protocol::alter_partition_reassignments_request req;
    req.timeout_ms = admin_timeout_ms;
    protocol::alter_partition_reassignments_request::reassignable_topic t;
    t.name = name;
    protocol::alter_partition_reassignments_request::reassignable_partition p;
    p.partition_index = static_cast<int32_t>(*part);
    if (!a.has("cancel")) {
        if (!a.has("replicas")) {
            return report("topic reassign", error(errc::bad_argument, "--replicas or --cancel"));
        }
        std::vector<int32_t> ids;
        std::string list = a.get_or("replicas", "");
        size_t at = 0;
        while (at <= list.size()) {
            size_t comma = list.find(',', at);
            std::string item = list.substr(at, comma == std::string::npos ? std::string::npos : comma - at);
            char* end = nullptr;
            long v = std::strtol(item.c_str(), &end, 10);
            if (item.empty() || end == nullptr || *end != 0 || v < 0) {
                return report("topic reassign",
                              error(errc::bad_argument, "--replicas takes broker ids: 1,2,3"));
            }
            ids.push_back(static_cast<int32_t>(v));
            if (comma == std::string::npos) break;
            at = comma + 1;
        }
        p.replicas = ids;
    }
    t.partitions.push_back(p);
    req.topics.push_back(std::move(t));
    auto conn = c.controller();
    if (!conn) return report("topic reassign", conn.error());
    auto resp = (*conn)->call<protocol::alter_partition_reassignments_api>(req);
    if (!resp) return report("topic reassign", resp.error());
    if (resp->error_code != 0) {
        return report("topic reassign", kafka_failure(resp->error_code, resp->error_message.value_or("")));
    }
    for (const auto& tr : resp->responses) {
        for (const auto& pr : tr.partitions) {
            if (pr.error_code != 0) {
                return report("topic reassign",
                              kafka_failure(pr.error_code, pr.error_message.value_or(name)));
            }
        }
    }
    std::printf("%s reassignment of %s-%lld; follow it with `sluice topic reassignments`.\n",
                a.has("cancel") ? "Cancelled the" : "Started the", name.c_str(),
                static_cast<long long>(*part));
    return exit_ok;
}

int reassignments(client& c) {
    protocol::list_partition_reassignments_request req;
    req.timeout_ms = admin_timeout_ms;
    auto conn = c.controller();
    if (!conn) return report("topic reassignments", conn.error());
    auto resp = (*conn)->call<protocol::list_partition_reassignments_api>(req);
    if (!resp) return report("topic reassignments", resp.error());
    if (resp->error_code != 0) {
        return report("topic reassignments",
                      kafka_failure(resp->error_code, resp->error_message.value_or("")));
    }
    size_t n = 0;
    for (const auto& t : resp->topics) {
        for (const auto& p : t.partitions) {
            ++n;
            std::printf("Topic: %s\tPartition: %d\tReplicas: %s\tAdding: %s\tRemoving: %s\n",
                        t.name.c_str(), p.partition_index, join_ids(p.replicas).c_str(),
                        join_ids(p.adding_replicas).c_str(), join_ids(p.removing_replicas).c_str());
        }
    }
    if (n == 0) std::printf("No reassignment in progress.\n");
    return exit_ok;
}

}  // namespace

int topic_main(int argc, char** argv) {
    auto specs = common_options();
    specs.insert(specs.end(), {{"partitions"},
                               {"replication-factor"},
                               {"config", true, true},
                               {"set", true, true},
                               {"delete", true, true},
                               {"include-internal", false},
                               {"partition"},
                               {"replicas"},
                               {"cancel", false}});
    auto a = args::parse(argc, argv, specs);
    if (!a) {
        usage();
        return report("topic", a.error());
    }
    const auto& pos = a->positional();
    if (a->has("help") || pos.empty()) {
        usage();
        return a->has("help") ? exit_ok : exit_usage;
    }
    const std::string& action = pos[0];
    bool needs_name = action != "list" && action != "reassignments";
    if (needs_name && pos.size() != 2) {
        usage();
        return report("topic", error(errc::bad_argument, action + " takes one topic name"));
    }
    auto opts = client_options_from(*a);
    if (!opts) return report("topic", opts.error());
    auto c = client::connect(*opts);
    if (!c) return report("topic", c.error());
    if (action == "create") return create(**c, pos[1], *a);
    if (action == "list") return list(**c, *a);
    if (action == "describe") return describe(**c, pos[1]);
    if (action == "alter-config") return alter_config(**c, pos[1], *a);
    if (action == "add-partitions") return add_partitions(**c, pos[1], *a);
    if (action == "delete") return remove(**c, pos[1]);
    if (action == "reassign") return reassign(**c, pos[1], *a);
    if (action == "reassignments") return reassignments(**c);
    usage();
    return report("topic", error(errc::bad_argument, "unknown action '" + action + "'"));
}

}  // namespace sluice::tools
