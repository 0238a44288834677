#pragma once
// The services a coordinator (groups, transactions) runs on, implemented by the broker on the
// coordinator's core and by in-memory fakes in tests: one-shot timers, and the partitions of the
// internal topic the coordinator keeps its state in (__consumer_offsets, __transaction_state).

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <span>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "model/record_batch.h"

namespace sluice::coord {

using bytes = std::vector<std::byte>;

// One-shot timers on the coordinator's thread.
class timer_service {
public:
    virtual ~timer_service() = default;
    virtual uint64_t schedule(int64_t delay_ms, std::function<void()> fn) = 0;
    virtual void cancel(uint64_t id) = 0;
};

// The partitions of a coordinator's internal topic as the coordinator needs them.
class log_storage {
public:
    virtual ~log_storage() = default;
    // True when this core owns `partition` and has it open.
    virtual bool owns(int32_t partition) = 0;
    // Appends one record batch; done(true) once it is durable per the partition's policy.
    virtual void append(int32_t partition, bytes batch, std::function<void(bool ok)> done) = 0;
    struct chunk {
        bytes batches;             // whole v2 batches
        int64_t next_offset = 0;   // where the next read starts
        bool end = false;          // the log end was reached
    };
    // Reads whole batches from `from` (at most about `max_bytes`, at least one batch).
    virtual result<chunk> read(int32_t partition, int64_t from, size_t max_bytes) = 0;
    // The partition's leader epoch (0 for a single broker): a transaction coordinator's epoch,
    // written into its markers so that partitions can tell a deposed coordinator's.
    virtual int32_t leader_epoch(int32_t partition) {
        (void)partition;
        return 0;
    }
};

// One step of a coordinator's replay of `partition`: reads about `max_bytes` from `next`, hands
// every whole batch to `on_batch`, and moves `next` past them. True once the log end was
// reached; the read's error otherwise (the caller serves what it read so far).
result<bool> replay_chunk(
    log_storage& storage, int32_t partition, int64_t& next, size_t max_bytes,
    const std::function<void(const model::batch_header&, std::span<const std::byte>)>& on_batch);

// A coordinator's timers: cancelled when the owner goes away, so none fires into a destroyed
// coordinator. Used on the owner's thread only.
class owned_timers {
public:
    explicit owned_timers(timer_service& t) : _timers(t) {}
    ~owned_timers();
    owned_timers(const owned_timers&) = delete;
    owned_timers& operator=(const owned_timers&) = delete;
    uint64_t schedule(int64_t delay_ms, std::function<void()> fn);
    // Cancels `id` (0: none) and sets it to 0.
    void cancel(uint64_t& id);

private:
    timer_service& _timers;
    std::set<uint64_t> _live;
};

// The partitions of its internal topic a coordinator has loaded, or is loading (with its
// loader's state).
template <class LoadState>
struct partition_loads {
    std::map<int32_t, std::unique_ptr<LoadState>> loading;
    std::set<int32_t> loaded;

    // Forgets the partitions `storage` no longer owns (leadership moved) and returns them.
    std::set<int32_t> drop_lost(log_storage& storage) {
        std::set<int32_t> lost;
        for (auto it = loading.begin(); it != loading.end();) {
            if (storage.owns(it->first)) {
                ++it;
            } else {
                lost.insert(it->first);
                it = loading.erase(it);
            }
        }
        for (auto it = loaded.begin(); it != loaded.end();) {
            if (storage.owns(*it)) {
                ++it;
            } else {
                lost.insert(*it);
                it = loaded.erase(it);
            }
        }
        return lost;
    }
};

// Kafka's partition for a group id or transactional id: abs(String.hashCode(key)) % partitions,
// with Java's hashCode over UTF-16 code units and Kafka's Utils.abs (MIN_VALUE -> 0).
int32_t partition_for(std::string_view key, int32_t partitions);

}  // namespace sluice::coord
