#include "broker/fetch_session.h"

#include <gtest/gtest.h>

#include <set>
#include <string>
#include <utility>

using namespace sluice;
using namespace sluice::broker;
using protocol::fetch_request;
using protocol::fetch_response;
using clock_type = fetch_session_cache::clock;

namespace {

fetch_request request(int32_t id, int32_t epoch,
                      std::vector<std::pair<std::string, int32_t>> parts, int64_t offset = 0) {
    fetch_request req;
    req.session_id = id;
    req.session_epoch = epoch;
    for (const auto& [topic, p] : parts) {
        auto it = std::find_if(req.topics.begin(), req.topics.end(),
                               [&](const auto& t) { return t.topic == topic; });
        if (it == req.topics.end()) {
            it = req.topics.emplace(req.topics.end());
            it->topic = topic;
        }
        auto& fp = it->partitions.emplace_back();
        fp.partition = p;
        fp.fetch_offset = offset;
        fp.partition_max_bytes = 1 << 20;
    }
    return req;
}

std::set<std::pair<std::string, int32_t>> listed(const fetch_request& req) {
    std::set<std::pair<std::string, int32_t>> out;
    for (const auto& t : req.topics)
        for (const auto& p : t.partitions) out.insert({t.topic, p.partition});
    return out;
}

// The response a fetch of `req` would get: every partition with the given high watermark.
fetch_response response_for(const fetch_request& req, int64_t hw) {
    fetch_response resp;
    for (const auto& t : req.topics) {
        auto& tr = resp.responses.emplace_back();
        tr.topic = t.topic;
        for (const auto& p : t.partitions) {
            auto& pd = tr.partitions.emplace_back();
            pd.partition_index = p.partition;
            pd.high_watermark = hw;
            pd.last_stable_offset = hw;
            pd.log_start_offset = 0;
            pd.records = protocol::records::from_memory({});
        }
    }
    return resp;
}

std::set<std::pair<std::string, int32_t>> answered(const fetch_response& resp) {
    std::set<std::pair<std::string, int32_t>> out;
    for (const auto& t : resp.responses)
        for (const auto& p : t.partitions) out.insert({t.topic, p.partition_index});
    return out;
}

fetch_response::partition_data& part(fetch_response& resp, const std::string& topic, int32_t p) {
    for (auto& t : resp.responses)
        for (auto& pd : t.partitions)
            if (t.topic == topic && pd.partition_index == p) return pd;
    throw std::runtime_error("no such partition");
}

}  // namespace

TEST(fetch_session, epoch_minus_one_without_an_id_is_a_plain_full_fetch) {
    fetch_session_cache cache(10);
    auto req = request(0, -1, {{"a", 0}});
    auto r = cache.resolve(req, false, clock_type::now());
    EXPECT_EQ(r.error, kafka_error::none);
    EXPECT_EQ(r.session_id, 0);
    EXPECT_FALSE(r.incremental);
    EXPECT_EQ(cache.size(), 0u);
}

TEST(fetch_session, an_incremental_fetch_stands_for_the_whole_session_and_gets_only_news) {
    fetch_session_cache cache(10);
    auto now = clock_type::now();
    auto full = request(0, 0, {{"a", 0}, {"a", 1}, {"b", 0}}, 5);
    auto r = cache.resolve(full, false, now);
    ASSERT_NE(r.session_id, 0);
    EXPECT_FALSE(r.incremental);
    auto resp = response_for(full, 10);
    cache.finish(r, resp);
    EXPECT_EQ(answered(resp).size(), 3u) << "a full response is never filtered";

    // Epoch 1 names only a-1 with a new position; the fetch covers all three.
    auto inc = request(r.session_id, 1, {{"a", 1}}, 42);
    auto r1 = cache.resolve(inc, false, now);
    ASSERT_EQ(r1.error, kafka_error::none);
    EXPECT_TRUE(r1.incremental);
    EXPECT_EQ(listed(inc), (std::set<std::pair<std::string, int32_t>>{{"a", 0}, {"a", 1}, {"b", 0}}));
    for (const auto& t : inc.topics)
        for (const auto& p : t.partitions)
            EXPECT_EQ(p.fetch_offset, t.topic == "a" && p.partition == 1 ? 42 : 5);

    // Nothing changed except b-0's high watermark, and a-1 has records.
    auto resp1 = response_for(inc, 10);
    part(resp1, "b", 0).high_watermark = 11;
    std::vector<std::byte> bytes(70);
    part(resp1, "a", 1).records = protocol::records::from_memory(bytes);
    cache.finish(r1, resp1);
    EXPECT_EQ(answered(resp1), (std::set<std::pair<std::string, int32_t>>{{"a", 1}, {"b", 0}}));

    // Epoch 2: an error is news; unchanged partitions stay out, empty topics too.
    auto inc2 = request(r.session_id, 2, {});
    auto r2 = cache.resolve(inc2, false, now);
    ASSERT_EQ(r2.error, kafka_error::none);
    auto resp2 = response_for(inc2, 10);
    part(resp2, "b", 0).high_watermark = 11;
    part(resp2, "a", 0).error_code = 6;
    cache.finish(r2, resp2);
    EXPECT_EQ(answered(resp2), (std::set<std::pair<std::string, int32_t>>{{"a", 0}}));
    EXPECT_EQ(resp2.responses.size(), 1u);
}

