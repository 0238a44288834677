// End-to-end tests of the `sluice` client subcommands: the suite starts `sluice serve` on a free
// port with a temporary data directory, runs the CLI as a child process against it, and stops
// (only) that broker and removes the directory at the end.

#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <thread>

#include "tools/bench.h"
#include "tools/group_client.h"
#include "tools/kafka_client.h"

namespace sluice::tools {
namespace {

namespace fs = std::filesystem;

struct run_result {
    int exit_code = -1;
    std::string out;
    std::string err;
};

std::string read_file(const fs::path& p) {
    std::ifstream f(p, std::ios::binary);
    std::stringstream s;
    s << f.rdbuf();
    return s.str();
}

uint16_t free_port() {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
    socklen_t len = sizeof a;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
    ::close(fd);
    return ntohs(a.sin_port);
}

// Forks and execs `argv` with stdin/stdout/stderr redirected to files; returns the pid.
pid_t spawn(const std::vector<std::string>& argv, const fs::path& in, const fs::path& out,
            const fs::path& err) {
    pid_t pid = ::fork();
    if (pid == 0) {
        int i = ::open(in.c_str(), O_RDONLY);
        int o = ::open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
        int e = ::open(err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
        ::dup2(i, 0);
        ::dup2(o, 1);
        ::dup2(e, 2);
        std::vector<char*> args;
        for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
        args.push_back(nullptr);
        ::execv(args[0], args.data());
        ::_exit(127);
    }
    return pid;
}

// Waits for `pid` up to `timeout`; kills it (SIGKILL) after that. Returns the exit code, or
// 128 + signal.
int wait_for(pid_t pid, std::chrono::seconds timeout) {
    auto until = std::chrono::steady_clock::now() + timeout;
    int status = 0;
    while (::waitpid(pid, &status, WNOHANG) == 0) {
        if (std::chrono::steady_clock::now() > until) {
            ::kill(pid, SIGKILL);
            ::waitpid(pid, &status, 0);
            return 128 + SIGKILL;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

class cli_test : public ::testing::Test {
  protected:
    static void SetUpTestSuite() {
        char tmpl[] = "/tmp/sluice-tools-test-XXXXXX";
        ASSERT_NE(::mkdtemp(tmpl), nullptr);
        dir = tmpl;
        port = free_port();
        fs::create_directories(dir / "data");
        std::ofstream(dir / "empty").close();
        broker_pid =
            spawn({SLUICE_BIN, "serve", "--listeners=PLAINTEXT://127.0.0.1:" + std::to_string(port),
                   "--log.dirs=" + (dir / "data").string(), "--num.partitions=3"},
                  dir / "empty", dir / "broker.out", dir / "broker.err");
        ASSERT_GT(broker_pid, 0);
        // Ready when a connection and ApiVersions succeed.
        for (int i = 0; i < 200; ++i) {
            int status = 0;
            ASSERT_EQ(::waitpid(broker_pid, &status, WNOHANG), 0)
                << "broker exited: " << read_file(dir / "broker.err");
            if (connection::open({"127.0.0.1", port}, {})) return;
            std::this_thread::sleep_for(std::chrono::milliseconds(50));
        }
        FAIL() << "broker did not start: " << read_file(dir / "broker.err");
    }

    static void TearDownTestSuite() {
        if (broker_pid > 0) {
            ::kill(broker_pid, SIGTERM);
            if (wait_for(broker_pid, std::chrono::seconds(20)) != 0) {
                std::fprintf(stderr, "broker log:\n%s\n", read_file(dir / "broker.err").c_str());
            }
            broker_pid = -1;
        }
        std::error_code ec;
        fs::remove_all(dir, ec);
    }

    static std::string bootstrap() { return "127.0.0.1:" + std::to_string(port); }

    // Runs `sluice <args...> --bootstrap-server ...` with `input` on stdin.
    static run_result sluice(std::vector<std::string> args, const std::string& input = {}) {
        static int n = 0;
        ++n;
        fs::path in = dir / ("in" + std::to_string(n));
        fs::path out = dir / ("out" + std::to_string(n));
        fs::path err = dir / ("err" + std::to_string(n));
        std::ofstream(in, std::ios::binary) << input;
        std::vector<std::string> argv{SLUICE_BIN};
        argv.insert(argv.end(), args.begin(), args.end());
        argv.push_back("--bootstrap-server");
        argv.push_back(bootstrap());
        run_result r;
        r.exit_code = wait_for(spawn(argv, in, out, err), std::chrono::seconds(120));
        r.out = read_file(out);
        r.err = read_file(err);
        fs::remove(in);
        fs::remove(out);
        fs::remove(err);
        return r;
    }

    static inline fs::path dir;
    static inline uint16_t port = 0;
    static inline pid_t broker_pid = -1;
};

std::vector<std::string> lines_of(const std::string& s) {
    std::vector<std::string> out;
    std::stringstream ss(s);
    for (std::string line; std::getline(ss, line);) out.push_back(line);
    return out;
}

bool has_line(const std::string& text, const std::string& line) {
    auto ls = lines_of(text);
    return std::find(ls.begin(), ls.end(), line) != ls.end();
}

#define EXPECT_EXIT_CODE(r, code) \
    EXPECT_EQ((r).exit_code, code) << "stdout: " << (r).out << "\nstderr: " << (r).err
#define ASSERT_EXIT_CODE(r, code) \
    ASSERT_EQ((r).exit_code, code) << "stdout: " << (r).out << "\nstderr: " << (r).err

TEST_F(cli_test, topic_create_list_describe_alter_add_partitions_delete) {
    auto created = sluice(
        {"topic", "create", "orders", "--partitions", "3", "--config", "retention.ms=3600000"});
    EXPECT_EXIT_CODE(created, 0);
    EXPECT_NE(created.out.find("Created topic orders"), std::string::npos);

    auto listed = sluice({"topic", "list"});
    EXPECT_EXIT_CODE(listed, 0);
    EXPECT_TRUE(has_line(listed.out, "orders")) << listed.out;

    auto described = sluice({"topic", "describe", "orders"});
    EXPECT_EXIT_CODE(described, 0);
    EXPECT_NE(described.out.find("PartitionCount: 3"), std::string::npos) << described.out;
    EXPECT_NE(described.out.find("\tPartition: 2\tLeader: "), std::string::npos) << described.out;
    EXPECT_NE(described.out.find("* retention.ms=3600000"), std::string::npos) << described.out;
    // Configs the topic does not override are listed unmarked.
    EXPECT_NE(described.out.find("    cleanup.policy=delete"), std::string::npos) << described.out;

    auto altered = sluice({"topic", "alter-config", "orders", "--set", "retention.ms=1000", "--set",
                           "cleanup.policy=compact"});
    EXPECT_EXIT_CODE(altered, 0);
    described = sluice({"topic", "describe", "orders"});
    EXPECT_NE(described.out.find("* retention.ms=1000"), std::string::npos) << described.out;
    EXPECT_NE(described.out.find("* cleanup.policy=compact"), std::string::npos) << described.out;

    altered = sluice({"topic", "alter-config", "orders", "--delete", "retention.ms"});
    EXPECT_EXIT_CODE(altered, 0);
    described = sluice({"topic", "describe", "orders"});
    EXPECT_EQ(described.out.find("* retention.ms"), std::string::npos) << described.out;
    EXPECT_NE(described.out.find("    retention.ms="), std::string::npos) << described.out;

    auto grown = sluice({"topic", "add-partitions", "orders", "--partitions", "5"});
    EXPECT_EXIT_CODE(grown, 0);
    described = sluice({"topic", "describe", "orders"});
    EXPECT_NE(described.out.find("PartitionCount: 5"), std::string::npos) << described.out;

    auto deleted = sluice({"topic", "delete", "orders"});
    EXPECT_EXIT_CODE(deleted, 0);
    listed = sluice({"topic", "list"});
    EXPECT_FALSE(has_line(listed.out, "orders")) << listed.out;
}

TEST_F(cli_test, topic_errors_name_the_kafka_error_and_fail) {
    ASSERT_EQ(sluice({"topic", "create", "dup", "--partitions", "1"}).exit_code, 0);
    auto again = sluice({"topic", "create", "dup", "--partitions", "1"});
    EXPECT_EXIT_CODE(again, 1);
    EXPECT_NE(again.err.find("TOPIC_ALREADY_EXISTS: "), std::string::npos) << again.err;

    auto bad_config = sluice({"topic", "create", "badcfg", "--config", "retention.ms=soon"});
    EXPECT_EXIT_CODE(bad_config, 1);
    EXPECT_NE(bad_config.err.find("INVALID_CONFIG"), std::string::npos) << bad_config.err;

    auto bad_alter = sluice({"topic", "alter-config", "dup", "--set", "retention.ms=soon"});
    EXPECT_EXIT_CODE(bad_alter, 1);
    EXPECT_NE(bad_alter.err.find("INVALID_CONFIG"), std::string::npos) << bad_alter.err;

    auto shrink = sluice({"topic", "add-partitions", "dup", "--partitions", "1"});
    EXPECT_EXIT_CODE(shrink, 1);
    EXPECT_NE(shrink.err.find("INVALID_PARTITIONS"), std::string::npos) << shrink.err;

    auto rf = sluice({"topic", "create", "rf3", "--replication-factor", "3"});
    EXPECT_EXIT_CODE(rf, 1);
    EXPECT_NE(rf.err.find("INVALID_REPLICATION_FACTOR"), std::string::npos) << rf.err;

    auto missing = sluice({"topic", "describe", "nosuchtopic"});
    EXPECT_EXIT_CODE(missing, 1);
    EXPECT_NE(missing.err.find("UNKNOWN_TOPIC_OR_PARTITION"), std::string::npos) << missing.err;

    auto del_missing = sluice({"topic", "delete", "nosuchtopic"});
    EXPECT_EXIT_CODE(del_missing, 1);
    EXPECT_NE(del_missing.err.find("UNKNOWN_TOPIC_OR_PARTITION"), std::string::npos);

    auto bad_name = sluice({"topic", "create", "bad/name"});
    EXPECT_EXIT_CODE(bad_name, 1);
    EXPECT_NE(bad_name.err.find("INVALID_TOPIC_EXCEPTION"), std::string::npos) << bad_name.err;

    EXPECT_EQ(sluice({"topic", "frobnicate", "x"}).exit_code, 2);
    EXPECT_EQ(sluice({"topic", "create", "x", "--partitions", "many"}).exit_code, 2);
    EXPECT_EQ(sluice({"produce", "x", "--acks", "2"}).exit_code, 2);
}

TEST_F(cli_test, cannot_connect_is_a_clear_failure) {
    std::vector<std::string> argv{SLUICE_BIN,
                                  "topic",
                                  "list",
                                  "--bootstrap-server",
                                  "127.0.0.1:" + std::to_string(free_port()),
                                  "--request-timeout-ms",
                                  "2000"};
    run_result r;
    r.exit_code = wait_for(spawn(argv, dir / "empty", dir / "nc.out", dir / "nc.err"),
                           std::chrono::seconds(30));
    r.err = read_file(dir / "nc.err");
    EXPECT_EXIT_CODE(r, 1);
    EXPECT_NE(r.err.find("cannot connect"), std::string::npos) << r.err;
}

TEST_F(cli_test, produce_and_consume_back_in_every_codec) {
    const int n = 300;
    for (std::string codec : {"none", "gzip", "snappy", "lz4", "zstd"}) {
        SCOPED_TRACE(codec);
        std::string topic = "pc-" + codec;
        ASSERT_EQ(sluice({"topic", "create", topic, "--partitions", "3"}).exit_code, 0);
        std::string input;
        std::vector<std::string> expected;
        for (int i = 0; i < n; ++i) {
            std::string key = "key-" + std::to_string(i % 17);
            std::string value = "value " + std::to_string(i) + " " + std::string(i % 50, 'x');
            input += key + ":" + value + "\n";
            expected.push_back("h1=v1,src=cli test|" + key + "|" + value);
        }
        auto produced = sluice({"produce", topic, "--key-separator", ":", "--compression", codec,
                                "--header", "h1=v1", "--header", "src=cli test", "--acks", "all"},
                               input);
        ASSERT_EXIT_CODE(produced, 0);
        auto consumed = sluice({"consume", topic, "--from-beginning", "--max-messages",
                                std::to_string(n), "--timeout-ms", "20000", "--print-key",
                                "--print-headers", "--key-separator", "|"});
        ASSERT_EXIT_CODE(consumed, 0);
        auto got = lines_of(consumed.out);
        std::sort(got.begin(), got.end());
        std::sort(expected.begin(), expected.end());
        EXPECT_EQ(got, expected);
        EXPECT_NE(consumed.err.find("Processed a total of " + std::to_string(n)),
                  std::string::npos);

        // Keyed records land where Kafka's default partitioner puts them, in order per key.
        auto with_offsets = sluice({"consume", topic, "--from-beginning", "--max-messages",
                                    std::to_string(n), "--timeout-ms", "20000", "--print-key",
                                    "--print-offset", "--key-separator", "|"});
        std::map<std::string, int> last_index;
        for (const auto& line : lines_of(with_offsets.out)) {
            auto p1 = line.find('|');
            auto p2 = line.find('|', p1 + 1);
            int partition = std::stoi(line.substr(0, line.find(':')));
            std::string key = line.substr(p1 + 1, p2 - p1 - 1);
            EXPECT_EQ(partition,
                      partition_for_key(std::as_bytes(std::span(key.data(), key.size())), 3))
                << line;
            int index = std::stoi(line.substr(p2 + 7));  // after "value "
            auto it = last_index.find(key);
            if (it != last_index.end()) {
                EXPECT_GT(index, it->second) << line;
            }
            last_index[key] = index;
        }
    }
}

TEST_F(cli_test, produce_without_keys_and_empty_lines) {
    ASSERT_EQ(sluice({"topic", "create", "plain", "--partitions", "1"}).exit_code, 0);
    auto produced = sluice({"produce", "plain", "--acks", "1", "--linger-ms", "0"},
                           "first\n\nthird line without newline");
    ASSERT_EXIT_CODE(produced, 0);
    auto consumed = sluice({"consume", "plain", "--from-beginning", "--max-messages", "3",
                            "--timeout-ms", "10000", "--print-key"});
    ASSERT_EXIT_CODE(consumed, 0);
    EXPECT_EQ(consumed.out, "null\tfirst\nnull\t\nnull\tthird line without newline\n");
}

TEST_F(cli_test, consume_from_offset_and_from_timestamp) {
    ASSERT_EQ(sluice({"topic", "create", "times", "--partitions", "2"}).exit_code, 0);
    ASSERT_EQ(sluice({"produce", "times", "--partition", "1"}, "a0\na1\na2\na3\na4\n").exit_code,
              0);
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    int64_t between = now_ms();
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    ASSERT_EQ(sluice({"produce", "times", "--partition", "1"}, "b0\nb1\nb2\n").exit_code, 0);

    auto from_ts = sluice({"consume", "times", "--from-timestamp", std::to_string(between),
                           "--max-messages", "3", "--timeout-ms", "10000", "--print-offset"});
    ASSERT_EXIT_CODE(from_ts, 0);
    EXPECT_EQ(from_ts.out, "1:5\tb0\n1:6\tb1\n1:7\tb2\n");

    // A timestamp after every record: nothing to read, the idle timeout ends the command.
    auto future = sluice({"consume", "times", "--from-timestamp", std::to_string(now_ms() + 60000),
                          "--timeout-ms", "1000"});
    ASSERT_EXIT_CODE(future, 0);
    EXPECT_EQ(future.out, "");

    auto from_offset = sluice({"consume", "times", "--partition", "1", "--offset", "3",
                               "--max-messages", "3", "--timeout-ms", "10000"});
    ASSERT_EXIT_CODE(from_offset, 0);
    EXPECT_EQ(from_offset.out, "a3\na4\nb0\n");

    auto other = sluice(
        {"consume", "times", "--partition", "0", "--from-beginning", "--timeout-ms", "1000"});
    ASSERT_EXIT_CODE(other, 0);
    EXPECT_EQ(other.out, "");
}

TEST_F(cli_test, produce_to_a_missing_partition_fails) {
    ASSERT_EQ(sluice({"topic", "create", "few", "--partitions", "2"}).exit_code, 0);
    auto r = sluice({"produce", "few", "--partition", "7"}, "x\n");
    EXPECT_EXIT_CODE(r, 1);
    EXPECT_NE(r.err.find("UNKNOWN_TOPIC_OR_PARTITION"), std::string::npos) << r.err;
}

std::string python_json(const fs::path& file, const std::string& expr) {
    fs::path out = file.string() + ".py.out";
    std::string cmd = "python3 -c \"import json,sys; d=json.load(open(sys.argv[1])); print(" +
                      expr + ")\" '" + file.string() + "' > '" + out.string() + "' 2>&1";
    int rc = std::system(cmd.c_str());
    std::string text = read_file(out);
    fs::remove(out);
    if (rc != 0) return "python failed: " + text;
    while (!text.empty() && text.back() == '\n') text.pop_back();
    return text;
}

TEST_F(cli_test, bench_produces_and_consumes_the_requested_records) {
    fs::path json = dir / "bench.json";
    auto both =
        sluice({"bench",       "--topic",     "bench1", "--partitions",  "2",   "--mode",
                "both",        "--records",   "3000",   "--record-size", "100", "--batch-size",
                "4KiB",        "--producers", "2",      "--in-flight",   "4",   "--json",
                json.string(), "--quiet"});
    ASSERT_EXIT_CODE(both, 0);
    EXPECT_EQ(python_json(json,
                          "d['produce']['records'], d['consume']['records'], "
                          "d['produce']['errors'], d['failed']"),
              "3000 3000 0 False");
    EXPECT_EQ(python_json(json,
                          "d['produce']['latency_ms']['count'] > 0, "
                          "d['produce']['latency_ms']['p50'] <= "
                          "d['produce']['latency_ms']['p99'] <= "
                          "d['produce']['latency_ms']['max']"),
              "True True");
    EXPECT_NE(both.out.find("produce: 3000 records"), std::string::npos) << both.out;

    // Consume mode reads the pre-filled topic from its earliest offsets.
    auto consume = sluice({"bench", "--topic", "bench1", "--mode", "consume", "--records", "2500",
                           "--json", json.string(), "--quiet"});
    ASSERT_EXIT_CODE(consume, 0);
    EXPECT_EQ(python_json(json, "d['consume']['records'], d['settings']['mode']"), "2500 consume");

    // Pipelined fetches on later passes over the log count every record exactly once.
    auto piped = sluice({"bench", "--topic", "bench1", "--mode", "consume", "--records", "7000",
                         "--consumers", "2", "--fetch-size", "8KiB", "--fetch-in-flight", "4",
                         "--json", json.string(), "--quiet"});
    ASSERT_EXIT_CODE(piped, 0);
    EXPECT_EQ(python_json(json, "d['consume']['records'], d['consume']['errors']"), "7000 0");

    // A topic that does not exist is created and filled first.
    auto fill = sluice({"bench", "--topic", "bench2", "--mode", "consume", "--records", "1000",
                        "--record-size", "64", "--json", json.string(), "--quiet"});
    ASSERT_EXIT_CODE(fill, 0);
    EXPECT_EQ(python_json(json, "d['consume']['records']"), "1000");

    // acks=0 and compression, by duration; the progress line goes to stderr.
    auto timed =
        sluice({"bench", "--topic", "bench3", "--duration-s", "2", "--acks", "0", "--compression",
                "lz4", "--record-size", "200", "--rate", "20000", "--json", json.string()});
    ASSERT_EXIT_CODE(timed, 0);
    EXPECT_EQ(python_json(json, "d['produce']['records'] > 0, d['produce']['latency_ms']"),
              "True None");
    EXPECT_NE(timed.err.find("left] | produce"), std::string::npos) << timed.err;

    auto loop = sluice({"bench", "--reference", "loopback", "--duration-s", "1", "--fetch-size",
                        "1MiB", "--json", json.string(), "--quiet"});
    ASSERT_EXIT_CODE(loop, 0);
    EXPECT_EQ(python_json(json, "d['reference'], d['bytes'] > 0, d['mib_per_s'] > 0"),
              "loopback True True");
}

// Two consumer groups of two members each read a 4-partition topic while it is written: each
// group counts every record once, each member is assigned partitions, and afterwards each
// group's committed offsets (OffsetFetch on its coordinator) are the log end offsets.
TEST_F(cli_test, bench_consumer_groups_read_every_record_once_and_commit_the_log_end) {
    fs::path json = dir / "bench-group.json";
    auto r = sluice({"bench", "--topic",       "bench-group", "--partitions",
                     "4",     "--mode",        "both",        "--records",
                     "4000",  "--record-size", "100",         "--batch-size",
                     "4KiB",  "--group",       "g",           "--consumer-groups",
                     "2",     "--consumers",   "2",           "--commit-interval-ms",
                     "200",   "--json",        json.string(), "--quiet"});
    ASSERT_EXIT_CODE(r, 0);
    EXPECT_EQ(python_json(json,
                          "d['produce']['records'], d['consume']['records'], "
                          "[(g['group'], g['records']) for g in d['groups']]"),
              "4000 8000 [('g-0', 4000), ('g-1', 4000)]");
    // Two members per group, each with a share of the partitions, together all four.
    EXPECT_EQ(python_json(json,
                          "[(len(g['members']), all(m['partitions'] for m in g['members']), "
                          "sorted(p for m in g['members'] for p in m['partitions'])) "
                          "for g in d['groups']]"),
              "[(2, True, [0, 1, 2, 3]), (2, True, [0, 1, 2, 3])]");
    EXPECT_EQ(python_json(json,
                          "[(g['commits'] > 0, g['commit_errors'], "
                          "g['commit_latency_ms']['count'] == g['commits'], "
                          "g['first_assignment_s'] > 0, g['rebalances'] >= 1) "
                          "for g in d['groups']]"),
              "[(True, 0, True, True, True), (True, 0, True, True, True)]");
    EXPECT_NE(r.out.find("group g-0: 4000 records"), std::string::npos) << r.out;

    auto c = client::connect({.bootstrap = bootstrap()});
    ASSERT_TRUE(c) << c.error().describe();
    auto end = bench::list_offsets(**c, "bench-group", 4, -1);
    ASSERT_TRUE(end) << end.error().describe();
    std::map<topic_partition, int64_t> log_end;
    for (int32_t p = 0; p < 4; ++p) log_end[{"bench-group", p}] = (*end)[static_cast<size_t>(p)];
    for (const char* group : {"g-0", "g-1"}) {
        auto coord = find_group_coordinator((*c)->any(), group);
        ASSERT_TRUE(coord) << coord.error().describe();
        auto conn = connection::open(coord->address, {});
        ASSERT_TRUE(conn) << conn.error().describe();
        auto committed = fetch_committed_offsets(**conn, group, std::nullopt);
        ASSERT_TRUE(committed) << committed.error().describe();
        EXPECT_EQ(*committed, log_end) << group;
    }
}

// A group that reads fewer or more records than were produced fails the run and says how.
TEST_F(cli_test, bench_fails_when_a_group_misses_or_repeats_records) {
    ASSERT_EXIT_CODE(sluice({"topic", "create", "bench-short", "--partitions", "2"}), 0);
    // Offsets committed ahead of the start make the group skip the first 10 of each partition.
    ASSERT_EXIT_CODE(sluice({"group", "reset-offsets", "skips", "--topic", "bench-short",
                             "--to-offset", "10", "--execute"}),
                     0);
    auto fewer =
        sluice({"bench", "--topic", "bench-short", "--mode", "both", "--records", "1000",
                "--record-size", "100", "--batch-size", "4KiB", "--group", "skips", "--quiet"});
    EXPECT_EXIT_CODE(fewer, 1);
    EXPECT_NE(fewer.err.find("group skips consumed 980 of the 1000 records produced"),
              std::string::npos)
        << fewer.err;
    // Starting at the earliest offset, a new group also reads what was there before the run.
    auto more = sluice({"bench", "--topic", "bench-short", "--mode", "both", "--records", "500",
                        "--record-size", "100", "--batch-size", "4KiB", "--group", "rereads",
                        "--offset-reset", "earliest", "--quiet"});
    EXPECT_EXIT_CODE(more, 1);
    EXPECT_NE(more.err.find("group rereads consumed 1500 records, 1000 more than the 500 produced"),
              std::string::npos)
        << more.err;
}

TEST_F(cli_test, client_pipelines_requests_on_one_connection) {
    auto conn = connection::open({"127.0.0.1", port}, {});
    ASSERT_TRUE(conn) << conn.error().describe();
    // Negotiated versions never exceed what we define, nor what the broker advertises.
    int16_t v = (*conn)->version<protocol::metadata_api>();
    EXPECT_GE(v, 0);
    EXPECT_LE(v, protocol::metadata_api::max_version);
    // Ranges are intersected with the broker's: Fetch v0-v3 are served (old clients), and an
    // API key the broker does not advertise yields -1.
    EXPECT_EQ((*conn)->pick_version(protocol::fetch_api::key, 0, 3), 3);
    EXPECT_EQ((*conn)->pick_version(protocol::fetch_api::key, 20, 30), -1);
    EXPECT_EQ((*conn)->pick_version(9999, 0, 3), -1);
    std::vector<int32_t> ids;
    for (int i = 0; i < 32; ++i) {
        protocol::metadata_request req;
        req.topics.emplace();
        auto id =
            (*conn)->send(protocol::metadata_api::key, v, req, true, static_cast<uint64_t>(i));
        ASSERT_TRUE(id);
        ids.push_back(*id);
    }
    EXPECT_EQ((*conn)->in_flight_count(), 32u);
    for (int i = 0; i < 32; ++i) {
        auto r = (*conn)->receive();
        ASSERT_TRUE(r) << r.error().describe();
        EXPECT_EQ(r->request.correlation_id, ids[static_cast<size_t>(i)]);
        EXPECT_EQ(r->request.tag, static_cast<uint64_t>(i));
        protocol::metadata_response resp;
        protocol::reader rd(r->body);
        EXPECT_TRUE(resp.decode(rd, v));
        EXPECT_EQ(resp.brokers.size(), 1u);
    }
    EXPECT_FALSE((*conn)->receive());  // nothing in flight
}

}  // namespace
}  // namespace sluice::tools
