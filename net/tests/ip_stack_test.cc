// Two userspace stacks on one reactor, joined by an in-memory wire that can drop, duplicate,
// reorder and cut frames. Everything above the link is the real code: ARP, IPv4, TCP and the
// net::connection interface the broker uses. Timeouts only stop a hung test.

#include <gtest/gtest.h>

#include <fcntl.h>
#include <unistd.h>

#include <map>
#include <random>

#include "base/bytes.h"
#include "net/errc.h"
#include "net/ip_stack.h"
#include "net/tests/test_util.h"

namespace sluice::net {
namespace {

using namespace std::chrono_literals;
using testing::framed;
using testing::pattern;

constexpr inet::ipv4_address ip_a = 0xc6120001;  // 198.18.0.1 (benchmarking range, RFC 2544)
constexpr inet::ipv4_address ip_b = 0xc6120002;

struct wire_faults {
    double loss = 0;
    double duplicate = 0;
    double reorder = 0;  // share of frames delayed by up to 3 ms
    bool cut = false;    // drop everything (a peer that vanished)
};

class test_link final : public link {
  public:
    test_link(runtime::reactor& r, inet::mac_address mac, wire_faults& f, std::mt19937& rng,
              std::shared_ptr<bool> alive)
        : _r(r), _faults(f), _rng(rng), _alive(std::move(alive)) {
        _caps.mac = mac;
    }
    const link_caps& caps() const override { return _caps; }
    void transmit(std::span<const std::byte> headers, std::span<const payload_run> payload,
                  bool) override {
        std::vector<std::byte> frame(headers.begin(), headers.end());
        for (auto& p : payload) frame.insert(frame.end(), p.data, p.data + p.size);
        ++frames;
        sent.push_back(frame);
        if (sent.size() > 64) sent.erase(sent.begin());
        std::uniform_real_distribution<double> u(0, 1);
        if (_faults.cut || u(_rng) < _faults.loss) return;
        int copies = u(_rng) < _faults.duplicate ? 2 : 1;
        for (int i = 0; i < copies; ++i) {
            auto deliver = [this, frame, alive = _alive] {
                if (*alive && dest != nullptr) {
                    dest->receive(frame);
                    dest->flush();
                }
            };
            if (u(_rng) < _faults.reorder) {
                _r.add_timer(std::chrono::microseconds(_rng() % 3000), deliver);
            } else {
                _r.defer(deliver);
            }
        }
    }
    void flush() override {}

    ip_stack* dest = nullptr;
    uint64_t frames = 0;
    std::vector<std::vector<std::byte>> sent;  // the last frames, for inspection

  private:
    runtime::reactor& _r;
    link_caps _caps;
    wire_faults& _faults;
    std::mt19937& _rng;
    std::shared_ptr<bool> _alive;
};

class ip_stack_test : public ::testing::Test {
  protected:
    void SetUp() override {
        auto r = runtime::reactor::create({});
        ASSERT_TRUE(r);
        reactor = std::move(*r);
        link_a = std::make_unique<test_link>(*reactor, inet::mac_address{2, 0, 0, 0, 0, 1},
                                             faults, rng, alive);
        link_b = std::make_unique<test_link>(*reactor, inet::mac_address{2, 0, 0, 0, 0, 2},
                                             faults, rng, alive);
    }
    void start(ip_stack_config base = {}) {
        base.netmask = 0xffffff00;
        base.tcp.rto_initial = 200ms;
        base.tcp.rto_min = 20ms;
        base.tcp.time_wait = 200ms;
        ip_stack_config ca = base;
        ca.ip = ip_a;
        ip_stack_config cb = base;
        cb.ip = ip_b;
        a = std::make_unique<ip_stack>(*reactor, *link_a, std::make_shared<arp_table>(), ca);
        b = std::make_unique<ip_stack>(*reactor, *link_b, std::make_shared<arp_table>(), cb);
        link_a->dest = b.get();
        link_b->dest = a.get();
    }
    void TearDown() override {
        *alive = false;
        a.reset();
        b.reset();
        for (int i = 0; i < 20; ++i) reactor->run_once(1ms);
    }

    // An echo server on b:9092: every frame comes back framed.
    void serve_echo(listen_options o = {}) {
        auto l = b->listen(9092, o, [this](connection_ptr c) {
            server_conns.push_back(c);
            c->start({.on_frames =
                          [c](std::span<frame> frames) {
                              for (auto& f : frames) {
                                  c->send(testing::one_piece(framed(f.bytes())));
                              }
                          },
                      .on_close = [this](const error&) { ++server_closed; }});
        });
        ASSERT_TRUE(l);
        server = std::move(*l);
    }

