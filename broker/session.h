#pragma once
// One client connection on one core. Frames are decoded and dispatched as they arrive, several
// requests may be in flight at once, and responses are sent strictly in request order (Kafka
// clients rely on it), whatever order their handlers finish in.
//
// Bounds: at most `max_in_flight` requests per connection and `max_queued_bytes` of responses
// waiting in the socket; beyond either, and while any of its produce requests waits for room in
// a partition's append buffer, the session stops reading the socket until they drain
// (back-pressure, never unbounded memory).
//
// Lifecycle: created for an accepted connection; kept alive by the connection's handlers and by
// in-flight requests; ends when the connection closes and the last request has completed.

#include <cstdint>
#include <map>
#include <memory>
#include <optional>

#include "net/connection.h"
#include "protocol/header.h"
#include "runtime/reactor.h"
#include "security/sasl.h"

namespace sluice::broker {

class server;
class shard;
struct listener_security;

class session : public std::enable_shared_from_this<session> {
public:
    static constexpr size_t max_queued_bytes = 64u << 20;

    session(server& srv, shard& home, net::connection_ptr conn, size_t max_in_flight,
            const listener_security& security);
    ~session();
    void start();

private:
    // SASL (listeners with SASL_PLAINTEXT or SASL_SSL): before authentication only ApiVersions,
    // SaslHandshake and SaslAuthenticate are served; anything else closes the connection, as
    // Kafka does. After a v0 handshake the tokens travel as bare size-prefixed frames.
    enum class auth_state { open, want_handshake, want_authenticate, want_raw_token, done };
    // True when the frame was consumed by authentication (answered, or the connection closed).
    bool authenticate(net::frame& f, const protocol::request_header* hdr,
                      std::span<const std::byte> body);
    void sasl_handshake(const protocol::request_header& hdr, std::span<const std::byte> body);
    void sasl_authenticate(const protocol::request_header& hdr, std::span<const std::byte> body);
    void sasl_raw_token(const net::frame& f);
    // Runs one SASL step; the server's answer, or nullopt after a failure (logged).
    std::optional<std::string> sasl_step(std::string_view token, std::string& failure);
    void answer_now(std::optional<net::output> out);
    void mute_for(int32_t ms);

    void on_frames(std::span<net::frame> frames);
    void handle(net::frame f);
    void complete(uint64_t seq, std::optional<net::output> out);
    void send_ready();
    void update_backpressure();
    void close_with(const char* why);
    void close_if_answered();

    server& _srv;
    shard& _home;
    net::connection_ptr _conn;
    size_t _max_in_flight;
    uint64_t _next_seq = 0;
    uint64_t _next_to_send = 0;
    std::map<uint64_t, std::optional<net::output>> _done;  // finished, waiting for their turn
    size_t _in_flight = 0;
    size_t _held = 0;  // request parts waiting for append-buffer room (read paused meanwhile)
    bool _closed = false;
    bool _close_when_answered = false;  // the stream had an unreadable frame

    const listener_security& _security;
    std::string _peer_ip;
    bool _counted = false;  // holds a max.connections.per.ip slot
    auth_state _auth = auth_state::open;
    std::unique_ptr<security::sasl_server> _sasl;
    std::string _mechanism;
    std::string _principal = "User:ANONYMOUS";
    std::chrono::steady_clock::time_point _auth_expires{};  // connections.max.reauth.ms
    bool _reauthenticating = false;
    runtime::timer_id _unmute_timer{};
    bool _muted = false;
};

}  // namespace sluice::broker
