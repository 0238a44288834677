// Hot-path micro-benchmarks (Google Benchmark): the per-byte and per-request work a produce and a
// fetch pay in the broker, outside the storage engine (engine_bench covers the append path):
//
//  produce_decode      decode a Produce v9 request of 16 partitions x one 16 KiB batch of 1 KiB
//                      records (the records stay a view into the frame) and split its batches
//  produce_encode      encode that request (the records are copied into the frame)
//  validate_crc        model::validate() of each of those 16 batches: framing, record walk, CRC-32C
//  crc32c              CRC-32C of the same 256 KiB
//  fetch_encode        encode a Fetch v12 response of 16 partitions x 64 KiB in memory
//  fetch_decode        decode it again (the records stay views)
//  index_lookup        engine::offset_index::lookup at 1024 random offsets of a 4096-entry index
//  memcpy              the reference: memcpy of the same bytes
//
// Two ways to run it:
//  - as a Google Benchmark binary: every byte-moving benchmark also times a memcpy of the same
//    bytes inside each iteration, alternating which goes first, and reports `ratio_vs_memcpy` =
//    its throughput / memcpy's, the median of the per-iteration ratios (a burst of load from
//    another process spoils one pair, not the figure);
//  - `hotpath_bench --callgrind`, under `valgrind --tool=callgrind`: runs each workload a fixed
//    number of times between CALLGRIND_ZERO_STATS and CALLGRIND_DUMP_STATS_AT(name), so each
//    dump holds that workload's instruction count. perf/gate divides them by the bytes or calls
//    (printed on stdout) — counts that do not move when the machine is busy.

#include <benchmark/benchmark.h>
#include <valgrind/callgrind.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "base/crc32c.h"
#include "engine/index.h"
#include "model/record_batch.h"
#include "model/records.h"
#include "protocol/generated/messages.h"
#include "protocol/reader.h"
#include "protocol/writer.h"

namespace sluice::perf {
namespace {

using bench_clock = std::chrono::steady_clock;

constexpr int partition_count = 16;
constexpr size_t record_value_bytes = 1024;
constexpr size_t produce_batch_bytes = 16 * 1024;
constexpr size_t fetch_partition_bytes = 64 * 1024;
constexpr int index_entries = 4096;
constexpr int index_lookups = 1024;
constexpr int16_t produce_version = protocol::produce_api::max_version;
constexpr int16_t fetch_version = 12;  // topic names, flexible; v13 only swaps names for ids

// Batches of 1 KiB records, uncompressed, no keys: what a producer at full speed sends.
std::vector<std::byte> make_batch(size_t batch_bytes, std::mt19937_64& rng) {
    model::batch_builder b;
    std::vector<std::byte> value(record_value_bytes);
    while (b.empty() || b.uncompressed_batch_bytes() + record_value_bytes + 16 <= batch_bytes) {
        for (auto& v : value) v = std::byte('a' + (rng() % 26));
        b.add(std::nullopt, value, 1'700'000'000'000);
    }
    auto out = b.build();
    if (!out) std::abort();
    return std::move(*out);
}

// The inputs, built once.
struct fixture {
    std::vector<std::vector<std::byte>> produce_batches;  // 16 x 16 KiB
    std::vector<std::vector<std::byte>> fetch_records;    // 16 x 64 KiB (back-to-back batches)
    std::vector<std::byte> produce_body;                  // encoded request body
    std::vector<std::byte> fetch_body;                    // encoded response body
    size_t produce_bytes = 0;                             // record bytes in the request
    size_t fetch_bytes = 0;
    engine::offset_index index;
    std::vector<int32_t> lookups;

    fixture() {
        std::mt19937_64 rng(42);
        for (int p = 0; p < partition_count; ++p) {
            produce_batches.push_back(make_batch(produce_batch_bytes, rng));
            produce_bytes += produce_batches.back().size();
            std::vector<std::byte> run;
            while (run.size() + produce_batch_bytes <= fetch_partition_bytes) {
                auto b = make_batch(produce_batch_bytes, rng);
                run.insert(run.end(), b.begin(), b.end());
            }
            fetch_bytes += run.size();
            fetch_records.push_back(std::move(run));
        }
        produce_body = encode_produce();
        fetch_body = encode_fetch();
        for (int i = 0; i < index_entries; ++i) {
            index.append(i * 16 + 15, static_cast<uint32_t>(i) * 16 * 1024);
        }
        for (int i = 0; i < index_lookups; ++i) {
            lookups.push_back(static_cast<int32_t>(rng() % (index_entries * 16)));
        }
    }

