#pragma once
// What an operator sees from outside: Prometheus metrics in the text exposition format at
// http://<sluice.metrics.listener>/metrics, and /healthz (the process answers) and /readyz
// (every core serves and, in a cluster, the broker has joined) for orchestration.
//
// Counters are kept per core in `core_metrics` (relaxed atomics written only by their core, so
// the hot paths never share a cache line); the endpoint's thread sums them when scraped.
// Per-topic byte counters live in a small per-core map behind an uncontended mutex. Log sizes,
// segment counts, offsets and the engine's counters are gathered from the owning cores at
// scrape time (a task posted to each core, answered within a bound); cluster gauges come from
// the cluster view. Partition-level labels only with sluice.metrics.partition.labels=true
// (cardinality).
//
// Lifecycle: created with the server; the endpoint thread starts with start() and ends with
// stop(). Off unless sluice.metrics.listener is set.

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "base/fd.h"
#include "base/result.h"

namespace sluice::broker {

class server;

inline constexpr int metrics_api_keys = 80;      // Kafka API keys tracked (0..79)
inline constexpr int metrics_error_codes = 128;  // Kafka error codes tracked (0..127)
// Request latency buckets (seconds), Prometheus histogram style (cumulative when exported).
inline constexpr std::array<double, 12> latency_buckets_s{
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1.0};

struct alignas(64) core_metrics {
    std::array<std::atomic<uint64_t>, metrics_api_keys> requests{};
    std::array<std::atomic<uint64_t>, metrics_api_keys> latency_sum_us{};
    std::array<std::array<std::atomic<uint64_t>, latency_buckets_s.size() + 1>, metrics_api_keys>
        latency_buckets{};
    // Partition-level error codes of Produce (0) and Fetch (1) answers.
    std::array<std::array<std::atomic<uint64_t>, metrics_error_codes>, 2> partition_errors{};
    std::atomic<uint64_t> connections_accepted{0};
    std::atomic<uint64_t> connections_closed{0};
    std::atomic<uint64_t> auth_failures{0};
    std::atomic<uint64_t> throttled_ms{0};
    // ISR changes of the partitions this broker leads, whether it wrote them (a lagging or
    // caught-up follower) or the controller did (a dead or stopping broker): Kafka's
    // IsrShrinksPerSec / IsrExpandsPerSec. A change that removes some replicas and adds others
    // counts as both.
    std::atomic<uint64_t> isr_shrinks{0};
    std::atomic<uint64_t> isr_expands{0};

    struct topic_bytes {
        uint64_t in = 0;
        uint64_t out = 0;
    };
    std::mutex topics_mu;
    std::map<std::string, topic_bytes> topics;
};

class metrics {
public:
    explicit metrics(unsigned cores) : _cores(cores) {
        for (auto& c : _cores) c = std::make_unique<core_metrics>();
    }
    core_metrics& core(unsigned i) { return *_cores[i]; }
    // The calling reactor's counters (the sessions' core).
    void request_done(unsigned core, int16_t api_key, std::chrono::microseconds latency);
    void partition_error(unsigned core, int api /*0 produce, 1 fetch*/, int16_t code);
    void topic_bytes(unsigned core, const std::string& topic, uint64_t in, uint64_t out);

    // Starts the endpoint on "host:port" (sluice.metrics.listener); the port may be 0 (the real
    // one is then bound_port()).
    result<void> start(server& srv, const std::string& listener);
    void stop();
    uint16_t bound_port() const { return _port; }
    ~metrics() { stop(); }

    // The /metrics page (also used by tests).
    std::string render(server& srv);

private:
    void serve_loop(server& srv);
    void answer(server& srv, int client_fd);

    std::vector<std::unique_ptr<core_metrics>> _cores;
    unique_fd _listen;
    uint16_t _port = 0;
    std::atomic<bool> _stopping{false};
    std::thread _thread;
};

}  // namespace sluice::broker
