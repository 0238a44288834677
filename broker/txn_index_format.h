#pragma once
// Constants of the files the broker keeps beside a partition's segments for transactions:
// the aborted-transaction index (`<20-digit segment base>.txnindex`, Kafka's layout) and the
// producer-state snapshot (`producer.snapshot`). Prose in docs/formats/txn_index.md and
// docs/formats/producer_snapshot.md; change them in the same commit as a constant here.

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace sluice::broker::txn_format {

// Aborted-transaction index entry, big-endian: version int16 (0), producer id int64, first
// offset int64, last offset int64 (the ABORT marker's), last stable offset int64 (when written).
inline constexpr std::string_view txn_index_suffix = ".txnindex";
inline constexpr int16_t txn_index_version = 0;
inline constexpr size_t txn_index_entry_bytes = 34;

// Producer-state snapshot: magic "SLPS", version int16, CRC-32C of what follows it, then the
// body (docs/formats/producer_snapshot.md).
inline constexpr std::string_view snapshot_file = "producer.snapshot";
inline constexpr uint32_t snapshot_magic = 0x534c5053;  // "SLPS"
inline constexpr int16_t snapshot_version = 1;

}  // namespace sluice::broker::txn_format
