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
#include <set>
#include <string>
#include <vector>

#include "model/record_batch.h"
#include "tools/histogram.h"
#include "tools/kafka_client.h"

namespace sluice::tools::bench {

enum class mode { produce, consume, both };

// Where a group member starts on a partition its group has no committed offset for.
enum class offset_reset {
    earliest,
    latest,  // the log end when the run started, so nothing produced during the run is missed
};

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
    // Sets of `consumers` threads, each set reading every partition (a fan-out to that many
    // consumer groups); their counts add up. Without `group` the sets are independent readers:
    // each thread reads a fixed share of the partitions, with no group membership.
    int consumer_groups = 1;
    // Consumers are members of consumer group `group` (`group`-0 .. `group`-(G-1) with G
    // consumer groups): range assignment, heartbeats, offset commits, LeaveGroup at the end.
    std::optional<std::string> group;
    int commit_interval_ms = 1000;  // group members commit this often; 0: only when giving up
                                    // partitions and at the end
    offset_reset reset = offset_reset::latest;  // --mode consume: earliest unless told
    int in_flight = 5;                          // requests outstanding per producer connection
    double duration_s = 10;                     // used when records == 0
    uint64_t records = 0;  // records to produce (and consume); 0: run for duration_s
    double rate = 0;       // records/s over all producers; 0: as fast as possible
    mode run_mode = mode::produce;
    int32_t fetch_bytes = 8 << 20;  // partition_max_bytes of a fetch; loopback frame size
    // Consume mode, one partition per consumer: fetches in flight once the first pass over the
    // pre-filled log has shown where each fetch ends. 1: like Kafka's consumers.
    int fetch_in_flight = 1;
    uint64_t fill_bytes = 1ull << 30;  // consume mode: pre-fill the topic up to this much
    std::optional<std::string> json_path;
    bool quiet = false;  // no progress line
    // Producers with a producer id and per-partition sequences (InitProducerId), as an
    // idempotent Kafka producer writes. Implied by transactional_id.
    bool idempotent = false;
    // Transactional producers: producer i uses `transactional_id`-i, and commits a transaction
    // of txn_records records (AddPartitionsToTxn, the produces, EndTxn) over and over.
    std::optional<std::string> transactional_id;
    int txn_records = 100;
};

// Counters of one direction, shared by its workers and read by the reporter.
struct side_stats {
    std::atomic<uint64_t> records{0};
    std::atomic<uint64_t> payload_bytes{0};  // record values, uncompressed
    std::atomic<uint64_t> wire_bytes{0};     // record batches as sent / received
    std::atomic<uint64_t> requests{0};
    std::atomic<uint64_t> errors{0};
    std::atomic<uint64_t> transactions{0};  // committed (transactional producers)
    std::mutex mu;
    histogram interval;  // request latency in ns since the last progress line (under mu)
    histogram total;     // everything before the last progress line (under mu)

    void record_latency(uint64_t ns) {
        std::lock_guard<std::mutex> g(mu);
        interval.record(ns);
    }
};

// One consumer group of a `group` run: its members' threads count into it; the report reads it.
struct group_stats {
    // What one member reports about itself (under mu).
    struct member {
        std::string member_id;
        bool leader = false;
        std::vector<int32_t> partitions;  // of the last assignment
        int joins = 0;                    // assignments received (generations joined)
        double first_assignment_s = -1;   // from the member's start to its first assignment
    };

    group_stats(std::string group_name, int32_t partitions, int members)
        : name(std::move(group_name)),
          positions(static_cast<size_t>(partitions)),
          members(static_cast<size_t>(members)) {
        for (auto& p : positions) p = -1;
    }

    std::string name;
    std::atomic<uint64_t> records{0};
    std::atomic<uint64_t> payload_bytes{0};
    std::atomic<uint64_t> wire_bytes{0};
    std::atomic<int64_t> consume_left{0};  // --mode consume with --records: left to count
    // Per partition: the next offset the group reads (its owner's position), -1 before anyone
    // owned it. The group is done when every partition reached the end.
    std::vector<std::atomic<int64_t>> positions;
    std::atomic<uint64_t> commits{0};
    std::atomic<uint64_t> commit_errors{0};
    std::mutex mu;
    histogram commit_latency;       // ns (under mu)
    std::set<int32_t> generations;  // generations members were assigned in (under mu)
    std::vector<member> members;    // by member index (under mu)
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
    // Group runs: members count themselves once assigned, then wait for `started` before they
    // read the fields above; the clock starts (and producers write) when all are assigned.
    std::atomic<int> consumers_assigned{0};
    std::atomic<bool> started{false};
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
// reached it; in consume mode they wrap around to `wrap_to` at `wrap_at`. With `group`, the
// threads are its members: `start` is where a partition without a committed offset starts, and
// in consume mode `end` (the log end at the start) is where they stop, without wrapping.
struct consume_plan {
    offsets start;
    offsets wrap_at;  // empty: no wrapping
    offsets wrap_to;
    std::vector<std::atomic<int64_t>>* end = nullptr;  // mode both; groups in consume mode
};
void run_consumers(const settings& s, int32_t partitions, const consume_plan& plan,
                   run_control& ctl, side_stats& stats, group_stats* group = nullptr);

// The loopback reference: a server thread pushes frames of `s.fetch_bytes` over a local TCP
// connection; the client reads them with the same connection::read_frame as fetches.
struct loopback_result {
    uint64_t bytes = 0;
    double seconds = 0;
};
[[nodiscard]] result<loopback_result> run_loopback(const settings& s);

}  // namespace sluice::tools::bench
