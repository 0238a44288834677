#include "broker/replica_fetcher.h"

#include "broker/security.h"

#include <chrono>
#include <optional>

#include "base/log.h"
#include "broker/cluster.h"
#include "broker/kafka_error.h"
#include "broker/server.h"
#include "broker/shard.h"
#include "replication/leader_epoch_cache.h"
#include "tools/kafka_client.h"

namespace sluice::broker {

namespace {

int64_t now_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::steady_clock::now().time_since_epoch())
        .count();
}

// Runs `fn` on the core owning `tp` and waits for the value it reports (nullopt when the
// broker stops first or the core never answers).
template <class T>
std::optional<T> on_core(server& srv, const model::tp& tp, const std::atomic<bool>& stopping,
                         std::function<void(shard&, std::function<void(T)>)> fn) {
    struct slot {
        std::mutex mu;
        std::condition_variable cv;
        std::optional<T> value;
    };
    auto sl = std::make_shared<slot>();
    srv.run_on(srv.owner_of(tp), [sl, fn = std::move(fn)](shard& s) {
        fn(s, [sl](T v) {
            std::lock_guard lock(sl->mu);
            sl->value.emplace(std::move(v));
            sl->cv.notify_all();
        });
    });
    std::unique_lock lock(sl->mu);
    int64_t deadline = now_ms() + 60000;
    while (!sl->value) {
        if (stopping || now_ms() > deadline) return std::nullopt;
        sl->cv.wait_for(lock, std::chrono::milliseconds(100));
    }
    return std::move(sl->value);
}

}  // namespace

replica_fetchers::~replica_fetchers() { stop(); }

void replica_fetchers::stop() {
    _stopping = true;
    _cv.notify_all();
    std::map<int32_t, std::unique_ptr<fetcher>> all;
    {
        std::lock_guard lock(_mu);
        all.swap(_fetchers);
    }
    for (auto& [id, f] : all) {
        if (f->thread.joinable()) f->thread.join();
    }
}

void replica_fetchers::follow(const model::tp& tp, int32_t leader, int32_t epoch) {
    std::lock_guard lock(_mu);
    if (_stopping) return;
    for (auto& [id, f] : _fetchers) {
        if (id != leader) f->parts.erase(tp);
    }
    auto& f = _fetchers[leader];
    if (!f) {
        f = std::make_unique<fetcher>();
        f->leader = leader;
        fetcher* raw = f.get();
        f->thread = std::thread([this, raw] { run(raw); });
    }
    auto it = f->parts.find(tp);
    if (it == f->parts.end() || it->second.epoch != epoch) f->parts[tp] = followed{epoch};
    _cv.notify_all();
}

void replica_fetchers::unfollow(const model::tp& tp) {
    std::lock_guard lock(_mu);
    for (auto& [id, f] : _fetchers) f->parts.erase(tp);
}

