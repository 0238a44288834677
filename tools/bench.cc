// `sluice bench`: argument parsing, topic set-up, the run phases, the progress line and the
// final report (text on stdout, JSON with --json).

#include "tools/bench.h"

#include <csignal>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <thread>

#include "tools/commands.h"

namespace sluice::tools {

namespace {

using namespace bench;

std::atomic<bool>* signal_stop = nullptr;

// How long group members may take to get their first assignments (the coordinator's initial
// rebalance delay, extended while members arrive, is bounded by their rebalance timeout).
constexpr auto assignment_wait_max = std::chrono::seconds(120);

void usage() {
    std::fprintf(
        stderr,
        "usage: sluice bench [--bootstrap-server host:port] [--topic sluice-bench]\n"
        "         [--mode produce|consume|both] [--partitions 1] [--replication-factor R]\n"
        "         [--record-size 1024] [--batch-size 64KiB] [--acks 0|1|all]\n"
        "         [--compression none|gzip|snappy|lz4|zstd] [--producers 1] [--consumers 1]\n"
        "         [--in-flight 5] [--duration-s 10 | --records N] [--rate R]\n"
        "         [--fetch-size 8MiB] [--fetch-in-flight 1] [--fill-bytes 1GiB]\n"
        "         [--consumer-groups 1] [--group NAME] [--commit-interval-ms 1000]\n"
        "         [--offset-reset earliest|latest] [--json FILE] [--quiet]\n"
        "         [--tcp-congestion cubic|default|NAME]\n"
        "         [--idempotent | --transactional-id ID [--txn-records 100]]\n"
        "         [--network-stack posix|dpdk --dpdk-args EAL --dpdk-ip IP [--dpdk-mtu 1500]\n"
        "          [--dpdk-trusted-link]]\n"
        "       sluice bench --reference loopback [--duration-s 10] [--fetch-size 8MiB]\n"
        "  --mode consume reads the topic from its earliest offset (pre-filling it with\n"
        "  --fill-bytes, or --records, of records when it holds less), wrapping around at\n"
        "  the end. --mode both consumes what the producers write while they write it.\n"
        "  --batch-size is per partition per request; --rate is records/s (0 = max).\n"
        "  --fetch-in-flight N (consume mode, one partition per consumer): after a first\n"
        "  pass has shown where each fetch of the unchanging log ends, keep N in flight.\n"
        "  --consumer-groups G runs G sets of --consumers threads, each set reading every\n"
        "  partition. Without --group they are independent readers (no group membership);\n"
        "  with --group NAME each set is a consumer group (NAME, or NAME-0..NAME-(G-1)):\n"
        "  range assignment, heartbeats, offset commits every --commit-interval-ms, and\n"
        "  partitions without a committed offset start at --offset-reset (latest = the log\n"
        "  end when the run starts; the default in mode both, earliest in consume mode).\n"
        "  --tcp-congestion sets the congestion control of the bench's sockets (and of the\n"
        "  loopback reference's sender); default cubic, as Sluice uses for same-host peers.\n"
        "  --idempotent: producers get a producer id and write sequenced batches (acks all).\n"
        "  --transactional-id ID: producer i is transactional id ID-i and commits a\n"
        "  transaction every --txn-records records (AddPartitionsToTxn, produce, EndTxn).\n"
        "  --network-stack dpdk: every connection goes over Sluice's own TCP/IP on a DPDK\n"
        "  port (EAL arguments --dpdk-args, e.g. a net_memif client; this end's IPv4\n"
        "  address --dpdk-ip); brokers are then reached at IPv4 addresses only.\n");
}

struct side_report {
    uint64_t records = 0;
    uint64_t payload_bytes = 0;
    uint64_t wire_bytes = 0;
    uint64_t requests = 0;
    uint64_t errors = 0;
    uint64_t transactions = 0;
    double seconds = 0;
    histogram latency;
};

double mib(uint64_t bytes) {
    return static_cast<double>(bytes) / (1 << 20);
}
double ms(uint64_t ns) {
    return static_cast<double>(ns) / 1e6;
}

// The progress line: once a second, the last second's throughput and latency per side.
class reporter {
  public:
    reporter(const settings& s, run_control& ctl) : _s(s), _ctl(ctl) {}

    void add(const char* name, side_stats* stats) { _sides.push_back({name, stats, 0, 0}); }
    void start() {
        _thread = std::thread([this] { loop(); });
    }
    void finish() {
        _done = true;
        if (_thread.joinable()) _thread.join();
        for (auto& side : _sides) fold(side);
    }

  private:
    struct side {
        const char* name;
        side_stats* stats;
        uint64_t last_records;
        uint64_t last_bytes;
    };

