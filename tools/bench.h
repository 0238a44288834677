#pragma once
// `sluice bench`, the native load generator (private to tools/). It speaks the Kafka protocol to
// any broker with many requests in flight: each worker thread owns its connections and keeps up
// to `in_flight` requests outstanding on each; producers send pre-encoded Produce frames whose
// batches only get fresh timestamps and CRCs per send, so the generator spends its CPU on I/O,
// not on building records. Consumers fetch with one request in flight per leader (a partition
// cannot be pipelined: the next offset is known only from the answer).
//
// Threads: one per producer, one per consumer, one reporter (progress line each second). They
// share only `side_stats` (atomics, and a mutex around the interval histogram) and `run_control`.

#include <atomic>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "model/record_batch.h"
#include "tools/histogram.h"
#include "tools/kafka_client.h"

namespace sluice::tools::bench {

enum class mode { produce, consume, both };

struct settings {
    client_options client;
    std::string topic = "sluice-bench";
    int32_t partitions = 1;           // when the topic is created
    int16_t replication_factor = -1;  // when the topic is created; -1: the broker's default
    size_t record_bytes = 1024;
    size_t batch_bytes = 64 * 1024;  // per partition per request
    int16_t acks = 1;
    model::compression codec = model::compression::none;
    int producers = 1;
    int consumers = 1;
    // Independent sets of `consumers` threads, each set reading every partition (a fan-out to
    // that many consumer groups, without group membership); their counts add up.
    int consumer_groups = 1;
    int in_flight = 5;       // requests outstanding per producer connection
    double duration_s = 10;  // used when records == 0
    uint64_t records = 0;    // records to produce (and consume); 0: run for duration_s
    double rate = 0;         // records/s over all producers; 0: as fast as possible
    mode run_mode = mode::produce;
    int32_t fetch_bytes = 8 << 20;  // partition_max_bytes of a fetch; loopback frame size
    // Consume mode, one partition per consumer: fetches in flight once the first pass over the
    // pre-filled log has shown where each fetch ends. 1: like Kafka's consumers.
    int fetch_in_flight = 1;
    uint64_t fill_bytes = 1ull << 30;  // consume mode: pre-fill the topic up to this much
    std::optional<std::string> json_path;
    bool quiet = false;  // no progress line
};

// Counters of one direction, shared by its workers and read by the reporter.
struct side_stats {
    std::atomic<uint64_t> records{0};
    std::atomic<uint64_t> payload_bytes{0};  // record values, uncompressed
    std::atomic<uint64_t> wire_bytes{0};     // record batches as sent / received
    std::atomic<uint64_t> requests{0};
    std::atomic<uint64_t> errors{0};
    std::mutex mu;
    histogram interval;  // request latency in ns since the last progress line (under mu)
    histogram total;     // everything before the last progress line (under mu)

    void record_latency(uint64_t ns) {
        std::lock_guard<std::mutex> g(mu);
        interval.record(ns);
    }
};

// When to stop, shared by all workers.
struct run_control {
    clock::time_point start;
    clock::time_point deadline;  // for duration runs
    bool by_records = false;
    std::atomic<int64_t> produce_left{0};  // records not yet claimed by a producer
    std::atomic<int64_t> consume_left{0};  // records not yet counted by a consumer
    std::atomic<bool> stop{false};         // everything stops (error or signal)
    std::atomic<bool> producers_done{false};
    std::atomic<int> failed_workers{0};
    std::string first_error;  // under error_mu
    std::mutex error_mu;

    void fail(const std::string& why);
    bool past_deadline() const { return !by_records && clock::now() >= deadline; }
};

// Partition -> offset maps per topic partition, as found by ListOffsets.
using offsets = std::vector<int64_t>;

[[nodiscard]] result<offsets> list_offsets(client& c, const std::string& topic, int32_t partitions,
                                           int64_t timestamp);

// Runs `producers` threads until `ctl` says stop; counts into `stats`.
void run_producers(const settings& s, int32_t partitions, run_control& ctl, side_stats& stats);
// Runs `consumers` threads from `start` offsets. They stop at `ctl`'s deadline or record budget;
// with `end` given (mode both: filled in once producers are done) they stop when every partition
// reached it; in consume mode they wrap around to `wrap_to` at `wrap_at`.
struct consume_plan {
    offsets start;
    offsets wrap_at;  // empty: no wrapping
    offsets wrap_to;
    std::vector<std::atomic<int64_t>>* end = nullptr;  // mode both
};
void run_consumers(const settings& s, int32_t partitions, const consume_plan& plan,
                   run_control& ctl, side_stats& stats);

// The loopback reference: a server thread pushes frames of `s.fetch_bytes` over a local TCP
// connection; the client reads them with the same connection::read_frame as fetches.
struct loopback_result {
    uint64_t bytes = 0;
    double seconds = 0;
};
[[nodiscard]] result<loopback_result> run_loopback(const settings& s);

}  // namespace sluice::tools::bench
