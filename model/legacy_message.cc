#include "model/legacy_message.h"

#include <zlib.h>

#include <optional>

#include "base/bytes.h"
#include "model/records.h"

namespace sluice::model::legacy {

namespace fmt = message_format;

namespace {

// One legacy message, as views into the bytes it was parsed from.
struct message {
    int8_t magic = 0;
    int8_t attributes = 0;
    int64_t timestamp = -1;  // magic 1 only
    nullable_bytes key;
    nullable_bytes value;

    compression codec() const { return static_cast<compression>(attributes & fmt::codec_mask); }
    bool log_append_time() const { return magic == 1 && (attributes & fmt::timestamp_type_bit); }
};

uint32_t crc32_of(bytes_view bytes) {
    return static_cast<uint32_t>(
        ::crc32(0, reinterpret_cast<const Bytef*>(bytes.data()), static_cast<uInt>(bytes.size())));
}

// Reads an int32-length-prefixed nullable byte string at `at`, within [0, end).
std::optional<nullable_bytes> read_bytes(bytes_view in, size_t& at, size_t end) {
    if (end - at < 4) return std::nullopt;
    auto len = static_cast<int32_t>(bytes::load_be32(in.data() + at));
    at += 4;
    if (len == -1) return nullable_bytes{};
    if (len < 0 || static_cast<size_t>(len) > end - at) return std::nullopt;
    nullable_bytes out = in.subspan(at, static_cast<size_t>(len));
    at += static_cast<size_t>(len);
    return out;
}

// Parses the message at the start of `in`; returns the bytes it spans.
result<size_t> parse_message(bytes_view in, message& m) {
    if (in.size() < fmt::log_overhead) return errc::truncated;
    auto size = static_cast<int32_t>(bytes::load_be32(in.data() + fmt::size_pos));
    if (size < static_cast<int32_t>(fmt::min_size_v0)) return errc::bad_length;
    size_t end = fmt::log_overhead + static_cast<size_t>(size);
    if (end > in.size()) return errc::truncated;
    m.magic = static_cast<int8_t>(in[fmt::magic_pos]);
    if (m.magic != 0 && m.magic != 1) return errc::bad_magic;
    if (m.magic == 1 && static_cast<size_t>(size) < fmt::min_size_v1) return errc::bad_length;
    uint32_t stored = bytes::load_be32(in.data() + fmt::crc_pos);
    if (crc32_of(in.subspan(fmt::magic_pos, end - fmt::magic_pos)) != stored) {
        return errc::crc_mismatch;
    }
    m.attributes = static_cast<int8_t>(in[fmt::attributes_pos]);
    size_t at = fmt::timestamp_pos;
    m.timestamp = -1;
    if (m.magic == 1) {
        m.timestamp = static_cast<int64_t>(bytes::load_be64(in.data() + at));
        at += 8;
    }
    auto key = read_bytes(in, at, end);
    if (!key) return errc::bad_records;
    auto value = read_bytes(in, at, end);
    if (!value || at != end) return errc::bad_records;
    m.key = *key;
    m.value = *value;
    return end;
}

// Calls fn(message) for each message of a set; the set must hold whole messages only.
template <class Fn>
result<void> for_each_message(bytes_view set, Fn&& fn) {
    while (!set.empty()) {
        message m;
        auto used = parse_message(set, m);
        if (!used) return used.error();
        auto r = fn(m);
        if (!r) return r.error();
        set = set.subspan(*used);
    }
    return ok();
}

// The codec of the first compressed message, which the v2 batch keeps.
result<compression> batch_codec(bytes_view set) {
    compression codec = compression::none;
    auto r = for_each_message(set, [&](const message& m) -> result<void> {
        if (m.codec() > compression::lz4) return errc::unknown_compression;
        if (codec == compression::none) codec = m.codec();
        return ok();
    });
    if (!r) return r.error();
    return codec;
}

int64_t timestamp_for(const message& m, int64_t now_ms) {
    return m.magic == 1 && m.timestamp >= 0 ? m.timestamp : now_ms;
}

void put_bytes(std::vector<std::byte>& out, const nullable_bytes& b) {
    size_t at = out.size();
    out.resize(at + 4);
    if (!b) {
        bytes::store_be32(out.data() + at, static_cast<uint32_t>(-1));
        return;
    }
    bytes::store_be32(out.data() + at, static_cast<uint32_t>(b->size()));
    out.insert(out.end(), b->begin(), b->end());
}

// Appends one uncompressed message.
void put_message(std::vector<std::byte>& out, int8_t magic, bool log_append_time, int64_t offset,
                 int64_t timestamp, const nullable_bytes& key, const nullable_bytes& value) {
    size_t start = out.size();
    out.resize(start + fmt::timestamp_pos + (magic == 1 ? 8 : 0));
    std::byte* p = out.data() + start;
    bytes::store_be64(p + fmt::offset_pos, static_cast<uint64_t>(offset));
    p[fmt::magic_pos] = static_cast<std::byte>(magic);
    p[fmt::attributes_pos] =
        static_cast<std::byte>(magic == 1 && log_append_time ? fmt::timestamp_type_bit : 0);
    if (magic == 1) bytes::store_be64(p + fmt::timestamp_pos, static_cast<uint64_t>(timestamp));
    put_bytes(out, key);
    put_bytes(out, value);
    p = out.data() + start;
    size_t size = out.size() - start - fmt::log_overhead;
    bytes::store_be32(p + fmt::size_pos, static_cast<uint32_t>(size));
    bytes::store_be32(p + fmt::crc_pos,
                      crc32_of({p + fmt::magic_pos, out.size() - start - fmt::magic_pos}));
}

}  // namespace

bool is_legacy(std::span<const std::byte> records) {
    if (records.size() <= fmt::magic_pos) return false;
    auto magic = static_cast<int8_t>(records[fmt::magic_pos]);
    return magic == 0 || magic == 1;
}

result<up_converted> up_convert(std::span<const std::byte> message_set, int64_t now_ms,
                                size_t max_decompressed_bytes) {
    auto codec = batch_codec(message_set);
    if (!codec) return codec.error();
    batch_options opts;
    opts.codec = *codec;
    batch_builder builder(opts, message_set.size());
    up_converted out;
    std::vector<std::byte> scratch;
    size_t budget = max_decompressed_bytes;
    auto r = for_each_message(message_set, [&](const message& outer) -> result<void> {
        if (out.record_count == 0) out.magic = outer.magic;
        if (outer.codec() == compression::none) {
            builder.add(outer.key, outer.value, timestamp_for(outer, now_ms));
            ++out.record_count;
            return ok();
        }
        // A wrapper: its value is a compressed message set of inner messages.
        if (!outer.value) return errc::bad_records;
        scratch.clear();
        auto d = decompress(outer.codec(), *outer.value, scratch, budget);
        if (!d) return d.error();
        budget -= scratch.size();
        return for_each_message(scratch, [&](const message& inner) -> result<void> {
            if (inner.codec() != compression::none) return errc::bad_records;
            int64_t ts = outer.log_append_time() ? outer.timestamp : timestamp_for(inner, now_ms);
            builder.add(inner.key, inner.value, ts);
            ++out.record_count;
            return ok();
        });
    });
    if (!r) return r.error();
    if (out.record_count == 0) return errc::bad_records;
    auto built = builder.build();
    if (!built) return built.error();
    out.batch = std::move(*built);
    return out;
}

result<void> down_convert(std::span<const std::byte> batches, int8_t magic, int64_t from_offset,
                          size_t soft_limit_bytes, std::vector<std::byte>& out) {
    batch_iterator it(batches);
    batch_header h;
    std::span<const std::byte> batch;
    std::vector<std::byte> scratch;
    while (out.size() < soft_limit_bytes && it.next(h, batch)) {
        if (h.control() || h.last_offset() < from_offset) continue;
        auto r = for_each_record(batch, h, scratch, [&](const record_view& rec) {
            int64_t offset = rec.offset(h);
            if (offset < from_offset) return;
            put_message(out, magic, h.log_append_time(), offset, rec.timestamp(h), rec.key,
                        rec.value);
        });
        if (!r) return r.error();
    }
    return ok();
}

}  // namespace sluice::model::legacy
