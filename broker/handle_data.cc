// Produce, Fetch, ListOffsets, OffsetForLeaderEpoch, DeleteRecords.

#include <algorithm>
#include <chrono>
#include <climits>
#include <cstring>
#include <list>

#include <unistd.h>

#include "base/log.h"
#include "broker/fanout.h"
#include "broker/fetch_session.h"
#include "broker/handlers.h"
#include "broker/kafka_error.h"
#include "broker/metrics.h"
#include "broker/security.h"
#include "security/store.h"
#include "broker/server.h"
#include "broker/shard.h"
#include "model/legacy_message.h"
#include "runtime/reactor.h"

namespace sluice::broker {

namespace sec = sluice::security;

namespace {

struct located {
    size_t topic = 0;
    size_t partition = 0;
};

// Whether `topic` exists in the snapshot with a partition `index`.
bool partition_exists(const replication::topic_map& snap, const std::string& topic, int32_t index) {
    auto it = snap.find(topic);
    return it != snap.end() && index >= 0 && index < it->second.partitions;
}

int32_t topic_min_isr(server& srv, const std::string& topic) {
    auto snap = srv.metadata().snapshot();
    auto it = snap->find(topic);
    if (it == snap->end()) return 1;
    auto eff = srv.effective_config(it->second);
    return static_cast<int32_t>(std::stoll(eff["min.insync.replicas"]));
}

// What a partition's records become in the engine. Produce v0-v2 carry magic 0/1 message sets
// (older clients): they are up-converted to one v2 batch, owned by `converted`, as Kafka 2.x
// does; everything else is the request's own bytes, which the engine rewrites in place.
kafka_error produce_payload(const request_context& ctx, std::span<const std::byte> mem,
                            std::list<std::vector<std::byte>>& converted,
                            std::span<std::byte>& payload) {
    if (ctx.version() > 2 || !model::legacy::is_legacy(mem)) {
        payload = {const_cast<std::byte*>(mem.data()), mem.size()};
        return kafka_error::none;
    }
    auto now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                      std::chrono::system_clock::now().time_since_epoch())
                      .count();
    auto up = model::legacy::up_convert(mem, now_ms);
    if (!up) {
        log::debug("broker", "refused a legacy message set: ", up.error().describe());
        return to_kafka_error(up.error());
    }
    payload = converted.emplace_back(std::move(up->batch));
    return kafka_error::none;
}

}  // namespace

