// The leader-epoch checkpoint file: round trip, absence, and every kind of damage refused.

#include "replication/epoch_checkpoint.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "replication/errc.h"

namespace sluice::replication {
namespace {

class epoch_checkpoint_test : public ::testing::Test {
protected:
    void SetUp() override {
        dir = std::filesystem::temp_directory_path() /
              ("sluice-epoch-" + std::to_string(::getpid()) + "-" +
               ::testing::UnitTest::GetInstance()->current_test_info()->name());
        std::filesystem::remove_all(dir);
        std::filesystem::create_directories(dir);
    }
    void TearDown() override { std::filesystem::remove_all(dir); }
    void put(const std::string& text) {
        std::ofstream(dir / epoch_checkpoint_file, std::ios::binary) << text;
    }
    engine::file_system& fs() { return engine::posix_file_system::instance(); }
    std::filesystem::path dir;
};

TEST_F(epoch_checkpoint_test, round_trips_in_kafkas_text_format) {
    leader_epoch_cache c;
    ASSERT_TRUE(c.assign(model::leader_epoch(0), model::offset(0)));
    ASSERT_TRUE(c.assign(model::leader_epoch(3), model::offset(120)));
    ASSERT_TRUE(write_epoch_checkpoint(fs(), dir.string(), c));
    std::ifstream in(dir / epoch_checkpoint_file);
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    EXPECT_EQ(text, "0\n2\n0 0\n3 120\n");
    auto back = read_epoch_checkpoint(fs(), dir.string());
    ASSERT_TRUE(back) << back.error().describe();
    EXPECT_EQ(back->entries(), c.entries());
    EXPECT_EQ(back->end_offset_for(model::leader_epoch(0), model::offset(200)).end_offset(), 120);
}

TEST_F(epoch_checkpoint_test, a_missing_file_is_an_empty_history) {
    auto c = read_epoch_checkpoint(fs(), dir.string());
    ASSERT_TRUE(c);
    EXPECT_TRUE(c->empty());
    ASSERT_TRUE(write_epoch_checkpoint(fs(), dir.string(), leader_epoch_cache{}));
    auto e = read_epoch_checkpoint(fs(), dir.string());
    ASSERT_TRUE(e);
    EXPECT_TRUE(e->empty());
}

TEST_F(epoch_checkpoint_test, damaged_files_are_refused_with_the_line) {
    for (const char* bad : {"", "0\n2\n0 0\n", "0\n1\n0 0", "1\n0\n", "0\nx\n", "0\n1\n0\n",
                            "0\n1\n-1 0\n", "0\n2\n3 10\n2 20\n", "0\n2\n1 10\n2 5\n",
                            "0\n1\n1 10 7\n", "0\n1\n1 10\n\n"}) {
        put(bad);
        auto r = read_epoch_checkpoint(fs(), dir.string());
        ASSERT_FALSE(r) << "accepted: " << ::testing::PrintToString(std::string(bad));
        EXPECT_TRUE(r.error().is(errc::store_corrupt)) << r.error().describe();
        EXPECT_NE(r.error().describe().find("line"), std::string::npos);
    }
}

}  // namespace
}  // namespace sluice::replication
