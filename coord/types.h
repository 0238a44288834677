#pragma once
// The group coordinator's value types: what a request asks and what it gets back, independent of
// the Kafka wire structs (the broker converts between the two). Byte fields are opaque to the
// coordinator: protocol metadata and assignments belong to the clients' assignors.

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "coord/errc.h"

namespace sluice::coord {

using bytes = std::vector<std::byte>;

enum class group_state : int8_t { empty, preparing_rebalance, completing_rebalance, stable, dead };
// Kafka's names ("Empty", "PreparingRebalance", ...), as ListGroups and DescribeGroups show them.
const char* state_name(group_state s);
// Case-insensitive parse of a state name; nullopt when unknown.
std::optional<group_state> parse_state(const std::string& name);

struct protocol_entry {
    std::string name;
    bytes metadata;
};

struct join_request {
    std::string group_id;
    std::string member_id;  // empty on a member's first join
    std::optional<std::string> group_instance_id;
    int32_t session_timeout_ms = 0;
    int32_t rebalance_timeout_ms = 0;
    std::string protocol_type;
    std::vector<protocol_entry> protocols;
    std::string client_id;
    std::string client_host;
    // JoinGroup v4+: a new dynamic member first gets MEMBER_ID_REQUIRED with its id.
    bool require_known_member_id = false;
};

struct join_member {
    std::string member_id;
    std::optional<std::string> group_instance_id;
    bytes metadata;
};

struct join_result {
    errc error = errc::none;
    int32_t generation_id = -1;
    std::string protocol_type;
    std::optional<std::string> protocol_name;
    std::string leader_id;
    std::string member_id;
    bool skip_assignment = false;
    std::vector<join_member> members;  // the leader's view; empty for followers
};

struct sync_request {
    std::string group_id;
    std::string member_id;
    std::optional<std::string> group_instance_id;
    int32_t generation_id = -1;
    std::optional<std::string> protocol_type;
    std::optional<std::string> protocol_name;
    std::vector<std::pair<std::string, bytes>> assignments;  // from the leader
};

struct sync_result {
    errc error = errc::none;
    std::optional<std::string> protocol_type;
    std::optional<std::string> protocol_name;
    bytes assignment;
};

struct heartbeat_request {
    std::string group_id;
    std::string member_id;
    std::optional<std::string> group_instance_id;
    int32_t generation_id = -1;
};

struct leave_member {
    std::string member_id;
    std::optional<std::string> group_instance_id;
};

struct leave_request {
    std::string group_id;
    std::vector<leave_member> members;
};

struct leave_result {
    errc error = errc::none;      // for the whole request
    std::vector<errc> members;    // one per requested member
};

struct partition_ref {
    std::string topic;
    int32_t partition = 0;
    auto operator<=>(const partition_ref&) const = default;
};

struct committed_offset {
    int64_t offset = -1;
    int32_t leader_epoch = -1;
    std::string metadata;
    int64_t commit_timestamp_ms = -1;
};

struct commit_entry {
    partition_ref tp;
    int64_t offset = 0;
    int32_t leader_epoch = -1;
    std::optional<std::string> metadata;
};

struct commit_request {
    std::string group_id;
    int32_t generation_id = -1;  // < 0: a commit from outside group management
    std::string member_id;
    std::optional<std::string> group_instance_id;
    std::vector<commit_entry> offsets;
};

// TxnOffsetCommit: offsets written as part of a producer's transaction; they become the group's
// committed offsets when the transaction commits, and are dropped when it aborts.
struct txn_commit_request {
    std::string group_id;
    int64_t producer_id = -1;
    int16_t producer_epoch = -1;
    int32_t generation_id = -1;  // v3+ (KIP-447): checked when >= 0
    std::string member_id;
    std::optional<std::string> group_instance_id;
    std::vector<commit_entry> offsets;
};

struct commit_result {
    std::vector<errc> partitions;  // one per commit_request::offsets entry
};

struct fetched_offset {
    partition_ref tp;
    committed_offset committed;  // offset -1 when nothing is committed
    errc error = errc::none;
};

struct fetch_offsets_request {
    std::string group_id;
    std::optional<std::vector<partition_ref>> partitions;  // nullopt: everything committed
    // OffsetFetch v7+ (read_committed consumers): a partition with a transactional commit still
    // pending answers UNSTABLE_OFFSET_COMMIT, so the consumer waits for the outcome.
    bool require_stable = false;
};

struct fetch_offsets_result {
    errc error = errc::none;
    std::vector<fetched_offset> offsets;
};

struct delete_offsets_request {
    std::string group_id;
    std::vector<partition_ref> partitions;
};

struct delete_offsets_result {
    errc error = errc::none;
    std::vector<errc> partitions;
};

struct group_listing {
    std::string group_id;
    std::string protocol_type;
    group_state state = group_state::empty;
};

struct member_description {
    std::string member_id;
    std::optional<std::string> group_instance_id;
    std::string client_id;
    std::string client_host;
    bytes metadata;    // of the selected protocol, when Stable
    bytes assignment;  // when Stable
};

struct group_description {
    errc error = errc::none;
    std::string group_id;
    group_state state = group_state::dead;
    std::string protocol_type;
    std::string protocol_name;  // selected protocol when Stable, else empty
    std::vector<member_description> members;
};

}  // namespace sluice::coord
