#include "coord/group_coordinator.h"

#include <algorithm>
#include <cstdio>
#include <random>

#include "base/assert.h"
#include "base/log.h"
#include "model/record_batch.h"
#include "model/records.h"
#include "runtime/clock.h"

namespace sluice::coord {

struct group_coordinator::member {
    std::string id;
    std::optional<std::string> instance_id;
    std::string client_id;
    std::string client_host;
    int32_t session_timeout_ms = 0;
    int32_t rebalance_timeout_ms = 0;
    std::vector<protocol_entry> protocols;
    bytes assignment;
    std::function<void(join_result)> awaiting_join;
    std::function<void(sync_result)> awaiting_sync;
    uint64_t heartbeat_timer = 0;

    const bytes* metadata_for(const std::optional<std::string>& name) const {
        if (!name) return nullptr;
        for (const auto& p : protocols) {
            if (p.name == *name) return &p.metadata;
        }
        return nullptr;
    }
};

struct group_coordinator::group {
    std::string id;
    int32_t partition = 0;
    group_state state = group_state::empty;
    int32_t generation = 0;
    std::string protocol_type;
    std::optional<std::string> protocol_name;
    std::string leader_id;
    std::map<std::string, member> members;
    std::map<std::string, std::string> static_members;  // instance id -> member id
    std::map<std::string, uint64_t> pending_members;     // member id -> expiry timer
    std::map<partition_ref, committed_offset> offsets;
    // Transactional commits not yet committed or aborted, by producer id.
    std::map<int64_t, std::map<partition_ref, committed_offset>> txn_offsets;
    int64_t state_timestamp_ms = -1;
    uint64_t join_timer = 0;
    bool initial_delay = false;     // the first rebalance of an empty group is waiting
    bool new_member_added = false;  // someone joined during the current initial delay
};

// Replay of one __consumer_offsets partition: the latest value of every key so far.
struct group_coordinator::load_state {
    int64_t next = 0;
    std::map<std::string, format::group_value> groups;
    std::map<std::string, std::map<partition_ref, committed_offset>> offsets;
    // Transactional commits whose marker is not read yet: producer id -> group -> offsets.
    std::map<int64_t, std::map<std::string, std::map<partition_ref, committed_offset>>> pending;
    uint64_t records = 0;
    uint64_t malformed = 0;
};

namespace {

constexpr size_t load_chunk_bytes = 1u << 20;

bool same_protocols(const std::vector<protocol_entry>& a, const std::vector<protocol_entry>& b) {
    if (a.size() != b.size()) return false;
    for (size_t i = 0; i < a.size(); ++i) {
        if (a[i].name != b[i].name || a[i].metadata != b[i].metadata) return false;
    }
    return true;
}

// The topics of a consumer-protocol subscription (version int16, topics [string]); empty when
// the bytes do not parse.
std::vector<std::string> subscribed_topics(const bytes& b) {
    std::vector<std::string> out;
    size_t pos = 0;
    auto need = [&](size_t n) { return b.size() - pos >= n; };
    auto be = [&](int n) {
        uint64_t v = 0;
        for (int i = 0; i < n; ++i) v = (v << 8) | static_cast<uint8_t>(b[pos++]);
        return v;
    };
    if (!need(6)) return out;
    pos += 2;
    auto count = static_cast<int32_t>(be(4));
    for (int32_t i = 0; i < count; ++i) {
        if (!need(2)) return {};
        auto len = static_cast<int16_t>(be(2));
        if (len < 0 || !need(static_cast<size_t>(len))) return {};
        out.emplace_back(reinterpret_cast<const char*>(b.data() + pos), static_cast<size_t>(len));
        pos += static_cast<size_t>(len);
    }
    return out;
}

uint64_t splitmix(uint64_t& x) {
    uint64_t z = (x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

}  // namespace

const char* errc_name(errc e) {
    switch (e) {
        case errc::none: return "none";
        case errc::coordinator_load_in_progress: return "coordinator_load_in_progress";
        case errc::coordinator_not_available: return "coordinator_not_available";
        case errc::not_coordinator: return "not_coordinator";
        case errc::invalid_group_id: return "invalid_group_id";
        case errc::unknown_member_id: return "unknown_member_id";
        case errc::invalid_session_timeout: return "invalid_session_timeout";
        case errc::rebalance_in_progress: return "rebalance_in_progress";
        case errc::illegal_generation: return "illegal_generation";
        case errc::inconsistent_group_protocol: return "inconsistent_group_protocol";
        case errc::member_id_required: return "member_id_required";
        case errc::fenced_instance_id: return "fenced_instance_id";
        case errc::group_id_not_found: return "group_id_not_found";
        case errc::non_empty_group: return "non_empty_group";
        case errc::offset_metadata_too_large: return "offset_metadata_too_large";
        case errc::group_subscribed_to_topic: return "group_subscribed_to_topic";
        case errc::group_max_size_reached: return "group_max_size_reached";
        case errc::storage_error: return "storage_error";
        case errc::producer_fenced: return "producer_fenced";
        case errc::invalid_producer_id_mapping: return "invalid_producer_id_mapping";
        case errc::invalid_txn_state: return "invalid_txn_state";
        case errc::concurrent_transactions: return "concurrent_transactions";
        case errc::invalid_transaction_timeout: return "invalid_transaction_timeout";
        case errc::transactional_id_not_found: return "transactional_id_not_found";
        case errc::unknown_topic_or_partition: return "unknown_topic_or_partition";
        case errc::unstable_offset_commit: return "unstable_offset_commit";
    }
    return "unknown";
}

const char* state_name(group_state s) {
    switch (s) {
        case group_state::empty: return "Empty";
        case group_state::preparing_rebalance: return "PreparingRebalance";
        case group_state::completing_rebalance: return "CompletingRebalance";
        case group_state::stable: return "Stable";
        case group_state::dead: return "Dead";
    }
    return "Unknown";
}

std::optional<group_state> parse_state(const std::string& name) {
    std::string lower;
    for (char c : name) lower.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
    for (auto s : {group_state::empty, group_state::preparing_rebalance,
                   group_state::completing_rebalance, group_state::stable, group_state::dead}) {
        std::string n;
        for (const char* p = state_name(s); *p; ++p) {
            n.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(*p))));
        }
        if (n == lower) return s;
    }
    return std::nullopt;
}

