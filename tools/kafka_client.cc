#include "tools/kafka_client.h"

#include "security/sasl.h"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>

#include "protocol/api.h"

namespace sluice::tools {

int64_t now_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}

// ---------------------------------------------------------------------------------------------
// Addresses

result<broker_address> parse_host_port(std::string_view s) {
    broker_address a;
    std::string_view port;
    if (!s.empty() && s.front() == '[') {
        auto close = s.find(']');
        if (close == std::string_view::npos) {
            return error(errc::bad_argument, "bad address '" + std::string(s) + "'");
        }
        a.host = std::string(s.substr(1, close - 1));
        if (close + 1 < s.size() && s[close + 1] == ':') port = s.substr(close + 2);
    } else {
        auto colon = s.rfind(':');
        if (colon == std::string_view::npos) {
            a.host = std::string(s);
        } else {
            a.host = std::string(s.substr(0, colon));
            port = s.substr(colon + 1);
        }
    }
    if (a.host.empty()) a.host = "localhost";
    if (!port.empty()) {
        unsigned v = 0;
        auto [p, ec] = std::from_chars(port.data(), port.data() + port.size(), v);
        if (ec != std::errc() || p != port.data() + port.size() || v == 0 || v > 65535) {
            return error(errc::bad_argument, "bad port in '" + std::string(s) + "'");
        }
        a.port = static_cast<uint16_t>(v);
    }
    return a;
}

result<std::vector<broker_address>> parse_bootstrap(std::string_view s) {
    std::vector<broker_address> out;
    while (!s.empty()) {
        auto comma = s.find(',');
        auto one = s.substr(0, comma);
        if (!one.empty()) {
            auto a = parse_host_port(one);
            if (!a) return a.error();
            out.push_back(std::move(*a));
        }
        if (comma == std::string_view::npos) break;
        s.remove_prefix(comma + 1);
    }
    if (out.empty()) return error(errc::bad_argument, "empty --bootstrap-server");
    return out;
}

// ---------------------------------------------------------------------------------------------
// connection

namespace {

void set_timeouts(int fd, int timeout_ms) {
    timeval tv{};
    tv.tv_sec = timeout_ms / 1000;
    tv.tv_usec = (timeout_ms % 1000) * 1000;
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

// Connects one resolved address with a deadline; returns a blocking socket.
result<unique_fd> connect_one(const addrinfo* ai, int timeout_ms) {
    unique_fd fd(
        ::socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, ai->ai_protocol));
    if (!fd.valid()) return errno_error(errno, "socket");
    if (::connect(fd.get(), ai->ai_addr, ai->ai_addrlen) != 0) {
        if (errno != EINPROGRESS) return errno_error(errno, "connect");
        pollfd p{fd.get(), POLLOUT, 0};
        int n = ::poll(&p, 1, timeout_ms);
        if (n == 0) return error(errc::timeout, "connect");
        if (n < 0) return errno_error(errno, "poll");
        int err = 0;
        socklen_t len = sizeof err;
        ::getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &err, &len);
        if (err != 0) return errno_error(err, "connect");
    }
    int flags = ::fcntl(fd.get(), F_GETFL);
    ::fcntl(fd.get(), F_SETFL, flags & ~O_NONBLOCK);
    return fd;
}

}  // namespace