    // Moves the interval histogram into the total; returns the interval's histogram.
    static histogram fold(side& sd) {
        std::lock_guard<std::mutex> g(sd.stats->mu);
        histogram h = sd.stats->interval;
        sd.stats->total.merge(h);
        sd.stats->interval.reset();
        return h;
    }

    void loop() {
        auto last = clock::now();
        while (!_done) {
            std::this_thread::sleep_for(std::chrono::milliseconds(100));
            auto now = clock::now();
            if (now - last < std::chrono::seconds(1)) continue;
            double secs = std::chrono::duration<double>(now - last).count();
            last = now;
            std::string line = progress_prefix(now);
            for (auto& sd : _sides) {
                histogram h = fold(sd);
                uint64_t rec = sd.stats->records.load();
                uint64_t bytes = sd.stats->wire_bytes.load();
                char buf[256];
                std::snprintf(buf, sizeof buf, " | %s %8.1f MiB/s %9.0f rec/s", sd.name,
                              mib(bytes - sd.last_bytes) / secs,
                              static_cast<double>(rec - sd.last_records) / secs);
                line += buf;
                if (h.count() > 0) {
                    std::snprintf(buf, sizeof buf, " p50 %.2f p99 %.2f max %.2f ms",
                                  ms(h.percentile(50)), ms(h.percentile(99)), ms(h.max()));
                    line += buf;
                }
                sd.last_records = rec;
                sd.last_bytes = bytes;
            }
            if (!_s.quiet) std::fprintf(stderr, "%s\n", line.c_str());
        }
    }

    std::string progress_prefix(clock::time_point now) const {
        char buf[128];
        double elapsed = std::chrono::duration<double>(now - _ctl.start).count();
        if (_ctl.by_records) {
            std::snprintf(buf, sizeof buf, "[%6.1fs]", elapsed);
        } else {
            double left = std::max(0.0, std::chrono::duration<double>(_ctl.deadline - now).count());
            std::snprintf(buf, sizeof buf, "[%6.1fs, %5.1fs left]", elapsed, left);
        }
        return buf;
    }

