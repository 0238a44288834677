#include "engine/retention.h"

#include <vector>

namespace sluice::engine {

namespace {

// How many of the oldest `closed` segments are expired by time: each has a max timestamp older
// than `now_ms - retention_ms`. Stops at the first one that is not.
size_t expired_by_time(const std::vector<segment_info>& closed, int64_t retention_ms,
                       int64_t now_ms) {
    if (retention_ms < 0) return 0;
    const int64_t horizon_ms = now_ms - retention_ms;
    size_t n = 0;
    while (n < closed.size() && closed[n].max_timestamp() < horizon_ms) ++n;
    return n;
}

// How many of the oldest `closed` segments can go while what remains (the active segment
// included) is still at least `retention_bytes`.
size_t expired_by_size(const std::vector<segment_info>& closed, const segment_info& active,
                       int64_t retention_bytes) {
    if (retention_bytes < 0) return 0;
    uint64_t total_bytes = active.size_bytes;
    for (const auto& s : closed) total_bytes += s.size_bytes;
    const auto limit_bytes = static_cast<uint64_t>(retention_bytes);
    size_t n = 0;
    while (n < closed.size() && total_bytes - closed[n].size_bytes >= limit_bytes) {
        total_bytes -= closed[n].size_bytes;
        ++n;
    }
    return n;
}

}  // namespace

result<size_t> enforce_retention(partition_log& log, const retention_policy& policy,
                                 int64_t now_ms) {
    if (auto st = log.status(); !st) return st.error();
    if (policy.retention_ms < 0 && policy.retention_bytes < 0) return size_t{0};
    const std::vector<segment_info> closed = log.closed_segments();
    if (closed.empty()) return size_t{0};
    const size_t by_time = expired_by_time(closed, policy.retention_ms, now_ms);
    const size_t by_size = expired_by_size(closed, log.active_segment(), policy.retention_bytes);
    const size_t count = by_time > by_size ? by_time : by_size;
    SLUICE_ASSERT(count <= closed.size(), "retention counted past the closed segments");
    if (count == 0) return size_t{0};
    if (auto r = log.delete_oldest_segments(count); !r) return r.error();
    return count;
}

}  // namespace sluice::engine
