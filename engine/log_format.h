#pragma once
// Constants of every file the engine writes. The formats are described in prose in
// docs/formats/segment.md (the .log files), docs/formats/index.md (.index and .timeindex) and
// docs/formats/checkpoint.md (partition.checkpoint and the clean-shutdown marker). Change the
// document in the same commit as a constant here.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace sluice::engine::log_format {

// Segment file names: the segment's base offset, zero-padded to 20 decimal digits, plus a suffix.
inline constexpr int file_name_digits = 20;
inline constexpr std::string_view log_suffix = ".log";
inline constexpr std::string_view index_suffix = ".index";
inline constexpr std::string_view time_index_suffix = ".timeindex";
// A rewritten segment (compaction) is built under this suffix and renamed over the .log.
inline constexpr std::string_view cleaned_suffix = ".cleaned";
// Temporary file of an atomic replace (checkpoint writes); removed on open if found.
inline constexpr std::string_view tmp_suffix = ".tmp";

// Offset index entry: relative offset (int32 BE) of a batch's last offset, file position (int32 BE)
// of that batch.
inline constexpr size_t index_entry_bytes = 8;
// Time index entry: timestamp (int64 BE), relative offset (int32 BE).
inline constexpr size_t time_index_entry_bytes = 12;

// A segment's offsets are stored relative to its base offset as int32; roll before overflow.
inline constexpr int64_t max_relative_offset = INT32_MAX;
// Positions in .index are int32, so a segment never grows past this many bytes.
inline constexpr uint64_t max_segment_bytes = INT32_MAX;

// Per-partition checkpoint (text). See docs/formats/checkpoint.md.
inline constexpr std::string_view checkpoint_file = "partition.checkpoint";
inline constexpr int checkpoint_version = 1;
// Present only between a clean close and the next open.
inline constexpr std::string_view clean_shutdown_file = ".sluice_clean_shutdown";

// "<20-digit base offset><suffix>"
std::string segment_file_name(int64_t base_offset, std::string_view suffix);
// Parses "<20 digits><suffix>"; returns false if `name` is not such a file.
bool parse_segment_file_name(std::string_view name, std::string_view suffix, int64_t& base_out);

}  // namespace sluice::engine::log_format