connection::connection(unique_fd fd, broker_address addr, connection_options opts)
    : _fd(std::move(fd)), _addr(std::move(addr)), _opts(std::move(opts)) {
    int one = 1;
    ::setsockopt(_fd.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (_opts.socket_buffer_bytes > 0) {
        int b = _opts.socket_buffer_bytes;
        ::setsockopt(_fd.get(), SOL_SOCKET, SO_SNDBUF, &b, sizeof b);
        ::setsockopt(_fd.get(), SOL_SOCKET, SO_RCVBUF, &b, sizeof b);
    }
    if (!_opts.tcp_congestion.empty()) {
        // Best effort: an unknown algorithm leaves the system's default in place.
        (void)::setsockopt(_fd.get(), IPPROTO_TCP, TCP_CONGESTION, _opts.tcp_congestion.data(),
                           static_cast<socklen_t>(_opts.tcp_congestion.size()));
    }
    set_timeouts(_fd.get(), _opts.timeout_ms);
}

connection::connection(std::unique_ptr<bypass_stream> stream, broker_address addr,
                       connection_options opts)
    : _stream(std::move(stream)), _addr(std::move(addr)), _opts(std::move(opts)) {}

result<std::unique_ptr<connection>> connection::open_raw(const broker_address& addr,
                                                         const connection_options& opts) {
    if (opts.bypass) {
        if (opts.tls) return error(errc::bad_argument, "TLS is not offered over the dpdk stack");
        auto s = bypass_stream::connect(*opts.bypass, addr.host, addr.port, opts.timeout_ms);
        if (!s) return s.error();
        return std::make_unique<connection>(std::move(*s), addr, opts);
    }
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* res = nullptr;
    std::string port = std::to_string(addr.port);
    if (int rc = ::getaddrinfo(addr.host.c_str(), port.c_str(), &hints, &res); rc != 0) {
        return error(errc::connect_failed, addr.to_string() + ": " + ::gai_strerror(rc));
    }
    std::string why;
    for (const addrinfo* ai = res; ai != nullptr; ai = ai->ai_next) {
        auto fd = connect_one(ai, opts.timeout_ms);
        if (fd) {
            ::freeaddrinfo(res);
            auto c = std::make_unique<connection>(std::move(*fd), addr, opts);
            if (opts.tls) {
                if (auto t = c->start_tls(); !t) return t.error();
            }
            return c;
        }
        why = fd.error().describe();
    }
    ::freeaddrinfo(res);
    return error(errc::connect_failed, addr.to_string() + ": " + why);
}

result<std::unique_ptr<connection>> connection::open(const broker_address& addr,
                                                     const connection_options& opts) {
    auto c = open_raw(addr, opts);
    if (!c) return c.error();
    if (auto n = (*c)->negotiate(); !n) return n.error();
    if (!opts.sasl_mechanism.empty()) {
        if (auto a = (*c)->authenticate(); !a) return a.error();
    }
    return c;
}

result<void> connection::authenticate() {
    const std::string& mech = _opts.sasl_mechanism;
    auto scram = security::parse_mechanism(mech);
    if (mech != "PLAIN" && !scram) {
        return error(errc::bad_argument, "SASL mechanism '" + mech +
                                             "' is not one of PLAIN, SCRAM-SHA-256, SCRAM-SHA-512");
    }
    protocol::sasl_handshake_request hs;
    hs.mechanism = mech;
    auto h = call<protocol::sasl_handshake_api>(hs, 1);
    if (!h) return h.error();
    if (h->error_code != 0) return kafka_failure(h->error_code, "SaslHandshake " + mech);
    auto round = [&](const std::string& token) -> result<std::string> {
        protocol::sasl_authenticate_request req;
        req.auth_bytes.assign(reinterpret_cast<const std::byte*>(token.data()),
                              reinterpret_cast<const std::byte*>(token.data()) + token.size());
        auto r = call<protocol::sasl_authenticate_api>(req);
        if (!r) return r.error();
        if (r->error_code != 0) {
            return kafka_failure(r->error_code, r->error_message.value_or("SaslAuthenticate"));
        }
        return std::string(reinterpret_cast<const char*>(r->auth_bytes.data()), r->auth_bytes.size());
    };
    if (!scram) {
        std::string token;
        token += '\0';
        token += _opts.sasl_username;
        token += '\0';
        token += _opts.sasl_password;
        auto r = round(token);
        return r ? ok() : result<void>(r.error());
    }
    security::scram_client sc(*scram, _opts.sasl_username, _opts.sasl_password);
    auto server_first = round(sc.first_message());
    if (!server_first) return server_first.error();
    auto final_msg = sc.final_message(*server_first);
    if (!final_msg) return error(errc::protocol, final_msg.error().describe());
    auto server_final = round(*final_msg);
    if (!server_final) return server_final.error();
    if (auto v = sc.verify_server_final(*server_final); !v) {
        return error(errc::protocol, v.error().describe());
    }
    return ok();
}

protocol::reader_limits connection::response_limits() {
    protocol::reader_limits l;
    l.blob_bytes_max = response_frame_bytes_max;
    l.array_length_max = 1u << 24;
    return l;
}

error connection::no_common_version(int16_t key, std::string_view name) {
    return error(errc::no_common_version, std::string(name) + " (api key " + std::to_string(key) +
                                              "): the broker supports no version we implement");
}

int16_t connection::pick_version(int16_t api_key, int16_t lo, int16_t hi) const {
    auto it = _versions.find(api_key);
    if (it == _versions.end()) return -1;
    int16_t top = std::min(hi, it->second.second);
    int16_t bottom = std::max(lo, it->second.first);
    return top >= bottom ? top : -1;
}

std::optional<std::pair<int16_t, int16_t>> connection::broker_versions(int16_t api_key) const {
    auto it = _versions.find(api_key);
    if (it == _versions.end()) return std::nullopt;
    return it->second;
}

result<void> connection::negotiate() {
    // Ask at our highest version; a broker that does not know it answers in v0 with
    // UNSUPPORTED_VERSION and its own range (KIP-511), and we ask again at its highest.
    int16_t version = protocol::api_versions_api::max_version;
    for (int attempt = 0; attempt < 2; ++attempt) {
        protocol::api_versions_request req;
        req.client_software_name = "sluice";
        req.client_software_version = "0.1";
        if (auto s = send(protocol::api_versions_api::key, version, req); !s) return s.error();
        auto r = receive();
        if (!r) return r.error();
        protocol::api_versions_response resp;
        protocol::reader rd(r->body, response_limits());
        bool decoded = static_cast<bool>(resp.decode(rd, version));
        if (!decoded || resp.error_code == 35) {
            protocol::reader rd0(r->body, response_limits());
            resp = {};
            if (auto d = resp.decode(rd0, 0); !d) {
                return error(errc::protocol, "ApiVersions response: " + d.error().describe());
            }
        }
        if (resp.error_code == 35 && attempt == 0) {
            int16_t theirs = -1;
            for (const auto& k : resp.api_keys) {
                if (k.api_key == protocol::api_versions_api::key) theirs = k.max_version;
            }
            version = std::min<int16_t>(theirs, protocol::api_versions_api::max_version);
            if (version < 0) return no_common_version(18, "ApiVersions");
            continue;
        }
        if (resp.error_code != 0) return kafka_failure(resp.error_code, "ApiVersions");
        _versions.clear();
        for (const auto& k : resp.api_keys) _versions[k.api_key] = {k.min_version, k.max_version};
        return ok();
    }
    return error(errc::protocol, "ApiVersions negotiation did not converge");
}

size_t connection::begin_request(protocol::writer& w, int16_t api_key, int16_t version) {
    size_t size_at = w.reserve(4);
    protocol::request_header h;
    h.api_key = api_key;
    h.api_version = version;
    h.correlation_id = _next_correlation_id++;
    h.client_id = _opts.client_id;
    protocol::encode_request_header(w, h);
    return size_at;
}

result<int32_t> connection::finish_request(protocol::writer& w, size_t size_at, int16_t api_key,
                                           int16_t version, bool expect_response, uint64_t tag) {
    w.patch_int32(size_at, static_cast<int32_t>(w.size_bytes() - 4));
    int32_t correlation_id = _next_correlation_id - 1;
    in_flight f{correlation_id, api_key, version, clock::now(), tag};
    if (auto s = send_encoded(w.memory(), f, expect_response); !s) return s.error();
    return correlation_id;
}

result<void> connection::send_encoded(std::span<const std::byte> frame, const in_flight& f,
                                      bool expect_response) {
    if (auto s = write_all(frame); !s) return s;
    if (expect_response) _in_flight.push_back(f);
    return ok();
}

result<connection::response> connection::receive() {
    if (_in_flight.empty()) return error(errc::protocol, "receive() with no request in flight");
    auto frame = read_frame(_rx);
    if (!frame) return frame.error();
    in_flight f = _in_flight.front();
    _in_flight.pop_front();
    protocol::reader rd(*frame, response_limits());
    auto h = protocol::decode_response_header(
        rd, protocol::response_header_version(f.api_key, f.api_version));
    if (!h) return error(errc::protocol, "response header: " + h.error().describe());
    if (h->correlation_id != f.correlation_id) {
        return error(errc::protocol, "correlation id " + std::to_string(h->correlation_id) +
                                         " where " + std::to_string(f.correlation_id) +
                                         " was expected from " + _addr.to_string());
    }
    return response{f, rd.rest()};
}

namespace {

std::string tls_errors() {
    std::string out;
    while (unsigned long e = ERR_get_error()) {
        char buf[256];
        ERR_error_string_n(e, buf, sizeof buf);
        out += (out.empty() ? "" : "; ") + std::string(buf);
    }
    return out.empty() ? std::string("no detail") : out;
}

}  // namespace

connection::~connection() {
    if (_tls != nullptr) {
        SSL_shutdown(_tls);
        SSL_free(_tls);
    }
    if (_tls_ctx != nullptr) SSL_CTX_free(_tls_ctx);
}

bool connection::wait_readable(int timeout_ms) {
    if (_stream) return _stream->wait_readable(timeout_ms);
    if (has_buffered()) return true;
    pollfd p{_fd.get(), POLLIN, 0};
    return ::poll(&p, 1, timeout_ms) > 0;
}

bool connection::has_buffered() const {
    if (_stream) return _stream->has_buffered();
    return _tls != nullptr && SSL_pending(_tls) > 0;
}

result<void> connection::start_tls() {
    auto fail = [&](const std::string& what) {
        return error(errc::connect_failed, "TLS to " + _addr.to_string() + ": " + what + ": " + tls_errors());
    };
    _tls_ctx = SSL_CTX_new(TLS_client_method());
    if (_tls_ctx == nullptr) return fail("SSL_CTX_new");
    SSL_CTX_set_min_proto_version(_tls_ctx, TLS1_2_VERSION);
    SSL_CTX_set_verify(_tls_ctx, SSL_VERIFY_PEER, nullptr);
    if (!_opts.tls_ca_file.empty()) {
        if (SSL_CTX_load_verify_locations(_tls_ctx, _opts.tls_ca_file.c_str(), nullptr) != 1) {
            return fail("CA file " + _opts.tls_ca_file);
        }
    } else {
        SSL_CTX_set_default_verify_paths(_tls_ctx);
    }
    if (!_opts.tls_certificate_file.empty()) {
        const std::string& key = _opts.tls_key_file.empty() ? _opts.tls_certificate_file : _opts.tls_key_file;
        if (SSL_CTX_use_certificate_chain_file(_tls_ctx, _opts.tls_certificate_file.c_str()) != 1 ||
            SSL_CTX_use_PrivateKey_file(_tls_ctx, key.c_str(), SSL_FILETYPE_PEM) != 1) {
            return fail("client certificate " + _opts.tls_certificate_file);
        }
    }
    _tls = SSL_new(_tls_ctx);
    if (_tls == nullptr) return fail("SSL_new");
    SSL_set_fd(_tls, _fd.get());
    SSL_set_tlsext_host_name(_tls, _addr.host.c_str());
    if (_opts.tls_verify_hostname) {
        in6_addr ip6{};
        in_addr ip4{};
        bool is_ip = ::inet_pton(AF_INET, _addr.host.c_str(), &ip4) == 1 ||
                     ::inet_pton(AF_INET6, _addr.host.c_str(), &ip6) == 1;
        X509_VERIFY_PARAM* param = SSL_get0_param(_tls);
        if (is_ip) {
            X509_VERIFY_PARAM_set1_ip_asc(param, _addr.host.c_str());
        } else {
            SSL_set1_host(_tls, _addr.host.c_str());
        }
    }
    if (SSL_connect(_tls) != 1) return fail("handshake");
    return ok();
}

result<void> connection::write_all(std::span<const std::byte> bytes) {
    if (_stream) {
        auto w = _stream->write_all(bytes);
        if (!w) return error(errc::io_failed, "writing to " + _addr.to_string() + ": " +
                                                  w.error().detail());
        return ok();
    }
    if (_tls != nullptr) {
        while (!bytes.empty()) {
            size_t n = 0;
            if (SSL_write_ex(_tls, bytes.data(), bytes.size(), &n) != 1) {
                return error(errc::io_failed, "writing to " + _addr.to_string() + ": " + tls_errors());
            }
            bytes = bytes.subspan(n);
        }
        return ok();
    }
    while (!bytes.empty()) {
        ssize_t n = ::send(_fd.get(), bytes.data(), bytes.size(), MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                return error(errc::timeout, "writing to " + _addr.to_string());
            }
            return error(errc::io_failed,
                         "writing to " + _addr.to_string() + ": " + std::strerror(errno));
        }
        bytes = bytes.subspan(static_cast<size_t>(n));
    }
    return ok();
}

