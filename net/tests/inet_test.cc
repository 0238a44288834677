// The wire formats of the userspace stack: round trips, checksums, and a catalogue of malformed
// headers that must be refused (never read past the bytes given).

#include <gtest/gtest.h>

#include <random>
#include <vector>

#include "base/bytes.h"
#include "net/inet.h"

namespace sluice::net::inet {
namespace {

std::vector<std::byte> bytes_of(std::initializer_list<int> v) {
    std::vector<std::byte> out;
    for (int b : v) out.push_back(std::byte(b));
    return out;
}

TEST(inet, checksum_matches_rfc1071_example) {
    // RFC 1071 section 3: the words 0001 f203 f4f5 f6f7 sum to ddf2 (complement 220d).
    auto b = bytes_of({0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7});
    checksum c;
    c.add(b);
    EXPECT_EQ(c.finish(), 0x220d);
    // Summed in odd-sized pieces it is the same.
    checksum d;
    d.add(std::span(b).subspan(0, 3));
    d.add(std::span(b).subspan(3, 5));
    EXPECT_EQ(d.finish(), 0x220d);
}

// RFC 1071's definition, one big-endian 16-bit word at a time.
uint16_t reference_checksum(std::span<const std::byte> b) {
    uint64_t s = 0;
    for (size_t i = 0; i < b.size(); i += 2) {
        uint32_t hi = static_cast<uint8_t>(b[i]);
        uint32_t lo = i + 1 < b.size() ? static_cast<uint8_t>(b[i + 1]) : 0;
        s += (hi << 8) | lo;
    }
    while (s >> 16) s = (s & 0xffff) + (s >> 16);
    return static_cast<uint16_t>(~s & 0xffff);
}

TEST(inet, checksum_of_any_length_and_split_matches_the_definition) {
    std::mt19937 rng(7);
    std::vector<std::byte> b(300000);
    for (auto& x : b) x = std::byte(rng() & 0xff);
    for (size_t len :
         {0, 1, 2, 15, 16, 17, 31, 32, 33, 63, 1448, 1460, 1501, 4097, 9000, 65552, 300000}) {
        auto all = std::span(b).subspan(0, len);
        checksum whole;
        whole.add(all);
        ASSERT_EQ(whole.finish(), reference_checksum(all)) << len;
        // Pieces of random sizes, odd ones included, as a segment's runs are summed.
        checksum pieces;
        for (size_t at = 0; at < len;) {
            size_t n = std::min<size_t>(len - at, rng() % 40);
            pieces.add(all.subspan(at, n));
            at += n;
        }
        EXPECT_EQ(pieces.finish(), whole.finish()) << len;
    }
    // All-ones words, more than one 64 KiB chunk of them: the carries wrap around and no
    // accumulator overflows.
    std::vector<std::byte> ff(300000, std::byte{0xff});
    checksum c;
    c.add(ff);
    EXPECT_EQ(c.finish(), reference_checksum(ff));
}

TEST(inet, ipv4_header_round_trips_and_verifies) {
    std::vector<std::byte> p(40);
    write_ipv4(p.data(), 0xc6120001, 0xc6120002, ip_proto_tcp, 20, 7, false);
    auto h = parse_ipv4_header(p, false);
    ASSERT_TRUE(h);
    EXPECT_EQ(h->src, 0xc6120001u);
    EXPECT_EQ(h->dst, 0xc6120002u);
    EXPECT_EQ(h->total_length, 40);
    EXPECT_TRUE(h->dont_fragment);
    EXPECT_EQ(h->protocol, ip_proto_tcp);
    p[8] = std::byte{1};  // TTL changed without fixing the checksum
    EXPECT_FALSE(parse_ipv4_header(p, false));
    EXPECT_TRUE(parse_ipv4_header(p, true));  // unless the port verified it
}

TEST(inet, malformed_ipv4_headers_are_refused) {
    std::vector<std::byte> p(40);
    write_ipv4(p.data(), 1, 2, ip_proto_tcp, 20, 0, false);
    auto bad = p;
    bad[0] = std::byte{0x65};  // version 6
    EXPECT_FALSE(parse_ipv4_header(bad, true));
    bad = p;
    bad[0] = std::byte{0x44};  // IHL 4 (16 bytes)
    EXPECT_FALSE(parse_ipv4_header(bad, true));
    bad = p;
    bad[0] = std::byte{0x4f};  // IHL 15 (60 bytes) > 40 present
    EXPECT_FALSE(parse_ipv4_header(bad, true));
    bad = p;
    bytes::store_be16(bad.data() + 2, 41);  // total length past the frame
    EXPECT_FALSE(parse_ipv4_header(bad, true));
    bytes::store_be16(bad.data() + 2, 10);  // shorter than the header
    EXPECT_FALSE(parse_ipv4_header(bad, true));
    EXPECT_FALSE(parse_ipv4_header(std::span(p).subspan(0, 19), true));
}

TEST(inet, tcp_options_round_trip) {
    tcp_header h;
    h.src_port = 9092;
    h.dst_port = 40000;
    h.seq = 123;
    h.ack = 456;
    h.flags = tcp_flags::syn | tcp_flags::ack;
    h.window = 29200;
    h.options.mss = 1460;
    h.options.window_scale = 7;
    h.options.timestamps = true;
    h.options.ts_val = 11;
    h.options.ts_ecr = 22;
    std::vector<std::byte> b(60);
    size_t n = write_tcp(b.data(), h);
    EXPECT_EQ(n, 20u + 4 + 4 + 12);
    auto p = parse_tcp(std::span(b).subspan(0, n));
    ASSERT_TRUE(p);
    EXPECT_EQ(p->src_port, 9092);
    EXPECT_EQ(p->seq, 123u);
    EXPECT_EQ(p->header_bytes, n);
    EXPECT_EQ(p->options.mss, 1460);
    EXPECT_EQ(p->options.window_scale, 7);
    EXPECT_TRUE(p->options.timestamps);
    EXPECT_EQ(p->options.ts_ecr, 22u);
}

TEST(inet, malformed_tcp_headers_are_refused) {
    tcp_header h;
    h.options.mss = 1460;
    std::vector<std::byte> b(24);
    write_tcp(b.data(), h);
    auto bad = b;
    bad[12] = std::byte{0x40};  // data offset 4 words: below the minimum
    EXPECT_FALSE(parse_tcp(bad));
    bad = b;
    bad[12] = std::byte{0x70};  // 28 bytes of header in 24
    EXPECT_FALSE(parse_tcp(bad));
    bad = b;
    bad[21] = std::byte{9};  // MSS option length running past the header
    EXPECT_FALSE(parse_tcp(bad));
    bad = b;
    bad[21] = std::byte{3};  // wrong length for MSS
    EXPECT_FALSE(parse_tcp(bad));
    bad = b;
    bad[21] = std::byte{0};  // length zero would loop forever
    EXPECT_FALSE(parse_tcp(bad));
    EXPECT_FALSE(parse_tcp(std::span(b).subspan(0, 19)));
}

TEST(inet, window_scale_above_14_is_clamped) {
    auto b = bytes_of({0, 1, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0x60, 0x02, 0, 0, 0, 0, 0, 0,
                       1, 3, 3, 20});
    auto p = parse_tcp(b);
    ASSERT_TRUE(p);
    EXPECT_EQ(p->options.window_scale, 14);
}

TEST(inet, arp_round_trips_and_refuses_other_hardware) {
    arp_packet a;
    a.op = arp_request;
    a.sender_mac = {1, 2, 3, 4, 5, 6};
    a.sender_ip = 0x0a000001;
    a.target_ip = 0x0a000002;
    std::vector<std::byte> b(arp_ipv4_bytes);
    write_arp(b.data(), a);
    auto p = parse_arp(b);
    ASSERT_TRUE(p);
    EXPECT_EQ(p->sender_mac, a.sender_mac);
    EXPECT_EQ(p->target_ip, a.target_ip);
    auto bad = b;
    bad[1] = std::byte{6};  // hardware type IEEE 802
    EXPECT_FALSE(parse_arp(bad));
    bad = b;
    bad[7] = std::byte{9};  // op 9
    EXPECT_FALSE(parse_arp(bad));
    EXPECT_FALSE(parse_arp(std::span(b).subspan(0, 27)));
}

TEST(inet, parsers_survive_random_bytes) {
    std::mt19937 rng(7);
    for (int i = 0; i < 20000; ++i) {
        std::vector<std::byte> b(rng() % 80);
        for (auto& x : b) x = std::byte(rng());
        (void)parse_ethernet(b);
        (void)parse_arp(b);
        (void)parse_ipv4_header(b, false);
        if (auto t = parse_tcp(b)) {
            EXPECT_LE(t->header_bytes, b.size());
        }
    }
}

TEST(inet, dotted_quads) {
    EXPECT_EQ(parse_ipv4("198.18.0.2"), 0xc6120002u);
    EXPECT_FALSE(parse_ipv4("198.18.0"));
    EXPECT_FALSE(parse_ipv4("198.18.0.256"));
    EXPECT_FALSE(parse_ipv4("198.18.0.2.1"));
    EXPECT_FALSE(parse_ipv4(""));
    EXPECT_EQ(ipv4_to_string(0xc6120002u), "198.18.0.2");
}

}  // namespace
}  // namespace sluice::net::inet
