// `sluice group list | describe | reset-offsets | delete`: what operators get from
// kafka-consumer-groups.sh, over ListGroups, FindCoordinator, DescribeGroups, OffsetFetch,
// ListOffsets, OffsetCommit and DeleteGroups.

#include <algorithm>
#include <cstdio>
#include <map>
#include <set>
#include <string>

#include "tools/commands.h"
#include "tools/group_client.h"

namespace sluice::tools {

namespace {

void usage() {
    std::fprintf(stderr,
                 "usage: sluice group <action> [--bootstrap-server host:port] ...\n"
                 "  list [--state S ...]\n"
                 "  describe GROUP\n"
                 "  reset-offsets GROUP --topic T (--to-earliest | --to-latest | --to-offset N)"
                 " [--execute]\n"
                 "  delete GROUP\n");
}

using tp_key = topic_partition;

// The coordinator of `group` (FindCoordinator), as a connection.
result<connection*> coordinator(client& c, const std::string& group) {
    auto found = find_group_coordinator(c.any(), group);
    if (!found) return found.error();
    if (!c.cluster().brokers.count(found->node_id)) {
        // The broker list comes from Metadata; ask for it (no topics) before connecting.
        if (auto m = c.metadata(std::vector<std::string>{}); !m) return m.error();
    }
    return c.broker(found->node_id);
}

// The partitions in a member's consumer-protocol assignment (none when it does not parse).
std::vector<tp_key> assigned_partitions(const std::vector<std::byte>& b) {
    std::vector<tp_key> out;
    auto a = protocol::decode_assignment(b);
    if (!a) return out;
    for (const auto& tp : a->partitions) {
        for (int32_t p : tp.partitions) out.emplace_back(tp.topic, p);
    }
    return out;
}

// Offsets at `timestamp` (-1 latest, -2 earliest) of every partition in `tps`.
result<std::map<tp_key, int64_t>> list_offsets_at(client& c, const std::set<tp_key>& tps,
                                                  int64_t timestamp) {
    std::map<tp_key, int64_t> out;
    for (const auto& [topic, partition] : tps) {
        auto conn = c.leader_for(topic, partition);
        if (!conn) return conn.error();
        protocol::list_offsets_request req;
        req.replica_id = -1;
        auto& t = req.topics.emplace_back();
        t.name = topic;
        auto& p = t.partitions.emplace_back();
        p.partition_index = partition;
        p.timestamp = timestamp;
        auto resp = (*conn)->call<protocol::list_offsets_api>(req);
        if (!resp) return resp.error();
        for (const auto& rt : resp->topics) {
            for (const auto& rp : rt.partitions) {
                if (rp.error_code != 0) return kafka_failure(rp.error_code, topic);
                out[{topic, partition}] = rp.offset;
            }
        }
    }
    return out;
}

result<protocol::describe_groups_response::described_group> describe_one(connection& coord,
                                                                         const std::string& group) {
    protocol::describe_groups_request req;
    req.groups = {group};
    auto resp = coord.call<protocol::describe_groups_api>(req);
    if (!resp) return resp.error();
    if (resp->groups.empty()) return error(errc::protocol, "DescribeGroups: no answer");
    auto& g = resp->groups[0];
    if (g.error_code != 0) return kafka_failure(g.error_code, group);
    return g;
}

int list(client& c, const args& a) {
    protocol::list_groups_request req;
    req.states_filter = a.all("state");
    auto resp = c.any().call<protocol::list_groups_api>(req);
    if (!resp) return report("group list", resp.error());
    if (resp->error_code != 0) return report("group list", kafka_failure(resp->error_code));
    std::sort(resp->groups.begin(), resp->groups.end(),
              [](const auto& x, const auto& y) { return x.group_id < y.group_id; });
    std::printf("%-40s %-20s %s\n", "GROUP", "STATE", "PROTOCOL-TYPE");
    for (const auto& g : resp->groups) {
        std::printf("%-40s %-20s %s\n", g.group_id.c_str(),
                    g.group_state.empty() ? "-" : g.group_state.c_str(), g.protocol_type.c_str());
    }
    return exit_ok;
}

int describe(client& c, const std::string& group) {
    auto coord = coordinator(c, group);
    if (!coord) return report("group describe", coord.error());
    auto g = describe_one(**coord, group);
    if (!g) return report("group describe", g.error());
    auto committed = fetch_committed_offsets(**coord, group, std::nullopt);
    if (!committed) return report("group describe", committed.error());
    // Who owns what, and every partition the group has a position in or is assigned.
    std::map<tp_key, const protocol::describe_groups_response::described_group_member*> owner;
    for (const auto& m : g->members) {
        for (const auto& tp : assigned_partitions(m.member_assignment)) owner[tp] = &m;
    }
    std::set<tp_key> all;
    for (const auto& [tp, off] : *committed) all.insert(tp);
    for (const auto& [tp, m] : owner) all.insert(tp);
    auto end = list_offsets_at(c, all, -1);
    if (!end) return report("group describe", end.error());
    std::printf("Group %s is %s (%zu member(s), protocol %s)\n\n", group.c_str(),
                g->group_state.c_str(), g->members.size(),
                g->protocol_data.empty() ? "-" : g->protocol_data.c_str());
    std::printf("%-30s %-10s %-15s %-15s %-10s %-45s %-20s %s\n", "TOPIC", "PARTITION",
                "CURRENT-OFFSET", "LOG-END-OFFSET", "LAG", "CONSUMER-ID", "HOST", "CLIENT-ID");
    for (const auto& tp : all) {
        auto ci = committed->find(tp);
        int64_t cur = ci == committed->end() ? -1 : ci->second;
        int64_t leo = end->count(tp) ? end->at(tp) : -1;
        std::string cur_s = cur >= 0 ? std::to_string(cur) : "-";
        std::string lag_s = cur >= 0 && leo >= 0 ? std::to_string(leo - cur) : "-";
        auto oi = owner.find(tp);
        const auto* m = oi == owner.end() ? nullptr : oi->second;
        std::printf("%-30s %-10d %-15s %-15lld %-10s %-45s %-20s %s\n", tp.first.c_str(), tp.second,
                    cur_s.c_str(), static_cast<long long>(leo), lag_s.c_str(),
                    m ? m->member_id.c_str() : "-", m ? m->client_host.c_str() : "-",
                    m ? m->client_id.c_str() : "-");
    }
    return exit_ok;
}

int reset_offsets(client& c, const std::string& group, const args& a) {
    auto topic = a.get("topic");
    if (!topic)
        return report("group reset-offsets", error(errc::bad_argument, "--topic is required"));
    int64_t ts = 0;
    std::optional<int64_t> fixed;
    if (a.has("to-earliest")) {
        ts = -2;
    } else if (a.has("to-latest")) {
        ts = -1;
    } else if (a.get("to-offset")) {
        auto n = a.integer("to-offset", 0, 0, INT64_MAX);
        if (!n) return report("group reset-offsets", n.error());
        fixed = *n;
    } else {
        return report("group reset-offsets",
                      error(errc::bad_argument, "one of --to-earliest, --to-latest, --to-offset"));
    }
    auto info = c.topic(*topic);
    if (!info) return report("group reset-offsets", info.error());
    std::set<tp_key> tps;
    for (const auto& p : (*info)->partitions) tps.insert({*topic, p.partition});
    std::map<tp_key, int64_t> target;
    if (fixed) {
        for (const auto& tp : tps) target[tp] = *fixed;
    } else {
        auto r = list_offsets_at(c, tps, ts);
        if (!r) return report("group reset-offsets", r.error());
        target = *r;
    }
    auto coord = coordinator(c, group);
    if (!coord) return report("group reset-offsets", coord.error());
    auto g = describe_one(**coord, group);
    if (!g) return report("group reset-offsets", g.error());
    if (g->group_state != "Empty" && g->group_state != "Dead") {
        return report("group reset-offsets",
                      error(errc::bad_argument, "group " + group + " is " + g->group_state +
                                                    "; stop its consumers first"));
    }
    std::printf("%-30s %-10s %s\n", "TOPIC", "PARTITION", "NEW-OFFSET");
    for (const auto& [tp, off] : target) {
        std::printf("%-30s %-10d %lld\n", tp.first.c_str(), tp.second, static_cast<long long>(off));
    }
    if (!a.has("execute")) {
        std::printf("(dry run: add --execute to commit these offsets)\n");
        return exit_ok;
    }
    protocol::offset_commit_request req;
    req.group_id = group;
    req.generation_id_or_member_epoch = -1;
    auto& t = req.topics.emplace_back();
    t.name = *topic;
    for (const auto& [tp, off] : target) {
        auto& p = t.partitions.emplace_back();
        p.partition_index = tp.second;
        p.committed_offset = off;
        p.committed_metadata = "";
    }
    auto resp = (*coord)->call<protocol::offset_commit_api>(req);
    if (!resp) return report("group reset-offsets", resp.error());
    for (const auto& rt : resp->topics) {
        for (const auto& rp : rt.partitions) {
            if (rp.error_code != 0) {
                return report("group reset-offsets",
                              kafka_failure(rp.error_code,
                                            rt.name + "-" + std::to_string(rp.partition_index)));
            }
        }
    }
    return exit_ok;
}

int remove(client& c, const std::string& group) {
    auto coord = coordinator(c, group);
    if (!coord) return report("group delete", coord.error());
    protocol::delete_groups_request req;
    req.groups_names = {group};
    auto resp = (*coord)->call<protocol::delete_groups_api>(req);
    if (!resp) return report("group delete", resp.error());
    for (const auto& r : resp->results) {
        if (r.error_code != 0)
            return report("group delete", kafka_failure(r.error_code, r.group_id));
    }
    std::printf("Deleted group %s\n", group.c_str());
    return exit_ok;
}

}  // namespace

int group_main(int argc, char** argv) {
    auto specs = common_options();
    specs.insert(specs.end(), {{"state", true, true},
                               {"topic"},
                               {"to-earliest", false},
                               {"to-latest", false},
                               {"to-offset"},
                               {"execute", false}});
    auto a = args::parse(argc, argv, specs);
    if (!a) {
        usage();
        return report("group", a.error());
    }
    const auto& pos = a->positional();
    if (a->has("help") || pos.empty()) {
        usage();
        return a->has("help") ? exit_ok : exit_usage;
    }
    const std::string& action = pos[0];
    if (action != "list" && pos.size() != 2) {
        usage();
        return report("group", error(errc::bad_argument, action + " takes one group id"));
    }
    auto opts = client_options_from(*a);
    if (!opts) return report("group", opts.error());
    auto c = client::connect(*opts);
    if (!c) return report("group", c.error());
    if (action == "list") return list(**c, *a);
    if (action == "describe") return describe(**c, pos[1]);
    if (action == "reset-offsets") return reset_offsets(**c, pos[1], *a);
    if (action == "delete") return remove(**c, pos[1]);
    usage();
    return report("group", error(errc::bad_argument, "unknown action '" + action + "'"));
}

}  // namespace sluice::tools