result<void> connection::read_exact(std::span<std::byte> out) {
    // A bypass stream is read a whole frame at a time (read_frame), never by byte counts.
    if (_stream) return error(errc::protocol, "read_exact on a bypass stream");
    while (_tls != nullptr && !out.empty()) {
        size_t n = 0;
        if (SSL_read_ex(_tls, out.data(), out.size(), &n) != 1) {
            int e = SSL_get_error(_tls, 0);
            if (e == SSL_ERROR_ZERO_RETURN) {
                return error(errc::io_failed, _addr.to_string() + " closed the connection");
            }
            if (e == SSL_ERROR_SYSCALL && (errno == EAGAIN || errno == EWOULDBLOCK)) {
                return error(errc::timeout, "no answer from " + _addr.to_string() + " within " +
                                                std::to_string(_opts.timeout_ms) + " ms");
            }
            return error(errc::io_failed, "reading from " + _addr.to_string() + ": " + tls_errors());
        }
        out = out.subspan(n);
    }
    while (!out.empty()) {
        ssize_t n = ::recv(_fd.get(), out.data(), out.size(), 0);
        if (n == 0) {
            return error(errc::io_failed, _addr.to_string() + " closed the connection");
        }
        if (n < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                return error(errc::timeout, "no answer from " + _addr.to_string() + " within " +
                                                std::to_string(_opts.timeout_ms) + " ms");
            }
            return error(errc::io_failed,
                         "reading from " + _addr.to_string() + ": " + std::strerror(errno));
        }
        out = out.subspan(static_cast<size_t>(n));
    }
    return ok();
}

