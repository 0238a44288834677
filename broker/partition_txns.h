#pragma once
// The transactions of one partition as its log holds them (Kafka's ProducerStateManager and
// TransactionIndex in small): which producers have a transaction open and from which offset --
// the oldest of those bounds the last stable offset (LSO) -- and the aborted transactions, kept
// in memory and in one `.txnindex` file per segment (docs/formats/txn_index.md) so that a
// read_committed fetch can tell its client which records to drop.
//
// Fed with every batch the partition's log accepts, in offset order (leader appends, follower
// copies, and the start-up replay alike). Owned by the partition's core.

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "base/result.h"

namespace sluice::broker {

struct aborted_txn {
    int64_t producer_id = -1;
    int64_t first_offset = -1;
    int64_t last_offset = -1;  // the ABORT marker's offset
    int64_t last_stable_offset = -1;
    int64_t segment_base = 0;  // whose .txnindex holds it
    bool operator==(const aborted_txn&) const = default;
};

class partition_txns {
public:
    // Reads every .txnindex file of `dir`, dropping entries wholly below `log_start`. A file
    // whose size is not a whole number of entries is read up to its last whole entry.
    result<void> load(const std::string& dir, int64_t log_start);

    // A transactional data batch starting at `base_offset` was appended.
    void on_data(int64_t producer_id, int64_t base_offset);
    // A marker at `offset` (in the segment based at `segment_base`) ended the producer's
    // transaction. An ABORT of an open transaction is indexed; `lso` is the partition's last
    // stable offset before the marker. Returns the index write's error, if any.
    result<void> on_marker(int64_t producer_id, bool commit, int64_t offset, int64_t segment_base,
                           int64_t lso);

    // The first offset of the oldest open transaction.
    std::optional<int64_t> first_unstable_offset() const;
    const std::map<int64_t, int64_t>& open() const { return _open; }  // producer id -> first offset
    // Aborted transactions that overlap [from, to).
    std::vector<aborted_txn> aborted_between(int64_t from, int64_t to) const;
    const std::vector<aborted_txn>& aborted() const { return _aborted; }

    // After the log was truncated to `end`: drops aborted entries at or past it and rewrites
    // the index files.
    result<void> truncate(int64_t end);
    // Before compaction removes these markers, (producer id, marker offset): drops their
    // entries and rewrites the index files that held them, durably. On error nothing changed.
    result<void> forget_markers(const std::vector<std::pair<int64_t, int64_t>>& markers);
    // After retention or DeleteRecords moved the log start: drops entries wholly below it and
    // removes index files of segments that are gone.
    void drop_before(int64_t log_start);

private:
    result<void> rewrite_files();
    // Writes the index files of `entries` atomically (temporary file, fsync, rename); only the
    // segment bases in `only` when it is given. A file left with no entry is removed.
    result<void> write_files(const std::vector<aborted_txn>& entries,
                             const std::set<int64_t>* only);
    std::string file_for(int64_t segment_base) const;

    std::string _dir;
    std::map<int64_t, int64_t> _open;
    std::vector<aborted_txn> _aborted;  // in marker (last offset) order
};

}  // namespace sluice::broker
