#pragma once
// The transaction coordinator of one core: the transactional ids whose __transaction_state
// partition that core leads (Kafka: abs(javaHashCode(transactional id)) %
// transaction.state.log.num.partitions), DESIGN.md section 8.
//
// Per transactional id (Kafka's TransactionCoordinator in small):
//   InitProducerId  -> a producer id and a new epoch (fences every older producer of the id);
//                      an open transaction of the previous incarnation is aborted first
//                      (CONCURRENT_TRANSACTIONS until that is done, and the client retries).
//   AddPartitionsToTxn / AddOffsetsToTxn -> Ongoing, with the partitions that will need markers.
//   EndTxn          -> PrepareCommit / PrepareAbort (durable, then answered), markers written to
//                      every partition of the transaction through the marker_writer, retried
//                      until each partition has its marker, then CompleteCommit / CompleteAbort
//                      (its record deferred: the id's next record, usually the next
//                      transaction's Ongoing, supersedes it; completion_write_delay_ms).
//   A transaction open longer than its timeout is aborted with the epoch bumped, so that its
//   producer is fenced; an id idle past transactional.id.expiration.ms is forgotten.
//
// Persistence: every state change is a record appended to the id's __transaction_state
// partition (coord/txn_format.h) and takes effect once the append completed. A request that
// finds another change of the same id in flight, or its previous transaction still completing,
// is held and run again once that is done (at most 16 per id; beyond that, and for a new
// incarnation's InitProducerId that must first abort an open transaction, the answer is
// CONCURRENT_TRANSACTIONS, which clients retry). On start, or on
// becoming the partition's leader, the coordinator replays the partition; a transaction found in
// PrepareCommit / PrepareAbort has its markers written again (markers are idempotent).
//
// Threading and ownership: one coordinator per core, created and used only on that core's
// thread; callbacks passed in run exactly once on this thread, possibly before the call returns.

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "base/result.h"
#include "coord/services.h"
#include "coord/txn_format.h"
#include "coord/txn_types.h"

namespace sluice::runtime {
class clock;
}

namespace sluice::coord {

inline constexpr const char* txn_topic = "__transaction_state";

struct txn_coordinator_config {
    int32_t state_partitions = 50;           // transaction.state.log.num.partitions
    int32_t max_timeout_ms = 900000;         // transaction.max.timeout.ms
    // transaction.abort.timed.out.transaction.cleanup.interval.ms
    int64_t abort_check_interval_ms = 10000;
    int64_t id_expiration_ms = 7LL * 24 * 3600 * 1000;  // transactional.id.expiration.ms
    int64_t retry_backoff_ms = 200;          // between marker (or state write) attempts
    // How long a CompleteCommit / CompleteAbort record may wait for the id's next state record
    // to supersede it (0: written at once). The transaction is complete when its markers are,
    // so the wait delays nobody; a producer that goes on saves one append per transaction.
    int64_t completion_write_delay_ms = 100;
};

// Writes transaction markers on partition leaders: this broker's partitions directly, others'
// through WriteTxnMarkers.
class marker_writer {
public:
    struct marker {
        int64_t producer_id = -1;
        int16_t producer_epoch = -1;
        bool commit = false;
        int32_t coordinator_epoch = 0;
    };
    virtual ~marker_writer() = default;
    // Writes `m` on every partition; `done(failed)` names the partitions whose marker is not
    // written yet (retriable: no leader, leader moved, timeout). A partition that no longer
    // exists counts as written.
    virtual void write(const marker& m, std::vector<txn_partition> partitions,
                       std::function<void(std::vector<txn_partition> failed)> done) = 0;
};

class txn_coordinator {
public:
    using pid_allocator = std::function<result<int64_t>()>;

    txn_coordinator(txn_coordinator_config cfg, runtime::clock& clock, timer_service& timers,
                    log_storage& storage, marker_writer& markers, pid_allocator allocate_pid);
    ~txn_coordinator();
    txn_coordinator(const txn_coordinator&) = delete;
    txn_coordinator& operator=(const txn_coordinator&) = delete;

    // Replays every owned partition not loaded yet; starts the timeout/expiry checks.
    void load_owned();
    bool loaded(int32_t partition) const;
    // Forgets the partitions whose leadership moved away (their ids go with them).
    void unload_lost();

    void init_producer_id(init_pid_request req, std::function<void(init_pid_result)> done);
    // One error for the whole request, as Kafka answers every partition alike.
    void add_partitions(add_partitions_request req, std::function<void(errc)> done);
    void end_txn(end_txn_request req, std::function<void(errc)> done);
    txn_description describe(const std::string& transactional_id) const;
    std::vector<txn_listing> list() const;

    // Aborts transactions open past their timeout and forgets expired ids (run by a timer).
    void check_timeouts();

    const txn_coordinator_config& config() const { return _cfg; }
    size_t id_count() const { return _ids.size(); }

    struct entry;

private:
    struct load_state;

    errc check_partition(const std::string& id, int32_t& partition) const;
    entry* find(const std::string& id);
    const entry* find(const std::string& id) const;
    // Checks a request's producer id and epoch against the id's; none when they match.
    errc check_producer(const entry* e, int64_t producer_id, int16_t producer_epoch) const;
    // Appends the new state of `e`; it becomes e's state when the append completed.
    void persist(entry& e, const format::txn_value& next, std::function<void(bool)> done);
    void bump_epoch(format::txn_value& v);
    // Holds a request of `e` until its next state write completes (false: too many wait
    // already); persist() runs the held requests again then.
    bool wait_turn(entry& e, std::function<void()> retry);
    // Decides to abort e's open transaction with a bumped epoch (timeout, or a new incarnation).
    void fence_and_abort(entry& e, const char* why);
    void write_markers(const std::string& id);
    // Every marker written: the completion, deferred (completion_write_delay_ms) or written.
    void finish_markers(const std::string& id);
    // Arms the timer that writes e's completion unless another record supersedes it.
    void defer_completion(entry& e);
    void write_completion(const std::string& id, const format::txn_value& next);
    format::txn_value completed(const format::txn_value& v) const;
    void load_step(int32_t partition);
    void finish_load(int32_t partition, load_state& st);
    void schedule_check();
    uint64_t schedule(int64_t delay_ms, std::function<void()> fn);
    void cancel(uint64_t& id);

    txn_coordinator_config _cfg;
    runtime::clock& _clock;
    timer_service& _timers;
    log_storage& _storage;
    marker_writer& _markers;
    pid_allocator _allocate_pid;
    std::unordered_map<std::string, std::unique_ptr<entry>> _ids;
    partition_loads<load_state> _parts;
    uint64_t _check_timer = 0;
    uint64_t _incarnations = 0;  // entry::incarnation, counted per coordinator
    owned_timers _owned_timers{_timers};
};

}  // namespace sluice::coord
