// Transactions at the broker edge: InitProducerId (transactional), AddPartitionsToTxn,
// AddOffsetsToTxn, EndTxn, WriteTxnMarkers, DescribeTransactions, ListTransactions,
// DescribeProducers, and the shard services the transaction coordinator runs on
// (coord/txn_coordinator.h).
//
// Each transactional request runs on the core that owns the transactional id's
// __transaction_state partition, whose coordinator answers. Markers go to partition leaders:
// this broker's own partitions through shard::write_marker on their cores, other brokers'
// through WriteTxnMarkers sent by the marker_sender thread.

#include <chrono>
#include <mutex>

#include "base/assert.h"
#include "base/log.h"
#include "broker/cluster.h"
#include "broker/fanout.h"
#include "broker/handlers.h"
#include "broker/internal_topics.h"
#include "broker/kafka_error.h"
#include "broker/security.h"
#include "broker/marker_sender.h"
#include "broker/server.h"
#include "broker/shard.h"
#include "coord/group_coordinator.h"
#include "coord/log_reader.h"
#include "coord/txn_coordinator.h"
#include "model/records.h"
#include "replication/cluster_state.h"
#include "runtime/clock.h"
#include "runtime/reactor.h"

namespace sluice::broker {

namespace sec = sluice::security;


namespace {

model::tp txn_tp(int32_t partition) { return {coord::txn_topic, model::partition_id(partition)}; }

// Whether a marker write's answer means the partition has (or needs no) marker.
bool marker_done(kafka_error e) {
    switch (e) {
        case kafka_error::none:
        case kafka_error::unknown_topic_or_partition:  // deleted: nothing to mark
        case kafka_error::invalid_producer_epoch:      // a newer epoch already ended it
            return true;
        default:
            return false;
    }
}

}  // namespace

// What a shard keeps for transactions: its coordinator, and the timers, __transaction_state
// storage and marker writer it runs on. Lives on the shard's core; created by start_txns().
struct txn_services final : coord::timer_service, coord::log_storage, coord::marker_writer {
    shard& sh;
    std::unique_ptr<coord::txn_coordinator> coordinator;

    explicit txn_services(shard& s) : sh(s) {}

    uint64_t schedule(int64_t delay_ms, std::function<void()> fn) override {
        return sh.reactor().add_timer(std::chrono::milliseconds(delay_ms), std::move(fn));
    }
    void cancel(uint64_t id) override { sh.reactor().cancel_timer(id); }

    broker::partition* leading(int32_t partition) {
        if (sh.srv().owner_of(txn_tp(partition)) != sh.id()) return nullptr;
        broker::partition* p = sh.find(txn_tp(partition));
        if (p == nullptr) return nullptr;
        return p->role == replica_role::single || p->role == replica_role::leader ? p : nullptr;
    }
    bool owns(int32_t partition) override { return leading(partition) != nullptr; }
    int32_t leader_epoch(int32_t partition) override {
        broker::partition* p = leading(partition);
        return p == nullptr ? 0 : p->leader_epoch;
    }
    void append(int32_t partition, coord::bytes batch, std::function<void(bool)> done) override {
        auto buf = std::make_shared<coord::bytes>(std::move(batch));
        produce_opts opts;
        opts.wait_isr = true;  // a decided outcome must survive the coordinator's failure
        opts.timeout_ms = 5000;
        sh.produce(
            txn_tp(partition), *buf,
            [buf, done = std::move(done)](produce_part_result r) {
                if (r.error != kafka_error::none) {
                    log::warn("broker", "append to ", coord::txn_topic, " failed: ", r.message);
                }
                done(r.error == kafka_error::none);
            },
            {}, opts);
    }
    result<chunk> read(int32_t index, int64_t from, size_t max_bytes) override {
        broker::partition* p = sh.find(txn_tp(index));
        if (p == nullptr) return error(errc::invalid_config, "partition not open");
        return coord::read_log_chunk(*p->log, from, max_bytes);
    }

