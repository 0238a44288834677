#pragma once
// The group coordinator of one core: the consumer groups whose __consumer_offsets partition that
// core owns (Kafka: abs(javaHashCode(group id)) % offsets.topic.num.partitions), their classic
// rebalance protocol and their committed offsets.
//
// State machine (Kafka's classic protocol, DESIGN.md section 8): Empty -> PreparingRebalance
// (members join; the first rebalance of an empty group waits group.initial.rebalance.delay.ms
// for more) -> CompletingRebalance (every member has its JoinGroup answer; the leader computes
// assignments) -> Stable (the leader's SyncGroup was persisted and everyone has an assignment).
// A member that misses its session timeout, leaves, or joins anew sends the group back to
// PreparingRebalance; a member that does not rejoin within the rebalance timeout is dropped.
// Dead is a deleted group.
//
// Persistence: the group's metadata (on reaching Stable or Empty) and every committed offset are
// records appended to the group's __consumer_offsets partition (coord/offsets_format.h); an
// operation that changes durable state answers only once its append completed. On start the
// coordinator replays each partition it owns (COORDINATOR_LOAD_IN_PROGRESS meanwhile).
//
// Threading and ownership: one coordinator per core, created and used only on that core's
// thread; it owns its groups. Time comes from a clock and a timer_service, so tests drive it with
// a manual clock. Every callback passed in runs exactly once, on this thread, possibly before the
// call returns.

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "base/result.h"
#include "coord/offsets_format.h"
#include "coord/services.h"
#include "coord/types.h"

namespace sluice::runtime {
class clock;
}

namespace sluice::coord {

inline constexpr const char* offsets_topic = "__consumer_offsets";

struct coordinator_config {
    int32_t offsets_partitions = 50;                  // offsets.topic.num.partitions
    int32_t min_session_timeout_ms = 6000;            // group.min.session.timeout.ms
    int32_t max_session_timeout_ms = 1800000;         // group.max.session.timeout.ms
    int32_t initial_rebalance_delay_ms = 3000;        // group.initial.rebalance.delay.ms
    int32_t max_group_size = 2147483647;              // group.max.size
    int64_t offsets_retention_ms = 7LL * 24 * 3600 * 1000;  // offsets.retention.minutes
    int64_t offsets_retention_check_interval_ms = 600000;   // offsets.retention.check.interval.ms
    size_t offset_metadata_max_bytes = 4096;          // offset.metadata.max.bytes
    // A member-id-required member that never comes back is forgotten after this long (Kafka
    // uses the session timeout it asked for; this is the upper bound).
    int32_t pending_member_timeout_ms = 300000;
};


class group_coordinator {
public:
    group_coordinator(coordinator_config cfg, runtime::clock& clock, timer_service& timers,
                      log_storage& storage);
    ~group_coordinator();
    group_coordinator(const group_coordinator&) = delete;
    group_coordinator& operator=(const group_coordinator&) = delete;

    // Starts replaying every owned partition not loaded yet (start-up, and after the offsets
    // topic was created). Also starts the periodic offset expiry.
    void load_owned();
    // True when the partition is loaded (not loading, owned).
    bool loaded(int32_t partition) const;
    // Forgets the partitions no longer owned (their leadership moved to another broker): their
    // groups go, and members waiting in a join or sync hear NOT_COORDINATOR so that they find
    // the new coordinator.
    void unload_lost();

    void join(join_request req, std::function<void(join_result)> done);
    void sync(sync_request req, std::function<void(sync_result)> done);
    errc heartbeat(const heartbeat_request& req);
    leave_result leave(const leave_request& req);
    void commit(commit_request req, std::function<void(commit_result)> done);
    // TxnOffsetCommit: the offsets are written now (in the producer's transaction) and become
    // committed when complete_txn() says the transaction committed.
    void txn_commit(txn_commit_request req, std::function<void(commit_result)> done);
    // A marker for `producer_id` was written to `partition`: its pending commits apply or go.
    void complete_txn(int32_t partition, int64_t producer_id, bool commit);
    fetch_offsets_result fetch_offsets(const fetch_offsets_request& req);
    void delete_offsets(delete_offsets_request req, std::function<void(delete_offsets_result)> done);
    std::vector<group_listing> list_groups() const;
    group_description describe(const std::string& group_id) const;
    void delete_group(const std::string& group_id, std::function<void(errc)> done);

