#pragma once
// What the leader of one partition tracks about its followers (DESIGN.md section 7): each
// replica's log end as its fetches report it, when it was last caught up, the in-sync replica
// set (ISR) and the high watermark derived from them.
//
// Rules (Kafka's, KIP-101 / KIP-207 / replica.lag.time.max.ms):
//  - A follower's fetch from offset F says it holds everything below F: its log end is F.
//  - It is caught up at a fetch that reaches the leader's log end, or reaches the log end the
//    leader had at the follower's previous fetch (then it was caught up at that earlier time).
//  - The high watermark is the smallest log end in the ISR (the leader's own included); it only
//    moves forward within a leadership, and it never passes a follower of the ISR whose log end
//    is still unknown.
//  - An ISR member not caught up for `lag_max_ms` should leave (lagging()); a replica outside
//    the ISR whose log end reached both the high watermark and the start of the leader's epoch
//    may join (joinable()). The change itself is a conditional write the owner makes (ZooKeeper
//    in cluster mode); set_isr() applies it once it has succeeded.
//  - acks=all may be acknowledged only while the ISR has at least min.insync.replicas members.
//
// Ownership and threading: one per partition that this broker leads, created when it becomes
// leader (with the leader epoch, replicas and ISR the controller chose), dropped when it stops;
// owned by the partition's core; not thread-safe. Pure bookkeeping, no I/O.

#include <cstdint>
#include <optional>
#include <vector>

#include "model/fundamental.h"

namespace sluice::replication {

class leader_state {
public:
    leader_state(model::node_id self, model::leader_epoch epoch, model::offset epoch_start,
                 std::vector<model::node_id> replicas, std::vector<model::node_id> isr,
                 model::offset log_end, model::offset high_watermark, int64_t now_ms);

    model::node_id self() const { return _self; }
    model::leader_epoch epoch() const { return _epoch; }
    const std::vector<model::node_id>& replicas() const { return _replicas; }
    const std::vector<model::node_id>& isr() const { return _isr; }
    model::offset high_watermark() const { return _hw; }
    model::offset log_end() const { return _log_end; }

    // The leader's own log grew (an append was written). Returns true when the high watermark
    // moved (an ISR of one).
    bool on_append(model::offset log_end);
    // Follower `id` fetched from `fetch_offset`. Returns true when the high watermark moved.
    // Fetches from replicas not in the assignment are ignored (false).
    bool on_fetch(model::node_id id, model::offset fetch_offset, int64_t now_ms);

    // ISR members (never the leader) not caught up within `lag_max_ms` of `now_ms`.
    std::vector<model::node_id> lagging(int64_t now_ms, int64_t lag_max_ms) const;
    // Replicas outside the ISR that are in sync now.
    std::vector<model::node_id> joinable() const;
    // Applies an ISR the owner has written (it must contain the leader). The high watermark is
    // recomputed: a smaller ISR may let it move.
    bool set_isr(std::vector<model::node_id> isr);

    // The assignment changed (a reassignment adds or removes replicas): followers kept keep
    // their progress, new ones start with a full lag window. The ISR is not changed here.
    void set_replicas(std::vector<model::node_id> replicas, int64_t now_ms);

    bool in_isr(model::node_id id) const;
    // A follower's log end as last reported, if any.
    std::optional<model::offset> follower_log_end(model::node_id id) const;

private:
    struct progress {
        model::node_id id;
        int64_t log_end = -1;               // -1: no fetch seen in this leadership
        int64_t last_caught_up_ms = 0;
        int64_t last_fetch_ms = 0;
        int64_t leader_end_at_last_fetch = -1;
    };
    progress* find(model::node_id id);
    const progress* find(model::node_id id) const;
    bool advance_high_watermark();

    model::node_id _self;
    model::leader_epoch _epoch;
    model::offset _epoch_start;
    std::vector<model::node_id> _replicas;
    std::vector<model::node_id> _isr;
    std::vector<progress> _followers;
    model::offset _log_end;
    model::offset _hw;
};

}  // namespace sluice::replication
