// `sluice txn`: transactions as their coordinators and partitions see them (Kafka's
// kafka-transactions.sh): list them (ListTransactions on every broker), describe one
// (DescribeTransactions at its coordinator), find hanging ones (DescribeProducers on partition
// leaders: a transaction open on a partition that its coordinator does not know as open, or
// older than a bound), and abort a hanging one (WriteTxnMarkers ABORT to the partition leader).

#include <cstdio>
#include <ctime>
#include <map>
#include <set>

#include "tools/commands.h"
#include "tools/group_client.h"

namespace sluice::tools {

namespace {

void usage() {
    std::fprintf(
        stderr,
        "usage: sluice txn list [--state S] [--producer-id N] [--min-age-ms MS]\n"
        "  Every transactional id the coordinators know, with its producer id and state.\n"
        "       sluice txn describe TRANSACTIONAL_ID\n"
        "  Its coordinator, producer id and epoch, state, timeout, start time and partitions.\n"
        "       sluice txn find-hanging [--topic T] [--min-age-ms MS]\n"
        "  Open transactions on partitions (DescribeProducers) that no coordinator lists as\n"
        "  ongoing, or that are older than MS (default 900000, transaction.max.timeout.ms).\n"
        "       sluice txn abort --topic T --partition P (--start-offset O | --producer-id N\n"
        "                        --producer-epoch E)\n"
        "  Writes an ABORT marker for a hanging transaction on that partition.\n");
}

int64_t now_ms() {
    timespec ts{};
    clock_gettime(CLOCK_REALTIME, &ts);
    return int64_t{ts.tv_sec} * 1000 + ts.tv_nsec / 1000000;
}

struct listed {
    std::string id;
    int64_t producer_id;
    std::string state;
    int32_t coordinator;
};

// ListTransactions on every broker (each answers for the ids it coordinates).
result<std::vector<listed>> list_all(client& c, const protocol::list_transactions_request& req) {
    auto md = c.metadata(std::nullopt);
    if (!md) return md.error();
    std::vector<int32_t> ids;
    for (const auto& [id, addr] : (*md)->brokers) ids.push_back(id);
    std::vector<listed> out;
    for (int32_t id : ids) {
        auto conn = c.broker(id);
        if (!conn) return conn.error();
        auto resp = (*conn)->call<protocol::list_transactions_api>(req);
        if (!resp) return resp.error();
        if (resp->error_code != 0) {
            return kafka_failure(resp->error_code, "ListTransactions on broker " + std::to_string(id));
        }
        for (const auto& f : resp->unknown_state_filters) {
            std::fprintf(stderr, "sluice txn list: unknown state '%s'\n", f.c_str());
        }
        for (const auto& t : resp->transaction_states) {
            out.push_back({t.transactional_id, t.producer_id, t.transaction_state, id});
        }
    }
    return out;
}

int list(client& c, const args& a) {
    protocol::list_transactions_request req;
    if (a.has("state")) req.state_filters.push_back(a.get_or("state", ""));
    if (a.has("producer-id")) {
        auto p = a.integer("producer-id", 0, 0, INT64_MAX);
        if (!p) return report("txn list", p.error());
        req.producer_id_filters.push_back(*p);
    }
    auto age = a.integer("min-age-ms", -1, -1, INT64_MAX);
    if (!age) return report("txn list", age.error());
    req.duration_filter = *age;
    auto all = list_all(c, req);
    if (!all) return report("txn list", all.error());
    std::printf("%-40s %-12s %-16s %s\n", "TransactionalId", "Coordinator", "ProducerId", "State");
    for (const auto& t : *all) {
        std::printf("%-40s %-12d %-16lld %s\n", t.id.c_str(), t.coordinator,
                    static_cast<long long>(t.producer_id), t.state.c_str());
    }
    return exit_ok;
}

int describe(client& c, const std::string& id) {
    if (auto md = c.metadata(std::nullopt); !md) return report("txn describe", md.error());
    auto found = find_group_coordinator(c.any(), id, 1);
    if (!found) return report("txn describe", found.error());
    auto conn = c.broker(found->node_id);
    if (!conn) return report("txn describe", conn.error());
    protocol::describe_transactions_request req;
    req.transactional_ids = {id};
    auto resp = (*conn)->call<protocol::describe_transactions_api>(req);
    if (!resp) return report("txn describe", resp.error());
    if (resp->transaction_states.empty()) {
        std::fprintf(stderr, "sluice txn describe: empty answer\n");
        return exit_failed;
    }
    const auto& t = resp->transaction_states.front();
    if (t.error_code != 0) {
        std::fprintf(stderr, "sluice txn describe: %s: %s\n", id.c_str(),
                     kafka_error_name(t.error_code).c_str());
        return exit_failed;
    }
    std::printf("TransactionalId: %s\tCoordinator: %d\tProducerId: %lld\tProducerEpoch: %d\n",
                id.c_str(), found->node_id, static_cast<long long>(t.producer_id),
                t.producer_epoch);
    std::printf("State: %s\tTimeoutMs: %d\tStartTimeMs: %lld", t.transaction_state.c_str(),
                t.transaction_timeout_ms, static_cast<long long>(t.transaction_start_time_ms));
    if (t.transaction_start_time_ms >= 0) {
        std::printf("\tDurationMs: %lld",
                    static_cast<long long>(now_ms() - t.transaction_start_time_ms));
    }
    std::printf("\n");
    for (const auto& topic : t.topics) {
        for (int32_t p : topic.partitions) std::printf("\tPartition: %s-%d\n", topic.topic.c_str(), p);
    }
    return exit_ok;
}

struct open_txn {
    std::string topic;
    int32_t partition;
    int64_t producer_id;
    int32_t epoch;
    int64_t start_offset;
};

// Open transactions on the partitions of `topics` (all when empty), from their leaders.
result<std::vector<open_txn>> open_transactions(client& c, const std::vector<std::string>& topics) {
    auto md = c.metadata(topics.empty() ? std::nullopt
                                        : std::optional<std::vector<std::string>>(topics));
    if (!md) return md.error();
    std::map<int32_t, std::map<std::string, std::vector<int32_t>>> by_leader;
    for (const auto& [name, t] : (*md)->topics) {
        for (const auto& p : t.partitions) {
            if (p.leader >= 0) by_leader[p.leader][name].push_back(p.partition);
        }
    }
    std::vector<open_txn> out;
    for (const auto& [leader, parts] : by_leader) {
        auto conn = c.broker(leader);
        if (!conn) return conn.error();
        protocol::describe_producers_request req;
        for (const auto& [name, ps] : parts) {
            protocol::describe_producers_request::topic_request tr;
            tr.name = name;
            tr.partition_indexes = ps;
            req.topics.push_back(std::move(tr));
        }
        auto resp = (*conn)->call<protocol::describe_producers_api>(req);
        if (!resp) return resp.error();
        for (const auto& t : resp->topics) {
            for (const auto& p : t.partitions) {
                for (const auto& s : p.active_producers) {
                    if (s.current_txn_start_offset < 0) continue;
                    out.push_back({t.name, p.partition_index, s.producer_id, s.producer_epoch,
                                   s.current_txn_start_offset});
                }
            }
        }
    }
    return out;
}

int find_hanging(client& c, const args& a) {
    std::vector<std::string> topics;
    if (a.has("topic")) topics.push_back(a.get_or("topic", ""));
    auto age = a.integer("min-age-ms", 900000, 0, INT64_MAX);
    if (!age) return report("txn find-hanging", age.error());
    auto open = open_transactions(c, topics);
    if (!open) return report("txn find-hanging", open.error());
    // The producers whose transaction a coordinator knows as open, and since when.
    protocol::list_transactions_request lr;
    lr.state_filters = {"Ongoing", "PrepareCommit", "PrepareAbort"};
    auto ongoing = list_all(c, lr);
    if (!ongoing) return report("txn find-hanging", ongoing.error());
    protocol::list_transactions_request old_req = lr;
    old_req.duration_filter = *age;
    auto too_old = list_all(c, old_req);
    if (!too_old) return report("txn find-hanging", too_old.error());
    std::set<int64_t> known, old;
    for (const auto& t : *ongoing) known.insert(t.producer_id);
    for (const auto& t : *too_old) old.insert(t.producer_id);
    int hanging = 0;
    std::printf("%-30s %-10s %-16s %-8s %-14s %s\n", "Topic", "Partition", "ProducerId", "Epoch",
                "StartOffset", "Why");
    for (const auto& o : *open) {
        const char* why = !known.count(o.producer_id) ? "no coordinator lists it as open"
                          : old.count(o.producer_id)  ? "open longer than --min-age-ms"
                                                      : nullptr;
        if (why == nullptr) continue;
        ++hanging;
        std::printf("%-30s %-10d %-16lld %-8d %-14lld %s\n", o.topic.c_str(), o.partition,
                    static_cast<long long>(o.producer_id), o.epoch,
                    static_cast<long long>(o.start_offset), why);
    }
    std::printf("%d hanging transaction(s)\n", hanging);
    return exit_ok;
}

int abort_txn(client& c, const args& a) {
    if (!a.has("topic") || !a.has("partition") ||
        (!a.has("start-offset") && !(a.has("producer-id") && a.has("producer-epoch")))) {
        usage();
        return exit_usage;
    }
    std::string topic = a.get_or("topic", "");
    auto part = a.integer("partition", 0, 0, INT32_MAX);
    if (!part) return report("txn abort", part.error());
    int64_t pid = -1;
    int64_t epoch = -1;
    if (a.has("start-offset")) {
        auto start = a.integer("start-offset", 0, 0, INT64_MAX);
        if (!start) return report("txn abort", start.error());
        auto open = open_transactions(c, {topic});
        if (!open) return report("txn abort", open.error());
        for (const auto& o : *open) {
            if (o.partition == *part && o.start_offset == *start) {
                pid = o.producer_id;
                epoch = o.epoch;
            }
        }
        if (pid < 0) {
            std::fprintf(stderr, "sluice txn abort: no open transaction starts at %s-%lld:%lld\n",
                         topic.c_str(), static_cast<long long>(*part),
                         static_cast<long long>(*start));
            return exit_failed;
        }
    } else {
        auto p = a.integer("producer-id", 0, 0, INT64_MAX);
        auto e = a.integer("producer-epoch", 0, 0, INT16_MAX);
        if (!p) return report("txn abort", p.error());
        if (!e) return report("txn abort", e.error());
        pid = *p;
        epoch = *e;
    }
    auto conn = c.leader_for(topic, static_cast<int32_t>(*part));
    if (!conn) return report("txn abort", conn.error());
    protocol::write_txn_markers_request req;
    protocol::write_txn_markers_request::writable_txn_marker m;
    m.producer_id = pid;
    m.producer_epoch = static_cast<int16_t>(epoch);
    m.transaction_result = false;
    m.coordinator_epoch = -1;
    protocol::write_txn_markers_request::writable_txn_marker_topic t;
    t.name = topic;
    t.partition_indexes = {static_cast<int32_t>(*part)};
    m.topics.push_back(std::move(t));
    req.markers.push_back(std::move(m));
    auto resp = (*conn)->call<protocol::write_txn_markers_api>(req);
    if (!resp) return report("txn abort", resp.error());
    for (const auto& mr : resp->markers) {
        for (const auto& tr : mr.topics) {
            for (const auto& pr : tr.partitions) {
                if (pr.error_code != 0) {
                    std::fprintf(stderr, "sluice txn abort: %s-%d: %s\n", tr.name.c_str(),
                                 pr.partition_index, kafka_error_name(pr.error_code).c_str());
                    return exit_failed;
                }
            }
        }
    }
    std::printf("Aborted the transaction of producer %lld (epoch %lld) on %s-%lld\n",
                static_cast<long long>(pid), static_cast<long long>(epoch), topic.c_str(),
                static_cast<long long>(*part));
    return exit_ok;
}

}  // namespace

int txn_main(int argc, char** argv) {
    auto specs = common_options();
    specs.insert(specs.end(), {{"state"}, {"producer-id"}, {"producer-epoch"}, {"min-age-ms"},
                               {"topic"}, {"partition"}, {"start-offset"}});
    auto a = args::parse(argc, argv, specs);
    if (!a) {
        usage();
        return report("txn", a.error());
    }
    const auto& pos = a->positional();
    bool ok = !pos.empty() && ((pos[0] == "describe" && pos.size() == 2) ||
                               ((pos[0] == "list" || pos[0] == "find-hanging" ||
                                 pos[0] == "abort") && pos.size() == 1));
    if (a->has("help") || !ok) {
        usage();
        return a->has("help") ? exit_ok : exit_usage;
    }
    auto opts = client_options_from(*a);
    if (!opts) return report("txn", opts.error());
    auto c = client::connect(*opts);
    if (!c) return report("txn", c.error());
    if (pos[0] == "list") return list(**c, *a);
    if (pos[0] == "describe") return describe(**c, pos[1]);
    if (pos[0] == "find-hanging") return find_hanging(**c, *a);
    return abort_txn(**c, *a);
}

}  // namespace sluice::tools
