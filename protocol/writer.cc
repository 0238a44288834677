#include "protocol/writer.h"

#include <algorithm>
#include <climits>
#include <cstring>

#include "base/assert.h"
#include "base/bytes.h"

namespace sluice::protocol {

namespace {
// Longest string a non-flexible (int16) length prefix can carry; compact strings get the same
// bound so a value encodes the same way at every version.
constexpr size_t string_bytes_max = 32767;
}  // namespace

void writer::write_raw(std::span<const std::byte> b) {
    _buf.insert(_buf.end(), b.begin(), b.end());
}

void writer::write_int8(int8_t v) { _buf.push_back(static_cast<std::byte>(v)); }
void writer::write_int16(int16_t v) {
    std::byte b[2];
    bytes::store_be16(b, static_cast<uint16_t>(v));
    write_raw(b);
}
void writer::write_int32(int32_t v) {
    std::byte b[4];
    bytes::store_be32(b, static_cast<uint32_t>(v));
    write_raw(b);
}
void writer::write_int64(int64_t v) {
    std::byte b[8];
    bytes::store_be64(b, static_cast<uint64_t>(v));
    write_raw(b);
}
void writer::write_uint16(uint16_t v) { write_int16(static_cast<int16_t>(v)); }
void writer::write_uint32(uint32_t v) { write_int32(static_cast<int32_t>(v)); }
void writer::write_float64(double v) {
    uint64_t bits;
    std::memcpy(&bits, &v, sizeof bits);
    write_int64(static_cast<int64_t>(bits));
}

void writer::write_uvarint(uint64_t v) {
    uint8_t b[10];
    size_t n = bytes::write_uvarint(b, v);
    write_raw(std::as_bytes(std::span(b, n)));
}
void writer::write_varint(int32_t v) { write_varlong(v); }
void writer::write_varlong(int64_t v) { write_uvarint(bytes::zigzag_encode(v)); }

void writer::write_string(std::string_view s, bool flexible) {
    SLUICE_ASSERT(s.size() <= string_bytes_max, "string too long for the Kafka protocol");
    if (flexible) {
        write_uvarint(s.size() + 1);
    } else {
        write_int16(static_cast<int16_t>(s.size()));
    }
    write_raw(std::as_bytes(std::span(s.data(), s.size())));
}

void writer::write_nullable_string(const std::optional<std::string>& s, bool flexible,
                                   bool nullable) {
    if (s) {
        write_string(*s, flexible);
    } else if (!nullable) {
        write_string({}, flexible);
    } else if (flexible) {
        write_uvarint(0);
    } else {
        write_int16(-1);
    }
}

void writer::write_bytes(std::span<const std::byte> b, bool flexible) {
    SLUICE_ASSERT(b.size() <= INT32_MAX, "bytes field over 2 GiB");
    if (flexible) {
        write_uvarint(b.size() + 1);
    } else {
        write_int32(static_cast<int32_t>(b.size()));
    }
    write_raw(b);
}

void writer::write_nullable_bytes(const std::optional<std::vector<std::byte>>& b, bool flexible,
                                  bool nullable) {
    if (b) {
        write_bytes(*b, flexible);
    } else if (!nullable) {
        write_bytes({}, flexible);
    } else if (flexible) {
        write_uvarint(0);
    } else {
        write_int32(-1);
    }
}

void writer::write_records(const records& r, bool flexible, bool nullable) {
    if (r.is_null()) {
        if (!nullable) {
            write_bytes({}, flexible);
        } else if (flexible) {
            write_uvarint(0);
        } else {
            write_int32(-1);
        }
        return;
    }
    const uint64_t n = r.size_bytes();
    SLUICE_ASSERT(n <= INT32_MAX, "records field over 2 GiB");
    if (flexible) {
        write_uvarint(n + 1);
    } else {
        write_int32(static_cast<int32_t>(n));
    }
    if (r.in_memory()) {
        write_raw(r.memory());
    } else {
        for (const auto& region : r.files()) append_file(region);
    }
}

void writer::write_array_length(int64_t n, bool flexible, bool nullable) {
    SLUICE_ASSERT(n >= -1 && n <= INT32_MAX, "array length out of range");
    if (n < 0 && !nullable) n = 0;
    if (flexible) {
        write_uvarint(static_cast<uint64_t>(n + 1));
    } else {
        write_int32(static_cast<int32_t>(n));
    }
}

void writer::write_tags(std::span<const tagged_field> known, const tagged_fields& unknown) {
    const size_t count = known.size() + unknown.size();
    write_uvarint(count);
    if (count == 0) return;
    auto put = [this](const tagged_field& f) {
        write_uvarint(f.tag);
        write_uvarint(f.data.size());
        write_raw(f.data);
    };
    if (unknown.empty()) {
        for (const auto& f : known) put(f);
        return;
    }
    // Merge in tag order; unknown tags keep their relative order among equal neighbours.
    std::vector<const tagged_field*> all;
    all.reserve(count);
    for (const auto& f : known) all.push_back(&f);
    for (const auto& f : unknown) all.push_back(&f);
    std::stable_sort(all.begin(), all.end(),
                     [](const tagged_field* a, const tagged_field* b) { return a->tag < b->tag; });
    for (const auto* f : all) put(*f);
}

void writer::append_file(const file_region& region) {
    if (region.length == 0) return;
    _files.push_back({_buf.size(), region});
    _file_bytes += region.length;
}

size_t writer::reserve(size_t n) {
    size_t at = _buf.size();
    _buf.resize(at + n);
    return at;
}

void writer::patch_int32(size_t memory_pos, int32_t v) {
    SLUICE_ASSERT(memory_pos + 4 <= _buf.size(), "patch past the end of the buffer");
    bytes::store_be32(_buf.data() + memory_pos, static_cast<uint32_t>(v));
}

std::vector<output_piece> writer::pieces() const {
    std::vector<output_piece> out;
    out.reserve(_files.size() * 2 + 1);
    size_t from = 0;
    for (const auto& slot : _files) {
        if (slot.at > from) out.emplace_back(std::span(_buf.data() + from, slot.at - from));
        out.emplace_back(slot.region);
        from = slot.at;
    }
    if (_buf.size() > from) out.emplace_back(std::span(_buf.data() + from, _buf.size() - from));
    return out;
}

std::span<const std::byte> writer::memory() const {
    SLUICE_ASSERT(_files.empty(), "writer output includes file regions");
    return _buf;
}

std::vector<std::byte> writer::take_bytes() {
    SLUICE_ASSERT(_files.empty(), "writer output includes file regions");
    return std::move(_buf);
}

}  // namespace sluice::protocol
