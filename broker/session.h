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

namespace sluice::broker {

class server;
class shard;

class session : public std::enable_shared_from_this<session> {
public:
    static constexpr size_t max_queued_bytes = 64u << 20;

    session(server& srv, shard& home, net::connection_ptr conn, size_t max_in_flight);
    void start();

private:
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
};

}  // namespace sluice::broker