TEST(fetch_session, forgotten_partitions_leave_the_session) {
    fetch_session_cache cache(10);
    auto now = clock_type::now();
    auto full = request(0, 0, {{"a", 0}, {"a", 1}});
    auto r = cache.resolve(full, false, now);
    auto inc = request(r.session_id, 1, {{"c", 3}});
    auto& f = inc.forgotten_topics_data.emplace_back();
    f.topic = "a";
    f.partitions = {1};
    ASSERT_EQ(cache.resolve(inc, false, now).error, kafka_error::none);
    EXPECT_EQ(listed(inc), (std::set<std::pair<std::string, int32_t>>{{"a", 0}, {"c", 3}}));
    EXPECT_TRUE(inc.forgotten_topics_data.empty());
}

TEST(fetch_session, wrong_epochs_and_unknown_ids_are_refused) {
    fetch_session_cache cache(10);
    auto now = clock_type::now();
    auto full = request(0, 0, {{"a", 0}});
    auto r = cache.resolve(full, false, now);
    auto skip = request(r.session_id, 2, {});
    EXPECT_EQ(cache.resolve(skip, false, now).error, kafka_error::invalid_fetch_session_epoch);
    auto unknown = request(r.session_id ^ 1, 1, {});
    EXPECT_EQ(cache.resolve(unknown, false, now).error, kafka_error::fetch_session_id_not_found);
    auto no_id = request(0, 3, {});
    EXPECT_EQ(cache.resolve(no_id, false, now).error, kafka_error::invalid_fetch_session_epoch);
    auto ids = request(r.session_id, 1, {});
    EXPECT_EQ(cache.resolve(ids, true, now).error, kafka_error::fetch_session_topic_id_error);
    // The refusals did not move the epoch: epoch 1 is still the next one.
    auto good = request(r.session_id, 1, {});
    EXPECT_EQ(cache.resolve(good, false, now).error, kafka_error::none);
    // A retried (repeated) epoch is refused.
    auto again = request(r.session_id, 1, {});
    EXPECT_EQ(cache.resolve(again, false, now).error, kafka_error::invalid_fetch_session_epoch);
}

TEST(fetch_session, a_full_fetch_closes_the_session_it_names) {
    fetch_session_cache cache(10);
    auto now = clock_type::now();
    auto full = request(0, 0, {{"a", 0}});
    auto r = cache.resolve(full, false, now);
    auto close = request(r.session_id, -1, {{"a", 0}});
    auto rc = cache.resolve(close, false, now);
    EXPECT_EQ(rc.session_id, 0);
    EXPECT_EQ(cache.size(), 0u);
    auto after = request(r.session_id, 1, {});
    EXPECT_EQ(cache.resolve(after, false, now).error, kafka_error::fetch_session_id_not_found);
    // Epoch 0 with an id replaces that session with a new one.
    auto r2 = cache.resolve(full, false, now);
    auto reopen = request(r2.session_id, 0, {{"b", 0}});
    auto r3 = cache.resolve(reopen, false, now);
    EXPECT_NE(r3.session_id, 0);
    EXPECT_NE(r3.session_id, r2.session_id);
    EXPECT_EQ(cache.size(), 1u);
}

TEST(fetch_session, a_full_cache_evicts_only_sessions_idle_long_enough) {
    fetch_session_cache cache(2, std::chrono::milliseconds(1000));
    auto t0 = clock_type::now();
    auto a = request(0, 0, {{"a", 0}});
    auto b = request(0, 0, {{"b", 0}});
    auto c = request(0, 0, {{"c", 0}});
    auto ra = cache.resolve(a, false, t0);
    auto rb = cache.resolve(b, false, t0 + std::chrono::milliseconds(500));
    EXPECT_NE(ra.session_id, 0);
    EXPECT_NE(rb.session_id, 0);
    // Full, and nobody idle for a second: the fetch is served without a session.
    EXPECT_EQ(cache.resolve(c, false, t0 + std::chrono::milliseconds(900)).session_id, 0);
    // Later the least recently used (a) gives way.
    auto rc = cache.resolve(c, false, t0 + std::chrono::milliseconds(1200));
    EXPECT_NE(rc.session_id, 0);
    auto use_a = request(ra.session_id, 1, {});
    EXPECT_EQ(cache.resolve(use_a, false, t0).error, kafka_error::fetch_session_id_not_found);
    auto use_b = request(rb.session_id, 1, {});
    EXPECT_EQ(cache.resolve(use_b, false, t0).error, kafka_error::none);
}

TEST(fetch_session, zero_slots_means_no_sessions) {
    fetch_session_cache cache(0);
    auto req = request(0, 0, {{"a", 0}});
    auto r = cache.resolve(req, false, clock_type::now());
    EXPECT_EQ(r.error, kafka_error::none);
    EXPECT_EQ(r.session_id, 0);
}

TEST(fetch_session, topic_id_sessions_match_partitions_by_id) {
    fetch_session_cache cache(10);
    auto now = clock_type::now();
    fetch_request full;
    full.session_epoch = 0;
    auto& t = full.topics.emplace_back();
    t.topic_id.bytes[0] = std::byte{7};
    t.partitions.emplace_back().partition = 0;
    auto r = cache.resolve(full, true, now);
    ASSERT_NE(r.session_id, 0);
    fetch_request inc;
    inc.session_id = r.session_id;
    inc.session_epoch = 1;
    auto& f = inc.forgotten_topics_data.emplace_back();
    f.topic_id.bytes[0] = std::byte{7};
    f.partitions = {0};
    ASSERT_EQ(cache.resolve(inc, true, now).error, kafka_error::none);
    EXPECT_TRUE(inc.topics.empty());
}
