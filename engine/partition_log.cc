// The append path, the group-commit fsync machinery, reads and the segment-list operations.
// Recovery lives in recovery.cc.

#include "engine/partition_log.h"

#include <algorithm>
#include <chrono>

#include "base/log.h"
#include "engine/log_format.h"
#include "engine/partition_log_impl.h"
#include "model/records.h"

namespace sluice::engine {

namespace bf = model::batch_format;
namespace lf = log_format;

// ---------------------------------------------------------------------------------------------
// partition_log: thin forwarding to impl.

result<std::unique_ptr<partition_log>> partition_log::open(runtime::reactor& r, file_system& fs,
                                                           const std::string& log_dir,
                                                           const model::tp& tp, log_config cfg,
                                                           runtime::clock& clock) {
    if (cfg.segment_bytes > lf::max_segment_bytes) cfg.segment_bytes = lf::max_segment_bytes;
    cfg.max_open_segment_files = std::max<uint32_t>(cfg.max_open_segment_files, 1);
    cfg.max_inflight_writes = std::max<uint32_t>(cfg.max_inflight_writes, 1);
    auto i = std::make_unique<impl>(r, fs, log_dir + "/" + tp.dir_name(), tp, cfg, clock);
    if (auto ok = i->load(); !ok) return ok.error();
    return std::unique_ptr<partition_log>(new partition_log(std::move(i)));
}

partition_log::partition_log(std::unique_ptr<impl> i) : _impl(std::move(i)) {}
partition_log::~partition_log() = default;

void partition_log::append(std::span<std::byte> b, append_options o, append_callback cb) {
    _impl->append(b, o, std::move(cb));
}
bool partition_log::has_room(size_t bytes) const { return _impl->has_room(bytes); }
void partition_log::when_room(size_t bytes, std::function<void()> fn) {
    _impl->when_room(bytes, std::move(fn));
}
result<read_result> partition_log::read(model::offset start, size_t max_bytes,
                                        model::offset upper, bool min_one) const {
    return _impl->read(start, max_bytes, upper, min_one);
}
result<std::optional<timestamp_lookup>> partition_log::offset_for_timestamp(
    model::timestamp_ms ts) const {
    return _impl->offset_for_timestamp(ts());
}
model::log_start_offset partition_log::log_start_offset() const {
    return model::log_start_offset(_impl->_log_start);
}
model::log_end_offset partition_log::log_end_offset() const {
    return model::log_end_offset(_impl->_written_end);
}
model::offset partition_log::recovery_point() const { return model::offset(_impl->_durable_end); }
void partition_log::truncate_to(model::offset o, io_callback cb) { _impl->truncate_to(o(), std::move(cb)); }
result<void> partition_log::delete_records_before(model::offset o) {
    return _impl->delete_records_before(o());
}
void partition_log::flush(io_callback cb) { _impl->flush(std::move(cb)); }
void partition_log::close(io_callback cb) { _impl->close(std::move(cb)); }
result<void> partition_log::status() const { return _impl->status(); }
bool partition_log::failed() const { return _impl->_failure.has_value(); }
void partition_log::on_failure(std::function<void(const error&)> fn) {
    _impl->_failure_handler = std::move(fn);
}
void partition_log::take_offline(const error& why) { _impl->fail(why); }
std::vector<segment_info> partition_log::closed_segments() const { return _impl->closed_segments(); }
segment_info partition_log::active_segment() const { return _impl->active_segment(); }
result<void> partition_log::delete_oldest_segments(size_t n) { return _impl->delete_oldest_segments(n); }
result<void> partition_log::replace_segment(model::offset base) { return _impl->replace_segment(base()); }
result<void> partition_log::roll() { return _impl->roll(); }
const std::string& partition_log::dir() const { return _impl->_dir; }
const model::tp& partition_log::tp() const { return _impl->_tp; }
const log_config& partition_log::config() const { return _impl->_cfg; }
const log_stats& partition_log::stats() const { return _impl->_stats; }
size_t partition_log::open_segment_files() const {
    return _impl->_lru.size() + _impl->_sealing.size() + (_impl->_active ? 1 : 0);
}

// ---------------------------------------------------------------------------------------------
// impl: lifecycle and status.

partition_log::impl::impl(runtime::reactor& r, file_system& fs, std::string dir, model::tp tp,
                          log_config cfg, runtime::clock& clock)
    : _r(r), _fs(fs), _dir(std::move(dir)), _tp(std::move(tp)), _cfg(cfg), _clock(clock) {}

partition_log::impl::~impl() {
    if (_fsync_timer) _r.cancel_timer(_fsync_timer);
    if (_checkpoint_timer) _r.cancel_timer(_checkpoint_timer);
}

result<void> partition_log::impl::status() const {
    if (_failure) return *_failure;
    return ok();
}

void partition_log::impl::fail(const error& e) {
    if (_failure) return;
    log::error("engine", _tp.dir_name(), ": partition failed (fail-stop): ", e.describe());
    _failure = error(errc::partition_failed, e.describe());
    if (_failure_handler) {
        _r.defer([w = std::weak_ptr<int>(_alive), this, cause = e] {
            if (!w.expired() && _failure_handler) _failure_handler(cause);
        });
    }
    auto waiters = std::move(_waiters);
    _waiters.clear();
    for (auto& w : waiters) w.cb(*_failure);
    auto flushes = std::move(_flush_waiters);
    _flush_waiters.clear();
    for (auto& [target, cb] : flushes) cb(*_failure);
    auto held = std::move(_held);
    _held.clear();
    for (auto& h : held) h.cb(*_failure);
    notify_room();
    run_idle_tasks();
}

bool partition_log::impl::idle() const {
    return _chunks.empty() && _sealing.empty() && !_finalizing && !_fsync_inflight &&
           _inflight_writes == 0 && (_held.empty() || _truncating);
}

void partition_log::impl::when_idle(std::function<void()> fn) {
    _idle_tasks.push_back(std::move(fn));
    if (idle() || _failure) {
        _r.defer([w = std::weak_ptr<int>(_alive), this] {
            if (!w.expired()) run_idle_tasks();
        });
    }
}

void partition_log::impl::run_idle_tasks() {
    if (_idle_tasks.empty() || !(idle() || _failure)) return;
    auto tasks = std::move(_idle_tasks);
    _idle_tasks.clear();
    for (auto& t : tasks) t();
}

// ---------------------------------------------------------------------------------------------
// Append.

std::optional<error> partition_log::impl::refusal() const {
    if (_failure) return *_failure;
    if (_closing || _closed) return error(errc::closed, _tp.dir_name());
    return std::nullopt;
}

void partition_log::impl::defer_error(append_callback cb, error e) {
    _r.defer([cb = std::move(cb), e = std::move(e)] { cb(e); });
}

namespace {
struct append_summary {
    int64_t offsets = 0;  // offsets the batches occupy (sum of last_offset_delta + 1)
    uint64_t records = 0;
    size_t batches = 0;
};

result<append_summary> validate_batches(std::span<const std::byte> data, uint32_t max_message_bytes) {
    append_summary s;
    size_t pos = 0;
    model::validation_limits limits{size_t{max_message_bytes} + bf::log_overhead};
    while (pos < data.size()) {
        auto h = model::validate(data.subspan(pos), limits);
        if (!h) {
            auto code = h.error().is(model::errc::too_large) ? errc::batch_too_large : errc::invalid_batch;
            return error(code, "batch " + std::to_string(s.batches) + " at byte " +
                                   std::to_string(pos) + ": " + h.error().describe());
        }
        s.offsets += int64_t{h->last_offset_delta} + 1;
        s.records += static_cast<uint64_t>(h->record_count);
        ++s.batches;
        pos += h->size_bytes();
    }
    if (s.batches == 0) return error(errc::invalid_batch, "no batches");
    return s;
}
}  // namespace

bool partition_log::impl::needs_roll(uint64_t bytes, int64_t offsets) const {
    const segment& a = *_active;
    if (a.assigned_size == 0) return false;
    if (a.assigned_size + bytes > _cfg.segment_bytes) return true;
    if (a.first_append_ms >= 0 && _clock.now_ms() - a.first_append_ms >= _cfg.segment_ms) return true;
    if (_next_offset + offsets - 1 - a.base > lf::max_relative_offset) return true;
    if ((a.oindex.size() + 1) * lf::index_entry_bytes > _cfg.segment_index_bytes) return true;
    return false;
}

bool partition_log::impl::buffer_fits(size_t bytes) const {
    return _buffered_bytes == 0 || _buffered_bytes + bytes <= _cfg.append_buffer_max_bytes;
}

bool partition_log::impl::has_room(size_t bytes) const {
    return _held.empty() && !_truncating && buffer_fits(bytes);
}

void partition_log::impl::when_room(size_t bytes, std::function<void()> fn) {
    _room_bytes = bytes;
    _room_waiter = std::move(fn);
    if (has_room(bytes) || _failure || _closing || _closed) notify_room();
}

// Runs the room waiter (deferred: it will usually append, and must not do so from inside a
// completion that is still walking the log's queues).
void partition_log::impl::notify_room() {
    if (!_room_waiter) return;
    auto fn = std::move(_room_waiter);
    _room_waiter = nullptr;
    _r.defer([w = std::weak_ptr<int>(_alive), fn = std::move(fn)] {
        if (!w.expired()) fn();
    });
}

void partition_log::impl::append(std::span<std::byte> data, append_options opts, append_callback cb) {
    if (auto e = refusal()) return defer_error(std::move(cb), *e);
    auto summary = validate_batches(data, _cfg.max_message_bytes);
    if (!summary) return defer_error(std::move(cb), summary.error());
    if (!has_room(data.size())) {
        // Wait, do not refuse: a refused batch retried later would land after the batches
        // that followed it (issue #15). The copy keeps the caller's buffer contract.
        ++_stats.held_appends;
        _held.push_back({std::vector<std::byte>(data.begin(), data.end()), opts, std::move(cb),
                         summary->offsets, summary->records, summary->batches});
        return;
    }
    admit(data, opts, std::move(cb), summary->offsets, summary->records, summary->batches);
}

// Admits held appends, oldest first, while they fit; then tells the owner if it waits for room.
void partition_log::impl::admit_held() {
    while (!_held.empty() && !_truncating && !_failure && buffer_fits(_held.front().bytes.size())) {
        auto h = std::move(_held.front());
        _held.pop_front();
        // The chunk copies the bytes, so the held copy may go once admit() returns.
        admit(h.bytes, h.opts, std::move(h.cb), h.offsets, h.records, h.batches);
    }
    if (_room_waiter && has_room(_room_bytes)) notify_room();
}

void partition_log::impl::admit(std::span<std::byte> data, const append_options& opts,
                                append_callback cb, int64_t offsets, uint64_t records,
                                size_t batches) {
    if (opts.keep_offsets) {
        // The batches' own offsets must continue the log; they span up to the last one.
        int64_t expect = _next_offset;
        size_t pos = 0;
        int64_t last = expect - 1;
        while (pos < data.size()) {
            auto h = *model::parse_header(data.subspan(pos));  // validated above
            if (h.base_offset < expect) {
                return defer_error(std::move(cb),
                                   error(errc::invalid_batch,
                                         "replicated batch at offset " +
                                             std::to_string(h.base_offset) +
                                             " does not follow offset " + std::to_string(expect - 1)));
            }
            last = h.last_offset();
            expect = last + 1;
            pos += h.size_bytes();
        }
        offsets = last + 1 - _next_offset;
    }
    // Space first: on a full disk the append is refused before any offset is assigned, and
    // the partition stays as it was (reads go on; a later append retries).
    if (needs_roll(data.size(), offsets)) {
        if (auto r = roll_active(); !r) return refuse(std::move(cb), r.error());
    }
    if (auto r = ensure_allocated(*_active, _active->assigned_size + data.size()); !r) {
        return refuse(std::move(cb), r.error());
    }
    space_ok();
    // A follower keeps the timestamps its leader wrote.
    const bool append_time = !opts.keep_offsets &&
                             _cfg.message_timestamp_type == timestamp_type::log_append_time;
    const int64_t now = _clock.now_ms();
    segment& seg = *_active;
    if (seg.first_append_ms < 0) seg.first_append_ms = now;
    append_result res{model::offset(_next_offset), {}, model::timestamp_ms(append_time ? now : -1)};
    chunk& c = open_chunk();  // before the loop: the chunk starts at the current assigned size
    size_t pos = 0;
    while (pos < data.size()) {
        auto h = *model::parse_header(data.subspan(pos));  // validated above
        auto batch = data.subspan(pos, h.size_bytes());
        if (!opts.keep_offsets) {
            model::set_base_offset(batch, _next_offset);
            h.base_offset = _next_offset;
        } else if (pos == 0) {
            res.base_offset = model::offset(h.base_offset);
        }
        if (opts.leader_epoch) model::set_partition_leader_epoch(batch, (*opts.leader_epoch)());
        if (append_time) {
            model::set_log_append_time(batch, now);
            h.max_timestamp = now;
        }
        seg.index_batch(h, seg.assigned_size, _cfg.index_interval_bytes);
        seg.assigned_size += h.size_bytes();
        _next_offset = h.last_offset() + 1;
        pos += h.size_bytes();
    }
    seg.assigned_next = _next_offset;
    res.last_offset = model::offset(_next_offset - 1);
    c.bytes.insert(c.bytes.end(), data.begin(), data.end());
    c.end_offset = _next_offset;
    c.records += records;
    _buffered_bytes += data.size();
    ++_stats.appends;
    _stats.batches += batches;
    _waiters.push_back({_next_offset, res, std::move(cb)});
    schedule_writes();
}

// An append that could not get disk space: refused with no_space while the partition keeps
// serving; any other failure stops the partition.
void partition_log::impl::refuse(append_callback cb, const error& e) {
    if (!e.is(errc::no_space)) {
        fail(e);
        return defer_error(std::move(cb), *_failure);
    }
    ++_stats.no_space_refusals;
    if (!_out_of_space) {
        _out_of_space = true;
        log::error("engine", _tp.dir_name(), ": log dir ", _dir,
                   " is full; appends are refused (KAFKA_STORAGE_ERROR) until space returns: ",
                   e.describe());
    }
    defer_error(std::move(cb), e);
}

void partition_log::impl::space_ok() {
    if (!_out_of_space) return;
    _out_of_space = false;
    log::info("engine", _tp.dir_name(), ": space in ", _dir, " again; appends resume");
}

result<void> partition_log::impl::ensure_allocated(segment& s, uint64_t end) {
    if (!_cfg.preallocate || (end < s.allocated_bytes && s.allocated_bytes > 0)) return ok();
    uint64_t step = std::min<uint64_t>(_cfg.preallocate_step_bytes, _cfg.segment_bytes);
    uint64_t target = std::min<uint64_t>(std::max(end, s.allocated_bytes) + step, _cfg.segment_bytes);
    target = std::max(target, end);
    if (target <= s.allocated_bytes) return ok();
    if (auto r = s.log->allocate(s.allocated_bytes, target - s.allocated_bytes); !r) return r;
    s.allocated_bytes = target;
    return ok();
}

partition_log::impl::chunk& partition_log::impl::open_chunk() {
    if (!_chunks.empty() && !_chunks.back()->issued && _chunks.back()->seg == _active) {
        return *_chunks.back();
    }
    auto c = std::make_shared<chunk>();
    c->seg = _active;
    c->pos = _active->assigned_size;
    if (!_free_buffers.empty()) {
        c->bytes = std::move(_free_buffers.back());
        _free_buffers.pop_back();
        c->bytes.clear();
    }
    _chunks.push_back(std::move(c));
    return *_chunks.back();
}

void partition_log::impl::schedule_writes() {
    if (_write_scheduled) return;
    _write_scheduled = true;
    _r.defer([w = std::weak_ptr<int>(_alive), this] {
        if (w.expired()) return;
        _write_scheduled = false;
        issue_writes();
    });
}

void partition_log::impl::issue_writes() {
    if (_failure) return;
    for (auto& c : _chunks) {
        if (c->issued) continue;
        if (_inflight_writes >= _cfg.max_inflight_writes) break;
        if (c->seg != writable_segment()) break;  // roll barrier: the old segment is durable first
        // Inline only with no ring write in flight: ext4 holds the inode lock through a
        // buffered write, so a pwrite behind one would wait for it on the reactor.
        const bool inline_write =
            c->bytes.size() <= _cfg.inline_write_bytes && _inflight_writes == 0;
        c->issued = true;
        ++_inflight_writes;
        ++_stats.writes;
        if (inline_write) {
            ++_stats.inline_writes;
            auto r = c->seg->log->write_sync(c->pos, c->bytes);
            const bool failed = !r;
            // Completed from the loop, as a ring completion would be: on_write_done issues the
            // next writes and must not run inside this one's iteration.
            _r.defer([w = std::weak_ptr<int>(_alive), this, c, r = std::move(r)]() mutable {
                if (!w.expired()) on_write_done(c, std::move(r));
            });
            if (failed) break;  // nothing past a failed write: the partition fail-stops
            continue;
        }
        c->seg->log->write_at(_r, c->pos, c->bytes,
                              [w = std::weak_ptr<int>(_alive), this, c](result<void> r) {
                                  if (!w.expired()) on_write_done(c, std::move(r));
                              });
    }
}

void partition_log::impl::on_write_done(const std::shared_ptr<chunk>& c, result<void> r) {
    --_inflight_writes;
    if (!r) return fail(r.error());
    if (_failure) return;
    c->done = true;
    while (!_chunks.empty() && _chunks.front()->done) {
        auto& f = *_chunks.front();
        f.seg->size = f.pos + f.bytes.size();
        f.seg->next_offset = f.end_offset;
        _written_end = f.end_offset;
        _buffered_bytes -= f.bytes.size();
        _stats.bytes_written += f.bytes.size();
        _unflushed_messages += static_cast<int64_t>(f.records);
        _dirty.insert(f.seg);
        if (_free_buffers.size() <= _cfg.max_inflight_writes && f.bytes.capacity() <= (4u << 20)) {
            _free_buffers.push_back(std::move(f.bytes));
        }
        _chunks.pop_front();
    }
    after_progress();
}

void partition_log::impl::after_progress() {
    if (_failure) return;
    complete_waiters();
    maybe_finalize_sealing();
    maybe_fsync();
    admit_held();
    issue_writes();
    run_idle_tasks();
}

void partition_log::impl::complete_waiters() {
    const int64_t acked_end = durability_acks() ? _durable_end : _written_end;
    while (!_waiters.empty() && _waiters.front().end_offset <= acked_end) {
        auto w = std::move(_waiters.front());
        _waiters.pop_front();
        w.cb(w.res);
        if (_failure) return;
    }
    while (!_flush_waiters.empty() && _flush_waiters.front().first <= _durable_end) {
        auto cb = std::move(_flush_waiters.front().second);
        _flush_waiters.pop_front();
        cb(ok());
        if (_failure) return;
    }
}

// ---------------------------------------------------------------------------------------------
// Roll and the durability of closed segments.

result<std::unique_ptr<segment>> partition_log::impl::create_segment(int64_t base) {
    auto s = std::make_unique<segment>();
    s->base = base;
    s->dir = _dir;
    s->next_offset = s->assigned_next = base;
    auto f = _fs.open(s->path(lf::log_suffix), open_mode::truncate);
    if (!f) return f.error();
    s->log = std::move(*f);
    if (auto r = ensure_allocated(*s, 0); !r) {
        s->log.reset();
        (void)_fs.remove(s->path(lf::log_suffix));  // an empty file; recovery would drop it too
        return r.error();
    }
    // Stale index files of an earlier incarnation would describe other bytes.
    if (auto r = _fs.remove(s->path(lf::index_suffix)); !r) return r.error();
    if (auto r = _fs.remove(s->path(lf::time_index_suffix)); !r) return r.error();
    if (auto r = _fs.fsync_dir(_dir); !r) return r.error();
    return s;
}

result<void> partition_log::impl::roll_active() {
    auto s = create_segment(_next_offset);
    if (!s) return s.error();
    segment* old = _active;
    _active = s->get();
    _segments[_next_offset] = std::move(*s);
    _sealing.push_back(old);
    ++_stats.segments_rolled;
    log::debug("engine", _tp.dir_name(), ": rolled to segment ", _active->base);
    maybe_finalize_sealing();
    return ok();
}

result<void> partition_log::impl::roll() {
    if (auto e = refusal()) return *e;
    if (_active->assigned_size == 0) return ok();
    if (auto r = roll_active(); !r) {
        fail(r.error());
        return *_failure;
    }
    schedule_writes();
    return ok();
}

// The oldest rolled segment becomes closed once its writes are done: its preallocated tail is
// dropped, its index files are written, and it is fdatasynced. Only then may the next segment
// receive writes, so every closed segment is durable and below the recovery point.
void partition_log::impl::maybe_finalize_sealing() {
    if (_sealing.empty() || _finalizing || _failure) return;
    segment* s = _sealing.front();
    for (auto& c : _chunks) {
        if (c->seg == s) return;  // writes still pending or in flight
    }
    _finalizing = true;
    s->seal_time_index();
    if (auto r = s->log->truncate(s->size); !r) return fail(r.error());
    if (auto r = s->write_index_files(_fs, true); !r) {
        if (!r.error().is(errc::no_space)) return fail(r.error());
        // The indexes stay in memory for reads; without their files recovery rebuilds them.
        log::warn("engine", _tp.dir_name(), ": no space for the index files of segment ", s->base,
                  "; they will be rebuilt at the next start");
        (void)_fs.remove(s->path(lf::index_suffix));
        (void)_fs.remove(s->path(lf::time_index_suffix));
    }
    s->indexes_dirty = false;
    ++_stats.fsyncs;
    s->log->fdatasync(_r, [w = std::weak_ptr<int>(_alive), this, s](result<void> r) {
        if (w.expired()) return;
        _finalizing = false;
        if (!r) return fail(r.error());
        _sealing.pop_front();
        _dirty.erase(s);
        _durable_end = std::max(_durable_end, s->next_offset);
        if (auto c = checkpoint_progress(); !c) return fail(c.error());
        lru_insert(*s);
        after_progress();
        schedule_writes();
    });
}

// ---------------------------------------------------------------------------------------------
// Group commit.

void partition_log::impl::maybe_fsync() {
    if (_failure || _fsync_inflight || _written_end <= _durable_end) return;
    bool flush_requested = !_flush_waiters.empty() && _flush_waiters.front().first > _durable_end;
    bool now = flush_requested;
    switch (_cfg.fsync) {
        case fsync_policy::always: now = true; break;
        case fsync_policy::batch:
            if (!now) arm_fsync_timer(_cfg.flush_ms != unlimited ? _cfg.flush_ms : _cfg.batch_linger_ms);
            break;
        case fsync_policy::never:
            if (_unflushed_messages >= _cfg.flush_messages) now = true;
            else if (_cfg.flush_ms != unlimited) arm_fsync_timer(_cfg.flush_ms);
            break;
    }
    if (now) start_fsync();
}

void partition_log::impl::arm_fsync_timer(int64_t delay_ms) {
    if (_fsync_timer) return;
    _fsync_timer = _r.add_timer(std::chrono::milliseconds(delay_ms), [w = std::weak_ptr<int>(_alive), this] {
        if (w.expired()) return;
        _fsync_timer = 0;
        if (!_failure && !_fsync_inflight && _written_end > _durable_end) start_fsync();
    });
}

void partition_log::impl::start_fsync() {
    if (_fsync_timer) {
        _r.cancel_timer(_fsync_timer);
        _fsync_timer = 0;
    }
    const int64_t target = _written_end;
    std::vector<segment*> files(_dirty.begin(), _dirty.end());
    _dirty.clear();
    _unflushed_messages = 0;
    _fsync_inflight = true;
    auto pending = std::make_shared<size_t>(files.size());
    auto done = [w = std::weak_ptr<int>(_alive), this, target, pending](result<void> r) {
        if (w.expired()) return;
        if (!r) {
            _fsync_inflight = false;
            return fail(r.error());
        }
        if (--*pending > 0) return;
        _fsync_inflight = false;
        if (_failure) return;
        _durable_end = std::max(_durable_end, target);
        arm_checkpoint_timer();
        after_progress();
    };
    if (files.empty()) {
        ++*pending;
        return _r.defer([done] { done(ok()); });
    }
    for (segment* s : files) {
        ++_stats.fsyncs;
        auto submitted = std::chrono::steady_clock::now();
        s->log->fdatasync(_r, [w = std::weak_ptr<int>(_alive), this, submitted, done](result<void> r) {
            if (!w.expired()) {
                _stats.fsync_ns += static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                    std::chrono::steady_clock::now() - submitted).count());
            }
            done(std::move(r));
        });
    }
}

