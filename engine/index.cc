#include "engine/index.h"

#include <algorithm>

#include "base/bytes.h"
#include "engine/log_format.h"

namespace sluice::engine {

namespace lf = log_format;

uint32_t offset_index::lookup(int32_t relative_offset) const {
    auto it = std::upper_bound(_entries.begin(), _entries.end(), relative_offset,
                               [](int32_t v, const entry& e) { return v < e.relative_offset; });
    if (it == _entries.begin()) return 0;
    return std::prev(it)->position;
}

std::span<const offset_index::entry> offset_index::between_positions(uint64_t from,
                                                                     uint64_t to) const {
    auto by_position = [](const entry& e, uint64_t pos) { return e.position < pos; };
    auto lo = std::lower_bound(_entries.begin(), _entries.end(), from, by_position);
    auto hi = std::lower_bound(lo, _entries.end(), to, by_position);
    return {lo, hi};
}

void offset_index::truncate_to_position(uint32_t position) {
    while (!_entries.empty() && _entries.back().position >= position) _entries.pop_back();
}

std::vector<std::byte> offset_index::serialize() const {
    std::vector<std::byte> out(_entries.size() * lf::index_entry_bytes);
    auto* p = out.data();
    for (const auto& e : _entries) {
        bytes::store_be32(p, static_cast<uint32_t>(e.relative_offset));
        bytes::store_be32(p + 4, e.position);
        p += lf::index_entry_bytes;
    }
    return out;
}

bool offset_index::parse(std::span<const std::byte> b) {
    _entries.clear();
    if (b.size() % lf::index_entry_bytes != 0) return false;
    for (size_t i = 0; i < b.size(); i += lf::index_entry_bytes) {
        entry e{static_cast<int32_t>(bytes::load_be32(b.data() + i)), bytes::load_be32(b.data() + i + 4)};
        if (e.relative_offset < 0) return false;
        if (!_entries.empty() && (e.relative_offset <= _entries.back().relative_offset ||
                                  e.position <= _entries.back().position)) {
            return false;
        }
        _entries.push_back(e);
    }
    return true;
}

void time_index::maybe_append(int64_t timestamp, int32_t relative_offset) {
    if (!_entries.empty() && timestamp <= _entries.back().timestamp) return;
    _entries.push_back({timestamp, relative_offset});
}

int32_t time_index::lookup_before(int64_t timestamp) const {
    auto it = std::lower_bound(_entries.begin(), _entries.end(), timestamp,
                               [](const entry& e, int64_t v) { return e.timestamp < v; });
    if (it == _entries.begin()) return -1;
    return std::prev(it)->relative_offset;
}

void time_index::truncate_to_offset(int32_t relative_offset_exclusive) {
    while (!_entries.empty() && _entries.back().relative_offset >= relative_offset_exclusive) {
        _entries.pop_back();
    }
}

std::vector<std::byte> time_index::serialize() const {
    std::vector<std::byte> out(_entries.size() * lf::time_index_entry_bytes);
    auto* p = out.data();
    for (const auto& e : _entries) {
        bytes::store_be64(p, static_cast<uint64_t>(e.timestamp));
        bytes::store_be32(p + 8, static_cast<uint32_t>(e.relative_offset));
        p += lf::time_index_entry_bytes;
    }
    return out;
}

bool time_index::parse(std::span<const std::byte> b) {
    _entries.clear();
    if (b.size() % lf::time_index_entry_bytes != 0) return false;
    for (size_t i = 0; i < b.size(); i += lf::time_index_entry_bytes) {
        entry e{static_cast<int64_t>(bytes::load_be64(b.data() + i)),
                static_cast<int32_t>(bytes::load_be32(b.data() + i + 8))};
        if (e.relative_offset < 0) return false;
        if (!_entries.empty() && (e.timestamp <= _entries.back().timestamp ||
                                  e.relative_offset < _entries.back().relative_offset)) {
            return false;
        }
        _entries.push_back(e);
    }
    return true;
}

}  // namespace sluice::engine
