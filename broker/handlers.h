#pragma once
// Request handlers: one function per Kafka API, registered in handler_table() with the version
// range Sluice serves. ApiVersions advertises exactly this table (intersected with the protocol
// module's definitions), so what is advertised is what is served.
//
// A handler runs on the core of the connection that received the request. It may reach other
// cores (server::run_on) and must finish by calling ctx->respond(...) or ctx->respond_none()
// exactly once, on that same core.

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>

#include "broker/kafka_error.h"
#include "coord/errc.h"
#include "net/connection.h"
#include "protocol/request.h"
#include "protocol/response.h"
#include "replication/membership.h"

namespace sluice::broker {

class server;
class shard;

// A broker's endpoint on the named listener (clients get the one of the listener they came in
// on); its first endpoint when it has none of that name.
const replication::broker_endpoint& endpoint_for(const replication::broker_registration& b,
                                                 const std::string& listener);

// Converts encoded response bytes (memory and file regions) to what the connection sends.
net::output to_output(protocol::writer& w);

struct request_context {
    server& srv;
    shard& home;  // the shard of the connection's core
    protocol::request_header header;
    net::frame frame;  // keeps the request bytes (and the record views into them) alive
    std::function<void(std::optional<net::output>)> complete;
    std::string client_host;  // the peer's numeric address, as Kafka reports it ("/127.0.0.1")
    // Who sends the request ("User:alice"; "User:ANONYMOUS" on an unauthenticated listener;
    // a TLS client's certificate subject as "User:CN=..."), what ACL checks are made against.
    std::string principal = "User:ANONYMOUS";
    // The listener the request arrived on (Metadata answers with that listener's endpoints).
    std::string listener = "PLAINTEXT";
    // Set by the session: stop reading this connection for `ms` (a quota was exceeded).
    std::function<void(int32_t ms)> mute;
    // Set by the session: a part of this request waits for room in a partition (true) or no
    // longer does (false). Called on the connection's core; the session stops reading while
    // any of its requests waits, so a busy partition bounds the memory its producers use.
    std::function<void(bool held)> hold_changed;

    request_context(server& s, shard& h, protocol::request_header hdr, net::frame f,
                    std::function<void(std::optional<net::output>)> c)
        : srv(s), home(h), header(std::move(hdr)), frame(std::move(f)), complete(std::move(c)) {}

    int16_t version() const { return header.api_version; }
    // The peer's address as ACL hosts name it ("127.0.0.1").
    std::string host() const { return client_host.empty() || client_host[0] != '/' ? client_host : client_host.substr(1); }

