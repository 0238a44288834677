#include "base/crc32c.h"

#include <array>
#include <cstring>

namespace sluice::crc32c {
namespace {

constexpr uint32_t poly = 0x82f63b78u;  // reflected Castagnoli polynomial

constexpr std::array<uint32_t, 256> make_table() {
    std::array<uint32_t, 256> t{};
    for (uint32_t i = 0; i < 256; ++i) {
        uint32_t c = i;
        for (int k = 0; k < 8; ++k) c = (c & 1) ? (c >> 1) ^ poly : c >> 1;
        t[i] = c;
    }
    return t;
}
constexpr auto table = make_table();

uint32_t extend_sw(uint32_t crc, const uint8_t* p, size_t n) {
    uint32_t c = ~crc;
    for (size_t i = 0; i < n; ++i) c = table[(c ^ p[i]) & 0xff] ^ (c >> 8);
    return ~c;
}

#if defined(__x86_64__)

// The crc32 instruction has a throughput of one per cycle but a latency of three, so one
// dependent chain runs at a third of the possible speed. Large buffers are therefore cut into
// three stripes whose CRCs are computed side by side and then joined: the CRC register is linear
// over GF(2), so the CRC of A followed by B equals "A's register advanced over |B| zero bytes"
// XOR "B's register computed from zero". Advancing over a fixed number of zero bytes is a
// linear map on 32 bits, applied here with four byte-indexed tables built once.

// Applies the 32x32 GF(2) matrix `m` (one column per input bit) to `v`.
uint32_t apply(const std::array<uint32_t, 32>& m, uint32_t v) {
    uint32_t out = 0;
    for (int bit = 0; v != 0; ++bit, v >>= 1) {
        if (v & 1) out ^= m[static_cast<size_t>(bit)];
    }
    return out;
}

std::array<uint32_t, 32> compose(const std::array<uint32_t, 32>& a, const std::array<uint32_t, 32>& b) {
    std::array<uint32_t, 32> out{};  // a after b
    for (size_t i = 0; i < 32; ++i) out[i] = apply(a, b[i]);
    return out;
}

// The map that advances a CRC register over `bytes` zero bytes.
std::array<uint32_t, 32> zero_bytes_operator(size_t bytes) {
    std::array<uint32_t, 32> one_bit{};  // advancing over a single zero bit
    one_bit[0] = poly;
    for (size_t i = 1; i < 32; ++i) one_bit[i] = 1u << (i - 1);
    std::array<uint32_t, 32> op = one_bit;
    for (int i = 0; i < 3; ++i) op = compose(op, op);  // one zero byte = 8 bits
    std::array<uint32_t, 32> result{};
    for (size_t i = 0; i < 32; ++i) result[i] = 1u << i;  // identity
    for (size_t n = bytes; n != 0; n >>= 1) {            // square-and-multiply
        if (n & 1) result = compose(op, result);
        op = compose(op, op);
    }
    return result;
}

struct shift_tables {
    std::array<std::array<uint32_t, 256>, 4> t{};
    explicit shift_tables(size_t bytes) {
        auto op = zero_bytes_operator(bytes);
        for (uint32_t b = 0; b < 256; ++b) {
            for (size_t k = 0; k < 4; ++k) t[k][b] = apply(op, b << (8 * k));
        }
    }
    uint32_t shift(uint32_t crc) const {
        return t[0][crc & 0xff] ^ t[1][(crc >> 8) & 0xff] ^ t[2][(crc >> 16) & 0xff] ^
               t[3][crc >> 24];
    }
};

constexpr size_t long_stripe = 8192;
constexpr size_t short_stripe = 256;

__attribute__((target("sse4.2"))) uint64_t crc_words(uint64_t c, const uint8_t* p, size_t n) {
    for (; n >= 8; n -= 8, p += 8) {
        uint64_t w;
        std::memcpy(&w, p, 8);
        c = __builtin_ia32_crc32di(c, w);
    }
    return c;
}

// Three stripes of `stripe` bytes at p, p+stripe, p+2*stripe, folded into `c`.
__attribute__((target("sse4.2"))) uint64_t crc_three_stripes(uint64_t c, const uint8_t* p,
                                                             size_t stripe,
                                                             const shift_tables& shift) {
    uint64_t c1 = 0, c2 = 0;
    const uint8_t* end = p + stripe;
    for (; p < end; p += 8) {
        uint64_t w0, w1, w2;
        std::memcpy(&w0, p, 8);
        std::memcpy(&w1, p + stripe, 8);
        std::memcpy(&w2, p + 2 * stripe, 8);
        c = __builtin_ia32_crc32di(c, w0);
        c1 = __builtin_ia32_crc32di(c1, w1);
        c2 = __builtin_ia32_crc32di(c2, w2);
    }
    uint32_t joined = shift.shift(static_cast<uint32_t>(c)) ^ static_cast<uint32_t>(c1);
    joined = shift.shift(joined) ^ static_cast<uint32_t>(c2);
    return joined;
}

__attribute__((target("sse4.2"))) uint32_t extend_hw(uint32_t crc, const uint8_t* p, size_t n) {
    static const shift_tables long_shift(long_stripe);
    static const shift_tables short_shift(short_stripe);
    uint64_t c = ~crc;
    while (n >= 3 * long_stripe) {
        c = crc_three_stripes(c, p, long_stripe, long_shift);
        p += 3 * long_stripe;
        n -= 3 * long_stripe;
    }
    while (n >= 3 * short_stripe) {
        c = crc_three_stripes(c, p, short_stripe, short_shift);
        p += 3 * short_stripe;
        n -= 3 * short_stripe;
    }
    c = crc_words(c, p, n);
    p += n & ~size_t{7};
    n &= 7;
    uint32_t c32 = static_cast<uint32_t>(c);
    while (n-- > 0) c32 = __builtin_ia32_crc32qi(c32, *p++);
    return ~c32;
}

bool have_hw() {
    static const bool yes = __builtin_cpu_supports("sse4.2");
    return yes;
}
#endif

}  // namespace

uint32_t extend(uint32_t crc, const void* data, size_t n) {
    auto* p = static_cast<const uint8_t*>(data);
#if defined(__x86_64__)
    if (have_hw()) return extend_hw(crc, p, n);
#endif
    return extend_sw(crc, p, n);
}

uint32_t extend_portable(uint32_t crc, const void* data, size_t n) {
    return extend_sw(crc, static_cast<const uint8_t*>(data), n);
}

}  // namespace sluice::crc32c
