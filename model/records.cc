#include "model/records.h"

#include <algorithm>
#include <climits>
#include <cstring>
#include <string>

#include "base/assert.h"
#include "base/bytes.h"
#include "base/crc32c.h"

namespace sluice::model {

namespace bf = batch_format;

namespace {

const uint8_t* u8(const std::byte* p) {
    return reinterpret_cast<const uint8_t*>(p);
}
uint8_t* u8(std::byte* p) {
    return reinterpret_cast<uint8_t*>(p);
}
const std::byte* as_byte(const uint8_t* p) {
    return reinterpret_cast<const std::byte*>(p);
}

// Reads a varint length that may be -1 (null) into `out`; false when it does not parse or runs
// past `end`.
bool read_nullable(const uint8_t*& p, const uint8_t* end, nullable_bytes& out) {
    auto n = bytes::read_varint(p, end);
    if (!n || *n < -1 || *n > end - p) return false;
    if (*n == -1) {
        out.reset();
    } else {
        out = bytes_view(as_byte(p), static_cast<size_t>(*n));
        p += *n;
    }
    return true;
}

size_t nullable_size(const nullable_bytes& b) {
    return b ? bytes::varlong_size(static_cast<int64_t>(b->size())) + b->size() : 1;
}

uint8_t* write_nullable(uint8_t* p, const nullable_bytes& b) {
    if (!b) return p + bytes::write_varlong(p, -1);
    p += bytes::write_varlong(p, static_cast<int64_t>(b->size()));
    if (!b->empty()) std::memcpy(p, b->data(), b->size());
    return p + b->size();
}

}  // namespace

// ---- reading -------------------------------------------------------------------------------

header_iterator::header_iterator(const std::byte* p, const std::byte* end, int32_t count)
    : _p(p), _end(end), _left(count < 0 ? 0 : count) {
    if (_left > 0) {
        ++_left;  // advance() consumes one for the header it parses
        advance();
    }
}

void header_iterator::advance() {
    if (_left <= 1) {
        _left = 0;
        return;
    }
    --_left;
    const uint8_t* p = u8(_p);
    const uint8_t* end = u8(_end);
    auto kl = bytes::read_varint(p, end);
    // record_reader checked these bytes; a failure here means the range was built by hand
    // over unchecked bytes, and iteration simply ends.
    if (!kl || *kl < 0 || *kl > end - p) {
        _left = 0;
        return;
    }
    _cur.key = bytes_view(as_byte(p), static_cast<size_t>(*kl));
    p += *kl;
    if (!read_nullable(p, end, _cur.value)) {
        _left = 0;
        return;
    }
    _p = as_byte(p);
}

result<bool> record_reader::fail(const char* what) {
    _failed = what;
    return error(errc::bad_records, what);
}

result<bool> record_reader::next(record_view& out) {
    if (_failed) return error(errc::bad_records, _failed);
    if (_left <= 0) {
        if (_left < 0) return fail("negative record count");
        if (_p != _end) return fail("bytes left after the last record");
        return false;
    }
    const uint8_t* p = u8(_p);
    const uint8_t* end = u8(_end);
    const uint8_t* start = p;
    auto len = bytes::read_varint(p, end);
    if (!len) return fail("bad record length varint (or fewer records than counted)");
    if (*len <= 0 || *len > end - p) return fail("record length outside the batch");
    const uint8_t* rec_end = p + *len;
    out.attributes = static_cast<int8_t>(*p++);
    auto ts = bytes::read_varlong(p, rec_end);
    if (!ts) return fail("bad timestamp delta");
    auto od = bytes::read_varint(p, rec_end);
    if (!od) return fail("bad offset delta");
    if (*od <= _prev_offset_delta || *od > _last_offset_delta) {
        return fail("offset delta not increasing or past the last offset delta");
    }
    if (!read_nullable(p, rec_end, out.key)) return fail("bad key length");
    if (!read_nullable(p, rec_end, out.value)) return fail("bad value length");
    auto count = bytes::read_varint(p, rec_end);
    if (!count || *count < 0) return fail("bad header count");
    const uint8_t* headers_start = p;
    // Each header takes at least two bytes, so this loop is bounded by the record's length.
    for (int32_t i = 0; i < *count; ++i) {
        auto kl = bytes::read_varint(p, rec_end);
        if (!kl || *kl < 0 || *kl > rec_end - p) return fail("bad header key length");
        p += *kl;
        nullable_bytes ignored;
        if (!read_nullable(p, rec_end, ignored)) return fail("bad header value length");
    }
    if (p != rec_end) return fail("record length disagrees with its fields");
    out.timestamp_delta = *ts;
    out.offset_delta = *od;
    out.headers = header_range(
        bytes_view(as_byte(headers_start), static_cast<size_t>(p - headers_start)), *count);
    out.encoded = bytes_view(as_byte(start), static_cast<size_t>(rec_end - start));
    _p = as_byte(rec_end);
    _prev_offset_delta = *od;
    --_left;
    return true;
}

result<bytes_view> record_area(bytes_view batch, const batch_header& h,
                               std::vector<std::byte>& scratch, size_t max_decompressed_bytes) {
    if (h.batch_length < static_cast<int32_t>(bf::header_size - bf::log_overhead) ||
        batch.size() < h.size_bytes()) {
        return error(errc::truncated, "record area of a batch not fully present");
    }
    bytes_view payload = batch.subspan(bf::header_size, h.size_bytes() - bf::header_size);
    compression codec = h.codec();
    if (codec == compression::none) return payload;
    if (static_cast<int>(codec) > static_cast<int>(compression::zstd)) {
        return errc::unknown_compression;
    }
    scratch.clear();
    auto r = decompress(codec, payload, scratch, max_decompressed_bytes);
    if (!r) return r.error();
    return bytes_view(scratch);
}

result<void> validate_records(bytes_view batch, const batch_header& h,
                              std::vector<std::byte>& scratch, size_t max_decompressed_bytes) {
    return for_each_record(
        batch, h, scratch, [](const record_view&) {}, max_decompressed_bytes);
}

// ---- building ------------------------------------------------------------------------------

batch_builder::batch_builder(const batch_options& opts, size_t expected_records_bytes) {
    _records.reserve(expected_records_bytes);
    reset(opts);
}

void batch_builder::reset(const batch_options& opts) {
    _opts = opts;
    _records.clear();
    _count = 0;
    _last_delta = -1;
    _have_base_timestamp = opts.delete_horizon_ms.has_value();
    _base_timestamp = opts.delete_horizon_ms.value_or(-1);
    _max_timestamp = -1;
}

void batch_builder::add(nullable_bytes key, nullable_bytes value, int64_t timestamp_ms,
                        std::span<const record_header> headers) {
    SLUICE_ASSERT(_last_delta < INT32_MAX, "offset delta overflow");
    write_record(_last_delta + 1, key, value, timestamp_ms, headers);
}

void batch_builder::add_with_offset_delta(int32_t offset_delta, nullable_bytes key,
                                          nullable_bytes value, int64_t timestamp_ms,
                                          std::span<const record_header> headers) {
    SLUICE_ASSERT(offset_delta > _last_delta, "offset deltas must increase");
    write_record(offset_delta, key, value, timestamp_ms, headers);
}

void batch_builder::write_record(int32_t offset_delta, nullable_bytes key, nullable_bytes value,
                                 int64_t timestamp_ms, std::span<const record_header> headers) {
    SLUICE_ASSERT(_count < INT32_MAX, "too many records in one batch");
    if (!_have_base_timestamp) {
        _have_base_timestamp = true;
        _base_timestamp = timestamp_ms;
    }
    if (_count == 0 || timestamp_ms > _max_timestamp) _max_timestamp = timestamp_ms;
    // Deltas wrap like Kafka's long arithmetic; only absurd timestamps get there.
    int64_t ts_delta = static_cast<int64_t>(static_cast<uint64_t>(timestamp_ms) -
                                            static_cast<uint64_t>(_base_timestamp));
    auto header_count = static_cast<int64_t>(headers.size());
    size_t body = 1 + bytes::varlong_size(ts_delta) + bytes::varlong_size(offset_delta) +
                  nullable_size(key) + nullable_size(value) + bytes::varlong_size(header_count);
    for (const auto& h : headers) body += nullable_size(h.key) + nullable_size(h.value);
    SLUICE_ASSERT(body <= INT32_MAX, "record larger than 2 GiB");
    size_t total = bytes::varlong_size(static_cast<int64_t>(body)) + body;

    size_t at = _records.size();
    _records.resize(at + total);
    uint8_t* p = u8(_records.data() + at);
    p += bytes::write_varlong(p, static_cast<int64_t>(body));
    *p++ = 0;  // record attributes
    p += bytes::write_varlong(p, ts_delta);
    p += bytes::write_varlong(p, offset_delta);
    p = write_nullable(p, key);
    p = write_nullable(p, value);
    p += bytes::write_varlong(p, header_count);
    for (const auto& h : headers) {
        p = write_nullable(p, h.key);
        p = write_nullable(p, h.value);
    }
    SLUICE_ASSERT(p == u8(_records.data() + _records.size()), "record size miscomputed");
    _last_delta = offset_delta;
    ++_count;
}

result<void> batch_builder::build_into(std::vector<std::byte>& out) const {
    size_t start = out.size();
    if (_opts.codec == compression::none) out.reserve(start + bf::header_size + _records.size());
    out.resize(start + bf::header_size);
    auto r = compress(_opts.codec, _records, out, _opts.compression_level);
    if (!r) {
        out.resize(start);
        return r;
    }
    size_t batch_length = out.size() - start - bf::log_overhead;
    if (batch_length > INT32_MAX) {
        out.resize(start);
        return error(errc::too_large, "batch over 2 GiB");
    }
    int32_t last_delta = _count > 0 ? _last_delta : 0;
    if (_opts.last_offset_delta) {
        SLUICE_ASSERT(*_opts.last_offset_delta >= last_delta, "last offset delta below records");
        last_delta = *_opts.last_offset_delta;
    }
    int16_t attributes = static_cast<int16_t>(_opts.codec);
    if (_opts.log_append_time_ms) attributes |= bf::timestamp_type_bit;
    if (_opts.transactional) attributes |= bf::transactional_bit;
    if (_opts.control) attributes |= bf::control_bit;
    if (_opts.delete_horizon_ms) attributes |= bf::delete_horizon_bit;
    int64_t max_ts = _opts.log_append_time_ms.value_or(_count > 0 ? _max_timestamp : -1);

    uint8_t* p = u8(out.data() + start);
    bytes::store_be64(p + bf::base_offset_pos, static_cast<uint64_t>(_opts.base_offset));
    bytes::store_be32(p + bf::batch_length_pos, static_cast<uint32_t>(batch_length));
    bytes::store_be32(p + bf::partition_leader_epoch_pos,
                      static_cast<uint32_t>(_opts.partition_leader_epoch));
    p[bf::magic_pos] = static_cast<uint8_t>(bf::magic_v2);
    bytes::store_be16(p + bf::attributes_pos, static_cast<uint16_t>(attributes));
    bytes::store_be32(p + bf::last_offset_delta_pos, static_cast<uint32_t>(last_delta));
    bytes::store_be64(p + bf::base_timestamp_pos, static_cast<uint64_t>(_base_timestamp));
    bytes::store_be64(p + bf::max_timestamp_pos, static_cast<uint64_t>(max_ts));
    bytes::store_be64(p + bf::producer_id_pos, static_cast<uint64_t>(_opts.producer_id));
    bytes::store_be16(p + bf::producer_epoch_pos, static_cast<uint16_t>(_opts.producer_epoch));
    bytes::store_be32(p + bf::base_sequence_pos, static_cast<uint32_t>(_opts.base_sequence));
    bytes::store_be32(p + bf::record_count_pos, static_cast<uint32_t>(_count));
    bytes::store_be32(p + bf::crc_pos, crc32c::value(p + bf::attributes_pos,
                                                     out.size() - start - bf::attributes_pos));
    return ok();
}

result<std::vector<std::byte>> batch_builder::build() const {
    std::vector<std::byte> out;
    auto r = build_into(out);
    if (!r) return r.error();
    return out;
}

// ---- control batches -----------------------------------------------------------------------

std::vector<std::byte> make_control_batch(int64_t producer_id, int16_t producer_epoch,
                                          control_type type, int32_t coordinator_epoch,
                                          int64_t timestamp_ms, int64_t base_offset) {
    batch_options o;
    o.base_offset = base_offset;
    o.producer_id = producer_id;
    o.producer_epoch = producer_epoch;
    o.transactional = true;
    o.control = true;
    uint8_t key[4];
    bytes::store_be16(key, 0);  // key version
    bytes::store_be16(key + 2, static_cast<uint16_t>(type));
    uint8_t value[6];
    bytes::store_be16(value, 0);  // value version
    bytes::store_be32(value + 2, static_cast<uint32_t>(coordinator_epoch));
    batch_builder b(o, 32);
    b.add(bytes_view(as_byte(key), sizeof(key)), bytes_view(as_byte(value), sizeof(value)),
          timestamp_ms);
    auto built = b.build();
    SLUICE_ASSERT(built.has_value(), "uncompressed control batch must build");
    return std::move(built).value();
}

result<control_marker> parse_control_record(const record_view& rec) {
    if (!rec.key || rec.key->size() < 4) return error(errc::bad_records, "control key too short");
    control_marker m;
    m.key_version = static_cast<int16_t>(bytes::load_be16(rec.key->data()));
    m.type = static_cast<control_type>(static_cast<int16_t>(bytes::load_be16(rec.key->data() + 2)));
    if (m.key_version < 0) return error(errc::bad_records, "negative control key version");
    bool marker = m.type == control_type::abort || m.type == control_type::commit;
    if (!marker) {
        m.coordinator_epoch = -1;  // other control records (e.g. leader change) carry no epoch
        return m;
    }
    if (!rec.value || rec.value->size() < 6) {
        return error(errc::bad_records, "transaction marker value too short");
    }
    m.value_version = static_cast<int16_t>(bytes::load_be16(rec.value->data()));
    m.coordinator_epoch = static_cast<int32_t>(bytes::load_be32(rec.value->data() + 2));
    return m;
}

}  // namespace sluice::model
