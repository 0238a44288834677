#include "broker/internal_topics.h"

#include <algorithm>

#include "base/log.h"
#include "broker/cluster.h"
#include "replication/metadata_store.h"

namespace sluice::broker {

int32_t internal_topic_partitions(server& srv, const internal_topic& t) {
    auto snap = srv.metadata().snapshot();
    if (auto it = snap->find(t.name); it != snap->end()) return it->second.partitions;
    return static_cast<int32_t>(srv.config().int_value(t.partitions_key));
}

void ensure_internal_topic(server& srv, const internal_topic& t, std::function<void()> then) {
    if (srv.metadata().snapshot()->contains(t.name)) {
        then();
        return;
    }
    const auto& cfg = srv.config();
    int32_t n = static_cast<int32_t>(cfg.int_value(t.partitions_key));
    // The replication factor, capped by the brokers there are (Kafka refuses instead and leaves
    // its clients waiting; a capped topic is said in the log).
    int32_t want = static_cast<int32_t>(cfg.int_value(t.replication_key));
    int32_t live = 1;
    if (auto* cl = srv.cluster_member()) live = static_cast<int32_t>(cl->view()->brokers.size());
    int32_t rf = std::max(1, std::min(want, live));
    if (rf < want && srv.cluster_member() != nullptr) {
        log::warn("broker", t.name, ": ", t.replication_key, "=", want, " but only ", live,
                  " broker(s) are live; creating it with replication factor ", rf);
    }
    replication::topic_spec spec;
    spec.name = t.name;
    spec.partitions = n;
    spec.replication_factor = static_cast<int16_t>(rf);
    spec.configs = t.configs;
    spec.configs["cleanup.policy"] = "compact";
    if (t.min_isr_key != nullptr) {
        int64_t min_isr = std::min<int64_t>(cfg.int_value(t.min_isr_key), rf);
        spec.configs["min.insync.replicas"] = std::to_string(min_isr);
    }
    std::string name = t.name;
    // The creation may block on ZooKeeper: off the core in cluster mode.
    srv.metadata_write(
        [&srv, spec, n, rf] {
            if (srv.metadata().create_topic(spec)) {
                log::info("broker", "created ", spec.name, " with ", n,
                          " partition(s), replication factor ", rf);
            }
        },
        [&srv, name, n, then = std::move(then)]() mutable {
            srv.open_partitions(name, 0, n, std::move(then));
        });
}

}  // namespace sluice::broker