int32_t partition_for(std::string_view group_id, int32_t partitions) {
    // Java's String.hashCode: s[0]*31^(n-1) + ... over UTF-16 code units, in int32 arithmetic.
    uint32_t h = 0;
    auto add = [&h](uint32_t unit) { h = h * 31u + unit; };
    size_t i = 0;
    auto byte = [&](size_t k) { return static_cast<uint8_t>(group_id[k]); };
    while (i < group_id.size()) {
        uint8_t c = byte(i);
        uint32_t cp = 0xfffd;
        size_t len = 1;
        if (c < 0x80) {
            cp = c;
        } else if ((c >> 5) == 0x6 && i + 1 < group_id.size()) {
            cp = ((c & 0x1fu) << 6) | (byte(i + 1) & 0x3fu);
            len = 2;
        } else if ((c >> 4) == 0xe && i + 2 < group_id.size()) {
            cp = ((c & 0x0fu) << 12) | ((byte(i + 1) & 0x3fu) << 6) | (byte(i + 2) & 0x3fu);
            len = 3;
        } else if ((c >> 3) == 0x1e && i + 3 < group_id.size()) {
            cp = ((c & 0x07u) << 18) | ((byte(i + 1) & 0x3fu) << 12) |
                 ((byte(i + 2) & 0x3fu) << 6) | (byte(i + 3) & 0x3fu);
            len = 4;
        }
        if (cp >= 0x10000) {
            cp -= 0x10000;
            add(0xd800u + (cp >> 10));
            add(0xdc00u + (cp & 0x3ffu));
        } else {
            add(cp);
        }
        i += len;
    }
    auto hs = static_cast<int32_t>(h);
    int32_t abs = hs == INT32_MIN ? 0 : (hs < 0 ? -hs : hs);  // Kafka's Utils.abs
    return abs % partitions;
}

group_coordinator::group_coordinator(coordinator_config cfg, runtime::clock& clock,
                                     timer_service& timers, log_storage& storage)
    : _cfg(cfg), _clock(clock), _timers(timers), _storage(storage) {
    std::random_device rd;
    _id_salt = (uint64_t{rd()} << 32) ^ rd();
}

group_coordinator::~group_coordinator() = default;

uint64_t group_coordinator::schedule(int64_t delay_ms, std::function<void()> fn) {
    return _owned_timers.schedule(delay_ms, std::move(fn));
}

void group_coordinator::cancel(uint64_t& id) { _owned_timers.cancel(id); }

// ---- partitions and loading ------------------------------------------------------------------

bool group_coordinator::loaded(int32_t partition) const { return _parts.loaded.count(partition) != 0; }

void group_coordinator::load_owned() {
    for (int32_t p = 0; p < _cfg.offsets_partitions; ++p) {
        if (!_storage.owns(p) || _parts.loaded.count(p) || _parts.loading.count(p)) continue;
        _parts.loading[p] = std::make_unique<load_state>();
        load_step(p);
    }
    if (_expiry_timer == 0) schedule_expiry();
}

void group_coordinator::unload_lost() {
    std::set<int32_t> lost = _parts.drop_lost(_storage);
    if (lost.empty()) return;
    size_t dropped = 0;
    for (auto it = _groups.begin(); it != _groups.end();) {
        group& g = *it->second;
        if (!lost.count(g.partition)) {
            ++it;
            continue;
        }
        cancel(g.join_timer);
        for (auto& [id, t] : g.pending_members) cancel(t);
        std::vector<std::function<void()>> answers;
        for (auto& [id, m] : g.members) {
            cancel(m.heartbeat_timer);
            if (m.awaiting_join) {
                answers.push_back([f = std::move(m.awaiting_join)] {
                    join_result r;
                    r.error = errc::not_coordinator;
                    f(r);
                });
            }
            if (m.awaiting_sync) {
                answers.push_back([f = std::move(m.awaiting_sync)] {
                    sync_result r;
                    r.error = errc::not_coordinator;
                    f(r);
                });
            }
        }
        it = _groups.erase(it);
        ++dropped;
        for (auto& a : answers) a();
    }
    log::info("coord", "unloaded ", lost.size(), " ", offsets_topic, " partition(s) whose ",
              "leadership moved; ", dropped, " group(s) now coordinated elsewhere");
}

void group_coordinator::load_batch(load_state& st, const model::batch_header& h,
                                   std::span<const std::byte> b, std::vector<std::byte>& scratch) {
    if (h.control()) {
        // A transaction marker settles the producer's pending transactional commits.
        std::optional<model::control_marker> marker;
        auto r = model::for_each_record(b, h, scratch, [&](const model::record_view& rec) {
            if (auto m = model::parse_control_record(rec)) marker = *m;
        });
        auto pend = st.pending.find(h.producer_id);
        if (!r || !marker || pend == st.pending.end()) return;
        if (marker->type == model::control_type::commit) {
            for (auto& [gid, offs] : pend->second) {
                for (auto& [tp, v] : offs) st.offsets[gid][tp] = v;
            }
        }
        st.pending.erase(pend);
        return;
    }
    bool txn = h.transactional() && h.producer_id >= 0;
    auto r = model::for_each_record(b, h, scratch, [&](const model::record_view& rec) {
        ++st.records;
        if (!rec.key) return;
        auto key = format::decode_key(*rec.key);
        if (!key) {
            ++st.malformed;
            return;
        }
        if (auto* ok = std::get_if<format::offset_key>(&*key)) {
            partition_ref tp{ok->topic, ok->partition};
            if (!rec.value) {
                st.offsets[ok->group].erase(tp);
                return;
            }
            auto v = format::decode_offset_value(*rec.value);
            if (!v) {
                ++st.malformed;
                return;
            }
            if (txn) {
                st.pending[h.producer_id][ok->group][tp] = *v;
                return;
            }
            st.offsets[ok->group][tp] = *v;
        } else if (auto* gk = std::get_if<format::group_key>(&*key)) {
            if (!rec.value) {
                st.groups.erase(gk->group);
                return;
            }
            auto v = format::decode_group_value(*rec.value);
            if (!v) {
                ++st.malformed;
                return;
            }
            st.groups[gk->group] = std::move(*v);
        }
    });
    if (!r) ++st.malformed;
}

void group_coordinator::load_step(int32_t partition) {
    auto it = _parts.loading.find(partition);
    if (it == _parts.loading.end()) return;
    load_state& st = *it->second;
    std::vector<std::byte> scratch;
    int64_t from = st.next;
    auto end = replay_chunk(_storage, partition, st.next, load_chunk_bytes, [&](
        const model::batch_header& h, std::span<const std::byte> b) {
        load_batch(st, h, b, scratch);
    });
    if (!end) {
        log::error("coord", "loading ", offsets_topic, "-", partition, " failed at offset ",
                   from, ": ", end.error().describe(), "; serving what was read");
        finish_load(partition, st);
    } else if (*end) {
        finish_load(partition, st);
    } else {
        // Yield to the reactor between chunks: other groups on this core keep being served.
        schedule(0, [this, partition] { load_step(partition); });
    }
}

