#include "broker/metrics.h"

#include "net/memory_budget.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <condition_variable>
#include <cstring>
#include <sstream>
#include <tuple>

#include "base/log.h"
#include "broker/allocator.h"
#include "broker/cluster.h"
#include "broker/log_dirs.h"
#include "broker/config.h"
#include "broker/handlers.h"
#include "broker/server.h"
#include "broker/shard.h"
#include "net/memory_budget.h"
#include "protocol/api.h"
#include "replication/cluster_state.h"
#include "runtime/reactor.h"
#include "sluice_version.h"
#include "tools/errc.h"

namespace sluice::broker {

namespace {

constexpr size_t max_request_bytes = 8192;
constexpr auto gather_timeout = std::chrono::seconds(2);
constexpr int client_timeout_ms = 2000;

void add(std::atomic<uint64_t>& a, uint64_t v) { a.fetch_add(v, std::memory_order_relaxed); }
uint64_t get(const std::atomic<uint64_t>& a) { return a.load(std::memory_order_relaxed); }

// Label values: backslash, quote and newline escaped (exposition format).
std::string label(const std::string& v) {
    std::string out;
    for (char c : v) {
        if (c == '\\' || c == '"') out += '\\';
        if (c == '\n') {
            out += "\\n";
            continue;
        }
        out += c;
    }
    return out;
}

std::string api_name(int key) {
    const protocol::api_info* info = protocol::find_api(static_cast<int16_t>(key));
    return info != nullptr ? std::string(info->name) : "api" + std::to_string(key);
}

struct partition_view {
    std::string topic;
    int32_t partition = 0;
    uint64_t size_bytes = 0;
    uint64_t segments = 0;
    int64_t log_end = 0;
    int64_t high_watermark = 0;
    unsigned core = 0;  // the core that owns it
    uint64_t appends = 0, writes = 0, fsyncs = 0, bytes_written = 0, fsync_ns = 0;
    uint64_t no_space_refusals = 0;
};

struct core_view {
    unsigned core = 0;
    uint64_t submitted = 0, completed = 0;
    double idle_s = 0, uptime_s = 0;
    uint64_t memory_limit = 0, memory_used = 0, memory_peak = 0, memory_waits = 0, memory_waiting = 0;
};

// Every core's partitions, asked on their cores. Cores that do not answer within the bound are
// left out (and counted).
struct gathered {
    std::vector<partition_view> parts;
    std::vector<core_view> cores;
    std::vector<committed_offset_view> committed;
    unsigned unanswered = 0;
};

gathered gather(server& srv) {
    struct state {
        std::mutex mu;
        std::condition_variable cv;
        gathered g;
        unsigned answered = 0;
    };
    auto st = std::make_shared<state>();
    for (unsigned i = 0; i < srv.cores(); ++i) {
        srv.run_on(i, [st, i, &srv](shard& s) {
            core_view cv;
            cv.core = i;
            if (const net::memory_budget* m = srv.memory_budget(i)) {
                cv.memory_limit = m->limit_bytes();
                cv.memory_used = m->used_bytes();
                cv.memory_peak = m->peak_bytes();
                cv.memory_waits = m->waits_total();
                cv.memory_waiting = m->waiting();
            }
            if (runtime::reactor* r = runtime::reactor::local()) {
                cv.submitted = r->submitted_total();
                cv.completed = r->completed_total();
                cv.idle_s = std::chrono::duration<double>(r->idle_time()).count();
                cv.uptime_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - r->started_at()).count();
            }
            std::vector<partition_view> mine;
            s.for_each_partition([&](const partition& p) {
                partition_view v;
                v.topic = p.tp.topic;
                v.partition = p.tp.partition();
                auto active = p.log->active_segment();
                v.size_bytes = active.size_bytes;
                v.segments = 1;
                for (const auto& seg : p.log->closed_segments()) {
                    v.size_bytes += seg.size_bytes;
                    ++v.segments;
                }
                v.log_end = p.log->log_end_offset()();
                v.high_watermark = p.high_watermark();
                v.core = i;
                const auto& ls = p.log->stats();
                v.appends = ls.appends;
                v.writes = ls.writes;
                v.fsyncs = ls.fsyncs;
                v.bytes_written = ls.bytes_written;
                v.fsync_ns = ls.fsync_ns;
                v.no_space_refusals = ls.no_space_refusals;
                mine.push_back(std::move(v));
            });
            auto commits = committed_offsets(s);
            std::lock_guard lock(st->mu);
            for (auto& v : mine) st->g.parts.push_back(std::move(v));
            for (auto& c : commits) st->g.committed.push_back(std::move(c));
            st->g.cores.push_back(cv);
            ++st->answered;
            st->cv.notify_all();
        });
    }
    std::unique_lock lock(st->mu);
    st->cv.wait_for(lock, gather_timeout, [&] { return st->answered == srv.cores(); });
    gathered out = st->g;
    out.unanswered = srv.cores() - st->answered;
    std::sort(out.cores.begin(), out.cores.end(), [](const core_view& a, const core_view& b) { return a.core < b.core; });
    return out;
}

void cluster_gauges(server& srv, std::ostringstream& out) {
    cluster* cl = srv.cluster_member();
    if (cl == nullptr) return;
    auto view = cl->view();
    uint64_t under = 0, offline = 0, total = 0;
    for (const auto& [name, t] : *view->topics) {
        for (size_t p = 0; p < t.states.size(); ++p) {
            ++total;
            const auto& st = t.states[p];
            if (!st || !view->live(st->leader)) {
                ++offline;
                continue;
            }
            if (p < t.replicas.size() && st->isr.size() < t.replicas[p].size()) ++under;
        }
    }
    out << "# HELP sluice_cluster_brokers Live brokers in the cluster view.\n"
        << "# TYPE sluice_cluster_brokers gauge\nsluice_cluster_brokers " << view->brokers.size() << "\n"
        << "# HELP sluice_cluster_controller_id The controller's broker id (-1: none).\n"
        << "# TYPE sluice_cluster_controller_id gauge\nsluice_cluster_controller_id " << view->controller_id << "\n"
        << "# HELP sluice_cluster_partitions Partitions in the cluster.\n"
        << "# TYPE sluice_cluster_partitions gauge\nsluice_cluster_partitions " << total << "\n"
        << "# HELP sluice_cluster_under_replicated_partitions Partitions whose ISR is smaller than their replica set.\n"
        << "# TYPE sluice_cluster_under_replicated_partitions gauge\nsluice_cluster_under_replicated_partitions "
        << under << "\n"
        << "# HELP sluice_cluster_offline_partitions Partitions without a live leader.\n"
        << "# TYPE sluice_cluster_offline_partitions gauge\nsluice_cluster_offline_partitions " << offline << "\n";
}

}  // namespace

