#include "broker/cluster.h"

#include <algorithm>
#include <chrono>
#include <optional>
#include <set>

#include "base/log.h"
#include "replication/membership.h"
#include "runtime/reactor.h"

namespace sluice::broker {

namespace {

constexpr const char* changes_path = "/sluice/changes";
constexpr const char* shutdown_dir = "/sluice/controlled_shutdown";
constexpr int64_t tick_ms = 100;
constexpr int64_t full_read_ms = 1000;

int64_t now_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::steady_clock::now().time_since_epoch())
        .count();
}

}  // namespace

result<void> cluster::join(view_fn on_view) {
    if (auto r = open_session(true); !r) return r;
    if (auto r = refresh(); !r) return r;
    _on_view = std::move(on_view);
    _on_view(view());
    _thread = std::thread([this] { run(); });
    _admin_thread = std::thread([this] {
        while (true) {
            std::function<void()> work;
            {
                std::unique_lock lock(_admin_mu);
                _admin_cv.wait(lock, [&] { return _stopping.load() || !_admin_queue.empty(); });
                if (_stopping) return;
                work = std::move(_admin_queue.front());
                _admin_queue.pop_front();
            }
            work();
        }
    });
    return ok();
}

void cluster::run_admin(std::function<void()> work) {
    {
        std::lock_guard lock(_admin_mu);
        if (_stopping) return;
        _admin_queue.push_back(std::move(work));
    }
    _admin_cv.notify_one();
}

cluster::~cluster() { stop(); }

std::shared_ptr<replication::zk_client> cluster::client() const {
    std::lock_guard lock(_zk_mu);
    return _zk;
}

result<void> cluster::open_session(bool at_start) {
    using replication::errc;
    int64_t deadline = now_ms() + _opts.connection_timeout_ms;
    int64_t registered_by = now_ms() + _opts.session_timeout_ms + 2000;
    int attempt = 0;
    while (true) {
        ++attempt;
        int32_t wait = std::clamp<int32_t>(_opts.connection_timeout_ms / 4, 500, 6000);
        auto zk = replication::zk_client::connect(_opts.connect, _opts.session_timeout_ms, wait,
                                                  [this](replication::zk_session_state s) {
                                                      if (s != replication::zk_session_state::connecting) {
                                                          _dirty = true;
                                                          _cv.notify_all();
                                                      }
                                                  });
        if (zk) {
            std::shared_ptr<replication::zk_client> shared(std::move(*zk));
            auto id = replication::ensure_cluster_layout(*shared);
            if (!id) return id.error();
            _cluster_id = *id;
            if (auto made = shared->create_recursive(changes_path, "");
                !made && !made.error().is(errc::node_exists)) {
                return made.error();
            }
            auto reg = replication::register_broker(*shared, _opts.self);
            if (!reg) {
                if (!reg.error().is(errc::broker_id_in_use)) return reg.error();
                // The id is held by another session: this broker's own previous run (killed,
                // its session not expired yet; or our expired session) or another broker with
                // the same id. Wait out one session timeout: a crashed run's registration goes,
                // a live duplicate's stays, and then the id is refused.
                if (at_start && now_ms() > registered_by) return reg.error();
                log::warn("broker", reg.error().describe(),
                          "; waiting for that session to expire");
                std::this_thread::sleep_for(std::chrono::milliseconds(500));
                continue;
            }
            {
                std::lock_guard lock(_zk_mu);
                _zk = shared;
            }
            _lease_until_ms = 0;
            log::info("broker", "registered broker ", _opts.self.id, " in ZooKeeper at ",
                      _opts.connect, " (session 0x", std::hex, shared->session_id(), std::dec,
                      ", timeout ", shared->session_timeout_ms(), " ms)");
            return ok();
        }
        if (_stopping) return zk.error();
        if (at_start && now_ms() + wait > deadline) {
            return error(errc::connect_failed,
                         "cannot reach ZooKeeper at " + _opts.connect + " within " +
                             std::to_string(_opts.connection_timeout_ms) +
                             " ms (zookeeper.connection.timeout.ms): " + zk.error().describe());
        }
        log::warn("broker", "ZooKeeper at ", _opts.connect, " not reachable (attempt ", attempt,
                  "): ", zk.error().describe(), "; retrying");
        std::this_thread::sleep_for(std::chrono::milliseconds(500));
    }
}

