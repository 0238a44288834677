#pragma once
// Reads a __consumer_offsets partition for the loader: whole batches copied out of the segment
// files through engine::partition_log::read. Runs on the partition's core.

#include <cstddef>
#include <cstdint>

#include "base/result.h"
#include "coord/group_coordinator.h"

namespace sluice::engine {
class partition_log;
}

namespace sluice::coord {

result<log_storage::chunk> read_log_chunk(const engine::partition_log& log, int64_t from,
                                              size_t max_bytes);

}  // namespace sluice::coord
