#include "coord/log_reader.h"

#include <unistd.h>

#include <algorithm>

#include "engine/partition_log.h"

namespace sluice::coord {

result<log_storage::chunk> read_log_chunk(const engine::partition_log& log, int64_t from,
                                              size_t max_bytes) {
    log_storage::chunk out;
    int64_t start = std::max(from, log.log_start_offset()());
    int64_t end = log.log_end_offset()();
    if (start >= end) {
        out.next_offset = start;
        out.end = true;
        return out;
    }
    auto r = log.read(model::offset(start), max_bytes, model::offset(end), true);
    if (!r) return r.error();
    for (const auto& region : r->regions) {
        size_t at = out.batches.size();
        out.batches.resize(at + region.length);
        ssize_t n = ::pread(region.file->get(), out.batches.data() + at, region.length,
                            static_cast<off_t>(region.offset));
        if (n != static_cast<ssize_t>(region.length)) {
            return errno_error(n < 0 ? errno : EIO, "reading " + log.dir());
        }
    }
    out.next_offset = r->regions.empty() ? end : r->last_offset() + 1;
    out.end = out.next_offset >= end;
    return out;
}

}  // namespace sluice::coord