void group_coordinator::finish_load(int32_t partition, load_state& st) {
    size_t groups = 0;
    for (auto& [id, v] : st.groups) {
        group& g = create(id, partition);
        ++groups;
        g.protocol_type = v.protocol_type;
        g.generation = v.generation;
        g.protocol_name = v.protocol;
        g.state_timestamp_ms = v.current_state_timestamp_ms;
        for (auto& sm : v.members) {
            member m;
            m.id = sm.member_id;
            m.instance_id = sm.group_instance_id;
            m.client_id = sm.client_id;
            m.client_host = sm.client_host;
            m.session_timeout_ms = sm.session_timeout_ms;
            m.rebalance_timeout_ms = sm.rebalance_timeout_ms;
            if (v.protocol) m.protocols.push_back({*v.protocol, sm.subscription});
            m.assignment = sm.assignment;
            if (m.instance_id) g.static_members[*m.instance_id] = m.id;
            g.members.emplace(m.id, std::move(m));
        }
        // Members come back as they were, and must heartbeat within their session timeout.
        if (!g.members.empty()) {
            g.state = group_state::stable;
            g.leader_id = v.leader && g.members.count(*v.leader) ? *v.leader : g.members.begin()->first;
            for (auto& [mid, m] : g.members) arm_heartbeat(g, m);
        }
    }
    for (auto& [id, offs] : st.offsets) {
        if (offs.empty()) continue;
        group* g = find(id);
        if (g == nullptr) {
            g = &create(id, partition);
            ++groups;
        }
        g->offsets = std::move(offs);
    }
    // Transactions still open when the log ends: their commits wait for the marker.
    for (auto& [pid, by_group] : st.pending) {
        for (auto& [id, offs] : by_group) {
            group* g = find(id);
            if (g == nullptr) {
                g = &create(id, partition);
                ++groups;
            }
            g->txn_offsets[pid] = std::move(offs);
        }
    }
    if (st.records > 0) {
        log::info("coord", "loaded ", offsets_topic, "-", partition, ": ", st.records,
                  " record(s), ", groups, " group(s)",
                  st.malformed ? ", malformed records skipped: " : "",
                  st.malformed ? std::to_string(st.malformed) : std::string());
    }
    _parts.loading.erase(partition);
    _parts.loaded.insert(partition);
}

errc group_coordinator::check_partition(const std::string& group_id, int32_t& partition) const {
    partition = partition_for(group_id, _cfg.offsets_partitions);
    if (_parts.loading.count(partition)) return errc::coordinator_load_in_progress;
    if (!_parts.loaded.count(partition)) {
        if (!_storage.owns(partition)) return errc::coordinator_not_available;
        // Owned but never loaded: the offsets topic was just created. Load it now (an empty or
        // small partition finishes in this call).
        auto* self = const_cast<group_coordinator*>(this);
        self->load_owned();
        if (_parts.loading.count(partition)) return errc::coordinator_load_in_progress;
    }
    return errc::none;
}

group_coordinator::group* group_coordinator::find(const std::string& id) {
    auto it = _groups.find(id);
    return it == _groups.end() ? nullptr : it->second.get();
}

const group_coordinator::group* group_coordinator::find(const std::string& id) const {
    auto it = _groups.find(id);
    return it == _groups.end() ? nullptr : it->second.get();
}

group_coordinator::group& group_coordinator::create(const std::string& id, int32_t partition) {
    auto g = std::make_unique<group>();
    g->id = id;
    g->partition = partition;
    g->state_timestamp_ms = _clock.now_ms();
    auto* raw = g.get();
    _groups[id] = std::move(g);
    return *raw;
}

std::string group_coordinator::new_member_id(const std::string& client_id) {
    uint64_t x = _id_salt + (++_member_seq);
    uint64_t a = splitmix(x);
    uint64_t b = splitmix(x);
    char buf[40];
    std::snprintf(buf, sizeof buf, "%08x-%04x-%04x-%04x-%012llx", static_cast<unsigned>(a >> 32),
                  static_cast<unsigned>((a >> 16) & 0xffff), static_cast<unsigned>(a & 0xffff),
                  static_cast<unsigned>(b >> 48),
                  static_cast<unsigned long long>(b & 0xffffffffffffULL));
    return (client_id.empty() ? std::string("member") : client_id) + "-" + buf;
}

// ---- join ------------------------------------------------------------------------------------

void group_coordinator::join(join_request req, std::function<void(join_result)> done) {
    auto fail = [&](errc e) {
        join_result r;
        r.error = e;
        r.member_id = req.member_id;
        done(std::move(r));
    };
    if (req.group_id.empty()) return fail(errc::invalid_group_id);
    int32_t partition = 0;
    if (auto e = check_partition(req.group_id, partition); e != errc::none) return fail(e);
    if (req.session_timeout_ms < _cfg.min_session_timeout_ms ||
        req.session_timeout_ms > _cfg.max_session_timeout_ms) {
        return fail(errc::invalid_session_timeout);
    }
    if (req.rebalance_timeout_ms <= 0) req.rebalance_timeout_ms = req.session_timeout_ms;
    group* g = find(req.group_id);
    if (g == nullptr) {
        if (!req.member_id.empty()) return fail(errc::unknown_member_id);
        g = &create(req.group_id, partition);
    }
    if (g->state == group_state::dead) return fail(errc::coordinator_not_available);
    if (!protocols_compatible(*g, req)) return fail(errc::inconsistent_group_protocol);
    if (req.member_id.empty()) {
        if (req.group_instance_id) {
            auto it = g->static_members.find(*req.group_instance_id);
            if (it != g->static_members.end()) {
                std::string old = it->second;
                return join_static_replace(*g, old, std::move(req), std::move(done));
            }
        }
        return join_new_member(*g, std::move(req), std::move(done));
    }
    if (auto it = g->pending_members.find(req.member_id); it != g->pending_members.end()) {
        // The second half of the member-id-required round trip.
        cancel(it->second);
        g->pending_members.erase(it);
        if (g->members.size() >= static_cast<size_t>(_cfg.max_group_size)) {
            return fail(errc::group_max_size_reached);
        }
        member& m = add_member(*g, req.member_id, req);
        m.awaiting_join = std::move(done);
        if (g->state == group_state::preparing_rebalance) {
            g->new_member_added = true;
            maybe_complete_join(*g);
        } else {
            prepare_rebalance(*g, "a new member joined");
        }
        return;
    }
    join_known_member(*g, std::move(req), std::move(done));
}

void group_coordinator::join_new_member(group& g, join_request req,
                                        std::function<void(join_result)> done) {
    if (g.members.size() >= static_cast<size_t>(_cfg.max_group_size)) {
        join_result r;
        r.error = errc::group_max_size_reached;
        done(std::move(r));
        return;
    }
    std::string id = new_member_id(req.client_id);
    if (!req.group_instance_id && req.require_known_member_id) {
        // KIP-394: hand out the id first, so a client that times out and retries does not leave
        // orphan members behind.
        int64_t ttl = std::min<int64_t>(req.session_timeout_ms, _cfg.pending_member_timeout_ms);
        std::string gid = g.id;
        g.pending_members[id] = schedule(ttl, [this, gid, id] {
            group* g = find(gid);
            if (g == nullptr) return;
            auto it = g->pending_members.find(id);
            if (it == g->pending_members.end()) return;
            g->pending_members.erase(it);
            maybe_complete_join(*g);
        });
        join_result r;
        r.error = errc::member_id_required;
        r.member_id = id;
        done(std::move(r));
        return;
    }
    if (req.group_instance_id) g.static_members[*req.group_instance_id] = id;
    member& m = add_member(g, id, req);
    m.awaiting_join = std::move(done);
    if (g.state == group_state::preparing_rebalance) {
        g.new_member_added = true;
        maybe_complete_join(g);
    } else {
        prepare_rebalance(g, "a new member joined");
    }
}