    struct client {
        connection_ptr conn;
        std::vector<std::vector<std::byte>> received;
        std::optional<error> closed;
        bool failed = false;
    };
    std::shared_ptr<client> connect_client(inet::ipv4_address to = ip_b, uint16_t port = 9092,
                                           connect_options o = {}) {
        auto cl = std::make_shared<client>();
        a->connect(to, port, o, [cl](result<connection_ptr> c) {
            if (!c) {
                cl->failed = true;
                cl->closed = c.error();
                return;
            }
            cl->conn = *c;
            cl->conn->start({.on_frames =
                                 [cl](std::span<frame> frames) {
                                     for (auto& f : frames) {
                                         cl->received.emplace_back(f.bytes().begin(),
                                                                   f.bytes().end());
                                     }
                                 },
                             .on_close = [cl](const error& e) { cl->closed = e; }});
        });
        return cl;
    }

    bool run_until(const std::function<bool()>& done, std::chrono::seconds limit = 60s) {
        return testing::run_until(*reactor, done, limit);
    }

    // Sends `count` frames of `size` bytes and checks that every byte comes back in order.
    void echo_exchange(size_t count, size_t size) {
        serve_echo();
        auto cl = connect_client();
        ASSERT_TRUE(run_until([&] { return cl->conn != nullptr || cl->failed; }));
        ASSERT_FALSE(cl->failed) << cl->closed->describe();
        for (size_t i = 0; i < count; ++i) {
            cl->conn->send(testing::one_piece(framed(pattern(size, static_cast<uint32_t>(i)))));
        }
        ASSERT_TRUE(run_until([&] { return cl->received.size() == count || cl->closed; }))
            << "received " << cl->received.size() << "\na:\n" << a->describe_flows() << "b:\n"
            << b->describe_flows();
        ASSERT_EQ(cl->received.size(), count);
        for (size_t i = 0; i < count; ++i) {
            ASSERT_EQ(cl->received[i], pattern(size, static_cast<uint32_t>(i))) << "frame " << i;
        }
        cl->conn->close();
        ASSERT_TRUE(run_until([&] { return cl->closed.has_value() && server_closed == 1; }));
        // Both sides finish the close handshake and free the flows.
        ASSERT_TRUE(run_until([&] { return a->stats().flows == 0 && b->stats().flows == 0; }));
    }

    // A TCP segment to b:9092 from a forged address nobody answers for (198.18.0.80).
    std::vector<std::byte> forged(uint16_t sport, uint32_t seq, uint32_t ackno, uint8_t flags) {
        std::vector<std::byte> f(54);
        inet::write_ethernet(f.data(),
                             {link_b->caps().mac, {2, 9, 9, 9, 9, 9}, inet::ethertype_ipv4});
        inet::write_ipv4(f.data() + 14, 0xc6120050, ip_b, inet::ip_proto_tcp, 20, 0, false);
        inet::tcp_header h;
        h.src_port = sport;
        h.dst_port = 9092;
        h.seq = seq;
        h.ack = ackno;
        h.flags = flags;
        h.window = 65535;
        inet::write_tcp(f.data() + 34, h);
        inet::checksum cs;
        inet::add_pseudo_header(cs, 0xc6120050, ip_b, inet::ip_proto_tcp, 20);
        cs.add(std::span(f).subspan(34));
        bytes::store_be16(f.data() + 34 + 16, cs.finish());
        return f;
    }

