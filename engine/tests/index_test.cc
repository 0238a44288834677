// Formats the engine owns: file names, the two index encodings, the checkpoint file.

#include <gtest/gtest.h>

#include <filesystem>

#include "engine/checkpoint.h"
#include "engine/errc.h"
#include "engine/index.h"
#include "engine/log_format.h"

namespace sluice::engine {
namespace {

TEST(log_format, segment_file_names_round_trip) {
    EXPECT_EQ(log_format::segment_file_name(42, ".log"), "00000000000000000042.log");
    int64_t b = 0;
    EXPECT_TRUE(log_format::parse_segment_file_name("00000000000000000042.index", ".index", b));
    EXPECT_EQ(b, 42);
    EXPECT_FALSE(log_format::parse_segment_file_name("0000000000000000042.log", ".log", b));
    EXPECT_FALSE(log_format::parse_segment_file_name("0000000000000000004x.log", ".log", b));
    EXPECT_FALSE(log_format::parse_segment_file_name("00000000000000000042.log", ".index", b));
}

TEST(offset_index, lookup_finds_last_entry_at_or_below) {
    offset_index idx;
    idx.append(10, 100);
    idx.append(20, 200);
    EXPECT_EQ(idx.lookup(5), 0u);
    EXPECT_EQ(idx.lookup(10), 100u);
    EXPECT_EQ(idx.lookup(19), 100u);
    EXPECT_EQ(idx.lookup(25), 200u);
    offset_index back;
    ASSERT_TRUE(back.parse(idx.serialize()));
    EXPECT_EQ(back.size(), 2u);
    EXPECT_EQ(back.lookup(20), 200u);
    back.truncate_to_position(200);
    EXPECT_EQ(back.size(), 1u);
}

TEST(offset_index, rejects_partial_and_unordered_entries) {
    offset_index idx;
    idx.append(10, 100);
    idx.append(20, 200);
    auto bytes = idx.serialize();
    offset_index p;
    EXPECT_FALSE(p.parse(std::span(bytes).first(bytes.size() - 1)));
    std::swap_ranges(bytes.begin(), bytes.begin() + 8, bytes.begin() + 8);
    EXPECT_FALSE(p.parse(bytes));
}

TEST(time_index, keeps_strictly_increasing_timestamps) {
    time_index t;
    t.maybe_append(100, 1);
    t.maybe_append(100, 2);  // not larger: ignored
    t.maybe_append(200, 5);
    EXPECT_EQ(t.lookup_before(100), -1);
    EXPECT_EQ(t.lookup_before(101), 1);
    EXPECT_EQ(t.lookup_before(1000), 5);
    time_index p;
    ASSERT_TRUE(p.parse(t.serialize()));
    EXPECT_EQ(p.back().relative_offset, 5);
    t.truncate_to_offset(5);
    EXPECT_EQ(t.back().relative_offset, 1);
}

TEST(checkpoint, round_trip_and_corruption_detected) {
    auto dir = std::filesystem::temp_directory_path() / ("sluice-cp-" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir);
    auto& fs = posix_file_system::instance();
    auto none = read_checkpoint(fs, dir.string());
    ASSERT_TRUE(none.has_value());
    EXPECT_FALSE(none->has_value());
    ASSERT_TRUE(write_checkpoint(fs, dir.string(), {1234, 56}).has_value());
    auto cp = read_checkpoint(fs, dir.string());
    ASSERT_TRUE(cp.has_value() && cp->has_value());
    EXPECT_EQ((*cp)->recovery_point, 1234);
    EXPECT_EQ((*cp)->log_start_offset, 56);
    {
        auto f = fs.open((dir / log_format::checkpoint_file).string(), open_mode::read_write);
        ASSERT_TRUE(f.has_value());
        std::byte b{'9'};
        ASSERT_TRUE((*f)->write_sync(17, std::span(&b, 1)).has_value());
    }
    auto bad = read_checkpoint(fs, dir.string());
    ASSERT_FALSE(bad.has_value());
    EXPECT_TRUE(bad.error().is(errc::corrupt));
    std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace sluice::engine
