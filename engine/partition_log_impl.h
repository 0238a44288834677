#pragma once
// Private: the state behind partition_log. Split from partition_log.cc so that recovery
// (recovery.cc) and the append/fsync machinery (partition_log.cc) stay readable separately.

#include <deque>
#include <map>
#include <memory>
#include <set>

#include "engine/checkpoint.h"
#include "engine/partition_log.h"
#include "engine/segment.h"
#include "runtime/clock.h"
#include "runtime/reactor.h"

namespace sluice::engine {

// Upper bound on a batch read back from disk (recovery and scans). Batches on disk may have
// been accepted under a larger max.message.bytes than the current one, so this is generous;
// it only bounds the scan buffer against a corrupt length field.
inline constexpr size_t max_scan_batch_bytes = 64u << 20;

class partition_log::impl {
public:
    impl(runtime::reactor& r, file_system& fs, std::string dir, model::tp tp, log_config cfg,
         runtime::clock& clock);
    ~impl();

    // --- recovery (recovery.cc) ---
    result<void> load();

    // --- public operations (partition_log.cc) ---
    void append(std::span<std::byte> batches, append_options opts, append_callback cb);
    bool has_room(size_t bytes) const;
    void when_room(size_t bytes, std::function<void()> fn);
    std::pair<uint64_t, int64_t> skip_whole_batches(segment& s, file& f, uint64_t from,
                                                    size_t budget, int64_t upper);
    result<read_result> read(model::offset start, size_t max_bytes, model::offset upper_exclusive,
                             bool min_one_batch);
    result<std::optional<timestamp_lookup>> offset_for_timestamp(int64_t ts);
    void truncate_to(int64_t offset, io_callback cb);
    result<void> delete_records_before(int64_t offset);
    void flush(io_callback cb);
    void close(io_callback cb);
    result<void> status() const;
    std::vector<segment_info> closed_segments() const;
    segment_info active_segment() const;
    result<void> delete_oldest_segments(size_t count);
    result<void> replace_segment(int64_t base);
    result<void> roll();

    // A chunk: appends assigned to one segment and written by one write_at.
    struct chunk {
        segment* seg = nullptr;
        uint64_t pos = 0;
        std::vector<std::byte> bytes;
        int64_t end_offset = 0;  // one past the last offset in it
        uint64_t records = 0;
        bool issued = false;
        bool done = false;
    };
    // An append that found no room: its own copy of the bytes (validated when it was made,
    // with what validation counted), admitted in order later.
    struct held_append {
        std::vector<std::byte> bytes;
        append_options opts;
        append_callback cb;
        int64_t offsets = 0;
        uint64_t records = 0;
        size_t batches = 0;
    };
    struct waiter {
        int64_t end_offset;
        append_result res;
        append_callback cb;
    };

    // --- recovery helpers (recovery.cc) ---
    result<void> recover_segment(segment& s, bool last, bool clean, int64_t rp, int64_t next_base,
                                 bool force_full);
    bool load_indexes(segment& s, uint64_t file_size);
    result<void> finish_open(bool clean, const partition_checkpoint& cp);
    result<void> rebuild_indexes(segment& s, uint64_t limit, bool validate);

    // --- append machinery ---
    std::optional<error> refusal() const;
    void defer_error(append_callback cb, error e);
    bool needs_roll(uint64_t bytes, int64_t offsets) const;
    bool buffer_fits(size_t bytes) const;
    void admit(std::span<std::byte> data, const append_options& opts, append_callback cb,
               int64_t offsets, uint64_t records, size_t batches);
    void admit_held();
    void notify_room();
    result<void> roll_active();
    chunk& open_chunk();
    // Extends the segment's preallocation (in preallocate_step_bytes steps) to cover `end`.
    result<void> ensure_allocated(segment& s, uint64_t end);
    void refuse(append_callback cb, const error& e);
    void space_ok();
    void schedule_writes();
    void issue_writes();
    void on_write_done(const std::shared_ptr<chunk>& c, result<void> r);
    void after_progress();
    void complete_waiters();
    void maybe_finalize_sealing();
    void maybe_fsync();
    void start_fsync();
    void arm_fsync_timer(int64_t delay_ms);
    void arm_checkpoint_timer();
    void fail(const error& e);
    bool idle() const;
    void when_idle(std::function<void()> fn);
    void run_idle_tasks();
    bool durability_acks() const {
        return _cfg.fsync == fsync_policy::always || _cfg.fsync == fsync_policy::batch;
    }

    // --- segments ---
    result<file*> file_for(segment& s);
    void lru_insert(segment& s);
    void lru_remove(segment& s);
    result<void> remove_segment_files(segment& s);
    result<std::unique_ptr<segment>> create_segment(int64_t base);
    result<void> checkpoint();
    result<void> checkpoint_progress();
    result<void> do_truncate(int64_t offset);
    segment* writable_segment() const { return _sealing.empty() ? _active : _sealing.front(); }
    segment_info info_of(const segment& s) const;

    runtime::reactor& _r;
    file_system& _fs;
    std::string _dir;
    model::tp _tp;
    log_config _cfg;
    runtime::clock& _clock;
    std::shared_ptr<int> _alive = std::make_shared<int>(0);

    std::map<int64_t, std::unique_ptr<segment>> _segments;
    segment* _active = nullptr;
    std::deque<segment*> _sealing;  // rolled, waiting for their writes and fdatasync
    bool _finalizing = false;
    std::list<segment*> _lru;

    int64_t _log_start = 0;
    int64_t _next_offset = 0;     // next offset to assign
    int64_t _written_end = 0;     // log end offset: all below written
    int64_t _durable_end = 0;     // all below fdatasynced
    int64_t _checkpointed_rp = -1;

    std::deque<std::shared_ptr<chunk>> _chunks;
    std::vector<std::vector<std::byte>> _free_buffers;
    uint64_t _buffered_bytes = 0;
    bool _write_scheduled = false;
    uint32_t _inflight_writes = 0;
    std::deque<waiter> _waiters;
    std::deque<held_append> _held;
    size_t _room_bytes = 0;
    std::function<void()> _room_waiter;
    std::deque<std::pair<int64_t, io_callback>> _flush_waiters;

    std::set<segment*> _dirty;  // segments with written but not fdatasynced bytes
    bool _fsync_inflight = false;
    int64_t _unflushed_messages = 0;
    runtime::timer_id _fsync_timer = 0;
    runtime::timer_id _checkpoint_timer = 0;

    std::vector<std::function<void()>> _idle_tasks;
    bool _truncating = false;
    bool _closing = false;
    bool _closed = false;
    bool _out_of_space = false;  // the last append was refused for want of disk space
    std::optional<error> _failure;
    std::function<void(const error&)> _failure_handler;
    log_stats _stats;
};

// Walks the records of an uncompressed batch for the first one with timestamp >= ts.
std::optional<timestamp_lookup> find_record_at_or_after(std::span<const std::byte> batch,
                                                        const model::batch_header& h, int64_t ts);

}  // namespace sluice::engine