void metrics::request_done(unsigned core, int16_t api_key, std::chrono::microseconds latency) {
    if (api_key < 0 || api_key >= metrics_api_keys || core >= _cores.size()) return;
    core_metrics& c = *_cores[core];
    add(c.requests[api_key], 1);
    add(c.latency_sum_us[api_key], static_cast<uint64_t>(latency.count()));
    double s = static_cast<double>(latency.count()) / 1e6;
    size_t b = 0;
    while (b < latency_buckets_s.size() && s > latency_buckets_s[b]) ++b;
    add(c.latency_buckets[api_key][b], 1);
}

void metrics::partition_error(unsigned core, int api, int16_t code) {
    if (core >= _cores.size() || api < 0 || api > 1) return;
    int idx = code < 0 || code >= metrics_error_codes ? metrics_error_codes - 1 : code;
    add(_cores[core]->partition_errors[api][idx], 1);
}

void metrics::topic_bytes(unsigned core, const std::string& topic, uint64_t in, uint64_t out) {
    if (core >= _cores.size() || (in == 0 && out == 0)) return;
    core_metrics& c = *_cores[core];
    std::lock_guard lock(c.topics_mu);
    auto& t = c.topics[topic];
    t.in += in;
    t.out += out;
}

std::string metrics::render(server& srv) {
    std::ostringstream out;
    out << "# HELP sluice_build_info Version and commit of this broker.\n# TYPE sluice_build_info gauge\n"
        << "sluice_build_info{version=\"" << SLUICE_VERSION << "\",commit=\"" << SLUICE_GIT_COMMIT
        << "\",broker_id=\"" << srv.node_id() << "\"} 1\n";
    // Requests and latency per API.
    out << "# HELP sluice_requests_total Requests answered, by API.\n# TYPE sluice_requests_total counter\n";
    std::ostringstream hist;
    hist << "# HELP sluice_request_latency_seconds Time from a request's arrival to its answer being queued.\n"
         << "# TYPE sluice_request_latency_seconds histogram\n";
    for (int k = 0; k < metrics_api_keys; ++k) {
        uint64_t n = 0, sum = 0;
        std::array<uint64_t, latency_buckets_s.size() + 1> buckets{};
        for (const auto& c : _cores) {
            n += get(c->requests[k]);
            sum += get(c->latency_sum_us[k]);
            for (size_t b = 0; b < buckets.size(); ++b) buckets[b] += get(c->latency_buckets[k][b]);
        }
        if (n == 0) continue;
        std::string api = api_name(k);
        out << "sluice_requests_total{api=\"" << api << "\"} " << n << "\n";
        uint64_t cumulative = 0;
        for (size_t b = 0; b < latency_buckets_s.size(); ++b) {
            cumulative += buckets[b];
            hist << "sluice_request_latency_seconds_bucket{api=\"" << api << "\",le=\"" << latency_buckets_s[b]
                 << "\"} " << cumulative << "\n";
        }
        hist << "sluice_request_latency_seconds_bucket{api=\"" << api << "\",le=\"+Inf\"} " << n << "\n"
             << "sluice_request_latency_seconds_sum{api=\"" << api << "\"} " << static_cast<double>(sum) / 1e6
             << "\n"
             << "sluice_request_latency_seconds_count{api=\"" << api << "\"} " << n << "\n";
    }
    out << hist.str();
    // Partition-level errors of Produce and Fetch.
    out << "# HELP sluice_partition_errors_total Partition answers of Produce and Fetch with an error, by code.\n"
        << "# TYPE sluice_partition_errors_total counter\n";
    for (int api = 0; api < 2; ++api) {
        for (int code = 1; code < metrics_error_codes; ++code) {
            uint64_t n = 0;
            for (const auto& c : _cores) n += get(c->partition_errors[api][code]);
            if (n == 0) continue;
            out << "sluice_partition_errors_total{api=\"" << (api == 0 ? "Produce" : "Fetch") << "\",code=\""
                << code << "\",error=\"" << tools::kafka_error_name(static_cast<int16_t>(code)) << "\"} " << n
                << "\n";
        }
    }
    uint64_t accepted = 0, closed = 0, auth = 0, throttled = 0, shrinks = 0, expands = 0;
    std::map<std::string, core_metrics::topic_bytes> topics;
    for (const auto& c : _cores) {
        accepted += get(c->connections_accepted);
        closed += get(c->connections_closed);
        auth += get(c->auth_failures);
        throttled += get(c->throttled_ms);
        shrinks += get(c->isr_shrinks);
        expands += get(c->isr_expands);
        std::lock_guard lock(c->topics_mu);
        for (const auto& [t, b] : c->topics) {
            topics[t].in += b.in;
            topics[t].out += b.out;
        }
    }
    out << "# HELP sluice_connections_accepted_total Client connections accepted.\n"
        << "# TYPE sluice_connections_accepted_total counter\nsluice_connections_accepted_total " << accepted << "\n"
        << "# HELP sluice_connections Client connections open now.\n# TYPE sluice_connections gauge\n"
        << "sluice_connections " << (accepted >= closed ? accepted - closed : 0) << "\n"
        << "# HELP sluice_core_connections Client connections open now on a core (the kernel spreads them).\n"
        << "# TYPE sluice_core_connections gauge\n";
    for (size_t i = 0; i < _cores.size(); ++i) {
        uint64_t a = get(_cores[i]->connections_accepted), c = get(_cores[i]->connections_closed);
        out << "sluice_core_connections{core=\"" << i << "\"} " << (a >= c ? a - c : 0) << "\n";
    }
    out
        << "# HELP sluice_sasl_authentication_failures_total Failed SASL logins.\n"
        << "# TYPE sluice_sasl_authentication_failures_total counter\nsluice_sasl_authentication_failures_total "
        << auth << "\n"
        << "# HELP sluice_quota_throttle_milliseconds_total Time clients were told to wait for their quotas.\n"
        << "# TYPE sluice_quota_throttle_milliseconds_total counter\nsluice_quota_throttle_milliseconds_total "
        << throttled << "\n"
        << "# HELP sluice_isr_shrinks_total ISR changes of partitions led here that removed replicas.\n"
        << "# TYPE sluice_isr_shrinks_total counter\nsluice_isr_shrinks_total " << shrinks << "\n"
        << "# HELP sluice_isr_expands_total ISR changes of partitions led here that added replicas.\n"
        << "# TYPE sluice_isr_expands_total counter\nsluice_isr_expands_total " << expands << "\n";
    out << "# HELP sluice_topic_bytes_in_total Record bytes produced to a topic (accepted).\n"
        << "# TYPE sluice_topic_bytes_in_total counter\n";
    for (const auto& [t, b] : topics) out << "sluice_topic_bytes_in_total{topic=\"" << label(t) << "\"} " << b.in << "\n";
    out << "# HELP sluice_topic_bytes_out_total Record bytes fetched from a topic (consumers and followers).\n"
        << "# TYPE sluice_topic_bytes_out_total counter\n";
    for (const auto& [t, b] : topics) out << "sluice_topic_bytes_out_total{topic=\"" << label(t) << "\"} " << b.out << "\n";
    // Storage, from the cores that own the partitions.
    gathered g = gather(srv);
    const auto& parts = g.parts;
    unsigned unanswered = g.unanswered;
    std::map<std::string, partition_view> by_topic;
    partition_view all;
    for (const auto& p : parts) {
        auto& t = by_topic[p.topic];
        t.size_bytes += p.size_bytes;
        t.segments += p.segments;
        all.appends += p.appends;
        all.writes += p.writes;
        all.fsyncs += p.fsyncs;
        all.bytes_written += p.bytes_written;
        all.fsync_ns += p.fsync_ns;
        all.no_space_refusals += p.no_space_refusals;
    }
    out << "# HELP sluice_log_size_bytes Bytes in a topic's segments on this broker.\n# TYPE sluice_log_size_bytes gauge\n";
    for (const auto& [t, v] : by_topic) out << "sluice_log_size_bytes{topic=\"" << label(t) << "\"} " << v.size_bytes << "\n";
    out << "# HELP sluice_log_segments Segments of a topic on this broker.\n# TYPE sluice_log_segments gauge\n";
    for (const auto& [t, v] : by_topic) out << "sluice_log_segments{topic=\"" << label(t) << "\"} " << v.segments << "\n";
    if (srv.config().bool_value("sluice.metrics.partition.labels")) {
        out << "# HELP sluice_partition_log_end_offset Log end offset of a partition replica here.\n"
            << "# TYPE sluice_partition_log_end_offset gauge\n";
        for (const auto& p : parts) {
            out << "sluice_partition_log_end_offset{topic=\"" << label(p.topic) << "\",partition=\"" << p.partition
                << "\"} " << p.log_end << "\n";
        }
        out << "# HELP sluice_partition_core The core that owns a partition replica here.\n"
            << "# TYPE sluice_partition_core gauge\n";
        for (const auto& p : parts) {
            out << "sluice_partition_core{topic=\"" << label(p.topic) << "\",partition=\"" << p.partition
                << "\"} " << p.core << "\n";
        }
        out << "# HELP sluice_partition_high_watermark High watermark of a partition replica here.\n"
            << "# TYPE sluice_partition_high_watermark gauge\n";
        for (const auto& p : parts) {
            out << "sluice_partition_high_watermark{topic=\"" << label(p.topic) << "\",partition=\"" << p.partition
                << "\"} " << p.high_watermark << "\n";
        }
    }
    out << "# HELP sluice_log_appends_total Batches appended to partition logs.\n# TYPE sluice_log_appends_total counter\n"
        << "sluice_log_appends_total " << all.appends << "\n"
        << "# HELP sluice_log_writes_total Write submissions (group commit: appends_total / writes_total appends each).\n"
        << "# TYPE sluice_log_writes_total counter\nsluice_log_writes_total " << all.writes << "\n"
        << "# HELP sluice_log_fsyncs_total fdatasync calls on segment files.\n# TYPE sluice_log_fsyncs_total counter\n"
        << "sluice_log_fsyncs_total " << all.fsyncs << "\n"
        << "# HELP sluice_log_written_bytes_total Bytes written to segment files.\n"
        << "# TYPE sluice_log_written_bytes_total counter\nsluice_log_written_bytes_total " << all.bytes_written << "\n"
        << "# HELP sluice_log_fsync_seconds fdatasync latency of segment files (submission to completion).\n"
        << "# TYPE sluice_log_fsync_seconds summary\nsluice_log_fsync_seconds_sum "
        << static_cast<double>(all.fsync_ns) / 1e9 << "\nsluice_log_fsync_seconds_count " << all.fsyncs << "\n"
        << "# HELP sluice_log_no_space_refusals_total Appends refused because their log dir was full.\n"
        << "# TYPE sluice_log_no_space_refusals_total counter\nsluice_log_no_space_refusals_total "
        << all.no_space_refusals << "\n"
        << "# HELP sluice_partitions Partition replicas on this broker.\n# TYPE sluice_partitions gauge\n"
        << "sluice_partitions " << parts.size() << "\n"
        << "# HELP sluice_metrics_cores_unanswered Cores that did not answer this scrape in time.\n"
        << "# TYPE sluice_metrics_cores_unanswered gauge\nsluice_metrics_cores_unanswered " << unanswered << "\n";
    // One series per core: name, type, help, and the value from a core's view.
    auto per_core = [&](const char* name, const char* type, const char* help, auto value) {
        out << "# HELP " << name << " " << help << "\n# TYPE " << name << " " << type << "\n";
        for (const auto& c : g.cores) out << name << "{core=\"" << c.core << "\"} " << value(c) << "\n";
    };
    per_core("sluice_uring_submissions_total", "counter", "io_uring submissions of a core's reactor.",
             [](const core_view& c) { return c.submitted; });
    per_core("sluice_uring_completions_total", "counter", "io_uring completions a core's reactor handled.",
             [](const core_view& c) { return c.completed; });
    per_core("sluice_reactor_idle_seconds_total", "counter", "Time a core's reactor waited in the kernel for work.",
             [](const core_view& c) { return c.idle_s; });
    per_core("sluice_reactor_busy_ratio", "gauge", "Share of its time since start a core's reactor was not waiting.",
             [](const core_view& c) {
                 return c.uptime_s > 0 ? 1.0 - std::min(1.0, c.idle_s / c.uptime_s) : 0.0;
             });
    per_core("sluice_memory_budget_bytes", "gauge",
             "A core's budget for bytes held by requests in flight and in-memory answers "
             "(queued.max.request.bytes; 0: no bound).",
             [](const core_view& c) { return c.memory_limit; });
    per_core("sluice_memory_held_bytes", "gauge", "Bytes a core's connections hold against its budget.",
             [](const core_view& c) { return c.memory_used; });
    per_core("sluice_memory_held_peak_bytes", "gauge", "The most a core's connections have held at once.",
             [](const core_view& c) { return c.memory_peak; });
    per_core("sluice_memory_waits_total", "counter",
             "Times a connection stopped reading because its core was over budget.",
             [](const core_view& c) { return c.memory_waits; });
    per_core("sluice_memory_waiting_connections", "gauge", "Connections waiting for memory now.",
             [](const core_view& c) { return c.memory_waiting; });
    // Consumer-group lag: log end minus committed offset, over the partitions whose log is on
    // this broker (a group coordinated here may commit for partitions led elsewhere: those are
    // left to the broker that holds them).
    std::map<std::pair<std::string, int32_t>, int64_t> ends;
    for (const auto& p : parts) ends[{p.topic, p.partition}] = p.log_end;
    std::map<std::string, int64_t> lag;
    bool per_partition = srv.config().bool_value("sluice.metrics.partition.labels");
    std::ostringstream partition_lag;
    for (const auto& c : g.committed) {
        auto it = ends.find({c.topic, c.partition});
        if (it == ends.end()) continue;
        int64_t l = std::max<int64_t>(0, it->second - c.offset);
        lag[c.group] += l;
        if (per_partition) {
            partition_lag << "sluice_group_partition_lag{group=\"" << label(c.group) << "\",topic=\"" << label(c.topic)
                << "\",partition=\"" << c.partition << "\"} " << l << "\n";
        }
    }
    out << "# HELP sluice_group_lag Records between a group's committed offsets and the log ends.\n"
        << "# TYPE sluice_group_lag gauge\n";
    for (const auto& [group, l] : lag) out << "sluice_group_lag{group=\"" << label(group) << "\"} " << l << "\n";
    if (per_partition) {
        out << "# HELP sluice_group_partition_lag A group's lag on one partition.\n"
            << "# TYPE sluice_group_partition_lag gauge\n" << partition_lag.str();
    }
    allocator_stats as = read_allocator_stats();
    out << "# HELP sluice_allocator_info The broker's memory allocator.\n# TYPE sluice_allocator_info gauge\n"
        << "sluice_allocator_info{allocator=\"" << label(as.name) << "\"} 1\n";
    if (as.available) {
        for (const auto& [name, v, help] : {std::tuple{"allocated", as.allocated, "held by the broker"},
                                            std::tuple{"active", as.active, "in active pages"},
                                            std::tuple{"resident", as.resident, "resident in memory"},
                                            std::tuple{"mapped", as.mapped, "mapped"},
                                            std::tuple{"retained", as.retained, "retained for reuse"}}) {
            out << "# HELP sluice_allocator_" << name << "_bytes Allocator bytes " << help << ".\n"
                << "# TYPE sluice_allocator_" << name << "_bytes gauge\nsluice_allocator_" << name << "_bytes " << v
                << "\n";
        }
    }
    out << "# HELP sluice_log_dir_offline 1 when a log dir is offline (its partitions answer KAFKA_STORAGE_ERROR).\n"
        << "# TYPE sluice_log_dir_offline gauge\n";
    for (const auto& d : srv.log_dirs().all()) {
        out << "sluice_log_dir_offline{dir=\"" << label(d) << "\"} " << (srv.log_dirs().offline_reason(d) ? 1 : 0)
            << "\n";
    }
    cluster_gauges(srv, out);
    return out.str();
}