void group_coordinator::join_static_replace(group& g, const std::string& old_id, join_request req,
                                            std::function<void(join_result)> done) {
    // A static member restarted: it takes its old place under a new member id, and the old id
    // is fenced. In a Stable group with unchanged protocols nobody else notices.
    auto node = g.members.extract(old_id);
    SLUICE_ASSERT(!node.empty(), "a static member maps to a member");
    member m = std::move(node.mapped());
    if (m.awaiting_join) {
        join_result r;
        r.error = errc::fenced_instance_id;
        r.member_id = old_id;
        std::exchange(m.awaiting_join, nullptr)(std::move(r));
    }
    if (m.awaiting_sync) {
        sync_result r;
        r.error = errc::fenced_instance_id;
        std::exchange(m.awaiting_sync, nullptr)(std::move(r));
    }
    std::string new_id = new_member_id(req.client_id);
    bool protocols_changed = !same_protocols(m.protocols, req.protocols);
    auto old_protocols = m.protocols;
    m.id = new_id;
    update_member(m, req);
    g.static_members[*req.group_instance_id] = new_id;
    if (g.leader_id == old_id) g.leader_id = new_id;
    member& placed = g.members.emplace(new_id, std::move(m)).first->second;
    arm_heartbeat(g, placed);
    log::info("coord", "group ", g.id, ": static member ", *req.group_instance_id,
              " rejoined as ", new_id);
    bool selected_still_supported =
        g.protocol_name && placed.metadata_for(g.protocol_name) != nullptr;
    if (g.state == group_state::stable && selected_still_supported) {
        (void)protocols_changed;
        (void)old_protocols;
        join_result r = join_answer(g, placed, placed.id == g.leader_id);
        // The leader must not recompute assignments for a generation that did not change.
        r.skip_assignment = placed.id == g.leader_id;
        done(std::move(r));
        return;
    }
    placed.awaiting_join = std::move(done);
    if (g.state == group_state::preparing_rebalance) {
        maybe_complete_join(g);
    } else {
        prepare_rebalance(g, "a static member rejoined with new protocols");
    }
}

void group_coordinator::join_known_member(group& g, join_request req,
                                          std::function<void(join_result)> done) {
    if (auto e = validate_member(g, req.member_id, req.group_instance_id); e != errc::none) {
        join_result r;
        r.error = e;
        r.member_id = req.member_id;
        done(std::move(r));
        return;
    }
    member& m = g.members.at(req.member_id);
    bool changed = !same_protocols(m.protocols, req.protocols);
    switch (g.state) {
        case group_state::preparing_rebalance:
            update_member(m, req);
            if (m.awaiting_join) {
                join_result r;
                r.error = errc::rebalance_in_progress;
                r.member_id = m.id;
                std::exchange(m.awaiting_join, nullptr)(std::move(r));
            }
            m.awaiting_join = std::move(done);
            arm_heartbeat(g, m);
            maybe_complete_join(g);
            return;
        case group_state::completing_rebalance:
            if (!changed) {
                done(join_answer(g, m, m.id == g.leader_id));
                return;
            }
            break;
        case group_state::stable:
            if (!changed && m.id != g.leader_id) {
                arm_heartbeat(g, m);
                done(join_answer(g, m, false));
                return;
            }
            break;
        case group_state::empty:
        case group_state::dead: {
            join_result r;
            r.error = errc::unknown_member_id;
            r.member_id = req.member_id;
            done(std::move(r));
            return;
        }
    }
    update_member(m, req);
    m.awaiting_join = std::move(done);
    arm_heartbeat(g, m);
    prepare_rebalance(g, changed ? "a member changed its protocols" : "the leader rejoined");
}

group_coordinator::member& group_coordinator::add_member(group& g, const std::string& id,
                                                         const join_request& req) {
    if (g.members.empty()) {
        g.protocol_type = req.protocol_type;
        if (g.leader_id.empty() || !g.members.count(g.leader_id)) g.leader_id = id;
    }
    member m;
    m.id = id;
    m.instance_id = req.group_instance_id;
    update_member(m, req);
    member& placed = g.members.emplace(id, std::move(m)).first->second;
    arm_heartbeat(g, placed);
    return placed;
}

void group_coordinator::update_member(member& m, const join_request& req) {
    m.client_id = req.client_id;
    m.client_host = req.client_host;
    m.session_timeout_ms = req.session_timeout_ms;
    m.rebalance_timeout_ms = req.rebalance_timeout_ms;
    m.protocols = req.protocols;
}

void group_coordinator::prepare_rebalance(group& g, const char* reason) {
    if (g.state == group_state::completing_rebalance) {
        // Assignments of the generation being formed are void; waiting syncs learn it now.
        for (auto& [id, m] : g.members) {
            m.assignment.clear();
            if (m.awaiting_sync) {
                sync_result r;
                r.error = errc::rebalance_in_progress;
                std::exchange(m.awaiting_sync, nullptr)(std::move(r));
            }
        }
    }
    bool from_empty = g.state == group_state::empty;
    g.state = group_state::preparing_rebalance;
    g.state_timestamp_ms = _clock.now_ms();
    cancel(g.join_timer);
    int64_t rebalance_ms = 0;
    for (const auto& [id, m] : g.members) rebalance_ms = std::max<int64_t>(rebalance_ms, m.rebalance_timeout_ms);
    log::info("coord", "group ", g.id, " is rebalancing (generation ", g.generation, "): ", reason);
    std::string gid = g.id;
    if (from_empty && _cfg.initial_rebalance_delay_ms > 0) {
        // group.initial.rebalance.delay.ms: let the other members of a starting group arrive, so
        // that it does not rebalance once per member.
        g.initial_delay = true;
        g.new_member_added = false;
        int64_t delay = std::min<int64_t>(_cfg.initial_rebalance_delay_ms, rebalance_ms);
        int64_t remaining = std::max<int64_t>(rebalance_ms - _cfg.initial_rebalance_delay_ms, 0);
        g.join_timer = schedule(delay, [this, gid, remaining] { on_initial_delay(gid, remaining); });
        return;
    }
    g.initial_delay = false;
    g.join_timer = schedule(rebalance_ms, [this, gid] {
        group* g = find(gid);
        if (g == nullptr || g->state != group_state::preparing_rebalance) return;
        g->join_timer = 0;
        complete_join(*g);
    });
    maybe_complete_join(g);
}

void group_coordinator::on_initial_delay(const std::string& group_id, int64_t remaining_ms) {
    group* g = find(group_id);
    if (g == nullptr || g->state != group_state::preparing_rebalance) return;
    g->join_timer = 0;
    if (g->new_member_added && remaining_ms > 0) {
        g->new_member_added = false;
        int64_t delay = std::min<int64_t>(_cfg.initial_rebalance_delay_ms, remaining_ms);
        int64_t rest = std::max<int64_t>(remaining_ms - _cfg.initial_rebalance_delay_ms, 0);
        std::string gid = g->id;
        g->join_timer = schedule(delay, [this, gid, rest] { on_initial_delay(gid, rest); });
        return;
    }
    g->initial_delay = false;
    complete_join(*g);
}

