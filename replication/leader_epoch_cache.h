#pragma once
// The leader-epoch history of one replica's log (KIP-101): for every leader epoch that wrote
// into the log, the offset of its first record. A replica that becomes a follower asks the
// leader where its own latest epoch ends (OffsetForLeaderEpoch) and truncates what the leader
// does not have, so divergent tails left by an old leader never survive a leadership change.
//
// Ownership and threading: one per partition replica, owned by the partition's core (or a
// test); not thread-safe. Persisting it (a checkpoint beside the log) is the owner's job; the
// entries are exposed for that.

#include <cstdint>
#include <vector>

#include "model/fundamental.h"

namespace sluice::replication {

struct epoch_entry {
    model::leader_epoch epoch;
    model::offset start_offset;
    bool operator==(const epoch_entry&) const = default;
};

// An OffsetForLeaderEpoch answer: the largest epoch at or below the requested one and the
// offset where it ends (the first offset of the next epoch, or the log end for the latest).
// Both are -1 (undefined) when the cache knows no epoch at or below the requested one and no
// later epoch either, i.e. nothing to compare with.
struct epoch_end {
    model::leader_epoch epoch{-1};
    model::offset end_offset{-1};
    bool undefined() const { return epoch() < 0 || end_offset() < 0; }
    bool operator==(const epoch_end&) const = default;
};

class leader_epoch_cache {
public:
    leader_epoch_cache() = default;
    explicit leader_epoch_cache(std::vector<epoch_entry> entries) : _entries(std::move(entries)) {}

    // `epoch` starts at `start` (a leader's first append in its epoch, or a follower copying a
    // batch of a newer epoch). Re-assigning the latest epoch is a no-op. Returns false (and
    // changes nothing) for an epoch older than the latest: epochs only grow. A start below the
    // latest entry's start drops the entries it overlaps (the log was rewritten there).
    bool assign(model::leader_epoch epoch, model::offset start);

    // The answer to OffsetForLeaderEpoch(`requested`) for a log ending at `log_end`.
    epoch_end end_offset_for(model::leader_epoch requested, model::offset log_end) const;

    // The log was truncated so that it ends at `log_end`: entries starting at or after it go.
    void truncate_from_end(model::offset log_end);
    // The log start moved to `log_start`: entries wholly below it go, and the first remaining
    // epoch is moved up to start there.
    void truncate_from_start(model::offset log_start);

    // The latest epoch, or -1 when empty.
    model::leader_epoch latest_epoch() const;
    const std::vector<epoch_entry>& entries() const { return _entries; }
    bool empty() const { return _entries.empty(); }

private:
    std::vector<epoch_entry> _entries;  // epochs and start offsets strictly increasing
};

// Where a follower whose log ends at `log_end` truncates, given the leader's answer to
// OffsetForLeaderEpoch for the follower's latest epoch (KIP-279). `done` is false when the
// leader's answer named an older epoch than the follower's: the follower truncates to
// `offset`, then asks again for its (new) latest epoch, until both agree. An undefined
// answer truncates to `high_watermark` (what the follower knows was committed).
struct truncation {
    model::offset offset;
    bool done = true;
};
truncation truncation_point(const leader_epoch_cache& follower, model::offset log_end,
                            model::offset high_watermark, const epoch_end& leader_answer);

}  // namespace sluice::replication
