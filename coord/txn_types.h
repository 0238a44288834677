#pragma once
// The transaction coordinator's value types (independent of the Kafka wire structs; the broker
// converts). A transaction is named by its transactional id and carried out by one producer id
// and epoch at a time.

#include <compare>
#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "coord/errc.h"

namespace sluice::coord {

// Kafka's transaction states, with the ids it stores in __transaction_state.
enum class txn_state : int8_t {
    empty = 0,            // a producer id and epoch, no transaction open
    ongoing = 1,          // partitions were added; records may be written
    prepare_commit = 2,   // EndTxn(commit) is durable; COMMIT markers are being written
    prepare_abort = 3,    // abort decided (EndTxn, timeout, or fencing); ABORT markers written
    complete_commit = 4,  // every partition has its COMMIT marker
    complete_abort = 5,   // every partition has its ABORT marker
    dead = 6,             // the transactional id expired
    prepare_epoch_fence = 7,
};
// "Empty", "Ongoing", "PrepareCommit", ... as ListTransactions and DescribeTransactions show them.
const char* txn_state_name(txn_state s);
std::optional<txn_state> parse_txn_state(const std::string& name);

struct txn_partition {
    std::string topic;
    int32_t partition = 0;
    auto operator<=>(const txn_partition&) const = default;
};

struct init_pid_request {
    std::string transactional_id;
    int32_t timeout_ms = 60000;
    // InitProducerId v3+ (KIP-360): the id and epoch the producer had, or -1.
    int64_t producer_id = -1;
    int16_t producer_epoch = -1;
};

struct init_pid_result {
    errc error = errc::none;
    int64_t producer_id = -1;
    int16_t producer_epoch = -1;
};

struct add_partitions_request {
    std::string transactional_id;
    int64_t producer_id = -1;
    int16_t producer_epoch = -1;
    std::vector<txn_partition> partitions;
};

struct end_txn_request {
    std::string transactional_id;
    int64_t producer_id = -1;
    int16_t producer_epoch = -1;
    bool commit = false;
};

struct txn_description {
    errc error = errc::none;
    std::string transactional_id;
    txn_state state = txn_state::empty;
    int32_t timeout_ms = 0;
    int64_t start_ms = -1;  // when the open transaction began, else -1
    int64_t producer_id = -1;
    int16_t producer_epoch = -1;
    std::set<txn_partition> partitions;
};

struct txn_listing {
    std::string transactional_id;
    int64_t producer_id = -1;
    txn_state state = txn_state::empty;
    int64_t start_ms = -1;
};

}  // namespace sluice::coord