void group_coordinator::maybe_complete_join(group& g) {
    if (g.state != group_state::preparing_rebalance || g.initial_delay) return;
    if (!g.pending_members.empty()) return;
    for (const auto& [id, m] : g.members) {
        if (!m.awaiting_join) return;
    }
    complete_join(g);
}

void group_coordinator::complete_join(group& g) {
    cancel(g.join_timer);
    g.initial_delay = false;
    std::vector<std::string> gone;
    for (const auto& [id, m] : g.members) {
        if (!m.awaiting_join) gone.push_back(id);
    }
    for (const auto& id : gone) {
        log::info("coord", "group ", g.id, ": member ", id, " did not rejoin in time");
        remove_member(g, id, errc::unknown_member_id);
    }
    ++g.generation;
    g.state_timestamp_ms = _clock.now_ms();
    if (g.members.empty()) {
        g.state = group_state::empty;
        g.protocol_name.reset();
        g.leader_id.clear();
        log::info("coord", "group ", g.id, " is empty at generation ", g.generation);
        persist_group(g, [](bool) {});
        return;
    }
    g.protocol_name = select_protocol(g);
    if (!g.members.count(g.leader_id)) g.leader_id = g.members.begin()->first;
    g.state = group_state::completing_rebalance;
    log::info("coord", "group ", g.id, " generation ", g.generation, " with ", g.members.size(),
              " member(s), protocol ", g.protocol_name.value_or("?"), ", leader ", g.leader_id);
    std::vector<std::pair<std::function<void(join_result)>, join_result>> answers;
    for (auto& [id, m] : g.members) {
        answers.emplace_back(std::exchange(m.awaiting_join, nullptr),
                             join_answer(g, m, id == g.leader_id));
        arm_heartbeat(g, m);
    }
    for (auto& [cb, r] : answers) cb(std::move(r));
}

join_result group_coordinator::join_answer(const group& g, const member& m,
                                           bool with_members) const {
    join_result r;
    r.generation_id = g.generation;
    r.protocol_type = g.protocol_type;
    r.protocol_name = g.protocol_name;
    r.leader_id = g.leader_id;
    r.member_id = m.id;
    if (with_members) {
        for (const auto& [id, other] : g.members) {
            const bytes* md = other.metadata_for(g.protocol_name);
            r.members.push_back({id, other.instance_id, md ? *md : bytes{}});
        }
    }
    return r;
}

bool group_coordinator::protocols_compatible(const group& g, const join_request& req) const {
    if (req.protocol_type.empty() || req.protocols.empty()) return false;
    bool others = false;
    for (const auto& [id, m] : g.members) others |= id != req.member_id;
    if (!others) return true;
    if (req.protocol_type != g.protocol_type) return false;
    for (const auto& p : req.protocols) {
        bool everyone = true;
        for (const auto& [id, m] : g.members) {
            if (id == req.member_id) continue;
            everyone &= m.metadata_for(p.name) != nullptr;
        }
        if (everyone) return true;
    }
    return false;
}

std::optional<std::string> group_coordinator::select_protocol(const group& g) const {
    // Candidates: protocols every member supports; each member votes for its most preferred
    // candidate, and the most votes win (ties: the first member's preference order).
    const member& first = g.members.begin()->second;
    std::vector<std::string> candidates;
    for (const auto& p : first.protocols) {
        bool everyone = true;
        for (const auto& [id, m] : g.members) everyone &= m.metadata_for(p.name) != nullptr;
        if (everyone) candidates.push_back(p.name);
    }
    if (candidates.empty()) return std::nullopt;
    std::map<std::string, int> votes;
    for (const auto& [id, m] : g.members) {
        for (const auto& p : m.protocols) {
            if (std::find(candidates.begin(), candidates.end(), p.name) != candidates.end()) {
                ++votes[p.name];
                break;
            }
        }
    }
    std::string best = candidates.front();
    for (const auto& c : candidates) {
        if (votes[c] > votes[best]) best = c;
    }
    return best;
}

// ---- members ---------------------------------------------------------------------------------

void group_coordinator::arm_heartbeat(group& g, member& m) {
    cancel(m.heartbeat_timer);
    std::string gid = g.id;
    std::string mid = m.id;
    m.heartbeat_timer = schedule(m.session_timeout_ms, [this, gid, mid] { on_heartbeat_expired(gid, mid); });
}

void group_coordinator::on_heartbeat_expired(const std::string& group_id,
                                             const std::string& member_id) {
    group* g = find(group_id);
    if (g == nullptr) return;
    auto it = g->members.find(member_id);
    if (it == g->members.end()) return;
    member& m = it->second;
    m.heartbeat_timer = 0;
    if (m.awaiting_join || m.awaiting_sync) {
        // Parked in JoinGroup/SyncGroup, the member cannot heartbeat; the rebalance timeout
        // (or the leader's own session) bounds the wait instead.
        arm_heartbeat(*g, m);
        return;
    }
    log::info("coord", "group ", g->id, ": member ", member_id, " missed its session timeout (",
              m.session_timeout_ms, " ms)");
    remove_member(*g, member_id, errc::unknown_member_id);
    on_member_gone(*g);
}

void group_coordinator::remove_member(group& g, const std::string& member_id, errc reason) {
    auto it = g.members.find(member_id);
    if (it == g.members.end()) return;
    member m = std::move(it->second);
    g.members.erase(it);
    cancel(m.heartbeat_timer);
    if (m.instance_id) {
        auto s = g.static_members.find(*m.instance_id);
        if (s != g.static_members.end() && s->second == member_id) g.static_members.erase(s);
    }
    if (g.leader_id == member_id) g.leader_id = g.members.empty() ? "" : g.members.begin()->first;
    if (m.awaiting_join) {
        join_result r;
        r.error = reason;
        r.member_id = member_id;
        m.awaiting_join(std::move(r));
    }
    if (m.awaiting_sync) {
        sync_result r;
        r.error = reason;
        m.awaiting_sync(std::move(r));
    }
}

void group_coordinator::on_member_gone(group& g) {
    switch (g.state) {
        case group_state::stable:
        case group_state::completing_rebalance:
            prepare_rebalance(g, "a member left");
            break;
        case group_state::preparing_rebalance:
            maybe_complete_join(g);
            break;
        case group_state::empty:
        case group_state::dead:
            break;
    }
}

errc group_coordinator::validate_member(const group& g, const std::string& member_id,
                                        const std::optional<std::string>& instance_id) const {
    if (instance_id) {
        auto s = g.static_members.find(*instance_id);
        if (s != g.static_members.end() && s->second != member_id) return errc::fenced_instance_id;
    }
    if (!g.members.count(member_id)) return errc::unknown_member_id;
    return errc::none;
}

// ---- sync, heartbeat, leave ------------------------------------------------------------------

