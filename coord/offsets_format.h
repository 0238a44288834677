#pragma once
// The records of the internal topic __consumer_offsets, byte for byte Kafka's own formats
// (docs/formats/consumer_offsets.md), so a data directory's group state reads the same as
// Kafka's. Each record is a key and a value, both big-endian and non-flexible:
//
//   offset commit   key version 1 (group, topic, partition)   value version 3
//   group metadata  key version 2 (group)                       value version 3
//
// A null value is a tombstone: the key's group or committed offset was deleted, and compaction
// eventually keeps only the tombstone (then nothing). Decoders accept the older value versions
// Kafka wrote (offset value 0-3, group value 0-3) and report anything else as malformed, never
// asserting: these bytes come from disk.

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <variant>
#include <vector>

#include "base/result.h"
#include "coord/types.h"

namespace sluice::coord::format {

inline constexpr int16_t offset_key_version = 1;
inline constexpr int16_t group_key_version = 2;
inline constexpr int16_t offset_value_version = 3;
inline constexpr int16_t group_value_version = 3;

struct offset_key {
    std::string group;
    std::string topic;
    int32_t partition = 0;
};
struct group_key {
    std::string group;
};
// A key whose version this build does not know (e.g. KIP-848 records): skipped by the loader.
struct other_key {
    int16_t version = 0;
};
using record_key = std::variant<offset_key, group_key, other_key>;

struct stored_member {
    std::string member_id;
    std::optional<std::string> group_instance_id;
    std::string client_id;
    std::string client_host;
    int32_t rebalance_timeout_ms = 0;
    int32_t session_timeout_ms = 0;
    bytes subscription;  // the member's metadata for the selected protocol
    bytes assignment;
};

struct group_value {
    std::string protocol_type;
    int32_t generation = 0;
    std::optional<std::string> protocol;
    std::optional<std::string> leader;
    int64_t current_state_timestamp_ms = -1;
    std::vector<stored_member> members;
};

bytes encode_offset_key(const std::string& group, const std::string& topic, int32_t partition);
bytes encode_group_key(const std::string& group);
bytes encode_offset_value(const committed_offset& v);
bytes encode_group_value(const group_value& v);

result<record_key> decode_key(std::span<const std::byte> b);
result<committed_offset> decode_offset_value(std::span<const std::byte> b);
result<group_value> decode_group_value(std::span<const std::byte> b);

}  // namespace sluice::coord::format
