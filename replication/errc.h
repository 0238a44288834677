#pragma once
// Error codes of the replication module: the metadata store (metadata_store.h) and the ZooKeeper
// client (zk_client.h). libzookeeper's ZOO_* return codes become these codes in one place,
// `zk_errc_from_rc()` in zk_client.cc; the broker maps them to Kafka codes at its edge.

#include "base/result.h"

namespace sluice::replication {

enum class errc {
    ok = 0,
    // Metadata store.
    topic_exists,
    unknown_topic,
    invalid_topic_name,
    invalid_partitions,
    store_io,  // the metadata file cannot be written or read
    store_corrupt,
    // ZooKeeper (zk_client.h).
    no_node,             // the znode (or a parent of the one being created) does not exist
    node_exists,         // create() of a path that is already there
    bad_version,         // a conditional write (set/remove/multi check) saw another version
    not_empty,           // remove() of a znode that still has children
    ephemeral_parent,    // ephemeral znodes may not have children
    invalid_argument,    // a malformed path, connect string or request
    not_authorized,      // the znode's ACL refuses this session
    connection_loss,     // the request's fate is unknown: it may or may not have been applied
    session_expired,     // the session is gone for good; the owner must make a new zk_client
    connect_failed,      // no session could be established within the connect timeout
    zk_error,            // any other libzookeeper failure; the detail names the ZOO_* code
    // Membership (membership.h).
    broker_id_in_use,    // another live broker holds /brokers/ids/<broker.id>
    // Cluster metadata (zk_cluster.h).
    invalid_replication_factor,  // more replicas asked for than brokers are alive
    invalid_replica_assignment,  // an explicit assignment names unknown or repeated brokers
    not_ready,                   // no ZooKeeper session right now (retriable)
    no_reassignment,             // cancelling a partition move that is not in progress
};
const char* describe(errc e);

}  // namespace sluice::replication
SLUICE_DECLARE_ERRC(sluice::replication, errc)
