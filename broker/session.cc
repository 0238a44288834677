#include "broker/session.h"

#include "base/log.h"
#include "broker/handlers.h"
#include "broker/server.h"
#include "broker/shard.h"
#include "net/errc.h"
#include "protocol/errc.h"

namespace sluice::broker {

session::session(server& srv, shard& home, net::connection_ptr conn, size_t max_in_flight)
    : _srv(srv), _home(home), _conn(std::move(conn)), _max_in_flight(max_in_flight) {}

void session::start() {
    auto self = shared_from_this();
    net::connection_handlers h;
    h.on_frames = [self](std::span<net::frame> frames) { self->on_frames(frames); };
    h.on_close = [self](const error& why) {
        if (!why.is(net::errc::peer_closed) && !why.is(net::errc::closed)) {
            log::info("broker", "connection from ", self->_conn->peer_address().to_string(),
                      " closed: ", why.describe());
        }
        self->_closed = true;
        self->_done.clear();
        self->_conn.reset();  // breaks the connection <-> session cycle
    };
    h.on_drain = [self] { self->update_backpressure(); };
    // An unreadable frame (bad size prefix): the requests before it still get their answers,
    // then the connection closes, as a broker reading the stream in order would do.
    h.on_bad_frame = [self](const error& why) {
        if (self->_conn) {
            log::warn("broker", "closing connection from ", self->_conn->peer_address().to_string(),
                      " once its earlier requests are answered: ", why.describe());
        }
        self->_close_when_answered = true;
        self->close_if_answered();
    };
    _conn->start(std::move(h));
}

void session::on_frames(std::span<net::frame> frames) {
    for (auto& f : frames) {
        if (_closed || !_conn || !_conn->is_open()) return;
        handle(std::move(f));
    }
}

void session::close_with(const char* why) {
    if (_conn) {
        log::warn("broker", "closing connection from ", _conn->peer_address().to_string(), ": ",
                  why);
        _conn->close();
    }
}

void session::handle(net::frame f) {
    auto parsed = protocol::parse_request_frame(f.bytes());
    if (!parsed) {
        close_with(("unreadable request header: " + parsed.error().describe()).c_str());
        return;
    }
    const protocol::request_header& hdr = parsed->header;
    uint64_t seq = _next_seq++;
    ++_in_flight;
    update_backpressure();
    auto self = shared_from_this();
    auto complete = [self, seq](std::optional<net::output> out) {
        self->complete(seq, std::move(out));
    };

    const handler_entry* h = find_handler(hdr.api_key);
    bool is_api_versions = hdr.api_key == protocol::api_versions_key;
    if (h == nullptr || hdr.api_version < h->min_version || hdr.api_version > h->max_version) {
        if (is_api_versions) {
            // Answer in v0 so the client learns what we support and retries (KIP-511).
            complete(unsupported_api_versions_response(hdr.correlation_id));
            return;
        }
        _in_flight--;
        close_with(("unsupported API key " + std::to_string(hdr.api_key) + " version " +
                    std::to_string(hdr.api_version))
                       .c_str());
        return;
    }
    auto req = protocol::decode_request(hdr.api_key, hdr.api_version, parsed->body);
    if (!req) {
        if (is_api_versions) {
            complete(unsupported_api_versions_response(hdr.correlation_id));
            return;
        }
        _in_flight--;
        close_with(("malformed request (api " + std::to_string(hdr.api_key) + " v" +
                    std::to_string(hdr.api_version) + "): " + req.error().describe())
                       .c_str());
        return;
    }
    auto ctx = std::make_shared<request_context>(_srv, _home, hdr, std::move(f), std::move(complete));
    ctx->client_host = "/" + _conn->peer_address().host();
    ctx->hold_changed = [self](bool held) {
        if (held) {
            ++self->_held;
        } else if (self->_held > 0) {
            --self->_held;
        }
        self->update_backpressure();
    };
    h->fn(std::move(ctx), *req);
}

void session::complete(uint64_t seq, std::optional<net::output> out) {
    if (_closed) return;
    _done.emplace(seq, std::move(out));
    send_ready();
}

void session::send_ready() {
    while (!_done.empty() && _done.begin()->first == _next_to_send) {
        auto node = _done.extract(_done.begin());
        ++_next_to_send;
        --_in_flight;
        if (node.mapped() && _conn && _conn->is_open()) _conn->send(std::move(*node.mapped()));
    }
    update_backpressure();
    close_if_answered();
}

void session::close_if_answered() {
    if (_close_when_answered && _in_flight == 0 && _conn && _conn->is_open()) {
        _conn->close_after_send();
    }
}

void session::update_backpressure() {
    if (!_conn || !_conn->is_open()) return;
    bool over = _in_flight >= _max_in_flight || _held > 0 ||
                _conn->bytes_queued() > max_queued_bytes;
    if (over && !_conn->receive_paused()) {
        _conn->pause_receive();
    } else if (!over && _conn->receive_paused()) {
        _conn->resume_receive();
    }
}

}  // namespace sluice::broker