result<std::span<const std::byte>> connection::read_frame(std::vector<std::byte>& buf) {
    if (_stream) {
        // The stream frames answers itself and lends the bytes in place.
        auto f = _stream->read_frame(_opts.timeout_ms);
        if (f) return f;
        if (f.error().is(errc::timeout)) {
            return error(errc::timeout, "no answer from " + _addr.to_string() + " within " +
                                            std::to_string(_opts.timeout_ms) + " ms");
        }
        return error(errc::io_failed,
                     "reading from " + _addr.to_string() + ": " + f.error().detail());
    }
    std::byte size_bytes[4];
    if (auto r = read_exact(size_bytes); !r) return r.error();
    uint32_t size = (std::to_integer<uint32_t>(size_bytes[0]) << 24) |
                    (std::to_integer<uint32_t>(size_bytes[1]) << 16) |
                    (std::to_integer<uint32_t>(size_bytes[2]) << 8) |
                    std::to_integer<uint32_t>(size_bytes[3]);
    if (size > response_frame_bytes_max) {
        return error(errc::protocol,
                     "frame of " + std::to_string(size) + " bytes from " + _addr.to_string());
    }
    // resize() without shrinking keeps the capacity, so a steady stream of frames allocates once.
    if (buf.size() < size) buf.resize(size);
    std::span<std::byte> frame(buf.data(), size);
    if (auto r = read_exact(frame); !r) return r.error();
    return std::span<const std::byte>(frame);
}