void group_coordinator::sync(sync_request req, std::function<void(sync_result)> done) {
    auto fail = [&](errc e) {
        sync_result r;
        r.error = e;
        done(std::move(r));
    };
    int32_t partition = 0;
    if (auto e = check_partition(req.group_id, partition); e != errc::none) return fail(e);
    group* g = find(req.group_id);
    if (g == nullptr) return fail(errc::unknown_member_id);
    if (g->state == group_state::dead) return fail(errc::coordinator_not_available);
    if (auto e = validate_member(*g, req.member_id, req.group_instance_id); e != errc::none) {
        return fail(e);
    }
    if (req.generation_id != g->generation) return fail(errc::illegal_generation);
    if ((req.protocol_type && *req.protocol_type != g->protocol_type) ||
        (req.protocol_name && *req.protocol_name != g->protocol_name.value_or(""))) {
        return fail(errc::inconsistent_group_protocol);
    }
    member& m = g->members.at(req.member_id);
    switch (g->state) {
        case group_state::empty:
        case group_state::dead:
            return fail(errc::unknown_member_id);
        case group_state::preparing_rebalance:
            return fail(errc::rebalance_in_progress);
        case group_state::stable: {
            arm_heartbeat(*g, m);
            sync_result r;
            r.protocol_type = g->protocol_type;
            r.protocol_name = g->protocol_name;
            r.assignment = m.assignment;
            done(std::move(r));
            return;
        }
        case group_state::completing_rebalance:
            break;
    }
    if (m.awaiting_sync) {
        sync_result r;
        r.error = errc::rebalance_in_progress;
        std::exchange(m.awaiting_sync, nullptr)(std::move(r));
    }
    m.awaiting_sync = std::move(done);
    arm_heartbeat(*g, m);
    if (m.id != g->leader_id) return;
    // The leader's assignments: stored with the group metadata before anyone sees them.
    std::map<std::string, bytes> given;
    for (auto& [id, a] : req.assignments) given[id] = std::move(a);
    for (auto& [id, member] : g->members) {
        auto it = given.find(id);
        member.assignment = it == given.end() ? bytes{} : std::move(it->second);
    }
    std::string gid = g->id;
    int32_t generation = g->generation;
    persist_group(*g, [this, gid, generation](bool ok) {
        group* g = find(gid);
        if (g == nullptr || g->state != group_state::completing_rebalance ||
            g->generation != generation) {
            return;
        }
        if (!ok) {
            for (auto& [id, m] : g->members) {
                if (!m.awaiting_sync) continue;
                sync_result r;
                r.error = errc::coordinator_not_available;
                std::exchange(m.awaiting_sync, nullptr)(std::move(r));
            }
            prepare_rebalance(*g, "storing the assignment failed");
            return;
        }
        g->state = group_state::stable;
        g->state_timestamp_ms = _clock.now_ms();
        std::vector<std::pair<std::function<void(sync_result)>, sync_result>> answers;
        for (auto& [id, m] : g->members) {
            if (!m.awaiting_sync) continue;
            sync_result r;
            r.protocol_type = g->protocol_type;
            r.protocol_name = g->protocol_name;
            r.assignment = m.assignment;
            answers.emplace_back(std::exchange(m.awaiting_sync, nullptr), std::move(r));
        }
        log::info("coord", "group ", gid, " is stable at generation ", generation);
        for (auto& [cb, r] : answers) cb(std::move(r));
    });
}

errc group_coordinator::heartbeat(const heartbeat_request& req) {
    int32_t partition = 0;
    if (auto e = check_partition(req.group_id, partition); e != errc::none) return e;
    group* g = find(req.group_id);
    if (g == nullptr) return errc::unknown_member_id;
    if (g->state == group_state::dead) return errc::coordinator_not_available;
    if (auto e = validate_member(*g, req.member_id, req.group_instance_id); e != errc::none) return e;
    if (req.generation_id != g->generation) return errc::illegal_generation;
    member& m = g->members.at(req.member_id);
    switch (g->state) {
        case group_state::empty:
        case group_state::dead:
            return errc::unknown_member_id;
        case group_state::preparing_rebalance:
            arm_heartbeat(*g, m);
            return errc::rebalance_in_progress;
        case group_state::completing_rebalance:
        case group_state::stable:
            arm_heartbeat(*g, m);
            return errc::none;
    }
    return errc::none;
}

leave_result group_coordinator::leave(const leave_request& req) {
    leave_result out;
    int32_t partition = 0;
    if (auto e = check_partition(req.group_id, partition); e != errc::none) {
        out.error = e;
        return out;
    }
    group* g = find(req.group_id);
    if (g == nullptr) {
        out.members.assign(req.members.size(), errc::unknown_member_id);
        return out;
    }
    if (g->state == group_state::dead) {
        out.error = errc::coordinator_not_available;
        return out;
    }
    bool removed = false;
    for (const auto& lm : req.members) {
        std::string id = lm.member_id;
        if (id.empty() && lm.group_instance_id) {
            auto s = g->static_members.find(*lm.group_instance_id);
            if (s == g->static_members.end()) {
                out.members.push_back(errc::unknown_member_id);
                continue;
            }
            id = s->second;
        }
        if (auto p = g->pending_members.find(id); p != g->pending_members.end()) {
            cancel(p->second);
            g->pending_members.erase(p);
            out.members.push_back(errc::none);
            removed = true;
            continue;
        }
        if (auto e = validate_member(*g, id, lm.group_instance_id); e != errc::none) {
            out.members.push_back(e);
            continue;
        }
        log::info("coord", "group ", g->id, ": member ", id, " left");
        remove_member(*g, id, errc::unknown_member_id);
        out.members.push_back(errc::none);
        removed = true;
    }
    if (removed) on_member_gone(*g);
    return out;
}

// ---- offsets ---------------------------------------------------------------------------------

void group_coordinator::commit(commit_request req, std::function<void(commit_result)> done) {
    auto fail_all = [&](errc e) {
        commit_result r;
        r.partitions.assign(req.offsets.size(), e);
        done(std::move(r));
    };
    if (req.group_id.empty()) return fail_all(errc::invalid_group_id);
    int32_t partition = 0;
    if (auto e = check_partition(req.group_id, partition); e != errc::none) return fail_all(e);
    group* g = find(req.group_id);
    if (g == nullptr) {
        // Only a commit from outside group management may create a group.
        if (req.generation_id >= 0) return fail_all(errc::illegal_generation);
        g = &create(req.group_id, partition);
    }
    if (g->state == group_state::dead) return fail_all(errc::coordinator_not_available);
    bool simple = req.generation_id < 0 && g->state == group_state::empty;
    if (!simple) {
        if (req.group_instance_id) {
            auto s = g->static_members.find(*req.group_instance_id);
            if (s != g->static_members.end() && s->second != req.member_id) {
                return fail_all(errc::fenced_instance_id);
            }
        }
        bool from_member = req.generation_id >= 0 || !req.member_id.empty() || req.group_instance_id;
        if (from_member && !g->members.count(req.member_id)) return fail_all(errc::unknown_member_id);
        if (req.generation_id >= 0 && req.generation_id != g->generation) {
            return fail_all(errc::illegal_generation);
        }
        if (g->state == group_state::completing_rebalance) return fail_all(errc::rebalance_in_progress);
        if (g->state == group_state::empty && from_member) return fail_all(errc::unknown_member_id);
        if (auto it = g->members.find(req.member_id); it != g->members.end()) {
            arm_heartbeat(*g, it->second);
        }
    }
    auto result = std::make_shared<commit_result>();
    result->partitions.assign(req.offsets.size(), errc::none);
    std::vector<std::pair<bytes, std::optional<bytes>>> records;
    auto values = std::make_shared<std::vector<std::pair<partition_ref, committed_offset>>>();
    std::vector<size_t> written;
    commit_records(g->id, req.offsets, *result, records, *values, written);
    if (records.empty()) {
        done(std::move(*result));
        return;
    }
    std::string gid = g->id;
    append_records(partition, records,
                   [this, gid, result, values, written = std::move(written),
                    done = std::move(done)](bool ok) {
                       group* g = find(gid);
                       for (size_t k = 0; k < written.size(); ++k) {
                           if (!ok) {
                               result->partitions[written[k]] = errc::storage_error;
                           } else if (g != nullptr) {
                               g->offsets[(*values)[k].first] = (*values)[k].second;
                           }
                       }
                       done(std::move(*result));
                   });
}

