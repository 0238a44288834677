// ApiVersions, Metadata, DescribeCluster, InitProducerId, and the handler table.

#include <algorithm>
#include <cstring>

#include "base/log.h"
#include "broker/cluster.h"
#include "broker/handlers.h"
#include "broker/kafka_error.h"
#include "broker/security.h"
#include "broker/server.h"
#include "broker/shard.h"
#include "protocol/api.h"
#include "replication/cluster_state.h"
#include "replication/metadata_store.h"

namespace sluice::broker {

namespace sec = sluice::security;

namespace {

const handler_entry table[] = {
    {0, 0, 9, handle_produce},
    {1, 0, 13, handle_fetch},
    {2, 0, 7, handle_list_offsets},
    {3, 0, 12, handle_metadata},
    {8, 0, 8, handle_offset_commit},
    {9, 0, 8, handle_offset_fetch},
    {10, 0, 4, handle_find_coordinator},
    {11, 0, 9, handle_join_group},
    {12, 0, 4, handle_heartbeat},
    {13, 0, 5, handle_leave_group},
    {14, 0, 5, handle_sync_group},
    {15, 0, 5, handle_describe_groups},
    {16, 0, 4, handle_list_groups},
    {17, 0, 1, handle_sasl_handshake},
    {18, 0, 3, handle_api_versions},
    {19, 0, 7, handle_create_topics},
    {20, 0, 6, handle_delete_topics},
    {21, 0, 2, handle_delete_records},
    {22, 0, 4, handle_init_producer_id},
    {23, 0, 4, handle_offset_for_leader_epoch},
    {24, 0, 3, handle_add_partitions_to_txn},
    {25, 0, 3, handle_add_offsets_to_txn},
    {26, 0, 3, handle_end_txn},
    {27, 0, 1, handle_write_txn_markers},
    {28, 0, 3, handle_txn_offset_commit},
    {29, 0, 3, handle_describe_acls},
    {30, 0, 3, handle_create_acls},
    {31, 0, 3, handle_delete_acls},
    {32, 0, 4, handle_describe_configs},
    {33, 0, 2, handle_alter_configs},
    {35, 0, 4, handle_describe_log_dirs},
    {36, 0, 2, handle_sasl_authenticate},
    {37, 0, 3, handle_create_partitions},
    {42, 0, 2, handle_delete_groups},
    {43, 0, 2, handle_elect_leaders},
    {45, 0, 0, handle_alter_partition_reassignments},
    {46, 0, 0, handle_list_partition_reassignments},
    {44, 0, 1, handle_incremental_alter_configs},
    {47, 0, 0, handle_offset_delete},
    {48, 0, 1, handle_describe_client_quotas},
    {49, 0, 1, handle_alter_client_quotas},
    {50, 0, 0, handle_describe_user_scram_credentials},
    {51, 0, 0, handle_alter_user_scram_credentials},
    {60, 0, 1, handle_describe_cluster},
    {61, 0, 0, handle_describe_producers},
    {65, 0, 0, handle_describe_transactions},
    {66, 0, 1, handle_list_transactions},
};

// The live brokers of a cluster view as Metadata / DescribeCluster entries (their first
// endpoint is the one clients get).
template <class Entry>
void add_live_brokers(const replication::cluster_view& view, std::vector<Entry>& out,
                      int32_t Entry::*id, const std::string& listener) {
    for (const auto& br : view.brokers) {
        if (br.endpoints.empty()) continue;
        Entry b;
        b.*id = br.id;
        const auto& ep = endpoint_for(br, listener);
        b.host = ep.host;
        b.port = ep.port;
        out.push_back(b);
    }
}

protocol::uuid to_uuid(const replication::topic_id& id) {
    protocol::uuid u;
    std::memcpy(u.bytes.data(), id.data(), 16);
    return u;
}


}  // namespace

std::span<const handler_entry> handler_table() { return table; }

const handler_entry* find_handler(int16_t api_key) {
    for (const auto& e : table) {
        if (e.api_key == api_key) return &e;
    }
    return nullptr;
}

const replication::broker_endpoint& endpoint_for(const replication::broker_registration& b,
                                                 const std::string& listener) {
    for (const auto& ep : b.endpoints) {
        if (ep.listener == listener) return ep;
    }
    return b.endpoints.front();
}

net::output to_output(protocol::writer& w) {
    net::output out;
    if (!w.has_files()) {
        out.append(w.take_bytes());
        return out;
    }
    for (const auto& piece : w.pieces()) {
        if (const auto* mem = std::get_if<std::span<const std::byte>>(&piece)) {
            if (!mem->empty()) out.append_copy(*mem);
        } else {
            out.append(std::get<file_region>(piece));
        }
    }
    return out;
}

namespace {
// What ApiVersions advertises: every registered handler, within the protocol's definitions.
std::vector<protocol::api_versions_response::api_version> advertised_apis() {
    std::vector<protocol::api_versions_response::api_version> out;
    for (const auto& e : table) {
        const protocol::api_info* info = protocol::find_api(e.api_key);
        if (info == nullptr) continue;
        protocol::api_versions_response::api_version v;
        v.api_key = e.api_key;
        v.min_version = std::max(e.min_version, info->min_version);
        v.max_version = std::min(e.max_version, info->max_version);
        if (v.min_version <= v.max_version) out.push_back(v);
    }
    return out;
}
}  // namespace

net::output unsupported_api_versions_response(int32_t correlation_id) {
    protocol::api_versions_response resp;
    resp.error_code = code(kafka_error::unsupported_version);
    resp.api_keys = advertised_apis();
    protocol::writer w(256);
    protocol::encode_response_frame(w, protocol::api_versions_key, 0, correlation_id, resp);
    return to_output(w);
}

void handle_api_versions(context_ptr ctx, protocol::any_request&) {
    protocol::api_versions_response resp;
    resp.api_keys = advertised_apis();
    ctx->respond(resp);
}

void handle_metadata(context_ptr ctx, protocol::any_request& any) {
    auto& req = std::get<protocol::metadata_request>(any);
    server& srv = ctx->srv;
    auto snap = srv.metadata().snapshot();
    // Auto-create the topics that were asked for and do not exist, when allowed.
    // A cluster member that has not read the cluster yet knows no topic: it neither creates
    // nor denies any (LEADER_NOT_AVAILABLE, which clients retry).
    bool joining = srv.cluster_member() != nullptr && srv.cluster_member()->view()->brokers.empty();
    bool allow = srv.config().bool_value("auto.create.topics.enable") && !joining &&
                 (ctx->version() < 4 || req.allow_auto_topic_creation);
    std::vector<std::string> to_create;
    if (req.topics && allow) {
        for (const auto& t : *req.topics) {
            if (t.name && !snap->contains(*t.name) && replication::validate_topic_name(*t.name) &&
                (allowed_on_cluster(*ctx, sec::acl_operation::create) ||
                 allowed(*ctx, sec::acl_operation::create, sec::resource_type::topic, *t.name))) {
                to_create.push_back(*t.name);
            }
        }
    }
    auto answer = [ctx, req = std::move(req)]() mutable {
        server& srv = ctx->srv;
        auto snap = srv.metadata().snapshot();
        protocol::metadata_response resp;
        resp.cluster_id = srv.metadata().cluster_id();
        cluster* cl = srv.cluster_member();
        auto view = cl ? cl->view() : nullptr;
        if (view) {
            add_live_brokers(*view, resp.brokers,
                             &protocol::metadata_response::metadata_response_broker::node_id,
                             ctx->listener);
            resp.controller_id = view->controller_id;
        } else {
            protocol::metadata_response::metadata_response_broker b;
            b.node_id = srv.node_id();
            b.host = srv.advertised_host(ctx->listener);
            b.port = srv.advertised_port(ctx->listener);
            resp.brokers.push_back(b);
            resp.controller_id = srv.node_id();
        }
        auto describe = [&](const replication::topic_metadata& t) {
            protocol::metadata_response::metadata_response_topic rt;
            rt.name = t.name;
            rt.topic_id = to_uuid(t.id);
            rt.is_internal = !t.name.empty() && t.name[0] == '_' && t.name.rfind("__", 0) == 0;
            for (int32_t i = 0; i < t.partitions; ++i) {
                protocol::metadata_response::metadata_response_partition p;
                p.partition_index = i;
                if (!view) {
                    p.leader_id = srv.node_id();
                    p.leader_epoch = 0;
                    p.replica_nodes = {srv.node_id()};
                    p.isr_nodes = {srv.node_id()};
                } else {
                    auto idx = static_cast<size_t>(i);
                    if (idx < t.replicas.size()) p.replica_nodes = t.replicas[idx];
                    const auto& st = idx < t.states.size() ? t.states[idx] : std::nullopt;
                    p.leader_id = st && view->live(st->leader) ? st->leader : -1;
                    p.leader_epoch = st ? st->leader_epoch : -1;
                    if (st) p.isr_nodes = st->isr;
                    for (int32_t r : p.replica_nodes) {
                        if (!view->live(r)) p.offline_replicas.push_back(r);
                    }
                    if (p.leader_id < 0) p.error_code = code(kafka_error::leader_not_available);
                }
                rt.partitions.push_back(std::move(p));
            }
            resp.topics.push_back(std::move(rt));
        };
        // Topics the principal may not DESCRIBE are left out of "all topics", and named ones
        // are answered TOPIC_AUTHORIZATION_FAILED whether they exist or not.
        auto may_describe = [&](const std::string& name) {
            return allowed(*ctx, sec::acl_operation::describe, sec::resource_type::topic, name);
        };
        // v0 has no null: an empty list there asks for every topic.
        if (!req.topics || (ctx->version() == 0 && req.topics->empty())) {
            for (const auto& [name, t] : *snap) {
                if (may_describe(name)) describe(t);
            }
        } else {
            for (const auto& want : *req.topics) {
                auto it = want.name ? snap->find(*want.name) : snap->end();
                if (it == snap->end() && !want.topic_id.is_zero()) {
                    it = std::find_if(snap->begin(), snap->end(), [&](const auto& kv) {
                        return to_uuid(kv.second.id) == want.topic_id;
                    });
                }
                std::optional<std::string> name = it != snap->end() ? std::optional(it->first) : want.name;
                if (name && !may_describe(*name)) {
                    protocol::metadata_response::metadata_response_topic rt;
                    rt.name = want.name;
                    rt.topic_id = want.topic_id;
                    rt.error_code = code(kafka_error::topic_authorization_failed);
                    resp.topics.push_back(std::move(rt));
                    continue;
                }
                if (it != snap->end()) {
                    describe(it->second);
                    continue;
                }
                protocol::metadata_response::metadata_response_topic rt;
                rt.name = want.name;
                rt.topic_id = want.topic_id;
                bool valid = want.name && replication::validate_topic_name(*want.name);
                bool joining = view && view->brokers.empty();
                rt.error_code = code(!valid   ? kafka_error::invalid_topic_exception
                                     : joining ? kafka_error::leader_not_available
                                               : kafka_error::unknown_topic_or_partition);
                resp.topics.push_back(std::move(rt));
            }
        }
        ctx->respond(resp);
    };
    if (to_create.empty()) {
        answer();
        return;
    }
    int32_t partitions = static_cast<int32_t>(srv.config().int_value("num.partitions"));
    auto shared_answer = std::make_shared<decltype(answer)>(std::move(answer));
    auto names = std::make_shared<std::vector<std::string>>(std::move(to_create));
    // The creation may block on ZooKeeper: off the core in cluster mode.
    srv.metadata_write(
        [ctx, names, partitions] {
            server& srv = ctx->srv;
            for (const auto& name : *names) {
                replication::topic_spec spec;
                spec.name = name;
                spec.partitions = partitions;
                if (srv.cluster_member() != nullptr) {
                    spec.replication_factor =
                        static_cast<int16_t>(srv.config().int_value("default.replication.factor"));
                }
                auto created = srv.metadata().create_topic(spec);
                if (created) {
                    log::info("broker", "auto-created topic ", name, " with ", partitions,
                              " partition(s)");
                } else {
                    log::warn("broker", "auto-creating topic ", name, ": ",
                              created.error().describe());
                }
            }
        },
        [ctx, names, partitions, shared_answer] {
            auto pending = std::make_shared<size_t>(names->size());
            for (const auto& name : *names) {
                ctx->srv.open_partitions(name, 0, partitions, [pending, shared_answer] {
                    if (--*pending == 0) (*shared_answer)();
                });
            }
        });
}

void handle_describe_cluster(context_ptr ctx, protocol::any_request&) {
    server& srv = ctx->srv;
    protocol::describe_cluster_response resp;
    resp.cluster_id = srv.metadata().cluster_id();
    if (cluster* cl = srv.cluster_member()) {
        auto view = cl->view();
        resp.controller_id = view->controller_id;
        add_live_brokers(*view, resp.brokers,
                         &protocol::describe_cluster_response::describe_cluster_broker::broker_id,
                         ctx->listener);
        ctx->respond(resp);
        return;
    }
    resp.controller_id = srv.node_id();
    protocol::describe_cluster_response::describe_cluster_broker b;
    b.broker_id = srv.node_id();
    b.host = srv.advertised_host(ctx->listener);
    b.port = srv.advertised_port(ctx->listener);
    resp.brokers.push_back(b);
    ctx->respond(resp);
}

void handle_init_producer_id(context_ptr ctx, protocol::any_request& any) {
    auto& req = std::get<protocol::init_producer_id_request>(any);
    protocol::init_producer_id_response resp;
    if (req.transactional_id && !req.transactional_id->empty()) {
        if (!allowed(*ctx, sec::acl_operation::write, sec::resource_type::transactional_id,
                     *req.transactional_id)) {
            resp.error_code = code(kafka_error::transactional_id_authorization_failed);
            resp.producer_id = -1;
            resp.producer_epoch = -1;
            ctx->respond(resp);
            return;
        }
        handle_init_producer_id_txn(ctx, req);
        return;
    }
    // An idempotent producer: IDEMPOTENT_WRITE on the cluster, or WRITE on some topic (KIP-679).
    if (!allowed_on_cluster(*ctx, sec::acl_operation::idempotent_write) &&
        !allowed_on_any(*ctx, sec::acl_operation::write, sec::resource_type::topic)) {
        resp.error_code = code(kafka_error::cluster_authorization_failed);
        resp.producer_id = -1;
        resp.producer_epoch = -1;
        ctx->respond(resp);
        return;
    }
    if (req.producer_id >= 0) {
        // An idempotent producer bumping its epoch (KIP-360): keep its id, advance the epoch.
        resp.producer_id = req.producer_id;
        resp.producer_epoch = static_cast<int16_t>(req.producer_epoch + 1);
        if (resp.producer_epoch < 0) {
            auto id = ctx->srv.allocate_producer_id();
            resp.producer_id = id ? *id : -1;
            resp.producer_epoch = 0;
        }
        ctx->respond(resp);
        return;
    }
    auto id = ctx->srv.allocate_producer_id();
    if (!id) {
        log::error("broker", "cannot allocate a producer id: ", id.error().describe());
        resp.error_code = code(kafka_error::kafka_storage_error);
        resp.producer_id = -1;
        resp.producer_epoch = -1;
    } else {
        resp.producer_id = *id;
        resp.producer_epoch = 0;
    }
    ctx->respond(resp);
}

}  // namespace sluice::broker
