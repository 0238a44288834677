#include <fcntl.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <thread>

#include <cstring>

#include "net/mapped_files.h"
#include "net/tests/test_util.h"

using namespace sluice;
using namespace sluice::net;
using namespace sluice::net::testing;
using namespace std::chrono_literals;

namespace {

std::vector<std::byte> to_vec(const frame& f) {
    return {f.data(), f.data() + f.size()};
}

// A temporary file filled with a known pattern, unlinked on destruction.
struct temp_file {
    explicit temp_file(size_t n) : contents(pattern(n, 77)) {
        char path[] = "/tmp/sluice_net_XXXXXX";
        int fd = ::mkstemp(path);
        EXPECT_GE(fd, 0);
        ::unlink(path);
        size_t off = 0;
        while (off < n) {
            ssize_t w = ::write(fd, contents.data() + off, n - off);
            EXPECT_GT(w, 0);
            off += static_cast<size_t>(w);
        }
        file = make_shared_fd(fd);
    }
    file_region region(uint64_t offset, uint32_t length) const { return {file, offset, length}; }
    std::vector<std::byte> slice(size_t offset, size_t length) const {
        return {contents.begin() + static_cast<ptrdiff_t>(offset),
                contents.begin() + static_cast<ptrdiff_t>(offset + length)};
    }
    std::vector<std::byte> contents;
    shared_fd file;
};

}  // namespace

class connection_test : public net_fixture {
protected:
    // Memory, file regions larger than the pipe and shared buffers, sent as one output.
    void check_mixed_pieces(bool inline_splice, connection_options::cached_send how,
                            const std::string& congestion = "cubic");
    void check_region_past_end(listen_options opts, uint64_t offset, uint32_t length);
    // Sends a frame of each size (distinct patterns) to an echo server; every one must come
    // back byte-exact and in order.
    void echo_and_check(endpoint& client, const std::vector<size_t>& sizes) {
        std::vector<std::vector<std::byte>> sent;
        for (size_t i = 0; i < sizes.size(); ++i) {
            sent.push_back(pattern(sizes[i], static_cast<uint32_t>(i)));
            client.conn->send(one_piece(framed(sent.back())));
        }
        ASSERT_TRUE(run_until(*reactor, [&] { return client.frames.size() == sizes.size(); }));
        for (size_t i = 0; i < sizes.size(); ++i) {
            EXPECT_EQ(to_vec(client.frames[i]), sent[i]) << "frame " << i << " of " << sizes[i];
        }
    }
};

