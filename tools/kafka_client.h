#pragma once
// A small blocking Kafka client for the `sluice` tools: TCP connections with ApiVersions
// negotiation and pipelined request/response matching (`connection`), and a cluster view that
// routes requests to partition leaders from Metadata (`client`). It talks to any Kafka broker
// (Sluice, Apache Kafka, Redpanda) using the message structs of the protocol module.
//
// Tools sit outside the runtime graph (DESIGN.md section 1), so this uses plain POSIX sockets and
// blocks; every call has a deadline (`options::timeout_ms`). A connection or client is owned by
// one thread; the load generator gives each worker thread its own.
//
//   auto c = client::connect({.bootstrap = "localhost:9092"});
//   auto md = (*c)->metadata({"orders"});
//   auto* conn = (*c)->leader_for("orders", 0);
//   auto resp = (*conn)->call<protocol::list_offsets_api>(request);
//
// Pipelining: `send()` returns at once after writing the request; `receive()` returns the answers
// in the order the requests were sent (Kafka answers in order on one connection).

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/fd.h"
#include "base/result.h"
#include "protocol/generated/messages.h"
#include "protocol/header.h"
#include "protocol/reader.h"
#include "protocol/writer.h"
#include "tools/bypass_stream.h"
#include "tools/errc.h"

struct ssl_st;
struct ssl_ctx_st;

namespace sluice::tools {

using clock = std::chrono::steady_clock;

struct broker_address {
    std::string host;
    uint16_t port = 9092;
    std::string to_string() const { return host + ":" + std::to_string(port); }
};

// "host:port", "host" (port 9092), "[::1]:9092"; several comma-separated addresses are allowed
// by parse_bootstrap.
[[nodiscard]] result<broker_address> parse_host_port(std::string_view s);
[[nodiscard]] result<std::vector<broker_address>> parse_bootstrap(std::string_view s);

// The largest response frame we accept (a fetch of many partitions can be large, but a length
// beyond this is a broken stream, not data). A bypass stream frames answers itself, to the
// same bound.
inline constexpr uint32_t response_frame_bytes_max = bypass_stream::max_frame_bytes;

struct connection_options {
    std::string client_id = "sluice";
    int timeout_ms = 30000;       // connect, and each wait for an answer
    int socket_buffer_bytes = 0;  // SO_SNDBUF / SO_RCVBUF; 0 keeps the kernel's autotuning
    std::string tcp_congestion;   // TCP_CONGESTION ("cubic", ...); empty: the system's default
    // TLS (security.protocol SSL or SASL_SSL): the CAs to trust (PEM; empty: the system's),
    // an optional client certificate and key (PEM), and whether the server's certificate must
    // name the host connected to (ssl.endpoint.identification.algorithm=https).
    bool tls = false;
    std::string tls_ca_file;
    std::string tls_certificate_file;
    std::string tls_key_file;
    bool tls_verify_hostname = true;
    // SASL (SASL_PLAINTEXT, SASL_SSL): PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512 with these
    // credentials, right after ApiVersions. Empty: no SASL.
    std::string sasl_mechanism;
    std::string sasl_username;
    std::string sasl_password;
    // Set: connect over Sluice's own DPDK stack instead of kernel sockets (tools/bypass_stream.h;
    // `sluice bench --network-stack dpdk`). No TLS there.
    std::optional<bypass_options> bypass;
};

// One TCP connection to one broker. Owned by one thread.
class connection {
  public:
    // A request that was sent and whose answer has not been read yet.
    struct in_flight {
        int32_t correlation_id = 0;
        int16_t api_key = 0;
        int16_t api_version = 0;
        clock::time_point sent_at;
        uint64_t tag = 0;  // caller's value, returned with the answer
    };
    // One answer: which request it belongs to and its body (valid until the next receive()).
    struct response {
        in_flight request;
        std::span<const std::byte> body;
    };

