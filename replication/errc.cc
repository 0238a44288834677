#include "replication/errc.h"

namespace sluice::replication {

const char* describe(errc e) {
    switch (e) {
        case errc::ok: return "ok";
        case errc::topic_exists: return "topic already exists";
        case errc::unknown_topic: return "unknown topic";
        case errc::invalid_topic_name: return "invalid topic name";
        case errc::invalid_partitions: return "invalid partition count";
        case errc::store_io: return "metadata store I/O error";
        case errc::store_corrupt: return "metadata store file is corrupt";
        case errc::no_node: return "znode does not exist";
        case errc::node_exists: return "znode already exists";
        case errc::bad_version: return "znode version does not match";
        case errc::not_empty: return "znode has children";
        case errc::ephemeral_parent: return "ephemeral znodes cannot have children";
        case errc::invalid_argument: return "invalid ZooKeeper argument";
        case errc::not_authorized: return "not authorized by the znode's ACL";
        case errc::connection_loss: return "connection to ZooKeeper lost";
        case errc::session_expired: return "ZooKeeper session expired";
        case errc::connect_failed: return "cannot connect to ZooKeeper";
        case errc::zk_error: return "ZooKeeper error";
        case errc::broker_id_in_use: return "broker id already registered";
        case errc::invalid_replication_factor: return "invalid replication factor";
        case errc::invalid_replica_assignment: return "invalid replica assignment";
        case errc::not_ready: return "cluster metadata not available";
        case errc::no_reassignment: return "no reassignment in progress";
    }
    return "unknown replication error";
}

}  // namespace sluice::replication

SLUICE_DEFINE_ERRC(sluice::replication, errc, "replication", describe)
