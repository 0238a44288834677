#include "broker/session.h"

#include <algorithm>
#include <cstring>

#include "base/log.h"
#include "broker/handlers.h"
#include "broker/kafka_error.h"
#include "broker/metrics.h"
#include "broker/security.h"
#include "security/store.h"
#include "broker/server.h"
#include "broker/shard.h"
#include "net/errc.h"
#include "protocol/errc.h"

namespace sluice::broker {

session::session(server& srv, shard& home, net::connection_ptr conn, size_t max_in_flight,
                 const listener_security& security)
    : _srv(srv), _home(home), _conn(std::move(conn)), _max_in_flight(max_in_flight),
      _security(security) {
    if (_security.uses_sasl()) _auth = auth_state::want_handshake;
}

session::~session() {
    if (!_counted) return;
    _srv.release_connection(_peer_ip);
    _srv.stats().core(_home.id()).connections_closed.fetch_add(1, std::memory_order_relaxed);
}

void session::start() {
    auto self = shared_from_this();
    _peer_ip = _conn->peer_address().host();
    if (!_srv.admit_connection(_peer_ip)) {
        log::warn("broker", "refusing a connection from ", _peer_ip,
                  ": max.connections.per.ip reached");
        _conn->close();
        return;
    }
    _counted = true;
    _srv.stats().core(_home.id()).connections_accepted.fetch_add(1, std::memory_order_relaxed);
    // Until the client has authenticated, frames are bounded by Kafka's SASL receive limit.
    if (_auth != auth_state::open) {
        _conn->set_max_frame_bytes(static_cast<uint32_t>(std::min<int64_t>(
            _srv.config().int_value("sasl.server.max.receive.size"),
            _srv.config().int_value("socket.request.max.bytes"))));
    }
    net::connection_handlers h;
    h.on_frames = [self](std::span<net::frame> frames) { self->on_frames(frames); };
    h.on_close = [self](const error& why) {
        if (!why.is(net::errc::peer_closed) && !why.is(net::errc::closed)) {
            log::info("broker", "connection from ", self->_conn->peer_address().to_string(),
                      " closed: ", why.describe());
        }
        self->_closed = true;
        self->_done.clear();
        if (self->_unmute_timer != 0) {
            self->_conn->owner().cancel_timer(self->_unmute_timer);
            self->_unmute_timer = 0;
        }
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
    if (_auth == auth_state::want_raw_token) {
        sasl_raw_token(f);
        return;
    }
    auto parsed = protocol::parse_request_frame(f.bytes());
    if (!parsed) {
        close_with(("unreadable request header: " + parsed.error().describe()).c_str());
        return;
    }
    const protocol::request_header& hdr = parsed->header;
    if (_auth == auth_state::open && _security.uses_tls() && _principal == "User:ANONYMOUS") {
        // The TLS handshake is over before the first frame: the certificate names the client.
        const net::transport_security* ts = _conn->security();
        if (ts != nullptr && !ts->peer_subject.empty()) _principal = "User:" + ts->peer_subject;
    }
    if (_auth != auth_state::open && authenticate(f, &hdr, parsed->body)) return;
    uint64_t seq = _next_seq++;
    ++_in_flight;
    update_backpressure();
    auto self = shared_from_this();
    auto started = std::chrono::steady_clock::now();
    auto complete = [self, seq, started, api = hdr.api_key](std::optional<net::output> out) {
        self->_srv.stats().request_done(self->_home.id(), api,
                                        std::chrono::duration_cast<std::chrono::microseconds>(
                                            std::chrono::steady_clock::now() - started));
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
    ctx->client_host = "/" + _peer_ip;
    ctx->principal = _principal;
    ctx->listener = _security.name;
    ctx->mute = [self](int32_t ms) { self->mute_for(ms); };
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
    bool over = _in_flight >= _max_in_flight || _held > 0 || _muted ||
                _conn->bytes_queued() > max_queued_bytes;
    if (over && !_conn->receive_paused()) {
        _conn->pause_receive();
    } else if (!over && _conn->receive_paused()) {
        _conn->resume_receive();
    }
}

// ---------------------------------------------------------------------------------------------
// Quotas

void session::mute_for(int32_t ms) {
    if (_closed || !_conn || ms <= 0) return;
    runtime::reactor& r = _conn->owner();
    if (_unmute_timer != 0) r.cancel_timer(_unmute_timer);
    _muted = true;
    update_backpressure();
    std::weak_ptr<session> weak = shared_from_this();
    _unmute_timer = r.add_timer(std::chrono::milliseconds(ms), [weak] {
        if (auto self = weak.lock()) {
            self->_unmute_timer = 0;
            self->_muted = false;
            self->update_backpressure();
        }
    });
}

// ---------------------------------------------------------------------------------------------
// SASL

void session::answer_now(std::optional<net::output> out) {
    uint64_t seq = _next_seq++;
    ++_in_flight;
    complete(seq, std::move(out));
}

bool session::authenticate(net::frame&, const protocol::request_header* hdr,
                           std::span<const std::byte> body) {
    int16_t key = hdr->api_key;
    if (_auth == auth_state::done) {
        if (key == protocol::sasl_handshake_api::key && _security.reauth_ms > 0) {
            _reauthenticating = true;
            _auth = auth_state::want_handshake;
        } else if (_security.reauth_ms > 0 && !_reauthenticating &&
                   std::chrono::steady_clock::now() > _auth_expires) {
            log::info("security", "closing the connection from ", _peer_ip, " (", _principal,
                      "): its session expired without re-authentication (connections.max.reauth.ms)");
            _conn->close();
            return true;
        } else {
            return false;
        }
    }
    if (key == protocol::api_versions_key) return false;  // always served
    if (key == protocol::sasl_handshake_api::key && _auth == auth_state::want_handshake) {
        sasl_handshake(*hdr, body);
        return true;
    }
    if (key == protocol::sasl_authenticate_api::key && _auth == auth_state::want_authenticate) {
        sasl_authenticate(*hdr, body);
        return true;
    }
    if (_reauthenticating && key != protocol::sasl_handshake_api::key &&
        key != protocol::sasl_authenticate_api::key) {
        return false;  // the old session still holds while the client re-authenticates
    }
    log::warn("security", "closing the connection from ", _peer_ip, " on listener ", _security.name,
              ": request of API ", key, " before SASL authentication completed");
    _conn->close();
    return true;
}

void session::sasl_handshake(const protocol::request_header& hdr, std::span<const std::byte> body) {
    auto req = protocol::decode_request(hdr.api_key, hdr.api_version, body);
    if (!req || hdr.api_version > protocol::sasl_handshake_api::max_version) {
        close_with("malformed SaslHandshake");
        return;
    }
    const auto& r = std::get<protocol::sasl_handshake_request>(*req);
    protocol::sasl_handshake_response resp;
    for (const auto& m : _security.mechanisms) resp.mechanisms.push_back(m);
    bool offered = std::find(_security.mechanisms.begin(), _security.mechanisms.end(), r.mechanism) !=
                   _security.mechanisms.end();
    if (!offered || (_reauthenticating && r.mechanism != _mechanism)) {
        log::warn("security", "connection from ", _peer_ip, " asked for SASL mechanism '", r.mechanism,
                  "', not offered on listener ", _security.name);
        resp.error_code = code(kafka_error::unsupported_sasl_mechanism);
        _close_when_answered = true;
    } else {
        _mechanism = r.mechanism;
        security::credential_source src;
        const listener_security* ls = &_security;
        server* srv = &_srv;
        src.plain_password = [ls](const std::string& user) -> std::optional<std::string> {
            auto it = ls->plain_users.find(user);
            if (it == ls->plain_users.end()) return std::nullopt;
            return it->second;
        };
        src.scram = [srv](const std::string& user, security::scram_mechanism m)
            -> std::optional<security::scram_credential> {
            auto state = srv->security().snapshot();
            auto u = state->scram.find(user);
            if (u == state->scram.end()) return std::nullopt;
            auto c = u->second.find(m);
            if (c == u->second.end()) return std::nullopt;
            return c->second;
        };
        _sasl = security::make_sasl_server(r.mechanism, std::move(src));
        _auth = hdr.api_version == 0 ? auth_state::want_raw_token : auth_state::want_authenticate;
    }
    protocol::writer w(128);
    protocol::encode_response_frame(w, hdr.api_key, hdr.api_version, hdr.correlation_id, resp);
    answer_now(to_output(w));
    close_if_answered();
}

std::optional<std::string> session::sasl_step(std::string_view token, std::string& failure) {
    if (token.size() > security::max_token_bytes) {
        failure = "SASL token of " + std::to_string(token.size()) + " bytes";
    } else if (auto out = _sasl->step(token); !out) {
        failure = out.error().detail().empty() ? out.error().describe() : out.error().detail();
    } else {
        if (_sasl->done()) {
            std::string principal = "User:" + _sasl->user();
            if (_reauthenticating && principal != _principal) {
                failure = "re-authentication as " + principal + " on a connection of " + _principal;
                log::warn("security", "failed SASL ", _mechanism, " authentication from ", _peer_ip,
                          " on listener ", _security.name, ": ", failure);
                return std::nullopt;
            }
            _principal = std::move(principal);
            _auth = auth_state::done;
            _reauthenticating = false;
            _sasl.reset();
            if (_security.reauth_ms > 0) {
                _auth_expires = std::chrono::steady_clock::now() + std::chrono::milliseconds(_security.reauth_ms);
            }
            _conn->set_max_frame_bytes(
                static_cast<uint32_t>(_srv.config().int_value("socket.request.max.bytes")));
            log::info("security", "authenticated ", _principal, " from ", _peer_ip, " with ", _mechanism,
                      " on listener ", _security.name);
        }
        return std::move(*out);
    }
    log::warn("security", "failed SASL ", _mechanism, " authentication from ", _peer_ip, " on listener ",
              _security.name, ": ", failure);
    _srv.stats().core(_home.id()).auth_failures.fetch_add(1, std::memory_order_relaxed);
    return std::nullopt;
}

void session::sasl_authenticate(const protocol::request_header& hdr, std::span<const std::byte> body) {
    auto req = protocol::decode_request(hdr.api_key, hdr.api_version, body);
    if (!req || hdr.api_version > protocol::sasl_authenticate_api::max_version) {
        close_with("malformed SaslAuthenticate");
        return;
    }
    const auto& r = std::get<protocol::sasl_authenticate_request>(*req);
    std::string_view token(reinterpret_cast<const char*>(r.auth_bytes.data()), r.auth_bytes.size());
    std::string failure;
    auto answer = sasl_step(token, failure);
    protocol::sasl_authenticate_response resp;
    if (!answer) {
        resp.error_code = code(kafka_error::sasl_authentication_failed);
        resp.error_message = "Authentication failed during authentication due to invalid credentials with SASL mechanism " + _mechanism;
        _close_when_answered = true;
        _auth = auth_state::want_authenticate;
        _sasl.reset();
    } else {
        resp.auth_bytes.assign(reinterpret_cast<const std::byte*>(answer->data()),
                               reinterpret_cast<const std::byte*>(answer->data()) + answer->size());
        if (_auth == auth_state::done && _security.reauth_ms > 0) resp.session_lifetime_ms = _security.reauth_ms;
    }
    protocol::writer w(256);
    protocol::encode_response_frame(w, hdr.api_key, hdr.api_version, hdr.correlation_id, resp);
    answer_now(to_output(w));
    if (!answer) {
        _auth = auth_state::want_handshake;  // nothing more is read: the connection is closing
        close_if_answered();
    }
}

void session::sasl_raw_token(const net::frame& f) {
    std::string_view token(reinterpret_cast<const char*>(f.data()), f.size());
    std::string failure;
    if (!_sasl) {
        close_with("SASL token without a mechanism");
        return;
    }
    auto answer = sasl_step(token, failure);
    if (!answer) {
        // v0 framing has no error field: Kafka closes the connection.
        _sasl.reset();
        _auth = auth_state::want_handshake;
        _close_when_answered = true;
        close_if_answered();
        return;
    }
    // A bare size-prefixed token, also when empty (PLAIN's success).
    std::vector<std::byte> out(4 + answer->size());
    uint32_t n = static_cast<uint32_t>(answer->size());
    out[0] = std::byte(n >> 24);
    out[1] = std::byte(n >> 16);
    out[2] = std::byte(n >> 8);
    out[3] = std::byte(n);
    std::memcpy(out.data() + 4, answer->data(), answer->size());
    net::output o;
    o.append(std::move(out));
    answer_now(std::move(o));
}

}  // namespace sluice::broker
