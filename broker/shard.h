#pragma once
// A shard is the broker's state on one core: the partitions that core owns (DESIGN.md section 2:
// `shard = hash(topic, partition) % cores`) and the operations on them. Every method runs on the
// shard's reactor thread; other cores reach a shard through server::run_on().
//
// Lifecycle: created by the server on its core thread at start-up, which opens every partition
// the core owns (running recovery); destroyed on that thread after close_all().

#include <cstdint>
#include <deque>
#include <map>
#include <functional>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "base/fd.h"
#include "base/result.h"
#include "broker/kafka_error.h"
#include "broker/partition_txns.h"
#include "broker/producer_state.h"
#include "broker/topic_config.h"
#include "engine/compaction.h"
#include "engine/partition_log.h"
#include "model/record_batch.h"
#include "model/fundamental.h"
#include "replication/leader_epoch_cache.h"
#include "replication/leader_state.h"

namespace sluice::runtime {
class reactor;
}
namespace sluice::replication {
struct cluster_view;
struct partition_state;
}

namespace sluice::broker {

class server;
struct group_services;  // handle_group.cc
struct txn_services;    // handle_txn.cc

struct produce_part_result {
    kafka_error error = kafka_error::none;
    std::string message;
    int64_t base_offset = -1;
    int64_t log_append_time_ms = -1;
    int64_t log_start_offset = -1;
    int64_t last_offset = -1;
};

// How a produce is acknowledged: `wait_isr` (acks=all) waits until the high watermark passes
// its last offset, at most `timeout_ms` (then REQUEST_TIMED_OUT).
struct produce_opts {
    bool wait_isr = false;
    int32_t timeout_ms = 30000;
    // The broker's own write (a transaction marker): control batches are allowed. A client's
    // produce carrying a control batch is refused (INVALID_RECORD).
    bool internal = false;
};

// Told when a produce starts waiting for room in its partition's append buffer (true) and when
// it stops (false), on the partition's core; the session pauses reading meanwhile.
using hold_notifier = std::function<void(bool held)>;

// A produce waiting for room in the partition's append buffer. Its bytes are a view into the
// request frame, which the caller keeps alive until `done` runs.
struct held_produce {
    std::span<std::byte> batches;
    std::function<void(produce_part_result)> done;
    hold_notifier notify;
    produce_opts opts;
};

// This broker's part in a partition. `single`: no cluster (the broker is the whole ISR).
enum class replica_role { single, leader, follower, offline };

// An acks=all produce that was written and waits for the ISR.
struct ack_waiter {
    int64_t target = 0;  // the high watermark that acknowledges it (its last offset + 1)
    produce_part_result result;
    std::function<void(produce_part_result)> done;
    uint64_t timer = 0;
};

// A partition as the broker sees it: its log plus what the broker keeps beside it.
struct partition {
    model::tp tp;
    std::unique_ptr<engine::partition_log> log;
    producer_state producers;
    partition_txns txns;  // open and aborted transactions
    config_map config;  // effective topic config
    // Long-polling fetches waiting for this partition to grow, by waiter id. Each callback runs
    // once, on this shard's thread, and is then removed.
    std::unordered_map<uint64_t, std::function<void()>> waiters;
    uint64_t retention_deleted_segments = 0;
    // Produces waiting for append-buffer room, in arrival order (issue #15: a busy partition
    // makes requests wait, it never refuses them, so nothing overtakes a waiting batch).
    std::deque<held_produce> held;
    uint64_t produces_held = 0;  // how many produces ever waited

    // Cluster mode (broker/replica.cc): the role in the partition's current leader epoch.
    replica_role role = replica_role::single;
    int32_t leader_id = -1;
    int32_t leader_epoch = 0;
    int32_t state_version = -1;  // of the partition-state znode this role came from
    int32_t controller_epoch = 0;
    std::vector<int32_t> replicas;
    std::unique_ptr<replication::leader_state> leader;  // while leading
    replication::leader_epoch_cache epochs;
    int64_t follower_hw = 0;  // the leader's high watermark as the last fetch told it
    std::map<uint64_t, ack_waiter> acks;  // by id, which is append order
    bool isr_change_in_flight = false;
    bool repairing = false;  // a damaged follower copy being replaced
    int64_t hw_checkpointed = -1;  // the high watermark last written to `high-watermark`
    // One past the last offset producer/transaction state has seen (appends in flight
    // included), and the offset of the last producer snapshot written or restored.
    int64_t tracked_end = 0;
    int64_t snapshot_at = -1;
    int64_t snapshot_synced_at = -1;  // snapshot_at when it was last made durable
    // cleanup.policy=compact: the background compactor (destroyed before the log), and the end
    // of the closed segments the last completed run covered.
    std::unique_ptr<engine::compactor> compactor;
    int64_t compacted_up_to = -1;

