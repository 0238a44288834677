#include "broker/producer_state.h"

#include <gtest/gtest.h>

using namespace sluice::broker;
using v = producer_state::verdict;

namespace {
producer_state::batch_info batch(int64_t pid, int16_t epoch, int32_t seq, int32_t n) {
    return {pid, epoch, seq, n};
}
}  // namespace

TEST(producer_state, in_sequence_batches_accepted) {
    producer_state s;
    EXPECT_EQ(s.check(batch(1, 0, 0, 10)).v, v::accept);
    s.commit(batch(1, 0, 0, 10), 0, 9);
    EXPECT_EQ(s.check(batch(1, 0, 10, 5)).v, v::accept);
    s.commit(batch(1, 0, 10, 5), 10, 14);
    EXPECT_EQ(s.check(batch(1, 0, 15, 1)).v, v::accept);
}

TEST(producer_state, retry_of_any_of_last_five_is_duplicate_with_original_offsets) {
    producer_state s;
    int64_t off = 100;
    for (int i = 0; i < 7; ++i) {
        s.commit(batch(9, 2, i * 2, 2), off, off + 1);
        off += 2;
    }
    // Batches 2..6 are remembered; 0 and 1 fell out of the window.
    auto d = s.check(batch(9, 2, 4, 2));
    EXPECT_EQ(d.v, v::duplicate);
    EXPECT_EQ(d.base_offset, 104);
    EXPECT_EQ(d.last_offset, 105);
    EXPECT_EQ(s.check(batch(9, 2, 12, 2)).v, v::duplicate);
    EXPECT_EQ(s.check(batch(9, 2, 0, 2)).v, v::out_of_order);
}

TEST(producer_state, gap_is_out_of_order) {
    producer_state s;
    s.commit(batch(1, 0, 0, 3), 0, 2);
    EXPECT_EQ(s.check(batch(1, 0, 4, 1)).v, v::out_of_order);
    EXPECT_EQ(s.check(batch(1, 0, 2, 1)).v, v::out_of_order);
}

TEST(producer_state, epochs_fence_and_reset) {
    producer_state s;
    s.commit(batch(1, 3, 0, 3), 0, 2);
    EXPECT_EQ(s.check(batch(1, 2, 3, 1)).v, v::fenced_epoch);
    EXPECT_EQ(s.check(batch(1, 4, 5, 1)).v, v::out_of_order);
    EXPECT_EQ(s.check(batch(1, 4, 0, 1)).v, v::accept);
    s.commit(batch(1, 4, 0, 1), 3, 3);
    EXPECT_EQ(s.check(batch(1, 4, 0, 1)).v, v::duplicate);
}

TEST(producer_state, unknown_producer_must_start_at_zero) {
    producer_state s;
    EXPECT_EQ(s.check(batch(5, 0, 7, 1)).v, v::unknown_producer);
    EXPECT_EQ(s.check(batch(5, 0, 0, 1)).v, v::accept);
}

TEST(producer_state, non_idempotent_batches_pass_through) {
    producer_state s;
    EXPECT_EQ(s.check(batch(-1, -1, -1, 5)).v, v::accept);
    s.commit(batch(-1, -1, -1, 5), 0, 4);
    EXPECT_EQ(s.producers(), 0u);
}

TEST(producer_state, sequence_wraps_at_int32_max) {
    producer_state w;
    w.commit(batch(2, 0, 0, 1), 0, 0);
    w.commit(batch(2, 0, 1, 2147483646), 1, 2147483646);  // ends at sequence INT32_MAX - 1
    // A batch of two from INT32_MAX covers INT32_MAX and 0; the one after it starts at 1.
    ASSERT_EQ(w.check(batch(2, 0, 2147483647, 2)).v, v::accept);
    w.commit(batch(2, 0, 2147483647, 2), 2147483647, 2147483648);
    EXPECT_EQ(w.check(batch(2, 0, 1, 1)).v, v::accept);
    EXPECT_EQ(w.check(batch(2, 0, 2147483647, 2)).v, v::duplicate);
}
