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
                 "  replica counts, and under-replicated and offline partitions.\n");
}

}  // namespace

int cluster_main(int argc, char** argv) {
    auto a = args::parse(argc, argv, common_options());
    if (!a) {
        usage();
        return report("cluster", a.error());
    }
    const auto& pos = a->positional();
    if (a->has("help") || pos.size() != 1 || pos[0] != "describe") {
        usage();
        return a->has("help") ? exit_ok : exit_usage;
    }
    auto opts = client_options_from(*a);
    if (!opts) return report("cluster", opts.error());
    auto c = client::connect(*opts);
    if (!c) return report("cluster", c.error());
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
