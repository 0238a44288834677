#include "broker/shard.h"

#include <algorithm>
#include <filesystem>
#include <functional>

#include "base/log.h"
#include "broker/fetch_session.h"
#include "broker/handlers.h"
#include "broker/log_dirs.h"
#include "broker/producer_snapshot.h"
#include "broker/replica_fetcher.h"
#include "broker/server.h"
#include "engine/errc.h"
#include "engine/retention.h"
#include "model/record_batch.h"
#include "model/records.h"
#include "runtime/clock.h"
#include "runtime/reactor.h"

namespace sluice::broker {

void partition::notify_waiters() {
    if (waiters.empty()) return;
    auto ws = std::move(waiters);
    waiters.clear();
    for (auto& [id, fn] : ws) fn();
}

shard::shard(server& srv, unsigned id, runtime::reactor& r) : _srv(srv), _id(id), _reactor(r) {}

shard::~shard() {
    if (_retention_timer != 0) _reactor.cancel_timer(_retention_timer);
    if (_snapshot_timer != 0) _reactor.cancel_timer(_snapshot_timer);
    if (_isr_timer != 0) _reactor.cancel_timer(_isr_timer);
}

fetch_session_cache& shard::fetch_sessions() {
    if (!_fetch_sessions) {
        // Kafka's slot count is for the whole broker; each core gets its share.
        auto slots = static_cast<size_t>(_srv.config().int_value("max.incremental.fetch.session.cache.slots"));
        _fetch_sessions = std::make_unique<fetch_session_cache>((slots + _srv.cores() - 1) / _srv.cores());
    }
    return *_fetch_sessions;
}

partition* shard::find(const model::tp& tp) {
    auto it = _partitions.find(tp);
    return it == _partitions.end() ? nullptr : it->second.get();
}

kafka_error shard::missing(const model::tp& tp) const {
    return offline(tp) ? kafka_error::kafka_storage_error : kafka_error::unknown_topic_or_partition;
}

void shard::take_dir_offline(const std::string& dir) {
    error why(engine::errc::io_error, "log dir " + dir + " is offline");
    for (auto& [tp, p] : _partitions) {
        if (std::filesystem::path(p->log->dir()).parent_path() == std::filesystem::path(dir)) {
            p->log->take_offline(why);
            _srv.note_offline(tp);
            if (_srv.cluster_member() == nullptr) continue;
            // A replica that cannot write neither follows nor leads; the controller moves its
            // leadership and ISR place once it reads the published offline replicas.
            _srv.fetchers().unfollow(tp);
            stop_leading(*p, kafka_error::kafka_storage_error);
            p->role = replica_role::offline;
        }
    }
}

// An I/O error that stops a partition takes its whole log dir offline (Kafka's JBOD rule: a
// failing disk is not trusted for any partition); corrupt data stops that partition alone.
bool shard::in_offline_dir(const partition& p) const {
    auto dir = std::filesystem::path(p.log->dir()).parent_path().string();
    return _srv.log_dirs().offline_reason(dir).has_value();
}

void shard::watch_failures(partition& p) {
    std::string dir = std::filesystem::path(p.log->dir()).parent_path().string();
    p.log->on_failure([this, dir](const error& e) {
        if (e.is(engine::errc::io_error)) _srv.log_dir_failed(dir, e.describe());
    });
}

result<partition*> shard::open_partition(const model::tp& tp, const config_map& effective,
                                         bool created) {
    if (auto* p = find(tp)) return p;
    auto home = _srv.log_dirs().place(tp, created);
    if (!home) {
        _offline.insert(tp);
        _srv.note_offline(tp);
        return error(engine::errc::partition_failed,
                     tp.dir_name() + " is in no online log dir (one is offline)");
    }
    _offline.erase(tp);
    engine::log_config cfg = make_log_config(effective);
    cfg.append_buffer_max_bytes =
        static_cast<uint64_t>(_srv.config().int_value("sluice.append.buffer.bytes"));
    cfg.inline_write_bytes =
        static_cast<uint64_t>(_srv.config().int_value("sluice.inline.write.bytes"));
    auto log = engine::partition_log::open(_reactor, engine::posix_file_system::instance(),
                                           *home, tp, cfg,
                                           runtime::system_clock::instance());
    if (!log) {
        if (log.error().is(engine::errc::io_error)) {
            _offline.insert(tp);
            _srv.note_offline(tp);
            _srv.log_dir_failed(*home, log.error().describe());
        }
        return log.error();
    }
    auto p = std::make_unique<partition>();
    p->tp = tp;
    p->log = std::move(*log);
    p->config = effective;
    if (auto st = p->log->status(); !st) {
        log::error("broker", "partition ", tp.dir_name(), " is offline: ", st.error().describe());
    }
    if (auto r = p->txns.load(p->log->dir(), p->log->log_start_offset()()); !r) {
        log::warn("broker", "reading the aborted-transaction index of ", tp.dir_name(), ": ",
                  r.error().describe());
    } else if (auto t = p->txns.truncate(p->log->log_end_offset()()); !t) {
        // An entry past the log end names a marker that was never written (its append failed,
        // or a crash lost the tail): it must not describe offsets that will be reused.
        log::warn("broker", "trimming the aborted-transaction index of ", tp.dir_name(), ": ",
                  t.error().describe());
    }
    rebuild_producer_state(*p);
    auto* raw = p.get();
    _partitions[tp] = std::move(p);
    watch_failures(*raw);
    return raw;
}

void shard::rebuild_producer_state(partition& p) {
    // Replay batch headers so that a producer retrying across a restart is still recognised and
    // open transactions are known again (they hold back the last stable offset). The replay
    // starts at the producer-state snapshot when one is valid, else at the log start.
    if (p.log->failed()) return;
    int64_t from = p.log->log_start_offset()();
    int64_t end = p.log->log_end_offset()();
    if (auto at = load_producer_snapshot(p.log->dir(), from, end, p.producers, p.txns)) {
        from = *at;
        p.snapshot_at = *at;
    }
    p.tracked_end = std::max(p.tracked_end, from);
    std::vector<std::byte> buf;
    while (from < end) {
        auto r = p.log->read(model::offset(from), 1 << 20, model::offset(end), true);
        if (!r || r->regions.empty()) break;
        for (const auto& region : r->regions) {
            buf.resize(region.length);
            ssize_t n = ::pread(region.file->get(), buf.data(), region.length,
                                static_cast<off_t>(region.offset));
            if (n != static_cast<ssize_t>(region.length)) return;
            model::batch_iterator it(buf);
            model::batch_header h;
            std::span<const std::byte> b;
            while (it.next(h, b)) track_batch(p, h, b);
        }
        if (r->last_offset() < from) break;
        from = r->last_offset() + 1;
    }
}

void shard::track_batch(partition& p, const model::batch_header& h,
                        std::span<const std::byte> batch) {
    p.tracked_end = std::max(p.tracked_end, h.last_offset() + 1);
    if (h.producer_id < 0) return;
    if (!h.control()) {
        p.producers.commit({h.producer_id, h.producer_epoch, h.base_sequence, h.record_count},
                           h.base_offset, h.last_offset());
        if (h.transactional()) p.txns.on_data(h.producer_id, h.base_offset);
        return;
    }
    std::vector<std::byte> scratch;
    std::optional<model::control_marker> marker;
    auto r = model::for_each_record(batch, h, scratch, [&](const model::record_view& rec) {
        if (auto m = model::parse_control_record(rec)) marker = *m;
    });
    if (!r || !marker) return;
    bool commit = marker->type == model::control_type::commit;
    if (!commit && marker->type != model::control_type::abort) return;
    p.producers.on_marker(h.producer_id, h.producer_epoch);
    int64_t lso = p.last_stable_offset();
    auto seg = p.log->active_segment().base_offset();
    if (auto w = p.txns.on_marker(h.producer_id, commit, h.base_offset, seg, lso); !w) {
        log::error("broker", "writing the aborted-transaction index of ", p.tp.dir_name(), ": ",
                   w.error().describe());
    }
}

void shard::open_owned_partitions() {
    if (_srv.cluster_member() != nullptr) {
        // Replicas open as the cluster view names them (reconcile()).
        schedule_retention();
        schedule_snapshots();
        schedule_isr_check();
        start_groups(*this);
        start_txns(*this);
        return;
    }
    auto snap = _srv.metadata().snapshot();
    for (const auto& [name, t] : *snap) {
        auto eff = _srv.effective_config(t);
        for (int32_t i = 0; i < t.partitions; ++i) {
            model::tp tp{name, model::partition_id(i)};
            if (_srv.owner_of(tp) != _id) continue;
            if (auto r = open_partition(tp, eff); !r) {
                log::error("broker", "cannot open ", tp.dir_name(), ": ", r.error().describe());
            }
        }
    }
    schedule_retention();
    schedule_snapshots();
    start_groups(*this);
    start_txns(*this);
}

void shard::close_partition(const model::tp& tp, bool remove_files, std::function<void()> done) {
    auto it = _partitions.find(tp);
    if (it == _partitions.end()) {
        done();
        return;
    }
    std::shared_ptr<partition> p(std::move(it->second));
    _partitions.erase(it);
    p->notify_waiters();
    // Produces still waiting for room were never appended: the client retries them against
    // the partition's new home (or learns that it is gone).
    for (auto& h : p->held) {
        if (h.notify) h.notify(false);
        h.done({kafka_error::not_leader_or_follower, p->tp.dir_name() + " closed while waiting"});
    }
    p->held.clear();
    if (p->role != replica_role::single) stop_leading(*p, kafka_error::not_leader_or_follower);
    p->compactor.reset();  // cancels a running compaction and waits for its worker
    p->log->close([p, remove_files, done = std::move(done)](result<void> r) {
        if (!r) log::warn("broker", "closing ", p->tp.dir_name(), ": ", r.error().describe());
        std::string dir = p->log->dir();
        if (r && !remove_files) save_snapshot(*p);
        p->log.reset();
        if (remove_files) {
            std::error_code ec;
            std::filesystem::remove_all(dir, ec);
            if (ec) log::warn("broker", "removing ", dir, ": ", ec.message());
        }
        done();
    });
}

void shard::update_topic_config(const std::string& topic, const config_map& effective) {
    // Retention and the other broker-side settings are read from p->config on every use. The
    // engine takes its settings at open, so partitions are reopened only when one of those
    // changed.
    static const char* engine_keys[] = {"segment.bytes", "segment.ms", "segment.index.bytes",
                                        "index.interval.bytes", "max.message.bytes",
                                        "message.timestamp.type", "flush.messages", "flush.ms",
                                        "preallocate", "sluice.fsync"};
    std::vector<model::tp> reopen;
    for (auto& [tp, p] : _partitions) {
        if (tp.topic != topic) continue;
        bool engine_changed = false;
        for (const char* k : engine_keys) {
            auto a = p->config.find(k);
            auto b = effective.find(k);
            if ((a == p->config.end()) != (b == effective.end()) ||
                (a != p->config.end() && a->second != b->second)) {
                engine_changed = true;
            }
        }
        p->config = effective;
        if (engine_changed) reopen.push_back(tp);
    }
    for (auto& tp : reopen) {
        close_partition(tp, false, [this, tp, effective] {
            if (auto r = open_partition(tp, effective); !r) {
                log::error("broker", "reopening ", tp.dir_name(), ": ", r.error().describe());
            }
        });
    }
}

void shard::close_all(std::function<void()> done) {
    _closing = true;
    if (_srv.cluster_member() != nullptr) checkpoint_high_watermarks();
    if (_partitions.empty()) {
        done();
        return;
    }
    auto remaining = std::make_shared<size_t>(_partitions.size());
    std::vector<model::tp> tps;
    for (auto& [tp, p] : _partitions) tps.push_back(tp);
    for (auto& tp : tps) {
        close_partition(tp, false, [remaining, done] {
            if (--*remaining == 0) done();
        });
    }
}

void shard::produce(const model::tp& tp, std::span<std::byte> batches,
                    std::function<void(produce_part_result)> done, hold_notifier notify,
                    produce_opts opts) {
    partition* p = find(tp);
    if (p == nullptr) {
        done({missing(tp), (offline(tp) ? "offline partition " : "unknown partition ") + tp.dir_name()});
        return;
    }
    if (!p->held.empty() || !p->log->has_room(batches.size())) {
        if (p->produces_held++ == 0) {
            log::info("broker", "produces to ", tp.dir_name(),
                      " wait for room in the append buffer (sluice.append.buffer.bytes=",
                      p->log->config().append_buffer_max_bytes, "); logged once per partition");
        }
        if (notify) notify(true);
        p->held.push_back({batches, std::move(done), std::move(notify), opts});
        if (p->held.size() == 1) wait_for_room(*p);
        return;
    }
    append_now(p, batches, std::move(done), opts);
}

void shard::wait_for_room(partition& p) {
    p.log->when_room(p.held.front().batches.size(), [this, tp = p.tp] { admit_held(tp); });
}

void shard::admit_held(const model::tp& tp) {
    partition* p = find(tp);
    if (p == nullptr) return;  // closed: close_partition answered what waited
    while (!p->held.empty()) {
        auto& front = p->held.front();
        if (!p->log->failed() && !p->log->has_room(front.batches.size())) {
            wait_for_room(*p);
            return;
        }
        held_produce h = std::move(front);
        p->held.pop_front();
        if (h.notify) h.notify(false);
        // A failed or closing log answers through append's callback with its error.
        append_now(p, h.batches, std::move(h.done), h.opts);
    }
}

void shard::append_now(partition* p, std::span<std::byte> batches,
                       std::function<void(produce_part_result)> done, produce_opts opts) {
    if (p->role != replica_role::single) {
        // Only the leader appends, and only while its lease says no one else can be leader.
        if (!leads(*p)) {
            done({kafka_error::not_leader_or_follower,
                  "broker " + std::to_string(_srv.node_id()) + " does not lead " +
                      p->tp.dir_name() + " (leader " + std::to_string(p->leader_id) + ")"});
            return;
        }
        if (opts.wait_isr) {
            int32_t min_isr = static_cast<int32_t>(std::stoll(p->config.at("min.insync.replicas")));
            if (static_cast<int32_t>(p->leader->isr().size()) < min_isr) {
                done({kafka_error::not_enough_replicas,
                      "ISR of " + p->tp.dir_name() + " has " +
                          std::to_string(p->leader->isr().size()) +
                          " replica(s), min.insync.replicas=" + std::to_string(min_isr)});
                return;
            }
        }
    }
    // Idempotence: check every batch's producer sequence before anything is appended.
    model::batch_iterator it(batches);
    model::batch_header h;
    std::span<const std::byte> b;
    std::vector<producer_state::batch_info> infos;
    while (it.next(h, b)) {
        if (h.control() && !opts.internal) {
            done({kafka_error::invalid_record, "a client may not write control batches"});
            return;
        }
        if (h.transactional() && h.producer_id < 0) {
            done({kafka_error::invalid_record, "a transactional batch needs a producer id"});
            return;
        }
        producer_state::batch_info info{h.producer_id, h.producer_epoch, h.base_sequence,
                                        h.record_count};
        auto d = p->producers.check(info);
        switch (d.v) {
            case producer_state::verdict::accept:
                break;
            case producer_state::verdict::duplicate:
                // A retry of a batch already written: acknowledge it with its first offsets.
                if (infos.empty() && it.remaining() == 0) {
                    done({kafka_error::none, {}, d.base_offset, -1, p->log->log_start_offset()()});
                    return;
                }
                done({kafka_error::duplicate_sequence_number, "duplicate batch among others"});
                return;
            case producer_state::verdict::out_of_order:
                done({kafka_error::out_of_order_sequence_number,
                      "sequence " + std::to_string(h.base_sequence) + " is out of order"});
                return;
            case producer_state::verdict::fenced_epoch:
                done({kafka_error::invalid_producer_epoch, "producer epoch is stale"});
                return;
            case producer_state::verdict::unknown_producer:
                done({kafka_error::unknown_producer_id, "no state for this producer id"});
                return;
        }
        infos.push_back(info);
    }
    if (infos.empty()) {
        done({kafka_error::corrupt_message, "no complete record batch in the request"});
        return;
    }
    // Mark the base offsets so that we can tell, once append() returns, whether the engine
    // accepted the batches (it rewrites them in place before returning).
    std::vector<std::span<std::byte>> spans;
    {
        model::batch_iterator it2(batches);
        std::span<const std::byte> cb;
        size_t pos = 0;
        while (it2.next(h, cb)) {
            auto s = batches.subspan(pos, cb.size());
            model::set_base_offset(s, -1);
            spans.push_back(s);
            pos += cb.size();
        }
    }
    int64_t start = p->log->log_start_offset()();
    engine::append_options aopts;
    // A single broker leads from epoch 0.
    aopts.leader_epoch = model::leader_epoch(p->leader_epoch);
    int32_t epoch = p->leader_epoch;
    p->log->append(batches, aopts, [this, p, tp = p->tp, epoch, opts, done = std::move(done),
                                    start](result<engine::append_result> r) mutable {
        if (!r) {
            done({to_kafka_error(r.error()), r.error().describe()});
            return;
        }
        produce_part_result ok{kafka_error::none, {}, r->base_offset(), r->log_append_time(), start,
                               r->last_offset()};
        if (p->role == replica_role::single) {
            p->notify_waiters();
            done(ok);
            return;
        }
        if (find(tp) != p || !p->leader || p->leader_epoch != epoch) {
            // Written, but leadership moved before the ISR could confirm it: the client
            // retries (an idempotent producer's retry is recognised as a duplicate).
            done({kafka_error::not_leader_or_follower, tp.dir_name() + " changed leader"});
            return;
        }
        if (p->leader->on_append(model::offset(p->log->log_end_offset()()))) complete_acks(*p);
        p->notify_waiters();
        if (!opts.wait_isr) {
            done(ok);
            return;
        }
        wait_for_isr(*p, ok, opts, std::move(done));
    });
    for (size_t i = 0; i < spans.size(); ++i) {
        auto hdr = model::parse_header(spans[i]);
        if (!hdr || hdr->base_offset < 0) break;  // rejected; the callback reports why
        track_batch(*p, *hdr, spans[i]);
    }
}

fetch_part_result shard::fetch(const model::tp& tp, int64_t offset, int32_t max_bytes,
                               bool read_committed, bool min_one_batch, int32_t replica_id,
                               int32_t current_leader_epoch) {
    fetch_part_result out;
    partition* p = find(tp);
    if (p == nullptr) {
        out.error = missing(tp);
        return out;
    }
    if (current_leader_epoch >= 0 && current_leader_epoch != p->leader_epoch) {
        out.error = current_leader_epoch > p->leader_epoch ? kafka_error::unknown_leader_epoch
                                                           : kafka_error::fenced_leader_epoch;
        return out;
    }
    bool replica = false;
    if (p->role != replica_role::single) {
        if (!p->leader) {
            out.error = kafka_error::not_leader_or_follower;
            return out;
        }
        if (replica_id >= 0) {
            replica = true;
            int64_t now = runtime::system_clock::instance().now_ms();
            if (offset <= p->log->log_end_offset()() &&
                p->leader->on_fetch(model::node_id(replica_id), model::offset(offset), now)) {
                complete_acks(*p);
                p->notify_waiters();
            }
            if (!p->isr_change_in_flight && !p->leader->in_isr(model::node_id(replica_id))) {
                auto j = p->leader->joinable();
                if (std::find(j.begin(), j.end(), model::node_id(replica_id)) != j.end()) {
                    check_isr(*p, replica_id);
                }
            }
        }
    }
    out.high_watermark = p->high_watermark();
    out.last_stable_offset = p->last_stable_offset();
    out.log_start_offset = p->log->log_start_offset()();
    if (auto st = p->log->status(); !st) {
        out.error = kafka_error::kafka_storage_error;
        return out;
    }
    int64_t upper = read_committed ? out.last_stable_offset : out.high_watermark;
    if (replica) upper = p->log->log_end_offset()();  // followers copy what is not committed yet
    if (offset < out.log_start_offset || offset > upper) {
        out.error = kafka_error::offset_out_of_range;
        return out;
    }
    if (offset == upper || max_bytes <= 0) return out;
    auto r = p->log->read(model::offset(offset), static_cast<size_t>(max_bytes),
                          model::offset(upper), min_one_batch);
    if (!r) {
        out.error = to_kafka_error(r.error());
        return out;
    }
    out.regions = std::move(r->regions);
    out.bytes = r->total_bytes;
    if (read_committed && !replica && r->last_offset() >= offset) {
        for (const auto& a : p->txns.aborted_between(offset, r->last_offset() + 1)) {
            out.aborted.emplace_back(a.producer_id, a.first_offset);
        }
    }
    return out;
}

offset_lookup_result shard::list_offset(const model::tp& tp, int64_t timestamp,
                                        bool read_committed) {
    offset_lookup_result out;
    partition* p = find(tp);
    if (p == nullptr) {
        out.error = missing(tp);
        return out;
    }
    if (p->role != replica_role::single && !p->leader) {
        out.error = kafka_error::not_leader_or_follower;
        return out;
    }
    out.leader_epoch = p->leader_epoch;
    if (timestamp == engine::partition_log::latest_timestamp) {
        out.offset = read_committed ? p->last_stable_offset() : p->high_watermark();
        return out;
    }
    if (timestamp == engine::partition_log::earliest_timestamp) {
        out.offset = p->log->log_start_offset()();
        return out;
    }
    auto r = p->log->offset_for_timestamp(model::timestamp_ms(timestamp));
    if (!r) {
        out.error = to_kafka_error(r.error());
        return out;
    }
    if (*r) {
        out.offset = (*r)->offset();
        out.timestamp = (*r)->timestamp();
    }
    return out;
}

void shard::add_waiter(const std::vector<model::tp>& tps, uint64_t id, std::function<void()> fn) {
    auto shared = std::make_shared<std::function<void()>>(std::move(fn));
    for (const auto& tp : tps) {
        if (partition* p = find(tp)) p->waiters[id] = [shared] { (*shared)(); };
    }
}

void shard::remove_waiter(const std::vector<model::tp>& tps, uint64_t id) {
    for (const auto& tp : tps) {
        if (partition* p = find(tp)) p->waiters.erase(id);
    }
}

result<int64_t> shard::delete_records(const model::tp& tp, int64_t before_offset) {
    partition* p = find(tp);
    if (p == nullptr) return error(engine::errc::invalid_argument, "unknown partition");
    int64_t target = before_offset < 0 ? p->high_watermark() : before_offset;
    if (target > p->high_watermark()) {
        return error(engine::errc::offset_out_of_range, std::to_string(target));
    }
    if (auto r = p->log->delete_records_before(model::offset(target)); !r) return r.error();
    p->txns.drop_before(p->log->log_start_offset()());
    return p->log->log_start_offset()();
}

void shard::save_snapshot(partition& p) {
    // Only a quiet partition: the state must not include appends whose write is still running
    // (they would be lost in a crash, and the snapshot would remember them).
    int64_t end = p.log->log_end_offset()();
    if (p.log->failed() || p.tracked_end > end || p.snapshot_at == end) return;
    if (auto r = save_producer_snapshot(p.log->dir(), end, p.producers, p.txns); !r) {
        log::warn("broker", "writing the producer snapshot of ", p.tp.dir_name(), ": ",
                  r.error().describe());
        return;
    }
    p.snapshot_at = end;
    p.snapshot_synced_at = -1;  // the new file is not durable yet
}

void shard::schedule_snapshots() {
    int64_t interval = _srv.config().int_value("sluice.producer.snapshot.interval.ms");
    _snapshot_timer = _reactor.add_timer(std::chrono::milliseconds(interval), [this] {
        _snapshot_timer = 0;
        if (_closing) return;
        for (auto& [tp, p] : _partitions) save_snapshot(*p);
        schedule_snapshots();
    });
}

void shard::schedule_retention() {
    int64_t interval = _srv.config().int_value("log.retention.check.interval.ms");
    _retention_timer = _reactor.add_timer(std::chrono::milliseconds(interval), [this] {
        _retention_timer = 0;
        if (_closing) return;
        run_retention();
        schedule_retention();
    });
}

}  // namespace sluice::broker

