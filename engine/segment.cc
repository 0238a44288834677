#include "engine/segment.h"

#include <algorithm>

#include "base/bytes.h"
#include "engine/errc.h"
#include "engine/log_format.h"

namespace sluice::engine {

namespace bf = model::batch_format;
namespace lf = log_format;

namespace {
// Validating scans read whole batches, so a large window saves syscalls. Header-only scans (a
// fetch finding where its bytes end) jump from header to header: a small window keeps them
// from reading the batches in between, which would copy most of a fetch's bytes once more.
constexpr size_t scan_window_bytes = 64 * 1024;
constexpr size_t header_window_bytes = 4 * 1024;
}

result<size_t> batch_scanner::fill(uint64_t pos, size_t n, size_t window) {
    uint64_t want_end = std::min<uint64_t>(pos + n, _limit);
    if (pos >= want_end) return size_t{0};
    size_t want = static_cast<size_t>(want_end - pos);
    if (!_buf.empty() && pos >= _buf_pos && want_end <= _buf_pos + _buf.size()) return want;
    size_t read_n = static_cast<size_t>(
        std::min<uint64_t>(std::max(want, window), _limit - pos));
    _buf.resize(read_n);
    _buf_pos = pos;
    auto got = _file.pread(pos, _buf);
    if (!got) return got.error();
    _buf.resize(*got);
    return std::min(want, *got);
}

batch_scanner::outcome batch_scanner::next(bool validate) {
    _batch = {};
    position = _pos;
    auto fail = [&](std::string what) {
        problem = error(errc::corrupt, _file.path() + " at byte " + std::to_string(position) +
                                           ": " + what);
        return outcome::bad;
    };
    auto have = fill(_pos, bf::header_size, validate ? scan_window_bytes : header_window_bytes);
    if (!have) {
        problem = have.error();
        return outcome::bad;
    }
    if (*have == 0) return outcome::end;
    auto head = window(_pos, std::min(*have, bf::log_overhead));
    bool zeros = std::all_of(head.begin(), head.end(), [](std::byte b) { return b == std::byte{0}; });
    if (zeros) return outcome::end;  // preallocated space never written
    if (*have < bf::header_size) return fail("partial batch header (" + std::to_string(*have) + " bytes)");
    auto h = model::parse_header(window(_pos, bf::header_size));
    if (!h) return fail(h.error().describe());
    size_t size = h->size_bytes();
    if (size > _max_batch_bytes) return fail("batch length " + std::to_string(size) + " over limit");
    if (validate) {
        auto got = fill(_pos, size, scan_window_bytes);
        if (!got) {
            problem = got.error();
            return outcome::bad;
        }
        if (*got < size) return fail("partial batch (" + std::to_string(*got) + " of " + std::to_string(size) + " bytes)");
        auto v = model::validate(window(_pos, size), model::validation_limits{_max_batch_bytes});
        if (!v) return fail(v.error().describe());
        _batch = window(_pos, size);
    } else if (_pos + size > _limit) {
        return fail("partial batch");
    }
    header = *h;
    _pos += size;
    return outcome::batch;
}

std::string segment::path(std::string_view suffix) const {
    return dir + "/" + lf::segment_file_name(base, suffix);
}

void segment::index_batch(const model::batch_header& h, uint64_t position, uint32_t interval_bytes) {
    if (h.max_timestamp > max_timestamp) {
        max_timestamp = h.max_timestamp;
        offset_of_max_timestamp = h.last_offset();
    }
    if (bytes_since_index > interval_bytes) {
        oindex.append(static_cast<int32_t>(h.last_offset() - base), static_cast<uint32_t>(position));
        tindex.maybe_append(max_timestamp, static_cast<int32_t>(offset_of_max_timestamp - base));
        bytes_since_index = 0;
        indexes_dirty = true;
    }
    bytes_since_index += h.size_bytes();
}

void segment::clear_indexes() {
    oindex.clear();
    tindex.clear();
    bytes_since_index = 0;
    max_timestamp = -1;
    offset_of_max_timestamp = -1;
    indexes_dirty = true;
}

void segment::seal_time_index() {
    if (max_timestamp < 0 && offset_of_max_timestamp < 0) return;
    bool grows = tindex.empty() || max_timestamp > tindex.back().timestamp;
    tindex.maybe_append(max_timestamp, static_cast<int32_t>(offset_of_max_timestamp - base));
    if (grows) indexes_dirty = true;
}

result<void> segment::write_index_files(file_system& fs, bool fsync) const {
    auto write = [&](std::string_view suffix, const std::vector<std::byte>& bytes) -> result<void> {
        auto f = fs.open(path(suffix), open_mode::truncate);
        if (!f) return f.error();
        if (auto r = (*f)->write_sync(0, bytes); !r) return r;
        if (fsync) return (*f)->sync();
        return ok();
    };
    if (auto r = write(lf::index_suffix, oindex.serialize()); !r) return r;
    return write(lf::time_index_suffix, tindex.serialize());
}

}  // namespace sluice::engine