// ---------------------------------------------------------------------------------------------
// client

result<std::unique_ptr<client>> client::connect(const client_options& opts) {
    auto addrs = parse_bootstrap(opts.bootstrap);
    if (!addrs) return addrs.error();
    std::unique_ptr<client> c(new client(opts));
    std::string why;
    for (const auto& a : *addrs) {
        auto conn = connection::open(a, opts.conn);
        if (conn) {
            c->_bootstrap = std::move(*conn);
            return c;
        }
        why = conn.error().is(errc::connect_failed) ? conn.error().detail()
                                                    : user_message(conn.error());
    }
    return error(errc::connect_failed, why);
}

result<connection*> client::broker(int32_t node_id) {
    if (node_id == _bootstrap_node) return _bootstrap.get();
    if (auto it = _brokers.find(node_id); it != _brokers.end()) return it->second.get();
    auto addr = _cluster.brokers.find(node_id);
    if (addr == _cluster.brokers.end()) {
        return kafka_failure(8, "broker " + std::to_string(node_id) + " is not in the metadata");
    }
    if (addr->second.to_string() == _bootstrap->address().to_string()) {
        _bootstrap_node = node_id;
        return _bootstrap.get();
    }
    auto conn = connection::open(addr->second, _opts.conn);
    if (!conn) return conn.error();
    connection* raw = conn->get();
    _brokers[node_id] = std::move(*conn);
    return raw;
}

