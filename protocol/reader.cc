#include "protocol/reader.h"

#include <algorithm>
#include <cstring>

#include "base/bytes.h"

namespace sluice::protocol {

namespace {
const uint8_t* as_u8(const std::byte* p) { return reinterpret_cast<const uint8_t*>(p); }
}  // namespace

result<void> reader::status() const {
    if (ok()) return sluice::ok();
    return sluice::error(_err, std::string(_err_what ? _err_what : "input") + " at byte " +
                                   std::to_string(_err_pos));
}

void reader::fail(base::errc e, const char* what) {
    if (!ok()) return;
    _err = e;
    _err_what = what;
    _err_pos = _pos;
    _pos = _data.size();  // nothing more is read
}

const std::byte* reader::take(size_t n, const char* what) {
    if (!ok()) return nullptr;
    if (n > remaining()) {
        fail(base::errc::malformed, what);
        return nullptr;
    }
    const std::byte* p = _data.data() + _pos;
    _pos += n;
    return p;
}

int8_t reader::read_int8() {
    const std::byte* p = take(1, "int8");
    return p ? static_cast<int8_t>(*p) : 0;
}
int16_t reader::read_int16() {
    const std::byte* p = take(2, "int16");
    return p ? static_cast<int16_t>(bytes::load_be16(p)) : 0;
}
int32_t reader::read_int32() {
    const std::byte* p = take(4, "int32");
    return p ? static_cast<int32_t>(bytes::load_be32(p)) : 0;
}
int64_t reader::read_int64() {
    const std::byte* p = take(8, "int64");
    return p ? static_cast<int64_t>(bytes::load_be64(p)) : 0;
}
uint16_t reader::read_uint16() {
    const std::byte* p = take(2, "uint16");
    return p ? bytes::load_be16(p) : 0;
}
uint32_t reader::read_uint32() {
    const std::byte* p = take(4, "uint32");
    return p ? bytes::load_be32(p) : 0;
}
double reader::read_float64() {
    const std::byte* p = take(8, "float64");
    if (!p) return 0.0;
    uint64_t bits = bytes::load_be64(p);
    double v;
    std::memcpy(&v, &bits, sizeof v);
    return v;
}
bool reader::read_bool() { return read_int8() != 0; }
uuid reader::read_uuid() {
    uuid v;
    if (const std::byte* p = take(16, "uuid")) std::memcpy(v.bytes.data(), p, 16);
    return v;
}

uint32_t reader::read_uvarint32() {
    if (!ok()) return 0;
    const uint8_t* p = as_u8(_data.data() + _pos);
    const uint8_t* end = as_u8(_data.data() + _data.size());
    const uint8_t* start = p;
    auto v = bytes::read_uvarint(p, end, 5);
    if (!v || *v > 0xffffffffull) {
        fail(base::errc::malformed, "unsigned varint");
        return 0;
    }
    _pos += static_cast<size_t>(p - start);
    return static_cast<uint32_t>(*v);
}

int32_t reader::read_varint() {
    if (!ok()) return 0;
    const uint8_t* p = as_u8(_data.data() + _pos);
    const uint8_t* start = p;
    auto v = bytes::read_varint(p, as_u8(_data.data() + _data.size()));
    if (!v) {
        fail(base::errc::malformed, "varint");
        return 0;
    }
    _pos += static_cast<size_t>(p - start);
    return *v;
}

int64_t reader::read_varlong() {
    if (!ok()) return 0;
    const uint8_t* p = as_u8(_data.data() + _pos);
    const uint8_t* start = p;
    auto v = bytes::read_varlong(p, as_u8(_data.data() + _data.size()));
    if (!v) {
        fail(base::errc::malformed, "varlong");
        return 0;
    }
    _pos += static_cast<size_t>(p - start);
    return *v;
}

int64_t reader::read_length(bool flexible, bool int32_prefix, bool nullable, uint32_t limit,
                            const char* what) {
    int64_t n;
    if (flexible) {
        uint32_t raw = read_uvarint32();
        n = static_cast<int64_t>(raw) - 1;
    } else {
        n = int32_prefix ? read_int32() : read_int16();
    }
    if (!ok()) return -2;
    if (n == -1 && nullable) return -1;
    if (n < 0) {
        fail(base::errc::malformed, what);
        return -2;
    }
    if (n > limit) {
        fail(base::errc::limit_exceeded, what);
        return -2;
    }
    if (static_cast<uint64_t>(n) > remaining()) {
        fail(base::errc::malformed, what);
        return -2;
    }
    return n;
}

std::string reader::read_string(bool flexible) {
    int64_t n = read_length(flexible, false, false, _limits.string_bytes_max, "string length");
    if (n < 0) return {};
    const std::byte* p = take(static_cast<size_t>(n), "string");
    return std::string(reinterpret_cast<const char*>(p), static_cast<size_t>(n));
}

std::optional<std::string> reader::read_nullable_string(bool flexible, bool nullable) {
    int64_t n = read_length(flexible, false, nullable, _limits.string_bytes_max, "string length");
    if (n == -1) return std::nullopt;
    if (n < 0) return std::string();
    const std::byte* p = take(static_cast<size_t>(n), "string");
    return std::string(reinterpret_cast<const char*>(p), static_cast<size_t>(n));
}

std::vector<std::byte> reader::read_bytes(bool flexible) {
    int64_t n = read_length(flexible, true, false, _limits.blob_bytes_max, "bytes length");
    if (n < 0) return {};
    return read_blob(static_cast<size_t>(n));
}

std::optional<std::vector<std::byte>> reader::read_nullable_bytes(bool flexible, bool nullable) {
    int64_t n = read_length(flexible, true, nullable, _limits.blob_bytes_max, "bytes length");
    if (n == -1) return std::nullopt;
    if (n < 0) return std::vector<std::byte>();
    return read_blob(static_cast<size_t>(n));
}

records reader::read_records(bool flexible, bool nullable) {
    int64_t n = read_length(flexible, true, nullable, _limits.blob_bytes_max, "records length");
    if (n == -1) return records();
    if (n < 0) return records::from_memory({});
    return records::from_memory(read_view(static_cast<size_t>(n)));
}

int32_t reader::read_array_length(bool flexible, bool nullable, size_t element_bytes_min) {
    int64_t n;
    if (flexible) {
        n = static_cast<int64_t>(read_uvarint32()) - 1;
    } else {
        n = read_int32();
    }
    if (!ok()) return 0;
    if (n == -1 && nullable) return -1;
    if (n < 0) {
        fail(base::errc::malformed, "array length");
        return 0;
    }
    if (n > _limits.array_length_max) {
        fail(base::errc::limit_exceeded, "array length");
        return 0;
    }
    if (static_cast<uint64_t>(n) * std::max<size_t>(element_bytes_min, 1) > remaining()) {
        fail(base::errc::malformed, "array length");
        return 0;
    }
    return static_cast<int32_t>(n);
}

size_t reader::reserve_hint(int32_t n) const {
    if (n <= 0) return 0;
    return std::min<size_t>(static_cast<size_t>(n), _limits.reserve_elements_max);
}

uint32_t reader::read_tag_count() {
    uint32_t n = read_uvarint32();
    // Each tagged field takes at least two bytes (tag and size).
    if (ok() && static_cast<uint64_t>(n) * 2 > remaining()) {
        fail(base::errc::malformed, "tagged field count");
        return 0;
    }
    return n;
}

uint32_t reader::read_tag_size() {
    uint32_t n = read_uvarint32();
    if (ok() && n > remaining()) {
        fail(base::errc::malformed, "tagged field size");
        return 0;
    }
    return n;
}

void reader::read_unknown_tags(tagged_fields& out) {
    const uint32_t count = read_tag_count();
    for (uint32_t i = 0; i < count && ok(); ++i) {
        const uint32_t tag = read_uvarint32();
        const uint32_t size = read_tag_size();
        if (!ok()) return;
        out.push_back({tag, read_blob(size)});
    }
}

void reader::expect_position(size_t end) {
    if (ok() && _pos != end) fail(base::errc::malformed, "tagged field size");
}

std::vector<std::byte> reader::read_blob(size_t n) {
    const std::byte* p = take(n, "bytes");
    if (!p) return {};
    return std::vector<std::byte>(p, p + n);
}

std::span<const std::byte> reader::read_view(size_t n) {
    const std::byte* p = take(n, "bytes");
    if (!p) return {};
    return {p, n};
}

}  // namespace sluice::protocol
