#pragma once
// In-memory forms of a segment's sparse indexes (formats: docs/formats/index.md). Private to
// the engine. Both are small (one entry per index.interval.bytes of log) and are written to
// their files whole when a segment is closed, rolled or rewritten; the recovery scan repairs or
// rebuilds them, so the files never need to be exact for correctness, only for speed.

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

namespace sluice::engine {

// relative offset (of a batch's last offset) -> file position of that batch
class offset_index {
public:
    struct entry {
        int32_t relative_offset;
        uint32_t position;
    };

    void append(int32_t relative_offset, uint32_t position) { _entries.push_back({relative_offset, position}); }
    // Position of the last entry whose relative offset is <= `relative_offset`; 0 if none. The
    // batch holding `relative_offset` starts at or after it.
    uint32_t lookup(int32_t relative_offset) const;
    // Drops entries for batches at or after `position`.
    void truncate_to_position(uint32_t position);
    void clear() { _entries.clear(); }
    bool empty() const { return _entries.empty(); }
    size_t size() const { return _entries.size(); }
    const entry& back() const { return _entries.back(); }
    // Entries whose position is in [from, to), in position order.
    std::span<const entry> between_positions(uint64_t from, uint64_t to) const;

    std::vector<std::byte> serialize() const;
    // Fails (returns false) unless the bytes are whole entries with strictly increasing offsets
    // and positions.
    bool parse(std::span<const std::byte> bytes);

private:
    std::vector<entry> _entries;
};

// timestamp -> relative offset: the largest timestamp seen in the segment so far, and the offset
// at which it was seen. Timestamps strictly increase from entry to entry.
class time_index {
public:
    struct entry {
        int64_t timestamp;
        int32_t relative_offset;
    };

    // Appends unless `timestamp` is not larger than the last entry's.
    void maybe_append(int64_t timestamp, int32_t relative_offset);
    // Relative offset of the last entry whose timestamp is < `timestamp`, or -1 if none. Every
    // record at or before that offset has a smaller timestamp than `timestamp`.
    int32_t lookup_before(int64_t timestamp) const;
    void truncate_to_offset(int32_t relative_offset_exclusive);
    void clear() { _entries.clear(); }
    bool empty() const { return _entries.empty(); }
    const entry& back() const { return _entries.back(); }

    std::vector<std::byte> serialize() const;
    bool parse(std::span<const std::byte> bytes);

private:
    std::vector<entry> _entries;
};

}  // namespace sluice::engine