void cluster::stop() {
    _lease_until_ms = 0;  // stop acknowledging as a leader before the session goes
    if (_stopping.exchange(true)) {
        if (_thread.joinable()) _thread.join();
        if (_admin_thread.joinable()) _admin_thread.join();
        return;
    }
    _cv.notify_all();
    {
        std::lock_guard lock(_admin_mu);
        _admin_queue.clear();
    }
    _admin_cv.notify_all();
    if (_thread.joinable()) _thread.join();
    if (_admin_thread.joinable()) _admin_thread.join();
    std::lock_guard lock(_zk_mu);
    _zk.reset();  // closes the session: the registration goes now, not at expiry
}

bool cluster::lease_valid() const { return now_ms() < _lease_until_ms.load(); }

std::shared_ptr<const replication::topic_map> cluster::snapshot() const { return view()->topics; }

void cluster::publish(replication::cluster_view v) {
    auto next = std::make_shared<const replication::cluster_view>(std::move(v));
    _view.store(next);
    if (_on_view) _on_view(next);
}

void cluster::bump() {
    if (auto zk = client()) (void)zk->set(changes_path, "", -1);
}

result<void> cluster::refresh() {
    auto zk = client();
    if (!zk) return error(replication::errc::not_ready, "no ZooKeeper session");
    auto v = replication::read_cluster(*zk);
    if (!v) return v.error();
    _last_full_read_ms = now_ms();
    publish(std::move(*v));
    return ok();
}

result<std::shared_ptr<replication::zk_client>> cluster::usable_client() const {
    // Admin writes run on the core that received them: while ZooKeeper has not answered this
    // broker lately (no lease) they fail at once instead of blocking the core until
    // libzookeeper gives up.
    auto zk = client();
    if (!zk || !lease_valid()) {
        return error(replication::errc::not_ready, "ZooKeeper is not reachable from broker " +
                                                       std::to_string(_opts.self.id) + " right now");
    }
    return zk;
}

template <class T>
result<T> cluster::write(const std::function<result<T>(replication::zk_client&)>& fn) {
    auto usable = usable_client();
    if (!usable) return usable.error();
    auto zk = *usable;
    auto r = fn(*zk);
    if (r) {
        bump();
        _dirty = true;
        _cv.notify_all();
        // The caller expects to see its write in snapshot() when this returns.
        if (auto v = replication::read_cluster(*zk); v) {
            _view.store(std::make_shared<const replication::cluster_view>(std::move(*v)));
        }
    }
    return r;
}

result<cluster::view_ptr> cluster::with_live_brokers() const {
    // Assignments are made over the brokers registered now, not those of the last tick.
    auto zk = usable_client();
    if (!zk) return zk.error();
    auto live = replication::read_live_brokers(**zk);
    if (!live) return live.error();
    auto v = std::make_shared<replication::cluster_view>(*view());
    v->brokers = std::move(live->brokers);
    return view_ptr(std::move(v));
}

result<replication::topic_metadata> cluster::create_topic(const replication::topic_spec& spec) {
    auto fresh = with_live_brokers();
    if (!fresh) return fresh.error();
    auto v = *fresh;
    return write<replication::topic_metadata>(
        [&](replication::zk_client& zk) { return replication::create_topic_znodes(zk, *v, spec); });
}

result<void> cluster::delete_topic(const std::string& name) {
    if (!view()->topics->contains(name)) {
        return error(replication::errc::unknown_topic, name);
    }
    return write<void>(
        [&](replication::zk_client& zk) { return replication::delete_topic_znodes(zk, name); });
}