void partition_log::impl::arm_checkpoint_timer() {
    if (_checkpoint_timer || _durable_end == _checkpointed_rp) return;
    auto delay = std::chrono::milliseconds(_cfg.recovery_point_checkpoint_interval_ms);
    _checkpoint_timer = _r.add_timer(delay, [w = std::weak_ptr<int>(_alive), this] {
        if (w.expired()) return;
        _checkpoint_timer = 0;
        if (_failure || _closed) return;
        if (auto r = checkpoint_progress(); !r) fail(r.error());
    });
}

result<void> partition_log::impl::checkpoint() {
    partition_checkpoint cp{_durable_end, _log_start};
    if (auto r = write_checkpoint(_fs, _dir, cp); !r) return r;
    _checkpointed_rp = _durable_end;
    return ok();
}

// A checkpoint that only records progress recovery can find by itself (the recovery point
// shortens the start-up scan; a log start at a segment boundary is the first segment's base):
// on a full disk the old checkpoint stays and the next progress retries.
result<void> partition_log::impl::checkpoint_progress() {
    auto r = checkpoint();
    if (r || !r.error().is(errc::no_space)) return r;
    log::debug("engine", _tp.dir_name(), ": no space for the checkpoint: ", r.error().describe());
    return ok();
}

void partition_log::impl::flush(io_callback cb) {
    if (_failure) return _r.defer([cb = std::move(cb), e = *_failure] { cb(e); });
    _flush_waiters.emplace_back(_next_offset, std::move(cb));
    if (_next_offset <= _durable_end) {
        _r.defer([w = std::weak_ptr<int>(_alive), this] {
            if (!w.expired()) complete_waiters();
        });
        return;
    }
    maybe_fsync();
}

