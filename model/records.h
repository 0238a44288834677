#pragma once
// The records inside a v2 record batch: reading them (record_reader, for_each_record) and
// writing whole batches (batch_builder, make_control_batch). The record layout (zigzag varints,
// nullable key and value, headers) is described in docs/formats/record_batch.md.
//
// Reading never copies record bytes: a record_view points into the batch itself (uncompressed
// batches) or into a caller-owned scratch buffer holding the decompressed records, so a view is
// valid only while that batch / scratch buffer is alive and unchanged. Every length and varint
// is checked against the bytes present; a malformed record is an errc::bad_records error.
//
// Threading: plain values and functions; a batch_builder or record_reader belongs to whoever
// created it (one core), and separate instances may be used on separate threads.

#include <cstddef>
#include <cstdint>
#include <iterator>
#include <optional>
#include <span>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "base/result.h"
#include "model/compression.h"
#include "model/errc.h"
#include "model/record_batch.h"

namespace sluice::model {

using bytes_view = std::span<const std::byte>;
// A key or value: std::nullopt is Kafka's null (length -1), distinct from an empty value.
using nullable_bytes = std::optional<bytes_view>;

inline bytes_view bytes_of(std::string_view s) {
    return {reinterpret_cast<const std::byte*>(s.data()), s.size()};
}
inline std::string_view string_of(bytes_view b) {
    return {reinterpret_cast<const char*>(b.data()), b.size()};
}

struct record_header {
    bytes_view key;  // never null on the wire
    nullable_bytes value;
};

// Forward iteration over the headers of one record, over bytes that record_reader has already
// checked (so advancing cannot fail). Produced by record_reader; not built by hand.
class header_iterator {
  public:
    using iterator_category = std::forward_iterator_tag;
    using value_type = record_header;
    using difference_type = std::ptrdiff_t;
    using pointer = const record_header*;
    using reference = const record_header&;

    header_iterator() = default;
    header_iterator(const std::byte* p, const std::byte* end, int32_t count);
    reference operator*() const { return _cur; }
    pointer operator->() const { return &_cur; }
    header_iterator& operator++() {
        advance();
        return *this;
    }
    header_iterator operator++(int) {
        auto old = *this;
        advance();
        return old;
    }
    bool operator==(const header_iterator& o) const { return _left == o._left; }

  private:
    void advance();
    const std::byte* _p = nullptr;
    const std::byte* _end = nullptr;
    int32_t _left = 0;  // headers not yet consumed, including the current one
    record_header _cur;
};

class header_range {
  public:
    header_range() = default;
    header_range(bytes_view encoded, int32_t count) : _bytes(encoded), _count(count) {}
    header_iterator begin() const { return {_bytes.data(), _bytes.data() + _bytes.size(), _count}; }
    header_iterator end() const { return {}; }
    int32_t size() const { return _count; }
    bool empty() const { return _count == 0; }
    bytes_view encoded() const { return _bytes; }  // the header entries, without the count

  private:
    bytes_view _bytes;
    int32_t _count = 0;
};

// One record, as views into the batch (or scratch) bytes.
struct record_view {
    int8_t attributes = 0;  // unused by Kafka so far; kept as read
    int64_t timestamp_delta = 0;
    int32_t offset_delta = 0;
    nullable_bytes key;
    nullable_bytes value;
    header_range headers;
    bytes_view encoded;  // the whole record including its length prefix

    int64_t offset(const batch_header& h) const { return h.base_offset + offset_delta; }
    // The record's timestamp: the batch's max timestamp under LogAppendTime, else base + delta.
    int64_t timestamp(const batch_header& h) const {
        return h.log_append_time() ? h.max_timestamp : h.base_timestamp + timestamp_delta;
    }
};

// Reads the records of a batch one by one. `records` is the record area (the bytes after the
// 61-byte header, decompressed if the batch is compressed). Checks: each record's length, varints
// and field lengths lie within it; offset deltas increase strictly and stay within
// [0, last_offset_delta]; exactly `record_count` records fill the area with no bytes left over.
class record_reader {
  public:
    record_reader(bytes_view records, int32_t record_count, int32_t last_offset_delta)
        : _p(records.data()),
          _end(records.data() + records.size()),
          _left(record_count),
          _last_offset_delta(last_offset_delta) {}

    // true: `out` holds the next record. false: all records were read and nothing is left over.
    // An error (errc::bad_records) is sticky: later calls return it again.
    result<bool> next(record_view& out);

  private:
    result<bool> fail(const char* what);