result<void> cluster::set_partition_count(const std::string& name, int32_t partitions) {
    auto fresh = with_live_brokers();
    if (!fresh) return fresh.error();
    auto v = *fresh;
    return write<void>([&](replication::zk_client& zk) {
        return replication::add_partitions_znodes(zk, *v, name, partitions);
    });
}

result<void> cluster::set_topic_configs(const std::string& name,
                                        std::map<std::string, std::string> configs) {
    if (!view()->topics->contains(name)) {
        return error(replication::errc::unknown_topic, name);
    }
    return write<void>([&](replication::zk_client& zk) {
        return replication::set_topic_config_znode(zk, name, configs);
    });
}

void cluster::change_isr(const model::tp& tp, replication::partition_state next,
                         runtime::reactor* origin,
                         std::function<void(result<replication::partition_state>)> done) {
    {
        std::lock_guard lock(_mu);
        _isr_requests.push_back({tp, std::move(next), origin, std::move(done)});
    }
    _cv.notify_all();
}

void cluster::set_offline_replicas(replication::replica_set partitions) {
    {
        std::lock_guard lock(_mu);
        if (partitions == _offline_replicas && !_offline_dirty) return;
        _offline_replicas = std::move(partitions);
        _offline_dirty = true;
    }
    _cv.notify_all();
}

// Writes the offline replicas when they changed or the session is new (its ephemeral is gone).
bool cluster::publish_offline_replicas(replication::zk_client& zk) {
    replication::replica_set parts;
    {
        std::lock_guard lock(_mu);
        bool stale = !_offline_replicas.empty() && _offline_session != zk.session_id();
        if (!_offline_dirty && !stale) return false;
        _offline_dirty = false;
        parts = _offline_replicas;
    }
    auto w = replication::write_offline_replicas(zk, _opts.self.id, parts);
    if (!w) {
        log::warn("broker", "publishing offline replicas: ", w.error().describe());
        std::lock_guard lock(_mu);
        _offline_dirty = true;  // the next round retries
        return false;
    }
    _offline_session = zk.session_id();
    log::info("broker", "published ", parts.size(), " offline replica(s) for the controller");
    return true;
}

