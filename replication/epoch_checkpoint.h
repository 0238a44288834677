#pragma once
// The leader-epoch checkpoint of one partition replica: `<partition dir>/leader-epoch-checkpoint`
// in Kafka's text format (docs/formats/leader-epoch-checkpoint.md), so that a restarted broker
// still knows where each of its leader epochs starts and can answer OffsetForLeaderEpoch and
// truncate correctly (KIP-101) without scanning its log.
//
// The owner writes it whenever an epoch is added or entries are truncated, before appending any
// batch of a new epoch; at open it reads it and calls truncate_from_end(log end) (the file may
// be ahead of a log that lost its unflushed tail, never behind). Replaced atomically.
//
// Threading: blocking file I/O on the caller's thread (the partition's core at leadership
// changes, which are rare).

#include <string>

#include "base/result.h"
#include "engine/file.h"
#include "replication/leader_epoch_cache.h"

namespace sluice::replication {

inline constexpr const char* epoch_checkpoint_file = "leader-epoch-checkpoint";

// An empty cache when the file does not exist; errc::store_corrupt (naming the file and line)
// when it does not parse, counts wrong, or its epochs or offsets do not strictly increase.
result<leader_epoch_cache> read_epoch_checkpoint(engine::file_system& fs, const std::string& dir);
result<void> write_epoch_checkpoint(engine::file_system& fs, const std::string& dir,
                                    const leader_epoch_cache& cache);

}  // namespace sluice::replication