void handle_produce(context_ptr ctx, protocol::any_request& any) {
    auto req = std::make_shared<protocol::produce_request>(
        std::move(std::get<protocol::produce_request>(any)));
    server& srv = ctx->srv;
    auto resp = std::make_shared<protocol::produce_response>();
    std::vector<model::tp> tps;
    std::vector<located> where;
    std::vector<std::span<std::byte>> payloads;
    auto converted = std::make_shared<std::list<std::vector<std::byte>>>();
    bool acks_valid = req->acks == 0 || req->acks == 1 || req->acks == -1;
    auto snap = srv.metadata().snapshot();
    // A transactional producer needs WRITE on its transactional id; every topic needs WRITE.
    bool txn_ok = !req->transactional_id || req->transactional_id->empty() ||
                  allowed(*ctx, sec::acl_operation::write, sec::resource_type::transactional_id,
                          *req->transactional_id);
    uint64_t request_bytes = 0;
    for (size_t t = 0; t < req->topic_data.size(); ++t) {
        const auto& td = req->topic_data[t];
        protocol::produce_response::topic_produce_response tr;
        tr.name = td.name;
        bool may_write = txn_ok && allowed(*ctx, sec::acl_operation::write, sec::resource_type::topic, td.name);
        int32_t min_isr = td.partition_data.empty() ? 1 : topic_min_isr(srv, td.name);
        for (size_t p = 0; p < td.partition_data.size(); ++p) {
            const auto& pd = td.partition_data[p];
            protocol::produce_response::partition_produce_response pr;
            pr.index = pd.index;
            pr.base_offset = -1;
            if (!pd.records.is_null()) request_bytes += pd.records.memory().size();
            if (!acks_valid) {
                pr.error_code = code(kafka_error::invalid_required_acks);
            } else if (!txn_ok) {
                pr.error_code = code(kafka_error::transactional_id_authorization_failed);
            } else if (!may_write) {
                pr.error_code = code(kafka_error::topic_authorization_failed);
            } else if (!partition_exists(*snap, td.name, pd.index)) {
                pr.error_code = code(kafka_error::unknown_topic_or_partition);
            } else if (req->acks == -1 && min_isr > 1 && srv.cluster_member() == nullptr) {
                // A single broker is an ISR of one.
                pr.error_code = code(kafka_error::not_enough_replicas);
            } else if (pd.records.is_null() || pd.records.memory().empty()) {
                pr.error_code = code(kafka_error::corrupt_message);
            } else {
                std::span<std::byte> payload;
                kafka_error e = produce_payload(*ctx, pd.records.memory(), *converted, payload);
                pr.error_code = code(e);
                if (e == kafka_error::none) {
                    tps.push_back({td.name, model::partition_id(pd.index)});
                    where.push_back({t, p});
                    payloads.push_back(payload);
                }
            }
            tr.partition_responses.push_back(std::move(pr));
        }
        resp->responses.push_back(std::move(tr));
    }
    // producer_byte_rate: the answer says how long to back off, and the connection is muted
    // for that long (KIP-219), so a client that ignores it is held to the rate too.
    resp->throttle_time_ms = apply_quota(*ctx, sec::producer_byte_rate, request_bytes);
    bool no_response = req->acks == 0;
    if (no_response) ctx->respond_none();
    runtime::reactor* origin = runtime::reactor::local();
    produce_opts opts;
    opts.wait_isr = req->acks == -1;
    opts.timeout_ms = std::max(req->timeout_ms, 1);
    fan_out<produce_part_result>(
        srv, tps,
        [ctx, req, converted, payloads = std::move(payloads), tps, origin, opts](
            shard& s, size_t i, std::function<void(produce_part_result)> reply) {
            // The session pauses reading while a part waits (it runs on the connection's core).
            hold_notifier notify = [ctx, origin](bool held) {
                auto tell = [ctx, held] {
                    if (ctx->hold_changed) ctx->hold_changed(held);
                };
                if (runtime::reactor::local() == origin) {
                    tell();
                } else {
                    origin->post(tell);
                }
            };
            s.produce(tps[i], payloads[i], std::move(reply), std::move(notify), opts);
        },
        [ctx, req, resp, where = std::move(where), no_response](std::vector<produce_part_result> results) {
            metrics& m = ctx->srv.stats();
            unsigned core = ctx->home.id();
            for (size_t i = 0; i < results.size(); ++i) {
                auto& pr = resp->responses[where[i].topic].partition_responses[where[i].partition];
                const auto& r = results[i];
                const auto& td = req->topic_data[where[i].topic];
                if (r.error == kafka_error::none) {
                    m.topic_bytes(core, td.name, td.partition_data[where[i].partition].records.memory().size(), 0);
                }
                pr.error_code = code(r.error);
                pr.base_offset = r.base_offset;
                pr.log_append_time_ms = r.log_append_time_ms;
                pr.log_start_offset = r.log_start_offset;
                if (r.error != kafka_error::none && !r.message.empty()) {
                    pr.error_message = r.message;
                    log::debug("broker", "produce to ", req->topic_data[where[i].topic].name, "-",
                               pr.index, " failed: ", r.message);
                }
            }
            for (const auto& tr : resp->responses) {
                for (const auto& pr : tr.partition_responses) {
                    if (pr.error_code != 0) m.partition_error(core, 0, pr.error_code);
                }
            }
            if (!no_response) ctx->respond(*resp);
        });
}

