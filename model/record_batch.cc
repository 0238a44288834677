#include "model/record_batch.h"

#include <string>

#include "base/bytes.h"
#include "base/crc32c.h"

namespace sluice::model {

namespace bf = batch_format;

const char* describe(errc e) {
    switch (e) {
        case errc::ok: return "ok";
        case errc::truncated: return "truncated record batch";
        case errc::bad_magic: return "unsupported record batch magic (need 2)";
        case errc::bad_length: return "bad record batch length";
        case errc::crc_mismatch: return "record batch CRC mismatch";
        case errc::bad_record_count: return "bad record count";
        case errc::bad_records: return "malformed records in batch";
        case errc::unknown_compression: return "unknown compression codec";
        case errc::compression_failed: return "compressed payload does not decode";
        case errc::too_large: return "record batch larger than message.max.bytes";
    }
    return "unknown model error";
}

namespace {
const uint8_t* u8(std::span<const std::byte> b) { return reinterpret_cast<const uint8_t*>(b.data()); }
uint8_t* u8(std::span<std::byte> b) { return reinterpret_cast<uint8_t*>(b.data()); }

// Walks the records of an uncompressed batch and checks that exactly `count` records fill the
// payload and that offset deltas stay within the batch.
bool records_well_formed(const uint8_t* p, const uint8_t* end, int32_t count,
                         int32_t last_offset_delta) {
    for (int32_t i = 0; i < count; ++i) {
        auto len = bytes::read_varint(p, end);
        if (!len || *len < 0 || *len > end - p) return false;
        const uint8_t* rec_end = p + *len;
        if (p >= rec_end) return false;
        ++p;  // attributes
        if (!bytes::read_varlong(p, rec_end)) return false;
        auto od = bytes::read_varint(p, rec_end);
        if (!od || *od < 0 || *od > last_offset_delta) return false;
        for (int field = 0; field < 2; ++field) {  // key, value
            auto n = bytes::read_varint(p, rec_end);
            if (!n || *n < -1 || (*n > 0 && *n > rec_end - p)) return false;
            if (*n > 0) p += *n;
        }
        auto headers = bytes::read_varint(p, rec_end);
        if (!headers || *headers < 0) return false;
        for (int32_t h = 0; h < *headers; ++h) {
            auto kl = bytes::read_varint(p, rec_end);
            if (!kl || *kl < 0 || *kl > rec_end - p) return false;
            p += *kl;
            auto vl = bytes::read_varint(p, rec_end);
            if (!vl || *vl < -1 || (*vl > 0 && *vl > rec_end - p)) return false;
            if (*vl > 0) p += *vl;
        }
        if (p != rec_end) return false;
    }
    return p == end;
}
}  // namespace

result<batch_header> parse_header(std::span<const std::byte> b) {
    if (b.size() < bf::header_size) return errc::truncated;
    const uint8_t* p = u8(b);
    batch_header h;
    h.base_offset = static_cast<int64_t>(bytes::load_be64(p + bf::base_offset_pos));
    h.batch_length = static_cast<int32_t>(bytes::load_be32(p + bf::batch_length_pos));
    h.partition_leader_epoch = static_cast<int32_t>(bytes::load_be32(p + bf::partition_leader_epoch_pos));
    h.magic = static_cast<int8_t>(p[bf::magic_pos]);
    h.crc = bytes::load_be32(p + bf::crc_pos);
    h.attributes = static_cast<int16_t>(bytes::load_be16(p + bf::attributes_pos));
    h.last_offset_delta = static_cast<int32_t>(bytes::load_be32(p + bf::last_offset_delta_pos));
    h.base_timestamp = static_cast<int64_t>(bytes::load_be64(p + bf::base_timestamp_pos));
    h.max_timestamp = static_cast<int64_t>(bytes::load_be64(p + bf::max_timestamp_pos));
    h.producer_id = static_cast<int64_t>(bytes::load_be64(p + bf::producer_id_pos));
    h.producer_epoch = static_cast<int16_t>(bytes::load_be16(p + bf::producer_epoch_pos));
    h.base_sequence = static_cast<int32_t>(bytes::load_be32(p + bf::base_sequence_pos));
    h.record_count = static_cast<int32_t>(bytes::load_be32(p + bf::record_count_pos));
    if (h.magic != bf::magic_v2) {
        return error(errc::bad_magic, "magic " + std::to_string(h.magic));
    }
    if (h.batch_length < static_cast<int32_t>(bf::header_size - bf::log_overhead)) {
        return error(errc::bad_length, "batch length " + std::to_string(h.batch_length));
    }
    return h;
}

uint32_t compute_crc(std::span<const std::byte> batch) {
    return crc32c::value(batch.data() + bf::attributes_pos, batch.size() - bf::attributes_pos);
}

result<batch_header> validate(std::span<const std::byte> b, const validation_limits& limits) {
    auto hr = parse_header(b);
    if (!hr) return hr;
    const batch_header& h = *hr;
    if (h.size_bytes() > limits.max_batch_bytes) {
        return error(errc::too_large, std::to_string(h.size_bytes()) + " bytes");
    }
    if (h.size_bytes() > b.size()) {
        return error(errc::truncated, "batch says " + std::to_string(h.size_bytes()) +
                                          " bytes, " + std::to_string(b.size()) + " present");
    }
    auto batch = b.first(h.size_bytes());
    if (compute_crc(batch) != h.crc) return errc::crc_mismatch;
    if (h.record_count < 0 || h.last_offset_delta < 0 ||
        (h.record_count > 0 && h.last_offset_delta < h.record_count - 1)) {
        return errc::bad_record_count;
    }
    int codec = h.attributes & bf::compression_mask;
    if (codec > static_cast<int>(compression::zstd)) return errc::unknown_compression;
    if (codec == 0) {
        const uint8_t* p = u8(batch) + bf::header_size;
        if (!records_well_formed(p, u8(batch) + batch.size(), h.record_count, h.last_offset_delta)) {
            return errc::bad_records;
        }
    }
    return h;
}

void set_base_offset(std::span<std::byte> batch, int64_t base_offset) {
    bytes::store_be64(u8(batch) + bf::base_offset_pos, static_cast<uint64_t>(base_offset));
}

void set_partition_leader_epoch(std::span<std::byte> batch, int32_t epoch) {
    bytes::store_be32(u8(batch) + bf::partition_leader_epoch_pos, static_cast<uint32_t>(epoch));
}

void set_log_append_time(std::span<std::byte> batch, int64_t now_ms) {
    uint8_t* p = u8(batch);
    uint16_t attrs = bytes::load_be16(p + bf::attributes_pos) | bf::timestamp_type_bit;
    bytes::store_be16(p + bf::attributes_pos, attrs);
    bytes::store_be64(p + bf::max_timestamp_pos, static_cast<uint64_t>(now_ms));
    bytes::store_be32(p + bf::crc_pos, compute_crc(batch));
}

bool batch_iterator::next(batch_header& out, std::span<const std::byte>& batch) {
    auto h = parse_header(_rest);
    if (!h || h->size_bytes() > _rest.size()) return false;
    out = *h;
    batch = _rest.first(h->size_bytes());
    _rest = _rest.subspan(h->size_bytes());
    return true;
}

}  // namespace sluice::model

SLUICE_DEFINE_ERRC(sluice::model, errc, "model", describe)