    protocol::produce_request produce_request() const {
        protocol::produce_request req;
        req.acks = 1;
        req.timeout_ms = 30000;
        auto& td = req.topic_data.emplace_back();
        td.name = "sluice-bench";
        for (int p = 0; p < partition_count; ++p) {
            auto& pd = td.partition_data.emplace_back();
            pd.index = p;
            pd.records = protocol::records::from_memory(produce_batches[static_cast<size_t>(p)]);
        }
        return req;
    }

    std::vector<std::byte> encode_produce() const {
        protocol::writer w(produce_bytes + 1024);
        produce_request().encode(w, produce_version);
        return w.take_bytes();
    }

    protocol::fetch_response fetch_response() const {
        protocol::fetch_response resp;
        auto& t = resp.responses.emplace_back();
        t.topic = "sluice-bench";
        for (int p = 0; p < partition_count; ++p) {
            auto& pd = t.partitions.emplace_back();
            pd.partition_index = p;
            pd.high_watermark = 1'000'000;
            pd.last_stable_offset = 1'000'000;
            pd.log_start_offset = 0;
            pd.records = protocol::records::from_memory(fetch_records[static_cast<size_t>(p)]);
        }
        return resp;
    }

    std::vector<std::byte> encode_fetch() const {
        protocol::writer w(fetch_bytes + 4096);
        fetch_response().encode(w, fetch_version);
        return w.take_bytes();
    }
};

const fixture& data() {
    static const fixture f;
    return f;
}

// One run of each workload; each returns something the optimizer must keep.
struct workload {
    const char* name;
    std::function<size_t()> bytes;  // bytes one run moves (0: a per-call benchmark)
    std::function<uint64_t()> run;
};

uint64_t produce_decode() {
    const auto& f = data();
    protocol::reader r(f.produce_body);
    protocol::produce_request req;
    if (!req.decode(r, produce_version)) std::abort();
    uint64_t batches = 0;
    for (const auto& t : req.topic_data) {
        for (const auto& p : t.partition_data) {
            model::batch_iterator it(p.records.memory());
            model::batch_header h;
            std::span<const std::byte> b;
            while (it.next(h, b)) batches += static_cast<uint64_t>(h.record_count);
        }
    }
    return batches;
}

uint64_t produce_encode() {
    const auto& f = data();
    protocol::writer w(f.produce_bytes + 1024);
    f.produce_request().encode(w, produce_version);
    return w.size_bytes();
}

uint64_t validate_crc() {
    uint64_t records = 0;
    model::validation_limits limits;
    for (const auto& b : data().produce_batches) {
        auto h = model::validate(b, limits);
        if (!h) std::abort();
        records += static_cast<uint64_t>(h->record_count);
    }
    return records;
}

uint64_t crc32c_all() {
    uint32_t crc = 0;
    for (const auto& b : data().produce_batches) crc ^= crc32c::value(b.data(), b.size());
    return crc;
}

uint64_t fetch_encode() {
    const auto& f = data();
    protocol::writer w(f.fetch_bytes + 4096);
    f.fetch_response().encode(w, fetch_version);
    return w.size_bytes();
}

uint64_t fetch_decode() {
    const auto& f = data();
    protocol::reader r(f.fetch_body);
    protocol::fetch_response resp;
    if (!resp.decode(r, fetch_version)) std::abort();
    uint64_t bytes = 0;
    for (const auto& t : resp.responses) {
        for (const auto& p : t.partitions) bytes += p.records.memory().size();
    }
    return bytes;
}

uint64_t index_lookup() {
    const auto& f = data();
    uint64_t sum = 0;
    for (int32_t o : f.lookups) sum += f.index.lookup(o);
    return sum;
}

// memcpy of `n` bytes from the produce batches (n <= their total), the reference.
uint64_t memcpy_bytes(size_t n) {
    static std::vector<std::byte> dst(data().fetch_bytes);
    size_t at = 0;
    for (const auto& b : data().produce_batches) {
        if (at >= n) break;
        size_t len = std::min(b.size(), n - at);
        std::memcpy(dst.data() + at, b.data(), len);
        at += len;
    }
    // The fetch payload is larger than the produce batches: copy them again until n is reached.
    while (at < n) {
        size_t len = std::min(data().produce_batches[0].size(), n - at);
        std::memcpy(dst.data() + at, data().produce_batches[0].data(), len);
        at += len;
    }
    benchmark::ClobberMemory();
    return static_cast<uint64_t>(dst[n / 2]);
}

std::vector<workload> workloads() {
    auto produce = [] { return data().produce_bytes; };
    auto fetch = [] { return data().fetch_bytes; };
    return {
        {"produce_decode", produce, produce_decode},
        {"produce_encode", produce, produce_encode},
        {"validate_crc", produce, validate_crc},
        {"crc32c", produce, crc32c_all},
        {"fetch_encode", fetch, fetch_encode},
        {"fetch_decode", fetch, fetch_decode},
        {"index_lookup", [] { return size_t{0}; }, index_lookup},
        {"memcpy", produce, [] { return memcpy_bytes(data().produce_bytes); }},
    };
}

double seconds_of(const std::function<uint64_t()>& fn, int reps) {
    auto t0 = bench_clock::now();
    for (int i = 0; i < reps; ++i) benchmark::DoNotOptimize(fn());
    return std::chrono::duration<double>(bench_clock::now() - t0).count();
}

// Each iteration runs the workload `reps` times and a memcpy of the same bytes `reps` times, in
// alternating order; the counter is the median of the per-iteration throughput ratios.
void run_with_reference(benchmark::State& state, const workload& w) {
    constexpr int reps = 8;
    size_t bytes = w.bytes();
    std::vector<double> ratios;
    bool workload_first = true;
    for (auto _ : state) {
        double own = 0, ref = 0;
        auto ref_fn = [bytes] { return memcpy_bytes(bytes); };
        if (workload_first) {
            own = seconds_of(w.run, reps);
            ref = seconds_of(ref_fn, reps);
        } else {
            ref = seconds_of(ref_fn, reps);
            own = seconds_of(w.run, reps);
        }
        workload_first = !workload_first;
        state.SetIterationTime(own);
        if (own > 0) ratios.push_back(ref / own);
    }
    std::sort(ratios.begin(), ratios.end());
    state.counters["ratio_vs_memcpy"] = ratios.empty() ? 0 : ratios[ratios.size() / 2];
    state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * reps *
                            static_cast<int64_t>(bytes));
}

void run_per_call(benchmark::State& state, const workload& w) {
    for (auto _ : state) benchmark::DoNotOptimize(w.run());
    state.SetItemsProcessed(static_cast<int64_t>(state.iterations()) * index_lookups);
}

void register_all() {
    for (const auto& w : workloads()) {
        if (std::string(w.name) == "memcpy") continue;  // it is every benchmark's reference
        if (w.bytes() == 0) {
            benchmark::RegisterBenchmark(w.name, [w](benchmark::State& s) { run_per_call(s, w); });
        } else {
            benchmark::RegisterBenchmark(w.name,
                                         [w](benchmark::State& s) { run_with_reference(s, w); })
                ->UseManualTime();
        }
    }
}

// Under callgrind: one dump per workload. Prints "name runs bytes_per_run" lines for the gate.
int run_callgrind(int runs) {
    for (const auto& w : workloads()) {
        benchmark::DoNotOptimize(w.run());  // warm: statics, allocator, page faults
        CALLGRIND_ZERO_STATS;
        uint64_t sink = 0;
        for (int i = 0; i < runs; ++i) sink += w.run();
        CALLGRIND_DUMP_STATS_AT(w.name);
        benchmark::DoNotOptimize(sink);
        std::printf("%s %d %zu\n", w.name, runs, w.bytes());
    }
    return 0;
}

}  // namespace
}  // namespace sluice::perf

int main(int argc, char** argv) {
    for (int i = 1; i < argc; ++i) {
        if (std::strcmp(argv[i], "--callgrind") == 0) {
            int runs = i + 1 < argc ? std::max(1, std::atoi(argv[i + 1])) : 20;
            return sluice::perf::run_callgrind(runs);
        }
    }
    sluice::perf::register_all();
    benchmark::Initialize(&argc, argv);
    if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    return 0;
}
