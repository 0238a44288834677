#pragma once
// The log of one partition: an ordered list of segments on disk, the active one appended
// through io_uring, read back as file regions that the network layer sends without copying.
//
// Ownership and threading: one `partition_log` per partition, created by `open()` on the
// reactor thread that owns the partition (DESIGN.md section 2) and used only from it.
// Callbacks run on that thread, from reactor completions or deferred tasks, never from inside
// the call that registered them; a callback must not destroy the partition_log (defer that). Destroying the object without close() is a crash as far as
// the disk is concerned (in-flight I/O finishes harmlessly; nothing is fsynced or marked clean).
//
// Append / durability contract (README.md "Fsync contract" has the full text):
//  - append() validates every batch, assigns offsets in place, copies the bytes into the
//    partition's bounded append buffer and returns. Appends made in the same reactor iteration
//    are written together by one write from a deferred task.
//  - Back-pressure is waiting, never refusal: an append that finds the buffer full (or a
//    truncation running) is held, in order, and admitted once space frees. Owners that want to
//    queue without the copy a held append costs ask has_room() first and wait with
//    when_room().
//  - The callback fires once the write completed (fsync_policy::never), or once an fdatasync
//    that started after the write completed has succeeded (always / batch). Callbacks fire in
//    offset order.
//  - log_end_offset() and read() only ever reflect batches whose write has completed.
//  - Any write or fsync error fail-stops the partition: every pending and later append, read
//    and flush returns that error (naming the file); nothing is retried.
//
// Segment list machinery for retention and compaction: closed_segments(),
// delete_oldest_segments(), replace_segment(), roll(). All segments but the last are "closed":
// immutable, fdatasynced and below the recovery point.

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "base/fd.h"
#include "base/result.h"
#include "engine/errc.h"
#include "engine/file.h"
#include "engine/log_config.h"
#include "model/fundamental.h"

namespace sluice::runtime {
class reactor;
class clock;
}  // namespace sluice::runtime

namespace sluice::engine {

struct append_options {
    // Written into every batch's partitionLeaderEpoch field when set (the leader's epoch).
    std::optional<model::leader_epoch> leader_epoch;
    // A follower copying its leader's log: the batches keep the base offsets (and leader
    // epochs) they carry instead of being given the next ones. The first must start at or
    // after the log end (compaction may have left gaps) and they must be in order; otherwise
    // the append fails with errc::invalid_batch and nothing is written.
    bool keep_offsets = false;
};

struct append_result {
    model::offset base_offset;  // first offset of the first batch
    model::offset last_offset;  // last offset of the last batch
    // The LogAppendTime written into the batches, or -1 when the topic uses CreateTime.
    model::timestamp_ms log_append_time{-1};
};
using append_callback = std::function<void(result<append_result>)>;

struct read_result {
    // Whole batches, in offset order; at most one region per segment.
    std::vector<file_region> regions;
    uint64_t total_bytes = 0;
    // Base offset of the first batch and last offset of the last one; -1 when empty.
    model::offset first_offset{-1};
    model::offset last_offset{-1};
};

struct timestamp_lookup {
    model::offset offset;
    model::timestamp_ms timestamp;
};

// A segment as retention and compaction see it.
struct segment_info {
    model::offset base_offset;
    model::offset next_offset;  // one past the last offset stored in it (for the active: log end)
    uint64_t size_bytes = 0;
    model::timestamp_ms max_timestamp{-1};  // -1 when it holds no batch
    std::string path;                       // the .log file
};

// Simple counters; read them from the owning thread.
struct log_stats {
    uint64_t appends = 0;
    uint64_t batches = 0;
    uint64_t writes = 0;             // write submissions (coalesced appends count once)
    uint64_t inline_writes = 0;      // of those, done on the reactor thread (inline_write_bytes)
    uint64_t bytes_written = 0;
    uint64_t fsyncs = 0;             // fdatasync calls on segment files
    uint64_t fsync_ns = 0;           // their time from submission to completion, summed
    uint64_t held_appends = 0;       // appends that waited for buffer space (or a truncation)
    uint64_t no_space_refusals = 0;  // appends refused because the log dir was full
    uint64_t segments_rolled = 0;
    uint64_t segments_deleted = 0;
    uint64_t recovered_bytes = 0;    // bytes validated by the start-up recovery scan
    uint64_t truncated_bytes = 0;    // bytes cut from torn or corrupt tails at start-up
    uint64_t index_rebuilds = 0;     // segments whose index files were rebuilt
};

class partition_log {
public:
    // ListOffsets sentinels accepted by offset_for_timestamp.
    static constexpr int64_t latest_timestamp = -1;
    static constexpr int64_t earliest_timestamp = -2;
    static constexpr int64_t max_timestamp = -3;

