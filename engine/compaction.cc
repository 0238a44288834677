#include "engine/compaction.h"

#include <algorithm>
#include <unordered_set>

#include "engine/errc.h"
#include "engine/log_format.h"
#include "engine/segment.h"
#include "model/records.h"
#include "runtime/reactor.h"

namespace sluice::engine {

namespace {

namespace bf = model::batch_format;

std::string_view view_of(model::bytes_view b) {
    return model::string_of(b);
}

// A closed segment as the key-map pass saw it.
struct mapped_segment {
    const segment_info* info = nullptr;
    uint64_t last_batch_position = 0;  // where its last batch starts (0 when it has none)
    bool has_batches = false;
};

// What one compaction run learns about producers, for the marker rule (compaction.h).
struct producer_pass_state {
    // Producer id -> base offset of its last batch in the mapped segments.
    std::unordered_map<int64_t, int64_t> last_batch;
    // Producers whose current transaction had a data batch in this cleaning pass so far.
    std::unordered_set<int64_t> data_seen;
};

// Whether the control batch is a COMMIT or ABORT marker, or empty (an earlier pass emptied it):
// the only control batches the marker rule may remove.
bool removable_kind(model::bytes_view batch, const model::batch_header& h,
                    compaction_scratch& scratch) {
    bool known = true;
    auto walked = model::for_each_record(batch, h, scratch.decompressed,
                                         [&](const model::record_view& rec) {
                                             auto m = model::parse_control_record(rec);
                                             known = known && m &&
                                                     (m->type == model::control_type::commit ||
                                                      m->type == model::control_type::abort);
                                         });
    return walked && known;
}

bool cancelled(const std::atomic<bool>* cancel) {
    return cancel != nullptr && cancel->load(std::memory_order_relaxed);
}

size_t scan_limit_bytes(const compaction_options& opts) {
    return std::max(opts.max_batch_bytes, bf::header_size + bf::log_overhead);
}

// Adds the keys of one segment to `map`. Returns false when the map filled up part way (the
// entries added so far stay: they point at records newer than any in earlier segments, so they
// still mark those older records as superseded).
result<bool> map_segment(file_system& fs, const compaction_options& opts, mapped_segment& seg,
                         key_map& map, compaction_scratch& scratch, producer_pass_state& producers,
                         const std::atomic<bool>* cancel) {
    auto f = fs.open(seg.info->path, open_mode::read_only);
    if (!f) return f.error();
    batch_scanner scan(**f, 0, seg.info->size_bytes, scan_limit_bytes(opts));
    bool fits = true;
    while (fits) {
        if (cancelled(cancel)) return error(errc::closed, "compaction cancelled");
        auto what = scan.next(true);
        if (what == batch_scanner::outcome::end) break;
        if (what == batch_scanner::outcome::bad) return scan.problem;
        seg.has_batches = true;
        seg.last_batch_position = scan.position;
        if (scan.header.producer_id >= 0) {
            producers.last_batch[scan.header.producer_id] = scan.header.base_offset;
        }
        if (scan.header.control() || opts.is_aborted(scan.header)) continue;
        const model::batch_header& h = scan.header;
        auto walked = model::for_each_record(
            scan.batch_bytes(), h, scratch.decompressed,
            [&](const model::record_view& rec) {
                if (rec.key && !map.update(*rec.key, rec.offset(h))) fits = false;
                return fits;
            },
            opts.max_decompressed_bytes);
        if (!walked) {
            return error(errc::corrupt, seg.info->path + " at byte " +
                                            std::to_string(scan.position) + ": " +
                                            walked.error().describe());
        }
    }
    return fits;
}

// The key-map pass: maps segments oldest first until the map is full. Returns how many
// segments were mapped completely.
result<size_t> build_key_map(file_system& fs, const compaction_options& opts,
                             std::vector<mapped_segment>& segs, key_map& map,
                             compaction_scratch& scratch, producer_pass_state& producers,
                             const std::atomic<bool>* cancel) {
    size_t mapped = 0;
    for (auto& seg : segs) {
        auto fits = map_segment(fs, opts, seg, map, scratch, producers, cancel);
        if (!fits) return fits.error();
        if (!*fits) break;
        ++mapped;
    }
    return mapped;
}

// Writes the retained batches of one segment in chunks to an output file.
class chunked_writer {
  public:
    chunked_writer(file& out, size_t chunk_bytes) : _out(out), _chunk_bytes(chunk_bytes) {
        _buf.reserve(chunk_bytes);
    }
    std::vector<std::byte>& buffer() { return _buf; }
    result<void> maybe_flush() { return _buf.size() >= _chunk_bytes ? flush() : ok(); }
    result<void> flush() {
        if (_buf.empty()) return ok();
        if (auto r = _out.write_sync(_pos, _buf); !r) return r;
        _pos += _buf.size();
        _buf.clear();
        return ok();
    }
    uint64_t written_bytes() const { return _pos + _buf.size(); }

