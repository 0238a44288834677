#pragma once
// The consumer protocol: the bytes a Kafka consumer puts inside the group protocol. A member's
// JoinGroup `metadata` for an assignor is a `consumer_subscription`; the leader's SyncGroup
// `assignment` for each member is a `consumer_assignment`. The coordinator passes both through
// without reading them (DESIGN.md section 8); clients, `sluice group describe` and tools read them.
//
// Both are Kafka's ConsumerProtocolSubscription / ConsumerProtocolAssignment "data" messages
// (versions 0-3, never flexible), prefixed by their int16 version:
//
//   subscription: version int16, topics [string], user_data nullable bytes,
//                 v1+ owned_partitions [topic string, partitions [int32]],
//                 v2+ generation_id int32, v3+ rack_id nullable string
//   assignment:   version int16, assigned_partitions [topic string, partitions [int32]],
//                 user_data nullable bytes
//
// Kafka's rule for newer versions holds here: bytes of a version above 3 are read as version 3
// and what follows is ignored, since a new version may only append fields. Decoding is total
// (`protocol::reader`): bytes that do not parse are an error value, never an assert.
//
// Pure value code: use it on any thread.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "base/result.h"

namespace sluice::protocol {

// The highest version this codec knows (Kafka 3.x writes 3).
inline constexpr int16_t consumer_protocol_version_max = 3;
// JoinGroup's `protocol_type` for consumer groups.
inline constexpr const char* consumer_protocol_type = "consumer";

struct consumer_topic_partitions {
    std::string topic;
    std::vector<int32_t> partitions;

    bool operator==(const consumer_topic_partitions&) const = default;
};

struct consumer_subscription {
    int16_t version = 0;  // encoded as given (0-3); decoded: what the bytes said
    std::vector<std::string> topics;
    std::optional<std::vector<std::byte>> user_data;
    std::vector<consumer_topic_partitions> owned_partitions;  // v1+
    int32_t generation_id = -1;                               // v2+
    std::optional<std::string> rack_id;                       // v3+

    bool operator==(const consumer_subscription&) const = default;
};

struct consumer_assignment {
    int16_t version = 0;  // encoded as given (0-3); decoded: what the bytes said
    std::vector<consumer_topic_partitions> partitions;
    std::optional<std::vector<std::byte>> user_data;

    bool operator==(const consumer_assignment&) const = default;
};

// Encodes at `version` (asserted to be 0..consumer_protocol_version_max); fields absent at that
// version are left out.
std::vector<std::byte> encode_subscription(const consumer_subscription& s);
std::vector<std::byte> encode_assignment(const consumer_assignment& a);

// Errors: base::errc::malformed (truncated, negative lengths, a negative version),
// base::errc::limit_exceeded.
[[nodiscard]] result<consumer_subscription> decode_subscription(std::span<const std::byte> b);
[[nodiscard]] result<consumer_assignment> decode_assignment(std::span<const std::byte> b);

}  // namespace sluice::protocol