namespace {

struct fetch_state {
    context_ptr ctx;
    protocol::fetch_request req;
    protocol::fetch_response resp;
    std::vector<model::tp> tps;
    std::vector<located> where;
    std::vector<int64_t> offsets;
    std::vector<int32_t> max_bytes;
    std::vector<int32_t> leader_epochs;  // current_leader_epoch per partition (-1: unchecked)
    std::chrono::steady_clock::time_point deadline;
    uint64_t waiter_id = 0;
    runtime::timer_id timer = 0;
    bool waiting = false;
    bool finished = false;
    fetch_session_cache::resolved session;  // KIP-227: which session the fetch belongs to
};

void fetch_round(std::shared_ptr<fetch_state> st);

void fetch_wait(std::shared_ptr<fetch_state> st) {
    server& srv = st->ctx->srv;
    runtime::reactor* origin = runtime::reactor::local();
    st->waiting = true;
    st->waiter_id = srv.next_waiter_id++;
    auto wake = [st] {
        if (!st->waiting || st->finished) return;
        st->waiting = false;
        if (st->timer != 0) runtime::reactor::local()->cancel_timer(st->timer);
        st->timer = 0;
        server& srv = st->ctx->srv;
        auto tps = st->tps;
        uint64_t id = st->waiter_id;
        srv.run_on_all([tps, id](shard& s) { s.remove_waiter(tps, id); }, [] {});
        fetch_round(st);
    };
    auto remaining = std::chrono::duration_cast<std::chrono::microseconds>(
        st->deadline - std::chrono::steady_clock::now());
    st->timer = origin->add_timer(std::max(remaining, std::chrono::microseconds(0)), [st, wake] {
        st->timer = 0;
        st->deadline = std::chrono::steady_clock::now();  // the next round is the last
        wake();
    });
    auto tps = st->tps;
    uint64_t id = st->waiter_id;
    srv.run_on_all(
        [tps, id, origin, wake](shard& s) {
            s.add_waiter(tps, id, [origin, wake] { origin->post(wake); });
        },
        [] {});
}

// The copying fetch (sluice.fetch.zero.copy=false): segment bytes are read into memory and
// sent from there, as a broker without zero-copy would.
bool copy_regions(const std::vector<file_region>& regions, std::vector<std::byte>& out) {
    for (const auto& region : regions) {
        size_t at = out.size();
        out.resize(at + region.length);
        ssize_t n = ::pread(region.file->get(), out.data() + at, region.length,
                            static_cast<off_t>(region.offset));
        if (n != static_cast<ssize_t>(region.length)) return false;
    }
    return true;
}

// Fetch v0-v3 predate v2 batches: v0-v1 fetchers read magic 0 messages, v2-v3 magic 1. The
// batches are read into memory and rewritten message by message (Kafka 2.x does the same), so
// these fetches are not zero-copy. `out` must stay alive until the response is encoded.
void down_convert(const fetch_state& st, size_t i, const fetch_part_result& r,
                  std::vector<std::byte>& out, protocol::fetch_response::partition_data& pd) {
    std::vector<std::byte> raw;
    int8_t magic = st.ctx->version() <= 1 ? 0 : 1;
    if (!copy_regions(r.regions, raw)) {
        pd.error_code = code(kafka_error::kafka_storage_error);
        return;
    }
    size_t limit = static_cast<size_t>(std::max(st.max_bytes[i], 1));
    auto done = model::legacy::down_convert(raw, magic, st.offsets[i], limit, out);
    if (!done) {
        log::warn("broker", "cannot down-convert ", st.tps[i].dir_name(),
                  " at offset ", st.offsets[i], " for an old fetcher: ", done.error().describe());
        pd.error_code = code(kafka_error::kafka_storage_error);
        return;
    }
    pd.records = protocol::records::from_memory(out);
}

void fetch_finish(std::shared_ptr<fetch_state> st, std::vector<fetch_part_result>& results) {
    st->finished = true;
    bool zero_copy = st->ctx->srv.config().bool_value("sluice.fetch.zero.copy");
    std::list<std::vector<std::byte>> copies;  // alive until the response is encoded
    int64_t budget = st->ctx->version() >= 3 ? st->req.max_bytes : INT32_MAX;
    if (budget <= 0) budget = INT32_MAX;
    bool first_data = true;
    for (size_t i = 0; i < results.size(); ++i) {
        auto& r = results[i];
        auto& pd = st->resp.responses[st->where[i].topic].partitions[st->where[i].partition];
        pd.error_code = code(r.error);
        pd.high_watermark = r.high_watermark;
        pd.last_stable_offset = r.last_stable_offset;
        pd.log_start_offset = r.log_start_offset;
        if (st->req.isolation_level == 1) {
            // read_committed: the aborted transactions among the records, so the client drops
            // them (an empty list when there are none; read_uncommitted gets null).
            pd.aborted_transactions.emplace();
            for (const auto& [pid, first] : r.aborted) {
                protocol::fetch_response::aborted_transaction a;
                a.producer_id = pid;
                a.first_offset = first;
                pd.aborted_transactions->push_back(a);
            }
        }
        if (r.regions.empty()) continue;
        // The response as a whole stays within max_bytes, except that the first partition
        // with data always returns at least one batch (KIP-74).
        if (!first_data && static_cast<int64_t>(r.bytes) > budget) continue;
        first_data = false;
        budget -= static_cast<int64_t>(r.bytes);
        if (st->ctx->version() <= 3) {
            down_convert(*st, i, r, copies.emplace_back(), pd);
        } else if (zero_copy) {
            pd.records = protocol::records::from_files(std::move(r.regions));
        } else if (!copy_regions(r.regions, copies.emplace_back())) {
            pd.error_code = code(kafka_error::kafka_storage_error);
        } else {
            pd.records = protocol::records::from_memory(copies.back());
        }
    }
    if (st->req.replica_id < 0) {
        uint64_t sent = 0;
        for (const auto& r : results) sent += r.regions.empty() ? 0 : r.bytes;
        st->resp.throttle_time_ms = apply_quota(*st->ctx, sec::consumer_byte_rate, sent);
    }
    metrics& m = st->ctx->srv.stats();
    unsigned core = st->ctx->home.id();
    for (size_t i = 0; i < results.size(); ++i) {
        const auto& pd = st->resp.responses[st->where[i].topic].partitions[st->where[i].partition];
        if (!pd.records.is_null() && pd.records.size_bytes() > 0) {
            m.topic_bytes(core, st->tps[i].topic, 0, pd.records.size_bytes());
        }
    }
    for (const auto& tr : st->resp.responses) {
        for (const auto& pd : tr.partitions) {
            if (pd.error_code != 0) m.partition_error(core, 1, pd.error_code);
        }
    }
    st->ctx->home.fetch_sessions().finish(st->session, st->resp);
    st->ctx->respond(st->resp);
}

void fetch_round(std::shared_ptr<fetch_state> st) {
    server& srv = st->ctx->srv;
    bool committed = st->req.isolation_level == 1;
    fan_out<fetch_part_result>(
        srv, st->tps,
        [st, committed](shard& s, size_t i, std::function<void(fetch_part_result)> reply) {
            int32_t replica = st->ctx->version() <= 14 ? st->req.replica_id : -1;
            reply(s.fetch(st->tps[i], st->offsets[i], st->max_bytes[i], committed, true,
                          replica, st->leader_epochs[i]));
        },
        [st](std::vector<fetch_part_result> results) {
            uint64_t total = 0;
            bool any_error = false;
            for (const auto& r : results) {
                total += r.bytes;
                any_error |= r.error != kafka_error::none;
            }
            bool expired = std::chrono::steady_clock::now() >= st->deadline;
            if (total >= static_cast<uint64_t>(std::max(st->req.min_bytes, 1)) || any_error ||
                expired || st->tps.empty()) {
                fetch_finish(st, results);
            } else {
                fetch_wait(st);
            }
        });
}

}  // namespace