void cluster::controlled_shutdown(int64_t timeout_ms) {
    auto zk = client();
    if (!zk) return;
    std::string path = std::string(shutdown_dir) + "/" + std::to_string(_opts.self.id);
    auto made = zk->create_recursive(path, "", replication::zk_mode::ephemeral);
    if (!made && !made.error().is(replication::errc::node_exists)) {
        log::warn("broker", "controlled shutdown: ", made.error().describe());
        return;
    }
    bump();
    _dirty = true;
    _cv.notify_all();
    log::info("broker", "controlled shutdown: moving leadership off broker ", _opts.self.id);
    int64_t deadline = now_ms() + timeout_ms;
    while (now_ms() < deadline) {
        auto v = view();
        size_t led = 0;
        for (const auto& [name, t] : *v->topics) {
            for (const auto& s : t.states) {
                if (!s || s->leader != _opts.self.id) continue;
                // Leadership stays where no other replica is in sync (nothing to move to).
                bool other = false;
                for (int32_t r : s->isr) other |= r != _opts.self.id && v->live(r);
                if (other) ++led;
            }
        }
        if (led == 0) {
            log::info("broker", "controlled shutdown: no movable leadership left here");
            return;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    log::warn("broker", "controlled shutdown: leadership did not move within ", timeout_ms,
              " ms; stopping anyway");
}

result<void> cluster::request_preferred_election(const std::vector<model::tp>& tps) {
    auto usable = usable_client();
    if (!usable) return usable.error();
    auto w = replication::write_preferred_election(**usable, tps);
    if (!w) return w;
    bump();
    return ok();
}

result<void> cluster::request_reassignment(const model::tp& tp,
                                           const std::optional<std::vector<int32_t>>& target) {
    auto fresh = with_live_brokers();
    if (!fresh) return fresh.error();
    auto v = *fresh;
    return write<void>([&](replication::zk_client& zk) {
        return replication::write_reassignment(zk, *v, tp, target);
    });
}

void cluster::run() {
    while (!_stopping) {
        if (!client()) {
            if (auto r = open_session(false); !r) {
                if (_stopping) break;
                log::warn("broker", "ZooKeeper session: ", r.error().describe(), "; retrying");
                std::this_thread::sleep_for(std::chrono::milliseconds(500));
                continue;
            }
            _controller = false;
            _signature.clear();
            _dirty = true;
        }
        if (!tick()) {
            log::warn("broker", "ZooKeeper session of broker ", _opts.self.id,
                      " expired; this broker stopped leading and opens a new session");
            _controller = false;
            std::lock_guard lock(_zk_mu);
            _zk.reset();
            continue;
        }
        std::unique_lock lock(_mu);
        _cv.wait_for(lock, std::chrono::milliseconds(tick_ms),
                     [&] { return _stopping || _dirty || !_isr_requests.empty() || _offline_dirty; });
    }
}

bool cluster::tick() {
    using replication::errc;
    auto zk = client();
    if (zk->state() == replication::zk_session_state::expired) return false;
    // The cheap poll: a few stats that change whenever anything the view depends on does.
    int64_t sent = now_ms();
    std::string sig;
    for (const char* path : {"/brokers/ids", "/brokers/topics", changes_path, "/controller",
                             shutdown_dir, "/admin/preferred_replica_election",
                             "/sluice/offline_replicas"}) {
        auto st = zk->exists(path);
        if (!st) {
            if (st.error().is(errc::session_expired)) return false;
            return true;  // disconnected: libzookeeper reconnects; the lease runs out meanwhile
        }
        if (*st) {
            sig += std::to_string((*st)->version) + "/" + std::to_string((*st)->child_version) +
                   "/" + std::to_string((*st)->ephemeral_owner) + ";";
        } else {
            sig += "-;";
        }
    }
    // Still our session's registration: the lease is renewed from when this round started.
    if (!_stopping) _lease_until_ms = sent + zk->session_timeout_ms() * 2 / 3;

    // Leaders' ISR changes.
    std::deque<isr_request> reqs;
    {
        std::lock_guard lock(_mu);
        reqs.swap(_isr_requests);
    }
    bool wrote = false;
    for (auto& r : reqs) {
        auto w = replication::write_partition_state(*zk, r.tp, r.next);
        if (w) wrote = true;
        auto done = std::make_shared<decltype(r.done)>(std::move(r.done));
        auto res = std::make_shared<result<replication::partition_state>>(std::move(w));
        r.origin->post([done, res] { (*done)(std::move(*res)); });
    }
    if (publish_offline_replicas(*zk)) wrote = true;
    if (wrote) bump();

    bool changed = sig != _signature || _dirty.exchange(false) || wrote ||
                   now_ms() - _last_full_read_ms >= full_read_ms;
    if (!changed) return true;
    _signature = sig;
    auto v = replication::read_cluster(*zk);
    if (!v) {
        if (v.error().is(errc::session_expired)) return false;
        log::warn("broker", "reading the cluster from ZooKeeper: ", v.error().describe());
        return true;
    }
    _last_full_read_ms = now_ms();

    // The controller role.
    if (v->controller_id < 0) {
        auto claim = replication::claim_controller(*zk, _opts.self.id);
        if (claim && claim->won) {
            auto id = replication::read_controller_identity(*zk);
            if (id) {
                _identity = *id;
                _controller = true;
                _last_rebalance_ms = now_ms();
                log::info("broker", "broker ", _opts.self.id, " is the controller (epoch ",
                          _identity.epoch, ")");
            }
        }
        if (claim) {
            v->controller_id = claim->controller_id;
            if (claim->won) v->controller_epoch = claim->epoch;
        }
    } else if (v->controller_id != _opts.self.id && _controller) {
        log::info("broker", "broker ", _opts.self.id, " is no longer the controller");
        _controller = false;
    }
    if (_controller && v->controller_id == _opts.self.id) {
        replication::election_rules rules;
        rules.unclean = _opts.unclean_election;
        auto n = replication::controller_pass(*zk, *v, _identity, rules);
        if (!n) {
            if (n.error().is(errc::bad_version)) {
                log::warn("broker", "controller epoch ", _identity.epoch,
                          " was superseded; broker ", _opts.self.id, " stops acting as controller");
                _controller = false;
            } else if (n.error().is(errc::session_expired)) {
                return false;
            }
            _dirty = true;
        } else {
            size_t moved = *n;
            // Preferred-replica elections: asked for by an admin, or the periodic rebalance.
            std::optional<std::set<model::tp>> preferred;
            if (auto asked = replication::read_preferred_election(*zk); asked && *asked) {
                preferred.emplace((*asked)->begin(), (*asked)->end());
                if ((*asked)->empty()) {  // every partition
                    for (const auto& [name, t] : *v->topics) {
                        for (int32_t p = 0; p < t.partitions; ++p) preferred->insert({name, model::partition_id(p)});
                    }
                }
                log::info("broker", "controller: preferred-replica election of ",
                          preferred->size(), " partition(s) asked for");
                (void)replication::clear_preferred_election(*zk);
            } else if (_opts.auto_rebalance &&
                       now_ms() - _last_rebalance_ms >= _opts.rebalance_interval_ms) {
                _last_rebalance_ms = now_ms();
                auto off = replication::imbalanced_partitions(*v, _opts.imbalance_percent);
                if (!off.empty()) {
                    log::info("broker", "controller: ", off.size(), " partition(s) led away from ",
                              "their preferred replica beyond leader.imbalance.per.broker.",
                              "percentage=", _opts.imbalance_percent, "; moving them back");
                    preferred.emplace(off.begin(), off.end());
                }
            }
            if (auto r = replication::controller_reassign(*zk, *v, _identity); r) {
                moved += *r;
            } else if (r.error().is(errc::bad_version)) {
                _controller = false;
            }
            if (preferred) {
                replication::election_rules pr = rules;
                pr.preferred = true;
                auto m = replication::controller_pass(*zk, *v, _identity, pr, &*preferred);
                if (m) moved += *m;
            }
            if (moved > 0) {
                bump();
                auto again = replication::read_cluster(*zk);
                if (again) v = std::move(again);
            }
        }
    }
    publish(std::move(*v));
    return true;
}

namespace {

constexpr const char* security_znode = "/sluice/security";

class zk_security_backend final : public security::store_backend {
  public:
    explicit zk_security_backend(std::function<std::shared_ptr<replication::zk_client>()> zk)
        : _zk(std::move(zk)) {}
    bool ready() const override { return _zk() != nullptr; }
    result<std::string> load() override {
        auto zk = _zk();
        if (!zk) return error(replication::errc::not_ready, "not connected to ZooKeeper");
        auto node = zk->get(security_znode);
        if (!node) {
            if (node.error().is(replication::errc::no_node)) return std::string();
            return node.error();
        }
        return node->data;
    }
    result<void> save(const std::string& text) override {
        auto zk = _zk();
        if (!zk) return error(replication::errc::not_ready, "not connected to ZooKeeper yet");
        auto set = zk->set(security_znode, text);
        if (set) return ok();
        if (!set.error().is(replication::errc::no_node)) return set.error();
        auto created = zk->create_recursive(security_znode, text);
        if (created || !created.error().is(replication::errc::node_exists)) {
            return created ? ok() : result<void>(created.error());
        }
        auto again = zk->set(security_znode, text);
        return again ? ok() : result<void>(again.error());
    }

  private:
    std::function<std::shared_ptr<replication::zk_client>()> _zk;
};

}  // namespace

std::unique_ptr<security::store_backend> cluster::security_backend() {
    return std::make_unique<zk_security_backend>([this]() -> std::shared_ptr<replication::zk_client> {
        auto zk = usable_client();
        return zk ? *zk : nullptr;
    });
}

}  // namespace sluice::broker
