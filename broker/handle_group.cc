// FindCoordinator, JoinGroup, SyncGroup, Heartbeat, LeaveGroup, OffsetCommit, OffsetFetch,
// OffsetDelete, ListGroups, DescribeGroups, DeleteGroups: the broker edge of coord/.
//
// Each request is converted to coord's value types and run on the core that owns the group's
// __consumer_offsets partition (server::owner_of), whose group_coordinator answers; the answer
// comes back to the connection's core, is converted to the Kafka response and sent. coord's
// errors become Kafka codes here, in to_kafka() and nowhere else.

#include <mutex>

#include "base/assert.h"
#include "base/log.h"
#include "broker/cluster.h"
#include "broker/handlers.h"
#include "broker/internal_topics.h"
#include "broker/kafka_error.h"
#include "broker/security.h"
#include "broker/server.h"
#include "broker/shard.h"
#include "coord/group_coordinator.h"
#include "coord/log_reader.h"
#include "coord/txn_coordinator.h"
#include "runtime/clock.h"
#include "runtime/reactor.h"

namespace sluice::broker {

// What a shard keeps for its consumer groups: the coordinator and the reactor-backed timers and
// partition-log storage it runs on. Lives on the shard's core; created by start_groups().
struct group_services final : coord::timer_service, coord::log_storage {
    shard& sh;
    std::unique_ptr<coord::group_coordinator> coordinator;

    explicit group_services(shard& s) : sh(s) {}

    uint64_t schedule(int64_t delay_ms, std::function<void()> fn) override {
        return sh.reactor().add_timer(std::chrono::milliseconds(delay_ms), std::move(fn));
    }
    void cancel(uint64_t id) override { sh.reactor().cancel_timer(id); }