    // Single broker: everything written is replicated to the whole ISR (itself). A leader: the
    // ISR's smallest log end. A follower: what its leader last said, at most its own log end.
    int64_t high_watermark() const {
        if (leader) return leader->high_watermark()();
        if (role == replica_role::single) return log->log_end_offset()();
        return std::min(follower_hw, log->log_end_offset()());
    }
    // The high watermark, held back to the first offset of the oldest open transaction: what
    // a read_committed consumer may read.
    int64_t last_stable_offset() const {
        int64_t hw = high_watermark();
        auto first = txns.first_unstable_offset();
        return first ? std::min(hw, *first) : hw;
    }
    void notify_waiters();
};


struct fetch_part_result {
    kafka_error error = kafka_error::none;
    int64_t high_watermark = -1;
    int64_t last_stable_offset = -1;
    int64_t log_start_offset = -1;
    std::vector<file_region> regions;
    uint64_t bytes = 0;
    // read_committed: the aborted transactions among the returned batches (producer id, first
    // offset), so that the client drops their records.
    std::vector<std::pair<int64_t, int64_t>> aborted;
};

struct offset_lookup_result {
    kafka_error error = kafka_error::none;
    int64_t offset = -1;
    int64_t timestamp = -1;
    int32_t leader_epoch = 0;
};

class fetch_session_cache;

class shard {
public:
    shard(server& srv, unsigned id, runtime::reactor& r);
    ~shard();

    unsigned id() const { return _id; }
    runtime::reactor& reactor() { return _reactor; }
    server& srv() { return _srv; }
    // The incremental fetch sessions of the connections on this core (KIP-227).
    fetch_session_cache& fetch_sessions();

    partition* find(const model::tp& tp);
    // Opens (creating or recovering) a partition this core owns.
    // `created`: the partition is being created now (CreateTopics / CreatePartitions), so it
    // may go to any online log dir even while one is offline.
    result<partition*> open_partition(const model::tp& tp, const config_map& effective,
                                      bool created = false);
    // Partitions known here that could not be opened because their log dir is offline.
    bool offline(const model::tp& tp) const { return _offline.contains(tp); }
    // The error for a partition this core does not hold: KAFKA_STORAGE_ERROR when it is
    // offline, UNKNOWN_TOPIC_OR_PARTITION otherwise.
    kafka_error missing(const model::tp& tp) const;
    // Fail-stops every partition in `dir` (server::log_dir_failed).
    void take_dir_offline(const std::string& dir);
    // Opens every partition of every known topic that this core owns.
    void open_owned_partitions();
    // Closes the partition's log; when `remove_files`, deletes its directory afterwards.
    void close_partition(const model::tp& tp, bool remove_files, std::function<void()> done);
    // Applies new effective configs to this core's partitions of `topic`.
    void update_topic_config(const std::string& topic, const config_map& effective);
    // Closes every partition cleanly (shutdown).
    void close_all(std::function<void()> done);

    // Appends `batches` (rewritten in place; the caller keeps the bytes alive until `done`
    // runs). `done` runs on this shard's thread when the append is acknowledged per the
    // partition's fsync policy, or failed. When the partition's append buffer is full, or
    // earlier produces wait, the produce waits behind them (`notify(true)`, then
    // `notify(false)` once it is admitted) and is checked and appended in arrival order.
    void produce(const model::tp& tp, std::span<std::byte> batches,
                 std::function<void(produce_part_result)> done, hold_notifier notify = {},
                 produce_opts opts = {});
    // Reads up to `max_bytes` from `offset` (whole batches; at least one when min_one_batch).
    // `replica_id` >= 0: a follower's fetch (reads to the log end, reports its progress).
    // `current_leader_epoch` >= 0 is checked against this broker's (FENCED / UNKNOWN).
    fetch_part_result fetch(const model::tp& tp, int64_t offset, int32_t max_bytes,
                            bool read_committed, bool min_one_batch, int32_t replica_id = -1,
                            int32_t current_leader_epoch = -1);

    // Writes a transaction marker (COMMIT or ABORT control batch) for the producer's open
    // transaction, acknowledged like acks=all (broker/handle_txn.cc). A marker of an older
    // producer epoch than the partition knows is refused (INVALID_PRODUCER_EPOCH).
    void write_marker(const model::tp& tp, int64_t producer_id, int16_t producer_epoch, bool commit,
                      int32_t coordinator_epoch, std::function<void(kafka_error)> done);