    // Connects and negotiates API versions.
    [[nodiscard]] static result<std::unique_ptr<connection>> open(const broker_address& addr,
                                                                  const connection_options& opts);
    // Connects without the ApiVersions exchange (the loopback reference talks to a plain server).
    [[nodiscard]] static result<std::unique_ptr<connection>> open_raw(
        const broker_address& addr, const connection_options& opts);
    // Wraps a connected socket.
    connection(unique_fd fd, broker_address addr, connection_options opts);
    // Wraps a connected stream of the dpdk stack.
    connection(std::unique_ptr<bypass_stream> stream, broker_address addr,
               connection_options opts);
    ~connection();
    connection(const connection&) = delete;
    connection& operator=(const connection&) = delete;
    // Bytes already decrypted and waiting (a TLS connection can have a response in hand while
    // the socket has nothing to read: poll() on fd() would not see it).
    bool has_buffered() const;
    // Waits up to `timeout_ms` for something to read (buffered, on the socket, or on the dpdk
    // stream). False on timeout.
    bool wait_readable(int timeout_ms);

    const broker_address& address() const { return _addr; }
    // The socket (-1 over the dpdk stack: poll() ignores it, has_buffered() tells).
    int fd() const { return _fd.get(); }

    // The highest version of `api_key` within [lo, hi] that the broker also supports, or -1.
    int16_t pick_version(int16_t api_key, int16_t lo, int16_t hi) const;
    // The highest version of an API both sides support, or -1.
    template <class Api>
    int16_t version() const {
        return pick_version(Api::key, Api::min_version, Api::max_version);
    }
    // The broker's version range of an API, if it advertised one.
    std::optional<std::pair<int16_t, int16_t>> broker_versions(int16_t api_key) const;

    // Encodes and writes one request; the answer is read later by receive(). `expect_response`
    // false: the broker sends none (Produce with acks=0), so nothing is queued for it.
    template <class Request>
    [[nodiscard]] result<int32_t> send(int16_t api_key, int16_t version, const Request& req,
                                       bool expect_response = true, uint64_t tag = 0) {
        protocol::writer w(256);
        size_t size_at = begin_request(w, api_key, version);
        req.encode(w, version);
        return finish_request(w, size_at, api_key, version, expect_response, tag);
    }
    // Writes a request frame encoded elsewhere (with its size prefix and a correlation id from
    // next_correlation_id()): the load generator reuses pre-encoded frames this way.
    [[nodiscard]] result<void> send_encoded(std::span<const std::byte> frame, const in_flight& f,
                                            bool expect_response = true);
    int32_t next_correlation_id() { return _next_correlation_id++; }
    size_t in_flight_count() const { return _in_flight.size(); }
    const std::deque<in_flight>& pending() const { return _in_flight; }

    // Reads the answer to the oldest request in flight.
    [[nodiscard]] result<response> receive();

    // send + receive + decode, for one request at a time. `version` -1: the highest common one.
    template <class Api>
    [[nodiscard]] result<typename Api::response> call(const typename Api::request& req,
                                                      int16_t version = -1) {
        if (version < 0) version = this->version<Api>();
        if (version < 0) return no_common_version(Api::key, Api::name);
        if (auto s = send(Api::key, version, req); !s) return s.error();
        auto r = receive();
        if (!r) return r.error();
        protocol::reader rd(r->body, response_limits());
        typename Api::response out;
        if (auto d = out.decode(rd, version); !d) {
            return error(errc::protocol, std::string(Api::name) + " v" + std::to_string(version) +
                                             " response: " + d.error().describe());
        }
        return out;
    }

    // Raw I/O with the connection's deadline, shared by the Kafka path and the loopback
    // reference so both measure the same code.
    [[nodiscard]] result<void> write_all(std::span<const std::byte> bytes);
    [[nodiscard]] result<void> read_exact(std::span<std::byte> out);
    // Reads one size-prefixed frame into `buf` (resized to the frame); returns the frame bytes.
    [[nodiscard]] result<std::span<const std::byte>> read_frame(std::vector<std::byte>& buf);

    static protocol::reader_limits response_limits();

    // SaslHandshake v1 and SaslAuthenticate rounds with opts' mechanism and credentials.
    [[nodiscard]] result<void> authenticate();