void handle_fetch(context_ptr ctx, protocol::any_request& any) {
    auto st = std::make_shared<fetch_state>();
    st->ctx = ctx;
    st->req = std::move(std::get<protocol::fetch_request>(any));
    auto& req = st->req;
    server& srv = ctx->srv;
    auto snap = srv.metadata().snapshot();
    if (ctx->version() >= 7) {
        // An incremental fetch (KIP-227) stands for every partition of its session.
        st->session = ctx->home.fetch_sessions().resolve(req, ctx->version() >= 13,
                                                         std::chrono::steady_clock::now());
        if (st->session.error != kafka_error::none) {
            st->resp.error_code = code(st->session.error);
            ctx->respond(st->resp);
            return;
        }
    }
    st->resp.session_id = st->session.session_id;
    // A follower's fetch (replica_id >= 0) is cluster traffic: CLUSTER_ACTION; a consumer's
    // needs READ on each topic.
    bool from_replica = ctx->version() <= 14 && req.replica_id >= 0;
    bool replica_ok = !from_replica || allowed_on_cluster(*ctx, sec::acl_operation::cluster_action);
    if (!replica_ok) {
        st->resp.error_code = code(kafka_error::cluster_authorization_failed);
        ctx->respond(st->resp);
        return;
    }
    for (size_t t = 0; t < req.topics.size(); ++t) {
        auto& ft = req.topics[t];
        protocol::fetch_response::fetchable_topic_response tr;
        tr.topic = ft.topic;
        tr.topic_id = ft.topic_id;
        const replication::topic_metadata* meta = nullptr;
        if (ctx->version() >= 13) {
            for (const auto& [name, m] : *snap) {
                if (std::memcmp(m.id.data(), ft.topic_id.bytes.data(), 16) == 0) meta = &m;
            }
        } else {
            auto it = snap->find(ft.topic);
            if (it != snap->end()) meta = &it->second;
        }
        for (size_t p = 0; p < ft.partitions.size(); ++p) {
            const auto& fp = ft.partitions[p];
            protocol::fetch_response::partition_data pd;
            pd.partition_index = fp.partition;
            pd.high_watermark = -1;
            pd.last_stable_offset = -1;
            pd.log_start_offset = -1;
            pd.aborted_transactions.reset();
            // Kafka answers with an empty record set, never a null one (librdkafka rejects -1).
            pd.records = protocol::records::from_memory({});
            if (meta != nullptr && !from_replica &&
                !allowed(*ctx, sec::acl_operation::read, sec::resource_type::topic, meta->name)) {
                pd.error_code = code(kafka_error::topic_authorization_failed);
            } else if (meta == nullptr) {
                pd.error_code = code(ctx->version() >= 13 ? kafka_error::unknown_topic_id
                                                          : kafka_error::unknown_topic_or_partition);
            } else if (fp.partition < 0 || fp.partition >= meta->partitions) {
                pd.error_code = code(kafka_error::unknown_topic_or_partition);
            } else {
                st->tps.push_back({meta->name, model::partition_id(fp.partition)});
                st->where.push_back({t, p});
                st->offsets.push_back(fp.fetch_offset);
                st->max_bytes.push_back(fp.partition_max_bytes);
                st->leader_epochs.push_back(ctx->version() >= 9 ? fp.current_leader_epoch : -1);
            }
            tr.partitions.push_back(std::move(pd));
        }
        st->resp.responses.push_back(std::move(tr));
    }
    st->deadline = std::chrono::steady_clock::now() +
                   std::chrono::milliseconds(std::max(req.max_wait_ms, 0));
    fetch_round(st);
}

