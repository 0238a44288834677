// kill -9 under sluice.fsync=always: a forked child appends batches and reports every
// acknowledged range of offsets to the parent through a pipe; the parent kills it with SIGKILL at
// a random moment (seeded), and every other round reopens the log itself (recovery) and checks
// that each acknowledged record is there exactly once, at its offset, written by the round that
// acknowledged it, and that the whole log reads back end to end. The next child recovers the log
// left by the kill (or by the parent) and continues appending where it ends.
//
// SLUICE_CRASH_SEED and SLUICE_CRASH_ROUNDS override the seed and the number of rounds.

#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <map>
#include <random>
#include <string>

#include "engine/tests/log_harness.h"
#include "runtime/clock.h"

namespace sluice::engine {
namespace {

using namespace std::chrono_literals;

// One acknowledged range, as the child writes it to the pipe (16 bytes: atomic on a pipe).
struct ack_message {
    int64_t base_offset;
    int64_t last_offset;
};
static_assert(sizeof(ack_message) <= PIPE_BUF);

constexpr int child_failed_exit = 3;
constexpr int max_inflight_appends = 8;  // appends the child keeps outstanding
constexpr int max_records_per_batch = 16;
constexpr auto child_max_lifetime = 20s;  // a child nobody kills gives up

log_config crash_config() {
    log_config cfg;
    cfg.fsync = fsync_policy::always;
    cfg.segment_bytes = 64 * 1024;  // roll often, so kills land around rolls too
    cfg.preallocate = true;         // recovery must tell a zero-filled tail from data
    return cfg;
}

const model::tp crash_tp{"crash", model::partition_id(0)};

// Record value at `offset` written in `round`: unique, so a lost record rewritten by a later
// round at the same offset is told apart.
std::string value_for(int64_t offset, int round) {
    std::string v = std::to_string(offset);
    v.append(":").append(std::to_string(round)).append(":").append(40, 'p');
    return v;
}

[[noreturn]] void child_fail(const std::string& why) {
    std::fprintf(stderr, "crash child: %s\n", why.c_str());
    ::_exit(child_failed_exit);
}

// The child: recovers the log, then appends until killed. Never returns.
[[noreturn]] void run_child(const std::string& dir, int round, uint32_t seed, int ack_fd) {
    auto& fail = child_fail;
    auto r = runtime::reactor::create({});
    if (!r) fail(r.error().describe());
    runtime::reactor& reactor = **r;
    auto opened = partition_log::open(reactor, posix_file_system::instance(), dir, crash_tp,
                                      crash_config(), runtime::system_clock::instance());
    if (!opened) fail(opened.error().describe());
    partition_log& log = **opened;
    if (!log.status()) fail(log.status().error().describe());

    std::mt19937 rng(seed);
    int64_t next_offset = log.log_end_offset()();
    int inflight = 0;
    std::function<void()> issue = [&] {
        const int n = std::uniform_int_distribution<int>(1, max_records_per_batch)(rng);
        model::batch_builder b;
        for (int i = 0; i < n; ++i) {
            const std::string key = test::numbered("k", next_offset + i);
            const std::string value = value_for(next_offset + i, round);
            b.add(model::bytes_of(key), model::bytes_of(value), 1'700'000'000'000);
        }
        auto bytes = b.build();
        if (!bytes) fail(bytes.error().describe());
        const int64_t expect_base = next_offset;
        next_offset += n;
        ++inflight;
        log.append(*bytes, {}, [&, expect_base, n](result<append_result> a) {
            --inflight;
            if (!a) fail(a.error().describe());
            if (a->base_offset() != expect_base || a->last_offset() != expect_base + n - 1) {
                fail(test::numbered("unexpected offsets ", a->base_offset()));
            }
            ack_message m{a->base_offset(), a->last_offset()};
            if (::write(ack_fd, &m, sizeof m) != static_cast<ssize_t>(sizeof m)) fail("pipe");
            issue();
        });
    };
    for (int i = 0; i < max_inflight_appends; ++i) issue();
    const auto give_up = std::chrono::steady_clock::now() + child_max_lifetime;
    reactor.run_until([&] { return std::chrono::steady_clock::now() > give_up; });
    child_fail("nobody killed me");
}

// Reads whole ack messages from `fd` into `acked` (offset -> round) until `deadline` or EOF.
// Returns false on EOF (the child is gone).
bool collect_acks(int fd, int round, std::map<int64_t, int>& acked, std::string& partial,
                  std::chrono::steady_clock::time_point deadline, size_t& acks) {
    for (;;) {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
            deadline - std::chrono::steady_clock::now());
        if (left.count() < 0) return true;
        pollfd p{fd, POLLIN, 0};
        int n = ::poll(&p, 1, static_cast<int>(left.count()));
        if (n == 0) return true;
        if (n < 0) continue;
        char buf[4096];
        ssize_t got = ::read(fd, buf, sizeof buf);
        if (got <= 0) return false;
        partial.append(buf, static_cast<size_t>(got));
        while (partial.size() >= sizeof(ack_message)) {
            ack_message m;
            std::memcpy(&m, partial.data(), sizeof m);
            partial.erase(0, sizeof m);
            for (int64_t o = m.base_offset; o <= m.last_offset; ++o) {
                EXPECT_FALSE(acked.contains(o)) << "offset " << o << " acknowledged twice";
                acked[o] = round;
            }
            ++acks;
        }
    }
}

// Reopens the log (recovery), checks it against `acked`, and drops it without a clean close so
// the next child still starts from an unclean shutdown.
void verify(const std::string& dir, const std::map<int64_t, int>& acked) {
    auto r = runtime::reactor::create({});
    ASSERT_TRUE(r.has_value());
    runtime::manual_clock clock;
    auto opened = partition_log::open(**r, posix_file_system::instance(), dir, crash_tp,
                                      crash_config(), clock);
    ASSERT_TRUE(opened.has_value()) << opened.error().describe();
    partition_log& log = **opened;
    ASSERT_TRUE(log.status().has_value()) << log.status().error().describe();
    const int64_t end = log.log_end_offset()();
    ASSERT_EQ(log.log_start_offset()(), 0);
    if (!acked.empty()) {
        ASSERT_GT(end, acked.rbegin()->first) << "acknowledged records lost";
    }

    std::vector<test::stored_record> recs;
    int64_t pos = 0;
    while (pos < end) {
        auto rr = log.read(model::offset(pos), 1 << 20, model::offset(end), true);
        ASSERT_TRUE(rr.has_value()) << rr.error().describe();
        ASSERT_FALSE(rr->regions.empty()) << "nothing readable at " << pos;
        for (const auto& region : rr->regions) test::log_harness::decode_region(region, recs);
        pos = rr->last_offset() + 1;
    }
    // Every offset once, in order, with its own key; acknowledged ones from the acking round.
    ASSERT_EQ(static_cast<int64_t>(recs.size()), end);
    for (int64_t o = 0; o < end; ++o) {
        const auto& rec = recs[static_cast<size_t>(o)];
        ASSERT_EQ(rec.offset, o);
        ASSERT_EQ(rec.key, test::numbered("k", o));
        ASSERT_TRUE(rec.value.has_value());
        auto it = acked.find(o);
        if (it != acked.end()) {
            ASSERT_EQ(*rec.value, value_for(o, it->second)) << "acknowledged record replaced";
        } else {
            ASSERT_EQ(rec.value->rfind(std::to_string(o).append(":"), 0), 0u) << *rec.value;
        }
    }
}

int env_int(const char* name, int fallback) {
    const char* v = std::getenv(name);
    return v != nullptr ? std::atoi(v) : fallback;
}

TEST(crash, kill9_under_fsync_always_keeps_every_acknowledged_record_exactly_once) {
    const auto seed = static_cast<uint32_t>(env_int("SLUICE_CRASH_SEED", 20240611));
    const int rounds = env_int("SLUICE_CRASH_ROUNDS", 60);
    SCOPED_TRACE(test::numbered("seed ", seed));
    std::mt19937 rng(seed);
    test::temp_dir dir;
    std::map<int64_t, int> acked;
    size_t rounds_with_acks = 0;

    for (int round = 0; round < rounds; ++round) {
        SCOPED_TRACE(test::numbered("round ", round));
        int fds[2];
        ASSERT_EQ(::pipe2(fds, O_CLOEXEC), 0);
        const uint32_t child_seed = rng();
        pid_t pid = ::fork();
        ASSERT_GE(pid, 0);
        if (pid == 0) {
            ::close(fds[0]);
            run_child(dir.path(), round, child_seed, fds[1]);
        }
        ::close(fds[1]);
        // Mostly kill while appends flow (after the first ack); sometimes during recovery.
        const bool during_recovery = std::uniform_int_distribution<int>(0, 9)(rng) == 0;
        const auto delay = std::chrono::microseconds(
            std::uniform_int_distribution<int>(0, during_recovery ? 3'000 : 40'000)(rng));
        std::string partial;
        size_t acks = 0;
        bool alive = true;
        if (!during_recovery) {
            const auto first_ack_deadline = std::chrono::steady_clock::now() + 10s;
            while (alive && acks == 0 && std::chrono::steady_clock::now() < first_ack_deadline) {
                alive = collect_acks(fds[0], round, acked, partial,
                                     std::chrono::steady_clock::now() + 10ms, acks);
            }
        }
        if (alive) {
            alive = collect_acks(fds[0], round, acked, partial,
                                 std::chrono::steady_clock::now() + delay, acks);
        }
        ::kill(pid, SIGKILL);
        int status = 0;
        ASSERT_EQ(::waitpid(pid, &status, 0), pid);
        // What the child wrote before dying was acknowledged: drain it.
        collect_acks(fds[0], round, acked, partial, std::chrono::steady_clock::now() + 1s, acks);
        ::close(fds[0]);
        ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL)
            << "child ended on its own, status " << status;
        ASSERT_TRUE(partial.empty()) << "torn ack message";
        rounds_with_acks += acks > 0 ? 1 : 0;
        if (round % 2 == 1 || round == rounds - 1) {
            verify(dir.path(), acked);
            if (HasFatalFailure()) return;
        }
    }
    EXPECT_GT(rounds_with_acks, static_cast<size_t>(rounds) / 2);
    EXPECT_FALSE(acked.empty());
    std::printf("crash test: %d rounds, %zu acknowledged records, %zu rounds with acks\n", rounds,
                acked.size(), rounds_with_acks);
}

}  // namespace
}  // namespace sluice::engine
