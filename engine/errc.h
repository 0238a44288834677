#pragma once
// Errors of the storage engine. Details (file name, byte position, offsets) travel in the
// `error`'s detail text; the code says what kind of failure it is so callers can map it (the
// broker maps these to Kafka error codes in one place).

#include "base/result.h"

namespace sluice::engine {
enum class errc {
    ok = 0,
    io_error,             // a read, write, fsync, rename or remove failed (detail names the file)
    corrupt,              // bytes on disk are not what the engine wrote (detail: file + position)
    invalid_batch,        // an appended batch failed validation; nothing was written
    batch_too_large,      // an appended batch is larger than max.message.bytes
    offset_out_of_range,  // a read or lookup named an offset outside [log start, log end]
    partition_failed,     // the partition is fail-stopped; detail holds the original error
    closed,               // the partition log is closed or closing
    busy,                 // another run of the same operation is in progress (compaction)
    invalid_argument,     // a caller passed an argument outside the documented range
    no_space,             // the log dir's filesystem is full (ENOSPC/EDQUOT); nothing was appended
};
const char* describe(errc e);
}  // namespace sluice::engine
SLUICE_DECLARE_ERRC(sluice::engine, errc)
