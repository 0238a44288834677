#pragma once
// A view over one Kafka record batch (magic v2) as it travels on the wire and lies on disk.
// The byte layout is in docs/formats/record_batch.md; constants live here. Nothing is copied:
// parse_header reads the fixed 61-byte header, validate() checks everything the broker must check
// before storing the batch, and the setters rewrite fields in place (recomputing the CRC when the
// field is covered by it).

#include <cstddef>
#include <cstdint>
#include <span>

#include "base/result.h"
#include "model/errc.h"
#include "model/fundamental.h"

namespace sluice::model {

namespace batch_format {
// Field positions in the v2 header (docs/formats/record_batch.md).
inline constexpr size_t base_offset_pos = 0;             // int64
inline constexpr size_t batch_length_pos = 8;            // int32, bytes after this field
inline constexpr size_t partition_leader_epoch_pos = 12; // int32
inline constexpr size_t magic_pos = 16;                  // int8, must be 2
inline constexpr size_t crc_pos = 17;                    // uint32, CRC-32C of [attributes, end)
inline constexpr size_t attributes_pos = 21;             // int16
inline constexpr size_t last_offset_delta_pos = 23;      // int32
inline constexpr size_t base_timestamp_pos = 27;         // int64
inline constexpr size_t max_timestamp_pos = 35;          // int64
inline constexpr size_t producer_id_pos = 43;            // int64
inline constexpr size_t producer_epoch_pos = 51;         // int16
inline constexpr size_t base_sequence_pos = 53;          // int32
inline constexpr size_t record_count_pos = 57;           // int32
inline constexpr size_t header_size = 61;
inline constexpr size_t log_overhead = 12;  // base offset + batch length, outside batch_length
inline constexpr int8_t magic_v2 = 2;

inline constexpr int16_t compression_mask = 0x07;
inline constexpr int16_t timestamp_type_bit = 0x08;  // set: LogAppendTime
inline constexpr int16_t transactional_bit = 0x10;
inline constexpr int16_t control_bit = 0x20;
inline constexpr int16_t delete_horizon_bit = 0x40;
}  // namespace batch_format

enum class compression : int8_t { none = 0, gzip = 1, snappy = 2, lz4 = 3, zstd = 4 };

struct batch_header {
    int64_t base_offset = 0;
    int32_t batch_length = 0;
    int32_t partition_leader_epoch = -1;
    int8_t magic = 2;
    uint32_t crc = 0;
    int16_t attributes = 0;
    int32_t last_offset_delta = 0;
    int64_t base_timestamp = 0;
    int64_t max_timestamp = 0;
    int64_t producer_id = -1;
    int16_t producer_epoch = -1;
    int32_t base_sequence = -1;
    int32_t record_count = 0;

    // Bytes of the whole batch including the 12-byte log overhead.
    size_t size_bytes() const { return batch_format::log_overhead + static_cast<uint32_t>(batch_length); }
    int64_t last_offset() const { return base_offset + last_offset_delta; }
    compression codec() const {
        return static_cast<compression>(attributes & batch_format::compression_mask);
    }
    bool log_append_time() const { return attributes & batch_format::timestamp_type_bit; }
    bool transactional() const { return attributes & batch_format::transactional_bit; }
    bool control() const { return attributes & batch_format::control_bit; }
    bool idempotent() const { return producer_id >= 0; }
};

// Reads the fixed header. Fails with `truncated` when fewer than 61 bytes are given, and checks
// only what the header alone can tell: magic and a batch length that covers the header.
result<batch_header> parse_header(std::span<const std::byte> bytes);

struct validation_limits {
    size_t max_batch_bytes = 1024 * 1024 + 12;  // message.max.bytes plus log overhead
};

// Full validation of one batch that starts at bytes[0] and whose size must fit in `bytes`:
// magic 2, length within bytes and limits, CRC-32C, a sane record count and last offset delta,
// a known compression codec. For uncompressed batches the record framing is walked too.
result<batch_header> validate(std::span<const std::byte> bytes, const validation_limits& limits);

// Computes the CRC stored in a batch (over attributes .. end).
uint32_t compute_crc(std::span<const std::byte> batch);

// In-place rewrites. base offset and leader epoch lie outside the CRC; max timestamp and the
// timestamp type do not, so set_log_append_time recomputes it.
void set_base_offset(std::span<std::byte> batch, int64_t base_offset);
void set_partition_leader_epoch(std::span<std::byte> batch, int32_t epoch);
void set_log_append_time(std::span<std::byte> batch, int64_t now_ms);

// Splits a buffer holding several back-to-back batches (a produce request's record set, or a
// segment read). Stops at the first incomplete batch; `next` returns false then.
class batch_iterator {
public:
    explicit batch_iterator(std::span<const std::byte> bytes) : _rest(bytes) {}
    // Fills `out` with the header and `batch` with its bytes; false at the end or on a
    // truncated/garbled header (check `remaining()` to tell them apart).
    bool next(batch_header& out, std::span<const std::byte>& batch);
    size_t remaining() const { return _rest.size(); }

private:
    std::span<const std::byte> _rest;
};

}  // namespace sluice::model
