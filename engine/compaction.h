#pragma once
// Log compaction (cleanup.policy=compact, and the compact half of compact,delete): keeps the
// latest record of every key in the closed segments of a partition log, drops tombstones once
// they are older than delete.retention.ms, and keeps every retained record at its original offset.
// README.md "Compaction" has the rules in prose; in short:
//
//  - Only closed segments are compacted; the active segment never is.
//  - A key map (key -> latest offset) is built over the closed segments, oldest first, bounded by
//    `compaction_options::key_map_max_bytes`. When the keys of all closed segments do not fit,
//    only the prefix of segments whose keys did fit is cleaned this round (the records beyond it
//    still count as "newer" for keys already in the map, which is always safe).
//  - A record is kept when it has no key, or when it is the latest record of its key -- unless it
//    is a tombstone (null value) in a segment whose max timestamp is older than
//    now - delete_retention_ms. The tombstone clock is the segment's max timestamp: a tombstone
//    lives at least delete.retention.ms after the newest record of its segment was written (by
//    producer CreateTime or LogAppendTime, whichever the topic uses).
//  - Records of aborted transactions (compaction_options::aborted) are dropped and ignored by
//    the key map.
//  - A transaction marker (control batch) is removed once it is safe, as Kafka's cleaner does:
//    when this cleaning pass met no data batch of its transaction (an earlier pass removed them
//    all), its segment is past delete.retention.ms (the tombstone rule, so a consumer part way
//    through has time to see it), it lies below `marker_removal_below`, it is not the last batch
//    of its producer among the closed segments (that one carries the producer's latest epoch,
//    which fencing needs) and not the last batch of its segment. Every other control batch is
//    copied unchanged. compaction_stats::markers_removed lists the removed markers so the
//    owner can drop their aborted-transaction index entries. Batches that keep every record
//    are copied unchanged (no recompression). Batches that lose records are rebuilt with the same
//    base offset, last offset delta, partition leader epoch, producer id/epoch/base sequence,
//    attributes and codec (gzip, snappy, lz4, zstd: decompressed, filtered, recompressed), and
//    the remaining record count. Batches left with no record are dropped, except the last batch
//    of a segment, which stays as an empty batch so the segment still ends at the same offset.
//  - Segments with nothing to drop are left alone (not rewritten).
//
// Threading: `compact_segments` is synchronous and touches only files (pread/write/fdatasync
// through a file_system); it runs on a worker thread while the owning reactor keeps appending,
// because closed segments are immutable. `compactor` is the driver: created, started and
// destroyed on the reactor thread that owns the partition log; it runs compact_segments on its own
// worker thread and swaps the rewritten segments in with partition_log::replace_segment back on
// the reactor thread.

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <vector>

#include "base/result.h"
#include "engine/file.h"
#include "engine/partition_log.h"
#include "model/record_batch.h"
#include "model/records.h"

namespace sluice::runtime {
class reactor;
}

namespace sluice::engine {

struct compaction_options {
    // delete.retention.ms: how long a tombstone is kept, counted from its segment's max timestamp.
    int64_t delete_retention_ms = 24LL * 3600 * 1000;
    // Bound of the key map (key bytes plus a fixed per-entry overhead, see key_map). Kafka's
    // log.cleaner.dedupe.buffer.size plays the same role.
    size_t key_map_max_bytes = size_t{64} << 20;
    // Largest batch read from a segment (bytes, log overhead included): the read buffer bound.
    size_t max_batch_bytes = size_t{16} << 20;
    // Bound of a decompressed batch payload.
    size_t max_decompressed_bytes = model::default_max_decompressed_bytes;
    // The cleaned file is written in chunks of this many bytes.
    size_t write_chunk_bytes = size_t{1} << 20;
    // Called on the worker thread after every cleaned file is written and synced, before the
    // result goes back to the reactor. Tests use it to hold a compaction in flight.
    std::function<void()> before_swap_hook;
    // Aborted transactions of the partition (its aborted-transaction index): producer id ->
    // [first offset, ABORT marker offset] ranges. Their data batches are removed, and never enter
    // the key map, so an aborted record neither survives nor hides an older committed value of
    // its key (Kafka's cleaner does the same). Markers go later, by the marker rule above.
    std::unordered_map<int64_t, std::vector<std::pair<int64_t, int64_t>>> aborted;
    // Only the closed segments wholly below this offset are cleaned: the partition's last
    // stable offset, so that records of a transaction still open are neither removed nor used
    // to hide older values (its outcome is not known yet).
    int64_t clean_below_offset = INT64_MAX;
    // Markers at or past this offset stay (the owner passes the offset of the producer-state
    // snapshot a restart would replay from -- a replay must meet every marker past it -- and,
    // on a leader, the smallest log end of its followers, which must still copy them).
    int64_t marker_removal_below = INT64_MAX;
    // Called on the reactor thread before a cleaned segment that drops markers is swapped in,
    // with those markers (producer id, offset); false keeps the segment as it is. The broker
    // drops their aborted-transaction index entries here, durably, so that no entry outlives
    // its marker even across a crash (an entry without its marker would make a read_committed
    // client drop the producer's later records; a marker without an entry is harmless once its
    // transaction's records are gone).
    std::function<bool(const std::vector<std::pair<int64_t, int64_t>>&)> before_markers_removed;
    // Whether a data batch belongs to one of `aborted`.
    bool is_aborted(const model::batch_header& h) const;
};

struct compaction_stats {
    size_t segments_mapped = 0;      // closed segments whose keys fit in the key map
    size_t segments_beyond_map = 0;  // closed segments not cleaned this round (map full)
    size_t segments_rewritten = 0;   // replaced by a cleaned file
    size_t segments_unchanged = 0;   // nothing to drop: left as they were
    size_t segments_skipped = 0;     // deleted or changed while the worker ran: not replaced
    uint64_t records_read = 0;
    uint64_t records_kept = 0;
    uint64_t records_superseded = 0;  // a newer record of the same key exists
    uint64_t tombstones_dropped = 0;
    uint64_t aborted_records_dropped = 0;  // records of aborted transactions
    uint64_t batches_copied = 0;     // kept byte for byte
    uint64_t batches_rewritten = 0;  // rebuilt with fewer records
    uint64_t batches_emptied = 0;    // kept with no records (last batch of a segment)
    uint64_t batches_dropped = 0;
    uint64_t markers_dropped = 0;    // transaction markers removed (see the marker rule)
    uint64_t bytes_read = 0;     // segment bytes scanned by the cleaning pass
    uint64_t bytes_written = 0;  // bytes of cleaned files that replaced segments
    size_t key_map_entries = 0;
    size_t key_map_bytes = 0;
    // The markers removed from segments that were replaced: (producer id, marker offset).
    std::vector<std::pair<int64_t, int64_t>> markers_removed;
};

// key -> offset of its latest record, with a byte bound. Owned by one thread.
class key_map {
  public:
    // Accounted per entry besides the key bytes: node, string header, bucket, offset.
    static constexpr size_t entry_overhead_bytes = 64;

