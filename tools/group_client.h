#pragma once
// The member side of Kafka's classic consumer-group protocol, for the tools: finding a group's
// coordinator, reading committed offsets, the range assignor, and `group_member` — one member of
// a group doing FindCoordinator, JoinGroup (protocol type "consumer", assignor "range"), the
// leader's assignment, SyncGroup, Heartbeat, OffsetCommit, OffsetFetch and LeaveGroup. Only
// standard requests at versions negotiated by ApiVersions, so it works against any Kafka broker.
//
//   group_member m(*client, {.group = "g", .topics = {"orders"}});
//   auto j = m.join();                      // blocks through the rebalance
//   for (const auto& tp : m.assignment()) ...
//   if (m.heartbeat_due(clock::now())) { auto s = m.heartbeat(); /* rejoin on status::rejoin */ }
//   m.commit({{{"orders", 0}, 42}});
//   m.leave();
//
// Rebalances are eager (the range assignor's protocol): a member that learns of a rebalance
// gives up every partition, commits its positions and joins again; the caller does that.
//
// Threading: a `group_member` and the `client` it uses belong to one thread. It keeps its own
// connection to the coordinator, so group requests never queue behind the caller's fetches.

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "protocol/consumer_protocol.h"
#include "tools/kafka_client.h"

namespace sluice::tools {

using topic_partition = std::pair<std::string, int32_t>;

struct coordinator_info {
    int32_t node_id = -1;
    broker_address address;
};

// FindCoordinator for a consumer group (key_type 0) or a transactional id (1), asked on `conn`.
// Kafka errors (COORDINATOR_NOT_AVAILABLE while the internal topic is being created, ...) are
// returned as errc::kafka.
[[nodiscard]] result<coordinator_info> find_group_coordinator(connection& conn,
                                                              const std::string& group,
                                                              int8_t key_type = 0);

// The group's committed offsets (OffsetFetch on its coordinator): of `partitions`, or of every
// partition it has one for when nullopt. A partition without a committed offset maps to -1.
[[nodiscard]] result<std::map<topic_partition, int64_t>> fetch_committed_offsets(
    connection& coord, const std::string& group,
    const std::optional<std::vector<topic_partition>>& partitions);

// Kafka's RangeAssignor: for each topic, the members subscribed to it in order (by
// group.instance.id when both have one, members with one first, else by member id) each get a
// contiguous range of partitions; the first `partitions % members` get one more. Every member is
// in the result, with an empty list when it got nothing.
struct assignor_member {
    std::string member_id;
    std::optional<std::string> group_instance_id;
    std::vector<std::string> topics;
};
using group_assignment = std::map<std::string, std::vector<protocol::consumer_topic_partitions>>;
group_assignment range_assign(const std::vector<assignor_member>& members,
                              const std::map<std::string, int32_t>& partitions_per_topic);

struct group_member_options {
    std::string group;
    std::vector<std::string> topics;     // the subscription
    int32_t session_timeout_ms = 10000;  // the coordinator drops a member silent this long
    int32_t rebalance_timeout_ms = 30000;
    int32_t heartbeat_interval_ms = 500;
};

// One member of a consumer group. Owned by the thread that uses `client`.
class group_member {
  public:
    // What a call found out about the membership.
    enum class status {
        ok,
        rejoin,  // the group is rebalancing or no longer knows this generation: join again
        retry,   // the coordinator moved or is loading: try again later
    };

    group_member(client& c, group_member_options opts);

    // Joins the group and waits for this member's assignment (JoinGroup, the leader's range
    // assignment over the topics' partition counts from Metadata, SyncGroup). Retries through
    // coordinator moves and concurrent rebalances, at most `join_attempts_max` times.
    [[nodiscard]] result<void> join();
    // This member's partitions in the current generation.
    const std::vector<topic_partition>& assignment() const { return _assignment; }
    int32_t generation() const { return _generation; }
    const std::string& member_id() const { return _member_id; }
    bool leader() const { return _leader; }

    bool heartbeat_due(clock::time_point now) const { return now >= _next_heartbeat; }
    [[nodiscard]] result<status> heartbeat();
    // OffsetCommit of `offsets` (the next offset to read of each partition) in this generation.
    [[nodiscard]] result<status> commit(const std::map<topic_partition, int64_t>& offsets);
    // Committed offsets of `partitions` (-1: none).
    [[nodiscard]] result<std::map<topic_partition, int64_t>> committed(
        const std::vector<topic_partition>& partitions);
    // LeaveGroup, so the others rebalance at once instead of after the session timeout.
    [[nodiscard]] result<void> leave();

    static constexpr int join_attempts_max = 50;

  private:
    [[nodiscard]] result<connection*> coordinator();
    [[nodiscard]] result<status> join_once();
    [[nodiscard]] result<status> sync(const protocol::join_group_response& joined);
    [[nodiscard]] result<std::vector<protocol::sync_group_request::sync_group_request_assignment>>
    assign(const protocol::join_group_response& joined);
    // Maps a membership error code to a status (and forgets the coordinator or the member id
    // when the code says so); nullopt for codes that are failures.
    std::optional<status> classify(int16_t code);

    client& _client;
    group_member_options _opts;
    std::unique_ptr<connection> _coord;  // nullptr until found, and after it moved
    std::string _member_id;
    int32_t _generation = -1;
    bool _leader = false;
    std::vector<topic_partition> _assignment;
    clock::time_point _next_heartbeat;
};

}  // namespace sluice::tools