    const std::byte* _p;
    const std::byte* _end;
    int32_t _left;
    int32_t _last_offset_delta;
    int32_t _prev_offset_delta = -1;
    const char* _failed = nullptr;
};

// The record area of `batch` (whose header is `h`): a view in place for an uncompressed batch;
// for a compressed one the payload is decompressed into `scratch` (cleared first, its capacity
// reused) with at most `max_decompressed_bytes` of output, and the view points there.
[[nodiscard]] result<bytes_view> record_area(
    bytes_view batch, const batch_header& h, std::vector<std::byte>& scratch,
    size_t max_decompressed_bytes = default_max_decompressed_bytes);

// Calls `fn(const record_view&)` for each record of the batch. `fn` may return bool; false stops
// the walk early (with success). Errors: those of record_area and record_reader.
template <class Fn>
[[nodiscard]] result<void> for_each_record(
    bytes_view batch, const batch_header& h, std::vector<std::byte>& scratch, Fn&& fn,
    size_t max_decompressed_bytes = default_max_decompressed_bytes) {
    auto area = record_area(batch, h, scratch, max_decompressed_bytes);
    if (!area) return area.error();
    record_reader reader(*area, h.record_count, h.last_offset_delta);
    record_view rec;
    while (true) {
        auto more = reader.next(rec);
        if (!more) return more.error();
        if (!*more) return ok();
        const record_view& cref = rec;
        if constexpr (std::is_same_v<std::invoke_result_t<Fn&, const record_view&>, bool>) {
            if (!fn(cref)) return ok();
        } else {
            fn(cref);
        }
    }
}

// Walks every record of a validated batch without looking at them: the deep check that
// validate() leaves out for compressed batches.
[[nodiscard]] result<void> validate_records(
    bytes_view batch, const batch_header& h, std::vector<std::byte>& scratch,
    size_t max_decompressed_bytes = default_max_decompressed_bytes);

// Everything in a batch header that is not derived from its records.
struct batch_options {
    int64_t base_offset = 0;
    int32_t partition_leader_epoch = -1;
    int64_t producer_id = -1;
    int16_t producer_epoch = -1;
    int32_t base_sequence = -1;
    bool transactional = false;
    bool control = false;
    compression codec = compression::none;
    int compression_level = 0;  // 0: the codec's default (see compress())
    // Set: timestamp type LogAppendTime, and this is the batch's max timestamp.
    std::optional<int64_t> log_append_time_ms;
    // Set (compaction): the delete-horizon attribute bit, and this becomes the base timestamp
    // that record timestamp deltas are relative to.
    std::optional<int64_t> delete_horizon_ms;
    // Set (compaction): the last offset delta to write even if the retained records end earlier,
    // so the batch still covers its original offset range. Must be >= the last record's delta.
    std::optional<int32_t> last_offset_delta;
};

// Builds one v2 batch. Records are encoded as they are added into a buffer the builder owns and
// reuses across reset(), so a long-lived builder (producer, load generator, compactor) allocates
// only while its buffer grows. build() writes header + (compressed) records with correct lengths,
// offset deltas, timestamps, record count and CRC-32C. Not thread-safe; owned by one core.
class batch_builder {
  public:
    explicit batch_builder(const batch_options& opts = {}, size_t expected_records_bytes = 0);

    // Starts a new batch with `opts`, keeping the buffer's capacity.
    void reset(const batch_options& opts);

    // Appends a record whose offset delta is one past the previous record's (0 for the first).
    void add(nullable_bytes key, nullable_bytes value, int64_t timestamp_ms,
             std::span<const record_header> headers = {});
    // Appends a record at an explicit offset delta, which must be larger than the previous one
    // (compaction keeps each retained record's original offset this way).
    void add_with_offset_delta(int32_t offset_delta, nullable_bytes key, nullable_bytes value,
                               int64_t timestamp_ms, std::span<const record_header> headers = {});

    int32_t record_count() const { return _count; }
    bool empty() const { return _count == 0; }
    // Bytes of the encoded records before compression.
    size_t records_bytes() const { return _records.size(); }
    // Size of the batch if built uncompressed; an upper bound for deciding when a batch is full.
    size_t uncompressed_batch_bytes() const { return batch_format::header_size + _records.size(); }

    // Appends the finished batch to `out`. The builder keeps its records (build twice, get the
    // same bytes) until reset().
    [[nodiscard]] result<void> build_into(std::vector<std::byte>& out) const;
    [[nodiscard]] result<std::vector<std::byte>> build() const;

  private:
    void write_record(int32_t offset_delta, nullable_bytes key, nullable_bytes value,
                      int64_t timestamp_ms, std::span<const record_header> headers);

    batch_options _opts;
    std::vector<std::byte> _records;
    int32_t _count = 0;
    int32_t _last_delta = -1;
    bool _have_base_timestamp = false;
    int64_t _base_timestamp = -1;
    int64_t _max_timestamp = -1;
};

// Transaction markers: the single record of a control batch. Its key is (version int16,
// type int16), its value (version int16, coordinator epoch int32); see the format doc.
enum class control_type : int16_t { abort = 0, commit = 1 };

struct control_marker {
    control_type type = control_type::abort;  // other values may appear; compare, don't switch
    int16_t key_version = 0;
    int16_t value_version = 0;
    int32_t coordinator_epoch = 0;
};

// A transactional control batch holding one marker for the producer's open transaction.
std::vector<std::byte> make_control_batch(int64_t producer_id, int16_t producer_epoch,
                                          control_type type, int32_t coordinator_epoch,
                                          int64_t timestamp_ms, int64_t base_offset = 0);

// Reads the marker of a record from a control batch; errc::bad_records when key or value are
// missing or too short.
[[nodiscard]] result<control_marker> parse_control_record(const record_view& rec);

}  // namespace sluice::model