    template <class Response>
    void respond(const Response& r) {
        protocol::writer w(256);
        protocol::encode_response_frame(w, header.api_key, header.api_version,
                                        header.correlation_id, r);
        complete(to_output(w));
    }
    // Requests that get no response (Produce with acks=0).
    void respond_none() { complete(std::nullopt); }
};
using context_ptr = std::shared_ptr<request_context>;

using handler_fn = void (*)(context_ptr ctx, protocol::any_request& request);

struct handler_entry {
    int16_t api_key;
    int16_t min_version;
    int16_t max_version;
    handler_fn fn;
};

std::span<const handler_entry> handler_table();
const handler_entry* find_handler(int16_t api_key);

// The individual handlers (handle_*.cc).
void handle_api_versions(context_ptr ctx, protocol::any_request& req);
void handle_metadata(context_ptr ctx, protocol::any_request& req);
void handle_describe_cluster(context_ptr ctx, protocol::any_request& req);
void handle_init_producer_id(context_ptr ctx, protocol::any_request& req);
void handle_produce(context_ptr ctx, protocol::any_request& req);
void handle_fetch(context_ptr ctx, protocol::any_request& req);
void handle_list_offsets(context_ptr ctx, protocol::any_request& req);
void handle_offset_for_leader_epoch(context_ptr ctx, protocol::any_request& req);
void handle_delete_records(context_ptr ctx, protocol::any_request& req);
void handle_create_topics(context_ptr ctx, protocol::any_request& req);
void handle_delete_topics(context_ptr ctx, protocol::any_request& req);
void handle_create_partitions(context_ptr ctx, protocol::any_request& req);
void handle_describe_configs(context_ptr ctx, protocol::any_request& req);
void handle_alter_configs(context_ptr ctx, protocol::any_request& req);
void handle_incremental_alter_configs(context_ptr ctx, protocol::any_request& req);
void handle_elect_leaders(context_ptr ctx, protocol::any_request& req);
void handle_describe_log_dirs(context_ptr ctx, protocol::any_request& req);
void handle_alter_partition_reassignments(context_ptr ctx, protocol::any_request& req);
void handle_list_partition_reassignments(context_ptr ctx, protocol::any_request& req);
// Consumer groups (handle_group.cc).
void handle_find_coordinator(context_ptr ctx, protocol::any_request& req);
void handle_join_group(context_ptr ctx, protocol::any_request& req);
void handle_sync_group(context_ptr ctx, protocol::any_request& req);
void handle_heartbeat(context_ptr ctx, protocol::any_request& req);
void handle_leave_group(context_ptr ctx, protocol::any_request& req);
void handle_offset_commit(context_ptr ctx, protocol::any_request& req);
void handle_offset_fetch(context_ptr ctx, protocol::any_request& req);
void handle_offset_delete(context_ptr ctx, protocol::any_request& req);
void handle_list_groups(context_ptr ctx, protocol::any_request& req);
void handle_describe_groups(context_ptr ctx, protocol::any_request& req);
void handle_delete_groups(context_ptr ctx, protocol::any_request& req);
// Creates the shard's group coordinator and starts replaying the __consumer_offsets partitions
// it owns (called once the shard's partitions are open).
void start_groups(shard& s);
// Cluster mode: leadership of some of the shard's __consumer_offsets partitions moved; the
// coordinator drops the lost ones and loads the gained ones.
void groups_changed(shard& s);

// The committed offsets of the groups this shard coordinates (for the metrics' lag):
// (group, topic, partition, committed offset).
struct committed_offset_view {
    std::string group;
    std::string topic;
    int32_t partition = 0;
    int64_t offset = -1;
};
std::vector<committed_offset_view> committed_offsets(shard& s);

// A coordinator error as the Kafka code the broker answers with (the one mapping, tested).
kafka_error to_kafka(coord::errc e);
// A group coordinator's transactional offset commits of `producer_id` in its __consumer_offsets
// partition became committed or aborted (a marker was written there).
void txn_offsets_completed(shard& s, int32_t partition, int64_t producer_id, bool commit);

// Transactions (handle_txn.cc): InitProducerId with a transactional id, AddPartitionsToTxn,
// AddOffsetsToTxn, EndTxn, TxnOffsetCommit, WriteTxnMarkers, DescribeTransactions,
// ListTransactions, DescribeProducers.
void handle_init_producer_id_txn(context_ptr ctx, protocol::init_producer_id_request& req);
void handle_add_partitions_to_txn(context_ptr ctx, protocol::any_request& req);
void handle_add_offsets_to_txn(context_ptr ctx, protocol::any_request& req);
void handle_end_txn(context_ptr ctx, protocol::any_request& req);
void handle_txn_offset_commit(context_ptr ctx, protocol::any_request& req);
void handle_write_txn_markers(context_ptr ctx, protocol::any_request& req);
void handle_describe_transactions(context_ptr ctx, protocol::any_request& req);
void handle_list_transactions(context_ptr ctx, protocol::any_request& req);
void handle_describe_producers(context_ptr ctx, protocol::any_request& req);
// Creates the compacted __transaction_state topic on first use (transaction.state.log.*).
void ensure_txn_topic(server& srv, std::function<void()> then);
// Creates the shard's transaction coordinator and loads what it owns; txns_changed is
// groups_changed's counterpart for __transaction_state.
void start_txns(shard& s);
void txns_changed(shard& s);

// Security (security.cc): SASL outside an authentication phase, ACLs, SCRAM credentials and
// client quotas.
void handle_sasl_handshake(context_ptr ctx, protocol::any_request& req);
void handle_sasl_authenticate(context_ptr ctx, protocol::any_request& req);
void handle_describe_acls(context_ptr ctx, protocol::any_request& req);
void handle_create_acls(context_ptr ctx, protocol::any_request& req);
void handle_delete_acls(context_ptr ctx, protocol::any_request& req);
void handle_describe_user_scram_credentials(context_ptr ctx, protocol::any_request& req);
void handle_alter_user_scram_credentials(context_ptr ctx, protocol::any_request& req);
void handle_describe_client_quotas(context_ptr ctx, protocol::any_request& req);
void handle_alter_client_quotas(context_ptr ctx, protocol::any_request& req);

// The ApiVersions answer to a request at a version Sluice does not serve: v0, UNSUPPORTED_VERSION.
net::output unsupported_api_versions_response(int32_t correlation_id);

}  // namespace sluice::broker
