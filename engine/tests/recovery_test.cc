// The recovery catalogue (after LevelDB's log_test): what open() does with every kind of damage
// a crash or a disk can leave behind.

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "engine/errc.h"
#include "engine/tests/engine_fixture.h"

namespace sluice::engine::test {
namespace {

namespace fsys = std::filesystem;

class recovery_test : public engine_fixture {
protected:
    // Appends `n` single-batch appends of 2 records; returns the batch size.
    size_t fill(int n) {
        for (int i = 0; i < n; ++i) EXPECT_TRUE(append(batch(2, 1000 + i)).has_value());
        return batch(2).size();
    }
    void write_at(const std::string& path, uint64_t pos, std::vector<std::byte> bytes) {
        std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
        f.seekp(static_cast<std::streamoff>(pos));
        f.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
    }
    void flip_byte(const std::string& path, uint64_t pos) {
        std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
        f.seekg(static_cast<std::streamoff>(pos));
        char c = 0;
        f.get(c);
        f.seekp(static_cast<std::streamoff>(pos));
        f.put(static_cast<char>(c ^ 0x5a));
    }
    void cut(const std::string& path, uint64_t size) { fsys::resize_file(path, size); }
};

TEST_F(recovery_test, torn_trailer_is_truncated) {
    cfg.preallocate = false;
    open();
    size_t one = fill(5);
    crash();
    write_at(seg_path(0, ".log"), 5 * one, std::vector<std::byte>(30, std::byte{0x7f}));
    open();
    ASSERT_TRUE(log->status().has_value()) << log->status().error().describe();
    EXPECT_EQ(log->log_end_offset()(), 10);
    EXPECT_EQ(log->stats().truncated_bytes, 30u);
    EXPECT_EQ(fsys::file_size(seg_path(0, ".log")), 5 * one + 0u + (cfg.preallocate ? 0 : 0));
    EXPECT_EQ(read_all().size(), 10u);
    ASSERT_TRUE(append(batch(1)).has_value());
    EXPECT_EQ(read_all().size(), 11u);
}

TEST_F(recovery_test, partial_last_batch_is_truncated) {
    cfg.preallocate = false;
    open();
    size_t one = fill(5);
    crash();
    cut(seg_path(0, ".log"), 4 * one + one / 2);
    open();
    ASSERT_TRUE(log->status().has_value());
    EXPECT_EQ(log->log_end_offset()(), 8);
    EXPECT_EQ(log->stats().truncated_bytes, one / 2);
    EXPECT_EQ(read_all().size(), 8u);
}

TEST_F(recovery_test, bad_length_in_last_batch_is_truncated) {
    open();
    size_t one = fill(5);
    crash();
    write_at(seg_path(0, ".log"), 4 * one + 8, {std::byte{0x7f}, std::byte{0}, std::byte{0}, std::byte{0}});
    open();
    ASSERT_TRUE(log->status().has_value());
    EXPECT_EQ(log->log_end_offset()(), 8);
    EXPECT_GT(log->stats().truncated_bytes, 0u);
}

TEST_F(recovery_test, crc_mismatch_in_last_batch_is_truncated) {
    open();
    size_t one = fill(5);
    crash();
    flip_byte(seg_path(0, ".log"), 4 * one + one - 2);
    open();
    ASSERT_TRUE(log->status().has_value());
    EXPECT_EQ(log->log_end_offset()(), 8);
    EXPECT_EQ(read_all().size(), 8u);
}

TEST_F(recovery_test, preallocated_zero_tail_counts_as_end) {
    cfg.preallocate = true;
    open();
    size_t one = fill(3);
    EXPECT_EQ(fsys::file_size(seg_path(0, ".log")), cfg.segment_bytes);
    crash();
    open();
    ASSERT_TRUE(log->status().has_value());
    EXPECT_EQ(log->log_end_offset()(), 6);
    EXPECT_EQ(log->stats().truncated_bytes, 0u);
    EXPECT_EQ(log->stats().recovered_bytes, 3 * one);
    ASSERT_TRUE(close().has_value());
    EXPECT_EQ(fsys::file_size(seg_path(0, ".log")), 3 * one);  // close drops the unused tail
}

TEST_F(recovery_test, empty_segment_opens) {
    fsys::create_directories(pdir());
    std::ofstream(seg_path(0, ".log")).close();
    open();
    ASSERT_TRUE(log->status().has_value());
    EXPECT_EQ(log->log_end_offset()(), 0);
    ASSERT_TRUE(append(batch(1)).has_value());
    EXPECT_EQ(read_all().size(), 1u);
}

TEST_F(recovery_test, empty_trailing_segment_after_roll_is_dropped) {
    cfg.segment_bytes = 1024;
    open();
    fill(20);
    auto active = log->active_segment();
    crash();
    // A crash right after creating a segment leaves an empty file past the last one.
    std::ofstream(seg_path(active.next_offset() + 100, ".log")).close();
    open();
    ASSERT_TRUE(log->status().has_value()) << log->status().error().describe();
    EXPECT_EQ(log->log_end_offset()(), 40);
    EXPECT_FALSE(fsys::exists(seg_path(active.next_offset() + 100, ".log")));
}

TEST_F(recovery_test, index_behind_the_log_is_completed) {
    cfg.index_interval_bytes = 64;
    open();
    fill(30);
    ASSERT_TRUE(close().has_value());
    auto full_size = fsys::file_size(seg_path(0, ".index"));
    ASSERT_GT(full_size, 16u);
    cut(seg_path(0, ".index"), 8);  // only the first entry survives
    open();
    ASSERT_TRUE(log->status().has_value());
    EXPECT_GE(log->stats().index_rebuilds, 1u);
    EXPECT_EQ(read_all(45).front().offset, 44);
    ASSERT_TRUE(close().has_value());
    EXPECT_EQ(fsys::file_size(seg_path(0, ".index")), full_size);
}

TEST_F(recovery_test, index_ahead_of_the_log_is_rebuilt) {
    cfg.index_interval_bytes = 64;
    open();
    fill(30);
    ASSERT_TRUE(close().has_value());
    auto full_size = fsys::file_size(seg_path(0, ".index"));
    // An entry pointing at a batch that is not there (offset 1000 at position 5000).
    write_at(seg_path(0, ".index"), full_size,
             {std::byte{0}, std::byte{0}, std::byte{0x03}, std::byte{0xe8}, std::byte{0},
              std::byte{0}, std::byte{0x13}, std::byte{0x88}});
    open();
    ASSERT_TRUE(log->status().has_value());
    EXPECT_GE(log->stats().index_rebuilds, 1u);
    EXPECT_EQ(read_all(21).front().offset, 20);
    ASSERT_TRUE(close().has_value());
    EXPECT_EQ(fsys::file_size(seg_path(0, ".index")), full_size);
}

TEST_F(recovery_test, index_entry_disagreeing_with_its_batch_is_rebuilt) {
    cfg.index_interval_bytes = 64;
    open();
    fill(30);
    ASSERT_TRUE(close().has_value());
    auto size = fsys::file_size(seg_path(0, ".index"));
    // Make the last entry claim a larger relative offset than its batch holds.
    write_at(seg_path(0, ".index"), size - 8, {std::byte{0}, std::byte{0}, std::byte{0x7f}, std::byte{0}});
    open();
    ASSERT_TRUE(log->status().has_value());
    EXPECT_GE(log->stats().index_rebuilds, 1u);
    EXPECT_EQ(read_all().size(), 60u);
}

TEST_F(recovery_test, corruption_in_a_closed_segment_fails_with_file_and_position) {
    cfg.segment_bytes = 1024;
    open();
    size_t one = fill(40);
    ASSERT_GE(log->closed_segments().size(), 2u);
    auto victim = log->closed_segments()[0];
    crash();
    uint64_t pos = victim.size_bytes - one;  // its last batch
    flip_byte(victim.path, pos + 40);
    open();
    ASSERT_TRUE(log->failed());
    auto st = log->status();
    ASSERT_FALSE(st.has_value());
    EXPECT_TRUE(st.error().is(errc::partition_failed));
    EXPECT_NE(st.error().detail().find(victim.path), std::string::npos) << st.error().detail();
    EXPECT_NE(st.error().detail().find("at byte " + std::to_string(pos)), std::string::npos)
        << st.error().detail();
    // Fail-stop: reads and appends report the same error.
    auto rr = log->read(model::offset(0), 100, model::offset(INT64_MAX), true);
    ASSERT_FALSE(rr.has_value());
    EXPECT_TRUE(rr.error().is(errc::partition_failed));
    auto a = append(batch(1));
    ASSERT_FALSE(a.has_value());
    EXPECT_NE(a.error().detail().find(victim.path), std::string::npos);
}

TEST_F(recovery_test, corruption_below_the_recovery_point_fails) {
    cfg.preallocate = false;
    open();
    size_t one = fill(5);
    ASSERT_TRUE(close().has_value());  // recovery point = log end
    flip_byte(seg_path(0, ".log"), 4 * one + one - 2);
    open();
    ASSERT_TRUE(log->failed());
    EXPECT_NE(log->status().error().detail().find("recovery point 10"), std::string::npos)
        << log->status().error().detail();
    EXPECT_EQ(fsys::file_size(seg_path(0, ".log")), 5 * one);  // nothing was cut
}

TEST_F(recovery_test, leftover_temporary_files_are_removed) {
    open();
    fill(2);
    ASSERT_TRUE(close().has_value());
    std::ofstream(seg_path(0, ".log.cleaned")).close();
    std::ofstream(pdir() + "/partition.checkpoint.tmp").close();
    std::ofstream(seg_path(999, ".index")).close();
    open();
    EXPECT_FALSE(fsys::exists(seg_path(0, ".log.cleaned")));
    EXPECT_FALSE(fsys::exists(pdir() + "/partition.checkpoint.tmp"));
    EXPECT_FALSE(fsys::exists(seg_path(999, ".index")));
    EXPECT_EQ(read_all().size(), 4u);
}

}  // namespace
}  // namespace sluice::engine::test
