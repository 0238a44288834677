#pragma once
// A shard is the broker's state on one core: the partitions that core owns (DESIGN.md section 2:
// `shard = hash(topic, partition) % cores`) and the operations on them. Every method runs on the
// shard's reactor thread; other cores reach a shard through server::run_on().
//
// Lifecycle: created by the server on its core thread at start-up, which opens every partition
// the core owns (running recovery); destroyed on that thread after close_all().

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "base/fd.h"
#include "base/result.h"
#include "broker/kafka_error.h"
#include "broker/producer_state.h"
#include "broker/topic_config.h"
#include "engine/partition_log.h"
#include "model/fundamental.h"

namespace sluice::runtime {
class reactor;
}

namespace sluice::broker {

class server;
struct group_services;  // handle_group.cc

struct produce_part_result {
    kafka_error error = kafka_error::none;
    std::string message;
    int64_t base_offset = -1;
    int64_t log_append_time_ms = -1;
    int64_t log_start_offset = -1;
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
};

// A partition as the broker sees it: its log plus what the broker keeps beside it.
struct partition {
    model::tp tp;
    std::unique_ptr<engine::partition_log> log;
    producer_state producers;
    config_map config;  // effective topic config
    // Long-polling fetches waiting for this partition to grow, by waiter id. Each callback runs
    // once, on this shard's thread, and is then removed.
    std::unordered_map<uint64_t, std::function<void()>> waiters;
    uint64_t retention_deleted_segments = 0;
    // Produces waiting for append-buffer room, in arrival order (issue #15: a busy partition
    // makes requests wait, it never refuses them, so nothing overtakes a waiting batch).
    std::deque<held_produce> held;
    uint64_t produces_held = 0;  // how many produces ever waited

    // Single broker: everything written is replicated to the whole ISR (itself).
    int64_t high_watermark() const { return log->log_end_offset()(); }
    void notify_waiters();
};


struct fetch_part_result {
    kafka_error error = kafka_error::none;
    int64_t high_watermark = -1;
    int64_t last_stable_offset = -1;
    int64_t log_start_offset = -1;
    std::vector<file_region> regions;
    uint64_t bytes = 0;
};

struct offset_lookup_result {
    kafka_error error = kafka_error::none;
    int64_t offset = -1;
    int64_t timestamp = -1;
};

class shard {
public:
    shard(server& srv, unsigned id, runtime::reactor& r);
    ~shard();

    unsigned id() const { return _id; }
    runtime::reactor& reactor() { return _reactor; }
    server& srv() { return _srv; }

    partition* find(const model::tp& tp);
    // Opens (creating or recovering) a partition this core owns.
    result<partition*> open_partition(const model::tp& tp, const config_map& effective);
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
                 std::function<void(produce_part_result)> done, hold_notifier notify = {});
    // Reads up to `max_bytes` from `offset` (whole batches; at least one when min_one_batch).
    fetch_part_result fetch(const model::tp& tp, int64_t offset, int32_t max_bytes,
                            bool read_committed, bool min_one_batch);
    offset_lookup_result list_offset(const model::tp& tp, int64_t timestamp, bool read_committed);
    // Registers a one-shot callback for when any of `tps` (those on this core) grows.
    void add_waiter(const std::vector<model::tp>& tps, uint64_t id, std::function<void()> fn);
    void remove_waiter(const std::vector<model::tp>& tps, uint64_t id);
    result<int64_t> delete_records(const model::tp& tp, int64_t before_offset);

    // Runs size/time retention over this core's partitions.
    void run_retention();

    size_t partition_count() const { return _partitions.size(); }

    // The consumer groups this core coordinates (handle_group.cc), set by start_groups().
    std::shared_ptr<group_services> groups;

private:
    std::string partition_dir_for(const model::tp& tp) const;
    void rebuild_producer_state(partition& p);
    // Checks producer sequences and appends (the partition has room).
    void append_now(partition* p, std::span<std::byte> batches,
                    std::function<void(produce_part_result)> done);
    // Admits waiting produces while the log has room; waits for room again if some remain.
    void admit_held(const model::tp& tp);
    void wait_for_room(partition& p);
    void schedule_retention();

    server& _srv;
    unsigned _id;
    runtime::reactor& _reactor;
    std::unordered_map<model::tp, std::unique_ptr<partition>> _partitions;
    uint64_t _retention_timer = 0;
    bool _closing = false;
};

}  // namespace sluice::broker