result<connection*> client::controller() {
    if (_cluster.brokers.empty()) {
        if (auto m = metadata(std::vector<std::string>{}); !m) return m.error();
    }
    if (_cluster.controller < 0) return _bootstrap.get();
    return broker(_cluster.controller);
}

namespace {

topic_info to_topic_info(const protocol::metadata_response::metadata_response_topic& t) {
    topic_info ti;
    ti.name = t.name.value_or("");
    ti.id = t.topic_id;
    ti.error_code = t.error_code;
    ti.internal = t.is_internal;
    for (const auto& p : t.partitions) {
        partition_info pi;
        pi.partition = p.partition_index;
        pi.error_code = p.error_code;
        pi.leader = p.leader_id;
        pi.leader_epoch = p.leader_epoch;
        pi.replicas = p.replica_nodes;
        pi.isr = p.isr_nodes;
        pi.offline = p.offline_replicas;
        ti.partitions.push_back(std::move(pi));
    }
    std::sort(
        ti.partitions.begin(), ti.partitions.end(),
        [](const partition_info& a, const partition_info& b) { return a.partition < b.partition; });
    return ti;
}

}  // namespace

result<const cluster_info*> client::metadata(const std::optional<std::vector<std::string>>& topics,
                                             bool auto_create) {
    protocol::metadata_request req;
    if (topics) {
        req.topics.emplace();
        for (const auto& t : *topics) {
            protocol::metadata_request::metadata_request_topic rt;
            rt.name = t;
            req.topics->push_back(std::move(rt));
        }
    } else {
        req.topics.reset();
    }
    req.allow_auto_topic_creation = auto_create;
    int16_t v = _bootstrap->version<protocol::metadata_api>();
    // Metadata v0 cannot say "no topics" (an empty list means all of them); ask for all then.
    if (v == 0 && topics && topics->empty()) req.topics.reset();
    auto resp = _bootstrap->call<protocol::metadata_api>(req);
    if (!resp) return resp.error();
    _cluster.brokers.clear();
    for (const auto& b : resp->brokers) {
        _cluster.brokers[b.node_id] = broker_address{b.host, static_cast<uint16_t>(b.port)};
    }
    _cluster.controller = resp->controller_id;
    _cluster.cluster_id = resp->cluster_id;
    if (!topics) _cluster.topics.clear();
    for (const auto& t : resp->topics) {
        topic_info ti = to_topic_info(t);
        _cluster.topics[ti.name] = std::move(ti);
    }
    // Connections to brokers that left the cluster (or moved) are dropped.
    for (auto it = _brokers.begin(); it != _brokers.end();) {
        auto b = _cluster.brokers.find(it->first);
        bool gone = b == _cluster.brokers.end() ||
                    b->second.to_string() != it->second->address().to_string();
        it = gone ? _brokers.erase(it) : std::next(it);
    }
    return &_cluster;
}

