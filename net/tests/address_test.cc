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

TEST(address, empty_host_and_any_mean_all_interfaces) {
    auto a = net::parse_address(":9092");
    ASSERT_TRUE(a);
    EXPECT_EQ(a->host(), "0.0.0.0");
    auto b = net::parse_address("0.0.0.0:1");
    ASSERT_TRUE(b);
    EXPECT_EQ(*a == *b, false);  // ports differ
    EXPECT_EQ(b->host(), "0.0.0.0");
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
    EXPECT_EQ(any->address.host(), "0.0.0.0");

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
    auto d = net::make_network_stack("dpdk");
    ASSERT_FALSE(d);
    EXPECT_TRUE(d.error().is(net::errc::stack_not_built));
    EXPECT_NE(d.error().describe().find("not built"), std::string::npos);
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
    EXPECT_FALSE(v4("[2001:db8::1]:1").is_loopback());
    EXPECT_TRUE(v4("10.0.0.1:1").same_host(v4("10.0.0.1:9092")));
    EXPECT_FALSE(v4("10.0.0.1:1").same_host(v4("10.0.0.2:1")));
    EXPECT_FALSE(v4("127.0.0.1:1").same_host(v4("[::1]:1")));
    EXPECT_TRUE(v4("[2001:db8::1]:1").same_host(v4("[2001:db8::1]:2")));
}
