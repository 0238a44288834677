#pragma once
// The cluster as ZooKeeper describes it (docs/formats/zookeeper.md): each topic's replica
// assignment and each partition's state {leader, leader_epoch, isr}, the live brokers and the
// controller; the codecs of those znodes; and the controller's pure decisions (replica
// assignment, leader election, ISR clean-up) so that they can be tested without a server.
//
// Threading: plain values and pure functions, no shared state.

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "replication/membership.h"
#include "replication/metadata_store.h"

namespace sluice::replication {

// Everything a broker knows about the cluster at one moment; published as an immutable snapshot.
struct cluster_view {
    std::vector<broker_registration> brokers;  // live, by id
    int32_t controller_id = -1;
    int32_t controller_epoch = 0;
    std::set<int32_t> shutting_down;  // brokers in controlled shutdown
    // Replicas in a failed log dir (KIP-112), per broker, from the ephemeral znodes
    // /sluice/offline_replicas/<id>: such a replica may neither lead nor count in the ISR.
    std::map<int32_t, std::set<std::pair<std::string, int32_t>>> offline_replicas;
    std::shared_ptr<const topic_map> topics = std::make_shared<topic_map>();
    std::string cluster_id;

    const broker_registration* broker(int32_t id) const;
    bool live(int32_t id) const { return broker(id) != nullptr; }
};

// `/brokers/topics/<t>` (Kafka's version 2, topic id as base64url like Kafka's Uuid.toString).
using partition_lists = std::map<int32_t, std::vector<int32_t>>;
std::string encode_topic_znode(const topic_id& id,
                               const std::vector<std::vector<int32_t>>& replicas,
                               const partition_lists& adding = {},
                               const partition_lists& removing = {});
struct topic_znode {
    topic_id id{};
    std::vector<std::vector<int32_t>> replicas;
    partition_lists adding, removing;  // reassignments in progress
};
result<topic_znode> decode_topic_znode(std::string_view json);

// `/sluice/offline_replicas/<id>`: {"version":1,"partitions":[{"topic":"t","partition":0},...]}.
using replica_set = std::set<std::pair<std::string, int32_t>>;
std::string encode_offline_replicas(const replica_set& partitions);
result<replica_set> decode_offline_replicas(std::string_view json);

// `/brokers/topics/<t>/partitions/<p>/state`.
std::string encode_partition_state(const partition_state& s);
result<partition_state> decode_partition_state(std::string_view json, int32_t znode_version);

// `/config/topics/<t>`: {"version":1,"config":{...}}.
std::string encode_topic_config(const std::map<std::string, std::string>& configs);
result<std::map<std::string, std::string>> decode_topic_config(std::string_view json);

std::string topic_id_base64(const topic_id& id);
bool topic_id_from_base64(std::string_view s, topic_id& out);

// Replica assignment for `partitions` new partitions numbered from `first` (Kafka's scheme,
// rack-aware): brokers are ordered so that racks alternate, partition p's replicas are the
// `rf` consecutive brokers after a start that moves by one per partition, so leaders spread
// and, when rf <= the number of racks, every replica of a partition is on another rack.
// Fails with errc::invalid_replication_factor when rf exceeds the brokers given.
struct assignable_broker {
    int32_t id = -1;
    std::optional<std::string> rack;
};
result<std::vector<std::vector<int32_t>>> assign_replicas(std::vector<assignable_broker> brokers,
                                                          int32_t first, int32_t partitions,
                                                          int32_t rf, uint32_t start_seed);

// What the controller does with one partition (pure). `live` excludes nobody; `shutting_down`
// brokers may not lead and leave ISRs. Returns the new state to write, or nullopt when the
// current one stands. `preferred` asks to move leadership to the first replica when it is in
// the ISR. `unclean` allows electing a live replica outside the ISR when no ISR member lives.
struct election_rules {
    bool unclean = false;
    bool preferred = false;
};
std::optional<partition_state> decide_partition(const std::vector<int32_t>& replicas,
                                                const std::optional<partition_state>& current,
                                                const std::set<int32_t>& live,
                                                const std::set<int32_t>& shutting_down,
                                                int32_t controller_epoch, election_rules rules);

}  // namespace sluice::replication