namespace sluice::broker {

void shard::run_retention() {
    int64_t now = runtime::system_clock::instance().now_ms();
    for (auto& [tp, p] : _partitions) {
        auto policy = p->config.find("cleanup.policy");
        if (policy != p->config.end() && policy->second.find("compact") != std::string::npos) {
            maybe_compact(*p, now);
        }
        if (policy != p->config.end() && policy->second.find("delete") == std::string::npos) {
            continue;  // compact-only topics keep every segment
        }
        engine::retention_policy rp;
        rp.retention_ms = std::stoll(p->config.at("retention.ms"));
        rp.retention_bytes = std::stoll(p->config.at("retention.bytes"));
        auto r = engine::enforce_retention(*p->log, rp, now);
        if (!r) {
            log::warn("broker", "retention on ", tp.dir_name(), ": ", r.error().describe());
        } else if (*r > 0) {
            p->txns.drop_before(p->log->log_start_offset()());
            p->retention_deleted_segments += *r;
            log::info("broker", "retention deleted ", *r, " segment(s) of ", tp.dir_name(),
                      "; log start offset is now ", p->log->log_start_offset()());
        }
    }
}

int64_t shard::marker_removal_bound(partition& p) {
    // A follower keeps every marker: replicas that lag its future leadership may still need
    // them, and it cannot see how far they are.
    if (p.role == replica_role::follower || p.role == replica_role::offline) return 0;
    int64_t below = INT64_MAX;
    if (p.leader) {
        // Followers must still copy every marker they have not reached (a follower holding a
        // transaction's records but never its marker would keep it open for ever).
        for (auto id : p.leader->replicas()) {
            if (id == p.leader->self()) continue;
            auto leo = p.leader->follower_log_end(id);
            below = std::min<int64_t>(below, leo ? (*leo)() : 0);
        }
    }
    if (p.snapshot_at >= 0) {
        // A restart replays from the producer snapshot, and must meet every marker past it: the
        // snapshot is made durable first, so that no older one can come back after a crash.
        if (p.snapshot_synced_at != p.snapshot_at) {
            if (auto r = sync_producer_snapshot(p.log->dir()); !r) {
                log::warn("broker", "syncing the producer snapshot of ", p.tp.dir_name(), ": ",
                          r.error().describe(), "; transaction markers stay");
                return 0;
            }
            p.snapshot_synced_at = p.snapshot_at;
        }
        below = std::min(below, p.snapshot_at);
    }
    return below;
}

void shard::maybe_compact(partition& p, int64_t now_ms) {
    if (p.log->failed()) return;
    auto closed = p.log->closed_segments();
    if (closed.empty() || closed.back().next_offset() == p.compacted_up_to) return;
    if (!p.compactor) p.compactor = std::make_unique<engine::compactor>();
    if (p.compactor->running()) return;
    engine::compaction_options opts;
    opts.delete_retention_ms = std::stoll(p.config.at("delete.retention.ms"));
    opts.clean_below_offset = p.last_stable_offset();
    opts.marker_removal_below = marker_removal_bound(p);
    opts.before_markers_removed = [this, tp = p.tp](const auto& markers) {
        partition* q = find(tp);
        if (q == nullptr) return false;
        if (auto w = q->txns.forget_markers(markers); !w) {
            log::error("broker", "rewriting the aborted-transaction index of ", tp.dir_name(),
                       ": ", w.error().describe(), "; its markers stay");
            return false;
        }
        return true;
    };
    for (const auto& a : p.txns.aborted()) {
        opts.aborted[a.producer_id].emplace_back(a.first_offset, a.last_offset);
    }
    int64_t target = closed.back().next_offset();
    bool whole = target <= opts.clean_below_offset;
    auto r = p.compactor->start(
        *p.log, engine::posix_file_system::instance(), _reactor, std::move(opts), now_ms,
        [this, tp = p.tp, target, whole](result<engine::compaction_stats> s) {
            partition* q = find(tp);
            if (!s) {
                log::warn("broker", "compacting ", tp.dir_name(), ": ", s.error().describe());
                return;
            }
            // A pass that removed something runs again at the next check even if no segment
            // closed meanwhile: markers whose records it removed go in that second pass.
            if (q != nullptr && whole && s->segments_rewritten == 0) q->compacted_up_to = target;
            if (s->segments_rewritten > 0) {
                log::info("broker", "compacted ", tp.dir_name(), ": ", s->segments_rewritten,
                          " segment(s) rewritten, ", s->records_superseded, " superseded, ",
                          s->tombstones_dropped, " tombstone(s), ", s->aborted_records_dropped,
                          " aborted record(s) and ", s->markers_removed.size(),
                          " transaction marker(s) dropped");
            }
        });
    if (!r) log::warn("broker", "compacting ", p.tp.dir_name(), ": ", r.error().describe());
}

}  // namespace sluice::broker