    std::unique_ptr<runtime::reactor> reactor;
    std::shared_ptr<bool> alive = std::make_shared<bool>(true);
    wire_faults faults;
    std::mt19937 rng{12345};
    std::unique_ptr<test_link> link_a;
    std::unique_ptr<test_link> link_b;
    std::unique_ptr<ip_stack> a;
    std::unique_ptr<ip_stack> b;
    std::unique_ptr<listener> server;
    std::vector<connection_ptr> server_conns;
    int server_closed = 0;
};

TEST_F(ip_stack_test, connects_through_arp_and_echoes_byte_exact) {
    start();
    echo_exchange(200, 3000);
    EXPECT_GE(a->stats().arp_requests_sent, 1u);
    EXPECT_GE(b->stats().arp_replies_sent, 1u);
}

TEST_F(ip_stack_test, long_transfer_survives_loss_duplication_and_reordering) {
    faults.loss = 0.03;
    faults.duplicate = 0.03;
    faults.reorder = 0.05;
    start();
    echo_exchange(400, 20'000);  // 8 MB each way
}

TEST_F(ip_stack_test, many_concurrent_connections) {
    start();
    serve_echo();
    std::vector<std::shared_ptr<client>> clients;
    for (int i = 0; i < 200; ++i) clients.push_back(connect_client());
    ASSERT_TRUE(run_until([&] {
        for (auto& c : clients)
            if (!c->conn && !c->failed) return false;
        return true;
    }));
    for (size_t i = 0; i < clients.size(); ++i) {
        ASSERT_FALSE(clients[i]->failed);
        clients[i]->conn->send(testing::one_piece(framed(pattern(500, static_cast<uint32_t>(i)))));
    }
    ASSERT_TRUE(run_until([&] {
        for (auto& c : clients)
            if (c->received.empty()) return false;
        return true;
    }));
    for (size_t i = 0; i < clients.size(); ++i) {
        EXPECT_EQ(clients[i]->received[0], pattern(500, static_cast<uint32_t>(i)));
        clients[i]->conn->close();
    }
    ASSERT_TRUE(run_until([&] { return a->stats().flows == 0 && b->stats().flows == 0; }));
}

TEST_F(ip_stack_test, listener_connection_limit_refuses_the_excess) {
    start();
    listen_options o;
    o.max_connections = 3;
    serve_echo(o);
    std::vector<std::shared_ptr<client>> clients;
    connect_options co;
    co.timeout = 1500ms;
    for (int i = 0; i < 5; ++i) clients.push_back(connect_client(ip_b, 9092, co));
    ASSERT_TRUE(run_until([&] {
        for (auto& c : clients)
            if (!c->conn && !c->failed) return false;
        return true;
    }));
    int ok = 0;
    for (auto& c : clients) ok += c->conn != nullptr ? 1 : 0;
    EXPECT_EQ(ok, 3);
    EXPECT_GE(b->stats().dropped_syn_limit, 2u);
}

TEST_F(ip_stack_test, connect_to_a_closed_port_is_refused) {
    start();
    auto cl = connect_client(ip_b, 9999);
    ASSERT_TRUE(run_until([&] { return cl->failed; }));
    EXPECT_EQ(cl->closed->code(), make_error_code(errc::connect_failed));
    EXPECT_NE(cl->closed->describe().find("refused"), std::string::npos);
}

TEST_F(ip_stack_test, connect_to_an_absent_host_times_out) {
    start();
    connect_options o;
    o.timeout = 700ms;
    auto cl = connect_client(0xc6120009, 9092, o);  // nobody answers ARP for .9
    ASSERT_TRUE(run_until([&] { return cl->failed; }));
    EXPECT_NE(cl->closed->describe().find("timed out"), std::string::npos);
    EXPECT_GE(a->stats().arp_requests_sent, 2u);  // asked again while waiting
}

TEST_F(ip_stack_test, vanished_peer_is_timed_out_mid_transfer) {
    ip_stack_config c;
    c.tcp.user_timeout = 1500ms;
    start(c);
    serve_echo();
    auto cl = connect_client();
    ASSERT_TRUE(run_until([&] { return cl->conn != nullptr; }));
    faults.cut = true;
    cl->conn->send(testing::one_piece(framed(pattern(200'000, 1))));
    ASSERT_TRUE(run_until([&] { return cl->closed.has_value(); }, 30s));
    EXPECT_EQ(cl->closed->code(), make_error_code(errc::io_error));
    EXPECT_NE(cl->closed->describe().find("timed out"), std::string::npos);
}

TEST_F(ip_stack_test, paused_receiver_closes_the_window_and_loses_nothing) {
    ip_stack_config c;
    c.tcp.recv_buffer_bytes = 64 * 1024;
    start(c);
    connection_ptr server_conn;
    std::vector<std::byte> got;
    auto l = b->listen(9092, {}, [&](connection_ptr conn) {
        server_conn = conn;
        conn->start({.on_frames =
                         [&](std::span<frame> frames) {
                             for (auto& f : frames) got.insert(got.end(), f.bytes().begin(),
                                                               f.bytes().end());
                         },
                     .on_close = [](const error&) {}});
        conn->pause_receive();
    });
    ASSERT_TRUE(l);
    auto cl = connect_client();
    ASSERT_TRUE(run_until([&] { return cl->conn != nullptr && server_conn != nullptr; }));
    auto payload = pattern(1'000'000, 9);
    cl->conn->send(testing::one_piece(framed(payload)));
    // The receiver's window fills and the sender is left holding the rest.
    ASSERT_TRUE(run_until([&] { return cl->conn->bytes_queued() > 0; }));
    for (int i = 0; i < 200; ++i) reactor->run_once(1ms);
    EXPECT_GT(cl->conn->bytes_queued(), 800'000u);
    EXPECT_TRUE(got.empty());
    server_conn->resume_receive();
    ASSERT_TRUE(run_until([&] { return got.size() == payload.size(); }));
    EXPECT_EQ(got, payload);
}

TEST_F(ip_stack_test, file_regions_are_sent_from_the_page_cache_mapping) {
    start();
    serve_echo();
    auto cl = connect_client();
    ASSERT_TRUE(run_until([&] { return cl->conn != nullptr; }));
    char path[] = "/tmp/sluice-ipstack-XXXXXX";
    int fd = ::mkstemp(path);
    ASSERT_GE(fd, 0);
    ::unlink(path);
    auto body = pattern(300'000, 4);
    auto file_bytes = framed(body);
    ASSERT_EQ(::write(fd, file_bytes.data(), file_bytes.size()),
              static_cast<ssize_t>(file_bytes.size()));
    output o;
    o.append(file_region{make_shared_fd(fd), 0, static_cast<uint32_t>(file_bytes.size())});
    cl->conn->send(std::move(o));
    ASSERT_TRUE(run_until([&] { return !cl->received.empty(); }));
    EXPECT_EQ(cl->received[0], body);
    EXPECT_EQ(cl->conn->stats().file_bytes_mapped, file_bytes.size());
}

TEST_F(ip_stack_test, answers_icmp_echo) {
    start();
    // A hand-made echo request from a's MAC to b.
    std::vector<std::byte> f(inet::ethernet_header_bytes + inet::ipv4_header_bytes + 8 + 32);
    inet::write_ethernet(f.data(), {link_b->caps().mac, link_a->caps().mac, inet::ethertype_ipv4});
    inet::write_ipv4(f.data() + 14, ip_a, ip_b, inet::ip_proto_icmp, 40, 1, false);
    std::byte* icmp = f.data() + 34;
    icmp[0] = std::byte{8};
    for (int i = 0; i < 32; ++i) icmp[8 + i] = std::byte(i);
    inet::checksum c;
    c.add({icmp, 40});
    bytes::store_be16(icmp + 2, c.finish());
    b->receive(f);
    EXPECT_EQ(b->stats().icmp_echo_replies, 1u);
    auto& reply = link_b->sent.back();
    EXPECT_EQ(static_cast<uint8_t>(reply[34]), 0);  // echo reply
    EXPECT_TRUE(std::equal(reply.begin() + 42, reply.end(), f.begin() + 42));
    inet::checksum rc;
    rc.add(std::span(reply).subspan(34));
    EXPECT_EQ(rc.finish(), 0);
}

TEST_F(ip_stack_test, malformed_frames_are_dropped_and_the_stack_keeps_serving) {
    start();
    serve_echo();
    auto cl = connect_client();
    ASSERT_TRUE(run_until([&] { return cl->conn != nullptr; }));
    // Capture one real data segment from a to b, then mangle copies of it.
    cl->conn->send(testing::one_piece(framed(pattern(100, 1))));
    ASSERT_TRUE(run_until([&] { return cl->received.size() == 1; }));
    std::vector<std::byte> good;
    for (auto& s : link_a->sent) {
        if (s.size() > 54 + 50) good = s;
    }
    ASSERT_FALSE(good.empty());
    auto before = b->stats();
    std::vector<std::vector<std::byte>> bad;
    bad.push_back({good.begin(), good.begin() + 10});  // shorter than Ethernet
    auto v = good;
    v[14] = std::byte{0x46};  // IPv4 IHL 6 without options: checksum fails
    bad.push_back(v);
    v = good;
    v[14 + 20 + 12] = std::byte{0xf0};  // TCP data offset 60 bytes
    bad.push_back(v);
    v = good;
    v.back() ^= std::byte{0xff};  // payload corrupted: TCP checksum fails
    bad.push_back(v);
    v = good;
    bytes::store_be16(v.data() + 14 + 6, 0x2000);  // a fragment (with a good header checksum)
    bytes::store_be16(v.data() + 14 + 10, 0);
    {
        inet::checksum ic;
        ic.add(std::span(v).subspan(14, 20));
        bytes::store_be16(v.data() + 14 + 10, ic.finish());
    }
    bad.push_back(v);
    v = good;
    bytes::store_be16(v.data() + 12, 0x86dd);  // IPv6
    bad.push_back(v);
    std::mt19937 r(3);
    for (int i = 0; i < 2000; ++i) {
        auto w = good;
        w[14 + r() % (w.size() - 14)] = std::byte(r());
        bad.push_back(w);
    }
    for (auto& f : bad) b->receive(f);
    auto after = b->stats();
    EXPECT_GE(after.dropped_malformed - before.dropped_malformed, 2u);
    EXPECT_GE(after.dropped_checksum - before.dropped_checksum, 100u);
    EXPECT_GE(after.dropped_not_ours - before.dropped_not_ours, 2u);
    // Still serving: the same connection and a new one.
    cl->conn->send(testing::one_piece(framed(pattern(5000, 2))));
    auto cl2 = connect_client();
    ASSERT_TRUE(run_until([&] { return cl->received.size() == 2 && cl2->conn; }));
    EXPECT_EQ(cl->received[1], pattern(5000, 2));
}

TEST_F(ip_stack_test, syn_flood_is_bounded_and_established_connections_go_on) {
    ip_stack_config c;
    c.max_half_open = 32;
    start(c);
    serve_echo();
    auto cl = connect_client();
    // Established on both ends (the server's side once the final ACK is in).
    ASSERT_TRUE(run_until([&] { return cl->conn != nullptr && !server_conns.empty(); }));
    // SYNs from a spoofed address nobody answers for.
    for (int i = 0; i < 500; ++i) {
        b->receive(forged(static_cast<uint16_t>(10000 + i), static_cast<uint32_t>(i * 7919), 0,
                          inet::tcp_flags::syn));
    }
    EXPECT_GE(b->stats().syn_cookies_sent, 400u);
    // A forged ACK that does not carry a valid cookie opens nothing (and gets a RST).
    {
        auto resets = b->stats().resets_sent;
        // No flow on this port (the flood's are 10000..10499).
        b->receive(forged(60001, 7919 + 1, 0x12345678, inet::tcp_flags::ack));
        EXPECT_EQ(b->stats().syn_cookies_accepted, 0u);
        EXPECT_EQ(b->stats().resets_sent, resets + 1);
    }
    EXPECT_LE(b->stats().flows, 33u);  // the budget held: 32 half-open plus the real one
    cl->conn->send(testing::one_piece(framed(pattern(10'000, 5))));
    ASSERT_TRUE(run_until([&] { return cl->received.size() == 1; }, 10s))
        << "b: flows " << b->stats().flows << " in " << b->stats().frames_in << " out "
        << b->stats().frames_out << " malformed " << b->stats().dropped_malformed << " cks "
        << b->stats().dropped_checksum << " notours " << b->stats().dropped_not_ours
        << " rst " << b->stats().resets_sent << "; a out " << a->stats().frames_out << " in "
        << a->stats().frames_in << " notours " << a->stats().dropped_not_ours << " queued "
        << cl->conn->bytes_queued() << " open " << cl->conn->is_open();
    EXPECT_EQ(cl->received[0], pattern(10'000, 5));
    // A new client while the budget is still full gets in through a SYN cookie and carries
    // data both ways.
    auto late = connect_client();
    ASSERT_TRUE(run_until([&] { return late->conn != nullptr || late->failed; }, 20s))
        << "b: flows " << b->stats().flows << " cookies " << b->stats().syn_cookies_sent
        << " dropped " << b->stats().dropped_syn_limit << " in " << b->stats().frames_in
        << " resets " << b->stats().resets_sent << "; a: flows " << a->stats().flows
        << " out " << a->stats().frames_out << " arp " << a->stats().arp_requests_sent;
    EXPECT_FALSE(late->failed);
    late->conn->send(testing::one_piece(framed(pattern(200'000, 6))));
    ASSERT_TRUE(run_until([&] { return late->received.size() == 1; }));
    EXPECT_EQ(late->received[0], pattern(200'000, 6));
    EXPECT_EQ(b->stats().syn_cookies_accepted, 1u);
}

TEST_F(ip_stack_test, peer_reset_is_reported_as_peer_closed) {
    start();
    serve_echo();
    auto cl = connect_client();
    ASSERT_TRUE(run_until([&] { return cl->conn != nullptr && !server_conns.empty(); }));
    b->shutdown();  // aborts: RST to a
    ASSERT_TRUE(run_until([&] { return cl->closed.has_value(); }));
    EXPECT_EQ(cl->closed->code(), make_error_code(errc::peer_closed));
}

}  // namespace
}  // namespace sluice::net
