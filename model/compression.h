#pragma once
// The payload codecs of Kafka record batches (attributes bits 0-2): gzip, snappy, lz4, zstd.
// The exact framings each codec uses on the wire are described in docs/formats/record_batch.md
// ("Compression"); in short:
//   gzip   - RFC 1952 members (zlib); several concatenated members are accepted.
//   snappy - written with the xerial/snappy-java block framing, as the Java client does; read
//            both that framing and a bare snappy block (what librdkafka writes).
//   lz4    - the LZ4 frame format with independent 64 KiB blocks; frames written by pre-0.10
//            Kafka clients with a wrong header checksum are repaired and accepted.
//   zstd   - one or more zstd frames, decoded by streaming (the content size may be absent).
//
// Decompression is bounded: it never produces (or allocates) more than `max_out_bytes` + 1
// bytes of output, and fails with errc::too_large when the payload expands past that. Corrupt
// input yields errc::compression_failed; nothing here asserts on input bytes.
//
// Threading: every function is safe to call from any thread. Codec contexts that are costly to
// create (zstd) are cached per thread, so a reactor core reuses its own.

#include <cstddef>
#include <span>
#include <vector>

#include "base/result.h"
#include "model/errc.h"
#include "model/record_batch.h"

namespace sluice::model {

// Bound for a decompressed batch payload when the caller has no better number. Producers cap
// uncompressed batches at batch.size (librdkafka: 1 MiB by default); 64 MiB leaves a wide margin
// while keeping a decompression bomb from taking the process down.
inline constexpr size_t default_max_decompressed_bytes = size_t{64} << 20;

// Snappy: xerial framing written by snappy-java (and so by Kafka's Java client).
namespace xerial_format {
inline constexpr unsigned char magic[8] = {0x82, 'S', 'N', 'A', 'P', 'P', 'Y', 0};
inline constexpr size_t header_size = 16;  // magic + int32 version + int32 min compatible version
inline constexpr int32_t version = 1;
inline constexpr int32_t min_compatible_version = 1;
inline constexpr size_t block_bytes = 32 * 1024;  // uncompressed bytes per chunk when writing
}  // namespace xerial_format

// Appends the compressed form of `in` to `out` (whatever `out` held before is kept). `level` 0
// means the codec's default; other values go to the codec (gzip 1-9, lz4 1-12 where 3 and up
// select LZ4-HC, zstd 1-22; snappy has no levels). compression::none appends `in` unchanged.
// On error `out` is cut back to the size it had on entry.
[[nodiscard]] result<void> compress(compression codec, std::span<const std::byte> in,
                                    std::vector<std::byte>& out, int level = 0);

// Appends the decompressed form of `in` to `out`, producing at most `max_out_bytes` bytes.
// On error `out` is cut back to the size it had on entry.
[[nodiscard]] result<void> decompress(compression codec, std::span<const std::byte> in,
                                      std::vector<std::byte>& out, size_t max_out_bytes);

}  // namespace sluice::model