    const settings& _s;
    run_control& _ctl;
    std::vector<side> _sides;
    std::thread _thread;
    std::atomic<bool> _done{false};
};

side_report summarize(side_stats& st, double seconds) {
    side_report r;
    r.records = st.records.load();
    r.payload_bytes = st.payload_bytes.load();
    r.wire_bytes = st.wire_bytes.load();
    r.requests = st.requests.load();
    r.errors = st.errors.load();
    r.transactions = st.transactions.load();
    r.seconds = seconds;
    std::lock_guard<std::mutex> g(st.mu);
    r.latency = st.total;
    r.latency.merge(st.interval);
    return r;
}

void print_side(const char* name, const side_report& r, bool latency) {
    double secs = r.seconds > 0 ? r.seconds : 1;
    std::printf("%s: %llu records, %.1f MiB in %.2f s: %.1f MiB/s, %.0f records/s", name,
                static_cast<unsigned long long>(r.records), mib(r.wire_bytes), r.seconds,
                mib(r.wire_bytes) / secs, static_cast<double>(r.records) / secs);
    if (r.payload_bytes != r.wire_bytes) {
        std::printf(" (record values %.1f MiB/s)", mib(r.payload_bytes) / secs);
    }
    std::printf("\n");
    if (latency && r.latency.count() > 0) {
        std::printf(
            "  request latency ms: p50 %.3f  p99 %.3f  p99.9 %.3f  max %.3f  mean %.3f"
            "  (%llu requests)\n",
            ms(r.latency.percentile(50)), ms(r.latency.percentile(99)),
            ms(r.latency.percentile(99.9)), ms(r.latency.max()), ms(r.latency.mean()),
            static_cast<unsigned long long>(r.latency.count()));
    }
    if (r.transactions > 0) {
        std::printf("  transactions committed: %llu\n",
                    static_cast<unsigned long long>(r.transactions));
    }
    if (r.errors > 0) {
        std::printf("  errors: %llu\n", static_cast<unsigned long long>(r.errors));
    }
}

std::string json_escape(const std::string& s) {
    std::string out;
    for (char c : s) {
        if (c == '"' || c == '\\') {
            out += '\\';
            out += c;
        } else if (static_cast<unsigned char>(c) < 0x20) {
            char buf[8];
            std::snprintf(buf, sizeof buf, "\\u%04x", c);
            out += buf;
        } else {
            out += c;
        }
    }
    return out;
}

// A latency histogram (ns) as JSON in ms: count, percentiles, and the curve for plots
// (perf/suite.py): [percentile, ms] pairs. null when empty.
std::string json_latency(const histogram& h) {
    if (h.count() == 0) return "null";
    std::ostringstream o;
    o << "{\"count\": " << h.count() << ", \"p50\": " << ms(h.percentile(50))
      << ", \"p99\": " << ms(h.percentile(99)) << ", \"p999\": " << ms(h.percentile(99.9))
      << ", \"max\": " << ms(h.max()) << ", \"mean\": " << ms(static_cast<uint64_t>(h.mean()));
    o << ", \"percentiles\": [";
    const double points[] = {0, 10, 25, 50, 75, 90, 95, 99, 99.5, 99.9, 99.95, 99.99, 100};
    for (size_t i = 0; i < std::size(points); ++i) {
        o << (i ? ", [" : "[") << points[i] << ", " << ms(h.percentile(points[i])) << "]";
    }
    o << "]}";
    return o.str();
}

std::string json_side(const side_report& r) {
    std::ostringstream o;
    double secs = r.seconds > 0 ? r.seconds : 1;
    o << "{\"records\": " << r.records << ", \"payload_bytes\": " << r.payload_bytes
      << ", \"wire_bytes\": " << r.wire_bytes << ", \"requests\": " << r.requests
      << ", \"errors\": " << r.errors << ", \"transactions\": " << r.transactions
      << ", \"seconds\": " << r.seconds
      << ", \"mib_per_s\": " << mib(r.wire_bytes) / secs
      << ", \"payload_mib_per_s\": " << mib(r.payload_bytes) / secs
      << ", \"records_per_s\": " << static_cast<double>(r.records) / secs
      << ", \"latency_ms\": " << json_latency(r.latency) << "}";
    return o.str();
}

const char* mode_name(mode m) {
    switch (m) {
        case mode::produce:
            return "produce";
        case mode::consume:
            return "consume";
        case mode::both:
            return "both";
    }
    return "?";
}

const char* codec_name(model::compression c) {
    switch (c) {
        case model::compression::none:
            return "none";
        case model::compression::gzip:
            return "gzip";
        case model::compression::snappy:
            return "snappy";
        case model::compression::lz4:
            return "lz4";
        case model::compression::zstd:
            return "zstd";
    }
    return "?";
}

std::string json_settings(const settings& s) {
    std::ostringstream o;
    o << "{\"bootstrap_server\": \"" << json_escape(s.client.bootstrap) << "\", \"topic\": \""
      << json_escape(s.topic) << "\", \"mode\": \"" << mode_name(s.run_mode)
      << "\", \"partitions\": " << s.partitions << ", \"record_size\": " << s.record_bytes
      << ", \"batch_size\": " << s.batch_bytes << ", \"acks\": " << s.acks
      << ", \"compression\": \"" << codec_name(s.codec) << "\", \"producers\": " << s.producers
      << ", \"idempotent\": " << (s.idempotent ? "true" : "false")
      << ", \"transactional\": " << (s.transactional_id ? "true" : "false")
      << ", \"txn_records\": " << s.txn_records
      << ", \"consumers\": " << s.consumers << ", \"consumer_groups\": " << s.consumer_groups
      << ", \"in_flight\": " << s.in_flight << ", \"duration_s\": " << s.duration_s
      << ", \"records\": " << s.records << ", \"rate\": " << s.rate
      << ", \"fetch_size\": " << s.fetch_bytes << ", \"fetch_in_flight\": " << s.fetch_in_flight
      << ", \"group\": " << (s.group ? "\"" + json_escape(*s.group) + "\"" : std::string("null"))
      << ", \"commit_interval_ms\": " << s.commit_interval_ms << ", \"offset_reset\": \""
      << (s.reset == offset_reset::earliest ? "earliest" : "latest") << "\"}";
    return o.str();
}

result<void> write_file(const std::string& path, const std::string& text) {
    std::ofstream f(path, std::ios::trunc);
    f << text;
    f.close();
    if (!f) return error(errc::io_failed, "cannot write " + path);
    return ok();
}

// --group, --commit-interval-ms and --offset-reset (after --mode).
result<void> group_options(const args& a, settings& s) {
    if (auto g = a.get("group")) {
        if (g->empty()) return error(errc::bad_argument, "--group needs a name");
        if (s.run_mode == mode::produce) {
            return error(errc::bad_argument, "--group needs --mode consume or both");
        }
        s.group = *g;
    }
    auto interval = a.integer("commit-interval-ms", s.commit_interval_ms, 0, 3600 * 1000);
    if (!interval) return interval.error();
    s.commit_interval_ms = static_cast<int>(*interval);
    std::string reset =
        a.get_or("offset-reset", s.run_mode == mode::consume ? "earliest" : "latest");
    if (reset != "earliest" && reset != "latest") {
        return error(errc::bad_argument, "--offset-reset must be earliest or latest");
    }
    s.reset = reset == "earliest" ? offset_reset::earliest : offset_reset::latest;
    return ok();
}

result<settings> settings_from(const args& a) {
    settings s;
    auto c = client_options_from(a);
    if (!c) return c.error();
    s.client = *c;
    // The congestion control of every socket the bench sends from, the loopback reference's
    // included, so that a reference and a broker run compare like with like. cubic: the one
    // Sluice uses towards same-host peers (sluice.tcp.congestion.local); "default": the
    // system's (a pacing algorithm such as bbr throttles loopback bursts).
    std::string cc = a.get_or("tcp-congestion", "cubic");
    s.client.conn.tcp_congestion = cc == "default" ? "" : cc;
    std::string net_stack = a.get_or("network-stack", "posix");
    if (net_stack == "dpdk") {
        bypass_options b;
        b.dpdk_args = a.get_or("dpdk-args", "");
        b.ip = a.get_or("dpdk-ip", "");
        auto mtu = a.integer("dpdk-mtu", 1500, 576, 9600);
        if (!mtu) return mtu.error();
        b.mtu = static_cast<unsigned>(*mtu);
        b.trusted_link = a.has("dpdk-trusted-link");
        if (b.dpdk_args.empty() || b.ip.empty()) {
            return error(errc::bad_argument, "--network-stack dpdk needs --dpdk-args and --dpdk-ip");
        }
        s.client.conn.bypass = b;
    } else if (net_stack != "posix") {
        return error(errc::bad_argument, "--network-stack must be posix or dpdk");
    }
    s.topic = a.get_or("topic", s.topic);
    std::string m = a.get_or("mode", "produce");
    if (m == "produce") {
        s.run_mode = mode::produce;
    } else if (m == "consume") {
        s.run_mode = mode::consume;
    } else if (m == "both") {
        s.run_mode = mode::both;
    } else {
        return error(errc::bad_argument, "--mode must be produce, consume or both");
    }
    auto get = [&](const char* name, int64_t fallback, int64_t lo, int64_t hi) {
        return a.integer(name, fallback, lo, hi);
    };
    auto partitions = get("partitions", 1, 1, 100000);
    auto rf = get("replication-factor", -1, -1, 100);
    auto record = get("record-size", 1024, 0, 16 << 20);
    auto batch = get("batch-size", 64 << 10, 1, 256 << 20);
    auto producers = get("producers", 1, 0, 1024);
    auto connections = get("connections", -1, -1, 1024);
    auto consumers = get("consumers", 1, 0, 1024);
    auto groups = get("consumer-groups", 1, 1, 64);
    auto in_flight = get("in-flight", 5, 1, 1024);
    auto records = get("records", 0, 0, INT64_MAX / 2);
    auto fetch = get("fetch-size", 8 << 20, 1024, 1 << 30);
    auto fetch_in_flight = get("fetch-in-flight", 1, 1, 1024);
    auto fill = get("fill-bytes", int64_t{1} << 30, 0, INT64_MAX / 2);
    auto txn_records = get("txn-records", 100, 1, 1 << 30);
    for (auto* r : {&partitions, &rf, &record, &batch, &producers, &connections, &consumers,
                    &groups, &in_flight, &records, &fetch, &fetch_in_flight, &fill,
                    &txn_records}) {
        if (!*r) return r->error();
    }
    auto duration = a.number("duration-s", 10);
    auto rate = a.number("rate", 0);
    if (!duration) return duration.error();
    if (!rate) return rate.error();
    s.partitions = static_cast<int32_t>(*partitions);
    s.replication_factor = static_cast<int16_t>(*rf);
    s.record_bytes = static_cast<size_t>(*record);
    s.batch_bytes = static_cast<size_t>(*batch);
    s.producers = static_cast<int>(*connections >= 0 ? *connections : *producers);
    s.consumers = static_cast<int>(*consumers);
    s.consumer_groups = static_cast<int>(*groups);
    s.in_flight = static_cast<int>(*in_flight);
    s.records = static_cast<uint64_t>(*records);
    s.fetch_bytes = static_cast<int32_t>(*fetch);
    s.fill_bytes = static_cast<uint64_t>(*fill);
    s.fetch_in_flight = static_cast<int>(*fetch_in_flight);
    s.duration_s = *duration;
    s.rate = *rate;
    auto acks = parse_acks(a.get_or("acks", "1"));
    if (!acks) return acks.error();
    s.acks = *acks;
    auto codec = parse_compression(a.get_or("compression", "none"));
    if (!codec) return codec.error();
    s.codec = *codec;
    if (auto g = group_options(a, s); !g) return g.error();
    if (auto j = a.get("json")) s.json_path = *j;
    if (auto t = a.get("transactional-id")) s.transactional_id = *t;
    s.idempotent = a.has("idempotent") || s.transactional_id.has_value();
    s.txn_records = static_cast<int>(*txn_records);
    if (s.idempotent && s.acks != -1) {
        return error(errc::bad_argument, "--idempotent and --transactional-id need --acks all");
    }
    s.quiet = a.has("quiet");
    if (s.duration_s <= 0 && s.records == 0) {
        return error(errc::bad_argument, "give --duration-s > 0 or --records N");
    }
    if (s.run_mode != mode::consume && s.producers == 0) {
        return error(errc::bad_argument, "--producers must be at least 1");
    }
    if (s.run_mode != mode::produce && s.consumers == 0) {
        return error(errc::bad_argument, "--consumers must be at least 1");
    }
    return s;
}

// Creates the topic when missing; returns its partition count.
result<int32_t> ensure_topic(client& c, const settings& s) {
    auto t = c.topic(s.topic, true);
    if (t) {
        auto n = static_cast<int32_t>((*t)->partitions.size());
        if (n != s.partitions) {
            std::fprintf(stderr, "sluice bench: topic %s exists with %d partition(s); using them\n",
                         s.topic.c_str(), n);
        }
        return n;
    }
    if (!t.error().is(errc::kafka) ||
        t.error().detail().rfind("UNKNOWN_TOPIC_OR_PARTITION", 0) != 0) {
        return t.error();
    }
    protocol::create_topics_request req;
    auto& ct = req.topics.emplace_back();
    ct.name = s.topic;
    ct.num_partitions = s.partitions;
    ct.replication_factor = s.replication_factor;
    auto ctl = c.controller();
    if (!ctl) return ctl.error();
    if ((*ctl)->version<protocol::create_topics_api>() < 4 && ct.replication_factor < 0) {
        ct.replication_factor = 1;
    }
    auto resp = (*ctl)->call<protocol::create_topics_api>(req);
    if (!resp) return resp.error();
    for (const auto& r : resp->topics) {
        if (r.error_code != 0 && r.error_code != 36) {
            return kafka_failure(r.error_code, r.error_message.value_or(""));
        }
    }
    // Wait until every partition has a leader.
    for (int i = 0; i < 100; ++i) {
        auto again = c.topic(s.topic, true);
        if (again && !(*again)->partitions.empty() &&
            std::all_of((*again)->partitions.begin(), (*again)->partitions.end(),
                        [](const partition_info& p) { return p.leader >= 0; })) {
            return static_cast<int32_t>((*again)->partitions.size());
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return kafka_failure(5, "topic " + s.topic + " has no leaders after creation");
}

void start_clock(run_control& ctl, const settings& s, uint64_t produce, uint64_t consume) {
    ctl.start = clock::now();
    ctl.deadline = ctl.start + std::chrono::duration_cast<clock::duration>(
                                   std::chrono::duration<double>(s.duration_s));
    ctl.by_records = s.records > 0;
    ctl.produce_left = static_cast<int64_t>(produce);
    ctl.consume_left = static_cast<int64_t>(consume);
}

double elapsed_s(const run_control& ctl) {
    return std::chrono::duration<double>(clock::now() - ctl.start).count();
}

// Consume mode: makes sure the topic holds enough to read; returns the consume plan.
result<consume_plan> prepare_consume(client& c, const settings& s, int32_t partitions) {
    auto first = list_offsets(c, s.topic, partitions, -2);
    if (!first) return first.error();
    auto end = list_offsets(c, s.topic, partitions, -1);
    if (!end) return end.error();
    uint64_t have = 0;
    for (int32_t p = 0; p < partitions; ++p) {
        have += static_cast<uint64_t>((*end)[static_cast<size_t>(p)] -
                                      (*first)[static_cast<size_t>(p)]);
    }
    uint64_t per_record = s.record_bytes + 10;
    uint64_t want = s.records > 0 ? s.records : s.fill_bytes / std::max<uint64_t>(per_record, 1);
    if (have < want) {
        std::fprintf(stderr, "sluice bench: filling %s with %llu records before consuming\n",
                     s.topic.c_str(), static_cast<unsigned long long>(want - have));
        settings fill = s;
        fill.records = want - have;
        run_control ctl;
        start_clock(ctl, fill, fill.records, 0);
        side_stats stats;
        run_producers(fill, partitions, ctl, stats);
        if (ctl.failed_workers > 0) return error(errc::io_failed, "fill: " + ctl.first_error);
        end = list_offsets(c, s.topic, partitions, -1);
        if (!end) return end.error();
    }
    consume_plan plan;
    plan.start = *first;
    plan.wrap_to = *first;
    plan.wrap_at = *end;
    return plan;
}

int run_reference(const settings& s) {
    auto r = run_loopback(s);
    if (!r) return report("bench", r.error());
    double rate = mib(r->bytes) / r->seconds;
    std::printf("loopback: %.1f MiB in %.2f s: %.1f MiB/s (frames of %d bytes)\n", mib(r->bytes),
                r->seconds, rate, s.fetch_bytes);
    if (s.json_path) {
        std::ostringstream o;
        o << "{\"reference\": \"loopback\", \"frame_bytes\": " << s.fetch_bytes
          << ", \"bytes\": " << r->bytes << ", \"seconds\": " << r->seconds
          << ", \"mib_per_s\": " << rate << "}\n";
        if (auto w = write_file(*s.json_path, o.str()); !w) return report("bench", w.error());
    }
    return exit_ok;
}

// Where consumers start and stop. Mode both: from the log end before the producers start, to
// `end` (filled in when they are done). Consume mode: see prepare_consume. Group members start a
// partition without a committed offset at --offset-reset; in consume mode they read up to the
// log end at the start, once (committed offsets do not wrap around).
result<consume_plan> plan_consumers(client& c, const settings& s, int32_t partitions,
                                    std::vector<std::atomic<int64_t>>& end) {
    consume_plan plan;
    if (s.run_mode == mode::consume) {
        auto p = prepare_consume(c, s, partitions);
        if (!p) return p.error();
        plan = std::move(*p);
    } else if (s.run_mode == mode::both) {
        auto latest = list_offsets(c, s.topic, partitions, -1);
        if (!latest) return latest.error();
        plan.start = *latest;
        for (auto& e : end) e = INT64_MAX;
        plan.end = &end;
    }
    if (!s.group) return plan;
    if (s.run_mode == mode::consume) {
        for (size_t p = 0; p < end.size(); ++p) end[p] = plan.wrap_at[p];
        if (s.reset == offset_reset::latest) plan.start = plan.wrap_at;
        plan.wrap_at.clear();
        plan.wrap_to.clear();
        plan.end = &end;
    } else if (s.reset == offset_reset::earliest) {
        auto first = list_offsets(c, s.topic, partitions, -2);
        if (!first) return first.error();
        plan.start = *first;
    }
    return plan;
}

// --group: one group_stats per set of consumers, named NAME, or NAME-0.. with several sets.
std::vector<std::unique_ptr<group_stats>> make_groups(const settings& s, int32_t partitions) {
    std::vector<std::unique_ptr<group_stats>> out;
    if (!s.group) return out;
    for (int g = 0; g < s.consumer_groups; ++g) {
        std::string name = s.consumer_groups == 1 ? *s.group : *s.group + "-" + std::to_string(g);
        out.push_back(std::make_unique<group_stats>(name, partitions, s.consumers));
        out.back()->consume_left = static_cast<int64_t>(s.records);
    }
    return out;
}

double first_assignment_s(const group_stats& g) {
    double worst = -1;
    for (const auto& m : g.members) worst = std::max(worst, m.first_assignment_s);
    return worst;
}

void print_group(const group_stats& g, double seconds) {
    double secs = seconds > 0 ? seconds : 1;
    std::printf("group %s: %llu records, %.1f MiB: %.1f MiB/s; %zu members (partitions",
                g.name.c_str(), static_cast<unsigned long long>(g.records.load()),
                mib(g.wire_bytes), mib(g.wire_bytes) / secs, g.members.size());
    for (size_t i = 0; i < g.members.size(); ++i) {
        std::printf("%s", i ? " |" : "");
        for (int32_t p : g.members[i].partitions) std::printf(" %d", p);
    }
    std::printf(")\n  first assignment after %.2f s, %zu rebalance(s), %llu commits",
                first_assignment_s(g), g.generations.size(),
                static_cast<unsigned long long>(g.commits.load()));
    if (g.commit_latency.count() > 0) {
        std::printf(" (latency ms: p50 %.3f  p99 %.3f  max %.3f)",
                    ms(g.commit_latency.percentile(50)), ms(g.commit_latency.percentile(99)),
                    ms(g.commit_latency.max()));
    }
    if (g.commit_errors > 0) {
        std::printf(", %llu failed", static_cast<unsigned long long>(g.commit_errors.load()));
    }
    std::printf("\n");
}

std::string json_group(const group_stats& g, double seconds) {
    std::ostringstream o;
    double secs = seconds > 0 ? seconds : 1;
    o << "{\"group\": \"" << json_escape(g.name) << "\", \"records\": " << g.records
      << ", \"payload_bytes\": " << g.payload_bytes << ", \"wire_bytes\": " << g.wire_bytes
      << ", \"seconds\": " << seconds << ", \"mib_per_s\": " << mib(g.wire_bytes) / secs
      << ", \"records_per_s\": " << static_cast<double>(g.records) / secs
      << ", \"first_assignment_s\": " << first_assignment_s(g)
      << ", \"rebalances\": " << g.generations.size() << ", \"generations\": [";
    size_t i = 0;
    for (int32_t gen : g.generations) o << (i++ ? ", " : "") << gen;
    o << "], \"commits\": " << g.commits << ", \"commit_errors\": " << g.commit_errors
      << ", \"commit_latency_ms\": " << json_latency(g.commit_latency) << ", \"members\": [";
    for (size_t m = 0; m < g.members.size(); ++m) {
        const auto& mr = g.members[m];
        o << (m ? ", " : "") << "{\"member_id\": \"" << json_escape(mr.member_id)
          << "\", \"leader\": " << (mr.leader ? "true" : "false") << ", \"partitions\": [";
        for (size_t k = 0; k < mr.partitions.size(); ++k) o << (k ? ", " : "") << mr.partitions[k];
        o << "], \"joins\": " << mr.joins << ", \"first_assignment_s\": " << mr.first_assignment_s
          << "}";
    }
    o << "]}";
    return o.str();
}

std::string json_groups(const std::vector<std::unique_ptr<group_stats>>& groups, double seconds) {
    std::string out = "[";
    for (size_t g = 0; g < groups.size(); ++g) {
        out += (g ? ", " : "") + json_group(*groups[g], seconds);
    }
    return out + "]";
}

// Mode both: every group must have read each record the producers wrote exactly once. Returns
// false (after saying which group and how) when one did not.
bool groups_read_everything(const std::vector<std::unique_ptr<group_stats>>& groups,
                            uint64_t produced) {
    bool all = true;
    for (const auto& g : groups) {
        uint64_t got = g->records.load();
        if (got < produced) {
            std::fprintf(stderr,
                         "sluice bench: group %s consumed %llu of the %llu records produced\n",
                         g->name.c_str(), static_cast<unsigned long long>(got),
                         static_cast<unsigned long long>(produced));
            all = false;
        } else if (got > produced) {
            std::fprintf(
                stderr,
                "sluice bench: group %s consumed %llu records, %llu more than the %llu "
                "produced: records read twice (a commit lost in a rebalance), or records that\n"
                "  were in the topic before the run (--offset-reset earliest)\n",
                g->name.c_str(), static_cast<unsigned long long>(got),
                static_cast<unsigned long long>(got - produced),
                static_cast<unsigned long long>(produced));
            all = false;
        }
    }
    return all;
}

// Group runs: waits until every member has its first assignment (or the run failed).
void wait_for_assignments(const settings& s, run_control& ctl) {
    int members = s.consumer_groups * s.consumers;
    auto t0 = clock::now();
    while (ctl.consumers_assigned.load() < members && !ctl.stop.load()) {
        if (clock::now() - t0 > assignment_wait_max) {
            ctl.fail("not every group member was assigned partitions within " +
                     std::to_string(assignment_wait_max.count()) + " s");
            return;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    if (!s.quiet && !ctl.stop.load()) {
        std::fprintf(stderr, "sluice bench: %d group member(s) assigned after %.2f s; starting\n",
                     members, std::chrono::duration<double>(clock::now() - t0).count());
    }
}

int run_bench(const settings& s) {
    auto c = client::connect(s.client);
    if (!c) return report("bench", c.error());
    auto partitions = ensure_topic(**c, s);
    if (!partitions) return report("bench", partitions.error());
    std::vector<std::atomic<int64_t>> end(static_cast<size_t>(*partitions));
    auto planned = plan_consumers(**c, s, *partitions, end);
    if (!planned) return report("bench", planned.error());
    const consume_plan& plan = *planned;
    auto groups = make_groups(s, *partitions);
    run_control ctl;
    signal_stop = &ctl.stop;
    std::signal(SIGINT, [](int) { signal_stop->store(true); });
    side_stats produced, consumed;
    bool producing = s.run_mode != mode::consume;
    bool consuming = s.run_mode != mode::produce;
    clock::time_point consumers_end;
    std::thread consumer_thread;
    auto start_consumers = [&] {
        consumer_thread = std::thread([&] {
            std::vector<std::thread> sets;  // --consumer-groups: each set reads everything
            for (int g = 0; g < s.consumer_groups; ++g) {
                group_stats* gs = groups.empty() ? nullptr : groups[static_cast<size_t>(g)].get();
                sets.emplace_back(
                    [&, gs] { run_consumers(s, *partitions, plan, ctl, consumed, gs); });
            }
            for (auto& t : sets) t.join();
            consumers_end = clock::now();
        });
    };
    if (consuming && !groups.empty()) {
        // Group members join before the clock starts and producers write (as OpenMessaging
        // Benchmark's consumers subscribe first), so a run measures the reading, not the
        // catch-up after the coordinator's initial rebalance delay.
        start_consumers();
        wait_for_assignments(s, ctl);
    }
    uint64_t consume_records = s.records * static_cast<uint64_t>(s.consumer_groups);
    start_clock(ctl, s, s.records, consume_records);
    ctl.started = true;
    if (consuming && groups.empty()) start_consumers();
    reporter rep(s, ctl);
    if (producing) rep.add("produce", &produced);
    if (consuming) rep.add("consume", &consumed);
    rep.start();
    double produce_s = 0, consume_s = 0;
    if (producing) {
        run_producers(s, *partitions, ctl, produced);
        produce_s = elapsed_s(ctl);
        if (s.run_mode == mode::both) {
            // The consumers stop where the producers stopped.
            auto last = list_offsets(**c, s.topic, *partitions, -1);
            for (size_t p = 0; p < end.size(); ++p) {
                end[p] = last ? (*last)[p] : plan.start[p];
            }
            ctl.producers_done = true;
        }
    }
    if (consumer_thread.joinable()) {
        consumer_thread.join();
        consume_s = std::max(0.0, std::chrono::duration<double>(consumers_end - ctl.start).count());
    }
    rep.finish();
    bool interrupted = ctl.stop && ctl.failed_workers == 0;
    signal_stop = nullptr;
    std::signal(SIGINT, SIG_DFL);

    side_report pr = summarize(produced, produce_s);
    side_report cr = summarize(consumed, consume_s);
    if (producing) print_side("produce", pr, s.acks != 0);
    if (consuming) print_side("consume", cr, true);
    for (const auto& g : groups) print_group(*g, consume_s);
    if (s.json_path) {
        std::ostringstream o;
        o << "{\"settings\": " << json_settings(s);
        if (producing) o << ", \"produce\": " << json_side(pr);
        if (consuming) o << ", \"consume\": " << json_side(cr);
        if (!groups.empty()) o << ", \"groups\": " << json_groups(groups, consume_s);
        o << ", \"failed\": " << (ctl.failed_workers > 0 ? "true" : "false") << "}\n";
        if (auto w = write_file(*s.json_path, o.str()); !w) return report("bench", w.error());
    }
    if (ctl.failed_workers > 0) {
        return report("bench", error(errc::io_failed, ctl.first_error));
    }
    if (s.run_mode == mode::both && !interrupted && !groups_read_everything(groups, pr.records)) {
        return exit_failed;
    }
    bool short_run = s.records > 0 && ((producing && pr.records != s.records) ||
                                       (consuming && cr.records != consume_records));
    if (pr.errors > 0 || short_run) {
        std::fprintf(stderr, "sluice bench: not every record was acknowledged / consumed\n");
        return exit_failed;
    }
    return exit_ok;
}

}  // namespace

int bench_main(int argc, char** argv) {
    auto specs = common_options();
    for (const char* name : {"topic",
                             "mode",
                             "partitions",
                             "replication-factor",
                             "record-size",
                             "batch-size",
                             "acks",
                             "compression",
                             "producers",
                             "connections",
                             "consumers",
                             "consumer-groups",
                             "in-flight",
                             "duration-s",
                             "records",
                             "rate",
                             "fetch-size",
                             "fetch-in-flight",
                             "fill-bytes",
                             "json",
                             "reference",
                             "group",
                             "commit-interval-ms",
                             "offset-reset",
                             "tcp-congestion",
                             "transactional-id",
                             "txn-records",
                             "network-stack",
                             "dpdk-args",
                             "dpdk-ip",
                             "dpdk-mtu"}) {
        specs.push_back({name});
    }
    specs.push_back({"quiet", false});
    specs.push_back({"dpdk-trusted-link", false});
    specs.push_back({"idempotent", false});
    auto a = args::parse(argc, argv, specs);
    if (!a) {
        usage();
        return report("bench", a.error());
    }
    if (a->has("help")) {
        usage();
        return exit_ok;
    }
    if (!a->positional().empty()) {
        usage();
        return exit_usage;
    }
    auto s = settings_from(*a);
    if (!s) return report("bench", s.error());
    if (auto ref = a->get("reference")) {
        if (*ref != "loopback") {
            return report("bench", error(errc::bad_argument, "--reference must be loopback"));
        }
        return run_reference(*s);
    }
    return run_bench(*s);
}

}  // namespace sluice::tools