  private:
    file& _out;
    size_t _chunk_bytes;
    std::vector<std::byte> _buf;
    uint64_t _pos = 0;
};

// The marker rule (compaction.h) for a control batch met by the cleaning pass; also ends the
// producer's current transaction in `producers`.
bool marker_removable(const compaction_options& opts, model::bytes_view batch,
                      const model::batch_header& h, bool past_horizon, bool last_of_segment,
                      producer_pass_state& producers, compaction_scratch& scratch) {
    if (h.producer_id < 0) return false;
    const bool had_data = producers.data_seen.erase(h.producer_id) > 0;
    if (had_data || !past_horizon || last_of_segment) return false;
    if (h.base_offset >= opts.marker_removal_below) return false;
    auto last = producers.last_batch.find(h.producer_id);
    if (last == producers.last_batch.end() || last->second == h.base_offset) return false;
    return removable_kind(batch, h, scratch);
}

// The cleaning pass over one mapped segment. Returns whether anything was dropped (if not, the
// cleaned file is removed again and the segment stays as it is).
result<bool> clean_segment(file_system& fs, const compaction_options& opts,
                           const mapped_segment& seg, cleaned_segment& cleaned,
                           const key_map& map, bool drop_tombstones, compaction_scratch& scratch,
                           compaction_stats& stats, producer_pass_state& producers,
                           const std::atomic<bool>* cancel) {
    const std::string& cleaned_path = cleaned.cleaned_path;
    auto in = fs.open(seg.info->path, open_mode::read_only);
    if (!in) return in.error();
    auto out = fs.open(cleaned_path, open_mode::truncate);
    if (!out) return out.error();
    chunked_writer writer(**out, opts.write_chunk_bytes);
    batch_scanner scan(**in, 0, seg.info->size_bytes, scan_limit_bytes(opts));
    bool changed = false;
    while (true) {
        if (cancelled(cancel)) return error(errc::closed, "compaction cancelled");
        auto what = scan.next(true);
        if (what == batch_scanner::outcome::end) break;
        if (what == batch_scanner::outcome::bad) return scan.problem;
        stats.bytes_read += scan.header.size_bytes();
        const bool last = scan.position == seg.last_batch_position;
        const model::batch_header& h = scan.header;
        if (h.control()) {
            if (marker_removable(opts, scan.batch_bytes(), h, drop_tombstones, last, producers,
                                 scratch)) {
                ++stats.markers_dropped;
                ++stats.batches_dropped;
                cleaned.markers_removed.emplace_back(h.producer_id, h.base_offset);
                changed = true;
                continue;
            }
        } else if (h.transactional() && h.producer_id >= 0) {
            producers.data_seen.insert(h.producer_id);
        }
        auto fate = filter_batch(scan.batch_bytes(), scan.header, map, drop_tombstones, last,
                                 opts.max_decompressed_bytes, scratch, writer.buffer(), stats,
                                 opts.is_aborted(scan.header));
        if (!fate) {
            return error(errc::corrupt, seg.info->path + " at byte " +
                                            std::to_string(scan.position) + ": " +
                                            fate.error().describe());
        }
        changed = changed || *fate != batch_fate::copied;
        if (auto r = writer.maybe_flush(); !r) return r.error();
    }
    if (!changed) return false;
    if (auto r = writer.flush(); !r) return r.error();
    if (auto r = (*out)->sync(); !r) return r.error();
    stats.bytes_written += writer.written_bytes();
    return true;
}

void remove_cleaned(file_system& fs, const std::vector<cleaned_segment>& cleaned) {
    // Best effort: a leftover .cleaned file is harmless (never read) and overwritten next run.
    for (const auto& c : cleaned) (void)fs.remove(c.cleaned_path);
}

// Rebuilds `h`'s batch with only the records in scratch.records marked kept (passed as a list).
result<void> rebuild_batch(const model::batch_header& h, std::span<const model::record_view> kept,
                           compaction_scratch& scratch, std::vector<std::byte>& out) {
    model::batch_options o;
    o.base_offset = h.base_offset;
    o.partition_leader_epoch = h.partition_leader_epoch;
    o.producer_id = h.producer_id;
    o.producer_epoch = h.producer_epoch;
    o.base_sequence = h.base_sequence;
    o.transactional = h.transactional();
    o.control = h.control();
    // An empty batch is written uncompressed: there is nothing to compress.
    o.codec = kept.empty() ? model::compression::none : h.codec();
    if (h.log_append_time()) o.log_append_time_ms = h.max_timestamp;
    o.last_offset_delta = h.last_offset_delta;
    scratch.builder.reset(o);
    for (const auto& rec : kept) {
        scratch.headers.assign(rec.headers.begin(), rec.headers.end());
        scratch.builder.add_with_offset_delta(rec.offset_delta, rec.key, rec.value,
                                              rec.timestamp(h), scratch.headers);
    }
    return scratch.builder.build_into(out);
}

}  // namespace

bool key_map::update(model::bytes_view key, int64_t offset) {
    auto it = _map.find(view_of(key));
    if (it != _map.end()) {
        // Offsets come from disk in increasing order; keep the larger one rather than assert on
        // what a segment says.
        it->second = std::max(it->second, offset);
        return true;
    }
    const size_t cost_bytes = key.size() + entry_overhead_bytes;
    if (_bytes + cost_bytes > _max_bytes) return false;
    _map.emplace(std::string(view_of(key)), offset);
    _bytes += cost_bytes;
    return true;
}

std::optional<int64_t> key_map::latest(model::bytes_view key) const {
    auto it = _map.find(view_of(key));
    if (it == _map.end()) return std::nullopt;
    return it->second;
}

bool compaction_options::is_aborted(const model::batch_header& h) const {
    if (aborted.empty() || h.control() || !h.transactional()) return false;
    auto it = aborted.find(h.producer_id);
    if (it == aborted.end()) return false;
    for (const auto& [first, last] : it->second) {
        if (h.base_offset >= first && h.base_offset <= last) return true;
    }
    return false;
}

result<batch_fate> filter_batch(model::bytes_view batch, const model::batch_header& h,
                                const key_map& map, bool drop_tombstones, bool keep_if_empty,
                                size_t max_decompressed_bytes, compaction_scratch& scratch,
                                std::vector<std::byte>& out, compaction_stats& stats,
                                bool aborted) {
    if (aborted && !h.control()) {
        stats.records_read += static_cast<uint64_t>(std::max(h.record_count, 0));
        stats.aborted_records_dropped += static_cast<uint64_t>(std::max(h.record_count, 0));
        if (!keep_if_empty) {
            ++stats.batches_dropped;
            return batch_fate::dropped;
        }
        scratch.records.clear();
        if (auto r = rebuild_batch(h, scratch.records, scratch, out); !r) return r.error();
        ++stats.batches_emptied;
        return batch_fate::emptied;
    }
    if (h.control()) {
        // Transaction markers stay: consumers and producer state need them.
        out.insert(out.end(), batch.begin(), batch.end());
        ++stats.batches_copied;
        return batch_fate::copied;
    }
    scratch.records.clear();
    size_t seen = 0;
    auto walked = model::for_each_record(
        batch, h, scratch.decompressed,
        [&](const model::record_view& rec) {
            ++seen;
            if (rec.key) {
                auto latest = map.latest(*rec.key);
                if (latest && *latest > rec.offset(h)) {
                    ++stats.records_superseded;
                    return;
                }
                if (!rec.value && drop_tombstones) {
                    ++stats.tombstones_dropped;
                    return;
                }
            }
            scratch.records.push_back(rec);
        },
        max_decompressed_bytes);
    if (!walked) return walked.error();
    stats.records_read += seen;
    stats.records_kept += scratch.records.size();
    if (scratch.records.size() == seen) {
        out.insert(out.end(), batch.begin(), batch.end());
        ++stats.batches_copied;
        return batch_fate::copied;
    }
    if (scratch.records.empty() && !keep_if_empty) {
        ++stats.batches_dropped;
        return batch_fate::dropped;
    }
    if (auto r = rebuild_batch(h, scratch.records, scratch, out); !r) return r.error();
    if (scratch.records.empty()) {
        ++stats.batches_emptied;
        return batch_fate::emptied;
    }
    ++stats.batches_rewritten;
    return batch_fate::rewritten;
}

result<compaction_output> compact_segments(file_system& fs, std::span<const segment_info> closed,
                                           const compaction_options& opts, int64_t now_ms,
                                           const std::atomic<bool>* cancel) {
    compaction_output result_out;
    compaction_stats& stats = result_out.stats;
    std::vector<mapped_segment> segs(closed.size());
    for (size_t i = 0; i < closed.size(); ++i) segs[i].info = &closed[i];
    key_map map(opts.key_map_max_bytes);
    compaction_scratch scratch;
    producer_pass_state producers;
    auto mapped = build_key_map(fs, opts, segs, map, scratch, producers, cancel);
    if (!mapped) return mapped.error();
    stats.segments_mapped = *mapped;
    stats.segments_beyond_map = closed.size() - *mapped;
    stats.key_map_entries = map.size();
    stats.key_map_bytes = map.bytes();
    if (*mapped == 0 && !closed.empty()) {
        return error(errc::invalid_argument,
                     "key map of " + std::to_string(opts.key_map_max_bytes) +
                         " bytes cannot hold the keys of segment " + closed[0].path);
    }
    const int64_t tombstone_horizon_ms = now_ms - opts.delete_retention_ms;
    for (size_t i = 0; i < *mapped; ++i) {
        const mapped_segment& seg = segs[i];
        cleaned_segment cleaned{*seg.info,
                                seg.info->path + std::string(log_format::cleaned_suffix), {}};
        const bool drop_tombstones = seg.info->max_timestamp() < tombstone_horizon_ms;
        auto changed = clean_segment(fs, opts, seg, cleaned, map, drop_tombstones, scratch,
                                     stats, producers, cancel);
        if (!changed || !*changed) (void)fs.remove(cleaned.cleaned_path);
        if (!changed) {
            remove_cleaned(fs, result_out.cleaned);
            return changed.error();
        }
        if (*changed) {
            result_out.cleaned.push_back(std::move(cleaned));
        } else {
            ++stats.segments_unchanged;
        }
    }
    return result_out;
}

// The driver. `run_state` is shared between the compactor (reactor thread) and the task posted
// back by the worker: `alive` is read and written on the reactor thread only, so a result that
// arrives after the compactor was destroyed is recognised and dropped.
struct compactor::run_state {
    std::atomic<bool> cancel{false};
    bool alive = true;
    partition_log* log = nullptr;
    file_system* fs = nullptr;
    std::vector<segment_info> planned;  // the closed segments as start() saw them
    done_callback done;
    std::function<bool(const std::vector<std::pair<int64_t, int64_t>>&)> before_markers_removed;
};

compactor::~compactor() {
    if (_state) {
        _state->cancel = true;
        _state->alive = false;
    }
    if (_worker.joinable()) _worker.join();
}

result<void> compactor::start(partition_log& log, file_system& fs, runtime::reactor& r,
                              compaction_options opts, int64_t now_ms, done_callback done) {
    if (_running) return error(errc::busy, "a compaction of " + log.dir() + " is running");
    if (auto st = log.status(); !st) return st.error();
    if (_worker.joinable()) _worker.join();  // the previous run's thread, already finished
    auto st = std::make_shared<run_state>();
    st->log = &log;
    st->fs = &fs;
    st->planned = log.closed_segments();
    while (!st->planned.empty() && st->planned.back().next_offset() > opts.clean_below_offset) {
        st->planned.pop_back();
    }
    st->done = std::move(done);
    st->before_markers_removed = opts.before_markers_removed;
    _state = st;
    _running = true;
    // The worker reads st->planned and st->fs only; st->log is for the reactor thread.
    _worker = std::thread([this, st, &r, opts = std::move(opts), now_ms]() mutable {
        auto out = compact_segments(*st->fs, st->planned, opts, now_ms, &st->cancel);
        if (out && opts.before_swap_hook) opts.before_swap_hook();
        r.post([this, st, out = std::move(out)]() mutable {
            if (!st->alive) {
                if (out) remove_cleaned(*st->fs, out->cleaned);
                return;
            }
            finish(st, std::move(out));
        });
    });
    return ok();
}

namespace {

// The closed segment `want` still exactly as the worker read it.
bool unchanged(const std::vector<segment_info>& now, const segment_info& want) {
    return std::any_of(now.begin(), now.end(), [&](const segment_info& s) {
        return s.base_offset == want.base_offset && s.next_offset == want.next_offset &&
               s.size_bytes == want.size_bytes && s.path == want.path;
    });
}

}  // namespace

void compactor::finish(const std::shared_ptr<run_state>& st, result<compaction_output> out) {
    _running = false;
    if (_worker.joinable()) _worker.join();  // it has posted its last work; exits at once
    done_callback done = std::move(st->done);
    _state.reset();
    partition_log& log = *st->log;
    if (!out) {
        // A segment deleted (retention, DeleteRecords) or truncated under the worker makes it
        // fail to open or read; that is a lost race, not an error: the next run cleans what is
        // left.
        const auto now = log.closed_segments();
        const bool raced = std::any_of(st->planned.begin(), st->planned.end(),
                                       [&](const segment_info& s) { return !unchanged(now, s); });
        if (!raced || log.failed()) return done(out.error());
        compaction_stats stats;
        stats.segments_skipped = st->planned.size();
        return done(stats);
    }
    compaction_stats stats = out->stats;
    for (size_t i = 0; i < out->cleaned.size(); ++i) {
        const cleaned_segment& c = out->cleaned[i];
        if (log.failed() || !unchanged(log.closed_segments(), c.original) ||
            (!c.markers_removed.empty() && st->before_markers_removed &&
             !st->before_markers_removed(c.markers_removed))) {
            (void)st->fs->remove(c.cleaned_path);
            ++stats.segments_skipped;
            continue;
        }
        if (auto r = log.replace_segment(c.original.base_offset); !r) {
            remove_cleaned(*st->fs,
                           {out->cleaned.begin() + static_cast<ptrdiff_t>(i), out->cleaned.end()});
            done(r.error());
            return;
        }
        ++stats.segments_rewritten;
        stats.markers_removed.insert(stats.markers_removed.end(), c.markers_removed.begin(),
                                     c.markers_removed.end());
    }
    done(stats);
}

}  // namespace sluice::engine
