#pragma once
// Private to net/: the wire formats of the userspace TCP/IP stack (Ethernet II, ARP for IPv4,
// IPv4 without options we act on, ICMP echo, TCP with the MSS, window scale and timestamp
// options) and the Internet checksum. Pure functions over bytes: no DPDK, no state, so the
// parsers are unit-tested and fuzzed on their own (net/tests/inet_test.cc).
//
// Parsers are total: every length is checked against the bytes present, and anything that does
// not parse is reported as std::nullopt (the caller counts and drops it). Multi-byte fields are
// kept in host order in the parsed structs; addresses are host-order uint32_t.

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>

namespace sluice::net::inet {

using mac_address = std::array<uint8_t, 6>;
inline constexpr mac_address broadcast_mac{0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
using ipv4_address = uint32_t;  // host order

std::string to_string(const mac_address& m);
std::string ipv4_to_string(ipv4_address a);
// Dotted quad to host order; nullopt when it is not one.
std::optional<ipv4_address> parse_ipv4(std::string_view text);

inline constexpr uint16_t ethertype_ipv4 = 0x0800;
inline constexpr uint16_t ethertype_arp = 0x0806;
inline constexpr size_t ethernet_header_bytes = 14;
inline constexpr size_t arp_ipv4_bytes = 28;
inline constexpr size_t ipv4_header_bytes = 20;  // what we send: no options
inline constexpr size_t tcp_header_bytes = 20;   // without options
inline constexpr size_t tcp_options_max_bytes = 40;
inline constexpr uint8_t ip_proto_icmp = 1;
inline constexpr uint8_t ip_proto_tcp = 6;
inline constexpr uint8_t default_ttl = 64;

// ---- Internet checksum (RFC 1071) ----
// Adds `bytes` to a running one's-complement sum. `odd` tracks whether an odd number of bytes
// came before (so pieces of one message can be summed separately).
struct checksum {
    uint64_t sum = 0;
    bool odd = false;
    void add(std::span<const std::byte> bytes);
    void add_u16(uint16_t v) { sum += v; }
    void add_u32(uint32_t v) { sum += (v >> 16) + (v & 0xffff); }
    // The folded, complemented 16-bit value to put in a header (host order).
    uint16_t finish() const;
};
// The TCP/UDP pseudo-header's contribution (RFC 793 section 3.1).
void add_pseudo_header(checksum& c, ipv4_address src, ipv4_address dst, uint8_t proto,
                       uint16_t length);

// ---- Ethernet ----
struct ethernet_header {
    mac_address dst{};
    mac_address src{};
    uint16_t ethertype = 0;
};
std::optional<ethernet_header> parse_ethernet(std::span<const std::byte> frame);
void write_ethernet(std::byte* out, const ethernet_header& h);

// ---- ARP (RFC 826), Ethernet + IPv4 only ----
struct arp_packet {
    uint16_t op = 0;  // 1 request, 2 reply
    mac_address sender_mac{};
    ipv4_address sender_ip = 0;
    mac_address target_mac{};
    ipv4_address target_ip = 0;
};
inline constexpr uint16_t arp_request = 1;
inline constexpr uint16_t arp_reply = 2;
std::optional<arp_packet> parse_arp(std::span<const std::byte> payload);
void write_arp(std::byte* out, const arp_packet& p);

// ---- IPv4 (RFC 791) ----
struct ipv4_header {
    uint8_t header_bytes = 0;  // IHL * 4
    uint8_t tos = 0;
    uint16_t total_length = 0;
    uint16_t id = 0;
    bool dont_fragment = false;
    bool more_fragments = false;
    uint16_t fragment_offset = 0;  // in 8-byte units
    uint8_t ttl = 0;
    uint8_t protocol = 0;
    uint16_t checksum = 0;
    ipv4_address src = 0;
    ipv4_address dst = 0;
};
// Checks version, IHL, total length against the bytes present and (unless `checksum_verified`
// says the port already did) the header checksum.
std::optional<ipv4_header> parse_ipv4_header(std::span<const std::byte> packet,
                                             bool checksum_verified);
// Writes a 20-byte header with DF set; the checksum is computed unless `offload` is true (then
// the field is left zero for the port to fill).
void write_ipv4(std::byte* out, ipv4_address src, ipv4_address dst, uint8_t proto,
                uint16_t payload_bytes, uint16_t id, bool offload);

// ---- ICMP echo (RFC 792) ----
inline constexpr uint8_t icmp_echo_reply = 0;
inline constexpr uint8_t icmp_echo_request = 8;

// ---- TCP (RFC 9293, 7323) ----
namespace tcp_flags {
inline constexpr uint8_t fin = 0x01;
inline constexpr uint8_t syn = 0x02;
inline constexpr uint8_t rst = 0x04;
inline constexpr uint8_t psh = 0x08;
inline constexpr uint8_t ack = 0x10;
inline constexpr uint8_t urg = 0x20;
}  // namespace tcp_flags

struct tcp_options {
    uint16_t mss = 0;        // 0: option absent
    int8_t window_scale = -1;  // -1: absent
    bool timestamps = false;
    uint32_t ts_val = 0;
    uint32_t ts_ecr = 0;
    bool sack_permitted = false;  // parsed and ignored: this stack does not do SACK
};

struct tcp_header {
    uint16_t src_port = 0;
    uint16_t dst_port = 0;
    uint32_t seq = 0;
    uint32_t ack = 0;
    uint8_t header_bytes = 0;  // data offset * 4
    uint8_t flags = 0;
    uint16_t window = 0;  // raw (unscaled)
    uint16_t checksum = 0;
    uint16_t urgent = 0;
    tcp_options options;
};
// Parses the header and options of `segment` (the IPv4 payload). Malformed options (a length
// that runs past the header, a wrong length for a known kind) make the whole segment invalid.
std::optional<tcp_header> parse_tcp(std::span<const std::byte> segment);
// Bytes the options of a header with `o` take (padded to a multiple of 4).
size_t tcp_options_bytes(const tcp_options& o);
// Writes header + options; returns the header length. The checksum field is left zero.
size_t write_tcp(std::byte* out, const tcp_header& h);

}  // namespace sluice::net::inet
