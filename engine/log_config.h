#pragma once
// Per-topic storage settings of one partition log. Field names follow Kafka's topic config keys
// (segment.bytes -> segment_bytes, ...); `fsync` is Sluice's `sluice.fsync` shorthand.

#include <cstdint>
#include <limits>

namespace sluice::engine {

// When appends are made durable (sluice.fsync). See README.md "Fsync contract".
enum class fsync_policy {
    // Kafka's default: acknowledge once the write completed (page cache); fsync only when
    // flush.messages / flush.ms say so (in the background), on segment roll and on close.
    never,
    // Group commit: acknowledge only once durable; at most one fdatasync in flight per
    // partition, and every append whose write completed meanwhile rides on the next one.
    always,
    // Like `always`, but the fdatasync waits up to `flush_ms` (default batch_linger_ms) after
    // the first undurable write, to gather more appends into it.
    batch,
};

// message.timestamp.type
enum class timestamp_type { create_time, log_append_time };

inline constexpr int64_t unlimited = std::numeric_limits<int64_t>::max();

struct log_config {
    // segment.bytes: roll the active segment before it would grow past this.
    uint64_t segment_bytes = 1ull << 30;
    // segment.ms: roll when the active segment's first append is older than this.
    int64_t segment_ms = 7LL * 24 * 3600 * 1000;
    // segment.index.bytes: roll when the offset index would exceed this size.
    uint64_t segment_index_bytes = 10u << 20;
    // index.interval.bytes: bytes of batches between two sparse index entries.
    uint32_t index_interval_bytes = 4096;
    // max.message.bytes: the largest batch accepted (without the 12-byte log overhead; Kafka's
    // record batch size as counted by the broker).
    uint32_t max_message_bytes = 1048588;
    // message.timestamp.type
    timestamp_type message_timestamp_type = timestamp_type::create_time;
    // flush.messages / flush.ms: background fsync thresholds (unlimited = never by count/time).
    int64_t flush_messages = unlimited;
    int64_t flush_ms = unlimited;
    // sluice.fsync
    fsync_policy fsync = fsync_policy::never;
    // Linger of fsync_policy::batch when flush_ms is unlimited.
    int64_t batch_linger_ms = 1;
    // preallocate: reserve the active segment's space with fallocate ahead of its writes, in
    // steps of preallocate_step_bytes (capped at segment_bytes), so that appends do not extend
    // the file one write at a time while thousands of partitions do not each reserve a whole
    // segment up front.
    bool preallocate = true;
    uint64_t preallocate_step_bytes = 64u << 20;

    // Bounds (Sluice-specific; see README.md "Bounds").
    // Bytes accepted but not yet written (plus being written). Over it, append() holds the
    // append until writes complete. A single append larger than this is admitted only into an
    // empty buffer.
    uint64_t append_buffer_max_bytes = 32u << 20;
    // Writes in flight to the ring per partition.
    uint32_t max_inflight_writes = 4;
    // A write of at most this many bytes is done with pwrite(2) on the reactor thread instead
    // of through the ring (0: never). Buffered writes on ext4 cannot be attempted without
    // blocking, so io_uring hands every one to an io-wq worker; for a small write (a transaction
    // marker, a coordinator's state record, a few small records) that hand-off -- a wake-up and
    // two task switches, and the wait for a CPU on a busy host -- costs more than the copy.
    // Larger writes stay off the reactor, where a page-cache stall cannot hold up its other
    // partitions. The broker sets it from sluice.inline.write.bytes.
    uint64_t inline_write_bytes = 0;
    // Closed segments whose log file stays open for reads (LRU); the active one is extra.
    uint32_t max_open_segment_files = 16;
    // How often the recovery point is checkpointed when it moved (Kafka:
    // log.flush.offset.checkpoint.interval.ms). It is also written on roll, close, truncation.
    int64_t recovery_point_checkpoint_interval_ms = 60'000;
};

}  // namespace sluice::engine