result<void> metrics::start(server& srv, const std::string& listener) {
    auto colon = listener.rfind(':');
    if (colon == std::string::npos) {
        return error(errc::invalid_config, "sluice.metrics.listener: '" + listener + "' is not host:port");
    }
    std::string host = listener.substr(0, colon);
    if (host.size() >= 2 && host.front() == '[') host = host.substr(1, host.size() - 2);
    std::string port = listener.substr(colon + 1);
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    addrinfo* res = nullptr;
    if (int rc = ::getaddrinfo(host.empty() ? nullptr : host.c_str(), port.c_str(), &hints, &res); rc != 0) {
        return error(errc::invalid_config, "sluice.metrics.listener " + listener + ": " + ::gai_strerror(rc));
    }
    unique_fd fd(::socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0));
    int one = 1;
    ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    int rc = fd.valid() ? ::bind(fd.get(), res->ai_addr, res->ai_addrlen) : -1;
    ::freeaddrinfo(res);
    if (rc != 0 || ::listen(fd.get(), 64) != 0) {
        return errno_error(errno, "sluice.metrics.listener " + listener);
    }
    sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    ::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&ss), &len);
    _port = ntohs(ss.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port
                                           : reinterpret_cast<sockaddr_in*>(&ss)->sin_port);
    _listen = std::move(fd);
    _thread = std::thread([this, &srv] { serve_loop(srv); });
    log::info("metrics", "Prometheus metrics on http://", listener.substr(0, colon), ":", _port, "/metrics");
    return ok();
}

