// `sluice consume TOPIC`: prints records of a topic. The start offset of each partition comes
// from ListOffsets (earliest, latest, or the first record at or after a timestamp) or from
// --offset; then Fetch requests go to every partition leader at once (one per leader, pipelined
// across connections) and their record batches are decompressed and printed.

#include <algorithm>
#include <csignal>
#include <cstdio>
#include <map>
#include <string>

#include "model/records.h"
#include "tools/commands.h"

namespace sluice::tools {

namespace {

volatile std::sig_atomic_t stop_requested = 0;

void usage() {
    std::fprintf(stderr,
                 "usage: sluice consume TOPIC [--bootstrap-server host:port] [--partition P]\n"
                 "         [--from-beginning | --offset N | --from-timestamp MS]\n"
                 "         [--max-messages N] [--timeout-ms T] [--print-key] [--print-offset]\n"
                 "         [--print-headers] [--print-timestamp] [--key-separator S]\n"
                 "  Without a start option, prints records produced from now on. --timeout-ms\n"
                 "  ends the command after T ms without a new record.\n");
}

constexpr int64_t earliest_timestamp = -2;
constexpr int64_t latest_timestamp = -1;
constexpr int32_t fetch_max_wait_ms = 500;
constexpr int32_t fetch_partition_max_bytes = 1 << 20;
constexpr int32_t fetch_max_bytes = 50 << 20;

struct consume_settings {
    std::string topic;
    std::optional<int32_t> partition;
    int64_t start_timestamp = latest_timestamp;  // or earliest, or a time in ms
    std::optional<int64_t> start_offset;
    int64_t max_messages = -1;
    int64_t timeout_ms = -1;
    bool print_key = false;
    bool print_offset = false;
    bool print_headers = false;
    bool print_timestamp = false;
    std::string separator = "\t";
};

struct position {
    int32_t partition = 0;
    int64_t offset = 0;
};

class consumer {
  public:
    consumer(client& c, consume_settings s) : _c(c), _s(std::move(s)) {}

    result<void> start();
    // One round of fetches to every leader. Returns the records printed.
    result<uint64_t> poll();
    uint64_t printed() const { return _printed; }
    bool done() const { return _s.max_messages >= 0 && _printed >= uint64_t(_s.max_messages); }

  private:
    result<void> list_offsets(const std::vector<int32_t>& partitions, int64_t timestamp);
    std::map<int32_t, std::vector<int32_t>> by_leader() const;
    result<void> handle_partition(const protocol::fetch_response::partition_data& pd);
    void print(const model::batch_header& h, const model::record_view& r, int32_t partition);