    void write(const marker& m, std::vector<coord::txn_partition> partitions,
               std::function<void(std::vector<coord::txn_partition>)> done) override;

private:
    void write_local(const marker& m, std::vector<coord::txn_partition> parts,
                     std::function<void(std::vector<coord::txn_partition>)> done);
    void write_remote(int32_t leader, const marker& m, std::vector<coord::txn_partition> parts,
                      std::function<void(std::vector<coord::txn_partition>)> done);
};

void txn_services::write(const marker& m, std::vector<coord::txn_partition> partitions,
                         std::function<void(std::vector<coord::txn_partition>)> done) {
    server& srv = sh.srv();
    // Where each partition's leader is: here, another broker, or nowhere yet.
    std::map<int32_t, std::vector<coord::txn_partition>> by_leader;
    std::vector<coord::txn_partition> no_leader;
    auto snap = srv.metadata().snapshot();
    for (auto& tp : partitions) {
        auto t = snap->find(tp.topic);
        if (t == snap->end() || tp.partition < 0 || tp.partition >= t->second.partitions) continue;
        int32_t leader = srv.node_id();
        if (auto* cl = srv.cluster_member()) {
            auto view = cl->view();
            leader = -1;
            auto vt = view->topics->find(tp.topic);
            if (vt != view->topics->end() &&
                static_cast<size_t>(tp.partition) < vt->second.states.size()) {
                const auto& st = vt->second.states[static_cast<size_t>(tp.partition)];
                if (st) leader = st->leader;
            }
        }
        if (leader < 0) {
            no_leader.push_back(tp);
        } else {
            by_leader[leader].push_back(tp);
        }
    }
    struct gather {
        size_t pending = 0;
        std::vector<coord::txn_partition> failed;
        std::function<void(std::vector<coord::txn_partition>)> done;
    };
    auto g = std::make_shared<gather>();
    g->failed = std::move(no_leader);
    g->pending = by_leader.size();
    g->done = std::move(done);
    if (g->pending == 0) {
        g->done(std::move(g->failed));
        return;
    }
    auto part_done = [g](std::vector<coord::txn_partition> failed) {
        g->failed.insert(g->failed.end(), failed.begin(), failed.end());
        if (--g->pending == 0) g->done(std::move(g->failed));
    };
    for (auto& [leader, parts] : by_leader) {
        if (leader == srv.node_id()) {
            write_local(m, std::move(parts), part_done);
        } else {
            write_remote(leader, m, std::move(parts), part_done);
        }
    }
}

void txn_services::write_local(const marker& m, std::vector<coord::txn_partition> parts,
                               std::function<void(std::vector<coord::txn_partition>)> done) {
    std::vector<model::tp> tps;
    for (const auto& p : parts) tps.push_back({p.topic, model::partition_id(p.partition)});
    fan_out<kafka_error>(
        sh.srv(), tps,
        [tps, m](shard& s, size_t i, std::function<void(kafka_error)> reply) {
            s.write_marker(tps[i], m.producer_id, m.producer_epoch, m.commit, m.coordinator_epoch,
                           std::move(reply));
        },
        [parts, done = std::move(done)](std::vector<kafka_error> errs) {
            std::vector<coord::txn_partition> failed;
            for (size_t i = 0; i < errs.size(); ++i) {
                if (!marker_done(errs[i])) failed.push_back(parts[i]);
            }
            done(std::move(failed));
        });
}

void txn_services::write_remote(int32_t leader, const marker& m,
                                std::vector<coord::txn_partition> parts,
                                std::function<void(std::vector<coord::txn_partition>)> done) {
    server& srv = sh.srv();
    auto* cl = srv.cluster_member();
    auto view = cl->view();
    const auto* b = view->broker(leader);
    if (b == nullptr || b->endpoints.empty()) {
        done(std::move(parts));
        return;
    }
    protocol::write_txn_markers_request req;
    protocol::write_txn_markers_request::writable_txn_marker wm;
    wm.producer_id = m.producer_id;
    wm.producer_epoch = m.producer_epoch;
    wm.transaction_result = m.commit;
    wm.coordinator_epoch = m.coordinator_epoch;
    std::map<std::string, std::vector<int32_t>> by_topic;
    for (const auto& p : parts) by_topic[p.topic].push_back(p.partition);
    for (auto& [topic, ps] : by_topic) {
        protocol::write_txn_markers_request::writable_txn_marker_topic t;
        t.name = topic;
        t.partition_indexes = ps;
        wm.topics.push_back(std::move(t));
    }
    req.markers.push_back(std::move(wm));
    srv.markers().send(
        leader, b->endpoints.front().host, b->endpoints.front().port, std::move(req),
        runtime::reactor::local(),
        [parts, done = std::move(done)](std::optional<protocol::write_txn_markers_response> r) {
            if (!r || r->markers.empty()) {
                done(parts);
                return;
            }
            std::vector<coord::txn_partition> failed;
            std::set<coord::txn_partition> answered;
            for (const auto& t : r->markers.front().topics) {
                for (const auto& p : t.partitions) {
                    coord::txn_partition tp{t.name, p.partition_index};
                    answered.insert(tp);
                    if (!marker_done(static_cast<kafka_error>(p.error_code))) failed.push_back(tp);
                }
            }
            for (const auto& p : parts) {
                if (!answered.count(p)) failed.push_back(p);
            }
            done(std::move(failed));
        });
}

namespace {

const internal_topic txn_topic_def{coord::txn_topic, "transaction.state.log.num.partitions",
                                    "transaction.state.log.replication.factor", {},
                                    "transaction.state.log.min.isr"};

int32_t txn_partitions(server& srv) { return internal_topic_partitions(srv, txn_topic_def); }

kafka_error txn_error(coord::errc e, int16_t version, int16_t fenced_from_version) {
    kafka_error k = to_kafka(e);
    // Before KIP-588's versions the clients know INVALID_PRODUCER_EPOCH, not PRODUCER_FENCED.
    if (k == kafka_error::producer_fenced && version < fenced_from_version) {
        k = kafka_error::invalid_producer_epoch;
    }
    return k;
}

// Runs `op(coordinator, reply)` on the core that owns `id`'s partition; `done` runs on the
// calling core.
template <class R>
void on_txn_core(server& srv, const std::string& id,
                 std::function<void(coord::txn_coordinator&, std::function<void(R)>)> op,
                 std::function<void(R)> done) {
    int32_t p = coord::partition_for(id, txn_partitions(srv));
    auto get = [](shard& s) -> coord::txn_coordinator& {
        SLUICE_ASSERT(s.transactions != nullptr, "every shard starts its transaction coordinator");
        return *s.transactions->coordinator;
    };
    on_coordinator_core<coord::txn_coordinator, R>(srv, srv.owner_of(txn_tp(p)), get,
                                                   std::move(op), std::move(done));
}

}  // namespace

void ensure_txn_topic(server& srv, std::function<void()> then) {
    // The segment size comes from the broker's config too (transaction.state.log.segment.bytes).
    internal_topic t = txn_topic_def;
    t.configs["segment.bytes"] =
        std::to_string(srv.config().int_value("transaction.state.log.segment.bytes"));
    ensure_internal_topic(srv, t, std::move(then));
}

void start_txns(shard& s) {
    server& srv = s.srv();
    const auto& cfg = srv.config();
    coord::txn_coordinator_config tc;
    tc.state_partitions = txn_partitions(srv);
    tc.max_timeout_ms = static_cast<int32_t>(cfg.int_value("transaction.max.timeout.ms"));
    tc.abort_check_interval_ms =
        cfg.int_value("transaction.abort.timed.out.transaction.cleanup.interval.ms");
    tc.id_expiration_ms = cfg.int_value("transactional.id.expiration.ms");
    auto ts = std::make_shared<txn_services>(s);
    ts->coordinator = std::make_unique<coord::txn_coordinator>(
        tc, runtime::system_clock::instance(), *ts, *ts, *ts,
        [&srv] { return srv.allocate_producer_id(); });
    s.transactions = ts;
    ts->coordinator->load_owned();
}

void txns_changed(shard& s) {
    if (!s.transactions) return;
    s.transactions->coordinator->unload_lost();
    s.transactions->coordinator->load_owned();
}

void shard::write_marker(const model::tp& tp, int64_t producer_id, int16_t producer_epoch,
                         bool commit, int32_t coordinator_epoch,
                         std::function<void(kafka_error)> done) {
    auto batch = std::make_shared<std::vector<std::byte>>(model::make_control_batch(
        producer_id, producer_epoch, commit ? model::control_type::commit : model::control_type::abort,
        coordinator_epoch, runtime::system_clock::instance().now_ms()));
    produce_opts opts;
    opts.internal = true;
    opts.wait_isr = true;  // Kafka writes markers with acks=all
    opts.timeout_ms = 10000;
    int32_t index = tp.partition();
    bool offsets = tp.topic == coord::offsets_topic;
    produce(
        tp, *batch,
        [this, batch, index, offsets, producer_id, commit,
         done = std::move(done)](produce_part_result r) {
            if (r.error == kafka_error::none && offsets) {
                txn_offsets_completed(*this, index, producer_id, commit);
            }
            if (r.error != kafka_error::none && r.error != kafka_error::invalid_producer_epoch) {
                log::debug("broker", "marker for producer ", producer_id, ": ", r.message);
            }
            done(r.error);
        },
        {}, opts);
}

// ---- requests ----------------------------------------------------------------------------------

void handle_init_producer_id_txn(context_ptr ctx, protocol::init_producer_id_request& req) {
    coord::init_pid_request ir;
    ir.transactional_id = *req.transactional_id;
    ir.timeout_ms = req.transaction_timeout_ms;
    if (ctx->version() >= 3) {
        ir.producer_id = req.producer_id;
        ir.producer_epoch = req.producer_epoch;
    }
    ensure_txn_topic(ctx->srv, [ctx, ir] {
        on_txn_core<coord::init_pid_result>(
            ctx->srv, ir.transactional_id,
            [ir](coord::txn_coordinator& c, std::function<void(coord::init_pid_result)> reply) {
                c.init_producer_id(ir, std::move(reply));
            },
            [ctx](coord::init_pid_result r) {
                protocol::init_producer_id_response resp;
                resp.error_code = code(txn_error(r.error, ctx->version(), 4));
                resp.producer_id = r.producer_id;
                resp.producer_epoch = r.producer_epoch;
                ctx->respond(resp);
            });
    });
}

void handle_add_partitions_to_txn(context_ptr ctx, protocol::any_request& any) {
    auto& req = std::get<protocol::add_partitions_to_txn_request>(any);
    using resp_t = protocol::add_partitions_to_txn_response;
    auto resp = std::make_shared<resp_t>();
    auto ar = std::make_shared<coord::add_partitions_request>();
    ar->transactional_id = req.v3_and_below_transactional_id;
    ar->producer_id = req.v3_and_below_producer_id;
    ar->producer_epoch = req.v3_and_below_producer_epoch;
    auto snap = ctx->srv.metadata().snapshot();
    bool unknown = false;
    for (const auto& t : req.v3_and_below_topics) {
        auto known = snap->find(t.name);
        for (int32_t p : t.partitions) {
            if (known == snap->end() || p < 0 || p >= known->second.partitions) unknown = true;
            ar->partitions.push_back({t.name, p});
        }
    }
    // Every partition gets the request's one outcome; an unknown partition fails the request
    // before the coordinator sees it (the others: OPERATION_NOT_ATTEMPTED), as in Kafka.
    auto answer = [ctx, resp, ar, snap](kafka_error all) {
        std::map<std::string, resp_t::add_partitions_to_txn_topic_result> topics;
        for (const auto& tp : ar->partitions) {
            auto& tr = topics[tp.topic];
            tr.name = tp.topic;
            resp_t::add_partitions_to_txn_partition_result pr;
            pr.partition_index = tp.partition;
            kafka_error e = all;
            if (all == kafka_error::topic_authorization_failed) {
                e = allowed(*ctx, sec::acl_operation::write, sec::resource_type::topic, tp.topic)
                        ? kafka_error::operation_not_attempted
                        : kafka_error::topic_authorization_failed;
            }
            if (all == kafka_error::unknown_topic_or_partition) {
                auto known = snap->find(tp.topic);
                bool bad = known == snap->end() || tp.partition < 0 ||
                           tp.partition >= known->second.partitions;
                e = bad ? kafka_error::unknown_topic_or_partition
                        : kafka_error::operation_not_attempted;
            }
            pr.partition_error_code = code(e);
            tr.results_by_partition.push_back(pr);
        }
        for (auto& [name, tr] : topics) resp->results_by_topic_v3_and_below.push_back(std::move(tr));
        ctx->respond(*resp);
    };
    if (unknown) {
        answer(kafka_error::unknown_topic_or_partition);
        return;
    }
    if (!allowed(*ctx, sec::acl_operation::write, sec::resource_type::transactional_id, ar->transactional_id)) {
        answer(kafka_error::transactional_id_authorization_failed);
        return;
    }
    bool topics_ok = true;
    for (const auto& t : req.v3_and_below_topics) {
        topics_ok &= allowed(*ctx, sec::acl_operation::write, sec::resource_type::topic, t.name);
    }
    if (!topics_ok) {
        answer(kafka_error::topic_authorization_failed);
        return;
    }
    on_txn_core<coord::errc>(
        ctx->srv, ar->transactional_id,
        [ar](coord::txn_coordinator& c, std::function<void(coord::errc)> reply) {
            c.add_partitions(*ar, std::move(reply));
        },
        [ctx, answer](coord::errc e) { answer(txn_error(e, ctx->version(), 2)); });
}

void handle_add_offsets_to_txn(context_ptr ctx, protocol::any_request& any) {
    auto& req = std::get<protocol::add_offsets_to_txn_request>(any);
    bool may_txn = allowed(*ctx, sec::acl_operation::write, sec::resource_type::transactional_id,
                           req.transactional_id);
    if (!may_txn || !allowed(*ctx, sec::acl_operation::read, sec::resource_type::group, req.group_id)) {
        protocol::add_offsets_to_txn_response resp;
        resp.error_code = code(may_txn ? kafka_error::group_authorization_failed
                                       : kafka_error::transactional_id_authorization_failed);
        ctx->respond(resp);
        return;
    }
    auto ar = std::make_shared<coord::add_partitions_request>();
    ar->transactional_id = req.transactional_id;
    ar->producer_id = req.producer_id;
    ar->producer_epoch = req.producer_epoch;
    std::string group = req.group_id;
    // The group's __consumer_offsets partition joins the transaction: its marker settles the
    // offsets TxnOffsetCommit writes there.
    auto snap = ctx->srv.metadata().snapshot();
    auto it = snap->find(coord::offsets_topic);
    int32_t n = it != snap->end()
                    ? it->second.partitions
                    : static_cast<int32_t>(ctx->srv.config().int_value("offsets.topic.num.partitions"));
    ar->partitions.push_back({coord::offsets_topic, coord::partition_for(group, n)});
    on_txn_core<coord::errc>(
        ctx->srv, ar->transactional_id,
        [ar](coord::txn_coordinator& c, std::function<void(coord::errc)> reply) {
            c.add_partitions(*ar, std::move(reply));
        },
        [ctx](coord::errc e) {
            protocol::add_offsets_to_txn_response resp;
            resp.error_code = code(txn_error(e, ctx->version(), 2));
            ctx->respond(resp);
        });
}

void handle_end_txn(context_ptr ctx, protocol::any_request& any) {
    auto& req = std::get<protocol::end_txn_request>(any);
    if (!allowed(*ctx, sec::acl_operation::write, sec::resource_type::transactional_id, req.transactional_id)) {
        protocol::end_txn_response resp;
        resp.error_code = code(kafka_error::transactional_id_authorization_failed);
        ctx->respond(resp);
        return;
    }
    coord::end_txn_request er{req.transactional_id, req.producer_id, req.producer_epoch,
                              req.committed};
    on_txn_core<coord::errc>(
        ctx->srv, er.transactional_id,
        [er](coord::txn_coordinator& c, std::function<void(coord::errc)> reply) {
            c.end_txn(er, std::move(reply));
        },
        [ctx](coord::errc e) {
            protocol::end_txn_response resp;
            resp.error_code = code(txn_error(e, ctx->version(), 2));
            ctx->respond(resp);
        });
}

void handle_write_txn_markers(context_ptr ctx, protocol::any_request& any) {
    auto req = std::make_shared<protocol::write_txn_markers_request>(
        std::move(std::get<protocol::write_txn_markers_request>(any)));
    using resp_t = protocol::write_txn_markers_response;
    auto resp = std::make_shared<resp_t>();
    auto snap = ctx->srv.metadata().snapshot();
    // Markers come from transaction coordinators (other brokers): CLUSTER_ACTION.
    bool may = allowed_on_cluster(*ctx, sec::acl_operation::cluster_action);
    // Every (marker, topic, partition) as one write, answered in place.
    struct slot {
        size_t marker, topic, partition;
    };
    std::vector<model::tp> tps;
    std::vector<slot> where;
    std::vector<size_t> of_marker;
    for (size_t m = 0; m < req->markers.size(); ++m) {
        const auto& wm = req->markers[m];
        resp_t::writable_txn_marker_result mr;
        mr.producer_id = wm.producer_id;
        for (size_t t = 0; t < wm.topics.size(); ++t) {
            const auto& wt = wm.topics[t];
            resp_t::writable_txn_marker_topic_result tr;
            tr.name = wt.name;
            auto known = snap->find(wt.name);
            for (size_t p = 0; p < wt.partition_indexes.size(); ++p) {
                int32_t index = wt.partition_indexes[p];
                resp_t::writable_txn_marker_partition_result pr;
                pr.partition_index = index;
                if (!may) {
                    pr.error_code = code(kafka_error::cluster_authorization_failed);
                } else if (known == snap->end() || index < 0 || index >= known->second.partitions) {
                    pr.error_code = code(kafka_error::unknown_topic_or_partition);
                } else {
                    tps.push_back({wt.name, model::partition_id(index)});
                    where.push_back({m, t, p});
                    of_marker.push_back(m);
                }
                tr.partitions.push_back(pr);
            }
            mr.topics.push_back(std::move(tr));
        }
        resp->markers.push_back(std::move(mr));
    }
    fan_out<kafka_error>(
        ctx->srv, tps,
        [tps, req, of_marker](shard& s, size_t i, std::function<void(kafka_error)> reply) {
            const auto& wm = req->markers[of_marker[i]];
            s.write_marker(tps[i], wm.producer_id, wm.producer_epoch, wm.transaction_result,
                           wm.coordinator_epoch, std::move(reply));
        },
        [ctx, resp, where](std::vector<kafka_error> errs) {
            for (size_t i = 0; i < errs.size(); ++i) {
                const auto& w = where[i];
                resp->markers[w.marker].topics[w.topic].partitions[w.partition].error_code =
                    code(errs[i]);
            }
            ctx->respond(*resp);
        });
}

void handle_describe_transactions(context_ptr ctx, protocol::any_request& any) {
    auto& req = std::get<protocol::describe_transactions_request>(any);
    using resp_t = protocol::describe_transactions_response;
    auto resp = std::make_shared<resp_t>();
    resp->transaction_states.resize(req.transactional_ids.size());
    if (req.transactional_ids.empty()) {
        ctx->respond(*resp);
        return;
    }
    auto left = std::make_shared<size_t>(req.transactional_ids.size());
    for (size_t i = 0; i < req.transactional_ids.size(); ++i) {
        std::string id = req.transactional_ids[i];
        if (!allowed(*ctx, sec::acl_operation::describe, sec::resource_type::transactional_id, id)) {
            auto& out = resp->transaction_states[i];
            out.error_code = code(kafka_error::transactional_id_authorization_failed);
            out.transactional_id = id;
            out.transaction_state = "";
            if (--*left == 0) ctx->respond(*resp);
            continue;
        }
        on_txn_core<coord::txn_description>(
            ctx->srv, id,
            [id](coord::txn_coordinator& c, std::function<void(coord::txn_description)> reply) {
                reply(c.describe(id));
            },
            [ctx, resp, left, i](coord::txn_description d) {
                auto& out = resp->transaction_states[i];
                out.error_code = code(to_kafka(d.error));
                out.transactional_id = d.transactional_id;
                out.transaction_state = coord::txn_state_name(d.state);
                out.transaction_timeout_ms = d.timeout_ms;
                out.transaction_start_time_ms = d.start_ms;
                out.producer_id = d.producer_id;
                out.producer_epoch = d.producer_epoch;
                std::map<std::string, std::vector<int32_t>> by_topic;
                for (const auto& p : d.partitions) by_topic[p.topic].push_back(p.partition);
                for (auto& [topic, ps] : by_topic) {
                    resp_t::topic_data td;
                    td.topic = topic;
                    td.partitions = std::move(ps);
                    out.topics.push_back(std::move(td));
                }
                if (--*left == 0) ctx->respond(*resp);
            });
    }
}

void handle_list_transactions(context_ptr ctx, protocol::any_request& any) {
    auto& req = std::get<protocol::list_transactions_request>(any);
    auto resp = std::make_shared<protocol::list_transactions_response>();
    std::set<coord::txn_state> states;
    for (const auto& s : req.state_filters) {
        if (auto st = coord::parse_txn_state(s)) {
            states.insert(*st);
        } else {
            resp->unknown_state_filters.push_back(s);
        }
    }
    std::set<int64_t> pids(req.producer_id_filters.begin(), req.producer_id_filters.end());
    int64_t min_age_ms = ctx->version() >= 1 ? req.duration_filter : -1;
    bool by_state = !req.state_filters.empty();
    struct gathered {
        std::mutex mu;
        std::vector<coord::txn_listing> all;
    };
    auto g = std::make_shared<gathered>();
    ctx->srv.run_on_all(
        [g](shard& s) {
            if (s.transactions == nullptr) return;
            auto mine = s.transactions->coordinator->list();
            std::lock_guard lock(g->mu);
            for (auto& l : mine) g->all.push_back(std::move(l));
        },
        [ctx, resp, g, states, pids, min_age_ms, by_state] {
            int64_t now = runtime::system_clock::instance().now_ms();
            std::lock_guard lock(g->mu);
            for (const auto& l : g->all) {
                if (by_state && !states.count(l.state)) continue;
                if (!pids.empty() && !pids.count(l.producer_id)) continue;
                if (min_age_ms >= 0 && (l.start_ms < 0 || now - l.start_ms < min_age_ms)) continue;
                if (!allowed(*ctx, sec::acl_operation::describe, sec::resource_type::transactional_id,
                             l.transactional_id)) {
                    continue;
                }
                protocol::list_transactions_response::transaction_state_entry ts;
                ts.transactional_id = l.transactional_id;
                ts.producer_id = l.producer_id;
                ts.transaction_state = coord::txn_state_name(l.state);
                resp->transaction_states.push_back(std::move(ts));
            }
            ctx->respond(*resp);
        });
}

void handle_describe_producers(context_ptr ctx, protocol::any_request& any) {
    auto& req = std::get<protocol::describe_producers_request>(any);
    using resp_t = protocol::describe_producers_response;
    auto resp = std::make_shared<resp_t>();
    auto snap = ctx->srv.metadata().snapshot();
    std::vector<model::tp> tps;
    std::vector<std::pair<size_t, size_t>> where;
    for (size_t t = 0; t < req.topics.size(); ++t) {
        const auto& rt = req.topics[t];
        resp_t::topic_response tr;
        tr.name = rt.name;
        auto known = snap->find(rt.name);
        for (size_t p = 0; p < rt.partition_indexes.size(); ++p) {
            int32_t index = rt.partition_indexes[p];
            resp_t::partition_response pr;
            pr.partition_index = index;
            if (!allowed(*ctx, sec::acl_operation::read, sec::resource_type::topic, rt.name)) {
                pr.error_code = code(kafka_error::topic_authorization_failed);
            } else if (known == snap->end() || index < 0 || index >= known->second.partitions) {
                pr.error_code = code(kafka_error::unknown_topic_or_partition);
            } else {
                tps.push_back({rt.name, model::partition_id(index)});
                where.emplace_back(t, p);
            }
            tr.partitions.push_back(std::move(pr));
        }
        resp->topics.push_back(std::move(tr));
    }
    using part_t = resp_t::partition_response;
    fan_out<part_t>(
        ctx->srv, tps,
        [tps](shard& s, size_t i, std::function<void(part_t)> reply) {
            part_t out;
            out.partition_index = tps[i].partition();
            partition* p = s.find(tps[i]);
            if (p == nullptr || (p->role != replica_role::single && !p->leader)) {
                out.error_code = code(p == nullptr ? kafka_error::unknown_topic_or_partition
                                                   : kafka_error::not_leader_or_follower);
                reply(std::move(out));
                return;
            }
            const auto& open = p->txns.open();
            for (const auto& sum : p->producers.summaries()) {
                resp_t::producer_state ps;
                ps.producer_id = sum.producer_id;
                ps.producer_epoch = sum.epoch;
                ps.last_sequence = sum.last_seq;
                ps.coordinator_epoch = -1;
                auto o = open.find(sum.producer_id);
                ps.current_txn_start_offset = o == open.end() ? -1 : o->second;
                out.active_producers.push_back(ps);
            }
            reply(std::move(out));
        },
        [ctx, resp, where](std::vector<part_t> parts) {
            for (size_t i = 0; i < parts.size(); ++i) {
                resp->topics[where[i].first].partitions[where[i].second] = std::move(parts[i]);
            }
            ctx->respond(*resp);
        });
}

}  // namespace sluice::broker
