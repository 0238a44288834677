#pragma once
// Byte order and variable-length integers as Kafka writes them: big-endian fixed-width integers,
// unsigned LEB128 varints (flexible protocol versions) and zigzag varints (record fields).
// Readers never read past `end`; they return std::nullopt instead (the caller turns that into
// a `malformed` error).

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <span>

namespace sluice::bytes {

inline uint16_t load_be16(const void* p) {
    uint16_t v;
    std::memcpy(&v, p, 2);
    return __builtin_bswap16(v);
}
inline uint32_t load_be32(const void* p) {
    uint32_t v;
    std::memcpy(&v, p, 4);
    return __builtin_bswap32(v);
}
inline uint64_t load_be64(const void* p) {
    uint64_t v;
    std::memcpy(&v, p, 8);
    return __builtin_bswap64(v);
}
inline void store_be16(void* p, uint16_t v) {
    v = __builtin_bswap16(v);
    std::memcpy(p, &v, 2);
}
inline void store_be32(void* p, uint32_t v) {
    v = __builtin_bswap32(v);
    std::memcpy(p, &v, 4);
}
inline void store_be64(void* p, uint64_t v) {
    v = __builtin_bswap64(v);
    std::memcpy(p, &v, 8);
}

inline uint64_t zigzag_encode(int64_t v) {
    return (static_cast<uint64_t>(v) << 1) ^ static_cast<uint64_t>(v >> 63);
}
inline int64_t zigzag_decode(uint64_t v) {
    return static_cast<int64_t>(v >> 1) ^ -static_cast<int64_t>(v & 1);
}

// Reads an unsigned varint of at most `max_bytes` bytes (5 for 32-bit, 10 for 64-bit values).
inline std::optional<uint64_t> read_uvarint(const uint8_t*& p, const uint8_t* end,
                                            int max_bytes = 10) {
    uint64_t v = 0;
    for (int i = 0; i < max_bytes; ++i) {
        if (p >= end) return std::nullopt;
        uint8_t b = *p++;
        v |= static_cast<uint64_t>(b & 0x7f) << (7 * i);
        if ((b & 0x80) == 0) return v;
    }
    return std::nullopt;
}
inline std::optional<int64_t> read_varlong(const uint8_t*& p, const uint8_t* end) {
    auto v = read_uvarint(p, end, 10);
    if (!v) return std::nullopt;
    return zigzag_decode(*v);
}
inline std::optional<int32_t> read_varint(const uint8_t*& p, const uint8_t* end) {
    auto v = read_uvarint(p, end, 5);
    if (!v || *v > 0xffffffffull) return std::nullopt;
    return static_cast<int32_t>(static_cast<uint32_t>(*v >> 1) ^ -static_cast<uint32_t>(*v & 1));
}

// Writes an unsigned varint; `out` must have room for 10 bytes. Returns bytes written.
inline size_t write_uvarint(uint8_t* out, uint64_t v) {
    size_t n = 0;
    while (v >= 0x80) {
        out[n++] = static_cast<uint8_t>(v | 0x80);
        v >>= 7;
    }
    out[n++] = static_cast<uint8_t>(v);
    return n;
}
inline size_t uvarint_size(uint64_t v) {
    size_t n = 1;
    while (v >= 0x80) {
        v >>= 7;
        ++n;
    }
    return n;
}
inline size_t write_varlong(uint8_t* out, int64_t v) { return write_uvarint(out, zigzag_encode(v)); }
inline size_t varlong_size(int64_t v) { return uvarint_size(zigzag_encode(v)); }

}  // namespace sluice::bytes
