// Storage engine micro-benchmarks (Google Benchmark). Every figure that matters is a ratio
// against a reference measured in the same benchmark, on the same file system, interleaved
// iteration by iteration with the engine's run, so machine noise hits both (DESIGN.md section 10):
//
//  append/<batch KiB>/<policy>/<closed loop>
//                                1 KiB records in 16 or 256 KiB batches, fsync never|batch|always,
//                                against a plain pwrite loop writing the same bytes (no fsync).
//                                Policy numbers are log_config's enum: 0 never, 1 always, 2 batch.
//  group_commit/<appenders>      fsync=always, 16 KiB batches, 1/8/64 closed-loop appenders,
//                                against write+fdatasync per append.
//  read/<segment MiB>/<max KiB>  partition_log::read (offset lookup + region building) at
//                                random offsets of a 64 MiB multi-segment log.
//
// Data lives in a fresh directory under $SLUICE_BENCH_DIR (default /var/tmp, which must be a real
// disk, not tmpfs), removed afterwards. perf/README.md has the figures and the command line.

#include <benchmark/benchmark.h>
#include <fcntl.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "engine/file.h"
#include "engine/partition_log.h"
#include "model/records.h"
#include "runtime/clock.h"
#include "runtime/reactor.h"

namespace sluice::perf {
namespace {

using engine::fsync_policy;
using engine::log_config;
using engine::partition_log;
using bench_clock = std::chrono::steady_clock;

constexpr size_t record_value_bytes = 1024;
constexpr size_t append_bytes_per_iteration = size_t{16} << 20;
// The throughput benchmark is a producer that, like requests arriving from the network, offers
// at most `arrival_bytes_per_turn` per reactor turn and keeps at most `append_window_bytes`
// unacknowledged (well under append_buffer_max_bytes), whatever the policy.
constexpr size_t append_window_bytes = size_t{8} << 20;
constexpr size_t arrival_bytes_per_turn = size_t{256} << 10;
constexpr size_t group_commit_batch_bytes = 16 * 1024;
constexpr int reference_fsync_appends = 100;  // write+fdatasync reference, per iteration

[[noreturn]] void die(const std::string& why) {
    std::fprintf(stderr, "engine_bench: %s\n", why.c_str());
    std::exit(1);
}

std::string bench_root() {
    const char* d = std::getenv("SLUICE_BENCH_DIR");
    return d != nullptr ? d : "/var/tmp";
}

// A fresh directory, removed on destruction.
class scratch_dir {
  public:
    scratch_dir() {
        std::string tmpl = bench_root() + "/sluice-bench-XXXXXX";
        if (::mkdtemp(tmpl.data()) == nullptr) die("mkdtemp in " + bench_root());
        _path = tmpl;
    }
    ~scratch_dir() {
        std::error_code ec;
        std::filesystem::remove_all(_path, ec);
    }
    const std::string& path() const { return _path; }

  private:
    std::string _path;
};

// One batch of `batch_bytes / 1 KiB` records with 1 KiB values (no keys), uncompressed.
std::vector<std::byte> make_batch(size_t batch_bytes) {
    model::batch_builder b;
    const std::string value(record_value_bytes, 'v');
    for (size_t i = 0; i < batch_bytes / record_value_bytes; ++i) {
        b.add(std::nullopt, model::bytes_of(value), 1'700'000'000'000);
    }
    auto bytes = b.build();
    if (!bytes) die(bytes.error().describe());
    return std::move(*bytes);
}

// A partition log on its own reactor in a scratch directory.
struct log_env {
    explicit log_env(log_config cfg) {
        auto r = runtime::reactor::create({});
        if (!r) die(r.error().describe());
        reactor = std::move(*r);
        auto l = partition_log::open(*reactor, engine::posix_file_system::instance(), dir.path(),
                                     model::tp{"bench", model::partition_id(0)}, cfg,
                                     runtime::system_clock::instance());
        if (!l) die(l.error().describe());
        log = std::move(*l);
    }
    ~log_env() {
        bool done = false;
        log->close([&](result<void> r) {
            if (!r) die(r.error().describe());
            done = true;
        });
        reactor->run_until([&] { return done; });
        log.reset();
    }