TEST_F(connection_test, echo_of_many_sizes_across_recv_boundaries) {
    auto addr = start_echo_server();
    auto& client = connect(addr);
    std::vector<size_t> sizes = {
        0,     1,     2,     3,     4,       5,       100,           4095,   4096,
        65531, 65532, 65536, 65537, 100'000, 1 << 20, (1 << 20) + 3, 8 << 20};
    ASSERT_NO_FATAL_FAILURE(echo_and_check(client, sizes));
    EXPECT_FALSE(client.closed());
    EXPECT_EQ(client.conn->stats().frames_received, sizes.size());
}

// Multishot receives into the reactor's provided-buffer ring: both ends use them; frames of
// every size arrive byte-exact; pausing stops delivery (the armed receive is cancelled) and
// resuming delivers what came meanwhile; the connection closes cleanly with one in flight.
TEST_F(connection_test, multishot_receives_through_provided_buffers) {
    if (reactor->receive_buffers() == nullptr) GTEST_SKIP() << "no buffer rings in this kernel";
    listen_options opts;
    opts.connection.recv_multishot = true;
    auto addr = start_echo_server(opts);
    connect_options copts;
    copts.connection.recv_multishot = true;
    auto& client = connect(addr, copts);
    std::vector<size_t> sizes = {0, 1, 4095, 16384, 16385, 65536, 100'000, 1 << 20, 3 << 20};
    ASSERT_NO_FATAL_FAILURE(echo_and_check(client, sizes));
    auto& server = *servers[0]->conn;
    server.pause_receive();
    for (int i = 0; i < 5; ++i) reactor->run_once(1ms);
    client.conn->send(one_piece(framed(pattern(50'000, 77))));
    for (int i = 0; i < 30; ++i) reactor->run_once(1ms);
    EXPECT_EQ(client.frames.size(), sizes.size());  // nothing echoed while paused
    server.resume_receive();
    ASSERT_TRUE(run_until(*reactor, [&] { return client.frames.size() == sizes.size() + 1; }));
    EXPECT_EQ(to_vec(client.frames.back()), pattern(50'000, 77));
    EXPECT_FALSE(client.closed());
    EXPECT_GT(server.stats().provided_buffer_receives, 0u);
    EXPECT_GT(client.conn->stats().provided_buffer_receives, 0u);
}

TEST_F(connection_test, frame_trickled_a_few_bytes_at_a_time) {
    auto addr = start_echo_server();
    auto& client = connect(addr);
    auto payload = pattern(300, 9);
    auto wire = framed(payload);
    // 1, 2, 3 ... byte pieces, each in its own send and loop turn, so the prefix and the body
    // are split over several recvs on the server.
    size_t off = 0;
    for (size_t step = 1; off < wire.size(); ++step) {
        size_t n = std::min(step, wire.size() - off);
        client.conn->send(one_piece({wire.begin() + static_cast<ptrdiff_t>(off),
                                     wire.begin() + static_cast<ptrdiff_t>(off + n)}));
        off += n;
        reactor->run_once(1ms);
        reactor->run_once(1ms);
    }
    ASSERT_TRUE(run_until(*reactor, [&] { return client.frames.size() == 1; }));
    EXPECT_EQ(to_vec(client.frames[0]), payload);
}

TEST_F(connection_test, many_frames_pipelined_in_one_send_arrive_in_batches) {
    auto addr = start_echo_server();
    auto& client = connect(addr);
    constexpr size_t n = 2000;
    std::vector<std::byte> wire;
    for (size_t i = 0; i < n; ++i) {
        auto f = framed(pattern(i % 37, static_cast<uint32_t>(i)));
        wire.insert(wire.end(), f.begin(), f.end());
    }
    client.conn->send(one_piece(std::move(wire)));
    ASSERT_TRUE(run_until(*reactor, [&] { return client.frames.size() == n; }));
    for (size_t i = 0; i < n; ++i) {
        ASSERT_EQ(to_vec(client.frames[i]), pattern(i % 37, static_cast<uint32_t>(i))) << i;
    }
    ASSERT_EQ(servers.size(), 1u);
    EXPECT_EQ(servers[0]->conn->stats().frames_received, n);
    EXPECT_LT(servers[0]->frame_calls, n);  // several frames per handler call
}

TEST_F(connection_test, frame_over_max_closes_that_connection_only) {
    listen_options opts;
    opts.connection.max_frame_bytes = 1024;
    auto addr = start_echo_server(opts);
    auto& bad = connect(addr);
    auto& good = connect(addr);
    good.conn->send(one_piece(framed(pattern(1024, 1))));  // exactly the limit is fine
    bad.conn->send(one_piece(framed(pattern(1025, 2))));
    ASSERT_TRUE(run_until(*reactor, [&] { return bad.closed() && good.frames.size() == 1; }));
    EXPECT_TRUE(bad.close_reason.is(errc::peer_closed)) << bad.close_reason.describe();
    ASSERT_EQ(servers.size(), 2u);
    int too_large = 0;
    for (auto& s : servers) {
        if (s->closed()) {
            EXPECT_TRUE(s->close_reason.is(errc::frame_too_large)) << s->close_reason.describe();
            EXPECT_NE(s->close_reason.detail().find("1025"), std::string::npos);
            ++too_large;
        }
    }
    EXPECT_EQ(too_large, 1);
    // The other connection keeps working.
    good.conn->send(one_piece(framed(pattern(10, 3))));
    ASSERT_TRUE(run_until(*reactor, [&] { return good.frames.size() == 2; }));
    EXPECT_EQ(to_vec(good.frames[1]), pattern(10, 3));
    EXPECT_FALSE(good.closed());
}

TEST_F(connection_test, negative_and_absurd_size_prefixes_close_without_allocating) {
    auto addr = start_echo_server();  // default max: 100 MiB
    auto& negative = connect(addr);
    auto& absurd = connect(addr);
    negative.conn->send(one_piece({std::byte(0x80), std::byte(0), std::byte(0), std::byte(1)}));
    absurd.conn->send(one_piece({std::byte(0x7f), std::byte(0xff), std::byte(0xff), std::byte(0xff),
                                 std::byte(1), std::byte(2)}));
    ASSERT_TRUE(run_until(*reactor, [&] {
        if (!negative.closed() || !absurd.closed() || servers.size() != 2) return false;
        return servers[0]->closed() && servers[1]->closed();
    }));
    int invalid = 0, large = 0;
    for (auto& s : servers) {
        invalid += s->close_reason.is(errc::frame_size_invalid);
        large += s->close_reason.is(errc::frame_too_large);
        EXPECT_LE(s->recv_capacity_at_close, default_recv_buffer_bytes);
        EXPECT_EQ(s->close_calls, 1);
    }
    EXPECT_EQ(invalid, 1);
    EXPECT_EQ(large, 1);
}

using cached_send = connection_options::cached_send;

TEST_F(connection_test, mixed_pieces_arrive_byte_exact_and_in_order) {
    check_mixed_pieces(true, cached_send::splice);
}

TEST_F(connection_test, mixed_pieces_through_io_uring_splice_workers) {
    check_mixed_pieces(false, cached_send::automatic);
}

TEST_F(connection_test, mixed_pieces_sent_from_mappings) {
    check_mixed_pieces(true, cached_send::mapped);
}

TEST_F(connection_test, automatic_splices_to_a_same_host_peer_without_pacing) {
    check_mixed_pieces(true, cached_send::automatic, "cubic");
}

TEST_F(connection_test, automatic_maps_for_a_same_host_peer_whose_socket_paces) {
    // Needs the bbr module; the kernel loads it on first use where modules are allowed.
    int probe = ::socket(AF_INET, SOCK_STREAM, 0);
    bool has_bbr = ::setsockopt(probe, IPPROTO_TCP, TCP_CONGESTION, "bbr", 3) == 0;
    ::close(probe);
    if (!has_bbr) GTEST_SKIP() << "no bbr congestion control on this kernel";
    check_mixed_pieces(true, cached_send::automatic, "bbr");
}

void connection_test::check_mixed_pieces(bool inline_splice, cached_send how,
                                         const std::string& congestion) {
    temp_file file(4 << 20);
    auto tail_buffer = shared_buffer::copy_of(pattern(10, 5));
    std::vector<std::byte> expected;
    auto add = [&](const std::vector<std::byte>& v) {
        expected.insert(expected.end(), v.begin(), v.end());
    };
    add(pattern(100, 1));
    add(file.slice(0, 3 << 20));  // larger than the pipe (1 MiB at most)
    add(pattern(10, 5));
    add(file.slice(12345, 1'500'000));  // unaligned offset, larger than the pipe too
    add(pattern(7, 6));
    listen_options opts;
    opts.connection.inline_file_splice = inline_splice;
    opts.connection.cached_file_send = how;
    opts.connection.same_host_tcp_congestion = congestion;
    auto addr = start_server(opts, [&](endpoint& ep, std::span<frame>) {
        output out;
        out.append(prefix(static_cast<uint32_t>(expected.size())));
        out.append(pattern(100, 1));
        out.append(file.region(0, 3 << 20));
        out.append(tail_buffer);
        out.append(file.region(12345, 1'500'000));
        out.append(pattern(7, 6));
        ep.conn->send(std::move(out));
    });
    auto& client = connect(addr);
    client.conn->send(one_piece(framed(pattern(3, 3))));
    ASSERT_TRUE(run_until(*reactor, [&] { return client.frames.size() == 1; }));
    EXPECT_TRUE(to_vec(client.frames[0]) == expected);
    EXPECT_EQ(servers[0]->conn->bytes_queued(), 0u);
    const auto& st = servers[0]->conn->stats();
    const uint64_t file_bytes = (3u << 20) + 1'500'000u;
    EXPECT_EQ(st.file_bytes_copied, 0u);
    // The temp file is in the page cache, so an inline path carries it when enabled: the
    // mapped one when asked for, or by default for this loopback peer when its socket paces.
    bool mapped = inline_splice && (how == cached_send::mapped ||
                                    (how == cached_send::automatic && congestion == "bbr"));
    if (mapped) {
        EXPECT_EQ(st.file_bytes_mapped, file_bytes);
        EXPECT_EQ(st.file_bytes_spliced, 0u);
    } else {
        EXPECT_EQ(st.file_bytes_spliced, file_bytes);
        EXPECT_EQ(st.file_bytes_mapped, 0u);
        if (inline_splice) {
            EXPECT_GT(st.file_bytes_spliced_inline, 0u);
        } else {
            EXPECT_EQ(st.file_bytes_spliced_inline, 0u);
        }
    }
}

TEST_F(connection_test, file_regions_without_splice_use_the_copy_path) {
    temp_file file(1 << 20);
    listen_options opts;
    opts.connection.splice_file_regions = false;
    auto addr = start_server(opts, [&](endpoint& ep, std::span<frame>) {
        output out;
        out.append(prefix(600'000 + 3));
        out.append(file.region(4097, 600'000));
        out.append(pattern(3, 1));
        ep.conn->send(std::move(out));
    });
    auto& client = connect(addr);
    client.conn->send(one_piece(framed({})));
    ASSERT_TRUE(run_until(*reactor, [&] { return client.frames.size() == 1; }));
    auto expected = file.slice(4097, 600'000);
    auto tail = pattern(3, 1);
    expected.insert(expected.end(), tail.begin(), tail.end());
    EXPECT_TRUE(to_vec(client.frames[0]) == expected);
    EXPECT_EQ(servers[0]->conn->stats().file_bytes_copied, 600'000u);
    EXPECT_EQ(servers[0]->conn->stats().file_bytes_spliced, 0u);
}

// A region reaching past the end of its file closes the connection with file_region_short.
void connection_test::check_region_past_end(listen_options opts, uint64_t offset,
                                            uint32_t length) {
    temp_file file(1000);
    auto addr = start_server(opts, [&](endpoint& ep, std::span<frame>) {
        output out;
        out.append(prefix(length));
        out.append(file.region(offset, length));
        ep.conn->send(std::move(out));
    });
    auto& client = connect(addr);
    client.conn->send(one_piece(framed({})));
    ASSERT_TRUE(run_until(*reactor, [&] { return servers.size() == 1 && servers[0]->closed(); }));
    EXPECT_TRUE(servers[0]->close_reason.is(errc::file_region_short))
        << servers[0]->close_reason.describe();
    EXPECT_EQ(servers[0]->conn->stats().file_bytes_mapped, 0u);
}

TEST_F(connection_test, region_past_end_of_file_closes_with_error) {
    check_region_past_end({}, 500, 4996);
}

TEST_F(connection_test, mapped_region_past_end_of_file_closes_with_error) {
    // The region ends inside the file's only page, which is cached: a mapping would read zeros
    // there instead of failing, so the connection must notice the short file itself.
    listen_options opts;
    opts.connection.cached_file_send = cached_send::mapped;
    check_region_past_end(opts, 500, 1000);
}

// Responses of alternating shapes (memory only; memory + file region; file region only) sent
// in many separate send() calls keep their order on the wire.
TEST_F(connection_test, many_concurrent_sends_keep_their_order) {
    temp_file file(256 << 10);
    auto addr = start_server({}, [&](endpoint& ep, std::span<frame> fs) {
        for (auto& f : fs) {
            uint32_t seq = bytes::load_be32(f.data());
            uint32_t region_len = (seq % 3 == 0) ? 0 : (seq * 7919) % (200 << 10) + 1;
            output out;
            out.append(prefix(4 + region_len));
            out.append(framed({}) /* 4 bytes, overwritten below */);
            bytes::store_be32(std::get<std::vector<std::byte>>(out.pieces().back()).data(), seq);
            if (region_len > 0) out.append(file.region(seq % 1000, region_len));
            ep.conn->send(std::move(out));
        }
    });
    auto& client = connect(addr);
    constexpr uint32_t n = 600;
    for (uint32_t seq = 0; seq < n; ++seq) {
        std::vector<std::byte> body(4 + seq % 50);
        bytes::store_be32(body.data(), seq);
        client.conn->send(one_piece(framed(body)));
    }
    ASSERT_TRUE(run_until(*reactor, [&] { return client.frames.size() == n; }));
    for (uint32_t seq = 0; seq < n; ++seq) {
        const frame& f = client.frames[seq];
        ASSERT_GE(f.size(), 4u);
        ASSERT_EQ(bytes::load_be32(f.data()), seq);
        uint32_t region_len = (seq % 3 == 0) ? 0 : (seq * 7919) % (200 << 10) + 1;
        ASSERT_EQ(f.size(), 4u + region_len);
        ASSERT_TRUE(std::memcmp(f.data() + 4, file.contents.data() + seq % 1000, region_len) == 0)
            << seq;
    }
}

TEST_F(connection_test, peer_disconnect_mid_frame_reports_close_once) {
    auto addr = start_echo_server();
    auto& client = connect(addr);
    auto wire = framed(pattern(1000, 1));
    wire.resize(4 + 10);
    client.conn->send(one_piece(std::move(wire)));
    ASSERT_TRUE(run_until(*reactor, [&] {
        return servers.size() == 1 && servers[0]->conn->stats().bytes_received == 14;
    }));
    client.conn->close();
    ASSERT_TRUE(run_until(*reactor, [&] { return servers[0]->closed() && client.closed(); }));
    for (int i = 0; i < 5; ++i) reactor->run_once(1ms);
    EXPECT_EQ(servers[0]->close_calls, 1);
    EXPECT_TRUE(servers[0]->close_reason.is(errc::peer_closed));
    EXPECT_NE(servers[0]->close_reason.detail().find("mid-frame"), std::string::npos);
    EXPECT_EQ(client.close_calls, 1);
    EXPECT_TRUE(client.close_reason.is(errc::closed));
    EXPECT_FALSE(client.conn->is_open());
    client.conn->send(one_piece(framed(pattern(3, 3))));  // ignored after close
    EXPECT_EQ(client.conn->bytes_queued(), 0u);
}

TEST_F(connection_test, connection_limit_closes_the_excess) {
    listen_options opts;
    opts.max_connections = 2;
    auto addr = start_echo_server(opts);
    auto& a = connect(addr);
    auto& b = connect(addr);
    ASSERT_TRUE(run_until(*reactor, [&] { return servers.size() == 2; }));
    auto& c = connect(addr);  // the kernel completes the handshake; Sluice closes it
    ASSERT_TRUE(run_until(*reactor, [&] { return c.closed(); }));
    EXPECT_TRUE(c.close_reason.is(errc::peer_closed)) << c.close_reason.describe();
    EXPECT_EQ(servers.size(), 2u);
    EXPECT_EQ(listeners[0]->connection_count(), 2u);
    // Closing one frees a slot.
    a.conn->close();
    ASSERT_TRUE(run_until(*reactor, [&] { return listeners[0]->connection_count() == 1; }));
    auto& d = connect(addr);
    d.conn->send(one_piece(framed(pattern(5, 5))));
    ASSERT_TRUE(run_until(*reactor, [&] { return d.frames.size() == 1; }));
    EXPECT_EQ(servers.size(), 3u);
    EXPECT_FALSE(b.closed());
}

// Zero-copy sends: large memory runs go out with SENDMSG_ZC, small ones and file regions as
// before, all byte-exact and in order; the pieces outlive the send until the kernel is done.
TEST_F(connection_test, zero_copy_sends_arrive_byte_exact_and_in_order) {
    listen_options opts;
    opts.connection.send_zc_min_bytes = 64 * 1024;
    temp_file file(300 * 1024);
    auto addr = start_server(opts, [&](endpoint& ep, std::span<frame> fs) {
        for (auto& f : fs) {
            uint32_t n = static_cast<uint32_t>(f.size());
            // Answer: the request's size in KiB of pattern, a shared buffer and a file region.
            std::vector<std::byte> big = pattern(n * 1024, n);
            shared_buffer tail = shared_buffer::copy_of(pattern(1000, n + 1));
            output out;
            out.append(prefix(static_cast<uint32_t>(big.size() + tail.size() + 4096)));
            out.append(std::move(big));
            out.append(std::move(tail));
            out.append(file.region(0, 4096));
            ep.conn->send(std::move(out));
        }
    });
    auto& client = connect(addr);
    std::vector<uint32_t> sizes = {1, 200, 3, 512, 64, 1024, 2};
    for (uint32_t n : sizes) client.conn->send(one_piece(framed(pattern(n, 0))));
    ASSERT_TRUE(run_until(*reactor, [&] { return client.frames.size() == sizes.size(); }));
    for (size_t i = 0; i < sizes.size(); ++i) {
        uint32_t n = sizes[i];
        std::vector<std::byte> want = pattern(n * 1024, n);
        auto tail = pattern(1000, n + 1);
        want.insert(want.end(), tail.begin(), tail.end());
        auto region = file.slice(0, 4096);
        want.insert(want.end(), region.begin(), region.end());
        EXPECT_EQ(to_vec(client.frames[i]), want) << "answer " << i;
    }
    const auto& st = servers[0]->conn->stats();
    EXPECT_GE(st.zero_copy_bytes_sent, (200u + 512u + 64u + 1024u) * 1024u);
    EXPECT_LT(st.zero_copy_bytes_sent, st.bytes_sent);
}

TEST_F(connection_test, pause_stops_delivery_until_resume) {
    connection* server_conn = nullptr;
    size_t delivered = 0;
    auto addr = start_server({}, [&](endpoint& ep, std::span<frame> fs) {
        server_conn = ep.conn.get();
        delivered += fs.size();
        ep.conn->pause_receive();
    });
    auto& client = connect(addr);
    client.conn->send(one_piece(framed(pattern(10, 1))));
    ASSERT_TRUE(run_until(*reactor, [&] { return delivered == 1; }));
    EXPECT_TRUE(server_conn->receive_paused());
    for (int i = 0; i < 5; ++i) client.conn->send(one_piece(framed(pattern(10, 2))));
    for (int i = 0; i < 20; ++i) reactor->run_once(1ms);
    EXPECT_EQ(delivered, 1u);
    // Resume repeatedly: every resume delivers what has arrived, then pauses again.
    ASSERT_TRUE(run_until(*reactor, [&] {
        if (server_conn->receive_paused()) server_conn->resume_receive();
        return delivered == 6;
    }));
}

// Pause and resume from outside a handler, while a recv is in flight into the buffer.
TEST_F(connection_test, pause_and_resume_outside_handlers_keep_the_stream_intact) {
    auto addr = start_echo_server();
    auto& client = connect(addr);
    client.conn->send(one_piece(framed(pattern(10, 1))));
    ASSERT_TRUE(run_until(*reactor, [&] { return client.frames.size() == 1; }));
    auto& server = *servers[0]->conn;
    for (int round = 0; round < 3; ++round) {
        server.pause_receive();
        server.resume_receive();
        for (int i = 0; i < 3; ++i) reactor->run_once(1ms);
        server.pause_receive();
        client.conn->send(one_piece(framed(pattern(20, 2 + round))));
        for (int i = 0; i < 10; ++i) reactor->run_once(1ms);
        EXPECT_EQ(client.frames.size(), 1u + round);
        server.resume_receive();
        ASSERT_TRUE(run_until(*reactor, [&] { return client.frames.size() == 2u + round; }));
        EXPECT_EQ(to_vec(client.frames.back()), pattern(20, 2 + round));
    }
    EXPECT_FALSE(client.closed());
}

TEST_F(connection_test, bytes_queued_counts_unsent_bytes) {
    connection* server_conn = nullptr;
    auto addr = start_server({}, [&](endpoint& ep, std::span<frame>) {
        server_conn = ep.conn.get();
        ep.conn->send(one_piece(framed(pattern(4 << 20, 1))));
    });
    auto& client = connect(addr);
    client.conn->send(one_piece(framed({})));
    ASSERT_TRUE(run_until(*reactor, [&] { return server_conn != nullptr; }));
    EXPECT_GT(server_conn->bytes_queued(), 0u);
    ASSERT_TRUE(run_until(*reactor, [&] { return client.frames.size() == 1; }));
    EXPECT_EQ(server_conn->bytes_queued(), 0u);
    EXPECT_EQ(server_conn->stats().bytes_sent, (4u << 20) + 4);
}

TEST_F(connection_test, on_drain_fires_when_the_queue_empties) {
    auto addr = start_echo_server();
    int drains = 0;
    size_t got = 0;
    bool done = false;
    stack->connect(*reactor, addr, {}, [&](result<connection_ptr> c) {
        ASSERT_TRUE(c);
        clients.push_back(std::make_unique<endpoint>());
        auto* ep = clients.back().get();
        ep->conn = *c;
        ep->conn->start(connection_handlers{
            .on_frames = [&](std::span<frame> fs) { got += fs.size(); },
            .on_close = [ep](const error&) { ++ep->close_calls; },
            .on_drain = [&] { ++drains; },
        });
        ep->conn->send(one_piece(framed(pattern(2 << 20, 1))));
        EXPECT_GT(ep->conn->bytes_queued(), 0u);
        done = true;
    });
    ASSERT_TRUE(run_until(*reactor, [&] { return done && got == 1; }));
    EXPECT_GE(drains, 1);
    EXPECT_EQ(clients[0]->conn->bytes_queued(), 0u);
}

TEST_F(connection_test, close_after_send_delivers_the_answer_then_closes) {
    auto addr = start_server({}, [](endpoint& ep, std::span<frame>) {
        ep.conn->send(one_piece(framed(pattern(3 << 20, 8))));
        ep.conn->close_after_send();
        ep.conn->send(one_piece(framed(pattern(5, 5))));  // ignored: closing
    });
    auto& client = connect(addr);
    client.conn->send(one_piece(framed({})));
    ASSERT_TRUE(run_until(*reactor, [&] { return client.closed() && servers[0]->closed(); }));
    ASSERT_EQ(client.frames.size(), 1u);
    EXPECT_EQ(to_vec(client.frames[0]), pattern(3 << 20, 8));
    EXPECT_TRUE(servers[0]->close_reason.is(errc::closed)) << servers[0]->close_reason.describe();
    EXPECT_TRUE(client.close_reason.is(errc::peer_closed));
}

TEST_F(connection_test, local_close_reports_closed_once) {
    auto addr = start_echo_server();
    auto& client = connect(addr);
    client.conn->close();
    client.conn->close();
    ASSERT_TRUE(run_until(
        *reactor, [&] { return client.closed() && servers.size() == 1 && servers[0]->closed(); }));
    EXPECT_EQ(client.close_calls, 1);
    EXPECT_TRUE(client.close_reason.is(errc::closed));
    EXPECT_TRUE(servers[0]->close_reason.is(errc::peer_closed));
}

TEST_F(connection_test, dropped_pointer_keeps_connection_until_closed) {
    auto addr = start_echo_server();
    std::weak_ptr<connection> weak;
    size_t got = 0;
    int closes = 0;
    bool connected = false;
    stack->connect(*reactor, addr, {}, [&](result<connection_ptr> c) {
        ASSERT_TRUE(c);
        connection* raw = c->get();
        weak = *c;
        (*c)->start(connection_handlers{
            .on_frames =
                [&, raw](std::span<frame> fs) {
                    got += fs.size();
                    raw->close();
                },
            .on_close = [&](const error&) { ++closes; },
        });
        (*c)->send(one_piece(framed(pattern(100, 1))));
        connected = true;
        // The only connection_ptr goes out of scope here.
    });
    ASSERT_TRUE(run_until(*reactor, [&] { return connected; }));
    EXPECT_FALSE(weak.expired());  // alive: a recv is in flight
    ASSERT_TRUE(run_until(*reactor, [&] { return closes == 1; }));
    for (int i = 0; i < 3; ++i) reactor->run_once(1ms);
    EXPECT_EQ(got, 1u);
    EXPECT_TRUE(weak.expired());  // freed once closed and idle
}

TEST_F(connection_test, connect_to_a_closed_port_fails) {
    // Bind a port, then close it, so nothing listens there.
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    auto any = socket_address::ipv4_loopback(0);
    ASSERT_EQ(::bind(fd, any.sa(), any.length()), 0);
    sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len);
    socket_address addr(reinterpret_cast<sockaddr*>(&ss), len);
    ::close(fd);
    bool done = false;
    stack->connect(*reactor, addr, {}, [&](result<connection_ptr> c) {
        done = true;
        ASSERT_FALSE(c);
        EXPECT_TRUE(c.error().is(errc::connect_failed));
        EXPECT_NE(c.error().detail().find("refused"), std::string::npos) << c.error().describe();
    });
    ASSERT_TRUE(run_until(*reactor, [&] { return done; }));
}

TEST_F(connection_test, connect_that_cannot_complete_fails_within_its_timeout) {
    // 192.0.2.0/24 is TEST-NET-1: never routed. Depending on the sandbox the connect times out
    // or fails at once (no route); either way the callback reports connect_failed.
    auto addr = parse_address("192.0.2.1:9092");
    ASSERT_TRUE(addr);
    connect_options opts;
    opts.timeout = 100ms;
    bool done = false;
    stack->connect(*reactor, *addr, opts, [&](result<connection_ptr> c) {
        done = true;
        ASSERT_FALSE(c);
        EXPECT_TRUE(c.error().is(errc::connect_failed)) << c.error().describe();
    });
    ASSERT_TRUE(run_until(*reactor, [&] { return done; }));
}

TEST_F(connection_test, connect_times_out_when_the_peer_never_answers) {
    // A listening socket that never accepts: once its accept queue is full the kernel drops
    // further SYNs, so those handshakes never complete.
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    auto any = socket_address::ipv4_loopback(0);
    ASSERT_EQ(::bind(fd, any.sa(), any.length()), 0);
    ASSERT_EQ(::listen(fd, 0), 0);
    sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len);
    socket_address addr(reinterpret_cast<sockaddr*>(&ss), len);
    connect_options opts;
    opts.timeout = 200ms;
    constexpr int n = 8;
    int done = 0, timed_out = 0;
    std::vector<connection_ptr> ok;
    for (int i = 0; i < n; ++i) {
        stack->connect(*reactor, addr, opts, [&](result<connection_ptr> c) {
            ++done;
            if (c) {
                ok.push_back(*c);
                return;
            }
            EXPECT_TRUE(c.error().is(errc::connect_failed));
            timed_out += c.error().detail().find("timed out") != std::string::npos;
        });
    }
    ASSERT_TRUE(run_until(*reactor, [&] { return done == n; }));
    EXPECT_GT(timed_out, 0);
    int closed = 0;
    for (auto& c : ok) {
        c->start({.on_close = [&](const error&) { ++closed; }});
        c->close();
    }
    ASSERT_TRUE(run_until(*reactor, [&] { return closed == static_cast<int>(ok.size()); }));
    ::close(fd);
}

TEST_F(connection_test, ipv6_loopback_echo) {
    auto addr = listen_on(socket_address::ipv6_loopback(0), {}, echo_frames);
    if (!addr) GTEST_SKIP() << "no IPv6 loopback: " << addr.error().describe();
    EXPECT_EQ(addr->family(), AF_INET6);
    auto& client = connect(*addr);
    client.conn->send(one_piece(framed(pattern(77, 1))));
    ASSERT_TRUE(run_until(*reactor, [&] { return client.frames.size() == 1; }));
    EXPECT_EQ(to_vec(client.frames[0]), pattern(77, 1));
}

// A listener on every interface (an empty listener host) takes IPv4 and IPv6 clients alike,
// and reports an IPv4 client's address as IPv4, not as ::ffff:a.b.c.d.
TEST_F(connection_test, every_interface_listener_accepts_ipv4_and_ipv6_clients) {
    auto addr = listen_on(parse_address(":0").value(), {}, echo_frames);
    ASSERT_TRUE(addr) << addr.error().describe();
    uint16_t port = addr->port();
    bool dual = addr->is_ipv6_any();
    int probe = ::socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (probe < 0) {
        EXPECT_EQ(errno, EAFNOSUPPORT);
        EXPECT_FALSE(dual);
        GTEST_SKIP() << "no IPv6 here: the listener fell back to every IPv4 interface";
    }
    ::close(probe);
    ASSERT_TRUE(dual) << "listening on " << listeners.back()->local_address().to_string();

    auto& v4 = connect(socket_address::ipv4_loopback(port));
    v4.conn->send(one_piece(framed(pattern(40, 4))));
    ASSERT_TRUE(run_until(*reactor, [&] { return v4.frames.size() == 1; }));
    EXPECT_EQ(to_vec(v4.frames[0]), pattern(40, 4));
    auto& v6 = connect(socket_address::ipv6_loopback(port));
    v6.conn->send(one_piece(framed(pattern(60, 6))));
    ASSERT_TRUE(run_until(*reactor, [&] { return v6.frames.size() == 1; }));
    EXPECT_EQ(to_vec(v6.frames[0]), pattern(60, 6));

    ASSERT_EQ(servers.size(), 2u);
    EXPECT_EQ(servers[0]->conn->peer_address().family(), AF_INET);
    EXPECT_EQ(servers[0]->conn->peer_address().host(), "127.0.0.1");
    EXPECT_EQ(servers[1]->conn->peer_address().family(), AF_INET6);
    EXPECT_EQ(servers[1]->conn->peer_address().host(), "::1");
}

// Two reactors on two threads listen on one port with SO_REUSEPORT; the kernel spreads the
// connections, and both cores accept and serve.
TEST(reuse_port, two_reactors_on_two_threads_share_one_port) {
    auto stack = make_network_stack("posix");
    ASSERT_TRUE(stack);
    std::atomic<uint16_t> port{0};
    std::atomic<int> accepted[2] = {0, 0};
    std::atomic<bool> stop{false};
    std::atomic<int> ready{0};
    auto serve = [&](int core) {
        auto r = runtime::reactor::create({.core = static_cast<unsigned>(core)});
        ASSERT_TRUE(r);
        runtime::reactor& re = **r;
        if (core == 1) {
            while (port.load() == 0) std::this_thread::sleep_for(1ms);
        }
        std::vector<connection_ptr> conns;
        auto l = (*stack)->listen(
            re, socket_address::ipv4_loopback(port.load()), {}, [&](connection_ptr c) {
                ++accepted[core];
                connection* raw = c.get();
                c->start(connection_handlers{
                    .on_frames =
                        [raw](std::span<frame> fs) {
                            for (auto& f : fs) {
                                output out;
                                out.append(prefix(static_cast<uint32_t>(f.size())));
                                out.append(std::move(f));
                                raw->send(std::move(out));
                            }
                        },
                    .on_close = [](const error&) {},
                });
                conns.push_back(std::move(c));
            });
        ASSERT_TRUE(l) << l.error().describe();
        if (core == 0) port = (*l)->local_address().port();
        ++ready;
        while (!stop) re.run_once(5ms);
        bool closed = false;
        (*l)->close([&] { closed = true; });
        for (auto& c : conns) c->close();
        re.run_until([&] {
            if (!closed) return false;
            for (auto& c : conns)
                if (c.use_count() > 1) return false;
            return true;
        });
    };
    std::thread t0(serve, 0), t1(serve, 1);
    while (ready.load() < 2) std::this_thread::sleep_for(1ms);

    auto r = runtime::reactor::create({});
    ASSERT_TRUE(r);
    runtime::reactor& re = **r;
    constexpr int n = 64;
    std::vector<connection_ptr> clients;
    int echoed = 0, closed = 0;
    for (int i = 0; i < n; ++i) {
        (*stack)->connect(
            re, socket_address::ipv4_loopback(port.load()), {}, [&](result<connection_ptr> c) {
                ASSERT_TRUE(c) << c.error().describe();
                (*c)->start(connection_handlers{
                    .on_frames =
                        [&](std::span<frame> fs) { echoed += static_cast<int>(fs.size()); },
                    .on_close = [&](const error&) { ++closed; },
                });
                (*c)->send(one_piece(framed(pattern(64, 1))));
                clients.push_back(*c);
            });
    }
    EXPECT_TRUE(run_until(re, [&] { return echoed == n; }));
    for (auto& c : clients) c->close();
    EXPECT_TRUE(run_until(re, [&] { return closed == n; }));
    stop = true;
    t0.join();
    t1.join();
    EXPECT_EQ(accepted[0] + accepted[1], n);
    EXPECT_GT(accepted[0].load(), 0);
    EXPECT_GT(accepted[1].load(), 0);
}

TEST_F(connection_test, mapped_files_reuse_grow_and_release_idle_mappings) {
    temp_file file(100'000);
    auto cache = std::make_shared<mapped_files>(*reactor, 50ms);
    auto first = cache->map(file.region(10, 1000));
    ASSERT_NE(first, nullptr);
    EXPECT_EQ(first->length(), mapped_files::growth_step);
    auto expected = file.slice(10, 1000);
    EXPECT_EQ(std::memcmp(first->at(10), expected.data(), expected.size()), 0);
    // A later region of the same file inside the mapping: the same mapping, no new mmap.
    auto again = cache->map(file.region(90'000, 10'000));
    EXPECT_EQ(again.get(), first.get());
    // Past the mapping (a growing active segment): a larger mapping replaces it.
    ASSERT_EQ(::ftruncate(file.file->get(), static_cast<off_t>(mapped_files::growth_step + 4096)),
              0);
    auto grown = cache->map(file.region(mapped_files::growth_step, 4096));
    ASSERT_NE(grown, nullptr);
    EXPECT_NE(grown.get(), first.get());
    EXPECT_EQ(grown->length(), 2 * mapped_files::growth_step);
    EXPECT_EQ(cache->size(), 1u);
    // Unused for the idle period: the sweep drops the entry; a holder's mapping stays valid.
    ASSERT_TRUE(run_until(*reactor, [&] { return cache->size() == 0; }));
    EXPECT_EQ(std::memcmp(first->at(10), expected.data(), expected.size()), 0);
}