// ---------------------------------------------------------------------------------------------
// Reads.

result<file*> partition_log::impl::file_for(segment& s) {
    if (s.log && !s.in_lru) return s.log.get();  // active or sealing: always open
    if (s.in_lru) {
        _lru.splice(_lru.begin(), _lru, s.lru_pos);
        return s.log.get();
    }
    auto f = _fs.open(s.path(lf::log_suffix), open_mode::read_only);
    if (!f) return f.error();
    s.log = std::move(*f);
    lru_insert(s);
    return s.log.get();
}

void partition_log::impl::lru_insert(segment& s) {
    if (s.in_lru) return;
    _lru.push_front(&s);
    s.lru_pos = _lru.begin();
    s.in_lru = true;
    while (_lru.size() > _cfg.max_open_segment_files) {
        segment* victim = _lru.back();
        _lru.pop_back();
        victim->in_lru = false;
        victim->log.reset();  // readers holding its shared_fd keep the descriptor alive
    }
}

void partition_log::impl::lru_remove(segment& s) {
    if (!s.in_lru) return;
    _lru.erase(s.lru_pos);
    s.in_lru = false;
}

// A fetch of many batches would otherwise read every batch header between its start and its end
// (one pread each for 64 KiB batches). The offset index knows where batches start: the batches
// from `from` up to an indexed batch that still ends within `budget` bytes and below `upper`
// are taken whole, reading only that one batch's header. Returns the position after the last
// batch taken and its last offset, or {from, -1} when nothing could be skipped.
std::pair<uint64_t, int64_t> partition_log::impl::skip_whole_batches(segment& s, file& f,
                                                                      uint64_t from,
                                                                      size_t budget,
                                                                      int64_t upper) {
    constexpr int max_header_reads = 3;
    const uint64_t end = std::min<uint64_t>(from + budget, s.size);
    auto candidates = s.oindex.between_positions(from, end);
    int reads = 0;
    for (auto it = candidates.rbegin(); it != candidates.rend() && reads < max_header_reads;
         ++it) {
        if (s.base + it->relative_offset >= upper) continue;
        ++reads;
        batch_scanner probe(f, it->position, s.size, max_scan_batch_bytes);
        if (probe.next(false) != batch_scanner::outcome::batch) break;
        const auto& h = probe.header;
        if (h.last_offset() >= upper) continue;
        if (probe.next_position() <= end) return {probe.next_position(), h.last_offset()};
    }
    return {from, -1};
}