    // Creates `<log_dir>/<topic>-<partition>/` or recovers the log found there (see README.md
    // "Recovery"). A log with corruption below its recovery point opens in the failed state
    // (status() says which file and byte position) rather than failing open(); open() itself
    // fails only when the directory cannot be used at all.
    static result<std::unique_ptr<partition_log>> open(runtime::reactor& r, file_system& fs,
                                                       const std::string& log_dir,
                                                       const model::tp& tp, log_config cfg,
                                                       runtime::clock& clock);
    ~partition_log();
    partition_log(const partition_log&) = delete;
    partition_log& operator=(const partition_log&) = delete;

    // `batches` holds one or more whole v2 batches and is rewritten in place (base offsets,
    // leader epoch, LogAppendTime) when admitted; it may be reused once append() returns. When
    // !has_room(batches.size()) the append is held: its bytes are copied and it is admitted,
    // in the order of the append() calls, once space frees (a held append is never refused
    // for being busy). Failures reported through the callback: invalid_batch /
    // batch_too_large (checked at once, nothing written), closed, partition_failed.
    void append(std::span<std::byte> batches, append_options opts, append_callback cb);
    // Whether an append of `bytes` would be admitted now: nothing is held, no truncation runs,
    // and the buffer is empty or has room for it (an append larger than the whole buffer is
    // admitted into an empty one).
    bool has_room(size_t bytes) const;
    // Calls `fn` once, on the owning thread and never from inside this call, when
    // has_room(bytes) becomes true (or the partition fails or closes, so the owner can answer
    // what it queued). One registration at a time; a new one replaces the old.
    void when_room(size_t bytes, std::function<void()> fn);

    // Whole batches starting with the one containing `start`, each with last offset below
    // `upper_exclusive` and below log_end_offset(), within `max_bytes` -- but at least one
    // batch when `min_one_batch` (KIP-74), however large. `start` == log end gives an empty
    // result; outside [log start, log end] gives errc::offset_out_of_range.
    result<read_result> read(model::offset start, size_t max_bytes,
                             model::offset upper_exclusive, bool min_one_batch) const;

    // The first offset whose record timestamp is >= ts (nullopt if none), or one of the
    // sentinels above. Only written batches are considered.
    result<std::optional<timestamp_lookup>> offset_for_timestamp(model::timestamp_ms ts) const;

    model::log_start_offset log_start_offset() const;
    // The next offset to be assigned, counting only batches whose write has completed.
    model::log_end_offset log_end_offset() const;
    // Everything below it is known durable (fdatasync done).
    model::offset recovery_point() const;

    // Drops every batch containing an offset >= `offset` (the log end becomes the base of the
    // batch containing `offset`, or `offset` itself if it is a batch boundary). Waits for
    // in-flight writes first; appends made meanwhile are held and admitted after it. Truncating to or
    // below the log start empties the log and restarts it at `offset`.
    void truncate_to(model::offset offset, io_callback cb);
    // DeleteRecords: advances the log start offset (checkpointed before returning) and deletes
    // closed segments wholly below it. `offset` must be <= log_end_offset().
    result<void> delete_records_before(model::offset offset);

    // Calls back once everything written so far is durable.
    void flush(io_callback cb);
    // Clean shutdown: refuses new appends, waits for in-flight I/O, drops preallocated space,
    // fdatasyncs, writes index files, the checkpoint and the clean-shutdown marker.
    void close(io_callback cb);

    // ok, or the error that fail-stopped the partition.
    result<void> status() const;
    bool failed() const;
    // Called once, on the log's core, when the partition fail-stops, with the error that caused
    // it (an I/O error on its log dir, corrupt data, ...). The owner takes the whole log dir
    // offline on an I/O error, as Kafka does.
    void on_failure(std::function<void(const error&)> fn);
    // Fail-stops the partition from outside: its log dir was taken offline. Pending appends
    // and flushes fail; nothing is written afterwards.
    void take_offline(const error& why);

    // Retention / compaction surface.
    // Closed segments (all but the active one), oldest first.
    std::vector<segment_info> closed_segments() const;
    segment_info active_segment() const;
    // Deletes the `count` oldest closed segments (never the active one): checkpoints the new
    // log start (the next remaining segment's base, if higher), removes the files, fsyncs the dir.
    result<void> delete_oldest_segments(size_t count);
    // Replaces the closed segment at `base` with the already-written, already-fsynced file
    // `<partition dir>/<20-digit base>.log.cleaned` (create it with segment_file_name(base) +
    // ".cleaned"). It must hold valid batches within the old segment's offset range. The swap is
    // a rename (atomic); indexes are rebuilt. Open file regions keep serving the old bytes.
    result<void> replace_segment(model::offset base);
    // Closes the active segment now (if it holds anything) and starts a new one.
    result<void> roll();

    const std::string& dir() const;
    const model::tp& tp() const;
    const log_config& config() const;
    const log_stats& stats() const;
    // Log files currently open (closed segments in the LRU plus the active segment).
    size_t open_segment_files() const;

    class impl;

private:
    explicit partition_log(std::unique_ptr<impl> i);
    std::unique_ptr<impl> _impl;
};

}  // namespace sluice::engine