result<const topic_info*> client::topic(const std::string& name, bool refresh, bool auto_create) {
    auto it = _cluster.topics.find(name);
    if (refresh || it == _cluster.topics.end() || it->second.error_code != 0) {
        auto m = metadata(std::vector<std::string>{name}, auto_create);
        if (!m) return m.error();
        it = _cluster.topics.find(name);
        if (it == _cluster.topics.end()) {
            return kafka_failure(3, "topic '" + name + "' is not in the metadata");
        }
    }
    if (it->second.error_code != 0) {
        return kafka_failure(it->second.error_code, "topic '" + name + "'");
    }
    return &it->second;
}

result<connection*> client::leader_for(const std::string& topic_name, int32_t partition) {
    auto t = topic(topic_name);
    if (!t) return t.error();
    for (const auto& p : (*t)->partitions) {
        if (p.partition != partition) continue;
        if (p.leader < 0) {
            return kafka_failure(5,
                                 topic_name + "-" + std::to_string(partition) + " has no leader");
        }
        return broker(p.leader);
    }
    return kafka_failure(3, topic_name + "-" + std::to_string(partition) + " does not exist");
}

// ---------------------------------------------------------------------------------------------
// Partitioner

int32_t murmur2(std::span<const std::byte> data) {
    const uint32_t m = 0x5bd1e995;
    const int r = 24;
    const size_t length = data.size();
    uint32_t h = 0x9747b28c ^ static_cast<uint32_t>(length);
    auto byte = [&](size_t i) { return std::to_integer<uint32_t>(data[i]); };
    for (size_t i = 0; i + 4 <= length; i += 4) {
        uint32_t k = byte(i) | (byte(i + 1) << 8) | (byte(i + 2) << 16) | (byte(i + 3) << 24);
        k *= m;
        k ^= k >> r;
        k *= m;
        h *= m;
        h ^= k;
    }
    size_t tail = length & ~size_t{3};
    switch (length % 4) {
        case 3:
            h ^= byte(tail + 2) << 16;
            [[fallthrough]];
        case 2:
            h ^= byte(tail + 1) << 8;
            [[fallthrough]];
        case 1:
            h ^= byte(tail);
            h *= m;
    }
    h ^= h >> 13;
    h *= m;
    h ^= h >> 15;
    return static_cast<int32_t>(h);
}

int32_t partition_for_key(std::span<const std::byte> key, int32_t partitions) {
    uint32_t positive = static_cast<uint32_t>(murmur2(key)) & 0x7fffffffu;
    return static_cast<int32_t>(positive % static_cast<uint32_t>(partitions));
}

}  // namespace sluice::tools