    // Appends `batch` `count` times with at most `window` appends outstanding (each completion
    // issues the next one) and waits for every acknowledgement.
    void append_closed_loop(std::vector<std::byte>& batch, size_t count, size_t window) {
        size_t issued = 0;
        size_t done = 0;
        std::function<void()> issue = [&] {
            if (issued == count) return;
            ++issued;
            log->append(batch, {}, [&](result<engine::append_result> a) {
                if (!a) die(a.error().describe());
                ++done;
                issue();
            });
        };
        for (size_t i = 0; i < window && i < count; ++i) issue();
        reactor->run_until([&] { return done == count; });
    }

    // Appends `batch` `count` times: each reactor turn offers up to `per_turn` appends as long as
    // fewer than `window` are unacknowledged; waits for every acknowledgement. With the window
    // full the producer sleeps until an acknowledgement (it does not spin the reactor).
    void append_streaming(std::vector<std::byte>& batch, size_t count, size_t per_turn,
                          size_t window) {
        size_t issued = 0;
        size_t done = 0;
        bool scheduled = false;
        std::function<void()> pump;
        auto schedule = [&] {
            if (scheduled || issued == count || issued - done >= window) return;
            scheduled = true;
            reactor->defer(pump);
        };
        pump = [&] {
            scheduled = false;
            for (size_t i = 0; i < per_turn && issued < count && issued - done < window; ++i) {
                ++issued;
                log->append(batch, {}, [&](result<engine::append_result> a) {
                    if (!a) die(a.error().describe());
                    ++done;
                    schedule();
                });
            }
            schedule();
        };
        pump();
        reactor->run_until([&] { return done == count; });
    }

