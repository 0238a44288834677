#pragma once
// Time- and size-based retention of a partition log (Kafka's retention.ms / retention.bytes with
// cleanup.policy=delete, or the "delete" half of compact,delete). Whole closed segments are
// deleted, oldest first; the active segment never is. Deleting goes through
// partition_log::delete_oldest_segments, which advances and checkpoints the log start offset, so
// a reopened log starts where retention left it and reads below it get offset_out_of_range.
//
// Threading: call on the reactor thread that owns the log (it is a synchronous control-path call:
// a few unlink(2)s and one checkpoint write). The broker calls it from a periodic timer
// (log.retention.check.interval.ms).

#include <cstddef>
#include <cstdint>

#include "base/result.h"
#include "engine/partition_log.h"

namespace sluice::engine {

struct retention_policy {
    int64_t retention_ms = -1;     // retention.ms; -1 = unlimited
    int64_t retention_bytes = -1;  // retention.bytes; -1 = unlimited
};

// Deletes the oldest closed segments that fall outside the policy (time: a segment whose max
// timestamp is older than now - retention_ms; size: while the log minus its oldest closed segment
// is still >= retention_bytes). Never the active segment. Returns how many segments were deleted.
//
// Like Kafka, deletion stops at the first closed segment that is within the policy: a segment is
// never deleted while an older one is kept. A closed segment holding no batch (max timestamp -1)
// counts as expired by time. Fails (deleting nothing more) if the log is fail-stopped or a removal
// or the checkpoint write fails; segments deleted before the failure stay deleted.
result<size_t> enforce_retention(partition_log& log, const retention_policy& policy,
                                 int64_t now_ms);

}  // namespace sluice::engine
