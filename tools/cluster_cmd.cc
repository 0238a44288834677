// `sluice cluster describe`: the cluster as Metadata reports it — its id, the controller, every
// live broker with the leaderships and replicas it holds, and the partitions whose ISR is short
// of their replicas (under-replicated) or that have no leader (offline).

#include <cstdio>
#include <map>

#include "tools/commands.h"

namespace sluice::tools {

namespace {

void usage() {
    std::fprintf(stderr,
                 "usage: sluice cluster describe [--bootstrap-server host:port]\n"
                 "  Prints the cluster id, the controller, each live broker with its leader and\n"
                 "  replica counts, and under-replicated and offline partitions.\n"
                 "       sluice cluster elect-leaders [--topic T [--partition P]]\n"
                 "  Preferred-replica election (ElectLeaders): moves leadership of the partitions\n"
                 "  (all when no --topic) back to their first replica where it is in sync.\n"
                 "       sluice cluster log-dirs\n"
                 "  Every broker's log directories (DescribeLogDirs): capacity, free space, and\n"
                 "  each replica there with its size and how far it is behind its leader.\n");
}

int log_dirs(client& c) {
    auto md = c.metadata(std::nullopt);
    if (!md) return report("cluster log-dirs", md.error());
    int rc = exit_ok;
    std::vector<int32_t> ids;
    for (const auto& [id, addr] : (*md)->brokers) ids.push_back(id);
    for (int32_t id : ids) {
        auto conn = c.broker(id);
        if (!conn) {
            std::fprintf(stderr, "sluice cluster log-dirs: broker %d: %s\n", id,
                         user_message(conn.error()).c_str());
            rc = exit_failed;
            continue;
        }
        protocol::describe_log_dirs_request req;
        req.topics = std::nullopt;  // every partition (Kafka's definition has no null default)
        auto resp = (*conn)->call<protocol::describe_log_dirs_api>(req);
        if (!resp) {
            std::fprintf(stderr, "sluice cluster log-dirs: broker %d: %s\n", id,
                         user_message(resp.error()).c_str());
            rc = exit_failed;
            continue;
        }
        for (const auto& r : resp->results) {
            std::printf("Broker: %d\tLogDir: %s\tError: %s\tTotalBytes: %lld\tUsableBytes: %lld\n",
                        id, r.log_dir.c_str(),
                        r.error_code ? kafka_error_name(r.error_code).c_str() : "none",
                        static_cast<long long>(r.total_bytes), static_cast<long long>(r.usable_bytes));
            for (const auto& t : r.topics) {
                for (const auto& p : t.partitions) {
                    std::printf("\tTopic: %s\tPartition: %d\tSize: %lld\tOffsetLag: %lld\n",
                                t.name.c_str(), p.partition_index,
                                static_cast<long long>(p.partition_size),
                                static_cast<long long>(p.offset_lag));
                }
            }
        }
    }
    return rc;
}

int elect_leaders(client& c, const args& a) {
    protocol::elect_leaders_request req;
    req.election_type = 0;
    req.timeout_ms = 60000;
    req.topic_partitions = std::nullopt;  // every partition, unless --topic names one
    if (a.has("topic")) {
        std::string topic = a.get_or("topic", "");
        protocol::elect_leaders_request::topic_partitions_entry tp;
        tp.topic = topic;
        if (a.has("partition")) {
            auto p = a.integer("partition", 0, 0, 1 << 30);
            if (!p) return report("cluster elect-leaders", p.error());
            tp.partitions.push_back(static_cast<int32_t>(*p));
        } else {
            auto t = c.topic(topic, true);
            if (!t) return report("cluster elect-leaders", t.error());
            for (const auto& p : (*t)->partitions) tp.partitions.push_back(p.partition);
        }
        req.topic_partitions.emplace({std::move(tp)});
    }
    auto conn = c.controller();
    if (!conn) return report("cluster elect-leaders", conn.error());
    auto resp = (*conn)->call<protocol::elect_leaders_api>(req);
    if (!resp) return report("cluster elect-leaders", resp.error());
    int rc = exit_ok;
    if (resp->error_code != 0) {
        std::fprintf(stderr, "sluice cluster elect-leaders: %s\n",
                     kafka_error_name(resp->error_code).c_str());
        return exit_failed;
    }
    int moved = 0, not_needed = 0;
    for (const auto& t : resp->replica_election_results) {
        for (const auto& p : t.partition_result) {
            if (p.error_code == 0) {
                ++moved;
                std::printf("Elected the preferred leader of %s-%d\n", t.topic.c_str(), p.partition_id);
            } else if (kafka_error_name(p.error_code) == "ELECTION_NOT_NEEDED") {
                ++not_needed;
            } else {
                rc = exit_failed;
                std::printf("%s-%d: %s%s%s\n", t.topic.c_str(), p.partition_id,
                            kafka_error_name(p.error_code).c_str(), p.error_message ? ": " : "",
                            p.error_message.value_or("").c_str());
            }
        }
    }
    std::printf("%d leadership(s) moved, %d already on their preferred replica\n", moved, not_needed);
    return rc;
}

}  // namespace

int cluster_main(int argc, char** argv) {
    auto specs = common_options();
    specs.insert(specs.end(), {{"topic"}, {"partition"}});
    auto a = args::parse(argc, argv, specs);
    if (!a) {
        usage();
        return report("cluster", a.error());
    }
    const auto& pos = a->positional();
    if (a->has("help") || pos.size() != 1 ||
        (pos[0] != "describe" && pos[0] != "elect-leaders" && pos[0] != "log-dirs")) {
        usage();
        return a->has("help") ? exit_ok : exit_usage;
    }
    auto opts = client_options_from(*a);
    if (!opts) return report("cluster", opts.error());
    auto c = client::connect(*opts);
    if (!c) return report("cluster", c.error());
    if (pos[0] == "elect-leaders") return elect_leaders(**c, *a);
    if (pos[0] == "log-dirs") return log_dirs(**c);
    auto md = (*c)->metadata(std::nullopt);
    if (!md) return report("cluster", md.error());
    const cluster_info& ci = **md;
    std::printf("ClusterId: %s\tController: %d\tBrokers: %zu\n",
                ci.cluster_id.value_or("-").c_str(), ci.controller, ci.brokers.size());
    std::map<int32_t, std::pair<int, int>> load;  // broker -> leaders, replicas
    int under = 0, offline = 0;
    for (const auto& [name, t] : ci.topics) {
        for (const auto& p : t.partitions) {
            if (p.leader >= 0) ++load[p.leader].first;
            for (int32_t r : p.replicas) ++load[r].second;
            if (p.leader < 0) ++offline;
            else if (p.isr.size() < p.replicas.size()) ++under;
        }
    }
    for (const auto& [id, addr] : ci.brokers) {
        std::printf("\tBroker: %d\tAddress: %s\tLeaders: %d\tReplicas: %d%s\n", id,
                    addr.to_string().c_str(), load[id].first, load[id].second,
                    id == ci.controller ? "\t(controller)" : "");
    }
    std::printf("UnderReplicatedPartitions: %d\tOfflinePartitions: %d\n", under, offline);
    for (const auto& [name, t] : ci.topics) {
        for (const auto& p : t.partitions) {
            if (p.leader >= 0 && p.isr.size() >= p.replicas.size()) continue;
            std::printf("\t%s\tTopic: %s\tPartition: %d\tLeader: %d\tIsr size: %zu of %zu\n",
                        p.leader < 0 ? "Offline" : "UnderReplicated", name.c_str(), p.partition,
                        p.leader, p.isr.size(), p.replicas.size());
        }
    }
    return exit_ok;
}

}  // namespace sluice::tools