    // Drops expired committed offsets of empty groups, and empty groups with nothing left.
    void expire_offsets();

    const coordinator_config& config() const { return _cfg; }
    size_t group_count() const { return _groups.size(); }

    struct member;
    struct group;

private:
    struct load_state;

    errc check_partition(const std::string& group_id, int32_t& partition) const;
    group* find(const std::string& id);
    const group* find(const std::string& id) const;
    group& create(const std::string& id, int32_t partition);
    std::string new_member_id(const std::string& client_id);

    // Join paths.
    void join_new_member(group& g, join_request req, std::function<void(join_result)> done);
    void join_static_replace(group& g, const std::string& old_id, join_request req,
                             std::function<void(join_result)> done);
    void join_known_member(group& g, join_request req, std::function<void(join_result)> done);
    member& add_member(group& g, const std::string& id, const join_request& req);
    void update_member(member& m, const join_request& req);
    void prepare_rebalance(group& g, const char* reason);
    void maybe_complete_join(group& g);
    void complete_join(group& g);
    join_result join_answer(const group& g, const member& m, bool with_members) const;
    void on_initial_delay(const std::string& group_id, int64_t remaining_ms);

    // Members.
    void arm_heartbeat(group& g, member& m);
    void on_heartbeat_expired(const std::string& group_id, const std::string& member_id);
    void remove_member(group& g, const std::string& member_id, errc reason);
    void on_member_gone(group& g);
    bool protocols_compatible(const group& g, const join_request& req) const;
    std::optional<std::string> select_protocol(const group& g) const;
    errc validate_member(const group& g, const std::string& member_id,
                         const std::optional<std::string>& instance_id) const;

    // Persistence.
    // The records of a commit's entries, their values and indexes; an entry whose metadata is
    // too large gets that error in `result` instead.
    void commit_records(const std::string& group_id, const std::vector<commit_entry>& offsets,
                        commit_result& result,
                        std::vector<std::pair<bytes, std::optional<bytes>>>& records,
                        std::vector<std::pair<partition_ref, committed_offset>>& values,
                        std::vector<size_t>& written) const;
    void persist_group(group& g, std::function<void(bool)> done);
    format::group_value group_value_of(const group& g) const;
    // producer_id >= 0: a transactional batch of that producer (TxnOffsetCommit).
    void append_records(int32_t partition,
                        const std::vector<std::pair<bytes, std::optional<bytes>>>& records,
                        std::function<void(bool)> done, int64_t producer_id = -1,
                        int16_t producer_epoch = -1);
    void load_step(int32_t partition);
    // Replays one batch of __consumer_offsets into `st`.
    void load_batch(load_state& st, const model::batch_header& h, std::span<const std::byte> b,
                    std::vector<std::byte>& scratch);
    void finish_load(int32_t partition, load_state& st);
    void schedule_expiry();

    coordinator_config _cfg;
    runtime::clock& _clock;
    timer_service& _timers;
    log_storage& _storage;
    std::unordered_map<std::string, std::unique_ptr<group>> _groups;
    partition_loads<load_state> _parts;
    uint64_t _expiry_timer = 0;
    uint64_t _member_seq = 0;
    uint64_t _id_salt = 0;
    owned_timers _owned_timers{_timers};
    uint64_t schedule(int64_t delay_ms, std::function<void()> fn);
    void cancel(uint64_t& id);
};

}  // namespace sluice::coord
