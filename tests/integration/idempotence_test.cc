// Idempotent produce at the wire level: retried batches are acknowledged with their first
// offsets and not written twice, pipelined batches are accepted in order, gaps and fenced
// epochs are refused with Kafka's errors, and duplicate detection survives a broker restart.

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "model/records.h"
#include "tests/integration/broker_process.h"
#include "tools/kafka_client.h"

using namespace sluice;
using tools::connection;

namespace {

constexpr const char* topic = "idem";

struct producer_id {
    int64_t id;
    int16_t epoch;
};

std::vector<std::byte> batch(producer_id p, int32_t seq, int n, const std::string& tag) {
    model::batch_options o;
    o.producer_id = p.id;
    o.producer_epoch = p.epoch;
    o.base_sequence = seq;
    model::batch_builder b(o);
    std::vector<std::string> vals;
    for (int i = 0; i < n; ++i) vals.push_back(tag + "-" + std::to_string(seq + i));
    for (int i = 0; i < n; ++i) b.add(std::nullopt, model::bytes_of(vals[i]), 1000 + i);
    return *b.build();
}

protocol::produce_request produce_req(const std::vector<std::byte>& bytes) {
    protocol::produce_request r;
    r.acks = -1;
    r.timeout_ms = 10000;
    protocol::produce_request::topic_produce_data t;
    t.name = topic;
    protocol::produce_request::partition_produce_data p;
    p.index = 0;
    p.records = protocol::records::from_memory(bytes);
    t.partition_data.push_back(std::move(p));
    r.topic_data.push_back(std::move(t));
    return r;
}

struct ack {
    int16_t error = -1;
    int64_t base_offset = -1;
};

ack produce(connection& c, const std::vector<std::byte>& bytes) {
    auto r = c.call<protocol::produce_api>(produce_req(bytes));
    EXPECT_TRUE(r.has_value()) << r.error().describe();
    if (!r) return {};
    const auto& p = r->responses.at(0).partition_responses.at(0);
    return {p.error_code, p.base_offset};
}

int64_t log_end(connection& c) {
    protocol::list_offsets_request req;
    req.replica_id = -1;
    protocol::list_offsets_request::list_offsets_topic t;
    t.name = topic;
    protocol::list_offsets_request::list_offsets_partition p;
    p.partition_index = 0;
    p.timestamp = -1;
    t.partitions.push_back(p);
    req.topics.push_back(t);
    auto r = c.call<protocol::list_offsets_api>(req);
    EXPECT_TRUE(r.has_value());
    return r ? r->topics.at(0).partitions.at(0).offset : -1;
}

producer_id init_producer(connection& c, int64_t id = -1, int16_t epoch = -1) {
    protocol::init_producer_id_request req;
    req.transaction_timeout_ms = 60000;
    req.producer_id = id;
    req.producer_epoch = epoch;
    auto r = c.call<protocol::init_producer_id_api>(req);
    EXPECT_TRUE(r.has_value());
    EXPECT_EQ(r->error_code, 0);
    return {r->producer_id, r->producer_epoch};
}

std::unique_ptr<connection> connect_and_create(const test::broker_process& b) {
    auto c = connection::open({"127.0.0.1", b.port()}, {});
    EXPECT_TRUE(c.has_value()) << c.error().describe();
    if (!c) return nullptr;
    protocol::create_topics_request req;
    protocol::create_topics_request::creatable_topic t;
    t.name = topic;
    t.num_partitions = 1;
    t.replication_factor = 1;
    req.topics.push_back(t);
    req.timeout_ms = 10000;
    auto r = (*c)->call<protocol::create_topics_api>(req);
    EXPECT_TRUE(r.has_value());
    return std::move(*c);
}

}  // namespace

TEST(idempotence, retries_pipelining_gaps_fencing_and_restart) {
    test::broker_process broker;
    ASSERT_TRUE(broker.start()) << broker.log();
    auto c = connect_and_create(broker);
    ASSERT_TRUE(c);
    producer_id p = init_producer(*c);
    ASSERT_GE(p.id, 0);

    // A batch and its retry: one write, the retry gets the first offsets.
    auto first = batch(p, 0, 3, "a");
    EXPECT_EQ(produce(*c, first).base_offset, 0);
    auto retry = produce(*c, first);
    EXPECT_EQ(retry.error, 0);
    EXPECT_EQ(retry.base_offset, 0);
    EXPECT_EQ(log_end(*c), 3);

    // Five batches in flight at once (the producer's max), then a retry of the middle one.
    std::vector<std::vector<std::byte>> inflight;
    for (int i = 0; i < 5; ++i) inflight.push_back(batch(p, 3 + 2 * i, 2, "b"));
    int16_t v = c->version<protocol::produce_api>();
    for (auto& b : inflight) ASSERT_TRUE(c->send(protocol::produce_api::key, v, produce_req(b)));
    for (int i = 0; i < 5; ++i) {
        auto r = c->receive();
        ASSERT_TRUE(r.has_value());
        protocol::reader rd(r->body);
        protocol::produce_response resp;
        ASSERT_TRUE(resp.decode(rd, v));
        EXPECT_EQ(resp.responses[0].partition_responses[0].error_code, 0);
        EXPECT_EQ(resp.responses[0].partition_responses[0].base_offset, 3 + 2 * i);
    }
    auto dup = produce(*c, inflight[2]);
    EXPECT_EQ(dup.error, 0);
    EXPECT_EQ(dup.base_offset, 7);
    EXPECT_EQ(log_end(*c), 13);

    // A gap in the sequence: OUT_OF_ORDER_SEQUENCE_NUMBER, nothing written.
    EXPECT_EQ(produce(*c, batch(p, 20, 1, "gap")).error, 45);
    // A producer id the broker never saw, not starting at 0: UNKNOWN_PRODUCER_ID.
    EXPECT_EQ(produce(*c, batch({p.id + 500, 0}, 5, 1, "x")).error, 59);
    EXPECT_EQ(log_end(*c), 13);

    // Duplicate detection survives a clean restart (the state is rebuilt from the log).
    c.reset();
    ASSERT_EQ(broker.stop(SIGTERM), 0);
    ASSERT_TRUE(broker.start()) << broker.log();
    auto again = connection::open({"127.0.0.1", broker.port()}, {});
    ASSERT_TRUE(again.has_value());
    c = std::move(*again);
    dup = produce(*c, inflight[4]);
    EXPECT_EQ(dup.error, 0);
    EXPECT_EQ(dup.base_offset, 11);
    EXPECT_EQ(produce(*c, batch(p, 13, 1, "c")).base_offset, 13);
    EXPECT_EQ(log_end(*c), 14);

    // Bumping the epoch fences the old one: INVALID_PRODUCER_EPOCH.
    producer_id bumped = init_producer(*c, p.id, p.epoch);
    EXPECT_EQ(bumped.id, p.id);
    EXPECT_EQ(bumped.epoch, p.epoch + 1);
    EXPECT_EQ(produce(*c, batch(bumped, 0, 1, "d")).base_offset, 14);
    EXPECT_EQ(produce(*c, batch(p, 14, 1, "stale")).error, 47);
    EXPECT_EQ(log_end(*c), 15);
}