result<read_result> partition_log::impl::read(model::offset start_o, size_t max_bytes,
                                              model::offset upper_o, bool min_one_batch) {
    if (_failure) return *_failure;
    const int64_t start = start_o();
    if (start < _log_start || start > _written_end) {
        return error(errc::offset_out_of_range,
                     "offset " + std::to_string(start) + " not in [" + std::to_string(_log_start) +
                         ", " + std::to_string(_written_end) + "] of " + _tp.dir_name());
    }
    const int64_t upper = std::min(upper_o(), _written_end);
    read_result out;
    auto it = _segments.upper_bound(start);
    if (it != _segments.begin()) --it;
    bool done = start >= upper;
    for (; !done && it != _segments.end() && it->second->base < upper; ++it) {
        segment& s = *it->second;
        auto f = file_for(s);
        if (!f) return f.error();
        uint64_t pos = start > s.base ? s.oindex.lookup(static_cast<int32_t>(start - s.base)) : 0;
        batch_scanner sc(**f, pos, s.size, max_scan_batch_bytes);
        uint64_t region_pos = 0, region_len = 0;
        bool skipped = false;
        for (;;) {
            auto o = sc.next(false);
            if (o == batch_scanner::outcome::end) break;
            if (o == batch_scanner::outcome::bad) return sc.problem;
            const auto& h = sc.header;
            if (h.last_offset() < start) continue;
            if (h.last_offset() >= upper) {
                done = true;
                break;
            }
            if (out.total_bytes + h.size_bytes() > max_bytes && !(min_one_batch && out.total_bytes == 0)) {
                done = true;
                break;
            }
            if (region_len == 0) region_pos = sc.position;
            if (out.first_offset() < 0) out.first_offset = model::offset(h.base_offset);
            out.last_offset = model::offset(h.last_offset());
            region_len += h.size_bytes();
            out.total_bytes += h.size_bytes();
            if (!skipped && out.total_bytes < max_bytes) {
                skipped = true;
                auto [to, last] = skip_whole_batches(s, **f, sc.next_position(), max_bytes - out.total_bytes, upper);
                if (to > sc.next_position()) {
                    uint64_t n = to - sc.next_position();
                    region_len += n;
                    out.total_bytes += n;
                    out.last_offset = model::offset(last);
                    sc.seek(to);
                }
            }
        }
        if (region_len > 0) {
            out.regions.push_back({(*f)->fd(), region_pos, static_cast<uint32_t>(region_len)});
        }
    }
    return out;
}

