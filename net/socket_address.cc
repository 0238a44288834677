#include "net/socket_address.h"

#include <arpa/inet.h>
#include <netdb.h>

#include <cstring>

#include "net/errc.h"

namespace sluice::net {

socket_address::socket_address(const sockaddr* sa, socklen_t len) {
    if (len <= 0 || static_cast<size_t>(len) > sizeof _storage) return;
    if (sa->sa_family == AF_INET6 && static_cast<size_t>(len) >= sizeof(sockaddr_in6)) {
        const auto* in6 = reinterpret_cast<const sockaddr_in6*>(sa);
        if (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr)) {
            sockaddr_in in{};
            in.sin_family = AF_INET;
            in.sin_port = in6->sin6_port;
            std::memcpy(&in.sin_addr, &in6->sin6_addr.s6_addr[12], sizeof in.sin_addr);
            std::memcpy(&_storage, &in, sizeof in);
            _len = sizeof in;
            return;
        }
    }
    if (sa->sa_family == AF_INET || sa->sa_family == AF_INET6) {
        std::memcpy(&_storage, sa, len);
        _len = len;
    }
}

namespace {

socket_address ipv4(uint32_t host_order, uint16_t port) {
    sockaddr_in in{};
    in.sin_family = AF_INET;
    in.sin_addr.s_addr = htonl(host_order);
    in.sin_port = htons(port);
    return socket_address(reinterpret_cast<const sockaddr*>(&in), sizeof in);
}

socket_address ipv6(const in6_addr& a, uint16_t port) {
    sockaddr_in6 in6{};
    in6.sin6_family = AF_INET6;
    in6.sin6_addr = a;
    in6.sin6_port = htons(port);
    return socket_address(reinterpret_cast<const sockaddr*>(&in6), sizeof in6);
}

}  // namespace

socket_address socket_address::any(uint16_t port) { return ipv6(in6addr_any, port); }
socket_address socket_address::ipv4_any(uint16_t port) { return ipv4(INADDR_ANY, port); }
socket_address socket_address::ipv4_loopback(uint16_t port) { return ipv4(INADDR_LOOPBACK, port); }
socket_address socket_address::ipv6_loopback(uint16_t port) { return ipv6(in6addr_loopback, port); }

uint16_t socket_address::port() const {
    if (family() == AF_INET)
        return ntohs(reinterpret_cast<const sockaddr_in*>(&_storage)->sin_port);
    if (family() == AF_INET6) {
        return ntohs(reinterpret_cast<const sockaddr_in6*>(&_storage)->sin6_port);
    }
    return 0;
}

void socket_address::set_port(uint16_t port) {
    if (family() == AF_INET) reinterpret_cast<sockaddr_in*>(&_storage)->sin_port = htons(port);
    if (family() == AF_INET6) reinterpret_cast<sockaddr_in6*>(&_storage)->sin6_port = htons(port);
}

std::string socket_address::host() const {
    char buf[INET6_ADDRSTRLEN] = {};
    if (family() == AF_INET) {
        inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(&_storage)->sin_addr, buf,
                  sizeof buf);
    } else if (family() == AF_INET6) {
        inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6*>(&_storage)->sin6_addr, buf,
                  sizeof buf);
    } else {
        return "?";
    }
    return buf;
}

std::string socket_address::to_string() const {
    if (family() == AF_INET6) return "[" + host() + "]:" + std::to_string(port());
    return host() + ":" + std::to_string(port());
}

bool socket_address::is_ipv6_any() const {
    return family() == AF_INET6 &&
           IN6_IS_ADDR_UNSPECIFIED(&reinterpret_cast<const sockaddr_in6*>(&_storage)->sin6_addr);
}

bool socket_address::is_loopback() const {
    if (family() == AF_INET) {
        auto addr = ntohl(reinterpret_cast<const sockaddr_in*>(&_storage)->sin_addr.s_addr);
        return (addr >> 24) == 127;
    }
    if (family() == AF_INET6) {
        const in6_addr& a = reinterpret_cast<const sockaddr_in6*>(&_storage)->sin6_addr;
        return IN6_IS_ADDR_LOOPBACK(&a);
    }
    return false;
}

bool socket_address::same_host(const socket_address& other) const {
    if (family() != other.family()) return false;
    if (family() == AF_INET) {
        return reinterpret_cast<const sockaddr_in*>(&_storage)->sin_addr.s_addr ==
               reinterpret_cast<const sockaddr_in*>(&other._storage)->sin_addr.s_addr;
    }
    if (family() == AF_INET6) {
        return std::memcmp(&reinterpret_cast<const sockaddr_in6*>(&_storage)->sin6_addr,
                           &reinterpret_cast<const sockaddr_in6*>(&other._storage)->sin6_addr,
                           sizeof(in6_addr)) == 0;
    }
    return false;
}

bool operator==(const socket_address& a, const socket_address& b) {
    return a._len == b._len && std::memcmp(&a._storage, &b._storage, a._len) == 0;
}

