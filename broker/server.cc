#include "broker/server.h"

#include <netdb.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "base/log.h"
#include "broker/allocator.h"
#include "broker/cluster.h"
#include "broker/marker_sender.h"
#include "broker/metrics.h"
#include "broker/replica_fetcher.h"
#include "broker/security.h"
#include "broker/session.h"
#include "broker/log_dirs.h"
#include "broker/shard.h"
#include "net/memory_budget.h"
#include "net/network_stack.h"
#include "net/socket_address.h"
#include "net/tls.h"
#include "runtime/reactor.h"
#include "security/store.h"

namespace sluice::broker {

struct server::core_state {
    std::thread thread;
    runtime::reactor* reactor = nullptr;  // owned by the core's thread
    std::unique_ptr<shard> sh;
    std::vector<std::unique_ptr<net::listener>> listeners;
    std::shared_ptr<net::memory_budget> memory;  // set on the core's thread before listening
};

const net::memory_budget* server::memory_budget(unsigned core) const {
    if (core >= _cores.size()) return nullptr;
    return _cores[core]->memory.get();
}

size_t server::memory_budget_per_core_bytes() const {
    int64_t total = _cfg.int_value("queued.max.request.bytes");
    if (total == 0) return 0;
    if (total < 0) {
        long pages = ::sysconf(_SC_PHYS_PAGES);
        long page = ::sysconf(_SC_PAGE_SIZE);
        total = pages > 0 && page > 0 ? static_cast<int64_t>(pages) * page / 4 : int64_t{1} << 30;
    }
    size_t cores = std::max<size_t>(1, _cores.size());
    // Never below what one largest request needs, or such a request could never be read.
    size_t floor = static_cast<size_t>(_cfg.int_value("socket.request.max.bytes")) + (1u << 20);
    return std::max(static_cast<size_t>(total) / cores, std::min(floor, static_cast<size_t>(total)));
}

void server::note_offline(const model::tp& tp) {
    std::set<std::pair<std::string, int32_t>> all;
    {
        std::lock_guard lock(_offline_mu);
        if (!_offline_replicas.insert({tp.topic, tp.partition()}).second) return;
        all = _offline_replicas;
    }
    if (_cluster != nullptr) _cluster->set_offline_replicas(std::move(all));
}

std::set<model::tp> server::known_partitions() const {
    std::set<model::tp> out;
    auto add = [&](const replication::topic_map& topics) {
        for (const auto& [name, t] : topics) {
            for (int32_t i = 0; i < t.partitions; ++i) out.insert({name, model::partition_id(i)});
        }
    };
    if (_cluster != nullptr) {
        add(*_cluster->view()->topics);
    } else {
        add(*_metadata->snapshot());
    }
    return out;
}

void server::remember_existing_at_join() {
    if (_existing_remembered.load() || _log_dirs->offline_count() == 0 || _cluster == nullptr) return;
    auto view = _cluster->view();
    if (view->brokers.empty()) return;  // not joined yet: the topics are not known
    if (_existing_remembered.exchange(true)) return;
    _log_dirs->remember_existing(known_partitions());
}

void server::log_dir_failed(const std::string& dir, const std::string& reason) {
    // Before the dir counts as offline: every partition known now may live there.
    _log_dirs->remember_existing(known_partitions());
    if (!_log_dirs->take_offline(dir, reason)) return;
    run_on_all([dir](shard& s) { s.take_dir_offline(dir); }, [] {});
}

result<std::unique_ptr<server>> server::create(broker_config cfg) {
    std::unique_ptr<server> s(new server(std::move(cfg)));
    s->_topic_defaults.store(std::make_shared<const config_map>(s->_cfg.topic_defaults()));
    auto dirs = s->_cfg.log_dirs();
    auto checked = log_dir_set::open(dirs);
    if (!checked) return checked.error();
    s->_log_dirs = std::make_unique<log_dir_set>(std::move(*checked));
    if (auto zk = s->_cfg.get("zookeeper.connect"); zk && !zk->empty()) {
        cluster_options o;
        o.connect = *zk;
        o.session_timeout_ms = static_cast<int32_t>(s->_cfg.int_value("zookeeper.session.timeout.ms"));
        o.connection_timeout_ms = s->_cfg.get("zookeeper.connection.timeout.ms")
                                      ? static_cast<int32_t>(s->_cfg.int_value("zookeeper.connection.timeout.ms"))
                                      : o.session_timeout_ms;
        o.self.id = s->_cfg.broker_id();
        if (o.self.id < 0) {
            return error(errc::invalid_config, "broker.id: cluster mode needs a broker id >= 0");
        }
        if (auto rack = s->_cfg.get("broker.rack"); rack && !rack->empty()) o.self.rack = *rack;
        o.unclean_election = s->_cfg.bool_value("unclean.leader.election.enable");
        o.auto_rebalance = s->_cfg.bool_value("auto.leader.rebalance.enable");
        o.rebalance_interval_ms = s->_cfg.int_value("leader.imbalance.check.interval.seconds") * 1000;
        o.imbalance_percent =
            static_cast<int32_t>(s->_cfg.int_value("leader.imbalance.per.broker.percentage"));
        auto c = std::make_unique<cluster>(std::move(o));
        s->_cluster = c.get();
        s->_metadata = std::move(c);
    } else {
        auto store = replication::local_metadata_store::open(dirs.front());
        if (!store) return store.error();
        s->_metadata = std::move(*store);
        // A dir offline from the start: the topics known now may have partitions in it.
        if (s->_log_dirs->offline_count() > 0) s->_log_dirs->remember_existing(s->known_partitions());
    }
    if (auto r = s->open_security(); !r) return r.error();
    // Dynamic broker configs stored earlier take effect from the start.
    s->_applied_dynamic = s->dynamic_overrides();
    s->_topic_defaults.store(std::make_shared<const config_map>(s->config_with_dynamic().topic_defaults()));
    {
        unsigned n = static_cast<unsigned>(s->_cfg.int_value("sluice.cores"));
        if (n == 0) n = std::max(1u, std::thread::hardware_concurrency());
        s->_metrics = std::make_unique<metrics>(n);
    }
    s->_fetchers = std::make_unique<replica_fetchers>(*s);
    s->_markers = std::make_unique<marker_sender>(s->node_id());
    s->_markers->set_client_options(s->inter_broker().client_options());
    net::stack_options so;
    unsigned cores = static_cast<unsigned>(s->_cfg.int_value("sluice.cores"));
    so.cores = cores == 0 ? std::max(1u, std::thread::hardware_concurrency()) : cores;
    so.dpdk_args = s->_cfg.string_value("sluice.dpdk.args");
    so.ip = s->_cfg.string_value("sluice.dpdk.ip");
    so.netmask = s->_cfg.string_value("sluice.dpdk.netmask");
    so.gateway = s->_cfg.string_value("sluice.dpdk.gateway");
    so.mtu = static_cast<unsigned>(s->_cfg.int_value("sluice.dpdk.mtu"));
    so.trusted_link = s->_cfg.bool_value("sluice.dpdk.link.trusted");
    auto u32 = [&](const char* key) { return static_cast<uint32_t>(s->_cfg.int_value(key)); };
    so.tcp_user_timeout_ms = u32("sluice.dpdk.tcp.user.timeout.ms");
    so.tcp_keepalive_idle_ms = u32("sluice.dpdk.tcp.keepalive.idle.ms");
    so.tcp_recv_buffer_bytes = u32("sluice.dpdk.tcp.recv.buffer.bytes");
    so.tcp_send_buffer_bytes = u32("sluice.dpdk.tcp.send.buffer.bytes");
    so.max_connections_per_core = u32("sluice.dpdk.max.connections.per.core");
    so.dpdk_test_faults = s->_cfg.string_value("sluice.dpdk.test.faults");
    auto stack = net::make_network_stack(s->_cfg.string_value("sluice.network.stack"), so);
    if (!stack) return stack.error();
    s->_stack = std::move(*stack);
    return s;
}

result<void> server::open_security() {
    auto listeners = make_listener_security(_cfg);
    if (!listeners) return listeners.error();
    _listener_security = std::make_unique<std::vector<listener_security>>(std::move(*listeners));
    auto inter = make_inter_broker_auth(_cfg, *_listener_security);
    if (_cluster != nullptr && !inter) return inter.error();
    _inter_broker = std::make_unique<inter_broker_auth>(inter ? std::move(*inter) : inter_broker_auth{});
    auto authz = make_authorizer_config(_cfg);
    if (!authz) return authz.error();
    _authorizer = std::move(*authz);
    // In a cluster the state is shared through ZooKeeper (cluster::security_backend()); a single
    // broker keeps it beside its metadata.
    std::unique_ptr<security::store_backend> backend =
        _cluster != nullptr ? _cluster->security_backend()
                            : security::file_backend(_cfg.log_dirs().front() + "/sluice-security");
    auto store = security::security_store::open(std::move(backend));
    if (!store) return error(store.error().code(), "security state: " + store.error().detail());
    _security = std::move(*store);
    _quotas = std::make_unique<quota_tracker>(
        static_cast<int>(_cfg.int_value("quota.window.num")),
        std::chrono::seconds(_cfg.int_value("quota.window.size.seconds")));
    _max_conns_per_ip = _cfg.int_value("max.connections.per.ip");
    std::stringstream ss(_cfg.string_value("max.connections.per.ip.overrides"));
    std::string item;
    while (std::getline(ss, item, ',')) {
        auto colon = item.rfind(':');
        if (item.empty()) continue;
        char* end = nullptr;
        long long n = colon == std::string::npos ? -1 : std::strtoll(item.c_str() + colon + 1, &end, 10);
        if (n < 0 || end == nullptr || *end != 0) {
            return error(errc::invalid_config,
                         "max.connections.per.ip.overrides: '" + item + "' is not host:count");
        }
        _max_conns_per_ip_overrides[item.substr(0, colon)] = n;
    }
    if (_authorizer.enabled) {
        log::info("security", "ACL authorizer on; super users: ",
                  _cfg.string_value("super.users").empty() ? "none" : _cfg.string_value("super.users"),
                  "; resources without ACLs are ",
                  _authorizer.allow_if_no_acl ? "open to everyone" : "closed");
    }
    return ok();
}

void server::schedule_security_reload() {
    runtime::reactor* r = runtime::reactor::local();
    r->add_timer(security_reload_interval, [this] {
        if (_stopping.load()) return;
        metadata_write(
            [this] {
                if (auto res = _security->reload(); !res) {
                    log::warn("security", "reloading the security state: ", res.error().describe());
                }
            },
            [this] {
                if (_stopping.load()) return;
                apply_dynamic_configs(nullptr);  // changes made through another broker
                schedule_security_reload();
            });
    });
}

bool server::admit_connection(const std::string& ip) {
    std::lock_guard lock(_conn_mu);
    int64_t limit = _max_conns_per_ip;
    if (auto it = _max_conns_per_ip_overrides.find(ip); it != _max_conns_per_ip_overrides.end()) {
        limit = it->second;
    }
    int64_t& n = _conns_per_ip[ip];
    if (n >= limit) {
        if (n == 0) _conns_per_ip.erase(ip);
        return false;
    }
    ++n;
    return true;
}

void server::release_connection(const std::string& ip) {
    std::lock_guard lock(_conn_mu);
    auto it = _conns_per_ip.find(ip);
    if (it != _conns_per_ip.end() && --it->second <= 0) _conns_per_ip.erase(it);
}

server::server(broker_config cfg) : _cfg(std::move(cfg)) {}

server::~server() {
    stop();
    wait();
}

unsigned server::owner_of(const model::tp& tp) const {
    return static_cast<unsigned>(std::hash<model::tp>()(tp) % _cores.size());
}

void server::run_on(unsigned core, std::function<void(shard&)> fn) {
    core_state& c = *_cores[core];
    if (runtime::reactor::local() == c.reactor) {
        if (c.sh) fn(*c.sh);
        return;
    }
    // During shutdown the target may already have dropped its shard; the work is then moot.
    c.reactor->post([&c, fn = std::move(fn)] {
        if (c.sh) fn(*c.sh);
    });
}

void server::run_on_all(std::function<void(shard&)> fn, std::function<void()> done) {
    auto* origin = runtime::reactor::local();
    auto remaining = std::make_shared<size_t>(_cores.size());
    auto shared_fn = std::make_shared<std::function<void(shard&)>>(std::move(fn));
    auto shared_done = std::make_shared<std::function<void()>>(std::move(done));
    for (unsigned i = 0; i < _cores.size(); ++i) {
        run_on(i, [=](shard& s) {
            (*shared_fn)(s);
            auto finish = [remaining, shared_done] {
                if (--*remaining == 0) (*shared_done)();
            };
            if (runtime::reactor::local() == origin) {
                finish();
            } else {
                origin->post(finish);
            }
        });
    }
}

void server::open_partitions(const std::string& topic, int32_t from, int32_t to,
                             std::function<void()> done) {
    if (_cluster != nullptr) {
        done();  // replicas open as the cluster view assigns them (shard::reconcile)
        return;
    }
    auto snap = _metadata->snapshot();
    auto it = snap->find(topic);
    if (it == snap->end()) {
        done();
        return;
    }
    config_map eff = effective_config(it->second);
    run_on_all(
        [this, topic, from, to, eff](shard& s) {
            for (int32_t i = from; i < to; ++i) {
                model::tp tp{topic, model::partition_id(i)};
                if (owner_of(tp) != s.id()) continue;
                if (auto r = s.open_partition(tp, eff, true); !r) {
                    log::error("broker", "cannot open ", tp.dir_name(), ": ", r.error().describe());
                }
            }
        },
        std::move(done));
}

void server::drop_topic(const std::string& topic, int32_t partitions, std::function<void()> done) {
    if (_cluster != nullptr) {
        done();  // replicas of deleted topics go as the cluster view shows them gone
        return;
    }
    auto* origin = runtime::reactor::local();
    auto remaining = std::make_shared<int32_t>(partitions);
    if (partitions == 0) {
        done();
        return;
    }
    auto shared_done = std::make_shared<std::function<void()>>(std::move(done));
    for (int32_t i = 0; i < partitions; ++i) {
        model::tp tp{topic, model::partition_id(i)};
        run_on(owner_of(tp), [=](shard& s) {
            s.close_partition(tp, true, [=] {
                origin->post([=] {
                    if (--*remaining == 0) (*shared_done)();
                });
            });
        });
    }
}

std::map<std::string, std::string> server::dynamic_overrides() const {
    auto state = _security->snapshot();
    std::map<std::string, std::string> out;
    for (const char* entity : {"", "self"}) {
        std::string e = std::string(entity) == "self" ? std::to_string(node_id()) : std::string();
        auto it = state->broker_configs.find(e);
        if (it == state->broker_configs.end()) continue;
        for (const auto& [k, v] : it->second) out[k] = v;
    }
    return out;
}

broker_config server::config_with_dynamic() const {
    broker_config c = _cfg;
    for (const auto& [k, v] : dynamic_overrides()) {
        if (auto r = c.set(k, v); !r) {
            log::warn("broker", "ignoring the dynamic config ", k, "=", v, ": ", r.error().describe());
        }
    }
    return c;
}

void server::apply_dynamic_configs(std::function<void()> done) {
    auto now = dynamic_overrides();
    {
        std::lock_guard lock(_dynamic_mu);
        if (now == _applied_dynamic) {
            if (done) done();
            return;
        }
        _applied_dynamic = now;
        _topic_defaults.store(std::make_shared<const config_map>(config_with_dynamic().topic_defaults()));
    }
    log::info("broker", "dynamic broker configs now in effect: ", now.size(), " key(s)");
    // Every partition here gets its new effective config (in a cluster too: defaults are
    // per broker, the view does not carry them).
    auto snap = _metadata->snapshot();
    auto left = std::make_shared<size_t>(snap->size() + 1);
    auto finish = std::make_shared<std::function<void()>>(std::move(done));
    auto tick = [left, finish] {
        if (--*left == 0 && *finish) (*finish)();
    };
    for (const auto& [name, t] : *snap) {
        config_map eff = effective_config(t);
        std::string topic = name;
        run_on_all([topic, eff](shard& s) { s.update_topic_config(topic, eff); }, tick);
    }
    tick();
}

void server::apply_topic_config(const std::string& topic, std::function<void()> done) {
    if (_cluster != nullptr) {
        done();  // the cluster view carries the new configs to every replica
        return;
    }
    auto snap = _metadata->snapshot();
    auto it = snap->find(topic);
    if (it == snap->end()) {
        done();
        return;
    }
    config_map eff = effective_config(it->second);
    run_on_all([topic, eff](shard& s) { s.update_topic_config(topic, eff); }, std::move(done));
}

result<int64_t> server::allocate_producer_id() {
    // Ids are handed out from blocks of 1000 whose end is persisted before use, so a restart
    // never reuses an id (a reused id could make a new producer's batches look like duplicates).
    constexpr int64_t block = 1000;
    std::lock_guard lock(_pid_mu);
    if (_next_pid < 0 || _next_pid >= _pid_block_end) {
        std::string path = _cfg.log_dirs().front() + "/sluice-producer-ids";
        int64_t start = 0;
        {
            std::ifstream in(path);
            if (in) in >> start;
        }
        if (_next_pid >= 0) start = std::max(start, _pid_block_end);
        std::string tmp = path + ".tmp";
        {
            std::ofstream out(tmp, std::ios::trunc);
            out << (start + block) << "\n";
            out.flush();
            if (!out) return errno_error(EIO, "cannot write " + tmp);
        }
        int fd = ::open(tmp.c_str(), O_RDONLY | O_CLOEXEC);
        if (fd < 0 || ::fsync(fd) != 0) {
            if (fd >= 0) ::close(fd);
            return errno_error(errno, "fsync " + tmp);
        }
        ::close(fd);
        if (::rename(tmp.c_str(), path.c_str()) != 0) return errno_error(errno, "rename " + tmp);
        _next_pid = start;
        _pid_block_end = start + block;
    }
    // In a cluster every broker hands out ids: its broker id in the high bits keeps them apart.
    if (_cluster != nullptr) return (static_cast<int64_t>(node_id()) << 40) | _next_pid++;
    return _next_pid++;
}

namespace {
listener_config pick_listener(const std::vector<listener_config>& ls, const std::string& name) {
    for (const auto& l : ls) {
        if (l.name == name) return l;
    }
    return ls.front();
}
}  // namespace

std::string server::advertised_host() const { return advertised_host(_cfg.listeners().front().name); }
int32_t server::advertised_port() const { return advertised_port(_cfg.listeners().front().name); }

std::string server::advertised_host(const std::string& listener) const {
    auto l = pick_listener(_cfg.advertised_listeners(), listener);
    if (!l.host.empty() && l.host != "0.0.0.0" && l.host != "::") return l.host;
    // Like Kafka: the machine's name when it resolves, else the loopback address.
    char name[256] = {};
    if (::gethostname(name, sizeof name - 1) == 0 && name[0] != 0) {
        addrinfo* res = nullptr;
        if (::getaddrinfo(name, nullptr, nullptr, &res) == 0) {
            ::freeaddrinfo(res);
            return name;
        }
    }
    return "127.0.0.1";
}

int32_t server::advertised_port(const std::string& name) const {
    auto l = pick_listener(_cfg.advertised_listeners(), name);
    if (l.port != 0) return l.port;
    std::lock_guard lock(_ports_mu);
    auto it = _bound_ports.find(l.name);
    return it != _bound_ports.end() ? it->second : bound_port();
}

result<void> server::start() {
    unsigned n = static_cast<unsigned>(_cfg.int_value("sluice.cores"));
    if (n == 0) n = std::max(1u, std::thread::hardware_concurrency());
    for (unsigned i = 0; i < n; ++i) _cores.push_back(std::make_unique<core_state>());
    _group = std::make_unique<runtime::reactor_group>(n);
    // Cores start one after another: core 0 binds first (learning the real port when the
    // listener says port 0), and the others join it on the same port with SO_REUSEPORT.
    for (unsigned i = 0; i < n; ++i) {
        {
            std::lock_guard lock(_start_mu);
            ++_launched;
        }
        _cores[i]->thread = std::thread([this, i] { core_main(i); });
        std::unique_lock lock(_start_mu);
        _start_cv.wait(lock, [&] { return _started > i || _start_error.has_value(); });
        if (_start_error) {
            lock.unlock();
            stop();
            wait();
            return *_start_error;
        }
    }
    if (auto ml = _cfg.string_value("sluice.metrics.listener"); !ml.empty()) {
        if (auto r = _metrics->start(*this, ml); !r) {
            stop();
            wait();
            return r.error();
        }
    }
    log::info("broker", "Sluice broker ", node_id(), " serving on port ", bound_port(), " with ",
              n, " core(s); data in ", _cfg.log_dirs().front(), "; allocator ",
              read_allocator_stats().name);
    if (_cluster != nullptr) {
        // Every listener is registered; the inter-broker one first (replicas and transaction
        // markers use the first endpoint), clients get their own listener's.
        std::string inter = _cfg.string_value("inter.broker.listener.name");
        std::vector<replication::broker_endpoint> eps;
        for (const auto& l : _cfg.advertised_listeners()) {
            replication::broker_endpoint ep;
            ep.listener = l.name;
            ep.host = advertised_host(l.name);
            ep.port = advertised_port(l.name);
            if (l.name == inter) {
                eps.insert(eps.begin(), ep);
            } else {
                eps.push_back(ep);
            }
        }
        _cluster->options().self.endpoints = std::move(eps);
        auto joined = _cluster->join([this](cluster::view_ptr v) {
            for (unsigned i = 0; i < _cores.size(); ++i) {
                run_on(i, [v](shard& s) { s.reconcile(v); });
            }
        });
        if (!joined) {
            stop();
            wait();
            return joined.error();
        }
        // The security state lives in ZooKeeper: read it now that the session exists, then
        // every few seconds (changes made through other brokers).
        if (auto r = _security->reload(); !r) {
            log::warn("security", "reading the security state from ZooKeeper: ", r.error().describe());
        }
        _cores[0]->reactor->post([this] { schedule_security_reload(); });
        log::info("broker", "broker ", node_id(), " joined the cluster ",
                  _metadata->cluster_id(), " through ZooKeeper at ",
                  _cfg.string_value("zookeeper.connect"));
    }
    _ready = true;
    return ok();
}

void server::core_main(unsigned core) {
    auto r = runtime::reactor::create(
        {.core = core, .sqpoll = _cfg.bool_value("sluice.uring.sqpoll")});
    if (!r) {
        std::unique_lock lock(_start_mu);
        _start_error = r.error();
        ++_finished;
        _start_cv.notify_all();
        return;
    }
    core_state& c = *_cores[core];
    if (_cfg.bool_value("sluice.cross.core.rings")) (*r)->join(*_group);  // before anyone posts
    c.reactor = r->get();
    c.sh = std::make_unique<shard>(*this, core, *c.reactor);
    c.memory = std::make_shared<net::memory_budget>(*c.reactor, memory_budget_per_core_bytes());
    if (core == 0) {
        size_t b = c.memory->limit_bytes();
        log::info("broker", "memory for requests in flight (queued.max.request.bytes): ",
                  b == 0 ? std::string("no bound") : std::to_string(b >> 20) + " MiB per core");
    }
    auto started = start_core(core);
    {
        std::lock_guard lock(_start_mu);
        if (!started) {
            _start_error = started.error();
        } else {
            ++_started;
        }
        _start_cv.notify_all();
    }
    if (started) c.reactor->run();
    c.listeners.clear();
    c.sh.reset();
    // Let the last completions (socket closes) drain before the ring goes away.
    c.reactor->run_once(std::chrono::milliseconds(0));
    // Cores stop one by one, and one still serving a connection may post to this core (a
    // produce fanned out to a partition it owned). So the reactor outlives every core's run:
    // work posted now is never run, and it is never posted to a destroyed reactor.
    {
        std::unique_lock lock(_start_mu);
        ++_finished;
        _start_cv.notify_all();
        _start_cv.wait(lock, [&] { return _finished == _launched; });
    }
    c.reactor = nullptr;
}

result<void> server::start_core(unsigned core) {
    core_state& c = *_cores[core];
    c.sh->open_owned_partitions();
    size_t max_in_flight = static_cast<size_t>(_cfg.int_value("queued.max.requests"));
    const auto all = _cfg.listeners();
    for (size_t li = 0; li < all.size(); ++li) {
        const listener_config& l = all[li];
        const listener_security* ls = &(*_listener_security)[li];
        std::string hp = (l.host.find(':') != std::string::npos ? "[" + l.host + "]" : l.host) +
                         ":" + std::to_string(l.port);
        auto addr = net::parse_address(hp);
        if (!addr) return error(errc::invalid_config, "listeners: " + addr.error().describe());
        if (l.port == 0 && core > 0) {
            std::lock_guard lock(_ports_mu);
            addr->set_port(_bound_ports[l.name]);
        }
        net::listen_options opts;
        opts.max_connections = static_cast<size_t>(_cfg.int_value("max.connections"));
        opts.connection.max_frame_bytes =
            static_cast<uint32_t>(_cfg.int_value("socket.request.max.bytes"));
        const std::string cached = _cfg.string_value("sluice.fetch.cached.send");
        using cs = net::connection_options::cached_send;
        opts.connection.cached_file_send = cached == "splice"   ? cs::splice
                                           : cached == "mapped" ? cs::mapped
                                                                : cs::automatic;
        opts.connection.same_host_tcp_congestion =
            _cfg.string_value("sluice.tcp.congestion.local");
        opts.connection.memory = c.memory;
        opts.connection.send_zc_min_bytes =
            static_cast<size_t>(_cfg.int_value("sluice.uring.send.zc.min.bytes"));
        opts.connection.recv_multishot = _cfg.bool_value("sluice.uring.recv.multishot");
        shard* sh = c.sh.get();
        // A TLS listener reads raw bytes; the TLS layer frames the decrypted stream.
        net::connection_options framing = opts.connection;
        opts.connection.raw_stream = ls->uses_tls();
        auto on_accept = [this, sh, max_in_flight, ls, framing](net::connection_ptr conn) {
            if (ls->uses_tls()) conn = net::make_tls_connection(std::move(conn), ls->tls, framing);
            auto s = std::make_shared<session>(*this, *sh, std::move(conn), max_in_flight, *ls);
            s->start();
        };
        auto lst = _stack->listen(*c.reactor, *addr, opts, std::move(on_accept));
        if (!lst) {
            return error(lst.error().code(), "listening on " + hp + ": " + lst.error().detail());
        }
        if (core == 0) {
            std::lock_guard lock(_ports_mu);
            _bound_ports[l.name] = (*lst)->local_address().port();
            if (li == 0) _bound_port = (*lst)->local_address().port();
        }
        c.listeners.push_back(std::move(*lst));
    }
    return ok();
}

void server::stop_core(unsigned core) {
    core_state& c = *_cores[core];
    for (auto& l : c.listeners) l->close();
    runtime::reactor* r = c.reactor;
    c.sh->close_all([r] {
        // Give responses to the last acknowledged appends a moment to leave the socket.
        r->add_timer(std::chrono::milliseconds(100), [r] { r->stop(); });
    });
}

void server::metadata_write(std::function<void()> work, std::function<void()> done) {
    if (_cluster == nullptr) {
        work();
        done();
        return;
    }
    runtime::reactor* origin = runtime::reactor::local();
    _cluster->run_admin([work = std::move(work), done = std::move(done), origin]() mutable {
        work();
        origin->post(std::move(done));
    });
}

void server::controlled_shutdown() {
    if (_cluster == nullptr) return;
    _cluster->controlled_shutdown(
        std::max<int64_t>(1000, _cfg.int_value("controlled.shutdown.timeout.ms")));
}

void server::stop() {
    if (_stopping.exchange(true)) return;
    _ready = false;
    if (_metrics) _metrics->stop();
    // No more views, no more copying: then the cores close their partitions.
    if (_cluster != nullptr) _cluster->stop();
    if (_fetchers) _fetchers->stop();
    if (_markers) _markers->stop();
    for (unsigned i = 0; i < _cores.size(); ++i) {
        if (_cores[i]->reactor != nullptr) {
            _cores[i]->reactor->post([this, i] { stop_core(i); });
        }
    }
}

void server::wait() {
    for (auto& c : _cores) {
        if (c->thread.joinable()) c->thread.join();
    }
}

}  // namespace sluice::broker