    scratch_dir dir;
    std::unique_ptr<runtime::reactor> reactor;
    std::unique_ptr<partition_log> log;
};

double seconds_since(bench_clock::time_point t0) {
    return std::chrono::duration<double>(bench_clock::now() - t0).count();
}

// The reference for append throughput: the same bytes appended with a plain pwrite loop to a
// file in the same directory (no fsync). Like the engine's log, the file grows across iterations
// and is removed only at the end: on a VM, page-cache pages that were never touched before cost a
// host page fault each, so a reference that reused freed pages would look several times faster
// than any writer that keeps its data. Returns seconds.
class pwrite_reference {
  public:
    explicit pwrite_reference(const std::string& dir) : _path(dir + "/reference.log") {
        _fd = ::open(_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (_fd < 0) die("open " + _path);
    }
    ~pwrite_reference() {
        ::close(_fd);
        ::unlink(_path.c_str());
    }
    double run(const std::vector<std::byte>& batch, size_t count) {
        const auto t0 = bench_clock::now();
        for (size_t i = 0; i < count; ++i) {
            if (::pwrite(_fd, batch.data(), batch.size(), static_cast<off_t>(_pos)) !=
                static_cast<ssize_t>(batch.size())) {
                die("pwrite " + _path);
            }
            _pos += batch.size();
        }
        return seconds_since(t0);
    }

  private:
    std::string _path;
    int _fd = -1;
    uint64_t _pos = 0;
};

// The reference for group commit: one write + fdatasync per append. Returns seconds.
double fsync_per_append_reference(const std::string& dir, const std::vector<std::byte>& batch,
                                  int count) {
    const std::string path = dir + "/reference-fsync.log";
    int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) die("open " + path);
    const auto t0 = bench_clock::now();
    uint64_t pos = 0;
    for (int i = 0; i < count; ++i) {
        if (::pwrite(fd, batch.data(), batch.size(), static_cast<off_t>(pos)) !=
            static_cast<ssize_t>(batch.size())) {
            die("pwrite " + path);
        }
        if (::fdatasync(fd) != 0) die("fdatasync " + path);
        pos += batch.size();
    }
    const double s = seconds_since(t0);
    ::close(fd);
    ::unlink(path.c_str());
    return s;
}

const char* policy_name(fsync_policy p) {
    switch (p) {
        case fsync_policy::never:
            return "never";
        case fsync_policy::batch:
            return "batch";
        case fsync_policy::always:
            return "always";
    }
    return "?";
}

// ---------------------------------------------------------------------------------------------

// The median of per-iteration ratios: robust against bursts of load from other processes,
// which on a shared machine hit one iteration of the engine or of the reference, not both.
double median(std::vector<double> v) {
    if (v.empty()) return 0;
    std::sort(v.begin(), v.end());
    const size_t n = v.size();
    return n % 2 == 1 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

// Runs `engine` and `reference` (each returns seconds) once per iteration, alternating which goes
// first, and reports the engine's time to the framework. Returns per-iteration
// reference_s / engine_s (higher is better for the engine) and the totals.
struct paired_times {
    double engine_s = 0;
    double reference_s = 0;
    std::vector<double> ratios;
};
template <class Engine, class Reference>
paired_times run_paired(benchmark::State& state, Engine&& engine, Reference&& reference) {
    paired_times t;
    bool engine_first = true;
    for (auto _ : state) {
        double e = 0;
        double r = 0;
        if (engine_first) {
            e = engine();
            r = reference();
        } else {
            r = reference();
            e = engine();
        }
        engine_first = !engine_first;
        state.SetIterationTime(e);
        t.engine_s += e;
        t.reference_s += r;
        t.ratios.push_back(r / e);
    }
    return t;
}

void bm_append(benchmark::State& state) {
    const size_t batch_target_bytes = static_cast<size_t>(state.range(0)) * 1024;
    const auto policy = static_cast<fsync_policy>(state.range(1));
    const bool closed_loop = state.range(2) != 0;
    state.SetLabel(std::string(policy_name(policy)) + (closed_loop ? " closed-loop" : ""));
    log_config cfg;
    cfg.fsync = policy;
    log_env env(cfg);
    auto batch = make_batch(batch_target_bytes);
    const size_t count = append_bytes_per_iteration / batch_target_bytes;
    const size_t window = std::max<size_t>(1, append_window_bytes / batch.size());
    const size_t per_turn = std::max<size_t>(1, arrival_bytes_per_turn / batch.size());
    const uint64_t fsyncs_before = env.log->stats().fsyncs;
    pwrite_reference reference(env.dir.path());
    auto t = run_paired(
        state,
        [&] {
            const auto t0 = bench_clock::now();
            if (closed_loop) {
                env.append_closed_loop(batch, count, window);
            } else {
                env.append_streaming(batch, count, per_turn, window);
            }
            return seconds_since(t0);
        },
        [&] { return reference.run(batch, count); });
    const double bytes = static_cast<double>(batch.size() * count * state.iterations());
    state.SetBytesProcessed(static_cast<int64_t>(bytes));
    state.counters["engine_MBps"] = bytes / t.engine_s / 1e6;
    state.counters["pwrite_ref_MBps"] = bytes / t.reference_s / 1e6;
    state.counters["ratio_vs_pwrite"] = median(t.ratios);
    state.counters["fsyncs_per_iter"] =
        static_cast<double>(env.log->stats().fsyncs - fsyncs_before) / state.iterations();
}

void bm_group_commit(benchmark::State& state) {
    const auto appenders = static_cast<size_t>(state.range(0));
    log_config cfg;
    cfg.fsync = fsync_policy::always;
    log_env env(cfg);
    auto batch = make_batch(group_commit_batch_bytes);
    const size_t count = std::max<size_t>(200, appenders * 40);
    const uint64_t fsyncs_before = env.log->stats().fsyncs;
    // Ratios of rates: (count / engine_s) / (reference_fsync_appends / reference_s).
    const double per_append_scale = static_cast<double>(count) / reference_fsync_appends;
    auto t = run_paired(
        state,
        [&] {
            const auto t0 = bench_clock::now();
            env.append_closed_loop(batch, count, appenders);
            return seconds_since(t0);
        },
        [&] {
            return fsync_per_append_reference(env.dir.path(), batch, reference_fsync_appends) *
                   per_append_scale;
        });
    const double appends = static_cast<double>(count * state.iterations());
    const double fsyncs = static_cast<double>(env.log->stats().fsyncs - fsyncs_before);
    state.SetItemsProcessed(static_cast<int64_t>(appends));
    state.counters["appends_per_s"] = appends / t.engine_s;
    state.counters["fsyncs_per_s"] = fsyncs / t.engine_s;
    state.counters["appends_per_fsync"] = fsyncs > 0 ? appends / fsyncs : 0;
    state.counters["ref_fsync_per_append_per_s"] = appends / t.reference_s;
    state.counters["ratio_vs_fsync_per_append"] = median(t.ratios);
}

// A 64 MiB log of 16 KiB batches, built once per segment size and kept for every read benchmark.
struct read_fixture {
    static constexpr size_t log_bytes = size_t{64} << 20;

    explicit read_fixture(uint64_t segment_bytes) : env(config(segment_bytes)) {
        auto batch = make_batch(16 * 1024);
        env.append_closed_loop(batch, log_bytes / batch.size(), 64);
        end = env.log->log_end_offset()();
        segments = env.log->closed_segments().size() + 1;
    }
    static log_config config(uint64_t segment_bytes) {
        log_config cfg;
        cfg.segment_bytes = segment_bytes;
        return cfg;
    }

    log_env env;
    int64_t end = 0;
    size_t segments = 0;
};

// The current fixture. Only one lives at a time (one reactor per thread); the read benchmarks
// are registered grouped by segment size, so each log is built once.
std::unique_ptr<read_fixture>& current_read_fixture() {
    static std::unique_ptr<read_fixture> f;
    return f;
}

read_fixture& fixture_for(uint64_t segment_bytes) {
    auto& f = current_read_fixture();
    if (f && f->env.log->config().segment_bytes == segment_bytes) return *f;
    f.reset();
    f = std::make_unique<read_fixture>(segment_bytes);
    return *f;
}

void bm_read(benchmark::State& state) {
    const uint64_t segment_bytes = static_cast<uint64_t>(state.range(0)) << 20;
    const size_t max_bytes = static_cast<size_t>(state.range(1)) * 1024;
    read_fixture& f = fixture_for(segment_bytes);
    std::mt19937_64 rng(42);
    std::uniform_int_distribution<int64_t> pick(0, f.end - 1);
    uint64_t bytes = 0;
    for (auto _ : state) {
        auto r = f.env.log->read(model::offset(pick(rng)), max_bytes, model::offset(f.end), true);
        if (!r) die(r.error().describe());
        bytes += r->total_bytes;
        benchmark::DoNotOptimize(r->regions.data());
    }
    state.counters["segments"] = static_cast<double>(f.segments);
    state.counters["region_bytes_per_read"] =
        static_cast<double>(bytes) / static_cast<double>(state.iterations());
    state.SetItemsProcessed(state.iterations());
}

void register_all() {
    for (int64_t kib : {16, 256}) {
        for (auto p : {fsync_policy::never, fsync_policy::batch, fsync_policy::always}) {
            benchmark::RegisterBenchmark("append", bm_append)
                ->Args({kib, static_cast<int64_t>(p), 0})
                ->ArgNames({"batch_KiB", "policy", "closed_loop"})
                ->UseManualTime()
                ->Iterations(15)
                ->Unit(benchmark::kMillisecond);
        }
    }
    // The same without an arrival rate: a window of appends that are all re-issued from their
    // acknowledgements, so they arrive (and are written) together, one chunk at a time.
    benchmark::RegisterBenchmark("append", bm_append)
        ->Args({16, static_cast<int64_t>(fsync_policy::never), 1})
        ->ArgNames({"batch_KiB", "policy", "closed_loop"})
        ->UseManualTime()
        ->Iterations(15)
        ->Unit(benchmark::kMillisecond);
    benchmark::RegisterBenchmark("group_commit", bm_group_commit)
        ->ArgName("appenders")
        ->Arg(1)
        ->Arg(8)
        ->Arg(64)
        ->UseManualTime()
        ->Iterations(7)
        ->Unit(benchmark::kMillisecond);
    for (int64_t segment_mib : {4, 1}) {  // 17 and 65 segments; grouped so each log is built once
        benchmark::RegisterBenchmark("read", bm_read)
            ->ArgsProduct({{segment_mib}, {1, 64, 1024}})
            ->ArgNames({"segment_MiB", "max_KiB"})
            ->Unit(benchmark::kMicrosecond);
    }
}

std::string fs_type(const std::string& dir) {
    struct statfs s {};
    if (::statfs(dir.c_str(), &s) != 0) return "unknown";
    switch (s.f_type) {
        case 0xEF53:
            return "ext2/3/4";
        case 0x58465342:
            return "xfs";
        case 0x9123683E:
            return "btrfs";
        case 0x01021994:
            return "tmpfs";
        default:
            return "0x" + [&] {
                char buf[32];
                std::snprintf(buf, sizeof buf, "%lx", static_cast<unsigned long>(s.f_type));
                return std::string(buf);
            }();
    }
}

}  // namespace
}  // namespace sluice::perf

int main(int argc, char** argv) {
    using namespace sluice::perf;
    const std::string root = bench_root();
    const std::string type = fs_type(root);
    if (type == "tmpfs") die(root + " is tmpfs; set SLUICE_BENCH_DIR to a directory on a disk");
    benchmark::AddCustomContext("data_dir", root);
    benchmark::AddCustomContext("data_dir_fs", type);
    benchmark::Initialize(&argc, argv);
    if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
    register_all();
    benchmark::RunSpecifiedBenchmarks();
    current_read_fixture().reset();  // closes the log and removes its directory
    benchmark::Shutdown();
    return 0;
}
