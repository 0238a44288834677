#pragma once
// The producer-state snapshot of a partition (`producer.snapshot`, docs/formats/producer_snapshot.md):
// every producer's epoch and recent batches, and the open transactions, as of one offset. On
// open the broker restores it and replays only the batches after that offset, instead of the
// whole log. Written at a clean close and, while a partition is quiet (no append in flight),
// every sluice.producer.snapshot.interval.ms. Runs on the partition's core.

#include <cstdint>
#include <optional>
#include <string>

#include "base/result.h"

namespace sluice::broker {

class producer_state;
class partition_txns;

// Writes the snapshot of the state as of `offset` (atomically: temporary file, then rename).
result<void> save_producer_snapshot(const std::string& dir, int64_t offset,
                                    const producer_state& producers, const partition_txns& txns);
// Makes the snapshot file and its rename durable (fdatasync, then the directory's fsync). Not
// done on every save: only when something relies on no older snapshot coming back after a
// crash (compaction removing transaction markers past it).
result<void> sync_producer_snapshot(const std::string& dir);
// Restores the snapshot into `producers` and `txns` when it is intact and its offset lies in
// [log_start, log_end]; returns that offset. Anything else (absent, torn, from another log)
// returns nullopt and leaves both untouched.
std::optional<int64_t> load_producer_snapshot(const std::string& dir, int64_t log_start,
                                              int64_t log_end, producer_state& producers,
                                              partition_txns& txns);
// Removes the snapshot (the log was truncated below it).
void remove_producer_snapshot(const std::string& dir);

}  // namespace sluice::broker