void handle_list_offsets(context_ptr ctx, protocol::any_request& any) {
    auto req = std::make_shared<protocol::list_offsets_request>(
        std::move(std::get<protocol::list_offsets_request>(any)));
    auto resp = std::make_shared<protocol::list_offsets_response>();
    auto snap = ctx->srv.metadata().snapshot();
    std::vector<model::tp> tps;
    std::vector<located> where;
    std::vector<int64_t> stamps;
    for (size_t t = 0; t < req->topics.size(); ++t) {
        const auto& lt = req->topics[t];
        protocol::list_offsets_response::list_offsets_topic_response tr;
        tr.name = lt.name;
        for (size_t p = 0; p < lt.partitions.size(); ++p) {
            const auto& lp = lt.partitions[p];
            protocol::list_offsets_response::list_offsets_partition_response pr;
            pr.partition_index = lp.partition_index;
            pr.offset = -1;
            pr.timestamp = -1;
            pr.leader_epoch = 0;
            if (!allowed(*ctx, sec::acl_operation::describe, sec::resource_type::topic, lt.name)) {
                pr.error_code = code(kafka_error::topic_authorization_failed);
            } else if (!partition_exists(*snap, lt.name, lp.partition_index)) {
                pr.error_code = code(kafka_error::unknown_topic_or_partition);
            } else {
                tps.push_back({lt.name, model::partition_id(lp.partition_index)});
                where.push_back({t, p});
                stamps.push_back(lp.timestamp);
            }
            tr.partitions.push_back(pr);
        }
        resp->topics.push_back(std::move(tr));
    }
    bool committed = req->isolation_level == 1;
    fan_out<offset_lookup_result>(
        ctx->srv, tps,
        [tps, stamps, committed](shard& s, size_t i, std::function<void(offset_lookup_result)> reply) {
            reply(s.list_offset(tps[i], stamps[i], committed));
        },
        [ctx, req, resp, where](std::vector<offset_lookup_result> results) {
            for (size_t i = 0; i < results.size(); ++i) {
                auto& pr = resp->topics[where[i].topic].partitions[where[i].partition];
                pr.error_code = code(results[i].error);
                pr.offset = results[i].offset;
                pr.timestamp = results[i].timestamp;
                pr.leader_epoch = results[i].leader_epoch;
                // v0 answers with a list of offsets; the one found is all Sluice returns (the
                // segment base offsets Kafka 0.9 added after it are of no use to clients).
                const auto& lp = req->topics[where[i].topic].partitions[where[i].partition];
                if (ctx->version() == 0 && pr.offset >= 0 && lp.max_num_offsets > 0) {
                    pr.old_style_offsets.push_back(pr.offset);
                }
            }
            ctx->respond(*resp);
        });
}