void replica_fetchers::run(fetcher* f) {
    using tools::connection;
    const int32_t self = _srv.node_id();
    const int32_t part_max = static_cast<int32_t>(_srv.config().int_value("replica.fetch.max.bytes"));
    std::unique_ptr<connection> conn;
    int64_t last_connect_error_log = 0;

    auto mark = [&](const model::tp& tp, int32_t epoch, auto&& change) {
        std::lock_guard lock(_mu);
        auto it = f->parts.find(tp);
        if (it != f->parts.end() && it->second.epoch == epoch) change(it->second);
    };
    auto pause = [&](int ms) {
        std::unique_lock lock(_mu);
        _cv.wait_for(lock, std::chrono::milliseconds(ms), [&] { return _stopping.load(); });
    };
    auto position = [&](const model::tp& tp) {
        return on_core<shard::replica_position>(
            _srv, tp, _stopping,
            [tp](shard& s, std::function<void(shard::replica_position)> reply) {
                reply(s.position(tp));
            });
    };
    auto truncate = [&](const model::tp& tp, int32_t epoch, int64_t offset) {
        auto r = on_core<bool>(_srv, tp, _stopping,
                               [tp, epoch, offset](shard& s, std::function<void(bool)> reply) {
                                   s.replica_truncate(tp, epoch, offset,
                                                      [reply](result<void> r) { reply(bool(r)); });
                               });
        return r.value_or(false);
    };

    // Where `tp`'s log diverges from the leader's: true when done (or nothing to do).
    auto find_divergence = [&](const model::tp& tp, int32_t epoch) -> bool {
        for (int round = 0; round < 16; ++round) {
            auto pos = position(tp);
            if (!pos || !pos->following || pos->epoch != epoch) return false;
            if (pos->latest_epoch < 0) {
                // No epoch history: keep only what the leader told us was committed.
                if (pos->log_end > pos->high_watermark && pos->log_end > pos->log_start) {
                    return truncate(tp, epoch, pos->high_watermark);
                }
                return true;
            }
            protocol::offset_for_leader_epoch_request req;
            req.replica_id = self;
            protocol::offset_for_leader_epoch_request::offset_for_leader_topic t;
            t.topic = tp.topic;
            protocol::offset_for_leader_epoch_request::offset_for_leader_partition p;
            p.partition = tp.partition();
            p.current_leader_epoch = epoch;
            p.leader_epoch = pos->latest_epoch;
            t.partitions.push_back(p);
            req.topics.push_back(std::move(t));
            auto resp = conn->call<protocol::offset_for_leader_epoch_api>(req);
            if (!resp) {
                conn.reset();
                return false;
            }
            if (resp->topics.empty() || resp->topics[0].partitions.empty()) return false;
            const auto& eo = resp->topics[0].partitions[0];
            if (eo.error_code != 0) return false;  // the leader has not taken over yet
            replication::epoch_end answer{model::leader_epoch(eo.leader_epoch),
                                          model::offset(eo.end_offset)};
            auto t2 = replication::truncation_point(pos->epochs, model::offset(pos->log_end),
                                                    model::offset(pos->high_watermark), answer);
            if (t2.offset() < pos->log_end && !truncate(tp, epoch, t2.offset())) return false;
            if (t2.done) return true;
        }
        return false;
    };

    while (!_stopping) {
        std::map<model::tp, followed> parts;
        {
            std::unique_lock lock(_mu);
            if (f->parts.empty()) {
                _cv.wait_for(lock, std::chrono::milliseconds(200));
                continue;
            }
            parts = f->parts;
        }
        if (!conn) {
            cluster* cl = _srv.cluster_member();
            auto view = cl->view();
            const auto* b = view->broker(f->leader);
            if (b == nullptr || b->endpoints.empty()) {
                pause(200);
                continue;
            }
            tools::connection_options o = _srv.inter_broker().client_options();
            o.client_id = "sluice-replica-" + std::to_string(self);
            o.timeout_ms = 5000;
            tools::broker_address addr{b->endpoints.front().host,
                                       static_cast<uint16_t>(b->endpoints.front().port)};
            auto c = connection::open(addr, o);
            if (!c) {
                if (now_ms() - last_connect_error_log > 5000) {
                    log::warn("replication", "broker ", self, " cannot reach leader ", f->leader,
                              " at ", addr.to_string(), ": ", c.error().describe());
                    last_connect_error_log = now_ms();
                }
                pause(200);
                continue;
            }
            conn = std::move(*c);
        }
        int64_t now = now_ms();
        // 1. Divergence checks of newly followed epochs.
        for (auto& [tp, fp] : parts) {
            if (fp.truncated || fp.retry_after_ms > now) continue;
            if (find_divergence(tp, fp.epoch)) {
                fp.truncated = true;
                mark(tp, fp.epoch, [](followed& x) { x.truncated = true; });
            } else {
                fp.retry_after_ms = now + 100;
                mark(tp, fp.epoch, [now](followed& x) { x.retry_after_ms = now + 100; });
            }
            if (!conn) break;
        }
        if (!conn) {
            pause(100);
            continue;
        }
        // 2. One fetch for every partition ready to copy.
        protocol::fetch_request req;
        req.replica_id = self;
        req.max_wait_ms = 500;
        req.min_bytes = 1;
        req.max_bytes = 64 << 20;
        req.isolation_level = 0;
        req.session_id = 0;
        req.session_epoch = -1;
        struct entry {
            model::tp tp;
            int32_t epoch;
            int64_t offset;
        };
        std::vector<entry> asked;
        for (auto& [tp, fp] : parts) {
            if (!fp.truncated || fp.retry_after_ms > now) continue;
            auto pos = position(tp);
            if (!pos || !pos->following || pos->epoch != fp.epoch) continue;
            if (req.topics.empty() || req.topics.back().topic != tp.topic) {
                protocol::fetch_request::fetch_topic t;
                t.topic = tp.topic;
                req.topics.push_back(std::move(t));
            }
            protocol::fetch_request::fetch_partition p;
            p.partition = tp.partition();
            p.current_leader_epoch = fp.epoch;
            p.fetch_offset = pos->log_end;
            p.log_start_offset = pos->log_start;
            p.partition_max_bytes = part_max;
            req.topics.back().partitions.push_back(p);
            asked.push_back({tp, fp.epoch, pos->log_end});
        }
        if (asked.empty()) {
            pause(50);
            continue;
        }
        auto resp = conn->call<protocol::fetch_api>(req, 12);
        if (!resp) {
            log::debug("replication", "fetch from leader ", f->leader, ": ", resp.error().describe());
            conn.reset();
            pause(100);
            continue;
        }
        bool backoff = false;
        for (const auto& tr : resp->responses) {
            for (const auto& pd : tr.partitions) {
                model::tp tp{tr.topic, model::partition_id(pd.partition_index)};
                const entry* e = nullptr;
                for (const auto& a : asked) {
                    if (a.tp == tp) e = &a;
                }
                if (e == nullptr) continue;
                auto err = static_cast<kafka_error>(pd.error_code);
                if (err == kafka_error::none) {
                    auto bytes = std::make_shared<std::vector<std::byte>>();
                    if (!pd.records.is_null()) {
                        auto mem = pd.records.memory();
                        bytes->assign(mem.begin(), mem.end());
                    }
                    int64_t hw = pd.high_watermark;
                    int32_t epoch = e->epoch;
                    auto appended = on_core<bool>(
                        _srv, tp, _stopping,
                        [tp, epoch, bytes, hw](shard& s, std::function<void(bool)> reply) {
                            s.replica_append(tp, epoch, bytes, hw, [reply, tp](result<int64_t> r) {
                                if (!r) {
                                    log::warn("replication", "appending to follower ",
                                              tp.dir_name(), ": ", r.error().describe());
                                }
                                reply(bool(r));
                            });
                        });
                    if (!appended.value_or(false)) {
                        // Check the divergence again before copying more.
                        mark(tp, epoch, [](followed& x) { x.truncated = false; });
                    }
                } else if (err == kafka_error::offset_out_of_range) {
                    if (e->offset < pd.log_start_offset) {
                        // The leader no longer has what follows our log end (retention): start
                        // over at its log start.
                        log::info("replication", tp.dir_name(), ": leader's log starts at ",
                                  pd.log_start_offset, ", past this replica's end ", e->offset);
                        truncate(tp, e->epoch, pd.log_start_offset);
                    }
                    mark(tp, e->epoch, [](followed& x) { x.truncated = false; });
                } else {
                    // NOT_LEADER_OR_FOLLOWER, FENCED/UNKNOWN_LEADER_EPOCH: the leader and this
                    // broker see different views for a moment.
                    int64_t at = now_ms() + 100;
                    mark(tp, e->epoch, [at](followed& x) { x.retry_after_ms = at; });
                    backoff = true;
                }
            }
        }
        if (backoff && asked.size() == 1) pause(50);
    }
}

}  // namespace sluice::broker
