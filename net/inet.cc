#include "net/inet.h"

#include <cstdio>
#include <algorithm>
#include <bit>
#include <cstring>

#include "base/bytes.h"

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace sluice::net::inet {

std::string to_string(const mac_address& m) {
    char buf[18];
    std::snprintf(buf, sizeof buf, "%02x:%02x:%02x:%02x:%02x:%02x", m[0], m[1], m[2], m[3], m[4],
                  m[5]);
    return buf;
}

std::string ipv4_to_string(ipv4_address a) {
    return std::to_string(a >> 24) + "." + std::to_string((a >> 16) & 0xff) + "." +
           std::to_string((a >> 8) & 0xff) + "." + std::to_string(a & 0xff);
}

std::optional<ipv4_address> parse_ipv4(std::string_view text) {
    ipv4_address out = 0;
    int parts = 0;
    size_t i = 0;
    while (parts < 4) {
        if (i >= text.size() || text[i] < '0' || text[i] > '9') return std::nullopt;
        uint32_t v = 0;
        size_t digits = 0;
        while (i < text.size() && text[i] >= '0' && text[i] <= '9' && digits < 4) {
            v = v * 10 + static_cast<uint32_t>(text[i] - '0');
            ++i;
            ++digits;
        }
        if (v > 255 || digits > 3) return std::nullopt;
        out = (out << 8) | v;
        ++parts;
        if (parts < 4) {
            if (i >= text.size() || text[i] != '.') return std::nullopt;
            ++i;
        }
    }
    if (i != text.size()) return std::nullopt;
    return out;
}

namespace {

// The 16-bit one's complement sum of `n` bytes (n a multiple of 16) read as host-order 16-bit
// words, folded. RFC 1071 section 2(B): the sum is byte-order independent, so on a
// little-endian host the big-endian sum is this one with its bytes swapped, and no load needs a
// byte swap. With SSE2 (every x86-64) each 16-bit word is widened into a 32-bit lane, 16 bytes
// per step; the lanes are emptied into a 64-bit total every 64 KiB, long before one could
// overflow (65536 words). Elsewhere, host-order 32-bit loads into four 64-bit accumulators.
uint16_t sum_host_words(const uint8_t* p, size_t n) {
    uint64_t s = 0;
#if defined(__SSE2__)
    const __m128i zero = _mm_setzero_si128();
    while (n > 0) {
        size_t chunk = std::min<size_t>(n, 65536);
        n -= chunk;
        __m128i lo = zero, hi = zero;
        for (; chunk > 0; p += 16, chunk -= 16) {
            __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
            lo = _mm_add_epi32(lo, _mm_unpacklo_epi16(v, zero));
            hi = _mm_add_epi32(hi, _mm_unpackhi_epi16(v, zero));
        }
        alignas(16) uint32_t lanes[8];
        _mm_store_si128(reinterpret_cast<__m128i*>(lanes), lo);
        _mm_store_si128(reinterpret_cast<__m128i*>(lanes + 4), hi);
        for (uint32_t l : lanes) s += l;
    }
#else
    uint64_t a0 = 0, a1 = 0, a2 = 0, a3 = 0;
    for (; n >= 16; p += 16, n -= 16) {
        uint32_t w[4];
        std::memcpy(w, p, sizeof w);
        a0 += w[0];
        a1 += w[1];
        a2 += w[2];
        a3 += w[3];
    }
    s = a0 + a1 + a2 + a3;  // each below 2^62: no overflow
#endif
    while (s >> 16) s = (s & 0xffff) + (s >> 16);
    return static_cast<uint16_t>(s);
}

}  // namespace

void checksum::add(std::span<const std::byte> bytes) {
    const auto* p = reinterpret_cast<const uint8_t*>(bytes.data());
    size_t n = bytes.size();
    if (n == 0) return;
    if (odd) {
        sum += p[0];
        ++p;
        --n;
        odd = false;
    }
    if (n >= 16) {
        size_t bulk = n & ~size_t{15};
        uint16_t host = sum_host_words(p, bulk);
        if constexpr (std::endian::native == std::endian::little) {
            host = static_cast<uint16_t>((host << 8) | (host >> 8));
        }
        sum += host;
        p += bulk;
        n -= bulk;
    }
    while (n >= 2) {
        sum += bytes::load_be16(p);
        p += 2;
        n -= 2;
    }
    if (n == 1) {
        sum += static_cast<uint64_t>(p[0]) << 8;
        odd = true;
    }
}

uint16_t checksum::finish() const {
    uint64_t s = sum;
    while (s >> 16) s = (s & 0xffff) + (s >> 16);
    return static_cast<uint16_t>(~s & 0xffff);
}

void add_pseudo_header(checksum& c, ipv4_address src, ipv4_address dst, uint8_t proto,
                       uint16_t length) {
    c.add_u32(src);
    c.add_u32(dst);
    c.add_u16(proto);
    c.add_u16(length);
}

std::optional<ethernet_header> parse_ethernet(std::span<const std::byte> frame) {
    if (frame.size() < ethernet_header_bytes) return std::nullopt;
    ethernet_header h;
    std::memcpy(h.dst.data(), frame.data(), 6);
    std::memcpy(h.src.data(), frame.data() + 6, 6);
    h.ethertype = bytes::load_be16(frame.data() + 12);
    return h;
}

void write_ethernet(std::byte* out, const ethernet_header& h) {
    std::memcpy(out, h.dst.data(), 6);
    std::memcpy(out + 6, h.src.data(), 6);
    bytes::store_be16(out + 12, h.ethertype);
}

std::optional<arp_packet> parse_arp(std::span<const std::byte> payload) {
    if (payload.size() < arp_ipv4_bytes) return std::nullopt;
    const std::byte* p = payload.data();
    // Hardware type Ethernet (1), protocol IPv4, address lengths 6 and 4.
    if (bytes::load_be16(p) != 1 || bytes::load_be16(p + 2) != ethertype_ipv4 ||
        static_cast<uint8_t>(p[4]) != 6 || static_cast<uint8_t>(p[5]) != 4) {
        return std::nullopt;
    }
    arp_packet a;
    a.op = bytes::load_be16(p + 6);
    if (a.op != arp_request && a.op != arp_reply) return std::nullopt;
    std::memcpy(a.sender_mac.data(), p + 8, 6);
    a.sender_ip = bytes::load_be32(p + 14);
    std::memcpy(a.target_mac.data(), p + 18, 6);
    a.target_ip = bytes::load_be32(p + 24);
    return a;
}

void write_arp(std::byte* out, const arp_packet& a) {
    bytes::store_be16(out, 1);
    bytes::store_be16(out + 2, ethertype_ipv4);
    out[4] = std::byte{6};
    out[5] = std::byte{4};
    bytes::store_be16(out + 6, a.op);
    std::memcpy(out + 8, a.sender_mac.data(), 6);
    bytes::store_be32(out + 14, a.sender_ip);
    std::memcpy(out + 18, a.target_mac.data(), 6);
    bytes::store_be32(out + 24, a.target_ip);
}

std::optional<ipv4_header> parse_ipv4_header(std::span<const std::byte> packet,
                                             bool checksum_verified) {
    if (packet.size() < ipv4_header_bytes) return std::nullopt;
    const std::byte* p = packet.data();
    auto b0 = static_cast<uint8_t>(p[0]);
    if ((b0 >> 4) != 4) return std::nullopt;
    ipv4_header h;
    h.header_bytes = static_cast<uint8_t>((b0 & 0x0f) * 4);
    if (h.header_bytes < ipv4_header_bytes || h.header_bytes > packet.size()) return std::nullopt;
    h.tos = static_cast<uint8_t>(p[1]);
    h.total_length = bytes::load_be16(p + 2);
    if (h.total_length < h.header_bytes || h.total_length > packet.size()) return std::nullopt;
    h.id = bytes::load_be16(p + 4);
    uint16_t frag = bytes::load_be16(p + 6);
    h.dont_fragment = (frag & 0x4000) != 0;
    h.more_fragments = (frag & 0x2000) != 0;
    h.fragment_offset = frag & 0x1fff;
    h.ttl = static_cast<uint8_t>(p[8]);
    h.protocol = static_cast<uint8_t>(p[9]);
    h.checksum = bytes::load_be16(p + 10);
    h.src = bytes::load_be32(p + 12);
    h.dst = bytes::load_be32(p + 16);
    if (!checksum_verified) {
        checksum c;
        c.add(packet.subspan(0, h.header_bytes));
        if (c.finish() != 0) return std::nullopt;
    }
    return h;
}

void write_ipv4(std::byte* out, ipv4_address src, ipv4_address dst, uint8_t proto,
                uint16_t payload_bytes, uint16_t id, bool offload) {
    out[0] = std::byte{0x45};
    out[1] = std::byte{0};
    bytes::store_be16(out + 2, static_cast<uint16_t>(ipv4_header_bytes + payload_bytes));
    bytes::store_be16(out + 4, id);
    bytes::store_be16(out + 6, 0x4000);  // DF: this stack never fragments (RFC 791)
    out[8] = std::byte{default_ttl};
    out[9] = std::byte{proto};
    bytes::store_be16(out + 10, 0);
    bytes::store_be32(out + 12, src);
    bytes::store_be32(out + 16, dst);
    if (!offload) {
        checksum c;
        c.add({out, ipv4_header_bytes});
        bytes::store_be16(out + 10, c.finish());
    }
}

namespace {

// Option kinds (RFC 9293 3.2, RFC 7323).
constexpr uint8_t opt_end = 0;
constexpr uint8_t opt_nop = 1;
constexpr uint8_t opt_mss = 2;
constexpr uint8_t opt_wscale = 3;
constexpr uint8_t opt_sack_permitted = 4;
constexpr uint8_t opt_timestamps = 8;

bool parse_options(const std::byte* p, size_t n, tcp_options& o) {
    size_t i = 0;
    while (i < n) {
        auto kind = static_cast<uint8_t>(p[i]);
        if (kind == opt_end) return true;
        if (kind == opt_nop) {
            ++i;
            continue;
        }
        if (i + 1 >= n) return false;
        auto len = static_cast<uint8_t>(p[i + 1]);
        if (len < 2 || i + len > n) return false;
        const std::byte* v = p + i + 2;
        switch (kind) {
            case opt_mss:
                if (len != 4) return false;
                o.mss = bytes::load_be16(v);
                break;
            case opt_wscale:
                if (len != 3) return false;
                // RFC 7323 2.3: a shift above 14 is used as 14.
                o.window_scale = static_cast<int8_t>(std::min<uint8_t>(14, static_cast<uint8_t>(v[0])));
                break;
            case opt_sack_permitted:
                if (len != 2) return false;
                o.sack_permitted = true;
                break;
            case opt_timestamps:
                if (len != 10) return false;
                o.timestamps = true;
                o.ts_val = bytes::load_be32(v);
                o.ts_ecr = bytes::load_be32(v + 4);
                break;
            default:
                break;  // unknown options are skipped by their length
        }
        i += len;
    }
    return true;
}

}  // namespace

std::optional<tcp_header> parse_tcp(std::span<const std::byte> segment) {
    if (segment.size() < tcp_header_bytes) return std::nullopt;
    const std::byte* p = segment.data();
    tcp_header h;
    h.src_port = bytes::load_be16(p);
    h.dst_port = bytes::load_be16(p + 2);
    h.seq = bytes::load_be32(p + 4);
    h.ack = bytes::load_be32(p + 8);
    h.header_bytes = static_cast<uint8_t>((static_cast<uint8_t>(p[12]) >> 4) * 4);
    if (h.header_bytes < tcp_header_bytes || h.header_bytes > segment.size()) return std::nullopt;
    h.flags = static_cast<uint8_t>(p[13]) & 0x3f;
    h.window = bytes::load_be16(p + 14);
    h.checksum = bytes::load_be16(p + 16);
    h.urgent = bytes::load_be16(p + 18);
    if (!parse_options(p + tcp_header_bytes, h.header_bytes - tcp_header_bytes, h.options)) {
        return std::nullopt;
    }
    return h;
}

size_t tcp_options_bytes(const tcp_options& o) {
    size_t n = 0;
    if (o.mss != 0) n += 4;
    if (o.window_scale >= 0) n += 4;  // NOP + 3
    if (o.timestamps) n += 12;        // NOP NOP + 10
    return n;
}

size_t write_tcp(std::byte* out, const tcp_header& h) {
    size_t opts = tcp_options_bytes(h.options);
    size_t len = tcp_header_bytes + opts;
    bytes::store_be16(out, h.src_port);
    bytes::store_be16(out + 2, h.dst_port);
    bytes::store_be32(out + 4, h.seq);
    bytes::store_be32(out + 8, h.ack);
    out[12] = std::byte{static_cast<uint8_t>((len / 4) << 4)};
    out[13] = std::byte{h.flags};
    bytes::store_be16(out + 14, h.window);
    bytes::store_be16(out + 16, 0);
    bytes::store_be16(out + 18, 0);
    std::byte* o = out + tcp_header_bytes;
    if (h.options.mss != 0) {
        o[0] = std::byte{opt_mss};
        o[1] = std::byte{4};
        bytes::store_be16(o + 2, h.options.mss);
        o += 4;
    }
    if (h.options.window_scale >= 0) {
        o[0] = std::byte{opt_nop};
        o[1] = std::byte{opt_wscale};
        o[2] = std::byte{3};
        o[3] = std::byte{static_cast<uint8_t>(h.options.window_scale)};
        o += 4;
    }
    if (h.options.timestamps) {
        o[0] = std::byte{opt_nop};
        o[1] = std::byte{opt_nop};
        o[2] = std::byte{opt_timestamps};
        o[3] = std::byte{10};
        bytes::store_be32(o + 4, h.options.ts_val);
        bytes::store_be32(o + 8, h.options.ts_ecr);
    }
    return len;
}

}  // namespace sluice::net::inet
