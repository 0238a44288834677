#pragma once
// Cluster mode (zookeeper.connect set): this broker's member of the ZooKeeper-coordinated
// cluster (DESIGN.md section 7, docs/formats/zookeeper.md). It is the broker's metadata store
// (topics come from ZooKeeper) and runs one control thread that
//  - keeps the session: registers /brokers/ids/<id> (ephemeral), makes a new session and
//    registers again after expiry, and keeps the leader lease (below);
//  - watches the cluster cheaply (a few stats every tick, a full read when one changed and at
//    least every second) and publishes each new cluster_view to the shards, which reconcile
//    their replicas to it (become leader, follower, or close);
//  - bids for /controller and, while it holds it, runs the controller's passes (elections,
//    ISR clean-up), each write fenced by /controller_epoch;
//  - makes the leaders' ISR changes (conditional writes on the state's version).
//
// Leader lease: a leader acknowledges produces only while lease_valid(): the last successful
// ZooKeeper round trip started less than 2/3 of the negotiated session timeout ago. A broker
// cut off from ZooKeeper therefore stops acknowledging before its session can expire, which is
// before the controller can elect anyone else.
//
// Every writer bumps /sluice/changes after a successful write so that other brokers notice at
// their next tick; a missed bump is caught by the periodic full read.
//
// Threading: snapshot()/view()/lease_valid() from any thread (atomic snapshots); the
// metadata_store writers block for a ZooKeeper round trip, so request handlers call them on the
// admin thread (run_admin(), through server::metadata_write()), never on a core; change_isr()
// from reactor threads (it only queues); everything else on the control thread.

#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "base/result.h"
#include "model/fundamental.h"
#include "replication/cluster_state.h"
#include "replication/metadata_store.h"
#include "replication/zk_client.h"
#include "security/store.h"
#include "replication/zk_topics.h"

namespace sluice::runtime {
class reactor;
}

namespace sluice::broker {

struct cluster_options {
    std::string connect;  // zookeeper.connect
    int32_t session_timeout_ms = 18000;
    int32_t connection_timeout_ms = 18000;  // how long start-up keeps trying to reach ZooKeeper
    replication::broker_registration self;
    bool unclean_election = false;
    bool auto_rebalance = true;            // auto.leader.rebalance.enable
    int64_t rebalance_interval_ms = 300000;  // leader.imbalance.check.interval.seconds
    int32_t imbalance_percent = 10;        // leader.imbalance.per.broker.percentage
};

class cluster final : public replication::metadata_store {
public:
    using view_ptr = std::shared_ptr<const replication::cluster_view>;
    using view_fn = std::function<void(view_ptr)>;

    explicit cluster(cluster_options opts) : _opts(std::move(opts)) {}
    ~cluster() override;

    // Connects (retrying until connection_timeout_ms, then a clear error), registers the broker
    // (errc::broker_id_in_use when the id is taken), makes the layout, reads the cluster and
    // starts the control thread; `on_view` runs on it for every new view. `self`'s endpoints
    // may be filled in until then.
    result<void> join(view_fn on_view);
    cluster_options& options() { return _opts; }
    // Ends the control thread and closes the session (the registration disappears at once).
    void stop();

    // metadata_store
    std::shared_ptr<const replication::topic_map> snapshot() const override;
    using metadata_store::create_topic;
    result<replication::topic_metadata> create_topic(const replication::topic_spec& spec) override;
    result<void> delete_topic(const std::string& name) override;
    result<void> set_partition_count(const std::string& name, int32_t partitions) override;
    result<void> set_topic_configs(const std::string& name,
                                   std::map<std::string, std::string> configs) override;
    std::string cluster_id() const override { return _cluster_id; }

    view_ptr view() const { return _view.load(); }
    int32_t self_id() const { return _opts.self.id; }
    bool lease_valid() const;

    // A leader's ISR change; `done` is posted to `origin` with the written state (its new
    // version) or the error (bad_version: someone wrote first; the next view tells what).
    void change_isr(const model::tp& tp, replication::partition_state next,
                    runtime::reactor* origin,
                    std::function<void(result<replication::partition_state>)> done);

    // Runs `work` on the admin thread (blocking metadata writes for request handlers), in order.
    // Work still queued when the cluster stops is dropped.
    void run_admin(std::function<void()> work);

    // The replicas here that are in failed log dirs (all of them, each time): published for
    // the controller, which moves their leadership and drops them from ISRs (KIP-112).
    void set_offline_replicas(replication::replica_set partitions);

    // Controlled shutdown: asks the controller to move every leadership away from this broker
    // and waits (up to `timeout_ms`) until the view shows none left here.
    void controlled_shutdown(int64_t timeout_ms);

    // Asks the controller for a preferred-replica election of `tps` (blocking, one write);
    // errc::node_exists while an earlier one is still pending. The outcome shows in view().
    result<void> request_preferred_election(const std::vector<model::tp>& tps);
    // Starts (or, with nullopt, cancels) moving `tp` to the replicas `target` (blocking, one
    // conditional write); the controller completes it once the new replicas are in sync.
    result<void> request_reassignment(const model::tp& tp,
                                      const std::optional<std::vector<int32_t>>& target);


    // The security state's home in a cluster: the znode /sluice/security (docs/formats/
    // security.md). Before the session exists it reads as empty; the server reloads after join
    // and then every few seconds, so a change made through any broker reaches all of them.
    std::unique_ptr<security::store_backend> security_backend();

private:
    result<void> open_session(bool at_start);
    void run();
    bool tick();  // one pass; false when the session must be replaced
    bool publish_offline_replicas(replication::zk_client& zk);
    result<void> refresh();
    void publish(replication::cluster_view v);
    void bump();
    result<view_ptr> with_live_brokers() const;
    std::shared_ptr<replication::zk_client> client() const;
    result<std::shared_ptr<replication::zk_client>> usable_client() const;
    // Writes by admin requests: run `fn` with the client, bump and refresh on success.
    template <class T>
    result<T> write(const std::function<result<T>(replication::zk_client&)>& fn);

    cluster_options _opts;
    std::string _cluster_id;
    mutable std::mutex _zk_mu;  // guards _zk (the pointer; the client itself is thread-safe)
    std::shared_ptr<replication::zk_client> _zk;
    std::atomic<view_ptr> _view{std::make_shared<replication::cluster_view>()};
    std::atomic<int64_t> _lease_until_ms{0};
    std::atomic<bool> _stopping{false};
    std::atomic<bool> _dirty{true};
    view_fn _on_view;
    std::thread _thread;

    // Control-thread state.
    bool _controller = false;
    replication::controller_identity _identity;
    std::string _signature;
    int64_t _last_full_read_ms = 0;
    int64_t _last_rebalance_ms = 0;

    struct isr_request {
        model::tp tp;
        replication::partition_state next;
        runtime::reactor* origin;
        std::function<void(result<replication::partition_state>)> done;
    };
    std::mutex _mu;
    std::condition_variable _cv;
    std::deque<isr_request> _isr_requests;
    replication::replica_set _offline_replicas;  // guarded by _mu
    bool _offline_dirty = false;                 // guarded by _mu
    int64_t _offline_session = 0;                // the session that last published them (cluster thread)

    std::mutex _admin_mu;
    std::condition_variable _admin_cv;
    std::deque<std::function<void()>> _admin_queue;
    std::thread _admin_thread;
};

}  // namespace sluice::broker