namespace {

result<uint16_t> parse_port(std::string_view s, std::string_view whole) {
    if (s.empty() || s.size() > 5)
        return error(errc::address_invalid, "bad port in '" + std::string(whole) + "'");
    uint32_t v = 0;
    for (char c : s) {
        if (c < '0' || c > '9')
            return error(errc::address_invalid, "bad port in '" + std::string(whole) + "'");
        v = v * 10 + static_cast<uint32_t>(c - '0');
    }
    if (v > 65535)
        return error(errc::address_invalid, "port out of range in '" + std::string(whole) + "'");
    return static_cast<uint16_t>(v);
}

struct host_port {
    std::string host;  // without brackets
    bool bracketed = false;
    uint16_t port = 0;
};

result<host_port> split_host_port(std::string_view s) {
    host_port hp;
    size_t colon;
    if (!s.empty() && s.front() == '[') {
        size_t close = s.find(']');
        if (close == std::string_view::npos || close + 1 >= s.size() || s[close + 1] != ':') {
            return error(errc::address_invalid, "expected [v6]:port, got '" + std::string(s) + "'");
        }
        hp.host = std::string(s.substr(1, close - 1));
        hp.bracketed = true;
        colon = close + 1;
    } else {
        colon = s.rfind(':');
        if (colon == std::string_view::npos) {
            return error(errc::address_invalid, "expected host:port, got '" + std::string(s) + "'");
        }
        hp.host = std::string(s.substr(0, colon));
        if (hp.host.find(':') != std::string::npos) {
            return error(errc::address_invalid,
                         "IPv6 host needs brackets in '" + std::string(s) + "'");
        }
    }
    auto port = parse_port(s.substr(colon + 1), s);
    if (!port) return port.error();
    hp.port = *port;
    return hp;
}

result<socket_address> resolve(const host_port& hp) {
    if (hp.host.empty()) return socket_address::any(hp.port);
    if (hp.host == "0.0.0.0") return socket_address::ipv4_any(hp.port);
    if (hp.host == "localhost") return socket_address::ipv4_loopback(hp.port);
    sockaddr_in in{};
    if (inet_pton(AF_INET, hp.host.c_str(), &in.sin_addr) == 1) {
        in.sin_family = AF_INET;
        in.sin_port = htons(hp.port);
        return socket_address(reinterpret_cast<const sockaddr*>(&in), sizeof in);
    }
    sockaddr_in6 in6{};
    if (inet_pton(AF_INET6, hp.host.c_str(), &in6.sin6_addr) == 1) {
        in6.sin6_family = AF_INET6;
        in6.sin6_port = htons(hp.port);
        return socket_address(reinterpret_cast<const sockaddr*>(&in6), sizeof in6);
    }
    if (hp.bracketed) return error(errc::address_invalid, "bad IPv6 literal '" + hp.host + "'");
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* res = nullptr;
    int rc = getaddrinfo(hp.host.c_str(), nullptr, &hints, &res);
    if (rc != 0 || res == nullptr) {
        return error(errc::address_invalid,
                     "cannot resolve '" + hp.host + "': " + gai_strerror(rc));
    }
    socket_address a(res->ai_addr, res->ai_addrlen);
    freeaddrinfo(res);
    a.set_port(hp.port);
    if (!a.valid()) return error(errc::address_invalid, "no usable address for '" + hp.host + "'");
    return a;
}

}  // namespace

result<socket_address> parse_address(std::string_view s) {
    auto hp = split_host_port(s);
    if (!hp) return hp.error();
    return resolve(*hp);
}

result<listener_spec> parse_listener(std::string_view s) {
    size_t sep = s.find("://");
    if (sep == std::string_view::npos || sep == 0) {
        return error(errc::address_invalid,
                     "expected NAME://host:port, got '" + std::string(s) + "'");
    }
    listener_spec spec;
    spec.name = std::string(s.substr(0, sep));
    for (char c : spec.name) {
        bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                  c == '_' || c == '-';
        if (!ok)
            return error(errc::address_invalid, "bad listener name in '" + std::string(s) + "'");
    }
    auto hp = split_host_port(s.substr(sep + 3));
    if (!hp) return hp.error();
    spec.host = hp->host;
    spec.port = hp->port;
    auto addr = resolve(*hp);
    if (!addr) return addr.error();
    spec.address = *addr;
    return spec;
}

result<std::vector<listener_spec>> parse_listeners(std::string_view specs) {
    std::vector<listener_spec> out;
    while (!specs.empty()) {
        size_t comma = specs.find(',');
        std::string_view one = specs.substr(0, comma);
        while (!one.empty() && one.front() == ' ') one.remove_prefix(1);
        while (!one.empty() && one.back() == ' ') one.remove_suffix(1);
        if (!one.empty()) {
            auto spec = parse_listener(one);
            if (!spec) return spec.error();
            out.push_back(std::move(*spec));
        }
        if (comma == std::string_view::npos) break;
        specs.remove_prefix(comma + 1);
    }
    if (out.empty()) return error(errc::address_invalid, "no listeners given");
    return out;
}

}  // namespace sluice::net
