// Opening a partition log: find the segments, read the checkpoint, validate what may be torn,
// repair or rebuild indexes, and decide between "recovered" and "failed" (README.md "Recovery").

#include <algorithm>

#include "base/log.h"
#include "engine/log_format.h"
#include "engine/partition_log_impl.h"

namespace sluice::engine {

namespace lf = log_format;

namespace {
bool ends_with(std::string_view s, std::string_view suffix) {
    return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}
}  // namespace

result<void> partition_log::impl::load() {
    if (auto r = _fs.make_dirs(_dir); !r) return r;
    auto names = _fs.list(_dir);
    if (!names) return names.error();
    std::set<int64_t> bases;
    for (const auto& n : *names) {
        int64_t b = 0;
        if (lf::parse_segment_file_name(n, lf::log_suffix, b)) bases.insert(b);
    }
    // Leftovers of interrupted work: temporary files, unfinished rewrites, orphaned indexes.
    for (const auto& n : *names) {
        int64_t b = 0;
        bool orphan = (lf::parse_segment_file_name(n, lf::index_suffix, b) ||
                       lf::parse_segment_file_name(n, lf::time_index_suffix, b)) &&
                      !bases.count(b);
        if (orphan || ends_with(n, lf::tmp_suffix) || ends_with(n, lf::cleaned_suffix)) {
            if (auto r = _fs.remove(_dir + "/" + n); !r) return r;
        }
    }
    const std::string marker = _dir + "/" + std::string(lf::clean_shutdown_file);
    const bool clean = _fs.exists(marker);
    if (clean) {
        if (auto r = _fs.remove(marker); !r) return r;
    }
    if (auto r = _fs.fsync_dir(_dir); !r) return r;

    partition_checkpoint cp;
    auto cpr = read_checkpoint(_fs, _dir);
    if (!cpr) {
        log::warn("engine", _tp.dir_name(), ": ", cpr.error().describe(),
                  "; recovering every segment");
    } else if (*cpr) {
        cp = **cpr;
    }
    const int64_t rp = (clean || cpr) ? cp.recovery_point : 0;

    for (int64_t b : bases) {
        auto s = std::make_unique<segment>();
        s->base = b;
        s->dir = _dir;
        _segments[b] = std::move(s);
    }
    for (auto it = _segments.begin(); it != _segments.end(); ++it) {
        auto next = std::next(it);
        bool last = next == _segments.end();
        int64_t next_base = last ? INT64_MAX : next->first;
        auto r = recover_segment(*it->second, last, clean, rp, next_base, false);
        if (!r) {
            if (!r.error().is(errc::corrupt) && !r.error().is(errc::io_error)) return r;
            fail(r.error());
            return ok();  // opens in the failed state; status() says why
        }
    }
    if (auto r = finish_open(clean, cp); !r) {
        fail(r.error());
    }
    return ok();
}

bool partition_log::impl::load_indexes(segment& s, uint64_t file_size) {
    auto load = [&](std::string_view suffix, auto& index) {
        std::string p = s.path(suffix);
        if (!_fs.exists(p)) return true;  // missing: empty, repaired by the tail scan
        auto bytes = read_whole_file(_fs, p);
        return bytes && index.parse(*bytes);
    };
    if (!load(lf::index_suffix, s.oindex) || !load(lf::time_index_suffix, s.tindex)) return false;
    if (!s.oindex.empty() && s.oindex.back().position >= file_size) return false;  // ahead
    return true;
}

// Scans a segment's batches, validating each, and (re)builds its indexes. Where the scan starts:
//  - segments that may hold bytes at or past the recovery point after an unclean shutdown are
//    scanned whole and their indexes rebuilt from nothing;
//  - the others start at their last offset-index entry (whose batch must match it), so an index
//    that is behind the log is completed and one that is ahead is detected and rebuilt.
// A bad batch is a torn tail (truncated) only in the last segment and at or past the recovery
// point; anywhere else it is corruption, and the partition fails naming file and position.
result<void> partition_log::impl::recover_segment(segment& s, bool last, bool clean, int64_t rp,
                                                  int64_t next_base, bool force_full) {
    auto f = _fs.open(s.path(lf::log_suffix), open_mode::read_write);
    if (!f) return f.error();
    s.log = std::move(*f);
    auto fsize = s.log->size();
    if (!fsize) return fsize.error();
    bool full = force_full || (!clean && (last || next_base > rp));
    if (!full && !load_indexes(s, *fsize)) {
        log::warn("engine", s.path(lf::index_suffix), ": index unusable, rebuilding");
        full = true;
    }
    if (full) {
        s.clear_indexes();
    } else {
        s.indexes_dirty = false;
        s.bytes_since_index = 0;
        if (!s.tindex.empty()) {
            s.max_timestamp = s.tindex.back().timestamp;
            s.offset_of_max_timestamp = s.base + s.tindex.back().relative_offset;
        }
    }
    bool check_entry = !full && !s.oindex.empty();
    uint64_t start = check_entry ? s.oindex.back().position : 0;
    batch_scanner sc(*s.log, start, *fsize, max_scan_batch_bytes);
    int64_t next = s.base;
    uint64_t end = start;
    for (;;) {
        auto o = sc.next(true);
        if (o == batch_scanner::outcome::end) break;
        const auto& h = sc.header;
        if (o == batch_scanner::outcome::batch && check_entry) {
            check_entry = false;
            if (h.last_offset() - s.base != s.oindex.back().relative_offset) {
                log::warn("engine", s.path(lf::index_suffix), ": index ahead of the log, rebuilding");
                s.log.reset();
                return recover_segment(s, last, clean, rp, next_base, true);
            }
            s.bytes_since_index = h.size_bytes();
            next = h.last_offset() + 1;
            end = sc.position + h.size_bytes();
            continue;
        }
        if (o == batch_scanner::outcome::batch &&
            (h.base_offset < next || h.last_offset() >= next_base ||
             h.last_offset() - s.base > lf::max_relative_offset)) {
            sc.problem = error(errc::corrupt, s.path(lf::log_suffix) + " at byte " +
                                                  std::to_string(sc.position) + ": batch offset " +
                                                  std::to_string(h.base_offset) + " out of order");
            o = batch_scanner::outcome::bad;
        }
        if (o == batch_scanner::outcome::bad) {
            if (sc.problem.is(errc::io_error)) return sc.problem;
            if (!last || next < rp) {
                return error(errc::corrupt, sc.problem.detail() + " (offset " + std::to_string(next) +
                                                ", recovery point " + std::to_string(rp) +
                                                (last ? ")" : ", not the last segment)"));
            }
            log::warn("engine", "truncating torn tail: ", sc.problem.detail());
            _stats.truncated_bytes += *fsize - sc.position;
            break;
        }
        s.index_batch(h, sc.position, _cfg.index_interval_bytes);
        if (full) _stats.recovered_bytes += h.size_bytes();
        next = h.last_offset() + 1;
        end = sc.position + h.size_bytes();
    }
    if (!s.tindex.empty() && s.tindex.back().relative_offset > next - 1 - s.base) {
        log::warn("engine", s.path(lf::time_index_suffix), ": time index ahead of the log, rebuilding");
        s.log.reset();
        return recover_segment(s, last, clean, rp, next_base, true);
    }
    if (end < *fsize) {  // torn tail or preallocated zeros
        if (auto r = s.log->truncate(end); !r) return r;
    }
    if (full || s.indexes_dirty) ++_stats.index_rebuilds;
    s.size = s.assigned_size = end;
    s.next_offset = s.assigned_next = std::max(next, s.base);
    return ok();
}

// Rebuilds a segment's indexes from its first `limit` bytes (truncation).
result<void> partition_log::impl::rebuild_indexes(segment& s, uint64_t limit, bool validate) {
    s.clear_indexes();
    batch_scanner sc(*s.log, 0, limit, max_scan_batch_bytes);
    for (;;) {
        auto o = sc.next(validate);
        if (o == batch_scanner::outcome::end) return ok();
        if (o == batch_scanner::outcome::bad) return sc.problem;
        s.index_batch(sc.header, sc.position, _cfg.index_interval_bytes);
    }
}

result<void> partition_log::impl::finish_open(bool clean, const partition_checkpoint& cp) {
    // Trailing empty segments (a crash right after a roll) hold nothing; the one before them
    // carries on as the active segment.
    while (_segments.size() > 1 && std::prev(_segments.end())->second->size == 0) {
        auto it = std::prev(_segments.end());
        if (auto r = remove_segment_files(*it->second); !r) return r;
        _segments.erase(it);
    }
    if (_segments.empty()) {
        auto s = create_segment(std::max<int64_t>(cp.log_start_offset, 0));
        if (!s) return s.error();
        _segments[(*s)->base] = std::move(*s);
    }
    segment* last = std::prev(_segments.end())->second.get();
    _log_start = std::max(cp.log_start_offset, _segments.begin()->first);
    if (_log_start > last->next_offset) {
        // The checkpointed start lies past everything found: start over there.
        for (auto& [b, s] : _segments) {
            if (auto r = remove_segment_files(*s); !r) return r;
        }
        _segments.clear();
        auto s = create_segment(_log_start);
        if (!s) return s.error();
        _segments[_log_start] = std::move(*s);
        last = _segments.begin()->second.get();
    }
    // Segments wholly below the log start (a crash in the middle of DeleteRecords).
    while (_segments.size() > 1 && std::next(_segments.begin())->first <= _log_start) {
        if (auto r = remove_segment_files(*_segments.begin()->second); !r) return r;
        _segments.erase(_segments.begin());
    }
    for (auto& [b, s] : _segments) {
        if (!clean && s->log) {
            if (auto r = s->log->sync(); !r) return r;  // what recovery kept is now durable
        }
        if (s.get() != last) s->seal_time_index();
        if (s->indexes_dirty) {
            if (auto r = s->write_index_files(_fs, true); !r) return r;
            s->indexes_dirty = false;
        }
        if (s.get() != last) s->log.reset();  // reopened read-only on demand (fd LRU)
    }
    _active = last;
    if (!_active->log) {
        auto f = _fs.open(_active->path(lf::log_suffix), open_mode::read_write);
        if (!f) return f.error();
        _active->log = std::move(*f);
    }
    _active->allocated_bytes = _active->size;
    if (auto r = ensure_allocated(*_active, _active->size); !r) return r;
    if (_active->size > 0) _active->first_append_ms = _clock.now_ms();
    _next_offset = _written_end = _durable_end = _active->next_offset;
    if (auto r = _fs.fsync_dir(_dir); !r) return r;
    return checkpoint();
}

}  // namespace sluice::engine
