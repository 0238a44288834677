#pragma once
// Socket addresses (IPv4 and IPv6) and the parsers for the address strings operators write:
// "host:port", "[::1]:9092", ":9092", and Kafka listener strings such as
// "PLAINTEXT://127.0.0.1:9092" or "INTERNAL://[::1]:9093". Host names other than literal
// addresses and "localhost" are resolved with getaddrinfo(), which blocks: parse addresses at
// start-up or on control paths, never per request.

#include <netinet/in.h>
#include <sys/socket.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"

namespace sluice::net {

class socket_address {
  public:
    socket_address() = default;
    // From a sockaddr of `len` bytes (AF_INET or AF_INET6). An IPv4-mapped IPv6 address
    // (::ffff:a.b.c.d, what a dual-stack listener reports for IPv4 peers) is kept as the IPv4
    // address it maps, as Java does, so an IPv4 client looks the same on either listener.
    socket_address(const sockaddr* sa, socklen_t len);
    // Every interface, IPv6 and IPv4: the IPv6 wildcard "::", which a listener binds
    // dual-stack (IPV6_V6ONLY off). What an empty listener host means, as in Kafka.
    static socket_address any(uint16_t port);
    static socket_address ipv4_any(uint16_t port);
    static socket_address ipv4_loopback(uint16_t port);
    static socket_address ipv6_loopback(uint16_t port);

    int family() const { return _storage.ss_family; }
    uint16_t port() const;
    void set_port(uint16_t port);
    // Numeric host without brackets ("127.0.0.1", "::1").
    std::string host() const;
    // "127.0.0.1:9092" or "[::1]:9092".
    std::string to_string() const;
    bool valid() const { return _len != 0; }
    // The IPv6 wildcard "::" (any()).
    bool is_ipv6_any() const;
    // 127.0.0.0/8 or ::1 (IPv4-mapped addresses are stored as IPv4).
    bool is_loopback() const;
    // Same family and host address (ports ignored).
    bool same_host(const socket_address& other) const;

    const sockaddr* sa() const { return reinterpret_cast<const sockaddr*>(&_storage); }
    sockaddr* sa() { return reinterpret_cast<sockaddr*>(&_storage); }
    socklen_t length() const { return _len; }

    friend bool operator==(const socket_address& a, const socket_address& b);

  private:
    sockaddr_storage _storage{};
    socklen_t _len = 0;
};

// Parses "host:port". An empty host means every interface, IPv6 and IPv4 (any()): Kafka's
// `listeners=PLAINTEXT://:9092` binds the JVM's dual-stack wildcard, and clients that resolve
// "localhost" to ::1 first (Node.js 17+ on a stock /etc/hosts) must reach it. "0.0.0.0" means
// every IPv4 interface only; "[::]" is the IPv6 wildcard (dual-stack as well); "localhost" is
// 127.0.0.1; "[v6]" is an IPv6 literal; other names go through getaddrinfo.
[[nodiscard]] result<socket_address> parse_address(std::string_view host_port);

// One Kafka listener entry, "NAME://host:port".
struct listener_spec {
    std::string name;  // "PLAINTEXT", "SSL", or a custom listener name, upper-case as given
    std::string host;  // as written, without brackets; empty means all interfaces
    uint16_t port = 0;
    socket_address address;  // resolved (bind or connect) address
};
[[nodiscard]] result<listener_spec> parse_listener(std::string_view spec);
// A comma-separated `listeners=` value: "PLAINTEXT://:9092,INTERNAL://127.0.0.1:9093".
[[nodiscard]] result<std::vector<listener_spec>> parse_listeners(std::string_view specs);

}  // namespace sluice::net
