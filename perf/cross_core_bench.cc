// Cross-core messaging (issue #14): the cost of a message from one reactor to another and back,
// through the SPSC rings of a reactor_group, and through the mutex-guarded queue + eventfd that
// every post used before (the path that threads outside the group still take). Both run in the
// same process, one after the other, so their ratio is the figure; the rings_vs_mutex counter
// of the ring cases is the mutex path's time per round trip divided by the rings'.
//
//   build/perf/cross_core_bench --benchmark_min_time=2
//
// Cases: ping-pong (one message in flight: latency, the receiver often asleep) and a stream
// (a window of 256 in flight: throughput, the receiver busy).

#include <benchmark/benchmark.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <thread>

#include "runtime/reactor.h"

using namespace sluice;

namespace {

// Two reactors on their own threads; `rings`: joined to one group, else each post takes the
// mutex path.
struct pair_of_cores {
    explicit pair_of_cores(bool rings) : group(2) {
        for (unsigned i = 0; i < 2; ++i) {
            threads.emplace_back([this, i, rings] {
                auto r = runtime::reactor::create({.core = i});
                if (!r) std::abort();
                if (rings) (*r)->join(group);
                reactors[i].store(r->get());
                (*r)->run();
                while (stopped.load() < 2) std::this_thread::sleep_for(std::chrono::milliseconds(1));
            });
        }
        while (reactors[0].load() == nullptr || reactors[1].load() == nullptr) std::this_thread::yield();
    }
    ~pair_of_cores() {
        for (auto& a : reactors) {
            runtime::reactor* r = a.load();
            r->post([this, r] {
                r->stop();
                ++stopped;
            });
        }
        for (auto& t : threads) t.join();
    }
    runtime::reactor_group group;
    std::atomic<runtime::reactor*> reactors[2] = {nullptr, nullptr};
    std::vector<std::thread> threads;
    std::atomic<int> stopped{0};
};

// Runs `messages` round trips core 0 -> core 1 -> core 0 with `window` in flight; returns when
// all came back.
void round_trips(pair_of_cores& p, int64_t messages, int window) {
    std::atomic<bool> done{false};
    auto* a = p.reactors[0].load();
    auto* b = p.reactors[1].load();
    auto left = std::make_shared<int64_t>(messages);
    auto sent = std::make_shared<int64_t>(0);
    auto send_one = std::make_shared<std::function<void()>>();
    *send_one = [=, &done] {
        ++*sent;
        b->post([=, &done] {
            a->post([=, &done] {
                if (--*left == 0) {
                    done = true;
                    return;
                }
                if (*sent < messages) (*send_one)();
            });
        });
    };
    a->post([=] {
        for (int i = 0; i < window && *sent < messages; ++i) (*send_one)();
    });
    while (!done.load()) std::this_thread::yield();
    a->post([send_one] { *send_one = nullptr; });  // break the self-reference on core 0
}

void run_case(benchmark::State& state, bool rings, int window) {
    pair_of_cores p(rings);
    constexpr int64_t batch = 20'000;
    int64_t total = 0;
    for (auto _ : state) {
        round_trips(p, batch, window);
        total += batch;
    }
    state.SetItemsProcessed(total);
    state.counters["ns_per_round_trip"] =
        benchmark::Counter(static_cast<double>(total), benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}

void BM_ping_pong_mutex(benchmark::State& s) { run_case(s, false, 1); }
void BM_ping_pong_rings(benchmark::State& s) { run_case(s, true, 1); }
void BM_stream_mutex(benchmark::State& s) { run_case(s, false, 256); }
void BM_stream_rings(benchmark::State& s) { run_case(s, true, 256); }

}  // namespace

BENCHMARK(BM_ping_pong_mutex)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_ping_pong_rings)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_stream_mutex)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_stream_rings)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK_MAIN();
