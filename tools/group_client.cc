#include "tools/group_client.h"

#include <algorithm>
#include <set>
#include <thread>

namespace sluice::tools {

namespace {

// Kafka error codes the membership calls act on.
constexpr int16_t coordinator_load_in_progress = 14;
constexpr int16_t coordinator_not_available = 15;
constexpr int16_t not_coordinator = 16;
constexpr int16_t illegal_generation = 22;
constexpr int16_t unknown_member_id = 25;
constexpr int16_t rebalance_in_progress = 27;
constexpr int16_t member_id_required = 79;

constexpr const char* range_assignor = "range";
// Between attempts when the coordinator is loading or moved.
constexpr auto coordinator_backoff = std::chrono::milliseconds(100);
// JoinGroup waits for the whole rebalance; its answer may take this much longer than the
// rebalance timeout (Kafka's consumers allow the same).
constexpr int join_answer_slack_ms = 5000;

// Kafka's member order for the range assignor (AbstractPartitionAssignor.MemberInfo).
bool member_before(const assignor_member* a, const assignor_member* b) {
    if (a->group_instance_id && b->group_instance_id) {
        return *a->group_instance_id < *b->group_instance_id;
    }
    if (a->group_instance_id || b->group_instance_id) return a->group_instance_id.has_value();
    return a->member_id < b->member_id;
}

template <class Partitions>
void add_offsets(std::map<topic_partition, int64_t>& out, const std::string& topic,
                 const Partitions& partitions) {
    for (const auto& p : partitions) {
        if (p.error_code != 0) continue;  // no offset for this partition: read as none
        out[{topic, p.partition_index}] = p.committed_offset;
    }
}

}  // namespace

result<coordinator_info> find_group_coordinator(connection& conn, const std::string& group,
                                                int8_t key_type) {
    protocol::find_coordinator_request req;
    req.key = group;
    req.key_type = key_type;
    req.coordinator_keys = {group};
    auto resp = conn.call<protocol::find_coordinator_api>(req);
    if (!resp) return resp.error();
    coordinator_info out;
    int16_t err = resp->error_code;
    out.node_id = resp->node_id;
    std::string host = resp->host;
    int32_t port = resp->port;
    if (!resp->coordinators.empty()) {  // v4+
        const auto& c = resp->coordinators[0];
        err = c.error_code;
        out.node_id = c.node_id;
        host = c.host;
        port = c.port;
    }
    if (err != 0) {
        return kafka_failure(err, std::string("finding the coordinator of ") +
                                      (key_type == 1 ? "transactional id " : "group ") + group);
    }
    if (port <= 0 || port > 65535) {
        return error(errc::protocol, "FindCoordinator: port " + std::to_string(port));
    }
    out.address = broker_address{host, static_cast<uint16_t>(port)};
    return out;
}

result<std::map<topic_partition, int64_t>> fetch_committed_offsets(
    connection& coord, const std::string& group,
    const std::optional<std::vector<topic_partition>>& partitions) {
    // Every partition (null topics) needs v2+; v0 read offsets from ZooKeeper.
    int16_t v = coord.pick_version(protocol::offset_fetch_api::key, partitions ? 1 : 2,
                                   protocol::offset_fetch_api::max_version);
    if (v < 0) return error(errc::no_common_version, "OffsetFetch v1+");
    std::map<std::string, std::vector<int32_t>> by_topic;
    if (partitions) {
        for (const auto& [t, p] : *partitions) by_topic[t].push_back(p);
    }
    protocol::offset_fetch_request req;
    req.group_id = group;
    auto& g = req.groups.emplace_back();
    g.group_id = group;
    // Null topics ask for every partition (the generated defaults are empty lists).
    req.topics.reset();
    g.topics.reset();
    if (partitions) {
        req.topics.emplace();
        g.topics.emplace();
        for (const auto& [t, ps] : by_topic) {
            req.topics->push_back({t, ps, {}});
            g.topics->push_back({t, ps, {}});
        }
    }
    auto resp = coord.call<protocol::offset_fetch_api>(req, v);
    if (!resp) return resp.error();
    std::map<topic_partition, int64_t> out;
    if (partitions) {
        for (const auto& tp : *partitions) out[tp] = -1;
    }
    if (v >= 8) {
        for (const auto& rg : resp->groups) {
            if (rg.error_code != 0) return kafka_failure(rg.error_code, "group " + group);
            for (const auto& t : rg.topics) add_offsets(out, t.name, t.partitions);
        }
    } else {
        if (resp->error_code != 0) return kafka_failure(resp->error_code, "group " + group);
        for (const auto& t : resp->topics) add_offsets(out, t.name, t.partitions);
    }
    return out;
}

group_assignment range_assign(const std::vector<assignor_member>& members,
                              const std::map<std::string, int32_t>& partitions_per_topic) {
    group_assignment out;
    for (const auto& m : members) out[m.member_id];
    for (const auto& [topic, count] : partitions_per_topic) {
        std::vector<const assignor_member*> subscribed;
        for (const auto& m : members) {
            if (std::find(m.topics.begin(), m.topics.end(), topic) != m.topics.end()) {
                subscribed.push_back(&m);
            }
        }
        if (subscribed.empty() || count <= 0) continue;
        std::sort(subscribed.begin(), subscribed.end(), member_before);
        auto n = static_cast<int32_t>(subscribed.size());
        int32_t per = count / n;
        int32_t extra = count % n;
        for (int32_t i = 0; i < n; ++i) {
            int32_t first = per * i + std::min(i, extra);
            int32_t length = per + (i < extra ? 1 : 0);
            if (length == 0) continue;
            protocol::consumer_topic_partitions tp{topic, {}};
            for (int32_t p = first; p < first + length; ++p) tp.partitions.push_back(p);
            out[subscribed[static_cast<size_t>(i)]->member_id].push_back(std::move(tp));
        }
    }
    return out;
}

// ---------------------------------------------------------------------------------------------
// group_member

group_member::group_member(client& c, group_member_options opts)
    : _client(c), _opts(std::move(opts)) {}

std::optional<group_member::status> group_member::classify(int16_t code) {
    switch (code) {
        case 0:
            return status::ok;
        case unknown_member_id:
            _member_id.clear();
            return status::rejoin;
        case illegal_generation:
        case rebalance_in_progress:
            return status::rejoin;
        case coordinator_load_in_progress:
        case coordinator_not_available:
        case not_coordinator:
            _coord.reset();
            return status::retry;
        default:
            return std::nullopt;
    }
}

result<connection*> group_member::coordinator() {
    if (_coord) return _coord.get();
    auto found = find_group_coordinator(_client.any(), _opts.group);
    if (!found) return found.error();
    connection_options o = _client.options().conn;
    o.timeout_ms = std::max(o.timeout_ms, _opts.rebalance_timeout_ms + join_answer_slack_ms);
    auto conn = connection::open(found->address, o);
    if (!conn) return conn.error();
    _coord = std::move(*conn);
    return _coord.get();
}

result<void> group_member::join() {
    std::string last = "no attempt";
    for (int attempt = 0; attempt < join_attempts_max; ++attempt) {
        auto s = join_once();
        if (!s) {
            // The offsets topic may still be coming up on a fresh broker.
            if (!s.error().is(errc::kafka) ||
                s.error().detail().rfind("COORDINATOR_NOT_AVAILABLE", 0) != 0) {
                return s.error();
            }
            last = user_message(s.error());
            std::this_thread::sleep_for(coordinator_backoff);
            continue;
        }
        if (*s == status::ok) {
            _next_heartbeat = clock::now() + std::chrono::milliseconds(_opts.heartbeat_interval_ms);
            return ok();
        }
        last = *s == status::retry ? "the coordinator moved or is loading" : "a rebalance";
        if (*s == status::retry) std::this_thread::sleep_for(coordinator_backoff);
    }
    return error(errc::protocol, "could not join group " + _opts.group + " in " +
                                     std::to_string(join_attempts_max) + " attempts (" + last +
                                     ")");
}

result<group_member::status> group_member::join_once() {
    auto conn = coordinator();
    if (!conn) return conn.error();
    // JoinGroup v1+ carries the rebalance timeout.
    int16_t v = (*conn)->pick_version(protocol::join_group_api::key, 1,
                                      protocol::join_group_api::max_version);
    if (v < 0) return error(errc::no_common_version, "JoinGroup v1+");
    protocol::consumer_subscription sub;
    sub.topics = _opts.topics;
    protocol::join_group_request req;
    req.group_id = _opts.group;
    req.session_timeout_ms = _opts.session_timeout_ms;
    req.rebalance_timeout_ms = _opts.rebalance_timeout_ms;
    req.member_id = _member_id;
    req.protocol_type = protocol::consumer_protocol_type;
    req.protocols.push_back({range_assignor, protocol::encode_subscription(sub), {}});
    _assignment.clear();
    auto resp = (*conn)->call<protocol::join_group_api>(req, v);
    if (!resp) return resp.error();
    if (resp->error_code == member_id_required) {
        _member_id = resp->member_id;  // KIP-394: join again with the id the coordinator gave
        return status::rejoin;
    }
    auto st = classify(resp->error_code);
    if (!st) return kafka_failure(resp->error_code, "JoinGroup " + _opts.group);
    if (*st != status::ok) return *st;
    if (resp->protocol_name.value_or(range_assignor) != range_assignor) {
        return error(errc::protocol, "group " + _opts.group + " chose assignor " +
                                         resp->protocol_name.value_or(""));
    }
    _member_id = resp->member_id;
    _generation = resp->generation_id;
    _leader = resp->leader == resp->member_id;
    return sync(*resp);
}

result<std::vector<protocol::sync_group_request::sync_group_request_assignment>>
group_member::assign(const protocol::join_group_response& joined) {
    std::vector<assignor_member> members;
    std::set<std::string> topics;
    for (const auto& m : joined.members) {
        auto sub = protocol::decode_subscription(m.metadata);
        if (!sub) {
            return error(errc::protocol,
                         "member " + m.member_id + "'s subscription: " + sub.error().describe());
        }
        members.push_back({m.member_id, m.group_instance_id, sub->topics});
        topics.insert(sub->topics.begin(), sub->topics.end());
    }
    std::map<std::string, int32_t> counts;
    for (const auto& t : topics) {
        auto info = _client.topic(t, true);
        // A topic that does not exist (yet) has no partitions to hand out.
        counts[t] = info ? static_cast<int32_t>((*info)->partitions.size()) : 0;
    }
    std::vector<protocol::sync_group_request::sync_group_request_assignment> out;
    for (auto& [member, tps] : range_assign(members, counts)) {
        protocol::consumer_assignment a;
        a.partitions = std::move(tps);
        out.push_back({member, protocol::encode_assignment(a), {}});
    }
    return out;
}

result<group_member::status> group_member::sync(const protocol::join_group_response& joined) {
    connection& conn = *_coord;
    protocol::sync_group_request req;
    req.group_id = _opts.group;
    req.generation_id = _generation;
    req.member_id = _member_id;
    req.protocol_type = protocol::consumer_protocol_type;
    req.protocol_name = range_assignor;
    if (_leader && !joined.skip_assignment) {
        auto a = assign(joined);
        if (!a) return a.error();
        req.assignments = std::move(*a);
    }
    auto resp = conn.call<protocol::sync_group_api>(req);
    if (!resp) return resp.error();
    auto st = classify(resp->error_code);
    if (!st) return kafka_failure(resp->error_code, "SyncGroup " + _opts.group);
    if (*st != status::ok) return *st;
    auto a = protocol::decode_assignment(resp->assignment);
    if (!a) {
        return error(errc::protocol,
                     "assignment of group " + _opts.group + ": " + a.error().describe());
    }
    for (const auto& tp : a->partitions) {
        for (int32_t p : tp.partitions) _assignment.emplace_back(tp.topic, p);
    }
    return status::ok;
}

result<group_member::status> group_member::heartbeat() {
    _next_heartbeat = clock::now() + std::chrono::milliseconds(_opts.heartbeat_interval_ms);
    auto conn = coordinator();
    if (!conn) return conn.error();
    protocol::heartbeat_request req;
    req.group_id = _opts.group;
    req.generation_id = _generation;
    req.member_id = _member_id;
    auto resp = (*conn)->call<protocol::heartbeat_api>(req);
    if (!resp) return resp.error();
    auto st = classify(resp->error_code);
    if (!st) return kafka_failure(resp->error_code, "Heartbeat " + _opts.group);
    return *st;
}

result<group_member::status> group_member::commit(
    const std::map<topic_partition, int64_t>& offsets) {
    auto conn = coordinator();
    if (!conn) return conn.error();
    // v1+ carries the generation and member id that fence a stale member's commit.
    int16_t v = (*conn)->pick_version(protocol::offset_commit_api::key, 1,
                                      protocol::offset_commit_api::max_version);
    if (v < 0) return error(errc::no_common_version, "OffsetCommit v1+");
    protocol::offset_commit_request req;
    req.group_id = _opts.group;
    req.generation_id_or_member_epoch = _generation;
    req.member_id = _member_id;
    for (const auto& [tp, offset] : offsets) {
        if (req.topics.empty() || req.topics.back().name != tp.first) {
            req.topics.emplace_back().name = tp.first;
        }
        auto& p = req.topics.back().partitions.emplace_back();
        p.partition_index = tp.second;
        p.committed_offset = offset;
        p.committed_metadata = "";
    }
    auto resp = (*conn)->call<protocol::offset_commit_api>(req, v);
    if (!resp) return resp.error();
    for (const auto& t : resp->topics) {
        for (const auto& p : t.partitions) {
            if (p.error_code == 0) continue;
            auto st = classify(p.error_code);
            if (!st) {
                return kafka_failure(p.error_code, "OffsetCommit " + _opts.group + " " + t.name +
                                                       "-" + std::to_string(p.partition_index));
            }
            return *st;
        }
    }
    return status::ok;
}

result<std::map<topic_partition, int64_t>> group_member::committed(
    const std::vector<topic_partition>& partitions) {
    auto conn = coordinator();
    if (!conn) return conn.error();
    return fetch_committed_offsets(**conn, _opts.group, partitions);
}

result<void> group_member::leave() {
    if (_member_id.empty()) return ok();
    auto conn = coordinator();
    if (!conn) return conn.error();
    protocol::leave_group_request req;
    req.group_id = _opts.group;
    req.member_id = _member_id;                                           // v0-2
    req.members.push_back({_member_id, std::nullopt, std::nullopt, {}});  // v3+
    auto resp = (*conn)->call<protocol::leave_group_api>(req);
    if (!resp) return resp.error();
    int16_t err = resp->error_code;
    for (const auto& m : resp->members) {
        if (err == 0) err = m.error_code;
    }
    // A member the coordinator already dropped has nothing left to leave.
    if (err != 0 && err != unknown_member_id) {
        return kafka_failure(err, "LeaveGroup " + _opts.group);
    }
    _member_id.clear();
    _generation = -1;
    return ok();
}

}  // namespace sluice::tools
