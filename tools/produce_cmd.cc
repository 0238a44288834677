// `sluice produce TOPIC`: lines from stdin become records. Records are batched per partition
// (up to --batch-size bytes, or --linger-ms after the first record of a batch) and sent to each
// partition's leader; every batch's answer is checked, retriable errors are retried after a
// metadata refresh, and the exit code says whether every record was acknowledged.

#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <map>
#include <set>
#include <string>
#include <thread>

#include "model/records.h"
#include "tools/commands.h"

namespace sluice::tools {

namespace {

void usage() {
    std::fprintf(stderr,
                 "usage: sluice produce TOPIC [--bootstrap-server host:port] [--partition P]\n"
                 "         [--key-separator S] [--header k=v ...] [--acks 0|1|all]\n"
                 "         [--compression none|gzip|snappy|lz4|zstd] [--linger-ms 5]\n"
                 "         [--batch-size 16KiB] [--retries 5]\n"
                 "  Reads one record per line from stdin. With --key-separator, the text before\n"
                 "  the first separator is the key (a line without it has a null key).\n");
}

struct produce_settings {
    std::string topic;
    std::optional<int32_t> partition;
    std::optional<std::string> key_separator;
    std::vector<std::pair<std::string, std::string>> headers;
    int16_t acks = -1;
    model::compression codec = model::compression::none;
    int linger_ms = 5;
    size_t batch_bytes = 16 * 1024;
    int retries = 5;
};

// One partition's records waiting to be sent.
struct pending_batch {
    model::batch_builder builder;
    clock::time_point first_added;
};

class producer {
  public:
    producer(client& c, produce_settings s) : _c(c), _s(std::move(s)) {}

    result<void> start();
    void add(std::string_view line);
    // Sends the batches that are full or lingered long enough (all of them when `everything`).
    void flush(bool everything);
    // Milliseconds until the oldest batch must go, or -1 when nothing is waiting.
    int next_deadline_ms() const;

    uint64_t sent() const { return _records_added; }
    uint64_t failed() const { return _records_failed; }

  private:
    int32_t choose_partition(const std::optional<std::string_view>& key);
    void send_batches(std::vector<int32_t> partitions);
    // One attempt for `partitions` (all led by one broker). Returns the partitions to retry.
    std::vector<int32_t> send_to_leader(int32_t leader, const std::vector<int32_t>& partitions,
                                        bool last_attempt);
    void fail(const std::vector<int32_t>& partitions, const std::string& why);