void group_coordinator::commit_records(
    const std::string& group_id, const std::vector<commit_entry>& offsets, commit_result& result,
    std::vector<std::pair<bytes, std::optional<bytes>>>& records,
    std::vector<std::pair<partition_ref, committed_offset>>& values,
    std::vector<size_t>& written) const {
    int64_t now = _clock.now_ms();
    for (size_t i = 0; i < offsets.size(); ++i) {
        const auto& e = offsets[i];
        std::string md = e.metadata.value_or("");
        if (md.size() > _cfg.offset_metadata_max_bytes) {
            result.partitions[i] = errc::offset_metadata_too_large;
            continue;
        }
        committed_offset v{e.offset, e.leader_epoch, std::move(md), now};
        records.emplace_back(format::encode_offset_key(group_id, e.tp.topic, e.tp.partition),
                             format::encode_offset_value(v));
        values.emplace_back(e.tp, std::move(v));
        written.push_back(i);
    }
}

void group_coordinator::txn_commit(txn_commit_request req, std::function<void(commit_result)> done) {
    auto fail_all = [&](errc e) {
        commit_result r;
        r.partitions.assign(req.offsets.size(), e);
        done(std::move(r));
    };
    if (req.group_id.empty()) return fail_all(errc::invalid_group_id);
    int32_t partition = 0;
    if (auto e = check_partition(req.group_id, partition); e != errc::none) return fail_all(e);
    group* g = find(req.group_id);
    // A transactional commit may name a group no consumer joined (Kafka creates it, Empty).
    if (g == nullptr) g = &create(req.group_id, partition);
    if (g->state == group_state::dead) return fail_all(errc::coordinator_not_available);
    if (req.generation_id >= 0 || !req.member_id.empty()) {
        // KIP-447: a member's commit is fenced like a plain commit from that member.
        if (req.group_instance_id) {
            auto s = g->static_members.find(*req.group_instance_id);
            if (s != g->static_members.end() && s->second != req.member_id) {
                return fail_all(errc::fenced_instance_id);
            }
        }
        if (!req.member_id.empty() && !g->members.count(req.member_id)) {
            return fail_all(errc::unknown_member_id);
        }
        if (req.generation_id >= 0 && req.generation_id != g->generation) {
            return fail_all(errc::illegal_generation);
        }
    }
    auto result = std::make_shared<commit_result>();
    result->partitions.assign(req.offsets.size(), errc::none);
    std::vector<std::pair<bytes, std::optional<bytes>>> records;
    auto values = std::make_shared<std::vector<std::pair<partition_ref, committed_offset>>>();
    std::vector<size_t> written;
    commit_records(g->id, req.offsets, *result, records, *values, written);
    if (records.empty()) {
        done(std::move(*result));
        return;
    }
    std::string gid = g->id;
    int64_t pid = req.producer_id;
    append_records(
        partition, records,
        [this, gid, pid, result, values, done = std::move(done)](bool ok) {
            group* g = find(gid);
            for (size_t i = 0; i < result->partitions.size(); ++i) {
                if (!ok && result->partitions[i] == errc::none) {
                    result->partitions[i] = errc::storage_error;
                }
            }
            if (ok && g != nullptr) {
                for (auto& [tp, v] : *values) g->txn_offsets[pid][tp] = v;
            }
            done(std::move(*result));
        },
        req.producer_id, req.producer_epoch);
}

void group_coordinator::complete_txn(int32_t partition, int64_t producer_id, bool commit) {
    for (auto& [id, g] : _groups) {
        if (g->partition != partition) continue;
        auto it = g->txn_offsets.find(producer_id);
        if (it == g->txn_offsets.end()) continue;
        if (commit) {
            for (auto& [tp, v] : it->second) g->offsets[tp] = v;
        }
        g->txn_offsets.erase(it);
    }
}

fetch_offsets_result group_coordinator::fetch_offsets(const fetch_offsets_request& req) {
    fetch_offsets_result out;
    int32_t partition = 0;
    if (auto e = check_partition(req.group_id, partition); e != errc::none) {
        out.error = e;
        return out;
    }
    const group* g = find(req.group_id);
    if (!req.partitions) {
        if (g != nullptr) {
            for (const auto& [tp, v] : g->offsets) out.offsets.push_back({tp, v, errc::none});
        }
        return out;
    }
    for (const auto& tp : *req.partitions) {
        fetched_offset f;
        f.tp = tp;
        if (g != nullptr) {
            if (auto it = g->offsets.find(tp); it != g->offsets.end()) f.committed = it->second;
            if (req.require_stable) {
                for (const auto& [pid, offs] : g->txn_offsets) {
                    if (offs.count(tp)) f.error = errc::unstable_offset_commit;
                }
            }
        }
        out.offsets.push_back(std::move(f));
    }
    return out;
}

void group_coordinator::delete_offsets(delete_offsets_request req,
                                       std::function<void(delete_offsets_result)> done) {
    delete_offsets_result out;
    int32_t partition = 0;
    if (auto e = check_partition(req.group_id, partition); e != errc::none) {
        out.error = e;
        done(std::move(out));
        return;
    }
    group* g = find(req.group_id);
    if (g == nullptr || g->state == group_state::dead) {
        out.error = errc::group_id_not_found;
        done(std::move(out));
        return;
    }
    std::set<std::string> subscribed;
    if (g->state != group_state::empty) {
        if (g->protocol_type != "consumer") {
            out.error = errc::non_empty_group;
            done(std::move(out));
            return;
        }
        for (const auto& [id, m] : g->members) {
            if (const bytes* md = m.metadata_for(g->protocol_name)) {
                for (auto& t : subscribed_topics(*md)) subscribed.insert(std::move(t));
            }
        }
    }
    std::vector<std::pair<bytes, std::optional<bytes>>> records;
    auto gone = std::make_shared<std::vector<partition_ref>>();
    for (const auto& tp : req.partitions) {
        if (subscribed.count(tp.topic)) {
            out.partitions.push_back(errc::group_subscribed_to_topic);
            continue;
        }
        out.partitions.push_back(errc::none);
        if (g->offsets.count(tp)) {
            records.emplace_back(format::encode_offset_key(g->id, tp.topic, tp.partition),
                                 std::nullopt);
            gone->push_back(tp);
        }
    }
    if (records.empty()) {
        done(std::move(out));
        return;
    }
    std::string gid = g->id;
    append_records(partition, records,
                   [this, gid, gone, out = std::move(out), done = std::move(done)](bool ok) mutable {
                       group* g = find(gid);
                       if (!ok) {
                           out.error = errc::storage_error;
                       } else if (g != nullptr) {
                           for (const auto& tp : *gone) g->offsets.erase(tp);
                       }
                       done(std::move(out));
                   });
}