    static model::tp tp_of(int32_t partition) {
        return {coord::offsets_topic, model::partition_id(partition)};
    }
    bool owns(int32_t partition) override {
        if (sh.srv().owner_of(tp_of(partition)) != sh.id()) return false;
        broker::partition* p = sh.find(tp_of(partition));
        // In a cluster, the leader of the group's partition coordinates it.
        return p != nullptr && (p->role == replica_role::single || p->role == replica_role::leader);
    }
    void append(int32_t partition, coord::bytes batch, std::function<void(bool)> done) override {
        auto buf = std::make_shared<coord::bytes>(std::move(batch));
        // Like Kafka's coordinator: acks=all, so a commit survives the leader's failure.
        produce_opts opts;
        opts.wait_isr = true;
        opts.timeout_ms = 5000;
        sh.produce(
            tp_of(partition), *buf,
            [buf, done = std::move(done)](produce_part_result r) {
                if (r.error != kafka_error::none) {
                    log::warn("broker", "append to ", coord::offsets_topic, " failed: ", r.message);
                }
                done(r.error == kafka_error::none);
            },
            {}, opts);
    }
    result<chunk> read(int32_t index, int64_t from, size_t max_bytes) override {
        broker::partition* p = sh.find(tp_of(index));
        if (p == nullptr) return error(errc::invalid_config, "partition not open");
        return coord::read_log_chunk(*p->log, from, max_bytes);
    }
};

kafka_error to_kafka(coord::errc e) {
    switch (e) {
        case coord::errc::none: return kafka_error::none;
        case coord::errc::coordinator_load_in_progress: return kafka_error::coordinator_load_in_progress;
        case coord::errc::coordinator_not_available: return kafka_error::coordinator_not_available;
        case coord::errc::not_coordinator: return kafka_error::not_coordinator;
        case coord::errc::invalid_group_id: return kafka_error::invalid_group_id;
        case coord::errc::unknown_member_id: return kafka_error::unknown_member_id;
        case coord::errc::invalid_session_timeout: return kafka_error::invalid_session_timeout;
        case coord::errc::rebalance_in_progress: return kafka_error::rebalance_in_progress;
        case coord::errc::illegal_generation: return kafka_error::illegal_generation;
        case coord::errc::inconsistent_group_protocol: return kafka_error::inconsistent_group_protocol;
        case coord::errc::member_id_required: return kafka_error::member_id_required;
        case coord::errc::fenced_instance_id: return kafka_error::fenced_instance_id;
        case coord::errc::group_id_not_found: return kafka_error::group_id_not_found;
        case coord::errc::non_empty_group: return kafka_error::non_empty_group;
        case coord::errc::offset_metadata_too_large: return kafka_error::offset_metadata_too_large;
        case coord::errc::group_subscribed_to_topic: return kafka_error::group_subscribed_to_topic;
        case coord::errc::group_max_size_reached: return kafka_error::group_max_size_reached;
        // A failed append to __consumer_offsets: retriable, as Kafka reports it.
        case coord::errc::storage_error: return kafka_error::coordinator_not_available;
        case coord::errc::producer_fenced: return kafka_error::producer_fenced;
        case coord::errc::invalid_producer_id_mapping: return kafka_error::invalid_producer_id_mapping;
        case coord::errc::invalid_txn_state: return kafka_error::invalid_txn_state;
        case coord::errc::concurrent_transactions: return kafka_error::concurrent_transactions;
        case coord::errc::invalid_transaction_timeout: return kafka_error::invalid_transaction_timeout;
        case coord::errc::transactional_id_not_found: return kafka_error::transactional_id_not_found;
        case coord::errc::unknown_topic_or_partition: return kafka_error::unknown_topic_or_partition;
        case coord::errc::unstable_offset_commit: return kafka_error::unstable_offset_commit;
    }
    return kafka_error::unknown_server_error;
}

namespace {

int16_t kcode(coord::errc e) { return code(to_kafka(e)); }

const internal_topic offsets_topic_def{coord::offsets_topic, "offsets.topic.num.partitions",
                                       "offsets.topic.replication.factor",
                                       {{"segment.bytes", "104857600"}}};

int32_t offsets_partitions(server& srv) { return internal_topic_partitions(srv, offsets_topic_def); }

// Creates the compacted __consumer_offsets topic on first use, as Kafka does.
void ensure_offsets_topic(server& srv, std::function<void()> then) {
    ensure_internal_topic(srv, offsets_topic_def, std::move(then));
}

// Runs `op(coordinator, reply)` on the core that owns `group_id`; `done(result)` runs on the
// calling core.
template <class R>
void on_group_core(server& srv, const std::string& group_id,
                   std::function<void(coord::group_coordinator&, std::function<void(R)>)> op,
                   std::function<void(R)> done) {
    int32_t p = coord::partition_for(group_id, offsets_partitions(srv));
    auto get = [](shard& s) -> coord::group_coordinator& {
        SLUICE_ASSERT(s.groups != nullptr, "every shard starts its group coordinator");
        return *s.groups->coordinator;
    };
    on_coordinator_core<coord::group_coordinator, R>(srv, srv.owner_of(group_services::tp_of(p)),
                                                     get, std::move(op), std::move(done));
}

std::string client_id_of(const context_ptr& ctx) { return ctx->header.client_id.value_or(""); }

}  // namespace

void groups_changed(shard& s) {
    if (!s.groups) return;
    s.groups->coordinator->unload_lost();
    s.groups->coordinator->load_owned();
}

void start_groups(shard& s) {
    server& srv = s.srv();
    const auto& cfg = srv.config();
    coord::coordinator_config cc;
    cc.offsets_partitions = offsets_partitions(srv);
    cc.min_session_timeout_ms = static_cast<int32_t>(cfg.int_value("group.min.session.timeout.ms"));
    cc.max_session_timeout_ms = static_cast<int32_t>(cfg.int_value("group.max.session.timeout.ms"));
    cc.initial_rebalance_delay_ms =
        static_cast<int32_t>(cfg.int_value("group.initial.rebalance.delay.ms"));
    cc.max_group_size = static_cast<int32_t>(cfg.int_value("group.max.size"));
    cc.offsets_retention_ms = cfg.int_value("offsets.retention.minutes") * 60 * 1000;
    cc.offsets_retention_check_interval_ms = cfg.int_value("offsets.retention.check.interval.ms");
    auto gs = std::make_shared<group_services>(s);
    gs->coordinator = std::make_unique<coord::group_coordinator>(
        cc, runtime::system_clock::instance(), *gs, *gs);
    s.groups = gs;
    gs->coordinator->load_owned();
}

namespace {

namespace sec = sluice::security;

bool may_group(const request_context& ctx, sec::acl_operation op, const std::string& group) {
    return allowed(ctx, op, sec::resource_type::group, group);
}

// Answers `Resp` with GROUP_AUTHORIZATION_FAILED unless the principal may `op` the group.
template <class Resp>
bool refuse_group(const context_ptr& ctx, sec::acl_operation op, const std::string& group) {
    if (may_group(*ctx, op, group)) return false;
    Resp resp;
    resp.error_code = code(kafka_error::group_authorization_failed);
    if constexpr (requires { resp.generation_id; }) resp.generation_id = -1;
    ctx->respond(resp);
    return true;
}

// An (Txn)OffsetCommit answered with `e` on every partition it names.
template <class Resp, class ReqTopics>
void refuse_every_partition(Resp& resp, const ReqTopics& topics, kafka_error e) {
    for (const auto& t : topics) {
        auto& rt = resp.topics.emplace_back();
        rt.name = t.name;
        for (const auto& p : t.partitions) {
            auto& rp = rt.partitions.emplace_back();
            rp.partition_index = p.partition_index;
            rp.error_code = code(e);
        }
    }
}

}  // namespace

void handle_find_coordinator(context_ptr ctx, protocol::any_request& any) {
    auto& req = std::get<protocol::find_coordinator_request>(any);
    std::vector<std::string> keys =
        ctx->version() >= 4 ? req.coordinator_keys : std::vector<std::string>{req.key};
    int8_t key_type = ctx->version() >= 1 ? req.key_type : 0;
    // Groups live in __consumer_offsets, transactional ids in __transaction_state; each is
    // coordinated by the leader of its key's partition there.
    const char* topic = key_type == 1 ? coord::txn_topic : coord::offsets_topic;
    auto ensure = key_type == 1 ? ensure_txn_topic : ensure_offsets_topic;
    ensure(ctx->srv, [ctx, keys, key_type, topic] {
        server& srv = ctx->srv;
        protocol::find_coordinator_response resp;
        for (const auto& key : keys) {
            protocol::find_coordinator_response::coordinator c;
            c.key = key;
            bool may = key_type == 1 ? allowed(*ctx, sec::acl_operation::describe,
                                               sec::resource_type::transactional_id, key)
                                     : may_group(*ctx, sec::acl_operation::describe, key);
            if (key_type != 0 && key_type != 1) {
                c.error_code = code(kafka_error::invalid_request);
                c.error_message = "unknown coordinator key type " + std::to_string(key_type);
                c.node_id = -1;
                c.host = "";
                c.port = -1;
            } else if (!may) {
                c.error_code = code(key_type == 1 ? kafka_error::transactional_id_authorization_failed
                                                  : kafka_error::group_authorization_failed);
                c.node_id = -1;
                c.host = "";
                c.port = -1;
            } else if (auto* cl = srv.cluster_member()) {
                auto view = cl->view();
                int32_t leader = -1;
                auto t = view->topics->find(topic);
                if (t != view->topics->end() && t->second.partitions > 0) {
                    int32_t p = coord::partition_for(key, t->second.partitions);
                    const auto& st = t->second.states[static_cast<size_t>(p)];
                    if (st) leader = st->leader;
                }
                const auto* b = leader >= 0 ? view->broker(leader) : nullptr;
                if (b == nullptr || b->endpoints.empty()) {
                    c.error_code = code(kafka_error::coordinator_not_available);
                    c.error_message = "the coordinator's partition has no leader yet";
                    c.node_id = -1;
                    c.host = "";
                    c.port = -1;
                } else {
                    c.error_message = std::nullopt;
                    c.node_id = leader;
                    c.host = endpoint_for(*b, ctx->listener).host;
                    c.port = endpoint_for(*b, ctx->listener).port;
                }
            } else {
                c.error_message = std::nullopt;
                c.node_id = srv.node_id();
                c.host = srv.advertised_host(ctx->listener);
                c.port = srv.advertised_port(ctx->listener);
            }
            resp.coordinators.push_back(std::move(c));
        }
        if (ctx->version() < 4 && !resp.coordinators.empty()) {
            const auto& c = resp.coordinators.front();
            resp.error_code = c.error_code;
            resp.error_message = c.error_message;
            resp.node_id = c.node_id;
            resp.host = c.host;
            resp.port = c.port;
            resp.coordinators.clear();
        }
        ctx->respond(resp);
    });
}

void handle_join_group(context_ptr ctx, protocol::any_request& any) {
    auto& req = std::get<protocol::join_group_request>(any);
    if (!may_group(*ctx, sec::acl_operation::read, req.group_id)) {
        protocol::join_group_response resp;
        resp.error_code = code(kafka_error::group_authorization_failed);
        resp.generation_id = -1;
        resp.member_id = req.member_id;
        resp.leader = "";
        if (ctx->version() < 7) resp.protocol_name = "";
        ctx->respond(resp);
        return;
    }
    coord::join_request jr;
    jr.group_id = req.group_id;
    jr.member_id = req.member_id;
    jr.group_instance_id = req.group_instance_id;
    jr.session_timeout_ms = req.session_timeout_ms;
    jr.rebalance_timeout_ms = ctx->version() >= 1 ? req.rebalance_timeout_ms : req.session_timeout_ms;
    jr.protocol_type = req.protocol_type;
    for (auto& p : req.protocols) jr.protocols.push_back({p.name, std::move(p.metadata)});
    jr.client_id = client_id_of(ctx);
    jr.client_host = ctx->client_host;
    jr.require_known_member_id = ctx->version() >= 4;
    std::string group = jr.group_id;
    auto shared = std::make_shared<coord::join_request>(std::move(jr));
    on_group_core<coord::join_result>(
        ctx->srv, group,
        [shared](coord::group_coordinator& c, std::function<void(coord::join_result)> reply) {
            c.join(std::move(*shared), std::move(reply));
        },
        [ctx](coord::join_result r) {
            protocol::join_group_response resp;
            resp.error_code = kcode(r.error);
            resp.generation_id = r.generation_id;
            if (ctx->version() >= 7) resp.protocol_type = r.protocol_type;
            resp.protocol_name = r.protocol_name;
            if (ctx->version() < 7 && !resp.protocol_name) resp.protocol_name = "";
            if (r.error != coord::errc::none) {
                resp.generation_id = -1;
                if (ctx->version() >= 7) {
                    resp.protocol_type.reset();
                    resp.protocol_name.reset();
                }
            }
            resp.leader = r.leader_id;
            resp.skip_assignment = r.skip_assignment && ctx->version() >= 9;
            resp.member_id = r.member_id;
            for (auto& m : r.members) {
                protocol::join_group_response::join_group_response_member rm;
                rm.member_id = m.member_id;
                rm.group_instance_id = m.group_instance_id;
                rm.metadata = std::move(m.metadata);
                resp.members.push_back(std::move(rm));
            }
            ctx->respond(resp);
        });
}

void handle_sync_group(context_ptr ctx, protocol::any_request& any) {
    auto& req = std::get<protocol::sync_group_request>(any);
    if (refuse_group<protocol::sync_group_response>(ctx, sec::acl_operation::read, req.group_id)) return;
    auto sr = std::make_shared<coord::sync_request>();
    sr->group_id = req.group_id;
    sr->member_id = req.member_id;
    sr->group_instance_id = req.group_instance_id;
    sr->generation_id = req.generation_id;
    sr->protocol_type = req.protocol_type;
    sr->protocol_name = req.protocol_name;
    for (auto& a : req.assignments) sr->assignments.emplace_back(a.member_id, std::move(a.assignment));
    on_group_core<coord::sync_result>(
        ctx->srv, sr->group_id,
        [sr](coord::group_coordinator& c, std::function<void(coord::sync_result)> reply) {
            c.sync(std::move(*sr), std::move(reply));
        },
        [ctx](coord::sync_result r) {
            protocol::sync_group_response resp;
            resp.error_code = kcode(r.error);
            resp.protocol_type = r.protocol_type;
            resp.protocol_name = r.protocol_name;
            resp.assignment = std::move(r.assignment);
            ctx->respond(resp);
        });
}

void handle_heartbeat(context_ptr ctx, protocol::any_request& any) {
    auto& req = std::get<protocol::heartbeat_request>(any);
    if (refuse_group<protocol::heartbeat_response>(ctx, sec::acl_operation::read, req.group_id)) return;
    coord::heartbeat_request hr{req.group_id, req.member_id, req.group_instance_id,
                                req.generation_id};
    on_group_core<coord::errc>(
        ctx->srv, hr.group_id,
        [hr](coord::group_coordinator& c, std::function<void(coord::errc)> reply) {
            reply(c.heartbeat(hr));
        },
        [ctx](coord::errc e) {
            protocol::heartbeat_response resp;
            resp.error_code = kcode(e);
            ctx->respond(resp);
        });
}

void handle_leave_group(context_ptr ctx, protocol::any_request& any) {
    auto& req = std::get<protocol::leave_group_request>(any);
    if (refuse_group<protocol::leave_group_response>(ctx, sec::acl_operation::read, req.group_id)) return;
    coord::leave_request lr;
    lr.group_id = req.group_id;
    if (ctx->version() < 3) {
        lr.members.push_back({req.member_id, std::nullopt});
    } else {
        for (const auto& m : req.members) lr.members.push_back({m.member_id, m.group_instance_id});
    }
    on_group_core<coord::leave_result>(
        ctx->srv, lr.group_id,
        [lr](coord::group_coordinator& c, std::function<void(coord::leave_result)> reply) {
            reply(c.leave(lr));
        },
        [ctx, lr](coord::leave_result r) {
            protocol::leave_group_response resp;
            resp.error_code = kcode(r.error);
            if (ctx->version() < 3) {
                if (r.error == coord::errc::none && !r.members.empty()) {
                    resp.error_code = kcode(r.members.front());
                }
            } else {
                for (size_t i = 0; i < r.members.size() && i < lr.members.size(); ++i) {
                    protocol::leave_group_response::member_response m;
                    m.member_id = lr.members[i].member_id;
                    m.group_instance_id = lr.members[i].group_instance_id;
                    m.error_code = kcode(r.members[i]);
                    resp.members.push_back(std::move(m));
                }
            }
            ctx->respond(resp);
        });
}

namespace {

// An OffsetCommit's or TxnOffsetCommit's entries for the coordinator, and the response's topics
// with UNKNOWN_TOPIC_OR_PARTITION set where a partition does not exist; `where` says which
// (topic, partition) of the response each entry's answer goes to.
// Commits to topics the principal may not READ get TOPIC_AUTHORIZATION_FAILED.
template <class RespTopic, class RespPart, class ReqTopic>
void split_commits(const request_context& ctx, const replication::topic_map& snap,
                   const std::vector<ReqTopic>& topics,
                   std::vector<coord::commit_entry>& entries, std::vector<RespTopic>& out,
                   std::vector<std::pair<size_t, size_t>>& where) {
    for (size_t t = 0; t < topics.size(); ++t) {
        const auto& topic = topics[t];
        bool may_read = allowed(ctx, sec::acl_operation::read, sec::resource_type::topic, topic.name);
        auto known = snap.find(topic.name);
        RespTopic rt;
        rt.name = topic.name;
        for (size_t p = 0; p < topic.partitions.size(); ++p) {
            const auto& part = topic.partitions[p];
            RespPart rp;
            rp.partition_index = part.partition_index;
            if (!may_read) {
                rp.error_code = code(kafka_error::topic_authorization_failed);
            } else if (known == snap.end() || part.partition_index < 0 ||
                part.partition_index >= known->second.partitions) {
                rp.error_code = code(kafka_error::unknown_topic_or_partition);
            } else {
                entries.push_back({{topic.name, part.partition_index}, part.committed_offset,
                                   part.committed_leader_epoch, part.committed_metadata});
                where.emplace_back(t, p);
            }
            rt.partitions.push_back(rp);
        }
        out.push_back(std::move(rt));
    }
}

}  // namespace

void handle_offset_commit(context_ptr ctx, protocol::any_request& any) {
    auto req = std::make_shared<protocol::offset_commit_request>(
        std::move(std::get<protocol::offset_commit_request>(any)));
    auto resp = std::make_shared<protocol::offset_commit_response>();
    if (!may_group(*ctx, sec::acl_operation::read, req->group_id)) {
        refuse_every_partition(*resp, req->topics, kafka_error::group_authorization_failed);
        ctx->respond(*resp);
        return;
    }

    auto cr = std::make_shared<coord::commit_request>();
    cr->group_id = req->group_id;
    cr->generation_id = ctx->version() >= 1 ? req->generation_id_or_member_epoch : -1;
    cr->member_id = req->member_id;
    cr->group_instance_id = req->group_instance_id;
    // Where each commit entry's answer goes: (topic index, partition index).
    std::vector<std::pair<size_t, size_t>> where;
    split_commits<protocol::offset_commit_response::offset_commit_response_topic,
                  protocol::offset_commit_response::offset_commit_response_partition>(
        *ctx, *ctx->srv.metadata().snapshot(), req->topics, cr->offsets, resp->topics, where);
    on_group_core<coord::commit_result>(
        ctx->srv, cr->group_id,
        [cr](coord::group_coordinator& c, std::function<void(coord::commit_result)> reply) {
            c.commit(std::move(*cr), std::move(reply));
        },
        [ctx, resp, where](coord::commit_result r) {
            for (size_t i = 0; i < where.size() && i < r.partitions.size(); ++i) {
                resp->topics[where[i].first].partitions[where[i].second].error_code =
                    kcode(r.partitions[i]);
            }
            ctx->respond(*resp);
        });
}

namespace {

// One group's part of OffsetFetch, answered on the group's core.
void fetch_group_offsets(
    server& srv, std::string group, std::optional<std::vector<coord::partition_ref>> parts,
    bool require_stable, std::function<void(coord::fetch_offsets_result)> done) {
    coord::fetch_offsets_request fr{group, std::move(parts), require_stable};
    on_group_core<coord::fetch_offsets_result>(
        srv, group,
        [fr](coord::group_coordinator& c, std::function<void(coord::fetch_offsets_result)> reply) {
            reply(c.fetch_offsets(fr));
        },
        std::move(done));
}

template <class TopicT, class PartT>
std::vector<TopicT> offsets_by_topic(const coord::fetch_offsets_result& r, int16_t group_error,
                                     bool per_partition_error) {
    std::vector<TopicT> out;
    for (const auto& f : r.offsets) {
        if (out.empty() || out.back().name != f.tp.topic) {
            TopicT t;
            t.name = f.tp.topic;
            out.push_back(std::move(t));
        }
        PartT p;
        p.partition_index = f.tp.partition;
        p.committed_offset = f.committed.offset;
        p.committed_leader_epoch = f.committed.leader_epoch;
        p.metadata = f.committed.offset >= 0 ? f.committed.metadata : std::string();
        p.error_code = per_partition_error && group_error != 0 ? group_error : kcode(f.error);
        out.back().partitions.push_back(std::move(p));
    }
    return out;
}

}  // namespace

void handle_offset_fetch(context_ptr ctx, protocol::any_request& any) {
    auto& req = std::get<protocol::offset_fetch_request>(any);
    server& srv = ctx->srv;
    using resp_t = protocol::offset_fetch_response;
    if (ctx->version() < 8) {
        if (!may_group(*ctx, sec::acl_operation::describe, req.group_id)) {
            resp_t resp;
            resp.error_code = code(kafka_error::group_authorization_failed);
            ctx->respond(resp);
            return;
        }
        std::optional<std::vector<coord::partition_ref>> parts;
        if (req.topics) {
            parts.emplace();
            for (const auto& t : *req.topics) {
                for (int32_t p : t.partition_indexes) parts->push_back({t.name, p});
            }
        }
        bool stable = ctx->version() >= 7 && req.require_stable;
        fetch_group_offsets(srv, req.group_id, std::move(parts), stable, [ctx](coord::fetch_offsets_result r) {
            resp_t resp;
            int16_t err = kcode(r.error);
            bool per_partition = ctx->version() < 2;
            resp.error_code = err;
            resp.topics = offsets_by_topic<resp_t::offset_fetch_response_topic,
                                           resp_t::offset_fetch_response_partition>(r, err,
                                                                                    per_partition);
            ctx->respond(resp);
        });
        return;
    }
    auto resp = std::make_shared<resp_t>();
    resp->groups.resize(req.groups.size());
    auto left = std::make_shared<size_t>(req.groups.size());
    if (req.groups.empty()) {
        ctx->respond(*resp);
        return;
    }
    for (size_t i = 0; i < req.groups.size(); ++i) {
        const auto& g = req.groups[i];
        std::optional<std::vector<coord::partition_ref>> parts;
        if (g.topics) {
            parts.emplace();
            for (const auto& t : *g.topics) {
                for (int32_t p : t.partition_indexes) parts->push_back({t.name, p});
            }
        }
        resp->groups[i].group_id = g.group_id;
        if (!may_group(*ctx, sec::acl_operation::describe, g.group_id)) {
            resp->groups[i].error_code = code(kafka_error::group_authorization_failed);
            if (--*left == 0) ctx->respond(*resp);
            continue;
        }
        fetch_group_offsets(srv, g.group_id, std::move(parts), req.require_stable,
                            [ctx, resp, left, i](coord::fetch_offsets_result r) {
                                auto& out = resp->groups[i];
                                out.error_code = kcode(r.error);
                                out.topics = offsets_by_topic<resp_t::offset_fetch_response_topics,
                                                              resp_t::offset_fetch_response_partitions>(
                                    r, out.error_code, false);
                                if (--*left == 0) ctx->respond(*resp);
                            });
    }
}

void handle_offset_delete(context_ptr ctx, protocol::any_request& any) {
    auto& req = std::get<protocol::offset_delete_request>(any);
    if (refuse_group<protocol::offset_delete_response>(ctx, sec::acl_operation::remove, req.group_id)) return;
    auto dr = std::make_shared<coord::delete_offsets_request>();
    dr->group_id = req.group_id;
    auto resp = std::make_shared<protocol::offset_delete_response>();
    for (const auto& t : req.topics) {
        protocol::offset_delete_response::offset_delete_response_topic rt;
        rt.name = t.name;
        for (const auto& p : t.partitions) {
            dr->partitions.push_back({t.name, p.partition_index});
            protocol::offset_delete_response::offset_delete_response_partition rp;
            rp.partition_index = p.partition_index;
            rt.partitions.push_back(rp);
        }
        resp->topics.push_back(std::move(rt));
    }
    on_group_core<coord::delete_offsets_result>(
        ctx->srv, dr->group_id,
        [dr](coord::group_coordinator& c, std::function<void(coord::delete_offsets_result)> reply) {
            c.delete_offsets(std::move(*dr), std::move(reply));
        },
        [ctx, resp](coord::delete_offsets_result r) {
            resp->error_code = kcode(r.error);
            if (r.error != coord::errc::none) resp->topics.clear();
            size_t k = 0;
            for (auto& t : resp->topics) {
                for (auto& p : t.partitions) {
                    if (k < r.partitions.size()) p.error_code = kcode(r.partitions[k]);
                    ++k;
                }
            }
            ctx->respond(*resp);
        });
}

void handle_list_groups(context_ptr ctx, protocol::any_request& any) {
    auto& req = std::get<protocol::list_groups_request>(any);
    std::vector<coord::group_state> filter;
    for (const auto& s : req.states_filter) {
        if (auto st = coord::parse_state(s)) filter.push_back(*st);
    }
    bool filtering = !req.states_filter.empty();
    struct gathered {
        std::mutex mu;
        std::vector<coord::group_listing> groups;
    };
    auto all = std::make_shared<gathered>();
    ctx->srv.run_on_all(
        [all](shard& s) {
            if (s.groups == nullptr) return;
            auto mine = s.groups->coordinator->list_groups();
            std::lock_guard lock(all->mu);
            for (auto& g : mine) all->groups.push_back(std::move(g));
        },
        [ctx, all, filter, filtering] {
            protocol::list_groups_response resp;
            std::lock_guard lock(all->mu);
            // DESCRIBE on the cluster lists every group; otherwise the ones the principal may
            // describe.
            bool every = allowed_on_cluster(*ctx, sec::acl_operation::describe);
            for (const auto& g : all->groups) {
                if (filtering && std::find(filter.begin(), filter.end(), g.state) == filter.end()) {
                    continue;
                }
                if (!every && !may_group(*ctx, sec::acl_operation::describe, g.group_id)) continue;
                protocol::list_groups_response::listed_group lg;
                lg.group_id = g.group_id;
                lg.protocol_type = g.protocol_type;
                lg.group_state = coord::state_name(g.state);
                resp.groups.push_back(std::move(lg));
            }
            ctx->respond(resp);
        });
}

void handle_describe_groups(context_ptr ctx, protocol::any_request& any) {
    auto& req = std::get<protocol::describe_groups_request>(any);
    using resp_t = protocol::describe_groups_response;
    auto resp = std::make_shared<resp_t>();
    resp->groups.resize(req.groups.size());
    if (req.groups.empty()) {
        ctx->respond(*resp);
        return;
    }
    auto left = std::make_shared<size_t>(req.groups.size());
    for (size_t i = 0; i < req.groups.size(); ++i) {
        std::string id = req.groups[i];
        if (!may_group(*ctx, sec::acl_operation::describe, id)) {
            resp->groups[i].error_code = code(kafka_error::group_authorization_failed);
            resp->groups[i].group_id = id;
            resp->groups[i].group_state = "";
            resp->groups[i].protocol_type = "";
            resp->groups[i].protocol_data = "";
            if (--*left == 0) ctx->respond(*resp);
            continue;
        }
        on_group_core<coord::group_description>(
            ctx->srv, id,
            [id](coord::group_coordinator& c, std::function<void(coord::group_description)> reply) {
                reply(c.describe(id));
            },
            [ctx, resp, left, i](coord::group_description d) {
                auto& out = resp->groups[i];
                out.error_code = kcode(d.error);
                out.group_id = d.group_id;
                out.group_state = coord::state_name(d.state);
                out.protocol_type = d.protocol_type;
                out.protocol_data = d.protocol_name;
                for (auto& m : d.members) {
                    resp_t::described_group_member dm;
                    dm.member_id = m.member_id;
                    dm.group_instance_id = m.group_instance_id;
                    dm.client_id = m.client_id;
                    dm.client_host = m.client_host;
                    dm.member_metadata = std::move(m.metadata);
                    dm.member_assignment = std::move(m.assignment);
                    out.members.push_back(std::move(dm));
                }
                if (--*left == 0) ctx->respond(*resp);
            });
    }
}

void handle_delete_groups(context_ptr ctx, protocol::any_request& any) {
    auto& req = std::get<protocol::delete_groups_request>(any);
    auto resp = std::make_shared<protocol::delete_groups_response>();
    resp->results.resize(req.groups_names.size());
    if (req.groups_names.empty()) {
        ctx->respond(*resp);
        return;
    }
    auto left = std::make_shared<size_t>(req.groups_names.size());
    for (size_t i = 0; i < req.groups_names.size(); ++i) {
        std::string id = req.groups_names[i];
        resp->results[i].group_id = id;
        if (!may_group(*ctx, sec::acl_operation::remove, id)) {
            resp->results[i].error_code = code(kafka_error::group_authorization_failed);
            if (--*left == 0) ctx->respond(*resp);
            continue;
        }
        on_group_core<coord::errc>(
            ctx->srv, id,
            [id](coord::group_coordinator& c, std::function<void(coord::errc)> reply) {
                c.delete_group(id, std::move(reply));
            },
            [ctx, resp, left, i](coord::errc e) {
                resp->results[i].error_code = kcode(e);
                if (--*left == 0) ctx->respond(*resp);
            });
    }
}

}  // namespace sluice::broker

