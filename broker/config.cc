#include "broker/config.h"

#include <algorithm>
#include <charconv>
#include <cstring>
#include <fstream>
#include <limits>
#include <sstream>

#include "base/log.h"

namespace sluice::broker {

const char* describe(errc e) {
    switch (e) {
        case errc::ok: return "ok";
        case errc::unknown_config: return "unknown configuration key";
        case errc::invalid_config: return "invalid configuration value";
        case errc::config_file: return "cannot read configuration file";
    }
    return "unknown broker error";
}

namespace {

constexpr int64_t long_max = std::numeric_limits<int64_t>::max();
constexpr int64_t int_max = std::numeric_limits<int32_t>::max();

enum class kind { int32, int64, boolean, string, list, number, choice };

struct key_def {
    const char* name;
    kind type;
    const char* default_value;  // nullptr: no default (unset)
    int64_t min = std::numeric_limits<int64_t>::min();
    int64_t max = long_max;
    const char* choices = nullptr;  // comma-separated, for kind::choice and kind::list
    const char* topic_key = nullptr;  // the topic-level key this broker key supplies
    bool no_effect = false;  // accepted so Kafka configs load; Sluice does not use it
};

// The broker keys Sluice knows. Defaults are Kafka's except where noted.
const key_def broker_keys[] = {
    {"broker.id", kind::int32, "0", -1, int_max},
    {"listeners", kind::string, "PLAINTEXT://:9092"},
    {"advertised.listeners", kind::string, nullptr},
    {"log.dir", kind::string, "/tmp/sluice-logs"},
    {"log.dirs", kind::string, nullptr},
    {"num.partitions", kind::int32, "1", 1, 100000},
    {"default.replication.factor", kind::int32, "1", 1, 100},
    {"min.insync.replicas", kind::int32, "1", 1, 100, nullptr, "min.insync.replicas"},
    {"auto.create.topics.enable", kind::boolean, "true"},
    {"delete.topic.enable", kind::boolean, "true"},
    {"log.retention.hours", kind::int32, "168", -1, int_max},
    {"log.retention.minutes", kind::int32, nullptr, -1, int_max},
    {"log.retention.ms", kind::int64, nullptr, -1, long_max},
    {"log.retention.bytes", kind::int64, "-1", -1, long_max, nullptr, "retention.bytes"},
    {"log.segment.bytes", kind::int32, "1073741824", 14, int_max, nullptr, "segment.bytes"},
    {"log.roll.hours", kind::int32, "168", 1, int_max},
    {"log.roll.ms", kind::int64, nullptr, 1, long_max},
    {"log.retention.check.interval.ms", kind::int64, "300000", 1, long_max},
    {"log.flush.interval.messages", kind::int64, "9223372036854775807", 1, long_max, nullptr, "flush.messages"},
    {"log.flush.interval.ms", kind::int64, nullptr, 0, long_max},
    {"log.flush.scheduler.interval.ms", kind::int64, "9223372036854775807", 0, long_max, nullptr, nullptr, true},
    {"log.index.interval.bytes", kind::int32, "4096", 0, int_max, nullptr, "index.interval.bytes"},
    {"log.index.size.max.bytes", kind::int32, "10485760", 4, int_max, nullptr, "segment.index.bytes"},
    {"log.cleanup.policy", kind::list, "delete", 0, 0, "delete,compact", "cleanup.policy"},
    {"log.cleaner.enable", kind::boolean, "true"},
    {"log.cleaner.threads", kind::int32, "1", 0, 64, nullptr, nullptr, true},
    {"log.cleaner.backoff.ms", kind::int64, "15000", 0, long_max},
    {"log.cleaner.delete.retention.ms", kind::int64, "86400000", 0, long_max, nullptr, "delete.retention.ms"},
    {"log.cleaner.min.cleanable.ratio", kind::number, "0.5", 0, 1, nullptr, "min.cleanable.dirty.ratio"},
    {"log.cleaner.min.compaction.lag.ms", kind::int64, "0", 0, long_max, nullptr, "min.compaction.lag.ms"},
    {"log.message.timestamp.type", kind::choice, "CreateTime", 0, 0, "CreateTime,LogAppendTime", "message.timestamp.type"},
    // Sluice preallocates the active segment by default (Kafka does not); the key means the same.
    {"log.preallocate", kind::boolean, "true", 0, 0, nullptr, "preallocate"},
    {"message.max.bytes", kind::int32, "1048588", 0, int_max, nullptr, "max.message.bytes"},
    {"socket.request.max.bytes", kind::int32, "104857600", 1, int_max},
    {"socket.send.buffer.bytes", kind::int32, "102400", -1, int_max},
    {"socket.receive.buffer.bytes", kind::int32, "102400", -1, int_max},
    {"max.connections", kind::int32, "2147483647", 0, int_max},
    {"queued.max.requests", kind::int32, "500", 1, int_max},
    // Bytes that requests in flight and in-memory answers may hold, for the whole broker (split
    // evenly across cores, net/memory_budget.h). -1: a quarter of the host's RAM; 0: no bound.
    {"queued.max.request.bytes", kind::int64, "-1", -1, long_max},
    // Incremental fetch sessions (KIP-227) the broker keeps; 0 turns them off.
    {"max.incremental.fetch.session.cache.slots", kind::int32, "1000", 0, int_max},
    {"connections.max.idle.ms", kind::int64, "600000", -1, long_max},
    {"compression.type", kind::choice, "producer", 0, 0, "producer,uncompressed,gzip,snappy,lz4,zstd", "compression.type"},
    {"unclean.leader.election.enable", kind::boolean, "false", 0, 0, nullptr, "unclean.leader.election.enable"},
    {"replica.lag.time.max.ms", kind::int64, "30000", 0, long_max},
    {"replica.fetch.max.bytes", kind::int32, "1048576", 0, int_max},
    {"zookeeper.connect", kind::string, nullptr},
    {"broker.rack", kind::string, nullptr},
    {"controlled.shutdown.timeout.ms", kind::int64, "10000", 0, long_max},
    {"auto.leader.rebalance.enable", kind::boolean, "true"},
    {"leader.imbalance.check.interval.seconds", kind::int64, "300", 1, long_max},
    {"leader.imbalance.per.broker.percentage", kind::int32, "10", 0, 100},
    {"zookeeper.session.timeout.ms", kind::int32, "18000", 1, int_max},
    {"zookeeper.connection.timeout.ms", kind::int32, nullptr, 1, int_max},
    {"offsets.topic.num.partitions", kind::int32, "50", 1, 10000},
    // Kafka's default; capped at the live brokers when the topic is created (a single broker: 1).
    {"offsets.topic.replication.factor", kind::int32, "3", 1, 100},
    {"offsets.retention.minutes", kind::int32, "10080", 1, int_max},
    {"offsets.retention.check.interval.ms", kind::int64, "600000", 1, long_max},
    {"group.initial.rebalance.delay.ms", kind::int32, "3000", 0, int_max},
    {"group.min.session.timeout.ms", kind::int32, "6000", 0, int_max},
    {"group.max.session.timeout.ms", kind::int32, "1800000", 0, int_max},
    {"group.max.size", kind::int32, "2147483647", 1, int_max},
    {"transaction.state.log.num.partitions", kind::int32, "50", 1, 10000},
    // Kafka's defaults; the replication factor is capped at the live brokers when the topic is
    // created (a single broker: 1), and the min ISR at that replication factor.
    {"transaction.state.log.replication.factor", kind::int32, "3", 1, 100},
    {"transaction.state.log.min.isr", kind::int32, "2", 1, 100},
    {"transaction.state.log.segment.bytes", kind::int32, "104857600", 1024, int_max},
    {"transaction.max.timeout.ms", kind::int32, "900000", 1, int_max},
    {"transactional.id.expiration.ms", kind::int32, "604800000", 1, int_max},
    {"transaction.abort.timed.out.transaction.cleanup.interval.ms", kind::int32, "10000", 1,
     int_max},
    // Kafka sizes thread pools with these; Sluice runs one reactor per core (sluice.cores).
    {"num.network.threads", kind::int32, "3", 1, 1024, nullptr, nullptr, true},
    {"num.io.threads", kind::int32, "8", 1, 1024, nullptr, nullptr, true},
    {"num.recovery.threads.per.data.dir", kind::int32, "1", 1, 1024, nullptr, nullptr, true},
    {"group.coordinator.rebalance.protocols", kind::string, "classic", 0, 0, nullptr, nullptr, true},
    // Security (broker/README.md, "Security"). Listener names map to protocols; every ssl.* and
    // sasl.* key may also be given per listener as listener.name.<name>.<key>.
    {"listener.security.protocol.map", kind::string,
     "PLAINTEXT:PLAINTEXT,SSL:SSL,SASL_PLAINTEXT:SASL_PLAINTEXT,SASL_SSL:SASL_SSL"},
    {"inter.broker.listener.name", kind::string, nullptr},
    {"security.inter.broker.protocol", kind::choice, "PLAINTEXT", 0, 0,
     "PLAINTEXT,SSL,SASL_PLAINTEXT,SASL_SSL"},
    {"ssl.keystore.type", kind::choice, "PEM", 0, 0, "PEM,PKCS12,JKS"},
    {"ssl.keystore.location", kind::string, nullptr},
    {"ssl.keystore.password", kind::string, nullptr},
    {"ssl.key.password", kind::string, nullptr},
    {"ssl.keystore.certificate.chain", kind::string, nullptr},
    {"ssl.keystore.key", kind::string, nullptr},
    {"ssl.truststore.type", kind::choice, "PEM", 0, 0, "PEM,PKCS12,JKS"},
    {"ssl.truststore.location", kind::string, nullptr},
    {"ssl.truststore.password", kind::string, nullptr},
    {"ssl.truststore.certificates", kind::string, nullptr},
    // librdkafka's names for the same PEM files.
    {"ssl.certificate.location", kind::string, nullptr},
    {"ssl.key.location", kind::string, nullptr},
    {"ssl.ca.location", kind::string, nullptr},
    {"ssl.client.auth", kind::choice, "none", 0, 0, "none,requested,required"},
    {"ssl.enabled.protocols", kind::string, "TLSv1.2,TLSv1.3"},
    {"ssl.protocol", kind::string, "TLSv1.3", 0, 0, nullptr, nullptr, true},
    {"ssl.cipher.suites", kind::string, ""},
    {"ssl.endpoint.identification.algorithm", kind::string, "https", 0, 0, nullptr, nullptr, true},
    {"sasl.enabled.mechanisms", kind::list, "PLAIN,SCRAM-SHA-256,SCRAM-SHA-512", 0, 0,
     "PLAIN,SCRAM-SHA-256,SCRAM-SHA-512"},
    {"sasl.mechanism.inter.broker.protocol", kind::string, "PLAIN"},
    // PLAIN's users: a JAAS PlainLoginModule entry with user_<name>="<password>" options.
    {"sasl.jaas.config", kind::string, nullptr},
    // 0: an authenticated session lasts as long as its connection (KIP-368 re-authentication off).
    {"connections.max.reauth.ms", kind::int64, "0", 0, long_max},
    // Largest frame read from a client that has not authenticated yet.
    {"sasl.server.max.receive.size", kind::int32, "524288", 1024, int_max},
    // Any non-empty value turns the ACL authorizer on (Kafka's class names are accepted).
    {"authorizer.class.name", kind::string, ""},
    {"super.users", kind::string, ""},
    {"allow.everyone.if.no.acl.found", kind::boolean, "false"},
    {"max.connections.per.ip", kind::int32, "2147483647", 0, int_max},
    {"max.connections.per.ip.overrides", kind::string, ""},
    // Quota rates are measured over quota.window.num windows of quota.window.size.seconds.
    {"quota.window.num", kind::int32, "11", 2, 1000},
    {"quota.window.size.seconds", kind::int32, "1", 1, 3600},
    // Sluice's own keys.
    // Prometheus metrics, /healthz and /readyz on host:port (e.g. 127.0.0.1:9644); empty: off.
    {"sluice.metrics.listener", kind::string, ""},
    // Per-partition series (log end offset, high watermark): one per partition replica.
    {"sluice.metrics.partition.labels", kind::boolean, "false"},
    {"sluice.cores", kind::int32, "0", 0, 1024},  // 0: one reactor per online core
    // Cross-core messages through lock-free SPSC rings (runtime/README.md); false: the mutex
    // queue + eventfd of earlier versions (kept for side-by-side measurement).
    {"sluice.cross.core.rings", kind::boolean, "true"},
    // A kernel submission-polling thread per core's ring (README "io_uring options").
    {"sluice.uring.sqpoll", kind::boolean, "false"},
    // IORING_OP_SENDMSG_ZC for in-memory answers of at least this many bytes; 0: off.
    {"sluice.uring.send.zc.min.bytes", kind::int64, "0", 0, long_max},
    // Multishot receives into a provided-buffer ring per core (README "io_uring options").
    {"sluice.uring.recv.multishot", kind::boolean, "false"},
    // posix: kernel sockets on io_uring; dpdk: kernel bypass (net/README.md, "The dpdk stack");
    // auto: dpdk if it starts, else a log line and posix.
    {"sluice.network.stack", kind::choice, "posix", 0, 0, "posix,dpdk,auto"},
    // The dpdk stack: EAL arguments (e.g. "--no-pci --vdev=net_tap0 --no-huge -m 512", or
    // "-a <PCI address>"), the interface's IPv4 address, netmask and gateway, and TCP tunables.
    {"sluice.dpdk.args", kind::string, ""},
    {"sluice.dpdk.ip", kind::string, ""},
    {"sluice.dpdk.netmask", kind::string, "255.255.255.0"},
    {"sluice.dpdk.gateway", kind::string, ""},
    // The port's MTU; the peers' must match (jumbo frames: fewer packets per byte).
    {"sluice.dpdk.mtu", kind::int32, "1500", 576, 9600},
    // Give up on a peer that has acknowledged nothing for this long while data is outstanding.
    {"sluice.dpdk.tcp.user.timeout.ms", kind::int32, "60000", 100, int_max},
    // Idle time before keepalive probes (75 s apart, 9 of them) start.
    {"sluice.dpdk.tcp.keepalive.idle.ms", kind::int32, "7200000", 100, int_max},
    {"sluice.dpdk.tcp.recv.buffer.bytes", kind::int32, "1048576", 4096, 1 << 30},
    {"sluice.dpdk.tcp.send.buffer.bytes", kind::int32, "4194304", 4096, 1 << 30},
    // Connections in any state (TIME_WAIT included) per core.
    {"sluice.dpdk.max.connections.per.core", kind::int32, "65536", 16, 1 << 24},
    // Test only: "loss=P,duplicate=P,reorder=P" applied to the port's frames both ways (for
    // hosts whose kernel has no netem).
    {"sluice.dpdk.test.faults", kind::string, ""},
    {"sluice.dpdk.link.trusted", kind::boolean, "false"},
    {"sluice.fsync", kind::choice, "", 0, 0, ",always,batch,never", "sluice.fsync"},
    // false: fetch responses read segment bytes into memory and send them from there (a copying
    // fetch, for measuring what zero-copy saves); true: segment bytes go file -> socket.
    {"sluice.fetch.zero.copy", kind::boolean, "true"},
    // How page-cached segment bytes leave (with zero copy on): splice moves page references to
    // the socket; mapped sends from a read-only mapping (one kernel copy, no user-space copy),
    // which same-host consumers receive faster; auto picks mapped for same-host peers.
    {"sluice.fetch.cached.send", kind::choice, "auto", 0, 0, "auto,splice,mapped"},
    // TCP congestion control towards peers on this host ("" keeps the system's default).
    {"sluice.tcp.congestion.local", kind::string, "cubic"},
    // Bytes a partition accepts ahead of its disk writes; past it produces wait (never fail).
    {"sluice.append.buffer.bytes", kind::int64, "33554432", 4096, long_max},
    // Segment writes of at most this many bytes are written on the reactor thread instead of
    // through io_uring's worker threads (engine/log_config.h inline_write_bytes; 0: never).
    {"sluice.inline.write.bytes", kind::int64, "65536", 0, 16777216},
    // How often a quiet partition's producer state is snapshotted (so a restart replays only
    // what came after); also written at every clean close.
    {"sluice.producer.snapshot.interval.ms", kind::int64, "30000", 100, long_max},
    {"sluice.log.level", kind::choice, "info", 0, 0, "trace,debug,info,warn,error,off"},
};

// Topic-level keys: name, type, bounds, choices.
const key_def topic_keys[] = {
    {"cleanup.policy", kind::list, "delete", 0, 0, "delete,compact"},
    {"compression.type", kind::choice, "producer", 0, 0, "producer,uncompressed,gzip,snappy,lz4,zstd"},
    {"delete.retention.ms", kind::int64, "86400000", 0, long_max},
    {"file.delete.delay.ms", kind::int64, "60000", 0, long_max},
    {"flush.messages", kind::int64, "9223372036854775807", 1, long_max},
    {"flush.ms", kind::int64, "9223372036854775807", 0, long_max},
    {"index.interval.bytes", kind::int32, "4096", 0, int_max},
    {"max.compaction.lag.ms", kind::int64, "9223372036854775807", 1, long_max},
    {"max.message.bytes", kind::int32, "1048588", 0, int_max},
    {"message.timestamp.type", kind::choice, "CreateTime", 0, 0, "CreateTime,LogAppendTime"},
    {"message.timestamp.difference.max.ms", kind::int64, "9223372036854775807", 0, long_max},
    {"message.downconversion.enable", kind::boolean, "true"},
    {"min.cleanable.dirty.ratio", kind::number, "0.5", 0, 1},
    {"min.compaction.lag.ms", kind::int64, "0", 0, long_max},
    {"min.insync.replicas", kind::int32, "1", 1, 100},
    {"preallocate", kind::boolean, "true"},
    {"retention.bytes", kind::int64, "-1", -1, long_max},
    {"retention.ms", kind::int64, "604800000", -1, long_max},
    {"segment.bytes", kind::int32, "1073741824", 14, int_max},
    {"segment.index.bytes", kind::int32, "10485760", 4, int_max},
    {"segment.jitter.ms", kind::int64, "0", 0, long_max},
    {"segment.ms", kind::int64, "604800000", 1, long_max},
    {"unclean.leader.election.enable", kind::boolean, "false"},
    {"sluice.fsync", kind::choice, "", 0, 0, ",always,batch,never"},
};

template <size_t N>
const key_def* find(const key_def (&table)[N], const std::string& key) {
    for (const auto& d : table) {
        if (key == d.name) return &d;
    }
    return nullptr;
}

std::string trim(std::string s) {
    auto not_space = [](unsigned char c) { return !std::isspace(c); };
    s.erase(s.begin(), std::find_if(s.begin(), s.end(), not_space));
    s.erase(std::find_if(s.rbegin(), s.rend(), not_space).base(), s.end());
    return s;
}

bool in_choices(const char* choices, const std::string& v) {
    std::stringstream ss(choices);
    std::string c;
    while (std::getline(ss, c, ',')) {
        if (c == v) return true;
    }
    // getline drops a trailing empty item; "" is allowed when the list starts with ','.
    return v.empty() && choices[0] == ',';
}

result<void> check_value(const key_def& d, const std::string& v) {
    auto bad = [&](const std::string& why) {
        return error(errc::invalid_config, std::string(d.name) + "=" + v + ": " + why);
    };
    switch (d.type) {
        case kind::int32:
        case kind::int64: {
            int64_t n = 0;
            auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
            if (ec != std::errc() || p != v.data() + v.size()) return bad("not an integer");
            if (n < d.min || n > d.max) {
                return bad("must be between " + std::to_string(d.min) + " and " +
                           std::to_string(d.max));
            }
            return ok();
        }
        case kind::number: {
            char* end = nullptr;
            double x = std::strtod(v.c_str(), &end);
            if (v.empty() || end != v.c_str() + v.size()) return bad("not a number");
            if (x < static_cast<double>(d.min) || x > static_cast<double>(d.max)) {
                return bad("out of range");
            }
            return ok();
        }
        case kind::boolean:
            if (v != "true" && v != "false") return bad("must be true or false");
            return ok();
        case kind::choice:
            if (!in_choices(d.choices, v)) return bad(std::string("must be one of ") + d.choices);
            return ok();
        case kind::list: {
            std::stringstream ss(v);
            std::string item;
            int n = 0;
            while (std::getline(ss, item, ',')) {
                item = trim(item);
                if (!in_choices(d.choices, item)) {
                    return bad(std::string("items must be among ") + d.choices);
                }
                ++n;
            }
            if (n == 0) return bad("empty list");
            return ok();
        }
        case kind::string:
            return ok();
    }
    return ok();
}

// listener.name.<name>.<key>: the definition of <key> when it is an ssl.*/sasl.* key, or
// <mechanism>.sasl.jaas.config (Kafka's per-mechanism JAAS entry).
const key_def* find_listener_key(const std::string& key) {
    size_t dot = key.find('.', std::strlen("listener.name."));
    if (dot == std::string::npos) return nullptr;
    std::string rest = key.substr(dot + 1);
    for (const char* mech : {"plain.", "scram-sha-256.", "scram-sha-512."}) {
        if (rest.rfind(mech, 0) == 0) rest = rest.substr(std::strlen(mech));
    }
    if (rest.rfind("ssl.", 0) != 0 && rest.rfind("sasl.", 0) != 0 &&
        rest != "connections.max.reauth.ms") {
        return nullptr;
    }
    return find(broker_keys, rest);
}

}  // namespace

result<void> broker_config::set(const std::string& key, const std::string& raw) {
    const key_def* d = find(broker_keys, key);
    if (d == nullptr && key.rfind("listener.name.", 0) == 0) d = find_listener_key(key);
    if (d == nullptr) {
        return error(errc::unknown_config, key + " (not a broker configuration key Sluice knows)");
    }
    std::string value = trim(raw);
    if (auto ok = check_value(*d, value); !ok) return ok;
    if (key == "listeners" || key == "advertised.listeners") {
        if (auto l = parse_listeners(value); !l) {
            return error(errc::invalid_config, key + ": " + l.error().detail());
        }
    }
    if (d->no_effect) {
        log::warn("config", key, " is accepted for compatibility with Kafka but has no effect");
    }
    _values[key] = value;
    _explicit[key] = value;
    return ok();
}

result<broker_config> broker_config::load(
    const std::optional<std::string>& path,
    const std::vector<std::pair<std::string, std::string>>& overrides) {
    std::string text;
    if (path) {
        std::ifstream in(*path, std::ios::binary);
        if (!in) return error(errc::config_file, *path);
        std::stringstream ss;
        ss << in.rdbuf();
        text = ss.str();
    }
    return load_text(text, path.value_or("(no file)"), overrides);
}

result<broker_config> broker_config::load_text(
    std::string_view text, const std::string& origin,
    const std::vector<std::pair<std::string, std::string>>& overrides) {
    broker_config c;
    for (const auto& d : broker_keys) {
        if (d.default_value != nullptr) c._values[d.name] = d.default_value;
    }
    std::stringstream in{std::string(text)};
    std::string line;
    int lineno = 0;
    while (std::getline(in, line)) {
        ++lineno;
        line = trim(line);
        if (line.empty() || line[0] == '#' || line[0] == '!') continue;
        auto sep = line.find_first_of("=:");
        if (sep == std::string::npos) {
            return error(errc::invalid_config,
                         origin + ":" + std::to_string(lineno) + ": expected key=value");
        }
        auto r = c.set(trim(line.substr(0, sep)), line.substr(sep + 1));
        if (!r) {
            return error(r.error().code(),
                         origin + ":" + std::to_string(lineno) + ": " + r.error().detail());
        }
    }
    for (const auto& [k, v] : overrides) {
        if (auto r = c.set(k, v); !r) return r.error();
    }
    return c;
}

std::optional<std::string> broker_config::get(const std::string& key) const {
    auto it = _values.find(key);
    if (it == _values.end()) return std::nullopt;
    return it->second;
}

std::vector<std::pair<std::string, std::string>> broker_config::all() const {
    return {_values.begin(), _values.end()};
}

int64_t broker_config::int_value(const std::string& key) const {
    auto v = get(key);
    SLUICE_ASSERT(v.has_value(), key.c_str());
    return std::stoll(*v);
}

bool broker_config::bool_value(const std::string& key) const {
    auto v = get(key);
    SLUICE_ASSERT(v.has_value(), key.c_str());
    return *v == "true";
}

std::string broker_config::string_value(const std::string& key) const {
    return get(key).value_or("");
}

std::vector<std::string> broker_config::log_dirs() const {
    std::string s = get("log.dirs").value_or(string_value("log.dir"));
    std::vector<std::string> out;
    std::stringstream ss(s);
    std::string item;
    while (std::getline(ss, item, ',')) {
        item = trim(item);
        if (!item.empty()) out.push_back(item);
    }
    return out;
}

std::vector<listener_config> broker_config::listeners() const {
    return parse_listeners(string_value("listeners")).value();
}

std::vector<listener_config> broker_config::advertised_listeners() const {
    auto a = get("advertised.listeners");
    if (!a || a->empty()) return listeners();
    return parse_listeners(*a).value();
}

bool is_dynamic_broker_key(const std::string& key) {
    static const char* const derived[] = {"log.retention.ms", "log.retention.minutes",
                                          "log.retention.hours", "log.roll.ms", "log.roll.hours",
                                          "log.flush.interval.ms"};
    for (const char* k : derived) {
        if (key == k) return true;
    }
    // Thread-pool sizes Kafka lets operators change at run time. Sluice has no such pools (a
    // reactor per core does this work), so they are accepted, kept and reported, to no effect.
    static const char* const pools[] = {"log.cleaner.threads", "num.io.threads",
                                        "num.network.threads", "num.recovery.threads.per.data.dir"};
    for (const char* k : pools) {
        if (key == k) return true;
    }
    const key_def* d = find(broker_keys, key);
    return d != nullptr && d->topic_key != nullptr;
}

std::map<std::string, std::string> broker_config::topic_defaults() const {
    std::map<std::string, std::string> out;
    for (const auto& d : topic_keys) out[d.name] = d.default_value;
    for (const auto& d : broker_keys) {
        if (d.topic_key != nullptr) {
            if (auto v = get(d.name)) out[d.topic_key] = *v;
        }
    }
    // Retention: ms wins over minutes over hours, as in Kafka.
    if (auto ms = get("log.retention.ms")) {
        out["retention.ms"] = *ms;
    } else if (auto min = get("log.retention.minutes")) {
        int64_t m = std::stoll(*min);
        out["retention.ms"] = std::to_string(m < 0 ? -1 : m * 60'000);
    } else {
        int64_t h = int_value("log.retention.hours");
        out["retention.ms"] = std::to_string(h < 0 ? -1 : h * 3'600'000);
    }
    if (auto ms = get("log.roll.ms")) {
        out["segment.ms"] = *ms;
    } else {
        out["segment.ms"] = std::to_string(int_value("log.roll.hours") * 3'600'000);
    }
    if (auto ms = get("log.flush.interval.ms")) out["flush.ms"] = *ms;
    return out;
}

std::vector<broker_config::synonym> broker_config::broker_key_synonyms(
    const std::string& key) const {
    std::vector<synonym> out;
    const key_def* d = find(broker_keys, key);
    if (d == nullptr) return out;
    if (!is_default(key)) out.push_back({key, get(key), true});
    if (d->default_value != nullptr) out.push_back({key, std::string(d->default_value), false});
    return out;
}

std::vector<broker_config::synonym> broker_config::topic_key_synonyms(
    const std::string& topic_key) const {
    // The broker keys that supply a topic key, most specific first (as topic_defaults() reads
    // them).
    std::vector<std::string> keys;
    if (topic_key == "retention.ms") {
        keys = {"log.retention.ms", "log.retention.minutes", "log.retention.hours"};
    } else if (topic_key == "segment.ms") {
        keys = {"log.roll.ms", "log.roll.hours"};
    } else if (topic_key == "flush.ms") {
        keys = {"log.flush.interval.ms"};
    } else {
        for (const auto& d : broker_keys) {
            if (d.topic_key != nullptr && topic_key == d.topic_key) keys.emplace_back(d.name);
        }
    }
    std::vector<synonym> out;
    for (const auto& k : keys) {
        if (!is_default(k)) out.push_back({k, get(k), true});
    }
    // The default: the first supplying broker key that has one, else the topic key's own.
    for (const auto& k : keys) {
        const key_def* d = find(broker_keys, k);
        if (d != nullptr && d->default_value != nullptr) {
            out.push_back({k, std::string(d->default_value), false});
            return out;
        }
    }
    if (const key_def* d = find(topic_keys, topic_key); d != nullptr && d->default_value) {
        out.push_back({topic_key, std::string(d->default_value), false});
    }
    return out;
}

bool is_topic_config_key(const std::string& key) { return find(topic_keys, key) != nullptr; }

result<void> validate_topic_config(const std::string& key, const std::string& value) {
    const key_def* d = find(topic_keys, key);
    if (d == nullptr) return error(errc::unknown_config, key + " (not a topic configuration key)");
    return check_value(*d, trim(value));
}

const std::vector<std::string>& topic_config_keys() {
    static const std::vector<std::string> keys = [] {
        std::vector<std::string> k;
        for (const auto& d : topic_keys) k.emplace_back(d.name);
        return k;
    }();
    return keys;
}

result<std::vector<listener_config>> parse_listeners(const std::string& s) {
    std::vector<listener_config> out;
    std::stringstream ss(s);
    std::string item;
    while (std::getline(ss, item, ',')) {
        item = trim(item);
        if (item.empty()) continue;
        auto scheme = item.find("://");
        if (scheme == std::string::npos) {
            return error(errc::invalid_config, "listener '" + item + "': expected NAME://host:port");
        }
        listener_config l;
        l.name = item.substr(0, scheme);
        std::string hostport = item.substr(scheme + 3);
        auto colon = hostport.rfind(':');
        if (colon == std::string::npos) {
            return error(errc::invalid_config, "listener '" + item + "': missing port");
        }
        l.host = hostport.substr(0, colon);
        if (l.host.size() >= 2 && l.host.front() == '[' && l.host.back() == ']') {
            l.host = l.host.substr(1, l.host.size() - 2);
        }
        std::string port = hostport.substr(colon + 1);
        int p = 0;
        auto [ptr, ec] = std::from_chars(port.data(), port.data() + port.size(), p);
        if (ec != std::errc() || ptr != port.data() + port.size() || p < 0 || p > 65535) {
            return error(errc::invalid_config, "listener '" + item + "': bad port");
        }
        l.port = static_cast<uint16_t>(p);
        if (l.name.empty() || l.name.find_first_not_of(
                                  "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-") !=
                                  std::string::npos) {
            return error(errc::invalid_config, "listener '" + item + "': bad listener name");
        }
        for (const auto& other : out) {
            if (other.name == l.name) {
                return error(errc::invalid_config, "listener name " + l.name + " is used twice");
            }
        }
        out.push_back(l);
    }
    if (out.empty()) return error(errc::invalid_config, "no listeners in '" + s + "'");
    return out;
}

}  // namespace sluice::broker

SLUICE_DEFINE_ERRC(sluice::broker, errc, "broker", describe)