    // Cluster mode (broker/replica.cc).
    // Brings this core's replicas in line with the cluster view: opens, closes, and takes the
    // leader or follower role of every partition per its state.
    void reconcile(std::shared_ptr<const replication::cluster_view> view);
    // What a replica fetcher needs of a partition it follows.
    struct replica_position {
        bool following = false;  // still a follower of `epoch`
        int32_t epoch = -1;      // the leader epoch it follows
        int64_t log_end = 0;
        int64_t log_start = 0;
        int64_t high_watermark = 0;
        int32_t latest_epoch = -1;  // the newest epoch in its own log
        replication::leader_epoch_cache epochs;
    };
    replica_position position(const model::tp& tp);
    // Appends batches fetched from the leader of `epoch` (their offsets kept); `done` gets the
    // new log end once written, or an error when the role changed meanwhile.
    void replica_append(const model::tp& tp, int32_t epoch,
                        std::shared_ptr<std::vector<std::byte>> batches, int64_t leader_hw,
                        std::function<void(result<int64_t>)> done);
    // Truncates a follower's log to `offset` (divergence from its leader), epochs included.
    void replica_truncate(const model::tp& tp, int32_t epoch, int64_t offset,
                          std::function<void(result<void>)> done);
    // OffsetForLeaderEpoch on this replica (the leader answers its followers).
    replication::epoch_end epoch_end_offset(const model::tp& tp, int32_t requested,
                                            int32_t current_leader_epoch, kafka_error& err);
    offset_lookup_result list_offset(const model::tp& tp, int64_t timestamp, bool read_committed);
    // Registers a one-shot callback for when any of `tps` (those on this core) grows.
    void add_waiter(const std::vector<model::tp>& tps, uint64_t id, std::function<void()> fn);
    void remove_waiter(const std::vector<model::tp>& tps, uint64_t id);
    result<int64_t> delete_records(const model::tp& tp, int64_t before_offset);

    // Runs size/time retention over this core's partitions.
    void run_retention();

    size_t partition_count() const { return _partitions.size(); }
    void for_each_partition(const std::function<void(const partition&)>& fn) const {
        for (const auto& [tp, p] : _partitions) fn(*p);
    }

    // The consumer groups this core coordinates (handle_group.cc), set by start_groups().
    std::shared_ptr<group_services> groups;
    // The transactions this core coordinates (handle_txn.cc), set by start_txns().
    std::shared_ptr<txn_services> transactions;

private:
    void watch_failures(partition& p);
    bool in_offline_dir(const partition& p) const;
    void rebuild_producer_state(partition& p);
    // Brings producer and transaction state up to date with one batch the log accepted (its
    // offsets assigned): sequences, open transactions, markers.
    void track_batch(partition& p, const model::batch_header& h, std::span<const std::byte> batch);
    // Checks producer sequences and appends (the partition has room).
    void append_now(partition* p, std::span<std::byte> batches,
                    std::function<void(produce_part_result)> done, produce_opts opts);
    // Admits waiting produces while the log has room; waits for room again if some remain.
    void admit_held(const model::tp& tp);
    void wait_for_room(partition& p);
    void schedule_retention();
    // Starts compacting a cleanup.policy=compact partition when segments closed since the
    // last run (below its last stable offset, without its aborted transactions).
    void maybe_compact(partition& p, int64_t now_ms);
    // Below which compaction may remove transaction markers (engine/compaction.h).
    int64_t marker_removal_bound(partition& p);
    // Writes the producer snapshot of a quiet partition (broker/producer_snapshot.h).
    static void save_snapshot(partition& p);
    void schedule_snapshots();
    // Cluster mode.
    void open_replica(const model::tp& tp, const config_map& effective);
    void become_leader(partition& p, const replication::partition_state& st);
    void become_follower(partition& p, const replication::partition_state& st, bool leader_live);
    void stop_leading(partition& p, kafka_error why);
    void complete_acks(partition& p);
    void wait_for_isr(partition& p, produce_part_result r, produce_opts opts,
                      std::function<void(produce_part_result)> done);
    // Shrinks the ISR of lagging followers; adds `joiner` (a follower whose fetch just showed
    // it in sync) when given. Only a fetching follower joins: one that stopped fetching keeps
    // its last progress, which must not bring it back.
    void check_isr(partition& p, std::optional<int32_t> joiner = std::nullopt);
    void schedule_isr_check();
    void count_isr_change(const std::vector<int32_t>& before, const std::vector<int32_t>& after);
    void save_epochs(partition& p);
    void checkpoint_high_watermarks();
    bool leads(const partition& p) const;

    server& _srv;
    unsigned _id;
    runtime::reactor& _reactor;
    std::unordered_map<model::tp, std::unique_ptr<partition>> _partitions;
    uint64_t _retention_timer = 0;
    uint64_t _snapshot_timer = 0;
    uint64_t _isr_timer = 0;
    int64_t _last_hw_checkpoint_ms = 0;
    uint64_t _next_ack_id = 1;
    bool _closing = false;
    std::unique_ptr<fetch_session_cache> _fetch_sessions;
    std::set<model::tp> _offline;
};

}  // namespace sluice::broker