void handle_offset_for_leader_epoch(context_ptr ctx, protocol::any_request& any) {
    auto req = std::get<protocol::offset_for_leader_epoch_request>(any);
    auto resp = std::make_shared<protocol::offset_for_leader_epoch_response>();
    auto snap = ctx->srv.metadata().snapshot();
    std::vector<model::tp> tps;
    std::vector<located> where;
    std::vector<std::pair<int32_t, int32_t>> asked;  // requested epoch, current leader epoch
    for (size_t t = 0; t < req.topics.size(); ++t) {
        const auto& ot = req.topics[t];
        protocol::offset_for_leader_epoch_response::offset_for_leader_topic_result tr;
        tr.topic = ot.topic;
        for (size_t p = 0; p < ot.partitions.size(); ++p) {
            const auto& op = ot.partitions[p];
            protocol::offset_for_leader_epoch_response::epoch_end_offset eo;
            eo.partition = op.partition;
            eo.leader_epoch = -1;
            eo.end_offset = -1;
            if (!allowed_on_cluster(*ctx, sec::acl_operation::cluster_action) &&
                !allowed(*ctx, sec::acl_operation::describe, sec::resource_type::topic, ot.topic)) {
                eo.error_code = code(kafka_error::topic_authorization_failed);
            } else if (!partition_exists(*snap, ot.topic, op.partition)) {
                eo.error_code = code(kafka_error::unknown_topic_or_partition);
            } else {
                tps.push_back({ot.topic, model::partition_id(op.partition)});
                where.push_back({t, p});
                asked.emplace_back(op.leader_epoch,
                                   ctx->version() >= 2 ? op.current_leader_epoch : -1);
            }
            tr.partitions.push_back(eo);
        }
        resp->topics.push_back(std::move(tr));
    }
    using answer = std::pair<kafka_error, replication::epoch_end>;
    fan_out<answer>(
        ctx->srv, tps,
        [tps, asked](shard& s, size_t i, std::function<void(answer)> reply) {
            kafka_error err = kafka_error::none;
            auto end = s.epoch_end_offset(tps[i], asked[i].first, asked[i].second, err);
            reply({err, end});
        },
        [ctx, resp, where](std::vector<answer> ends) {
            for (size_t i = 0; i < ends.size(); ++i) {
                auto& eo = resp->topics[where[i].topic].partitions[where[i].partition];
                eo.error_code = code(ends[i].first);
                eo.leader_epoch = ends[i].second.epoch();
                eo.end_offset = ends[i].second.end_offset();
            }
            ctx->respond(*resp);
        });
}

void handle_delete_records(context_ptr ctx, protocol::any_request& any) {
    auto req = std::get<protocol::delete_records_request>(any);
    auto resp = std::make_shared<protocol::delete_records_response>();
    auto snap = ctx->srv.metadata().snapshot();
    std::vector<model::tp> tps;
    std::vector<located> where;
    std::vector<int64_t> offsets;
    for (size_t t = 0; t < req.topics.size(); ++t) {
        const auto& dt = req.topics[t];
        protocol::delete_records_response::delete_records_topic_result tr;
        tr.name = dt.name;
        for (size_t p = 0; p < dt.partitions.size(); ++p) {
            const auto& dp = dt.partitions[p];
            protocol::delete_records_response::delete_records_partition_result pr;
            pr.partition_index = dp.partition_index;
            pr.low_watermark = -1;
            if (!allowed(*ctx, sec::acl_operation::remove, sec::resource_type::topic, dt.name)) {
                pr.error_code = code(kafka_error::topic_authorization_failed);
            } else if (!partition_exists(*snap, dt.name, dp.partition_index)) {
                pr.error_code = code(kafka_error::unknown_topic_or_partition);
            } else {
                tps.push_back({dt.name, model::partition_id(dp.partition_index)});
                where.push_back({t, p});
                offsets.push_back(dp.offset);
            }
            tr.partitions.push_back(pr);
        }
        resp->topics.push_back(std::move(tr));
    }
    using dr = std::pair<kafka_error, int64_t>;
    fan_out<dr>(
        ctx->srv, tps,
        [tps, offsets](shard& s, size_t i, std::function<void(dr)> reply) {
            auto r = s.delete_records(tps[i], offsets[i]);
            reply(r ? dr{kafka_error::none, *r} : dr{to_kafka_error(r.error()), -1});
        },
        [ctx, resp, where](std::vector<dr> results) {
            for (size_t i = 0; i < results.size(); ++i) {
                auto& pr = resp->topics[where[i].topic].partitions[where[i].partition];
                pr.error_code = code(results[i].first);
                pr.low_watermark = results[i].second;
            }
            ctx->respond(*resp);
        });
}

}  // namespace sluice::broker