    client& _c;
    produce_settings _s;
    int32_t _partition_count = 0;
    int32_t _sticky = 0;
    std::map<int32_t, pending_batch> _pending;
    std::map<int32_t, std::vector<std::byte>> _built;  // encoded batches being sent
    std::vector<model::record_header> _headers;
    uint64_t _records_added = 0;
    uint64_t _records_failed = 0;
};

result<void> producer::start() {
    // Metadata with auto-creation, as Kafka's producers do; a new topic may need a moment before
    // its partitions have leaders.
    for (int attempt = 0;; ++attempt) {
        auto t = _c.topic(_s.topic, true, true);
        bool leaders = t && !(*t)->partitions.empty() &&
                       std::all_of((*t)->partitions.begin(), (*t)->partitions.end(),
                                   [](const partition_info& p) { return p.leader >= 0; });
        if (t && leaders) {
            _partition_count = static_cast<int32_t>((*t)->partitions.size());
            break;
        }
        if (attempt >= 20 || (!t && !(t.error().is(errc::kafka) &&
                                      (t.error().detail().rfind("LEADER_NOT_AVAILABLE", 0) == 0 ||
                                       t.error().detail().rfind("UNKNOWN_TOPIC", 0) == 0)))) {
            return t ? error(kafka_failure(5, "topic '" + _s.topic + "' has no leaders"))
                     : t.error();
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    if (_s.partition && (*_s.partition < 0 || *_s.partition >= _partition_count)) {
        return kafka_failure(3, "topic '" + _s.topic + "' has " + std::to_string(_partition_count) +
                                    " partitions; there is no partition " +
                                    std::to_string(*_s.partition));
    }
    for (const auto& [k, v] : _s.headers) {
        _headers.push_back({model::bytes_of(k), model::bytes_of(v)});
    }
    _sticky = static_cast<int32_t>(::getpid() % _partition_count);
    return ok();
}

int32_t producer::choose_partition(const std::optional<std::string_view>& key) {
    if (_s.partition) return *_s.partition;
    if (key) return partition_for_key(model::bytes_of(*key), _partition_count);
    return _sticky;  // unkeyed records stick to one partition per batch (KIP-480)
}

void producer::add(std::string_view line) {
    std::optional<std::string_view> key;
    std::string_view value = line;
    if (_s.key_separator) {
        auto at = line.find(*_s.key_separator);
        if (at != std::string_view::npos) {
            key = line.substr(0, at);
            value = line.substr(at + _s.key_separator->size());
        }
    }
    int32_t p = choose_partition(key);
    auto [it, fresh] = _pending.try_emplace(p);
    pending_batch& b = it->second;
    if (fresh || b.builder.empty()) {
        model::batch_options o;
        o.codec = _s.codec;
        b.builder.reset(o);
        b.first_added = clock::now();
    }
    model::nullable_bytes k;
    if (key) k = model::bytes_of(*key);
    b.builder.add(k, model::bytes_of(value), now_ms(), _headers);
    ++_records_added;
    if (b.builder.uncompressed_batch_bytes() >= _s.batch_bytes) flush(false);
}

int producer::next_deadline_ms() const {
    int best = -1;
    auto now = clock::now();
    for (const auto& [p, b] : _pending) {
        if (b.builder.empty()) continue;
        auto due = b.first_added + std::chrono::milliseconds(_s.linger_ms);
        int ms = static_cast<int>(std::max<int64_t>(
            0, std::chrono::duration_cast<std::chrono::milliseconds>(due - now).count()));
        best = best < 0 ? ms : std::min(best, ms);
    }
    return best;
}

void producer::flush(bool everything) {
    std::vector<int32_t> ready;
    auto now = clock::now();
    for (auto& [p, b] : _pending) {
        if (b.builder.empty()) continue;
        bool full = b.builder.uncompressed_batch_bytes() >= _s.batch_bytes;
        bool lingered = now - b.first_added >= std::chrono::milliseconds(_s.linger_ms);
        if (everything || full || lingered) ready.push_back(p);
    }
    if (ready.empty()) return;
    for (int32_t p : ready) {
        std::vector<std::byte>& out = _built[p];
        out.clear();
        if (auto r = _pending[p].builder.build_into(out); !r) {
            fail({p}, r.error().describe());
            out.clear();
        }
        if (p == _sticky && !_s.partition) _sticky = (_sticky + 1) % _partition_count;
    }
    std::vector<int32_t> done = ready;
    std::erase_if(ready, [&](int32_t p) { return _built[p].empty(); });
    send_batches(std::move(ready));
    for (int32_t p : done) _pending[p].builder.reset({.codec = _s.codec});
}

void producer::fail(const std::vector<int32_t>& partitions, const std::string& why) {
    for (int32_t p : partitions) {
        uint64_t n = static_cast<uint64_t>(_pending[p].builder.record_count());
        _records_failed += n;
        std::fprintf(stderr, "sluice produce: %s-%d: %llu record(s) not acknowledged: %s\n",
                     _s.topic.c_str(), p, static_cast<unsigned long long>(n), why.c_str());
    }
}

void producer::send_batches(std::vector<int32_t> partitions) {
    for (int attempt = 0; !partitions.empty(); ++attempt) {
        bool last = attempt >= _s.retries;
        if (attempt > 0) {
            std::this_thread::sleep_for(std::chrono::milliseconds(100 * attempt));
            if (auto t = _c.topic(_s.topic, true); !t) {
                if (last) {
                    fail(partitions, user_message(t.error()));
                    return;
                }
                continue;
            }
        }
        std::map<int32_t, std::vector<int32_t>> by_leader;
        auto t = _c.topic(_s.topic);
        for (int32_t p : partitions) {
            int32_t leader = -1;
            if (t && p < static_cast<int32_t>((*t)->partitions.size())) {
                leader = (*t)->partitions[static_cast<size_t>(p)].leader;
            }
            by_leader[leader].push_back(p);
        }
        std::vector<int32_t> again;
        for (const auto& [leader, ps] : by_leader) {
            auto retry = send_to_leader(leader, ps, last);
            again.insert(again.end(), retry.begin(), retry.end());
        }
        partitions = std::move(again);
    }
}

std::vector<int32_t> producer::send_to_leader(int32_t leader, const std::vector<int32_t>& ps,
                                              bool last_attempt) {
    auto retry_or_fail = [&](const std::string& why) -> std::vector<int32_t> {
        if (last_attempt) {
            fail(ps, why);
            return {};
        }
        return ps;
    };
    if (leader < 0) return retry_or_fail("LEADER_NOT_AVAILABLE: no leader");
    auto conn = _c.broker(leader);
    if (!conn) return retry_or_fail(user_message(conn.error()));
    protocol::produce_request req;
    req.acks = _s.acks;
    req.timeout_ms = 30000;
    auto& td = req.topic_data.emplace_back();
    td.name = _s.topic;
    for (int32_t p : ps) {
        auto& pd = td.partition_data.emplace_back();
        pd.index = p;
        pd.records = protocol::records::from_memory(_built[p]);
    }
    int16_t v = (*conn)->version<protocol::produce_api>();
    if (v < 0) {
        fail(ps, "the broker supports no Produce version from 3 up");
        return {};
    }
    auto sent = (*conn)->send(protocol::produce_api::key, v, req, _s.acks != 0);
    if (!sent) return retry_or_fail(user_message(sent.error()));
    if (_s.acks == 0) return {};
    auto r = (*conn)->receive();
    if (!r) return retry_or_fail(user_message(r.error()));
    protocol::produce_response resp;
    protocol::reader rd(r->body, connection::response_limits());
    if (auto d = resp.decode(rd, v); !d) return retry_or_fail(d.error().describe());
    std::set<int32_t> answered;
    std::vector<int32_t> again;
    for (const auto& tr : resp.responses) {
        for (const auto& pr : tr.partition_responses) {
            answered.insert(pr.index);
            if (pr.error_code == 0) continue;
            std::string why = kafka_error_name(pr.error_code);
            if (pr.error_message) why += ": " + *pr.error_message;
            if (kafka_error_retriable(pr.error_code) && !last_attempt) {
                again.push_back(pr.index);
            } else {
                fail({pr.index}, why);
            }
        }
    }
    for (int32_t p : ps) {
        if (!answered.contains(p)) fail({p}, "the broker's answer does not mention this partition");
    }
    return again;
}

result<produce_settings> settings_from(const args& a) {
    produce_settings s;
    s.topic = a.positional()[0];
    if (a.has("partition")) {
        auto p = a.integer("partition", 0, 0, INT32_MAX);
        if (!p) return p.error();
        s.partition = static_cast<int32_t>(*p);
    }
    s.key_separator = a.get("key-separator");
    if (s.key_separator && s.key_separator->empty()) {
        return error(errc::bad_argument, "--key-separator must not be empty");
    }
    for (const auto& h : a.all("header")) {
        auto kv = parse_key_value(h);
        if (!kv) return kv.error();
        s.headers.push_back(std::move(*kv));
    }
    auto acks = parse_acks(a.get_or("acks", "all"));
    if (!acks) return acks.error();
    s.acks = *acks;
    auto codec = parse_compression(a.get_or("compression", "none"));
    if (!codec) return codec.error();
    s.codec = *codec;
    auto linger = a.integer("linger-ms", 5, 0, 60000);
    auto batch = a.integer("batch-size", 16 * 1024, 1, 64 << 20);
    auto retries = a.integer("retries", 5, 0, 1000);
    if (!linger) return linger.error();
    if (!batch) return batch.error();
    if (!retries) return retries.error();
    s.linger_ms = static_cast<int>(*linger);
    s.batch_bytes = static_cast<size_t>(*batch);
    s.retries = static_cast<int>(*retries);
    return s;
}

// Reads stdin line by line, waking up for linger deadlines while no input arrives.
result<void> pump_stdin(producer& p) {
    std::string buf;
    char chunk[64 * 1024];
    while (true) {
        int wait = p.next_deadline_ms();
        pollfd pfd{0, POLLIN, 0};
        int n = ::poll(&pfd, 1, wait);
        if (n < 0 && errno != EINTR) return errno_error(errno, "poll(stdin)");
        if (n <= 0) {
            p.flush(false);
            continue;
        }
        ssize_t got = ::read(0, chunk, sizeof chunk);
        if (got < 0) {
            if (errno == EINTR || errno == EAGAIN) continue;
            return errno_error(errno, "read(stdin)");
        }
        if (got == 0) break;
        buf.append(chunk, static_cast<size_t>(got));
        size_t start = 0;
        for (size_t nl; (nl = buf.find('\n', start)) != std::string::npos; start = nl + 1) {
            p.add(std::string_view(buf).substr(start, nl - start));
        }
        buf.erase(0, start);
    }
    if (!buf.empty()) p.add(buf);  // a last line without a newline
    p.flush(true);
    return ok();
}

}  // namespace

int produce_main(int argc, char** argv) {
    auto specs = common_options();
    specs.insert(specs.end(), {{"partition"},
                               {"key-separator"},
                               {"header", true, true},
                               {"acks"},
                               {"compression"},
                               {"linger-ms"},
                               {"batch-size"},
                               {"retries"}});
    int exit_code = exit_ok;
    auto a = parse_topic_command("produce", argc, argv, specs, usage, exit_code);
    if (!a) return exit_code;
    auto s = settings_from(*a);
    if (!s) return report("produce", s.error());
    auto opts = client_options_from(*a);
    if (!opts) return report("produce", opts.error());
    auto c = client::connect(*opts);
    if (!c) return report("produce", c.error());
    producer p(**c, std::move(*s));
    if (auto st = p.start(); !st) return report("produce", st.error());
    if (auto r = pump_stdin(p); !r) return report("produce", r.error());
    if (p.failed() > 0) {
        std::fprintf(stderr, "sluice produce: %llu of %llu record(s) were not acknowledged\n",
                     static_cast<unsigned long long>(p.failed()),
                     static_cast<unsigned long long>(p.sent()));
        return exit_failed;
    }
    return exit_ok;
}

}  // namespace sluice::tools