// ---- listing, describing, deleting -------------------------------------------------------------

std::vector<group_listing> group_coordinator::list_groups() const {
    std::vector<group_listing> out;
    for (const auto& [id, g] : _groups) {
        if (g->state == group_state::dead) continue;
        out.push_back({id, g->protocol_type, g->state});
    }
    return out;
}

group_description group_coordinator::describe(const std::string& group_id) const {
    group_description d;
    d.group_id = group_id;
    int32_t partition = 0;
    if (auto e = check_partition(group_id, partition); e != errc::none) {
        d.error = e;
        return d;
    }
    const group* g = find(group_id);
    if (g == nullptr) return d;  // Dead, as Kafka describes a group it does not know
    d.state = g->state;
    d.protocol_type = g->protocol_type;
    bool stable = g->state == group_state::stable;
    if (stable) d.protocol_name = g->protocol_name.value_or("");
    for (const auto& [id, m] : g->members) {
        member_description md;
        md.member_id = id;
        md.group_instance_id = m.instance_id;
        md.client_id = m.client_id;
        md.client_host = m.client_host;
        if (stable) {
            if (const bytes* b = m.metadata_for(g->protocol_name)) md.metadata = *b;
            md.assignment = m.assignment;
        }
        d.members.push_back(std::move(md));
    }
    return d;
}

void group_coordinator::delete_group(const std::string& group_id, std::function<void(errc)> done) {
    int32_t partition = 0;
    if (auto e = check_partition(group_id, partition); e != errc::none) return done(e);
    group* g = find(group_id);
    if (g == nullptr || g->state == group_state::dead) return done(errc::group_id_not_found);
    if (g->state != group_state::empty || !g->members.empty()) return done(errc::non_empty_group);
    std::vector<std::pair<bytes, std::optional<bytes>>> records;
    for (const auto& [tp, v] : g->offsets) {
        records.emplace_back(format::encode_offset_key(g->id, tp.topic, tp.partition), std::nullopt);
    }
    records.emplace_back(format::encode_group_key(g->id), std::nullopt);
    for (auto& [mid, t] : g->pending_members) cancel(t);
    cancel(g->join_timer);
    _groups.erase(group_id);  // a new group of the same name is written after the tombstones
    log::info("coord", "group ", group_id, " deleted");
    append_records(partition, records, [done = std::move(done)](bool ok) {
        done(ok ? errc::none : errc::storage_error);
    });
}

void group_coordinator::expire_offsets() {
    int64_t now = _clock.now_ms();
    std::vector<std::string> dead;
    for (auto& [id, gp] : _groups) {
        group& g = *gp;
        if (g.state != group_state::empty || !g.members.empty() || !_parts.loaded.count(g.partition)) {
            continue;
        }
        std::vector<std::pair<bytes, std::optional<bytes>>> records;
        for (auto it = g.offsets.begin(); it != g.offsets.end();) {
            // An empty group's offsets age from the moment it became empty (Kafka 2.1+).
            int64_t base = std::max(it->second.commit_timestamp_ms, g.state_timestamp_ms);
            if (now - base >= _cfg.offsets_retention_ms) {
                records.emplace_back(
                    format::encode_offset_key(g.id, it->first.topic, it->first.partition),
                    std::nullopt);
                it = g.offsets.erase(it);
            } else {
                ++it;
            }
        }
        if (g.offsets.empty() && g.pending_members.empty()) {
            records.emplace_back(format::encode_group_key(g.id), std::nullopt);
            dead.push_back(id);
        }
        if (!records.empty()) {
            log::info("coord", "group ", g.id, ": ", records.size(), " expired record(s) removed");
            append_records(g.partition, records, [](bool) {});
        }
    }
    for (const auto& id : dead) _groups.erase(id);
}

void group_coordinator::schedule_expiry() {
    _expiry_timer = schedule(_cfg.offsets_retention_check_interval_ms, [this] {
        _expiry_timer = 0;
        expire_offsets();
        schedule_expiry();
    });
}

// ---- persistence -------------------------------------------------------------------------------

format::group_value group_coordinator::group_value_of(const group& g) const {
    format::group_value v;
    v.protocol_type = g.protocol_type;
    v.generation = g.generation;
    v.protocol = g.protocol_name;
    if (!g.leader_id.empty()) v.leader = g.leader_id;
    v.current_state_timestamp_ms = g.state_timestamp_ms;
    if (g.state == group_state::empty) return v;
    for (const auto& [id, m] : g.members) {
        format::stored_member sm;
        sm.member_id = id;
        sm.group_instance_id = m.instance_id;
        sm.client_id = m.client_id;
        sm.client_host = m.client_host;
        sm.rebalance_timeout_ms = m.rebalance_timeout_ms;
        sm.session_timeout_ms = m.session_timeout_ms;
        if (const bytes* md = m.metadata_for(g.protocol_name)) sm.subscription = *md;
        sm.assignment = m.assignment;
        v.members.push_back(std::move(sm));
    }
    return v;
}

void group_coordinator::persist_group(group& g, std::function<void(bool)> done) {
    std::vector<std::pair<bytes, std::optional<bytes>>> records;
    records.emplace_back(format::encode_group_key(g.id),
                         format::encode_group_value(group_value_of(g)));
    append_records(g.partition, records, std::move(done));
}

void group_coordinator::append_records(
    int32_t partition, const std::vector<std::pair<bytes, std::optional<bytes>>>& records,
    std::function<void(bool)> done, int64_t producer_id, int16_t producer_epoch) {
    model::batch_options opts;
    if (producer_id >= 0) {
        // A transactional offset commit: the batch belongs to the producer's transaction.
        opts.producer_id = producer_id;
        opts.producer_epoch = producer_epoch;
        opts.transactional = true;
    }
    model::batch_builder builder(opts);
    int64_t now = _clock.now_ms();
    for (const auto& [k, v] : records) {
        model::nullable_bytes value;
        if (v) value = model::bytes_view(*v);
        builder.add(model::bytes_view(k), value, now);
    }
    auto batch = builder.build();
    if (!batch) {
        log::error("coord", "cannot build a ", offsets_topic, " batch: ", batch.error().describe());
        done(false);
        return;
    }
    _storage.append(partition, std::move(*batch), std::move(done));
}

}  // namespace sluice::coord
