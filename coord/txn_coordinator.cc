#include "coord/txn_coordinator.h"

#include <algorithm>
#include <limits>

#include "base/assert.h"
#include "base/log.h"
#include "model/record_batch.h"
#include "model/records.h"
#include "runtime/clock.h"

namespace sluice::coord {

namespace {

constexpr size_t load_chunk_bytes = size_t{1} << 20;
// Kafka bumps to a new producer id rather than let the epoch reach Short.MAX_VALUE.
constexpr int16_t max_epoch = std::numeric_limits<int16_t>::max() - 1;
// Requests of one id held while its previous change completes (beyond: CONCURRENT_TRANSACTIONS).
constexpr size_t max_waiting = 16;

bool preparing(txn_state s) {
    return s == txn_state::prepare_commit || s == txn_state::prepare_abort;
}
bool settled(txn_state s) {
    return s == txn_state::empty || s == txn_state::complete_commit ||
           s == txn_state::complete_abort;
}

}  // namespace

const char* txn_state_name(txn_state s) {
    switch (s) {
        case txn_state::empty: return "Empty";
        case txn_state::ongoing: return "Ongoing";
        case txn_state::prepare_commit: return "PrepareCommit";
        case txn_state::prepare_abort: return "PrepareAbort";
        case txn_state::complete_commit: return "CompleteCommit";
        case txn_state::complete_abort: return "CompleteAbort";
        case txn_state::dead: return "Dead";
        case txn_state::prepare_epoch_fence: return "PrepareEpochFence";
    }
    return "Unknown";
}

std::optional<txn_state> parse_txn_state(const std::string& name) {
    for (int8_t i = 0; i <= static_cast<int8_t>(txn_state::prepare_epoch_fence); ++i) {
        auto s = static_cast<txn_state>(i);
        const char* n = txn_state_name(s);
        if (name.size() == std::char_traits<char>::length(n) &&
            std::equal(name.begin(), name.end(), n,
                       [](char a, char b) { return std::tolower(a) == std::tolower(b); })) {
            return s;
        }
    }
    return std::nullopt;
}

struct txn_coordinator::entry {
    std::string id;
    // Tells this entry from a later one of the same id (the partition unloaded and loaded
    // again while a write or marker round ran): callbacks check it, not the address.
    uint64_t incarnation = 0;
    int32_t partition = 0;
    format::txn_value v;
    bool busy = false;                       // a state write in flight
    std::vector<txn_partition> markers_left;  // while preparing: partitions without a marker
    bool markers_in_flight = false;
    uint64_t retry_timer = 0;
    // CompleteCommit / CompleteAbort is e's state in memory but not in the log yet: its record
    // is written when complete_timer fires, unless the id's next state record (the producer's
    // next transaction, usually within a round trip) supersedes it first.
    bool completion_unwritten = false;
    uint64_t complete_timer = 0;
    // Requests that arrived while a state write or a completion ran: run again (in order)
    // once it is done, instead of making the client back off and retry.
    std::vector<std::function<void()>> waiting;
};

struct txn_coordinator::load_state {
    int64_t next = 0;
    std::map<std::string, format::txn_value> ids;
    size_t records = 0;
    size_t malformed = 0;
};

txn_coordinator::txn_coordinator(txn_coordinator_config cfg, runtime::clock& clock,
                                 timer_service& timers, log_storage& storage,
                                 marker_writer& markers, pid_allocator allocate_pid)
    : _cfg(cfg), _clock(clock), _timers(timers), _storage(storage), _markers(markers),
      _allocate_pid(std::move(allocate_pid)) {}

txn_coordinator::~txn_coordinator() = default;

uint64_t txn_coordinator::schedule(int64_t delay_ms, std::function<void()> fn) {
    return _owned_timers.schedule(delay_ms, std::move(fn));
}

void txn_coordinator::cancel(uint64_t& id) { _owned_timers.cancel(id); }

// ---- ownership and loading ----------------------------------------------------------------------

void txn_coordinator::load_owned() {
    for (int32_t p = 0; p < _cfg.state_partitions; ++p) {
        if (_parts.loaded.count(p) || _parts.loading.count(p) || !_storage.owns(p)) continue;
        _parts.loading[p] = std::make_unique<load_state>();
        load_step(p);
    }
    if (_check_timer == 0) schedule_check();
}

bool txn_coordinator::loaded(int32_t partition) const { return _parts.loaded.count(partition) > 0; }

void txn_coordinator::unload_lost() {
    std::set<int32_t> lost = _parts.drop_lost(_storage);
    if (lost.empty()) return;
    std::vector<std::function<void()>> answers;
    for (auto it = _ids.begin(); it != _ids.end();) {
        if (lost.count(it->second->partition)) {
            cancel(it->second->retry_timer);
            cancel(it->second->complete_timer);
            for (auto& w : it->second->waiting) answers.push_back(std::move(w));
            it = _ids.erase(it);
        } else {
            ++it;
        }
    }
    for (auto& a : answers) a();  // they hear NOT_COORDINATOR now
    log::info("coord", "no longer coordinating the transactions of ", lost.size(), " ",
              txn_topic, " partition(s)");
}

void txn_coordinator::load_step(int32_t partition) {
    auto it = _parts.loading.find(partition);
    if (it == _parts.loading.end()) return;
    load_state& st = *it->second;
    std::vector<std::byte> scratch;
    int64_t from = st.next;
    auto end = replay_chunk(_storage, partition, st.next, load_chunk_bytes, [&](
        const model::batch_header& h, std::span<const std::byte> b) {
        if (h.control()) return;
        auto r = model::for_each_record(b, h, scratch, [&](const model::record_view& rec) {
            ++st.records;
            if (!rec.key) return;
            auto id = format::decode_txn_key(*rec.key);
            if (!id) {
                ++st.malformed;
                return;
            }
            if (!rec.value) {
                st.ids.erase(*id);
                return;
            }
            auto v = format::decode_txn_value(*rec.value);
            if (!v) {
                ++st.malformed;
                return;
            }
            st.ids[*id] = std::move(*v);
        });
        if (!r) ++st.malformed;
    });
    if (!end) {
        log::error("coord", "loading ", txn_topic, "-", partition, " failed at offset ", from, ": ",
                   end.error().describe(), "; serving what was read");
        finish_load(partition, st);
    } else if (*end) {
        finish_load(partition, st);
    } else {
        schedule(0, [this, partition] { load_step(partition); });
    }
}

void txn_coordinator::finish_load(int32_t partition, load_state& st) {
    std::vector<std::string> resume;
    for (auto& [id, v] : st.ids) {
        if (v.state == txn_state::dead) continue;
        auto e = std::make_unique<entry>();
        e->incarnation = ++_incarnations;
        e->id = id;
        e->partition = partition;
        e->v = std::move(v);
        if (preparing(e->v.state)) {
            e->markers_left = e->v.partitions;
            resume.push_back(id);
        }
        _ids[id] = std::move(e);
    }
    if (st.records > 0 || st.malformed > 0) {
        log::info("coord", "loaded ", txn_topic, "-", partition, ": ", st.records, " record(s), ",
                  st.ids.size(), " transactional id(s), ", resume.size(),
                  " transaction(s) to complete", st.malformed ? ", malformed records: " : "",
                  st.malformed ? std::to_string(st.malformed) : std::string());
    }
    _parts.loading.erase(partition);
    _parts.loaded.insert(partition);
    // The previous coordinator decided these; this one writes their markers (again).
    for (const auto& id : resume) write_markers(id);
}

errc txn_coordinator::check_partition(const std::string& id, int32_t& partition) const {
    partition = partition_for(id, _cfg.state_partitions);
    if (_parts.loading.count(partition)) return errc::coordinator_load_in_progress;
    if (!_parts.loaded.count(partition)) {
        if (!_storage.owns(partition)) return errc::not_coordinator;
        // Owned but never loaded (the topic was just created, or leadership just arrived):
        // load now; a small partition finishes within this call.
        const_cast<txn_coordinator*>(this)->load_owned();
        if (_parts.loading.count(partition)) return errc::coordinator_load_in_progress;
        if (!_parts.loaded.count(partition)) return errc::not_coordinator;
    }
    return errc::none;
}

txn_coordinator::entry* txn_coordinator::find(const std::string& id) {
    auto it = _ids.find(id);
    return it == _ids.end() ? nullptr : it->second.get();
}

const txn_coordinator::entry* txn_coordinator::find(const std::string& id) const {
    auto it = _ids.find(id);
    return it == _ids.end() ? nullptr : it->second.get();
}

errc txn_coordinator::check_producer(const entry* e, int64_t producer_id,
                                     int16_t producer_epoch) const {
    if (e == nullptr || e->v.producer_id != producer_id) return errc::invalid_producer_id_mapping;
    if (e->v.producer_epoch != producer_epoch) return errc::producer_fenced;
    return errc::none;
}

// ---- persistence --------------------------------------------------------------------------------

void txn_coordinator::persist(entry& e, const format::txn_value& next,
                              std::function<void(bool)> done) {
    SLUICE_ASSERT(!e.busy, "one state write per transactional id at a time");
    model::batch_builder builder;
    auto key = format::encode_txn_key(e.id);
    std::optional<std::vector<std::byte>> value;
    if (next.state != txn_state::dead) value = format::encode_txn_value(next);
    model::nullable_bytes vb;
    if (value) vb = model::bytes_view(*value);
    builder.add(model::bytes_view(key), vb, _clock.now_ms());
    auto batch = builder.build();
    if (!batch) {
        log::error("coord", "cannot build a ", txn_topic, " batch: ", batch.error().describe());
        done(false);
        return;
    }
    e.busy = true;
    // This record supersedes a completion not written yet (the log's last record of the id
    // then says what the id is now); should it fail, the completion is written after all.
    const bool supersedes_completion = e.completion_unwritten;
    e.completion_unwritten = false;
    cancel(e.complete_timer);
    std::string id = e.id;
    const uint64_t self = e.incarnation;
    _storage.append(e.partition, std::move(*batch),
                    [this, id, self, next, supersedes_completion,
                     done = std::move(done)](bool ok) {
                        entry* cur = find(id);
                        if (cur == nullptr || cur->incarnation != self) {
                            // Unloaded (leadership moved) while the write ran.
                            done(false);
                            return;
                        }
                        cur->busy = false;
                        if (ok) cur->v = next;
                        if (!ok && supersedes_completion) defer_completion(*cur);
                        // Requests held meanwhile run again afterwards; `done` may even drop
                        // the id, and then they find it gone.
                        auto held = std::move(cur->waiting);
                        cur->waiting.clear();
                        done(ok);
                        for (auto& fn : held) fn();
                    });
}

bool txn_coordinator::wait_turn(entry& e, std::function<void()> retry) {
    if (e.waiting.size() >= max_waiting) return false;
    e.waiting.push_back(std::move(retry));
    return true;
}



void txn_coordinator::bump_epoch(format::txn_value& v) {
    if (v.producer_epoch < max_epoch) {
        ++v.producer_epoch;
        return;
    }
    auto pid = _allocate_pid();
    if (!pid) return;  // keeps the epoch; the caller's write still fences nothing newer
    v.producer_id = *pid;
    v.producer_epoch = 0;
}

// ---- requests -----------------------------------------------------------------------------------

void txn_coordinator::init_producer_id(init_pid_request req,
                                       std::function<void(init_pid_result)> done) {
    auto fail = [&](errc e) { done({e, -1, -1}); };
    if (req.transactional_id.empty()) return fail(errc::invalid_txn_state);
    if (req.timeout_ms <= 0 || req.timeout_ms > _cfg.max_timeout_ms) {
        return fail(errc::invalid_transaction_timeout);
    }
    int32_t partition = 0;
    if (auto e = check_partition(req.transactional_id, partition); e != errc::none) return fail(e);
    entry* e = find(req.transactional_id);
    int64_t now = _clock.now_ms();
    bool known = e != nullptr;
    if (e == nullptr) {
        auto pid = _allocate_pid();
        if (!pid) {
            log::error("coord", "cannot allocate a producer id: ", pid.error().describe());
            return fail(errc::coordinator_not_available);
        }
        auto fresh = std::make_unique<entry>();
        fresh->incarnation = ++_incarnations;
        fresh->id = req.transactional_id;
        fresh->partition = partition;
        fresh->v.producer_id = *pid;
        fresh->v.producer_epoch = -1;  // the write below makes it 0
        e = fresh.get();
        _ids[e->id] = std::move(fresh);
    }
    if (e->busy || preparing(e->v.state)) {
        auto again = [this, req, done] { init_producer_id(req, done); };
        if (known && wait_turn(*e, std::move(again))) return;
        return fail(errc::concurrent_transactions);
    }
    if (known && req.producer_id >= 0 &&
        (req.producer_id != e->v.producer_id || req.producer_epoch != e->v.producer_epoch)) {
        return fail(errc::producer_fenced);
    }
    if (e->v.state == txn_state::ongoing) {
        // A new incarnation of the producer: abort what the old one left open, fencing it.
        fence_and_abort(*e, "a new producer incarnation initialised");
        return fail(errc::concurrent_transactions);
    }
    format::txn_value next = e->v;
    if (next.producer_epoch < 0) {
        next.producer_epoch = 0;
    } else {
        bump_epoch(next);
    }
    next.timeout_ms = req.timeout_ms;
    next.state = txn_state::empty;
    next.partitions.clear();
    next.start_ms = -1;
    next.last_update_ms = now;
    std::string id = e->id;
    persist(*e, next, [this, id, done = std::move(done)](bool ok) {
        entry* cur = find(id);
        if (!ok || cur == nullptr) {
            // A first InitProducerId that was never written leaves nothing behind.
            if (cur != nullptr && cur->v.producer_epoch < 0) _ids.erase(id);
            done({errc::coordinator_not_available, -1, -1});
            return;
        }
        done({errc::none, cur->v.producer_id, cur->v.producer_epoch});
    });
}

void txn_coordinator::add_partitions(add_partitions_request req, std::function<void(errc)> done) {
    int32_t partition = 0;
    if (auto e = check_partition(req.transactional_id, partition); e != errc::none) return done(e);
    entry* e = find(req.transactional_id);
    if (auto err = check_producer(e, req.producer_id, req.producer_epoch); err != errc::none) {
        return done(err);
    }
    if (e->busy || preparing(e->v.state)) {
        // The previous transaction is completing: answer once it has.
        if (wait_turn(*e, [this, req, done] { add_partitions(req, done); })) return;
        return done(errc::concurrent_transactions);
    }
    if (e->v.state != txn_state::ongoing && !settled(e->v.state)) {
        return done(errc::invalid_txn_state);
    }
    std::set<txn_partition> all(e->v.partitions.begin(), e->v.partitions.end());
    size_t before = all.size();
    all.insert(req.partitions.begin(), req.partitions.end());
    if (e->v.state == txn_state::ongoing && all.size() == before) return done(errc::none);
    format::txn_value next = e->v;
    int64_t now = _clock.now_ms();
    if (next.state != txn_state::ongoing) next.start_ms = now;
    next.state = txn_state::ongoing;
    next.partitions.assign(all.begin(), all.end());
    next.last_update_ms = now;
    persist(*e, next, [done = std::move(done)](bool ok) {
        done(ok ? errc::none : errc::coordinator_not_available);
    });
}

void txn_coordinator::end_txn(end_txn_request req, std::function<void(errc)> done) {
    int32_t partition = 0;
    if (auto e = check_partition(req.transactional_id, partition); e != errc::none) return done(e);
    entry* e = find(req.transactional_id);
    if (auto err = check_producer(e, req.producer_id, req.producer_epoch); err != errc::none) {
        return done(err);
    }
    if (e->busy) {
        if (wait_turn(*e, [this, req, done] { end_txn(req, done); })) return;
        return done(errc::concurrent_transactions);
    }
    txn_state s = e->v.state;
    txn_state want_prepare = req.commit ? txn_state::prepare_commit : txn_state::prepare_abort;
    txn_state want_complete = req.commit ? txn_state::complete_commit : txn_state::complete_abort;
    if (s == want_complete) return done(errc::none);  // a retry of an EndTxn that completed
    if (s == want_prepare) return done(errc::concurrent_transactions);
    if (s != txn_state::ongoing) return done(errc::invalid_txn_state);
    format::txn_value next = e->v;
    next.state = want_prepare;
    next.last_update_ms = _clock.now_ms();
    std::string id = e->id;
    persist(*e, next, [this, id, done = std::move(done)](bool ok) {
        entry* cur = find(id);
        if (!ok || cur == nullptr) {
            done(errc::coordinator_not_available);
            return;
        }
        // The outcome is durable: answer now, then make every partition know it.
        cur->markers_left = cur->v.partitions;
        done(errc::none);
        write_markers(id);
    });
}

void txn_coordinator::fence_and_abort(entry& e, const char* why) {
    format::txn_value next = e.v;
    bump_epoch(next);
    next.state = txn_state::prepare_abort;
    next.last_update_ms = _clock.now_ms();
    log::info("coord", "aborting the transaction of '", e.id, "' (producer id ", e.v.producer_id,
              ", epoch ", e.v.producer_epoch, "): ", why);
    std::string id = e.id;
    persist(e, next, [this, id](bool ok) {
        entry* cur = find(id);
        if (cur == nullptr) return;
        if (!ok) {
            // Tried again by the next timeout check (or the producer's next InitProducerId).
            log::warn("coord", "could not write the abort of '", id, "'; will retry");
            return;
        }
        cur->markers_left = cur->v.partitions;
        write_markers(id);
    });
}

// ---- markers ------------------------------------------------------------------------------------

void txn_coordinator::write_markers(const std::string& id) {
    entry* e = find(id);
    if (e == nullptr || !preparing(e->v.state) || e->markers_in_flight) return;
    if (e->markers_left.empty()) {
        finish_markers(id);
        return;
    }
    marker_writer::marker m;
    m.producer_id = e->v.producer_id;
    m.producer_epoch = e->v.producer_epoch;
    m.commit = e->v.state == txn_state::prepare_commit;
    m.coordinator_epoch = _storage.leader_epoch(e->partition);
    e->markers_in_flight = true;
    const uint64_t self = e->incarnation;
    _markers.write(m, e->markers_left, [this, id, self](std::vector<txn_partition> failed) {
        entry* cur = find(id);
        // Unloaded meanwhile: the next coordinator finishes it.
        if (cur == nullptr || cur->incarnation != self) return;
        cur->markers_in_flight = false;
        cur->markers_left = std::move(failed);
        if (cur->markers_left.empty()) {
            finish_markers(id);
            return;
        }
        cur->retry_timer = schedule(_cfg.retry_backoff_ms, [this, id] {
            if (entry* again = find(id)) {
                again->retry_timer = 0;
                write_markers(id);
            }
        });
    });
}

// e's state once every partition has its marker.
format::txn_value txn_coordinator::completed(const format::txn_value& v) const {
    format::txn_value next = v;
    next.state = v.state == txn_state::prepare_commit ? txn_state::complete_commit
                                                      : txn_state::complete_abort;
    next.partitions.clear();
    next.start_ms = -1;
    next.last_update_ms = _clock.now_ms();
    return next;
}

void txn_coordinator::finish_markers(const std::string& id) {
    entry* e = find(id);
    if (e == nullptr || !preparing(e->v.state) || e->busy) return;
    if (_cfg.completion_write_delay_ms <= 0) {
        write_completion(id, completed(e->v));
        return;
    }
    // Every partition has its marker: the transaction is complete, and the producer's next
    // request may go ahead now. Its record can wait: until it is in the log, a coordinator that
    // loads the partition finds PrepareCommit / PrepareAbort and writes the markers again, which
    // changes nothing (a marker for a transaction already ended is a control batch that
    // readers skip).
    e->v = completed(e->v);
    defer_completion(*e);
    auto held = std::move(e->waiting);  // they may change e: run them from a copy
    e->waiting.clear();
    for (auto& fn : held) fn();
}

void txn_coordinator::defer_completion(entry& e) {
    e.completion_unwritten = true;
    cancel(e.complete_timer);
    std::string id = e.id;
    e.complete_timer = schedule(_cfg.completion_write_delay_ms, [this, id] {
        entry* cur = find(id);
        if (cur == nullptr) return;
        cur->complete_timer = 0;
        // A write in flight has superseded the completion (persist() cleared the flag).
        if (cur->completion_unwritten && !cur->busy) write_completion(id, cur->v);
    });
}

void txn_coordinator::write_completion(const std::string& id, const format::txn_value& next) {
    entry* e = find(id);
    if (e == nullptr || e->busy) return;
    persist(*e, next, [this, id](bool ok) {
        if (ok) return;
        entry* cur = find(id);
        if (cur == nullptr) return;
        if (!preparing(cur->v.state)) {
            // Deferred: an append that failed was re-armed by persist(); a record that never
            // reached the log (no batch built) is re-armed here.
            if (cur->completion_unwritten && cur->complete_timer == 0 && !cur->busy) {
                defer_completion(*cur);
            }
            return;
        }
        // Immediate (no delay): the state is still preparing; try again.
        cur->retry_timer = schedule(_cfg.retry_backoff_ms, [this, id] {
            if (entry* again = find(id)) {
                again->retry_timer = 0;
                finish_markers(id);
            }
        });
    });
}

// ---- timeouts, listing --------------------------------------------------------------------------

void txn_coordinator::schedule_check() {
    _check_timer = schedule(_cfg.abort_check_interval_ms, [this] {
        _check_timer = 0;
        check_timeouts();
        schedule_check();
    });
}

void txn_coordinator::check_timeouts() {
    int64_t now = _clock.now_ms();
    std::vector<std::string> expired_txns;
    std::vector<std::string> expired_ids;
    for (auto& [id, e] : _ids) {
        if (e->busy || !_parts.loaded.count(e->partition)) continue;
        if (e->v.state == txn_state::ongoing && e->v.start_ms >= 0 &&
            now - e->v.start_ms > e->v.timeout_ms) {
            expired_txns.push_back(id);
        } else if (settled(e->v.state) && e->v.last_update_ms >= 0 &&
                   now - e->v.last_update_ms > _cfg.id_expiration_ms) {
            expired_ids.push_back(id);
        } else if (preparing(e->v.state) && !e->markers_in_flight && e->retry_timer == 0) {
            write_markers(id);  // a completion whose write failed
        }
    }
    for (const auto& id : expired_txns) {
        if (entry* e = find(id)) fence_and_abort(*e, "transaction.timeout.ms passed");
    }
    for (const auto& id : expired_ids) {
        entry* e = find(id);
        if (e == nullptr) continue;
        format::txn_value next = e->v;
        next.state = txn_state::dead;
        persist(*e, next, [this, id](bool ok) {
            if (ok) {
                log::info("coord", "transactional id '", id, "' expired");
                _ids.erase(id);
            }
        });
    }
}

txn_description txn_coordinator::describe(const std::string& transactional_id) const {
    txn_description d;
    d.transactional_id = transactional_id;
    int32_t partition = 0;
    if (auto e = check_partition(transactional_id, partition); e != errc::none) {
        d.error = e;
        return d;
    }
    const entry* e = find(transactional_id);
    if (e == nullptr || e->v.producer_epoch < 0) {
        d.error = errc::transactional_id_not_found;
        return d;
    }
    d.state = e->v.state;
    d.timeout_ms = e->v.timeout_ms;
    d.start_ms = e->v.start_ms;
    d.producer_id = e->v.producer_id;
    d.producer_epoch = e->v.producer_epoch;
    d.partitions.insert(e->v.partitions.begin(), e->v.partitions.end());
    return d;
}

std::vector<txn_listing> txn_coordinator::list() const {
    std::vector<txn_listing> out;
    for (const auto& [id, e] : _ids) {
        if (e->v.producer_epoch < 0 || !_parts.loaded.count(e->partition)) continue;
        out.push_back({id, e->v.producer_id, e->v.state, e->v.start_ms});
    }
    std::sort(out.begin(), out.end(), [](const txn_listing& a, const txn_listing& b) {
        return a.transactional_id < b.transactional_id;
    });
    return out;
}

}  // namespace sluice::coord