result<std::optional<timestamp_lookup>> partition_log::impl::offset_for_timestamp(int64_t ts) {
    using opt = std::optional<timestamp_lookup>;
    if (_failure) return *_failure;
    if (ts == partition_log::earliest_timestamp) {
        return opt(timestamp_lookup{model::offset(_log_start), model::timestamp_ms(-1)});
    }
    if (ts == partition_log::latest_timestamp) {
        return opt(timestamp_lookup{model::offset(_written_end), model::timestamp_ms(-1)});
    }
    if (ts == partition_log::max_timestamp) {
        opt best;
        for (auto& [base, s] : _segments) {
            if (s->max_timestamp >= 0 && s->offset_of_max_timestamp < _written_end &&
                (!best || s->max_timestamp > best->timestamp())) {
                best = timestamp_lookup{model::offset(s->offset_of_max_timestamp),
                                        model::timestamp_ms(s->max_timestamp)};
            }
        }
        return best;
    }
    if (ts < 0) return error(errc::invalid_argument, "timestamp " + std::to_string(ts));
    for (auto& [base, sp] : _segments) {
        segment& s = *sp;
        if (s.max_timestamp < ts || s.size == 0) continue;
        auto f = file_for(s);
        if (!f) return f.error();
        int32_t rel = s.tindex.lookup_before(ts);
        uint64_t pos = rel >= 0 ? s.oindex.lookup(rel) : 0;
        batch_scanner sc(**f, pos, s.size, max_scan_batch_bytes);
        for (;;) {
            auto o = sc.next(true);
            if (o == batch_scanner::outcome::end) break;
            if (o == batch_scanner::outcome::bad) return sc.problem;
            const auto& h = sc.header;
            if (h.last_offset() < _log_start || h.max_timestamp < ts) continue;
            if (auto hit = find_record_at_or_after(sc.batch_bytes(), h, ts)) {
                if (hit->offset() < _log_start) hit->offset = model::offset(_log_start);
                return opt(*hit);
            }
        }
    }
    return opt{};
}