namespace sluice::broker {

std::vector<committed_offset_view> committed_offsets(shard& s) {
    std::vector<committed_offset_view> out;
    if (s.groups == nullptr || s.groups->coordinator == nullptr) return out;
    for (const auto& g : s.groups->coordinator->list_groups()) {
        auto r = s.groups->coordinator->fetch_offsets({g.group_id, std::nullopt, false});
        if (r.error != coord::errc::none) continue;
        for (const auto& f : r.offsets) {
            if (f.committed.offset >= 0) {
                out.push_back({g.group_id, f.tp.topic, f.tp.partition, f.committed.offset});
            }
        }
    }
    return out;
}

void txn_offsets_completed(shard& s, int32_t partition, int64_t producer_id, bool commit) {
    if (s.groups) s.groups->coordinator->complete_txn(partition, producer_id, commit);
}

void handle_txn_offset_commit(context_ptr ctx, protocol::any_request& any) {
    auto req = std::make_shared<protocol::txn_offset_commit_request>(
        std::move(std::get<protocol::txn_offset_commit_request>(any)));
    auto resp = std::make_shared<protocol::txn_offset_commit_response>();
    bool may = allowed(*ctx, sec::acl_operation::write, sec::resource_type::transactional_id,
                       req->transactional_id);
    if (!may || !may_group(*ctx, sec::acl_operation::read, req->group_id)) {
        refuse_every_partition(*resp, req->topics,
                               may ? kafka_error::group_authorization_failed
                                   : kafka_error::transactional_id_authorization_failed);
        ctx->respond(*resp);
        return;
    }
    auto cr = std::make_shared<coord::txn_commit_request>();
    cr->group_id = req->group_id;
    cr->producer_id = req->producer_id;
    cr->producer_epoch = req->producer_epoch;
    if (ctx->version() >= 3) {
        cr->generation_id = req->generation_id;
        cr->member_id = req->member_id;
        cr->group_instance_id = req->group_instance_id;
    }
    std::vector<std::pair<size_t, size_t>> where;
    split_commits<protocol::txn_offset_commit_response::txn_offset_commit_response_topic,
                  protocol::txn_offset_commit_response::txn_offset_commit_response_partition>(
        *ctx, *ctx->srv.metadata().snapshot(), req->topics, cr->offsets, resp->topics, where);
    on_group_core<coord::commit_result>(
        ctx->srv, cr->group_id,
        [cr](coord::group_coordinator& c, std::function<void(coord::commit_result)> reply) {
            c.txn_commit(std::move(*cr), std::move(reply));
        },
        [ctx, resp, where](coord::commit_result r) {
            for (size_t i = 0; i < where.size() && i < r.partitions.size(); ++i) {
                auto e = to_kafka(r.partitions[i]);
                // TxnOffsetCommit before v2 knows INVALID_PRODUCER_EPOCH, not PRODUCER_FENCED.
                if (e == kafka_error::producer_fenced && ctx->version() < 2) {
                    e = kafka_error::invalid_producer_epoch;
                }
                resp->topics[where[i].first].partitions[where[i].second].error_code = code(e);
            }
            ctx->respond(*resp);
        });
}

}  // namespace sluice::broker
