#include <arpa/inet.h>
#include <gtest/gtest.h>

#include "net/errc.h"
#include "net/network_stack.h"
#include "net/socket_address.h"

using namespace sluice;

TEST(address, host_port_ipv4) {
    auto a = net::parse_address("127.0.0.1:9092");
    ASSERT_TRUE(a) << a.error().describe();
    EXPECT_EQ(a->family(), AF_INET);
    EXPECT_EQ(a->port(), 9092);
    EXPECT_EQ(a->to_string(), "127.0.0.1:9092");
}

TEST(address, empty_host_means_every_interface_ipv6_and_ipv4) {
    // Kafka's `listeners=PLAINTEXT://:9092` binds the JVM's dual-stack wildcard; so does ours.
    auto a = net::parse_address(":9092");
    ASSERT_TRUE(a);
    EXPECT_EQ(a->family(), AF_INET6);
    EXPECT_EQ(a->host(), "::");
    EXPECT_TRUE(a->is_ipv6_any());
    EXPECT_EQ(*a, net::socket_address::any(9092));
    EXPECT_EQ(a->to_string(), "[::]:9092");
    auto v6 = net::parse_address("[::]:9092");
    ASSERT_TRUE(v6);
    EXPECT_TRUE(v6->is_ipv6_any());
}

TEST(address, zero_address_means_every_ipv4_interface) {
    auto b = net::parse_address("0.0.0.0:1");
    ASSERT_TRUE(b);
    EXPECT_EQ(b->family(), AF_INET);
    EXPECT_EQ(b->host(), "0.0.0.0");
    EXPECT_FALSE(b->is_ipv6_any());
    EXPECT_FALSE(net::parse_address("[::1]:1")->is_ipv6_any());
}

TEST(address, ipv4_mapped_addresses_are_kept_as_ipv4) {
    // What a dual-stack listener's accept reports for an IPv4 client.
    sockaddr_in6 in6{};
    in6.sin6_family = AF_INET6;
    in6.sin6_port = htons(4321);
    ASSERT_EQ(inet_pton(AF_INET6, "::ffff:127.0.0.1", &in6.sin6_addr), 1);
    net::socket_address a(reinterpret_cast<const sockaddr*>(&in6), sizeof in6);
    ASSERT_TRUE(a.valid());
    EXPECT_EQ(a.family(), AF_INET);
    EXPECT_EQ(a.length(), sizeof(sockaddr_in));
    EXPECT_EQ(a.to_string(), "127.0.0.1:4321");
    EXPECT_EQ(a, net::parse_address("127.0.0.1:4321").value());
    EXPECT_EQ(net::parse_address("[::ffff:10.1.2.3]:9").value().to_string(), "10.1.2.3:9");
}

TEST(address, localhost_and_ipv6_brackets) {
    auto a = net::parse_address("localhost:0");
    ASSERT_TRUE(a);
    EXPECT_EQ(a->host(), "127.0.0.1");
    auto b = net::parse_address("[::1]:9093");
    ASSERT_TRUE(b);
    EXPECT_EQ(b->family(), AF_INET6);
    EXPECT_EQ(b->to_string(), "[::1]:9093");
}

TEST(address, rejects_bad_input) {
    for (const char* s : {"", "127.0.0.1", "127.0.0.1:", "127.0.0.1:65536", "127.0.0.1:9x",
                          "::1:9092", "[::1]9092", "[::1", "[zz]:1"}) {
        auto a = net::parse_address(s);
        ASSERT_FALSE(a) << s;
        EXPECT_TRUE(a.error().is(net::errc::address_invalid)) << s;
    }
}

