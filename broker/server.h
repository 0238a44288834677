#pragma once
// The broker process: one reactor thread per core, each with a shard (its partitions), a
// listener on every configured address (SO_REUSEPORT, so connections spread over cores), and
// the sessions of the connections it accepted. Cluster-wide state (topics and their configs)
// lives in the metadata store and is read through immutable snapshots from every core.
//
// Lifecycle: create() validates config and opens the metadata store; start() spawns the core
// threads, recovers partitions and begins listening (returning once every core is ready or
// one failed); stop() (thread-safe, also from a signal-handling thread) stops accepting,
// lets in-flight requests finish for a bounded time, closes every partition cleanly and ends
// the threads; wait() joins them.

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "base/result.h"
#include "broker/config.h"
#include "broker/topic_config.h"
#include "model/fundamental.h"
#include "replication/metadata_store.h"
#include "security/acl.h"

namespace sluice::net {
class network_stack;
class memory_budget;
}
namespace sluice::runtime {
class reactor;
class reactor_group;
}
namespace sluice::security {
class security_store;
}

namespace sluice::broker {

class shard;
class session;
class cluster;
class replica_fetchers;
class marker_sender;
class quota_tracker;
class log_dir_set;
class metrics;
struct listener_security;
struct inter_broker_auth;

class server {
public:
    static result<std::unique_ptr<server>> create(broker_config cfg);
    ~server();

    result<void> start();
    void stop();
    void wait();

    unsigned cores() const { return static_cast<unsigned>(_cores.size()); }
    // A core's memory budget for requests in flight (queued.max.request.bytes); null before the
    // core has started. Its counters may be read from any thread.
    const net::memory_budget* memory_budget(unsigned core) const;
    // queued.max.request.bytes resolved to bytes per core (0: no bound).
    size_t memory_budget_per_core_bytes() const;
    // The core that owns a partition.
    unsigned owner_of(const model::tp& tp) const;
    // Runs `fn` on core `core`'s thread with its shard (directly if already there).
    void run_on(unsigned core, std::function<void(shard&)> fn);
    // Runs `fn` on every core; `done` runs on the calling core's thread when all have run.
    void run_on_all(std::function<void(shard&)> fn, std::function<void()> done);

    const broker_config& config() const { return _cfg; }
    replication::metadata_store& metadata() { return *_metadata; }
    // Broker defaults for topic configs (from log.* keys).
    // They include the dynamic broker configs in effect (AlterConfigs on a BROKER resource).
    std::shared_ptr<const config_map> topic_defaults() const { return _topic_defaults.load(); }
    config_map effective_config(const replication::topic_metadata& t) const {
        return effective_topic_config(*_topic_defaults.load(), t.configs);
    }
    // The dynamic broker configs that apply here: the cluster default ("") overlaid with this
    // broker's own; `config_with_dynamic()` is the static config with them applied.
    std::map<std::string, std::string> dynamic_overrides() const;
    broker_config config_with_dynamic() const;
    // Recomputes the topic defaults from the dynamic configs and gives every partition its new
    // effective config; `done` (optional) runs on the calling core afterwards.
    void apply_dynamic_configs(std::function<void()> done);
    net::network_stack& stack() { return *_stack; }
    // The port the first listener is bound to (the real port when configured with port 0).
    uint16_t bound_port() const { return _bound_port.load(); }
    int32_t node_id() const { return _cfg.broker_id(); }
    // Host and port clients should use (advertised.listeners, else listeners, else the bound
    // address).
    std::string advertised_host() const;
    int32_t advertised_port() const;

    // Control-plane operations (run on the calling core; fan out to owning cores).
    // Creates partitions [from, to) of `topic` on their cores; `done` runs on the calling core.
    void open_partitions(const std::string& topic, int32_t from, int32_t to,
                         std::function<void()> done);
    void drop_topic(const std::string& topic, int32_t partitions, std::function<void()> done);
    void apply_topic_config(const std::string& topic, std::function<void()> done);

    // Cluster mode (zookeeper.connect set): this broker's cluster member, else nullptr.
    cluster* cluster_member() const { return _cluster; }
    replica_fetchers& fetchers() { return *_fetchers; }
    // Sends transaction markers to other brokers (handle_txn.cc).
    marker_sender& markers() { return *_markers; }
    // SIGTERM in cluster mode: moves leadership off this broker before stop() (bounded wait).
    void controlled_shutdown();

    // Runs `work`, which may write the metadata store: in cluster mode on the cluster's admin
    // thread (a ZooKeeper round trip must not block a core), else right here; then `done` on the
    // calling core. `work` may only touch what it owns and thread-safe server state.
    void metadata_write(std::function<void()> work, std::function<void()> done);

