#pragma once

#include "base/result.h"

namespace sluice::model {
enum class errc {
    ok = 0,
    truncated,            // fewer bytes than the batch says it has
    bad_magic,            // not a v2 batch
    bad_length,           // batch length below the header size or above the limit
    crc_mismatch,         // stored CRC-32C differs from the computed one
    bad_record_count,     // negative count, or count disagrees with last offset delta
    bad_records,          // record framing inside the batch does not parse
    unknown_compression,  // codec id outside 0..4
    compression_failed,   // the payload does not decompress
    too_large,            // over message.max.bytes
};
const char* describe(errc e);
}  // namespace sluice::model
SLUICE_DECLARE_ERRC(sluice::model, errc)