    explicit key_map(size_t max_bytes) : _max_bytes(max_bytes) {}
    // Records `offset` as the latest of `key` (unless a larger one is recorded). Returns
    // false, changing nothing, when a new key would take the map past its bound.
    bool update(model::bytes_view key, int64_t offset);
    std::optional<int64_t> latest(model::bytes_view key) const;
    size_t size() const { return _map.size(); }
    size_t bytes() const { return _bytes; }

  private:
    struct hash {
        using is_transparent = void;
        size_t operator()(std::string_view s) const { return std::hash<std::string_view>()(s); }
    };
    std::unordered_map<std::string, int64_t, hash, std::equal_to<>> _map;
    size_t _max_bytes;
    size_t _bytes = 0;
};

// What filter_batch did with a batch.
enum class batch_fate { copied, rewritten, emptied, dropped };

// Reusable buffers of one cleaning thread.
struct compaction_scratch {
    std::vector<std::byte> decompressed;
    std::vector<model::record_view> records;
    std::vector<model::record_header> headers;
    model::batch_builder builder;
};

// The pure core of compaction: appends to `out` what remains of one batch (`batch` holds its
// bytes, `h` its parsed header) given the key map. `drop_tombstones` says whether the batch's
// segment is past delete.retention.ms; `keep_if_empty` keeps an empty batch instead of dropping
// it. Counts into `stats`. Errors: the batch's records are malformed or do not decompress
// (model errors), or recompression failed.
// `aborted`: the batch belongs to an aborted transaction, so none of its records stays.
result<batch_fate> filter_batch(model::bytes_view batch, const model::batch_header& h,
                                const key_map& map, bool drop_tombstones, bool keep_if_empty,
                                size_t max_decompressed_bytes, compaction_scratch& scratch,
                                std::vector<std::byte>& out, compaction_stats& stats,
                                bool aborted = false);

// A segment rewritten by compact_segments: `<segment path>.cleaned` is written and synced.
struct cleaned_segment {
    segment_info original;  // as it was when compaction started
    std::string cleaned_path;
    std::vector<std::pair<int64_t, int64_t>> markers_removed;  // (producer id, offset)
};

struct compaction_output {
    std::vector<cleaned_segment> cleaned;
    compaction_stats stats;
};

// Synchronous compaction of `closed` (oldest first, all closed): builds the key map, writes a
// cleaned file for every segment that loses records, and fdatasyncs it. Touches no partition_log;
// safe on any thread while the log keeps appending. Stops early with errc::closed when `cancel`
// becomes true. On error every cleaned file it wrote is removed. errc::invalid_argument when the
// key map cannot hold the keys of even the oldest segment.
result<compaction_output> compact_segments(file_system& fs, std::span<const segment_info> closed,
                                           const compaction_options& opts, int64_t now_ms,
                                           const std::atomic<bool>* cancel = nullptr);

// Runs compaction of one partition log in the background. Owned by whoever owns the partition
// (the broker's per-partition state), on that partition's reactor thread; it must be destroyed
// before the partition log and the reactor. One compaction at a time.
class compactor {
  public:
    using done_callback = std::function<void(result<compaction_stats>)>;

    compactor() = default;
    // Cancels a running compaction (the worker stops at its next batch), waits for the worker
    // thread and drops its result; the callback is not called. Cleaned files left behind are
    // removed by the next run or ignored by the log's recovery.
    ~compactor();
    compactor(const compactor&) = delete;
    compactor& operator=(const compactor&) = delete;

    // Snapshots the closed segments of `log`, compacts them on a worker thread (reading through
    // `fs`, which must allow synchronous calls from that thread -- posix_file_system does), then
    // on the reactor thread replaces each rewritten segment that is still unchanged with
    // replace_segment and calls `done` there. `now_ms` is the tombstone clock's "now".
    // errc::busy if a compaction is already running. Appends, reads and retention go on meanwhile;
    // a segment deleted or truncated meanwhile is simply not replaced (stats.segments_skipped).
    result<void> start(partition_log& log, file_system& fs, runtime::reactor& r,
                       compaction_options opts, int64_t now_ms, done_callback done);
    bool running() const { return _running; }

  private:
    struct run_state;
    void finish(const std::shared_ptr<run_state>& st, result<compaction_output> out);

    std::shared_ptr<run_state> _state;
    std::thread _worker;
    bool _running = false;
};

}  // namespace sluice::engine