std::optional<timestamp_lookup> find_record_at_or_after(std::span<const std::byte> batch,
                                                        const model::batch_header& h, int64_t ts) {
    if (h.max_timestamp < ts) return std::nullopt;
    std::optional<timestamp_lookup> hit;
    std::vector<std::byte> scratch;
    auto r = model::for_each_record(batch, h, scratch, [&](const model::record_view& rec) {
        if (rec.timestamp(h) < ts) return true;
        hit = timestamp_lookup{model::offset(rec.offset(h)), model::timestamp_ms(rec.timestamp(h))};
        return false;
    });
    // A batch whose records do not decode is answered at batch granularity.
    if (!r || !hit) {
        return timestamp_lookup{model::offset(h.base_offset), model::timestamp_ms(h.max_timestamp)};
    }
    return hit;
}

// ---------------------------------------------------------------------------------------------
// Truncation, DeleteRecords, segment list.

void partition_log::impl::truncate_to(int64_t offset, io_callback cb) {
    if (auto e = refusal()) return _r.defer([cb = std::move(cb), e = *e] { cb(e); });
    _truncating = true;
    when_idle([this, offset, cb = std::move(cb)] {
        _truncating = false;
        if (_failure) return cb(*_failure);
        auto r = do_truncate(offset);
        if (!r) fail(r.error());
        cb(r);
        // Appends made while it ran go in after it, in their order.
        admit_held();
        schedule_writes();
    });
}

