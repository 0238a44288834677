#include "replication/metadata_store.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

using namespace sluice;
using namespace sluice::replication;

namespace {
std::string fresh_dir(const char* name) {
    auto d = std::filesystem::path(::testing::TempDir()) / name;
    std::filesystem::remove_all(d);
    std::filesystem::create_directories(d);
    return d.string();
}
}  // namespace

TEST(metadata_store, create_persist_reload) {
    auto dir = fresh_dir("meta_reload");
    std::string cluster;
    topic_id id{};
    {
        auto s = local_metadata_store::open(dir);
        ASSERT_TRUE(s) << s.error().describe();
        cluster = (*s)->cluster_id();
        auto t = (*s)->create_topic("orders", 3, {{"retention.ms", "1000"}, {"odd key", "a b=c"}});
        ASSERT_TRUE(t);
        id = t->id;
        ASSERT_TRUE((*s)->set_partition_count("orders", 5));
        ASSERT_TRUE((*s)->create_topic("gone", 1, {}));
        ASSERT_TRUE((*s)->delete_topic("gone"));
    }
    auto s = local_metadata_store::open(dir);
    ASSERT_TRUE(s) << s.error().describe();
    EXPECT_EQ((*s)->cluster_id(), cluster);
    auto snap = (*s)->snapshot();
    ASSERT_EQ(snap->size(), 1u);
    const auto& t = snap->at("orders");
    EXPECT_EQ(t.partitions, 5);
    EXPECT_EQ(t.id, id);
    EXPECT_EQ(t.configs.at("retention.ms"), "1000");
    EXPECT_EQ(t.configs.at("odd key"), "a b=c");
}

TEST(metadata_store, errors) {
    auto s = local_metadata_store::open(fresh_dir("meta_errors"));
    ASSERT_TRUE(s);
    ASSERT_TRUE((*s)->create_topic("t", 2, {}));
    EXPECT_TRUE((*s)->create_topic("t", 2, {}).error().is(errc::topic_exists));
    EXPECT_TRUE((*s)->create_topic("bad/name", 1, {}).error().is(errc::invalid_topic_name));
    EXPECT_TRUE((*s)->create_topic("..", 1, {}).error().is(errc::invalid_topic_name));
    EXPECT_TRUE((*s)->create_topic(std::string(250, 'a'), 1, {}).error().is(errc::invalid_topic_name));
    EXPECT_TRUE((*s)->create_topic("z", 0, {}).error().is(errc::invalid_partitions));
    EXPECT_TRUE((*s)->set_partition_count("t", 1).error().is(errc::invalid_partitions));
    EXPECT_TRUE((*s)->delete_topic("nope").error().is(errc::unknown_topic));
}

TEST(metadata_store, snapshots_are_immutable) {
    auto s = local_metadata_store::open(fresh_dir("meta_snap"));
    ASSERT_TRUE(s);
    auto before = (*s)->snapshot();
    ASSERT_TRUE((*s)->create_topic("a", 1, {}));
    EXPECT_TRUE(before->empty());
    EXPECT_EQ((*s)->snapshot()->size(), 1u);
}

TEST(metadata_store, corrupt_file_is_reported) {
    auto dir = fresh_dir("meta_corrupt");
    {
        std::ofstream f(dir + "/sluice-metadata");
        f << "sluice-metadata v1\ncluster abc\ntopic t zz 1\n";
    }
    auto s = local_metadata_store::open(dir);
    ASSERT_FALSE(s);
    EXPECT_TRUE(s.error().is(errc::store_corrupt));
    EXPECT_NE(s.error().describe().find(":3"), std::string::npos);
}
