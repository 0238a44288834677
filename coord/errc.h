#pragma once
// Outcomes of group and transaction coordinator operations. The broker maps each to its Kafka
// error code in one place (broker/handle_group.cc).

#include <cstdint>

namespace sluice::coord {

enum class errc : int16_t {
    none = 0,
    coordinator_load_in_progress,  // the group's __consumer_offsets partition is being replayed
    coordinator_not_available,     // no partition to keep the group in, or the group is dying
    not_coordinator,               // this core does not own the group's partition
    invalid_group_id,
    unknown_member_id,
    invalid_session_timeout,
    rebalance_in_progress,
    illegal_generation,
    inconsistent_group_protocol,
    member_id_required,
    fenced_instance_id,
    group_id_not_found,
    non_empty_group,
    offset_metadata_too_large,
    group_subscribed_to_topic,
    group_max_size_reached,
    storage_error,  // the append to the coordinator's internal topic failed
    // Transactions (coord/txn_coordinator.h).
    producer_fenced,               // an older epoch of the transactional id's producer
    invalid_producer_id_mapping,   // the producer id is not the transactional id's
    invalid_txn_state,             // the request does not fit the transaction's state
    concurrent_transactions,       // the previous transaction is still completing; retry
    invalid_transaction_timeout,   // above transaction.max.timeout.ms, or not positive
    transactional_id_not_found,
    unknown_topic_or_partition,
    unstable_offset_commit,        // a transactional offset commit is pending for the partition
};

const char* errc_name(errc e);

}  // namespace sluice::coord