void metrics::stop() {
    if (_stopping.exchange(true)) return;
    if (_thread.joinable()) _thread.join();
}

void metrics::serve_loop(server& srv) {
    while (!_stopping.load()) {
        pollfd p{_listen.get(), POLLIN, 0};
        if (::poll(&p, 1, 200) <= 0) continue;
        unique_fd c(::accept4(_listen.get(), nullptr, nullptr, SOCK_CLOEXEC));
        if (!c.valid()) continue;
        answer(srv, c.get());
    }
}

// One request per connection, GET only; anything else gets 400/404/405.
void metrics::answer(server& srv, int fd) {
    timeval tv{client_timeout_ms / 1000, (client_timeout_ms % 1000) * 1000};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    std::string req;
    char buf[2048];
    while (req.find("\r\n\r\n") == std::string::npos && req.size() < max_request_bytes) {
        ssize_t n = ::recv(fd, buf, sizeof buf, 0);
        if (n <= 0) break;
        req.append(buf, static_cast<size_t>(n));
    }
    std::string status = "200 OK", body, type = "text/plain; version=0.0.4; charset=utf-8";
    auto sp1 = req.find(' ');
    auto sp2 = sp1 == std::string::npos ? std::string::npos : req.find(' ', sp1 + 1);
    if (req.find("\r\n\r\n") == std::string::npos || sp2 == std::string::npos) {
        status = "400 Bad Request";
        body = "bad request\n";
    } else {
        std::string method = req.substr(0, sp1);
        std::string path = req.substr(sp1 + 1, sp2 - sp1 - 1);
        if (auto q = path.find('?'); q != std::string::npos) path.resize(q);
        if (method != "GET" && method != "HEAD") {
            status = "405 Method Not Allowed";
            body = "GET only\n";
        } else if (path == "/metrics") {
            body = render(srv);
        } else if (path == "/healthz") {
            body = "ok\n";
        } else if (path == "/readyz") {
            bool ready = srv.ready();
            if (!ready) status = "503 Service Unavailable";
            body = ready ? "ready\n" : "starting\n";
        } else {
            status = "404 Not Found";
            body = "not found (try /metrics, /healthz, /readyz)\n";
        }
        if (method == "HEAD") body.clear();
    }
    std::string head = "HTTP/1.1 " + status + "\r\nContent-Type: " + type +
                       "\r\nContent-Length: " + std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n";
    std::string all = head + body;
    size_t off = 0;
    while (off < all.size()) {
        ssize_t n = ::send(fd, all.data() + off, all.size() - off, MSG_NOSIGNAL);
        if (n <= 0) break;
        off += static_cast<size_t>(n);
    }
}

}  // namespace sluice::broker