TEST(address, kafka_listener_strings) {
    auto l = net::parse_listener("PLAINTEXT://127.0.0.1:9092");
    ASSERT_TRUE(l) << l.error().describe();
    EXPECT_EQ(l->name, "PLAINTEXT");
    EXPECT_EQ(l->host, "127.0.0.1");
    EXPECT_EQ(l->port, 9092);
    EXPECT_EQ(l->address.to_string(), "127.0.0.1:9092");

    auto any = net::parse_listener("PLAINTEXT://:9092");
    ASSERT_TRUE(any);
    EXPECT_EQ(any->host, "");
    EXPECT_TRUE(any->address.is_ipv6_any());
    EXPECT_EQ(any->address.port(), 9092);

    auto v6 = net::parse_listener("INTERNAL://[::1]:9093");
    ASSERT_TRUE(v6);
    EXPECT_EQ(v6->host, "::1");
    EXPECT_EQ(v6->address.family(), AF_INET6);

    EXPECT_FALSE(net::parse_listener("127.0.0.1:9092"));
    EXPECT_FALSE(net::parse_listener("://127.0.0.1:9092"));
    EXPECT_FALSE(net::parse_listener("PLAIN TEXT://127.0.0.1:9092"));
}

TEST(address, listener_lists) {
    auto ls = net::parse_listeners("PLAINTEXT://:9092, INTERNAL://localhost:9093");
    ASSERT_TRUE(ls) << ls.error().describe();
    ASSERT_EQ(ls->size(), 2u);
    EXPECT_EQ((*ls)[1].name, "INTERNAL");
    EXPECT_EQ((*ls)[1].address.to_string(), "127.0.0.1:9093");
    EXPECT_FALSE(net::parse_listeners(""));
    EXPECT_FALSE(net::parse_listeners("PLAINTEXT://:9092,bogus"));
}

TEST(stack, chosen_by_name) {
    auto p = net::make_network_stack("posix");
    ASSERT_TRUE(p);
    EXPECT_EQ((*p)->name(), "posix");
    // dpdk needs its own address before anything starts (and says so); without DPDK in the
    // build it says that instead. Neither starts the EAL here.
    auto d = net::make_network_stack("dpdk");
    ASSERT_FALSE(d);
#ifdef SLUICE_HAVE_DPDK
    EXPECT_TRUE(d.error().is(net::errc::address_invalid));
    EXPECT_NE(d.error().describe().find("sluice.dpdk.ip"), std::string::npos);
#else
    EXPECT_TRUE(d.error().is(net::errc::stack_not_built));
    EXPECT_NE(d.error().describe().find("not built"), std::string::npos);
#endif
    // auto falls back to posix (with a log line) when dpdk cannot start.
    auto a = net::make_network_stack("auto");
    ASSERT_TRUE(a);
    EXPECT_EQ((*a)->name(), "posix");
    auto u = net::make_network_stack("carrier-pigeon");
    ASSERT_FALSE(u);
    EXPECT_TRUE(u.error().is(net::errc::stack_unknown));
}

TEST(address, loopback_and_same_host) {
    auto v4 = [](const char* s) { return net::parse_address(s).value(); };
    EXPECT_TRUE(v4("127.0.0.1:1").is_loopback());
    EXPECT_TRUE(v4("127.4.5.6:1").is_loopback());
    EXPECT_TRUE(v4("[::1]:1").is_loopback());
    EXPECT_TRUE(v4("[::ffff:127.0.0.1]:1").is_loopback());
    EXPECT_FALSE(v4("10.0.0.1:1").is_loopback());
    EXPECT_FALSE(v4("[::ffff:10.0.0.1]:1").is_loopback());
    EXPECT_TRUE(v4("[::ffff:127.0.0.1]:1").same_host(v4("127.0.0.1:2")));
    EXPECT_FALSE(v4("[2001:db8::1]:1").is_loopback());
    EXPECT_TRUE(v4("10.0.0.1:1").same_host(v4("10.0.0.1:9092")));
    EXPECT_FALSE(v4("10.0.0.1:1").same_host(v4("10.0.0.2:1")));
    EXPECT_FALSE(v4("127.0.0.1:1").same_host(v4("[::1]:1")));
    EXPECT_TRUE(v4("[2001:db8::1]:1").same_host(v4("[2001:db8::1]:2")));
}
