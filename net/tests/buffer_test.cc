#include "net/buffer.h"

#include <gtest/gtest.h>

#include <thread>

#include "net/connection.h"

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
