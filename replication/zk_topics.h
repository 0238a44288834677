#pragma once
// Topics and partition states in ZooKeeper, in Kafka's layout (docs/formats/zookeeper.md), and
// one pass of the controller over them. The building blocks of the cluster-mode metadata store
// and controller loop (issue #9): blocking calls on a zk_client, so control thread only.
//
//   /brokers/topics/<t>                         replica assignment + topic id (encode_topic_znode)
//   /brokers/topics/<t>/partitions/<p>/state    {leader, leader_epoch, isr, controller_epoch}
//   /config/topics/<t>                          the topic's config overrides
//   /cluster/id                                 the cluster id
//
// Every partition-state write is conditional: the controller's in a multi() that also checks
// the version of /controller_epoch it read when it won (a deposed controller's write fails), a
// leader's ISR change on the state version it last read (a stale leader's write fails).

#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "base/result.h"
#include "model/fundamental.h"
#include "replication/cluster_state.h"
#include "replication/zk_client.h"

namespace sluice::replication {

// Creates the persistent parents of the layout and /cluster/id (once, by whoever comes first),
// returning the cluster id.
result<std::string> ensure_cluster_layout(zk_client& zk);

// Reads the whole cluster: live brokers, the controller and its epoch, brokers in controlled
// shutdown, and every topic with its assignment, config and partition states. Topics whose
// znodes do not decode are skipped with a warning (a corrupt znode must not stop the cluster).
result<cluster_view> read_cluster(zk_client& zk);

// Writes a new topic: its config, then its assignment (the commit point). The replicas are
// `spec.assignment` when given (every broker must be registered, no repeats, one size), else
// assign_replicas() over the live brokers of `view` with `spec.replication_factor` (1 when -1).
// Errors: topic_exists, invalid_topic_name, invalid_partitions, invalid_replication_factor,
// invalid_replica_assignment, and ZooKeeper's.
result<topic_metadata> create_topic_znodes(zk_client& zk, const cluster_view& view,
                                           const topic_spec& spec);
// Removes the topic's znodes (states, assignment, config) in one multi().
result<void> delete_topic_znodes(zk_client& zk, const std::string& name);
// Grows a topic to `partitions`, assigning the new ones over the live brokers with the topic's
// replication factor; conditional on the assignment's version.
result<void> add_partitions_znodes(zk_client& zk, const cluster_view& view, const std::string& name,
                                   int32_t partitions);
result<void> set_topic_config_znode(zk_client& zk, const std::string& name,
                                    const std::map<std::string, std::string>& configs);

// One controller pass: decide_partition() for every partition of `view`, each resulting state
// written in a multi() checking /controller_epoch's version `epoch_version` (created for new
// partitions, set on the read version otherwise). Returns how many states were written; a
// bad_version on a state means the view was stale (read again); on /controller_epoch, that this
// controller was deposed (errc::bad_version is returned).
struct controller_identity {
    int32_t epoch = 0;
    int32_t epoch_version = -1;  // the /controller_epoch znode version this controller wrote
};
// `only`: limit the pass to these partitions (all when nullptr).
result<size_t> controller_pass(zk_client& zk, const cluster_view& view,
                               const controller_identity& me, election_rules rules,
                               const std::set<model::tp>* only = nullptr);

// Preferred-replica elections asked for by admins (ElectLeaders, `sluice cluster
// elect-leaders`): Kafka's /admin/preferred_replica_election, {"version":1,"partitions":[{"topic":
// t,"partition":p},...]}. Writing fails with node_exists while an earlier request is pending;
// the controller reads it, runs a preferred pass over those partitions and removes it.
// Publishes the replicas on `broker` that are in failed log dirs, as an ephemeral znode of this
// session (a restarted broker starts with none until it finds its dirs offline again).
result<void> write_offline_replicas(zk_client& zk, int32_t broker, const replica_set& partitions);

result<void> write_preferred_election(zk_client& zk, const std::vector<model::tp>& tps);
result<std::optional<std::vector<model::tp>>> read_preferred_election(zk_client& zk);
result<void> clear_preferred_election(zk_client& zk);
// auto.leader.rebalance.enable: the partitions to move back to their preferred replica, by
// Kafka's rule: for every broker whose share of preferred partitions it does not lead exceeds
// `imbalance_percent`, those of its partitions where it is live and in the ISR.
std::vector<model::tp> imbalanced_partitions(const cluster_view& view, int32_t imbalance_percent);
// Reads the version of /controller_epoch after winning the election (claim_controller()).
result<controller_identity> read_controller_identity(zk_client& zk);

// A leader's ISR change: writes `next` (same leader and epoch, new ISR) on `next.version`.
// Returns the new state with its new version; bad_version when someone wrote in between.
result<partition_state> write_partition_state(zk_client& zk, const model::tp& tp,
                                              const partition_state& next);

// Reassignment (KIP-455 in Kafka's layout): `target` becomes the partition's replica set. The
// assignment first holds target + the replicas leaving, with adding_replicas / removing_replicas
// saying which; the new replicas copy from the leader; once all of `target` is in the ISR the
// controller (controller_reassign) makes the assignment `target`, drops the others from the ISR
// and, when the leader leaves, elects one of `target` in a new epoch. nullopt cancels a move
// (errc::no_reassignment when none is in progress). Brokers must be registered
// (invalid_replica_assignment).
result<void> write_reassignment(zk_client& zk, const cluster_view& view, const model::tp& tp,
                                const std::optional<std::vector<int32_t>>& target);
// The controller's step of every reassignment whose new replicas caught up (and the ISR clean-up
// of cancelled ones); epoch-fenced like controller_pass(). Returns how many partitions changed.
result<size_t> controller_reassign(zk_client& zk, const cluster_view& view,
                                   const controller_identity& me);

std::string partition_state_path(const std::string& topic, int32_t partition);

}  // namespace sluice::replication