result<void> partition_log::impl::remove_segment_files(segment& s) {
    lru_remove(s);
    _dirty.erase(&s);
    s.log.reset();
    for (auto suffix : {lf::log_suffix, lf::index_suffix, lf::time_index_suffix}) {
        if (auto r = _fs.remove(s.path(suffix)); !r) return r;
    }
    ++_stats.segments_deleted;
    return ok();
}

result<void> partition_log::impl::do_truncate(int64_t offset) {
    if (offset >= _written_end) return ok();
    if (offset <= _log_start) {
        // Everything goes; the log restarts at `offset` (replication's truncate-fully).
        for (auto& [b, s] : _segments) {
            if (auto r = remove_segment_files(*s); !r) return r;
        }
        _segments.clear();
        _active = nullptr;
        auto s = create_segment(offset);
        if (!s) return s.error();
        _active = s->get();
        _segments[offset] = std::move(*s);
        _log_start = _next_offset = _written_end = _durable_end = offset;
        return checkpoint();
    }
    auto it = std::prev(_segments.upper_bound(offset));
    segment& s = *it->second;
    // Later segments go entirely.
    for (auto later = std::next(it); later != _segments.end();) {
        if (auto r = remove_segment_files(*later->second); !r) return r;
        later = _segments.erase(later);
    }
    // Find the batch holding `offset`; everything from it on is cut.
    lru_remove(s);
    s.log.reset();
    auto f = _fs.open(s.path(lf::log_suffix), open_mode::read_write);
    if (!f) return f.error();
    s.log = std::move(*f);
    batch_scanner sc(*s.log, s.oindex.lookup(static_cast<int32_t>(offset - s.base)), s.size,
                     max_scan_batch_bytes);
    uint64_t cut = s.size;
    int64_t new_end = s.next_offset;
    for (;;) {
        auto o = sc.next(false);
        if (o == batch_scanner::outcome::bad) return sc.problem;
        if (o == batch_scanner::outcome::end) break;
        if (sc.header.last_offset() >= offset) {
            cut = sc.position;
            new_end = sc.header.base_offset;
            break;
        }
    }
    if (auto r = s.log->truncate(cut); !r) return r;
    if (auto r = rebuild_indexes(s, cut, false); !r) return r;
    if (auto r = s.log->sync(); !r) return r;
    if (auto r = s.write_index_files(_fs, true); !r) return r;
    s.indexes_dirty = false;
    s.size = s.assigned_size = cut;
    s.next_offset = s.assigned_next = new_end;
    s.allocated_bytes = cut;
    _active = &s;
    _dirty.erase(&s);
    // Closed segments are durable and `s` was just synced: everything below new_end is.
    _next_offset = _written_end = _durable_end = new_end;
    if (auto r = _fs.fsync_dir(_dir); !r) return r;
    return checkpoint();
}

result<void> partition_log::impl::delete_records_before(int64_t offset) {
    if (_failure) return *_failure;
    if (offset > _written_end || offset < 0) {
        return error(errc::offset_out_of_range, "delete records before " + std::to_string(offset) +
                                                    ", log end " + std::to_string(_written_end));
    }
    if (offset <= _log_start) return ok();
    int64_t before = _log_start;
    _log_start = offset;
    if (auto r = checkpoint(); !r) {
        if (r.error().is(errc::no_space)) {
            _log_start = before;  // nothing changed; the client may retry
            return r;
        }
        fail(r.error());
        return *_failure;
    }
    size_t whole = 0;
    for (auto it = _segments.begin(); std::next(it) != _segments.end(); ++it) {
        segment* s = it->second.get();
        if (s == _active || std::find(_sealing.begin(), _sealing.end(), s) != _sealing.end()) break;
        if (std::next(it)->first > offset) break;
        ++whole;
    }
    return delete_oldest_segments(whole);
}

