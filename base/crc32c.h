#pragma once
// CRC-32C (Castagnoli), the checksum of Kafka record batches (v2). Uses the SSE4.2 instruction
// when the CPU has it and a table otherwise.

#include <cstddef>
#include <cstdint>

namespace sluice::crc32c {
// Extends `crc` (0 for a fresh checksum) with `n` bytes at `data`.
uint32_t extend(uint32_t crc, const void* data, size_t n);
inline uint32_t value(const void* data, size_t n) { return extend(0, data, n); }
// The table-driven version, for tests that cross-check the hardware path.
uint32_t extend_portable(uint32_t crc, const void* data, size_t n);
}  // namespace sluice::crc32c
