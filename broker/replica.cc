// A shard's replicas in cluster mode: taking the leader or follower role the cluster view
// names, the leader's ISR and high watermark, acks=all, and the follower's appends and
// truncations (driven by replica_fetcher.cc). DESIGN.md section 7; replication/README.md.

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "base/log.h"
#include "broker/cluster.h"
#include "broker/handlers.h"
#include "broker/producer_snapshot.h"
#include "broker/replica_fetcher.h"
#include "broker/metrics.h"
#include "broker/server.h"
#include "broker/shard.h"
#include "model/record_batch.h"
#include "replication/cluster_state.h"
#include "replication/epoch_checkpoint.h"
#include "runtime/clock.h"
#include "runtime/reactor.h"

namespace sluice::broker {

namespace {

std::string list(const std::vector<int32_t>& ids) {
    std::string s;
    for (int32_t i : ids) s += (s.empty() ? "" : ",") + std::to_string(i);
    return "[" + s + "]";
}

std::vector<model::node_id> nodes(const std::vector<int32_t>& ids) {
    std::vector<model::node_id> out;
    for (int32_t i : ids) out.emplace_back(i);
    return out;
}

std::vector<int32_t> ints(const std::vector<model::node_id>& ids) {
    std::vector<int32_t> out;
    for (auto i : ids) out.push_back(i());
    return out;
}

int64_t now_ms() { return runtime::system_clock::instance().now_ms(); }

// Kafka's replica.high.watermark.checkpoint.interval.ms default.
constexpr int64_t hw_checkpoint_interval_ms = 5000;
constexpr const char* hw_checkpoint_file = "high-watermark";

}  // namespace

bool shard::leads(const partition& p) const {
    if (p.role == replica_role::single) return true;
    cluster* c = _srv.cluster_member();
    return p.role == replica_role::leader && p.leader && c != nullptr && c->lease_valid();
}

void shard::save_epochs(partition& p) {
    if (auto w = replication::write_epoch_checkpoint(engine::posix_file_system::instance(),
                                                     p.log->dir(), p.epochs);
        !w) {
        log::warn("replication", "writing the leader-epoch checkpoint of ", p.tp.dir_name(), ": ",
                  w.error().describe());
    }
}

void shard::open_replica(const model::tp& tp, const config_map& effective) {
    if (offline(tp)) return;  // in a failed log dir: said once, when it was found so
    auto r = open_partition(tp, effective);
    if (!r) {
        log::error("broker", "cannot open replica ", tp.dir_name(), ": ", r.error().describe());
        return;
    }
    partition& p = **r;
    if (p.role != replica_role::single) return;  // already a replica
    p.role = replica_role::offline;
    p.leader_epoch = -1;
    auto cache = replication::read_epoch_checkpoint(engine::posix_file_system::instance(),
                                                    p.log->dir());
    if (cache) {
        p.epochs = std::move(*cache);
    } else {
        log::warn("replication", tp.dir_name(), ": ", cache.error().describe(),
                  "; the epoch history restarts from the log");
    }
    int64_t leo = p.log->log_end_offset()();
    p.epochs.truncate_from_end(model::offset(leo));
    p.epochs.truncate_from_start(model::offset(p.log->log_start_offset()()));
    if (p.epochs.empty() && leo > p.log->log_start_offset()()) {
        // A log without its checkpoint: its first batch names the epoch it starts in.
        auto rd = p.log->read(model::offset(p.log->log_start_offset()()), 1, model::offset(leo), true);
        if (rd && !rd->regions.empty()) {
            std::vector<std::byte> buf(model::batch_format::log_overhead + 61);
            const auto& reg = rd->regions.front();
            ssize_t n = ::pread(reg.file->get(), buf.data(), std::min<size_t>(buf.size(), reg.length),
                                static_cast<off_t>(reg.offset));
            if (n > 0) {
                auto h = model::parse_header(std::span(buf.data(), static_cast<size_t>(n)));
                if (h) {
                    p.epochs.assign(model::leader_epoch(std::max(0, h->partition_leader_epoch)),
                                    model::offset(p.log->log_start_offset()()));
                }
            }
        }
    }
    // What this replica knew was committed when it last checkpointed (docs/formats/
    // high-watermark.md); at most its log end, at least its log start.
    p.follower_hw = p.log->log_start_offset()();
    if (std::ifstream in(p.log->dir() + "/" + hw_checkpoint_file); in) {
        int64_t hw = -1;
        if (in >> hw && hw >= 0) {
            p.follower_hw = std::clamp(hw, p.log->log_start_offset()(), leo);
            p.hw_checkpointed = hw;
        } else {
            log::warn("replication", tp.dir_name(), ": ", hw_checkpoint_file,
                      " does not parse; the high watermark restarts at the log start");
        }
    }
}

void shard::checkpoint_high_watermarks() {
    for (auto& [tp, p] : _partitions) {
        if (p->role == replica_role::single || p->log->failed()) continue;
        int64_t hw = p->high_watermark();
        if (hw == p->hw_checkpointed) continue;
        std::string path = p->log->dir() + "/" + hw_checkpoint_file;
        std::string tmp = path + ".tmp";
        {
            std::ofstream out(tmp, std::ios::trunc);
            out << hw << "\n";
            if (!out) {
                log::warn("replication", "cannot write ", tmp);
                continue;
            }
        }
        if (::rename(tmp.c_str(), path.c_str()) != 0) {
            log::warn("replication", "cannot rename ", tmp, ": ", std::strerror(errno));
            continue;
        }
        p->hw_checkpointed = hw;
    }
}

void shard::reconcile(std::shared_ptr<const replication::cluster_view> view) {
    if (_closing) return;
    _srv.remember_existing_at_join();
    const int32_t self = _srv.node_id();
    std::set<model::tp> wanted;
    for (const auto& [name, t] : *view->topics) {
        config_map eff = _srv.effective_config(t);
        for (int32_t i = 0; i < t.partitions; ++i) {
            model::tp tp{name, model::partition_id(i)};
            if (_srv.owner_of(tp) != _id) continue;
            if (static_cast<size_t>(i) >= t.replicas.size()) continue;
            const auto& replicas = t.replicas[static_cast<size_t>(i)];
            if (std::find(replicas.begin(), replicas.end(), self) == replicas.end()) continue;
            wanted.insert(tp);
            partition* p = find(tp);
            if (p == nullptr) {
                open_replica(tp, eff);
                p = find(tp);
                if (p == nullptr) continue;
            } else if (p->config != eff) {
                update_topic_config(name, eff);
                p = find(tp);
                if (p == nullptr) continue;  // reopening
            }
            if (p->replicas != replicas && p->leader) {
                p->leader->set_replicas(nodes(replicas), now_ms());  // a reassignment
            }
            p->replicas = replicas;
            const auto& st = t.states[static_cast<size_t>(i)];
            if (!st) continue;
            p->controller_epoch = st->controller_epoch;
            if (st->leader_epoch < p->leader_epoch) continue;  // an older view than we acted on
            if (in_offline_dir(*p)) continue;  // neither leads nor follows (take_dir_offline)
            if (st->leader == self) {
                if (p->role != replica_role::leader || st->leader_epoch != p->leader_epoch) {
                    become_leader(*p, *st);
                } else if (st->version > p->state_version && p->leader) {
                    // The controller changed the ISR (a follower died or shut down).
                    p->state_version = st->version;
                    count_isr_change(ints(p->leader->isr()), st->isr);
                    if (p->leader->set_isr(nodes(st->isr))) p->notify_waiters();
                    complete_acks(*p);
                }
            } else if (st->leader >= 0 && view->live(st->leader)) {
                if (p->role != replica_role::follower || st->leader_epoch != p->leader_epoch ||
                    st->leader != p->leader_id) {
                    become_follower(*p, *st, true);
                }
            } else if (p->role != replica_role::offline || p->leader_epoch != st->leader_epoch) {
                become_follower(*p, *st, false);
            }
        }
    }
    // Replicas no longer assigned here (deleted topics, moved partitions) go with their files.
    std::vector<model::tp> gone;
    for (auto& [tp, p] : _partitions) {
        if (p->role != replica_role::single && !wanted.contains(tp)) gone.push_back(tp);
    }
    for (const auto& tp : gone) {
        log::info("replication", "removing replica ", tp.dir_name(), " (no longer assigned to broker ",
                  self, ")");
        _srv.fetchers().unfollow(tp);
        close_partition(tp, true, [] {});
    }
}

void shard::become_leader(partition& p, const replication::partition_state& st) {
    _srv.fetchers().unfollow(p.tp);
    int64_t leo = p.log->log_end_offset()();
    if (p.epochs.latest_epoch()() < st.leader_epoch) {
        p.epochs.assign(model::leader_epoch(st.leader_epoch), model::offset(leo));
        save_epochs(p);
    }
    int64_t hw = std::clamp(p.high_watermark(), p.log->log_start_offset()(), leo);
    bool was_leader = p.role == replica_role::leader;
    stop_leading(p, kafka_error::not_leader_or_follower);
    p.role = replica_role::leader;
    p.leader_id = _srv.node_id();
    p.leader_epoch = st.leader_epoch;
    p.state_version = st.version;
    p.leader = std::make_unique<replication::leader_state>(
        model::node_id(_srv.node_id()), model::leader_epoch(st.leader_epoch), model::offset(leo),
        nodes(p.replicas), nodes(st.isr), model::offset(leo), model::offset(hw), now_ms());
    log::info("replication", "broker ", _srv.node_id(), " leads ", p.tp.dir_name(), " in epoch ",
              st.leader_epoch, " from offset ", leo, " (high watermark ", hw, ", isr ",
              list(st.isr), ")");
    p.notify_waiters();
    if (!was_leader && p.tp.topic == "__consumer_offsets" && groups) groups_changed(*this);
    if (!was_leader && p.tp.topic == "__transaction_state" && transactions) txns_changed(*this);
}

void shard::become_follower(partition& p, const replication::partition_state& st,
                            bool leader_live) {
    if (p.log->failed() && leader_live && !p.repairing) {
        // A follower whose log opened corrupt (or failed since): its leader has every record it
        // should hold, so the damaged copy goes and the replica copies the log again. It is out
        // of the ISR until it has caught up, so it cannot be elected meanwhile.
        log::warn("replication", p.tp.dir_name(), " is damaged (", p.log->status().error().describe(),
                  "); deleting this replica's copy and fetching it again from leader ", st.leader);
        p.repairing = true;
        model::tp tp = p.tp;
        config_map eff = p.config;
        _srv.fetchers().unfollow(tp);
        close_partition(tp, true, [this, tp, eff] {
            open_replica(tp, eff);  // empty; the next view makes it a follower
            if (auto* c = _srv.cluster_member()) {
                auto v = c->view();
                reconcile(v);
            }
        });
        return;
    }
    bool was_leader = p.role == replica_role::leader;
    // A leader stepping down knew what was committed: that is where its follower view starts.
    if (p.leader) p.follower_hw = std::max(p.follower_hw, p.leader->high_watermark()());
    stop_leading(p, kafka_error::not_leader_or_follower);
    p.role = leader_live ? replica_role::follower : replica_role::offline;
    p.leader_id = st.leader;
    p.leader_epoch = st.leader_epoch;
    p.state_version = st.version;
    if (leader_live) {
        log::info("replication", "broker ", _srv.node_id(), " follows ", st.leader, " for ",
                  p.tp.dir_name(), " in epoch ", st.leader_epoch);
        _srv.fetchers().follow(p.tp, st.leader, st.leader_epoch);
    } else {
        _srv.fetchers().unfollow(p.tp);
    }
    p.notify_waiters();
    if (was_leader && p.tp.topic == "__consumer_offsets" && groups) groups_changed(*this);
    if (was_leader && p.tp.topic == "__transaction_state" && transactions) txns_changed(*this);
}

void shard::stop_leading(partition& p, kafka_error why) {
    p.leader.reset();
    auto acks = std::move(p.acks);
    p.acks.clear();
    for (auto& [id, w] : acks) {
        if (w.timer != 0) _reactor.cancel_timer(w.timer);
        w.done({why, p.tp.dir_name() + " lost its leadership before the ISR confirmed the write"});
    }
}

void shard::wait_for_isr(partition& p, produce_part_result r, produce_opts opts,
                         std::function<void(produce_part_result)> done) {
    uint64_t id = _next_ack_id++;
    ack_waiter w;
    w.target = r.last_offset + 1;
    w.result = std::move(r);
    w.done = std::move(done);
    w.timer = _reactor.add_timer(std::chrono::milliseconds(std::max(opts.timeout_ms, 1)),
                                 [this, tp = p.tp, id] {
                                     partition* q = find(tp);
                                     if (q == nullptr) return;
                                     auto it = q->acks.find(id);
                                     if (it == q->acks.end()) return;
                                     auto waiter = std::move(it->second);
                                     q->acks.erase(it);
                                     waiter.done({kafka_error::request_timed_out,
                                                  "the ISR of " + tp.dir_name() +
                                                      " did not confirm the write in time"});
                                 });
    p.acks.emplace(id, std::move(w));
    complete_acks(p);
}

void shard::complete_acks(partition& p) {
    if (!p.leader) return;
    int64_t hw = p.leader->high_watermark()();
    int32_t min_isr = static_cast<int32_t>(std::stoll(p.config.at("min.insync.replicas")));
    while (!p.acks.empty() && p.acks.begin()->second.target <= hw) {
        auto w = std::move(p.acks.begin()->second);
        p.acks.erase(p.acks.begin());
        if (w.timer != 0) _reactor.cancel_timer(w.timer);
        if (static_cast<int32_t>(p.leader->isr().size()) < min_isr) {
            w.done({kafka_error::not_enough_replicas_after_append,
                    "written, but the ISR of " + p.tp.dir_name() + " shrank below " +
                        "min.insync.replicas=" + std::to_string(min_isr)});
        } else {
            w.done(std::move(w.result));
        }
    }
}

void shard::schedule_isr_check() {
    int64_t lag = _srv.config().int_value("replica.lag.time.max.ms");
    int64_t every = std::clamp<int64_t>(lag / 2, 50, 5000);
    _isr_timer = _reactor.add_timer(std::chrono::milliseconds(every), [this] {
        _isr_timer = 0;
        if (_closing) return;
        for (auto& [tp, p] : _partitions) {
            if (p->leader && !p->isr_change_in_flight) check_isr(*p);
        }
        if (now_ms() - _last_hw_checkpoint_ms >= hw_checkpoint_interval_ms) {
            _last_hw_checkpoint_ms = now_ms();
            checkpoint_high_watermarks();
        }
        schedule_isr_check();
    });
}

void shard::check_isr(partition& p, std::optional<int32_t> joiner) {
    cluster* c = _srv.cluster_member();
    if (c == nullptr || !p.leader || p.isr_change_in_flight) return;
    int64_t lag_max = _srv.config().int_value("replica.lag.time.max.ms");
    auto lagging = p.leader->lagging(now_ms(), lag_max);
    std::vector<model::node_id> joining;
    if (joiner) {
        auto j = p.leader->joinable();
        if (std::find(j.begin(), j.end(), model::node_id(*joiner)) != j.end()) {
            joining.push_back(model::node_id(*joiner));
        }
    }
    if (lagging.empty() && joining.empty()) return;
    std::vector<int32_t> old_isr = ints(p.leader->isr());
    std::vector<int32_t> next_isr;
    for (int32_t r : old_isr) {
        if (std::find(lagging.begin(), lagging.end(), model::node_id(r)) == lagging.end()) {
            next_isr.push_back(r);
        }
    }
    for (auto j : joining) next_isr.push_back(j());
    if (!joining.empty()) {
        // The maximal ISR: a joiner counts for the high watermark from now on, before the
        // write, so that nothing is committed that a newly eligible leader could lack.
        std::vector<int32_t> maximal = old_isr;
        for (auto j : joining) maximal.push_back(j());
        p.leader->set_isr(nodes(maximal));
    }
    replication::partition_state next;
    next.leader = _srv.node_id();
    next.leader_epoch = p.leader_epoch;
    next.isr = next_isr;
    next.controller_epoch = p.controller_epoch;
    next.version = p.state_version;
    p.isr_change_in_flight = true;
    log::info("replication", p.tp.dir_name(), ": ISR ", list(old_isr), " -> ", list(next_isr),
              lagging.empty() ? "" : " (lagging beyond replica.lag.time.max.ms)");
    c->change_isr(p.tp, next, &_reactor,
                  [this, tp = p.tp, epoch = p.leader_epoch,
                   old_isr](result<replication::partition_state> r) {
                      partition* q = find(tp);
                      if (q == nullptr) return;
                      q->isr_change_in_flight = false;
                      if (!q->leader || q->leader_epoch != epoch) return;
                      if (!r) {
                          log::info("replication", tp.dir_name(), ": ISR change not written (",
                                    r.error().describe(), "); the next view decides");
                          q->leader->set_isr(nodes(old_isr));
                          return;
                      }
                      q->state_version = r->version;
                      count_isr_change(old_isr, r->isr);
                      q->leader->set_isr(nodes(r->isr));
                      complete_acks(*q);
                      q->notify_waiters();
                  });
}

void shard::count_isr_change(const std::vector<int32_t>& before, const std::vector<int32_t>& after) {
    auto has = [](const std::vector<int32_t>& v, int32_t id) {
        return std::find(v.begin(), v.end(), id) != v.end();
    };
    bool shrank = std::any_of(before.begin(), before.end(), [&](int32_t id) { return !has(after, id); });
    bool grew = std::any_of(after.begin(), after.end(), [&](int32_t id) { return !has(before, id); });
    core_metrics& m = _srv.stats().core(_id);
    if (shrank) m.isr_shrinks.fetch_add(1, std::memory_order_relaxed);
    if (grew) m.isr_expands.fetch_add(1, std::memory_order_relaxed);
}

shard::replica_position shard::position(const model::tp& tp) {
    replica_position out;
    partition* p = find(tp);
    if (p == nullptr || p->role != replica_role::follower) return out;
    out.following = true;
    out.epoch = p->leader_epoch;
    out.log_end = p->log->log_end_offset()();
    out.log_start = p->log->log_start_offset()();
    out.high_watermark = p->high_watermark();
    out.latest_epoch = p->epochs.latest_epoch()();
    out.epochs = p->epochs;
    return out;
}

void shard::replica_append(const model::tp& tp, int32_t epoch,
                           std::shared_ptr<std::vector<std::byte>> batches, int64_t leader_hw,
                           std::function<void(result<int64_t>)> done) {
    partition* p = find(tp);
    if (p == nullptr || p->role != replica_role::follower || p->leader_epoch != epoch) {
        done(error(engine::errc::invalid_argument, tp.dir_name() + " is no longer followed"));
        return;
    }
    // New epochs in the leader's batches start where their first batch does.
    bool epochs_changed = false;
    size_t whole = 0;
    {
        model::batch_iterator it(*batches);
        model::batch_header h;
        std::span<const std::byte> b;
        while (it.next(h, b)) {
            whole += b.size();
            if (h.partition_leader_epoch > p->epochs.latest_epoch()()) {
                p->epochs.assign(model::leader_epoch(h.partition_leader_epoch),
                                 model::offset(h.base_offset));
                epochs_changed = true;
            }

        }
    }
    if (epochs_changed) save_epochs(*p);
    if (whole == 0) {
        p->follower_hw = std::max(p->follower_hw, leader_hw);
        done(p->log->log_end_offset()());
        return;
    }
    engine::append_options opts;
    opts.keep_offsets = true;
    std::span<std::byte> bytes(batches->data(), whole);
    p->log->append(bytes, opts,
                   [this, tp, epoch, batches, leader_hw, done = std::move(done)](
                       result<engine::append_result> r) {
                       partition* q = find(tp);
                       if (!r) {
                           done(r.error());
                           return;
                       }
                       if (q == nullptr) {
                           done(error(engine::errc::invalid_argument, "closed"));
                           return;
                       }
                       q->follower_hw = std::max(q->follower_hw, leader_hw);
                       done(q->log->log_end_offset()());
                   });
    {
        // Producer and transaction state follow the leader's batches as they are written.
        model::batch_iterator it(bytes);
        model::batch_header h;
        std::span<const std::byte> b;
        while (it.next(h, b)) track_batch(*p, h, b);
    }
}

void shard::replica_truncate(const model::tp& tp, int32_t epoch, int64_t offset,
                             std::function<void(result<void>)> done) {
    partition* p = find(tp);
    if (p == nullptr || p->role != replica_role::follower || p->leader_epoch != epoch) {
        done(error(engine::errc::invalid_argument, tp.dir_name() + " is no longer followed"));
        return;
    }
    int64_t leo = p->log->log_end_offset()();
    log::info("replication", tp.dir_name(), ": truncating from ", leo, " to ", offset,
              " (what the leader of epoch ", epoch, " does not have)");
    p->log->truncate_to(model::offset(offset), [this, tp, done = std::move(done)](result<void> r) {
        partition* q = find(tp);
        if (!r || q == nullptr) {
            done(r ? error(engine::errc::invalid_argument, "closed") : r.error());
            return;
        }
        int64_t end = q->log->log_end_offset()();
        q->epochs.truncate_from_end(model::offset(end));
        if (q->log->log_start_offset()() == end) q->epochs.truncate_from_start(model::offset(end));
        save_epochs(*q);
        q->follower_hw = std::min(q->follower_hw, end);
        q->producers = producer_state{};
        // Open transactions and the aborted index are rebuilt past what stays.
        remove_producer_snapshot(q->log->dir());
        q->snapshot_at = -1;
        q->snapshot_synced_at = -1;
        q->tracked_end = 0;
        if (auto t = q->txns.load(q->log->dir(), q->log->log_start_offset()()); !t) {
            log::warn("replication", "reading the transaction index of ", tp.dir_name(), ": ",
                      t.error().describe());
        }
        if (auto t = q->txns.truncate(end); !t) {
            log::warn("replication", "truncating the transaction index of ", tp.dir_name(), ": ",
                      t.error().describe());
        }
        rebuild_producer_state(*q);
        done(ok());
    });
}

replication::epoch_end shard::epoch_end_offset(const model::tp& tp, int32_t requested,
                                               int32_t current_leader_epoch, kafka_error& err) {
    err = kafka_error::none;
    partition* p = find(tp);
    if (p == nullptr) {
        err = kafka_error::unknown_topic_or_partition;
        return {};
    }
    if (p->role == replica_role::single) {
        // A single broker has led every partition since epoch 0.
        if (current_leader_epoch > 0) {
            err = kafka_error::unknown_leader_epoch;
            return {};
        }
        if (requested != 0) return {};
        return {model::leader_epoch(0), model::offset(p->log->log_end_offset()())};
    }
    if (!p->leader) {
        err = kafka_error::not_leader_or_follower;
        return {};
    }
    if (current_leader_epoch >= 0 && current_leader_epoch != p->leader_epoch) {
        err = current_leader_epoch > p->leader_epoch ? kafka_error::unknown_leader_epoch
                                                     : kafka_error::fenced_leader_epoch;
        return {};
    }
    return p->epochs.end_offset_for(model::leader_epoch(requested),
                                    model::offset(p->log->log_end_offset()()));
}

}  // namespace sluice::broker
