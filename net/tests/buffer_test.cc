#include "net/buffer.h"

#include <gtest/gtest.h>

#include <thread>

#include <cstring>

#include "base/bytes.h"
#include "net/connection.h"
#include "net/frame_reader.h"

using namespace sluice;

TEST(shared_buffer, views_share_one_chunk) {
    auto b = net::shared_buffer::allocate(100);
    for (size_t i = 0; i < 100; ++i) b.mutable_data()[i] = std::byte(i);
    EXPECT_EQ(b.use_count(), 1u);
    auto v = b.share(10, 20);
    EXPECT_EQ(v.size(), 20u);
    EXPECT_EQ(v[0], std::byte(10));
    EXPECT_EQ(b.use_count(), 2u);
    {
        auto c = v;
        EXPECT_EQ(b.use_count(), 3u);
        auto m = std::move(c);
        EXPECT_EQ(b.use_count(), 3u);
        EXPECT_TRUE(c.empty());
    }
    EXPECT_EQ(b.use_count(), 2u);
    b = {};
    EXPECT_EQ(v.use_count(), 1u);  // the view alone keeps the chunk
    EXPECT_EQ(v[19], std::byte(29));
    EXPECT_EQ(v.chunk_capacity(), 100u);
}

TEST(shared_buffer, released_on_another_thread) {
    auto b = net::shared_buffer::copy_of(std::as_bytes(std::span("hello", 5)));
    auto v = b.share(1, 3);
    std::thread t([v = std::move(v)]() mutable { v = {}; });
    t.join();
    EXPECT_EQ(b.use_count(), 1u);
}

TEST(output, counts_bytes_of_every_piece) {
    net::output out;
    out.append(std::vector<std::byte>(7));
    out.append(net::shared_buffer::allocate(5));
    out.append(file_region{nullptr, 100, 1000});
    out.append_copy(std::as_bytes(std::span("abc", 3)));
    EXPECT_EQ(out.size_bytes(), 7u + 5u + 1000u + 3u);
    EXPECT_EQ(out.pieces().size(), 4u);
}

// Bytes committed several times before a parse (the dpdk stack copies each segment straight
// in) can fill a chunk: writable() must still offer room, keeping every byte.
TEST(frame_reader, room_past_a_full_chunk_committed_without_parsing) {
    sluice::net::frame_reader r(4096, 1 << 20);
    std::vector<std::byte> frame(4 + 10000, std::byte{7});
    sluice::bytes::store_be32(frame.data(), 10000);
    size_t put = 0;
    while (put < frame.size()) {
        auto room = r.writable();
        ASSERT_FALSE(room.empty());
        size_t n = std::min<size_t>({room.size(), 1448, frame.size() - put});
        std::memcpy(room.data(), frame.data() + put, n);
        r.commit(n);
        put += n;
    }
    std::vector<sluice::net::shared_buffer> out;
    sluice::error failure;
    ASSERT_TRUE(r.parse(out, failure, sluice::net::socket_address::ipv4_loopback(1)));
    ASSERT_EQ(out.size(), 1u);
    EXPECT_EQ(out[0].size(), 10000u);
    EXPECT_EQ(out[0][9999], std::byte{7});
}
