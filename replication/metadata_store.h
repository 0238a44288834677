#pragma once
// The cluster's topic metadata: which topics exist, their ids, partition counts and per-topic
// config overrides. Two implementations (DESIGN.md section 7): `local_metadata_store` (a file in
// the first log dir; a single broker, the default) and the ZooKeeper-backed cluster member,
// `broker::cluster` (broker/cluster.h), which also carries replicas and partition states.
//
// Threading: the store is written by one thread (the controller core) and read from every core
// through immutable snapshots, which are swapped atomically; a reader keeps its snapshot alive
// for as long as it holds the shared_ptr.

#include <array>
#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "base/result.h"
#include "replication/errc.h"

namespace sluice::replication {

using topic_id = std::array<uint8_t, 16>;

// A partition's state in cluster mode (docs/formats/zookeeper.md): who leads, in which leader
// epoch, and the in-sync replicas. `version` is the znode version the next conditional write
// must name.
struct partition_state {
    int32_t leader = -1;
    int32_t leader_epoch = 0;
    std::vector<int32_t> isr;
    int32_t controller_epoch = 0;
    int32_t version = -1;
    bool operator==(const partition_state&) const = default;
};

struct topic_metadata {
    std::string name;
    topic_id id{};
    int32_t partitions = 0;
    std::map<std::string, std::string> configs;  // explicit overrides only
    // Cluster mode only (empty for the single-broker store): each partition's replicas, in
    // preference order, and its state (nullopt until the controller has elected a leader).
    std::vector<std::vector<int32_t>> replicas;
    std::vector<std::optional<partition_state>> states;
    // Reassignments in progress (KIP-455), by partition: replicas being added and removed;
    // `replicas` holds both until the move completes.
    std::map<int32_t, std::vector<int32_t>> adding, removing;
};

// What CreateTopics asks for. `replication_factor` -1 and an empty `assignment`: the store's
// defaults. An explicit `assignment` gives every partition's replicas (and so their number).
struct topic_spec {
    std::string name;
    int32_t partitions = -1;
    int16_t replication_factor = -1;
    std::vector<std::vector<int32_t>> assignment;
    std::map<std::string, std::string> configs;
};

using topic_map = std::map<std::string, topic_metadata>;

// Kafka's topic name rules: 1..249 characters of [a-zA-Z0-9._-], not "." or "..".
result<void> validate_topic_name(const std::string& name);
std::string topic_id_to_string(const topic_id& id);
// A random (version-4-like) topic id; also used for cluster ids.
topic_id random_topic_id();

class metadata_store {
public:
    virtual ~metadata_store() = default;
    virtual std::shared_ptr<const topic_map> snapshot() const = 0;
    virtual result<topic_metadata> create_topic(const topic_spec& spec) = 0;
    result<topic_metadata> create_topic(const std::string& name, int32_t partitions,
                                        std::map<std::string, std::string> configs) {
        return create_topic(topic_spec{name, partitions, -1, {}, std::move(configs)});
    }
    virtual result<void> delete_topic(const std::string& name) = 0;
    virtual result<void> set_partition_count(const std::string& name, int32_t partitions) = 0;
    // Replaces the topic's overrides with `configs`.
    virtual result<void> set_topic_configs(const std::string& name,
                                           std::map<std::string, std::string> configs) = 0;
    virtual std::string cluster_id() const = 0;
};

// The single-broker store: `<dir>/sluice-metadata` (docs/formats/metadata.md), rewritten
// atomically (temp file, fsync, rename, fsync dir) on every change.
class local_metadata_store final : public metadata_store {
public:
    static result<std::unique_ptr<local_metadata_store>> open(const std::string& dir);

    std::shared_ptr<const topic_map> snapshot() const override;
    using metadata_store::create_topic;
    result<topic_metadata> create_topic(const topic_spec& spec) override;
    result<void> delete_topic(const std::string& name) override;
    result<void> set_partition_count(const std::string& name, int32_t partitions) override;
    result<void> set_topic_configs(const std::string& name,
                                   std::map<std::string, std::string> configs) override;
    std::string cluster_id() const override { return _cluster_id; }

private:
    explicit local_metadata_store(std::string dir) : _dir(std::move(dir)) {}
    result<void> load();
    result<void> publish(std::shared_ptr<topic_map> next);  // persist, then swap

    std::string _dir;
    std::string _cluster_id;
    std::mutex _write_mu;  // serialises writers; readers never take it
    std::atomic<std::shared_ptr<const topic_map>> _current;
};

}  // namespace sluice::replication