    client& _c;
    consume_settings _s;
    const topic_info* _topic = nullptr;
    std::map<int32_t, int64_t> _offsets;  // partition -> next offset to fetch
    std::vector<std::byte> _scratch;
    uint64_t _printed = 0;
    std::string _line;
};

result<void> consumer::start() {
    auto t = _c.topic(_s.topic, true);
    if (!t) return t.error();
    _topic = *t;
    std::vector<int32_t> partitions;
    for (const auto& p : _topic->partitions) {
        if (!_s.partition || *_s.partition == p.partition) partitions.push_back(p.partition);
    }
    if (partitions.empty()) {
        return kafka_failure(3, "topic '" + _s.topic + "' has no partition " +
                                    std::to_string(_s.partition.value_or(0)));
    }
    if (_s.start_offset) {
        for (int32_t p : partitions) _offsets[p] = *_s.start_offset;
        return ok();
    }
    if (auto r = list_offsets(partitions, _s.start_timestamp); !r) return r;
    if (_s.start_timestamp >= 0) {
        // No record at or after the timestamp: start at the end, like Kafka's consumers.
        std::vector<int32_t> past_end;
        for (const auto& [p, off] : _offsets) {
            if (off < 0) past_end.push_back(p);
        }
        if (!past_end.empty()) return list_offsets(past_end, latest_timestamp);
    }
    return ok();
}

std::map<int32_t, std::vector<int32_t>> consumer::by_leader() const {
    std::map<int32_t, std::vector<int32_t>> out;
    for (const auto& p : _topic->partitions) {
        if (_offsets.contains(p.partition)) out[p.leader].push_back(p.partition);
    }
    return out;
}

result<void> consumer::list_offsets(const std::vector<int32_t>& partitions, int64_t timestamp) {
    for (int32_t p : partitions) _offsets[p] = -1;
    for (const auto& [leader, ps] : by_leader()) {
        if (std::none_of(ps.begin(), ps.end(), [&](int32_t p) {
                return std::find(partitions.begin(), partitions.end(), p) != partitions.end();
            })) {
            continue;
        }
        auto conn = _c.broker(leader);
        if (!conn) return conn.error();
        protocol::list_offsets_request req;
        req.replica_id = -1;
        auto& t = req.topics.emplace_back();
        t.name = _s.topic;
        for (int32_t p : ps) {
            if (std::find(partitions.begin(), partitions.end(), p) == partitions.end()) continue;
            auto& lp = t.partitions.emplace_back();
            lp.partition_index = p;
            lp.timestamp = timestamp;
        }
        auto resp = (*conn)->call<protocol::list_offsets_api>(req);
        if (!resp) return resp.error();
        for (const auto& rt : resp->topics) {
            for (const auto& rp : rt.partitions) {
                if (rp.error_code != 0) {
                    return kafka_failure(rp.error_code, "ListOffsets for " + _s.topic + "-" +
                                                            std::to_string(rp.partition_index));
                }
                _offsets[rp.partition_index] = rp.offset;
            }
        }
    }
    return ok();
}

void consumer::print(const model::batch_header& h, const model::record_view& r, int32_t partition) {
    _line.clear();
    const std::string& sep = _s.separator;
    if (_s.print_offset) {
        _line += std::to_string(partition) + ":" + std::to_string(r.offset(h)) + sep;
    }
    if (_s.print_timestamp) _line += std::to_string(r.timestamp(h)) + sep;
    if (_s.print_headers) {
        bool first = true;
        for (const auto& hd : r.headers) {
            if (!first) _line += ',';
            first = false;
            _line += model::string_of(hd.key);
            _line += '=';
            if (hd.value) _line += model::string_of(*hd.value);
        }
        _line += sep;
    }
    if (_s.print_key) _line += (r.key ? std::string(model::string_of(*r.key)) : "null") + sep;
    _line += r.value ? model::string_of(*r.value) : "null";
    _line += '\n';
    std::fwrite(_line.data(), 1, _line.size(), stdout);
    ++_printed;
}

result<void> consumer::handle_partition(const protocol::fetch_response::partition_data& pd) {
    int32_t p = pd.partition_index;
    auto it = _offsets.find(p);
    if (it == _offsets.end()) return ok();
    if (pd.error_code == 1) {  // OFFSET_OUT_OF_RANGE: start over at the earliest offset
        std::fprintf(stderr,
                     "sluice consume: offset %lld of %s-%d is out of range; "
                     "resetting to the earliest\n",
                     static_cast<long long>(it->second), _s.topic.c_str(), p);
        return list_offsets({p}, earliest_timestamp);
    }
    if (kafka_error_retriable(pd.error_code)) {
        auto t = _c.topic(_s.topic, true);
        if (!t) return t.error();
        _topic = *t;
        return ok();
    }
    if (pd.error_code != 0) {
        return kafka_failure(pd.error_code, _s.topic + "-" + std::to_string(p));
    }
    model::batch_iterator batches(pd.records.memory());
    model::batch_header h;
    std::span<const std::byte> batch;
    while (!done() && batches.next(h, batch)) {
        if (h.last_offset() < it->second) continue;
        if (!h.control()) {
            auto walked =
                model::for_each_record(batch, h, _scratch, [&](const model::record_view& r) {
                    if (r.offset(h) < it->second) return true;
                    print(h, r, p);
                    it->second = r.offset(h) + 1;
                    return !done();
                });
            if (!walked) {
                return error(errc::protocol, _s.topic + "-" + std::to_string(p) + " at offset " +
                                                 std::to_string(h.base_offset) + ": " +
                                                 walked.error().describe());
            }
        }
        if (!done()) it->second = h.last_offset() + 1;
    }
    return ok();
}

result<uint64_t> consumer::poll() {
    uint64_t before = _printed;
    auto groups = by_leader();
    struct sent {
        connection* conn;
        int16_t version;
    };
    std::vector<sent> waiting;
    for (const auto& [leader, ps] : groups) {
        if (leader < 0) continue;
        auto conn = _c.broker(leader);
        if (!conn) return conn.error();
        int16_t v = (*conn)->version<protocol::fetch_api>();
        if (_topic->id.is_zero()) v = std::min<int16_t>(v, 12);  // v13 names topics by id
        if (v < 0) return error(errc::no_common_version, "Fetch v4+");
        protocol::fetch_request req;
        req.replica_id = -1;
        // Never wait in the broker longer than the idle timeout allows.
        req.max_wait_ms =
            _s.timeout_ms >= 0
                ? static_cast<int32_t>(std::clamp<int64_t>(_s.timeout_ms, 1, fetch_max_wait_ms))
                : fetch_max_wait_ms;
        req.min_bytes = 1;
        req.max_bytes = fetch_max_bytes;
        req.session_epoch = -1;
        auto& ft = req.topics.emplace_back();
        ft.topic = _s.topic;
        ft.topic_id = _topic->id;
        for (int32_t p : ps) {
            auto& fp = ft.partitions.emplace_back();
            fp.partition = p;
            fp.fetch_offset = _offsets[p];
            fp.partition_max_bytes = fetch_partition_max_bytes;
        }
        auto s = (*conn)->send(protocol::fetch_api::key, v, req);
        if (!s) return s.error();
        waiting.push_back({*conn, v});
    }
    for (const auto& w : waiting) {
        auto r = w.conn->receive();
        if (!r) return r.error();
        protocol::fetch_response resp;
        protocol::reader rd(r->body, connection::response_limits());
        if (auto d = resp.decode(rd, w.version); !d) {
            return error(errc::protocol, "Fetch response: " + d.error().describe());
        }
        if (resp.error_code != 0) return kafka_failure(resp.error_code, "Fetch");
        for (const auto& rt : resp.responses) {
            for (const auto& pd : rt.partitions) {
                if (auto h = handle_partition(pd); !h) return h.error();
            }
        }
    }
    std::fflush(stdout);
    return _printed - before;
}

result<consume_settings> settings_from(const args& a) {
    consume_settings s;
    s.topic = a.positional()[0];
    if (a.has("partition")) {
        auto p = a.integer("partition", 0, 0, INT32_MAX);
        if (!p) return p.error();
        s.partition = static_cast<int32_t>(*p);
    }
    int starts = a.has("from-beginning") + a.has("offset") + a.has("from-timestamp");
    if (starts > 1) {
        return error(errc::bad_argument,
                     "give at most one of --from-beginning, --offset and --from-timestamp");
    }
    if (a.has("from-beginning")) s.start_timestamp = earliest_timestamp;
    if (a.has("offset")) {
        auto o = a.integer("offset", 0, 0);
        if (!o) return o.error();
        s.start_offset = *o;
    }
    if (a.has("from-timestamp")) {
        auto t = a.integer("from-timestamp", 0, 0);
        if (!t) return t.error();
        s.start_timestamp = *t;
    }
    auto max = a.integer("max-messages", -1, -1);
    auto timeout = a.integer("timeout-ms", -1, -1);
    if (!max) return max.error();
    if (!timeout) return timeout.error();
    s.max_messages = *max;
    s.timeout_ms = *timeout;
    s.print_key = a.has("print-key");
    s.print_offset = a.has("print-offset");
    s.print_headers = a.has("print-headers");
    s.print_timestamp = a.has("print-timestamp");
    s.separator = a.get_or("key-separator", "\t");
    return s;
}

}  // namespace

int consume_main(int argc, char** argv) {
    auto specs = common_options();
    specs.insert(specs.end(), {{"partition"},
                               {"from-beginning", false},
                               {"offset"},
                               {"from-timestamp"},
                               {"max-messages"},
                               {"timeout-ms"},
                               {"print-key", false},
                               {"print-offset", false},
                               {"print-headers", false},
                               {"print-timestamp", false},
                               {"key-separator"}});
    int exit_code = exit_ok;
    auto a = parse_topic_command("consume", argc, argv, specs, usage, exit_code);
    if (!a) return exit_code;
    auto s = settings_from(*a);
    if (!s) return report("consume", s.error());
    auto opts = client_options_from(*a);
    if (!opts) return report("consume", opts.error());
    auto c = client::connect(*opts);
    if (!c) return report("consume", c.error());
    int64_t idle_limit_ms = s->timeout_ms;
    consumer con(**c, std::move(*s));
    if (auto st = con.start(); !st) return report("consume", st.error());
    std::signal(SIGINT, [](int) { stop_requested = 1; });
    std::signal(SIGTERM, [](int) { stop_requested = 1; });
    auto last_record = clock::now();
    while (!con.done() && !stop_requested) {
        auto n = con.poll();
        if (!n) return report("consume", n.error());
        auto now = clock::now();
        if (*n > 0) last_record = now;
        if (idle_limit_ms >= 0 && now - last_record >= std::chrono::milliseconds(idle_limit_ms)) {
            break;
        }
    }
    std::fprintf(stderr, "Processed a total of %llu messages\n",
                 static_cast<unsigned long long>(con.printed()));
    return exit_ok;
}

}  // namespace sluice::tools