result<void> partition_log::impl::delete_oldest_segments(size_t count) {
    if (_failure) return *_failure;
    size_t deleted = 0;
    while (deleted < count && _segments.size() > 1) {
        auto it = _segments.begin();
        segment* s = it->second.get();
        if (s == _active || std::find(_sealing.begin(), _sealing.end(), s) != _sealing.end()) break;
        int64_t next_base = std::next(it)->first;
        // Files first: recovery takes the first remaining segment's base as the log start
        // anyway, and on a full disk removing them is what makes room for the checkpoint.
        if (auto r = remove_segment_files(*s); !r) {
            fail(r.error());
            return *_failure;
        }
        _segments.erase(it);
        ++deleted;
        if (next_base > _log_start) {
            _log_start = next_base;
            if (auto r = checkpoint_progress(); !r) {
                fail(r.error());
                return *_failure;
            }
        }
    }
    if (deleted > 0) {
        if (auto r = _fs.fsync_dir(_dir); !r) {
            fail(r.error());
            return *_failure;
        }
    }
    return ok();
}

segment_info partition_log::impl::info_of(const segment& s) const {
    return segment_info{model::offset(s.base), model::offset(s.next_offset), s.size,
                        model::timestamp_ms(s.max_timestamp), s.path(lf::log_suffix)};
}

std::vector<segment_info> partition_log::impl::closed_segments() const {
    std::vector<segment_info> out;
    for (auto& [b, s] : _segments) {
        if (s.get() == _active ||
            std::find(_sealing.begin(), _sealing.end(), s.get()) != _sealing.end()) {
            continue;
        }
        out.push_back(info_of(*s));
    }
    return out;
}

segment_info partition_log::impl::active_segment() const {
    if (_active == nullptr) return {};
    return info_of(*_active);
}

result<void> partition_log::impl::replace_segment(int64_t base) {
    if (_failure) return *_failure;
    auto it = _segments.find(base);
    if (it == _segments.end() || it->second.get() == _active ||
        std::find(_sealing.begin(), _sealing.end(), it->second.get()) != _sealing.end()) {
        return error(errc::invalid_argument, "no closed segment at " + std::to_string(base));
    }
    segment& s = *it->second;
    const int64_t limit = std::next(it)->first;  // offsets must stay below the next segment
    std::string cleaned = s.path(lf::log_suffix) + std::string(lf::cleaned_suffix);
    auto f = _fs.open(cleaned, open_mode::read_only);
    if (!f) return f.error();
    auto size = (*f)->size();
    if (!size) return size.error();
    segment fresh;
    fresh.base = s.base;
    fresh.dir = _dir;
    batch_scanner sc(**f, 0, *size, max_scan_batch_bytes);
    int64_t next = s.base;
    uint64_t end = 0;
    for (;;) {
        auto o = sc.next(true);
        if (o == batch_scanner::outcome::end) break;
        if (o == batch_scanner::outcome::bad) return sc.problem;
        const auto& h = sc.header;
        if (h.base_offset < next || h.last_offset() >= limit) {
            return error(errc::invalid_argument, cleaned + ": batch at offset " +
                                                     std::to_string(h.base_offset) + " out of range");
        }
        fresh.index_batch(h, sc.position, _cfg.index_interval_bytes);
        next = h.last_offset() + 1;
        end = sc.position + h.size_bytes();
    }
    if (end < *size) {
        if (auto r = (*f)->truncate(end); !r) return r;
    }
    lru_remove(s);
    s.log.reset();
    if (auto r = _fs.rename(cleaned, s.path(lf::log_suffix)); !r) return r;
    if (auto r = _fs.fsync_dir(_dir); !r) return r;
    s.oindex = std::move(fresh.oindex);
    s.tindex = std::move(fresh.tindex);
    s.max_timestamp = fresh.max_timestamp;
    s.offset_of_max_timestamp = fresh.offset_of_max_timestamp;
    s.size = s.assigned_size = end;
    s.next_offset = s.assigned_next = next;
    s.seal_time_index();
    ++_stats.index_rebuilds;
    // A crash before these land leaves indexes that recovery finds wrong and rebuilds.
    return s.write_index_files(_fs, true);
}

// ---------------------------------------------------------------------------------------------
// Close.

void partition_log::impl::close(io_callback cb) {
    if (_closing || _closed) {
        return _r.defer([cb = std::move(cb), d = _tp.dir_name()] { cb(error(errc::closed, d)); });
    }
    _closing = true;
    notify_room();  // the owner answers what it queued; appends already held are still written
    when_idle([this, cb = std::move(cb)] {
        _closed = true;
        if (_fsync_timer) _r.cancel_timer(_fsync_timer);
        if (_checkpoint_timer) _r.cancel_timer(_checkpoint_timer);
        _fsync_timer = _checkpoint_timer = 0;
        if (_failure) return cb(*_failure);
        auto run = [&]() -> result<void> {
            segment& a = *_active;
            if (auto r = a.log->truncate(a.size); !r) return r;
            if (auto r = a.log->sync(); !r) return r;
            a.seal_time_index();
            if (auto r = a.write_index_files(_fs, true); !r) return r;
            _durable_end = _written_end;
            if (auto r = checkpoint(); !r) return r;
            auto marker = _fs.open(_dir + "/" + std::string(lf::clean_shutdown_file), open_mode::truncate);
            if (!marker) return marker.error();
            if (auto r = (*marker)->sync(); !r) return r;
            return _fs.fsync_dir(_dir);
        };
        auto r = run();
        if (!r) fail(r.error());
        _lru.clear();
        for (auto& [b, s] : _segments) {
            s->in_lru = false;
            s->log.reset();
        }
        cb(r ? ok() : result<void>(*_failure));
    });
}

}  // namespace sluice::engine
