#pragma once
// The message sets of Kafka before 0.11 (magic 0 and magic 1), which Produce v0-v2 carry and
// Fetch v0-v3 return. Sluice stores only v2 batches: a legacy message set is up-converted to one
// v2 batch before it is appended, and v2 batches are down-converted to legacy messages for an
// old fetcher, as Kafka 2.x brokers do. The byte layout is in docs/formats/legacy_message.md.
//
// Up-conversion checks every message (length, CRC-32, magic, codec) and unpacks compressed
// wrapper messages (one level, as Kafka allows); the resulting batch keeps the producer's codec.
// Down-conversion writes uncompressed messages, drops record headers (they have no place in
// magic 0/1) and skips control batches (old clients know no transactions).
//
// Threading: plain functions over caller-owned buffers; safe on any thread.

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "base/result.h"
#include "model/compression.h"
#include "model/errc.h"

namespace sluice::model::legacy {

namespace message_format {
// Positions from the start of a message, including its 12-byte log overhead.
inline constexpr size_t offset_pos = 0;       // int64
inline constexpr size_t size_pos = 8;         // int32, bytes after this field
inline constexpr size_t crc_pos = 12;         // uint32, CRC-32 (IEEE) of [magic, end)
inline constexpr size_t magic_pos = 16;       // int8: 0 or 1 (2 here means a v2 batch)
inline constexpr size_t attributes_pos = 17;  // int8: codec in bits 0-2, bit 3 LogAppendTime (v1)
inline constexpr size_t timestamp_pos = 18;   // int64, magic 1 only
inline constexpr size_t log_overhead = 12;
// crc + magic + attributes + key length + value length (+ timestamp for magic 1).
inline constexpr size_t min_size_v0 = 4 + 1 + 1 + 4 + 4;
inline constexpr size_t min_size_v1 = min_size_v0 + 8;
inline constexpr int8_t codec_mask = 0x07;
inline constexpr int8_t timestamp_type_bit = 0x08;
}  // namespace message_format

// True when `records` starts with a magic 0 or magic 1 message. The magic byte sits at the same
// position in both formats, so one byte decides.
bool is_legacy(std::span<const std::byte> records);

struct up_converted {
    std::vector<std::byte> batch;  // one v2 batch, base offset 0
    int8_t magic = 0;              // the magic of the (outer) messages
    int32_t record_count = 0;
};

// Converts a whole legacy message set to one v2 batch. Magic 0 messages carry no timestamp;
// their records get `now_ms`, so time-based retention and lookups see when they arrived.
// Errors: truncated / bad_length / crc_mismatch / bad_magic / unknown_compression (zstd or an
// unknown codec, which magic 0/1 cannot carry) / compression_failed / too_large / bad_records
// (an empty set, or a compressed message nested inside another).
[[nodiscard]] result<up_converted> up_convert(std::span<const std::byte> message_set,
                                              int64_t now_ms,
                                              size_t max_decompressed_bytes = default_max_decompressed_bytes);

// Appends, as magic `magic` (0 or 1) messages, every record at or above `from_offset` of the v2
// batches in `batches` (a fetch's record set; a partial trailing batch is ignored). Stops after
// the batch that takes `out` past `soft_limit_bytes`, so at least one batch is always converted.
[[nodiscard]] result<void> down_convert(std::span<const std::byte> batches, int8_t magic,
                                        int64_t from_offset, size_t soft_limit_bytes,
                                        std::vector<std::byte>& out);

}  // namespace sluice::model::legacy
