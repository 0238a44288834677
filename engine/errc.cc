#include "engine/errc.h"

namespace sluice::engine {
const char* describe(errc e) {
    switch (e) {
        case errc::ok: return "ok";
        case errc::io_error: return "I/O error";
        case errc::corrupt: return "corrupt log data";
        case errc::invalid_batch: return "invalid record batch";
        case errc::batch_too_large: return "record batch larger than max.message.bytes";
        case errc::offset_out_of_range: return "offset out of range";
        case errc::partition_failed: return "partition failed (fail-stop)";
        case errc::closed: return "partition log closed";
        case errc::busy: return "operation already in progress";
        case errc::invalid_argument: return "invalid argument";
        case errc::no_space: return "no space left in the log dir";
    }
    return "unknown engine error";
}
}  // namespace sluice::engine

SLUICE_DEFINE_ERRC(sluice::engine, errc, "engine", describe)