    // Producer ids for InitProducerId, unique across restarts (persisted in blocks).
    result<int64_t> allocate_producer_id();

    // Security (broker/security.h): SCRAM credentials, ACLs and quotas; the authorizer's
    // settings; the quota meters; what each listener demands.
    security::security_store& security() { return *_security; }
    const security::authorizer_config& authorizer() const { return _authorizer; }
    quota_tracker& quotas() { return *_quotas; }
    // log.dirs and which of them are offline (broker/log_dirs.h).
    log_dir_set& log_dirs() { return *_log_dirs; }
    // A partition in `dir` hit an I/O error: the whole dir goes offline and every core
    // fail-stops its partitions there.
    void log_dir_failed(const std::string& dir, const std::string& reason);
    // A partition replica here that is offline (in a failed log dir); in a cluster the set is
    // published for the controller. Any thread.
    void note_offline(const model::tp& tp);
    // Every partition of every topic this broker knows of now (its view or its metadata).
    std::set<model::tp> known_partitions() const;
    // Cluster mode, a log dir offline since start-up: called with each view until the broker
    // has joined; records the partitions that exist then (log_dir_set::remember_existing).
    void remember_existing_at_join();
    // Cluster mode: how this broker authenticates to the others (broker/security.h).
    const inter_broker_auth& inter_broker() const { return *_inter_broker; }
    const std::vector<listener_security>& listener_securities() const { return *_listener_security; }
    // max.connections.per.ip: counts a new connection from `ip`; false (not counted) when the
    // address is at its limit. release_connection() when it closes.
    bool admit_connection(const std::string& ip);
    void release_connection(const std::string& ip);
    // The advertised endpoint of a listener (by name; the first listener when unknown).
    std::string advertised_host(const std::string& listener) const;
    int32_t advertised_port(const std::string& listener) const;

    // Counters for the metrics endpoint (broker/metrics.h).
    metrics& stats() { return *_metrics; }
    // Every core serves (and, in a cluster, the broker has joined): /readyz.
    bool ready() const { return _ready.load(); }

    std::atomic<uint64_t> next_waiter_id{1};

private:
    explicit server(broker_config cfg);
    void core_main(unsigned core);
    result<void> start_core(unsigned core);
    result<void> open_security();
    // Cluster mode: re-reads the shared security state every security_reload_interval.
    void schedule_security_reload();
    static constexpr std::chrono::milliseconds security_reload_interval{2000};
    void stop_core(unsigned core);

    struct core_state;
    broker_config _cfg;
    std::atomic<std::shared_ptr<const config_map>> _topic_defaults;
    std::mutex _dynamic_mu;  // guards _applied_dynamic (cores and the reload both apply)
    std::map<std::string, std::string> _applied_dynamic;  // what apply_dynamic_configs last used
    std::unique_ptr<replication::metadata_store> _metadata;
    cluster* _cluster = nullptr;  // _metadata, in cluster mode
    std::unique_ptr<replica_fetchers> _fetchers;
    std::unique_ptr<marker_sender> _markers;
    std::unique_ptr<net::network_stack> _stack;
    std::unique_ptr<security::security_store> _security;
    security::authorizer_config _authorizer;
    std::unique_ptr<quota_tracker> _quotas;
    std::unique_ptr<log_dir_set> _log_dirs;
    std::unique_ptr<runtime::reactor_group> _group;  // the cores' SPSC rings; outlives them
    std::atomic<bool> _existing_remembered{false};
    std::mutex _offline_mu;
    std::set<std::pair<std::string, int32_t>> _offline_replicas;  // guarded by _offline_mu
    std::unique_ptr<inter_broker_auth> _inter_broker;
    std::unique_ptr<metrics> _metrics;
    std::atomic<bool> _ready{false};
    std::unique_ptr<std::vector<listener_security>> _listener_security;
    mutable std::mutex _ports_mu;
    std::map<std::string, uint16_t> _bound_ports;  // by listener name (written by core 0)
    std::mutex _conn_mu;
    std::map<std::string, int64_t> _conns_per_ip;
    int64_t _max_conns_per_ip = 0;
    std::map<std::string, int64_t> _max_conns_per_ip_overrides;
    std::vector<std::unique_ptr<core_state>> _cores;
    std::atomic<uint16_t> _bound_port{0};
    std::atomic<bool> _stopping{false};

    std::mutex _start_mu;
    std::condition_variable _start_cv;
    unsigned _started = 0;
    std::optional<error> _start_error;
    // Shutdown barrier: a core keeps its reactor alive (other cores may still post to it)
    // until every core thread that was launched has finished running.
    unsigned _launched = 0;
    unsigned _finished = 0;

    std::mutex _pid_mu;
    int64_t _next_pid = -1;
    int64_t _pid_block_end = -1;
};

}  // namespace sluice::broker