  private:
    [[nodiscard]] result<void> negotiate();
    size_t begin_request(protocol::writer& w, int16_t api_key, int16_t version);
    [[nodiscard]] result<int32_t> finish_request(protocol::writer& w, size_t size_at,
                                                 int16_t api_key, int16_t version,
                                                 bool expect_response, uint64_t tag);
    [[nodiscard]] result<void> wait_ready(short events);
    static error no_common_version(int16_t key, std::string_view name);

    [[nodiscard]] result<void> start_tls();

    unique_fd _fd;
    std::unique_ptr<bypass_stream> _stream;  // instead of _fd, over the dpdk stack
    ssl_ctx_st* _tls_ctx = nullptr;  // with TLS: OpenSSL's SSL_CTX and SSL
    ssl_st* _tls = nullptr;
    broker_address _addr;
    connection_options _opts;
    int32_t _next_correlation_id = 1;
    std::deque<in_flight> _in_flight;
    std::vector<std::byte> _rx;                                // the last response frame
    std::map<int16_t, std::pair<int16_t, int16_t>> _versions;  // api key -> broker's [min, max]
};

// What Metadata says about one partition.
struct partition_info {
    int32_t partition = 0;
    int16_t error_code = 0;
    int32_t leader = -1;
    int32_t leader_epoch = -1;
    std::vector<int32_t> replicas;
    std::vector<int32_t> isr;
    std::vector<int32_t> offline;
};

struct topic_info {
    std::string name;
    protocol::uuid id;
    int16_t error_code = 0;
    bool internal = false;
    std::vector<partition_info> partitions;  // ordered by partition index
};

struct cluster_info {
    std::map<int32_t, broker_address> brokers;
    int32_t controller = -1;
    std::optional<std::string> cluster_id;
    std::map<std::string, topic_info> topics;
};

struct client_options {
    std::string bootstrap = "localhost:9092";
    connection_options conn;
};

// A view of a cluster: one bootstrap connection plus one connection per broker it needed, and
// the last Metadata answer. Owned by one thread.
class client {
  public:
    [[nodiscard]] static result<std::unique_ptr<client>> connect(const client_options& opts);

    // The bootstrap connection: any broker, for requests that need no particular one.
    connection& any() { return *_bootstrap; }
    // A connection to the broker with this node id (opened on first use).
    [[nodiscard]] result<connection*> broker(int32_t node_id);
    // The controller (admin requests), or the bootstrap broker when Metadata names none.
    [[nodiscard]] result<connection*> controller();

    // Refreshes metadata for `topics` (all topics when nullopt) and returns the cluster view.
    // `auto_create` asks the broker to create missing topics (as producers do).
    [[nodiscard]] result<const cluster_info*> metadata(
        const std::optional<std::vector<std::string>>& topics, bool auto_create = false);
    const cluster_info& cluster() const { return _cluster; }

    // The topic's metadata, fetched when not known yet (or `refresh`). Errors: the Kafka error
    // of the topic (UNKNOWN_TOPIC_OR_PARTITION, ...).
    [[nodiscard]] result<const topic_info*> topic(const std::string& name, bool refresh = false,
                                                  bool auto_create = false);
    // The connection to the leader of a partition (from the cached metadata).
    [[nodiscard]] result<connection*> leader_for(const std::string& topic, int32_t partition);

    const client_options& options() const { return _opts; }

  private:
    explicit client(client_options opts) : _opts(std::move(opts)) {}

    client_options _opts;
    std::unique_ptr<connection> _bootstrap;
    int32_t _bootstrap_node = -1;  // the bootstrap broker's node id, once Metadata told us
    std::map<int32_t, std::unique_ptr<connection>> _brokers;
    cluster_info _cluster;
};

// Kafka's default partitioner for keyed records: murmur2 of the key, positive, modulo count.
int32_t murmur2(std::span<const std::byte> data);
int32_t partition_for_key(std::span<const std::byte> key, int32_t partitions);

// Milliseconds since the Unix epoch (record timestamps).
int64_t now_ms();

}  // namespace sluice::tools
