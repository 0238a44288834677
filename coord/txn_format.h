#pragma once
// The records of the internal topic __transaction_state, byte for byte Kafka's formats
// (docs/formats/transaction_state.md): the key is the transactional id, the value the id's
// producer id and epoch, timeout, state, partitions and timestamps. A null value is a
// tombstone (the transactional id expired). Decoders report bad bytes as malformed, never
// asserting: they come from disk.

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "base/result.h"
#include "coord/txn_types.h"

namespace sluice::coord::format {

inline constexpr int16_t txn_key_version = 0;
inline constexpr int16_t txn_value_version = 0;

struct txn_value {
    int64_t producer_id = -1;
    int16_t producer_epoch = -1;
    int32_t timeout_ms = 0;
    txn_state state = txn_state::empty;
    std::vector<txn_partition> partitions;  // grouped by topic when encoded
    int64_t last_update_ms = -1;
    int64_t start_ms = -1;
};

std::vector<std::byte> encode_txn_key(const std::string& transactional_id);
std::vector<std::byte> encode_txn_value(const txn_value& v);
// The transactional id of a key; malformed for another key version or short bytes.
result<std::string> decode_txn_key(std::span<const std::byte> b);
result<txn_value> decode_txn_value(std::span<const std::byte> b);

}  // namespace sluice::coord::format
