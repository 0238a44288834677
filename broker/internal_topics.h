#pragma once
// What the group and transaction coordinators' broker edges share (handle_group.cc,
// handle_txn.cc): their internal topic (__consumer_offsets, __transaction_state), created
// compacted on first use with a replication factor capped at the live brokers, and the way a
// request reaches the coordinator on the core that owns its key's partition there.

#include <cstdint>
#include <functional>
#include <string>

#include "broker/server.h"
#include "broker/shard.h"
#include "broker/topic_config.h"
#include "runtime/reactor.h"

namespace sluice::broker {

struct internal_topic {
    const char* name;
    const char* partitions_key;   // e.g. offsets.topic.num.partitions
    const char* replication_key;  // e.g. offsets.topic.replication.factor
    // Topic configs beside cleanup.policy=compact; `min_isr_key` (when set) becomes its
    // min.insync.replicas, capped at the replication factor.
    config_map configs;
    const char* min_isr_key = nullptr;
};

// The topic's partition count: the existing topic's (a changed config must not move keys),
// else the configured one.
int32_t internal_topic_partitions(server& srv, const internal_topic& t);
// Creates the topic unless it exists, then runs `then` on the calling core.
void ensure_internal_topic(server& srv, const internal_topic& t, std::function<void()> then);

// Runs `op(coordinator, reply)` on core `core` with the coordinator `get(shard)` returns;
// `done(result)` runs on the calling core.
template <class C, class R, class Get>
void on_coordinator_core(server& srv, unsigned core, Get get,
                         std::function<void(C&, std::function<void(R)>)> op,
                         std::function<void(R)> done) {
    runtime::reactor* origin = runtime::reactor::local();
    srv.run_on(core, [get, op = std::move(op), done = std::move(done), origin](shard& s) {
        op(get(s), [origin, done](R r) {
            if (runtime::reactor::local() == origin) {
                done(std::move(r));
            } else {
                origin->post([done, r = std::move(r)]() mutable { done(std::move(r)); });
            }
        });
    });
}

}  // namespace sluice::broker
