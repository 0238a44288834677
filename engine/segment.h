#pragma once
// One segment of a partition log and a sequential reader of its batches. Private to the engine;
// owned by a partition_log and touched only on its reactor thread.

#include <cstdint>
#include <list>
#include <memory>
#include <string>
#include <vector>

#include "base/result.h"
#include "engine/file.h"
#include "engine/index.h"
#include "model/record_batch.h"

namespace sluice::engine {

// Reads batches one after another from a file through a window buffer (synchronous pread:
// recovery, index scans, read-path lookups). `limit` is the first byte not to look at.
class batch_scanner {
public:
    enum class outcome {
        batch,  // `header` and `position` describe the next batch
        end,    // clean end of data: `limit` reached, or a zero-filled (preallocated) tail
        bad,    // a torn or corrupt batch at `position`; `problem` says what
    };

    batch_scanner(file& f, uint64_t start, uint64_t limit, size_t max_batch_bytes)
        : _file(f), _pos(start), _limit(limit), _max_batch_bytes(max_batch_bytes) {}

    // Moves to the next batch. With `validate`, the whole batch is read and checked
    // (CRC included); otherwise only its header is read.
    outcome next(bool validate);
    // Continues at `pos`, which must be the start of a batch (from the offset index).
    void seek(uint64_t pos) { _pos = pos; }
    // Where the next batch starts.
    uint64_t next_position() const { return _pos; }
    // Valid after outcome::batch: the batch's bytes (only when validated), else empty.
    std::span<const std::byte> batch_bytes() const { return _batch; }

    model::batch_header header;
    uint64_t position = 0;  // of the batch just returned (or of the bad one / the end)
    error problem;

private:
    // Makes [pos, pos+n) available in the window; returns how many of those bytes exist.
    // Reads at least `window` bytes when it has to read.
    result<size_t> fill(uint64_t pos, size_t n, size_t window);
    std::span<const std::byte> window(uint64_t pos, size_t n) const {
        return {_buf.data() + (pos - _buf_pos), n};
    }

    file& _file;
    uint64_t _pos;
    uint64_t _limit;
    size_t _max_batch_bytes;
    std::vector<std::byte> _buf;
    uint64_t _buf_pos = 0;
    std::span<const std::byte> _batch;
};

struct segment {
    int64_t base = 0;
    std::string dir;

    // Written (complete) state: what readers may see.
    int64_t next_offset = 0;   // one past the last offset of the last written batch
    uint64_t size = 0;         // bytes of written batches
    // Assigned state (active segment only): includes appends not yet written.
    int64_t assigned_next = 0;
    uint64_t assigned_size = 0;

    offset_index oindex;
    time_index tindex;
    uint64_t bytes_since_index = 0;
    int64_t max_timestamp = -1;
    int64_t offset_of_max_timestamp = -1;
    bool indexes_dirty = false;  // in memory differs from the index files

    std::unique_ptr<file> log;  // null while evicted from the fd LRU (closed segments)
    bool in_lru = false;
    std::list<segment*>::iterator lru_pos;
    uint64_t allocated_bytes = 0;  // file size reached by preallocation (active only)
    int64_t first_append_ms = -1;  // clock time of the first append (segment.ms)

    std::string path(std::string_view suffix) const;
    // Applies Kafka's sparse indexing rule for a batch appended at `position`.
    void index_batch(const model::batch_header& h, uint64_t position, uint32_t interval_bytes);
    // Resets indexes and counters (before a rebuild).
    void clear_indexes();
    // Adds the final time index entry of a closed segment.
    void seal_time_index();
    result<void> write_index_files(file_system& fs, bool fsync) const;
};

}  // namespace sluice::engine
