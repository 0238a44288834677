#include "broker/kafka_error.h"

#include "base/errc.h"
#include "broker/config.h"
#include "engine/errc.h"
#include "model/errc.h"
#include "net/errc.h"
#include "protocol/errc.h"
#include "replication/metadata_store.h"

namespace sluice::broker {

kafka_error to_kafka_error(const error& e) {
    const auto& code = e.code();
    const auto& cat = code.category();
    if (!code) return kafka_error::none;
    if (cat == engine::errc_category()) {
        switch (static_cast<engine::errc>(code.value())) {
            case engine::errc::ok: return kafka_error::none;
            case engine::errc::invalid_batch: return kafka_error::corrupt_message;
            case engine::errc::batch_too_large: return kafka_error::message_too_large;
            case engine::errc::offset_out_of_range: return kafka_error::offset_out_of_range;
            case engine::errc::busy: return kafka_error::request_timed_out;
            case engine::errc::closed: return kafka_error::not_leader_or_follower;
            case engine::errc::io_error:
            case engine::errc::corrupt:
            case engine::errc::partition_failed: return kafka_error::kafka_storage_error;
            case engine::errc::no_space: return kafka_error::kafka_storage_error;
            case engine::errc::invalid_argument: return kafka_error::invalid_request;
        }
    }
    if (cat == model::errc_category()) {
        switch (static_cast<model::errc>(code.value())) {
            case model::errc::too_large: return kafka_error::message_too_large;
            case model::errc::unknown_compression: return kafka_error::unsupported_compression_type;
            default: return kafka_error::corrupt_message;
        }
    }
    if (cat == replication::errc_category()) {
        switch (static_cast<replication::errc>(code.value())) {
            case replication::errc::topic_exists: return kafka_error::topic_already_exists;
            case replication::errc::unknown_topic: return kafka_error::unknown_topic_or_partition;
            case replication::errc::invalid_topic_name: return kafka_error::invalid_topic_exception;
            case replication::errc::invalid_partitions: return kafka_error::invalid_partitions;
            case replication::errc::invalid_replication_factor:
                return kafka_error::invalid_replication_factor;
            case replication::errc::invalid_replica_assignment:
                return kafka_error::invalid_replica_assignment;
            case replication::errc::no_reassignment: return kafka_error::no_reassignment_in_progress;
            // ZooKeeper unreachable or busy: the client retries.
            case replication::errc::not_ready:
            case replication::errc::connection_loss:
            case replication::errc::session_expired:
            case replication::errc::connect_failed:
            case replication::errc::bad_version: return kafka_error::request_timed_out;
            default: return kafka_error::kafka_storage_error;
        }
    }
    if (cat == broker::errc_category()) {
        return kafka_error::invalid_config;
    }
    if (cat == protocol::errc_category()) return kafka_error::unsupported_version;
    if (cat == base::errc_category()) return kafka_error::invalid_request;
    return kafka_error::unknown_server_error;
}

}  // namespace sluice::broker
