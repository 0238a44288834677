#include "net/tls.h"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/pkcs12.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <deque>
#include <fstream>
#include <sstream>

#include "base/log.h"
#include "net/errc.h"
#include "net/frame_reader.h"
#include "runtime/reactor.h"

namespace sluice::net {

namespace {

// OpenSSL's queued errors as one line (and the queue emptied).
std::string openssl_errors() {
    std::string out;
    while (unsigned long e = ERR_get_error()) {
        char buf[256];
        ERR_error_string_n(e, buf, sizeof buf);
        if (!out.empty()) out += "; ";
        out += buf;
    }
    return out.empty() ? "no detail from OpenSSL" : out;
}

error config_error(const std::string& what) {
    return error(errc::tls_config, what + ": " + openssl_errors());
}

struct bio_deleter {
    void operator()(BIO* b) const { BIO_free(b); }
};
using bio_ptr = std::unique_ptr<BIO, bio_deleter>;

int password_cb(char* buf, int size, int, void* userdata) {
    const auto* pw = static_cast<const std::string*>(userdata);
    if (pw == nullptr || pw->empty()) return 0;
    int n = std::min<int>(size, static_cast<int>(pw->size()));
    std::memcpy(buf, pw->data(), static_cast<size_t>(n));
    return n;
}

result<void> load_pem_identity(SSL_CTX* ctx, const tls_options& o) {
    if (!o.certificate_pem.empty() || !o.key_pem.empty()) {
        bio_ptr cb(BIO_new_mem_buf(o.certificate_pem.data(), static_cast<int>(o.certificate_pem.size())));
        X509* leaf = PEM_read_bio_X509(cb.get(), nullptr, nullptr, nullptr);
        if (leaf == nullptr) return config_error("ssl.keystore.certificate.chain");
        int rc = SSL_CTX_use_certificate(ctx, leaf);
        X509_free(leaf);
        if (rc != 1) return config_error("ssl.keystore.certificate.chain");
        while (X509* extra = PEM_read_bio_X509(cb.get(), nullptr, nullptr, nullptr)) {
            if (SSL_CTX_add_extra_chain_cert(ctx, extra) != 1) {
                X509_free(extra);
                return config_error("ssl.keystore.certificate.chain");
            }
        }
        ERR_clear_error();  // the end of the chain reads as an error
        bio_ptr kb(BIO_new_mem_buf(o.key_pem.data(), static_cast<int>(o.key_pem.size())));
        EVP_PKEY* key = PEM_read_bio_PrivateKey(kb.get(), nullptr, password_cb,
                                                const_cast<std::string*>(&o.key_password));
        if (key == nullptr) return config_error("ssl.keystore.key");
        rc = SSL_CTX_use_PrivateKey(ctx, key);
        EVP_PKEY_free(key);
        if (rc != 1) return config_error("ssl.keystore.key");
        return ok();
    }
    if (o.certificate_file.empty()) {
        return error(errc::tls_config,
                     "no certificate: set ssl.keystore.location (PEM or PKCS12) or "
                     "ssl.certificate.location with ssl.key.location");
    }
    if (SSL_CTX_use_certificate_chain_file(ctx, o.certificate_file.c_str()) != 1) {
        return config_error("certificate " + o.certificate_file);
    }
    SSL_CTX_set_default_passwd_cb(ctx, password_cb);
    SSL_CTX_set_default_passwd_cb_userdata(ctx, const_cast<std::string*>(&o.key_password));
    const std::string& key = o.key_file.empty() ? o.certificate_file : o.key_file;
    if (SSL_CTX_use_PrivateKey_file(ctx, key.c_str(), SSL_FILETYPE_PEM) != 1) {
        return config_error("private key " + key);
    }
    return ok();
}

result<void> load_pkcs12_identity(SSL_CTX* ctx, const tls_options& o) {
    FILE* f = std::fopen(o.pkcs12_file.c_str(), "rb");
    if (f == nullptr) {
        return error(errc::tls_config, "keystore " + o.pkcs12_file + ": " + std::strerror(errno));
    }
    PKCS12* p12 = d2i_PKCS12_fp(f, nullptr);
    std::fclose(f);
    if (p12 == nullptr) return config_error("keystore " + o.pkcs12_file + " is not PKCS#12");
    EVP_PKEY* key = nullptr;
    X509* cert = nullptr;
    STACK_OF(X509)* chain = nullptr;
    int rc = PKCS12_parse(p12, o.pkcs12_password.c_str(), &key, &cert, &chain);
    PKCS12_free(p12);
    if (rc != 1) return config_error("keystore " + o.pkcs12_file + " (wrong password?)");
    bool used = SSL_CTX_use_certificate(ctx, cert) == 1 && SSL_CTX_use_PrivateKey(ctx, key) == 1;
    X509_free(cert);
    EVP_PKEY_free(key);
    if (used && chain != nullptr) {
        while (X509* extra = sk_X509_shift(chain)) {
            if (SSL_CTX_add_extra_chain_cert(ctx, extra) != 1) X509_free(extra);
        }
    }
    sk_X509_pop_free(chain, X509_free);
    if (!used) return config_error("keystore " + o.pkcs12_file);
    return ok();
}

result<void> load_trust(SSL_CTX* ctx, const tls_options& o) {
    if (!o.ca_pem.empty()) {
        bio_ptr b(BIO_new_mem_buf(o.ca_pem.data(), static_cast<int>(o.ca_pem.size())));
        X509_STORE* store = SSL_CTX_get_cert_store(ctx);
        int n = 0;
        while (X509* ca = PEM_read_bio_X509(b.get(), nullptr, nullptr, nullptr)) {
            X509_STORE_add_cert(store, ca);
            SSL_CTX_add_client_CA(ctx, ca);
            X509_free(ca);
            ++n;
        }
        ERR_clear_error();
        if (n == 0) return error(errc::tls_config, "ssl.truststore.certificates holds no certificate");
    } else if (!o.ca_file.empty()) {
        if (SSL_CTX_load_verify_locations(ctx, o.ca_file.c_str(), nullptr) != 1) {
            return config_error("CA file " + o.ca_file);
        }
        if (STACK_OF(X509_NAME)* names = SSL_load_client_CA_file(o.ca_file.c_str())) {
            SSL_CTX_set_client_CA_list(ctx, names);
        }
    } else if (o.auth != client_auth::none) {
        return error(errc::tls_config,
                     "ssl.client.auth asks for client certificates but no CA is set "
                     "(ssl.truststore.location or ssl.ca.location)");
    }
    int mode = SSL_VERIFY_NONE;
    if (o.auth == client_auth::requested) mode = SSL_VERIFY_PEER;
    if (o.auth == client_auth::required) mode = SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT;
    SSL_CTX_set_verify(ctx, mode, nullptr);
    return ok();
}

result<void> set_protocols(SSL_CTX* ctx, const std::string& list) {
    bool v12 = false, v13 = false;
    std::stringstream ss(list);
    std::string item;
    while (std::getline(ss, item, ',')) {
        item.erase(0, item.find_first_not_of(" \t"));
        item.erase(item.find_last_not_of(" \t") + 1);
        if (item.empty()) continue;
        if (item == "TLSv1.2") {
            v12 = true;
        } else if (item == "TLSv1.3") {
            v13 = true;
        } else {
            return error(errc::tls_config, "ssl.enabled.protocols: '" + item +
                                               "' is not supported (TLSv1.2, TLSv1.3)");
        }
    }
    if (!v12 && !v13) return error(errc::tls_config, "ssl.enabled.protocols is empty");
    SSL_CTX_set_min_proto_version(ctx, v12 ? TLS1_2_VERSION : TLS1_3_VERSION);
    SSL_CTX_set_max_proto_version(ctx, v13 ? TLS1_3_VERSION : TLS1_2_VERSION);
    return ok();
}

}  // namespace

result<std::shared_ptr<tls_context>> tls_context::create_server(const tls_options& o) {
    SSL_CTX* ctx = SSL_CTX_new(TLS_server_method());
    if (ctx == nullptr) return config_error("SSL_CTX_new");
    std::shared_ptr<tls_context> holder(new tls_context(ctx));
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
    // Session tickets would be written after the handshake by whatever code path happens to
    // run; clients reconnect rarely enough that a full handshake costs nothing worth it.
    SSL_CTX_set_num_tickets(ctx, 0);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    // Partial writes never happen with a memory BIO, but moving buffers must be allowed for
    // records queued across calls.
    SSL_CTX_set_mode(ctx, SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER | SSL_MODE_RELEASE_BUFFERS);
    if (auto r = set_protocols(ctx, o.enabled_protocols); !r) return r.error();
    if (!o.cipher_list.empty() && SSL_CTX_set_cipher_list(ctx, o.cipher_list.c_str()) != 1) {
        return config_error("ssl.cipher.suites '" + o.cipher_list + "'");
    }
    auto identity = o.pkcs12_file.empty() ? load_pem_identity(ctx, o) : load_pkcs12_identity(ctx, o);
    if (!identity) return identity.error();
    if (SSL_CTX_check_private_key(ctx) != 1) {
        return config_error("the private key does not match the certificate");
    }
    if (auto r = load_trust(ctx, o); !r) return r.error();
    return holder;
}

tls_context::~tls_context() { SSL_CTX_free(static_cast<SSL_CTX*>(_ctx)); }

bool kernel_tls_available() {
    std::ifstream f("/proc/sys/net/ipv4/tcp_available_ulp");
    std::string ulp;
    while (f >> ulp) {
        if (ulp == "tls") return true;
    }
    return false;
}

namespace {

// OpenSSL's outgoing ciphertext goes straight into a vector the connection then hands to the
// inner connection (a memory BIO would add a copy). The BIO's data is that vector.
int vec_bio_write(BIO* b, const char* data, int len) {
    auto* out = static_cast<std::vector<std::byte>*>(BIO_get_data(b));
    if (out == nullptr || len < 0) return -1;
    const auto* p = reinterpret_cast<const std::byte*>(data);
    out->insert(out->end(), p, p + len);
    return len;
}

long vec_bio_ctrl(BIO*, int cmd, long, void*) {
    return cmd == BIO_CTRL_FLUSH ? 1 : 0;
}

int vec_bio_create(BIO* b) {
    BIO_set_init(b, 1);
    return 1;
}

const BIO_METHOD* vec_bio_method() {
    static BIO_METHOD* m = [] {
        BIO_METHOD* bm = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "sluice-vector");
        BIO_meth_set_write(bm, vec_bio_write);
        BIO_meth_set_ctrl(bm, vec_bio_ctrl);
        BIO_meth_set_create(bm, vec_bio_create);
        return bm;
    }();
    return m;
}

// Room reserved for one flush of ciphertext: a full window's worth of records and their
// overhead, so appending never reallocates (and copies) midway.
constexpr size_t cipher_reserve_bytes = tls_file_read_bytes + tls_file_read_bytes / 64 + 4096;

// The TLS layer over a raw connection. Owned by the reactor of `_inner`; alive while open
// through `_keepalive` (set at start, dropped when the inner connection has closed).
class tls_connection final : public connection,
                             public std::enable_shared_from_this<tls_connection> {
  public:
    tls_connection(connection_ptr inner, std::shared_ptr<tls_context> ctx,
                   const connection_options& framing)
        : _inner(std::move(inner)),
          _ctx(std::move(ctx)),
          _owner(&_inner->owner()),
          _peer(_inner->peer_address()),
          _local(_inner->local_address()),
          _reader(framing.recv_buffer_bytes, framing.max_frame_bytes) {
        if (framing.memory) _reader.set_account(std::make_shared<memory_account>(framing.memory));
    }
    ~tls_connection() override {
        if (_ssl != nullptr) SSL_free(_ssl);  // frees both BIOs
    }

    void start(connection_handlers h) override;
    void send(output out) override;
    size_t bytes_queued() const override {
        return _queued_plain + (_inner ? _inner->bytes_queued() : 0);
    }
    void pause_receive() override {
        _paused = true;
        if (_inner && _inner->is_open()) _inner->pause_receive();
    }
    void resume_receive() override;
    bool receive_paused() const override { return _paused; }
    void close() override;
    void close_after_send() override;
    bool is_open() const override { return !_closing && _inner && _inner->is_open(); }
    const socket_address& peer_address() const override { return _peer; }
    const socket_address& local_address() const override { return _local; }
    runtime::reactor& owner() const override { return *_owner; }
    const connection_stats& stats() const override { return _stats; }
    void set_max_frame_bytes(uint32_t bytes) override { _reader.set_max_frame_bytes(bytes); }
    const transport_security* security() const override {
        return _handshake_done ? &_security : nullptr;
    }

  private:
    void on_cipher(std::span<frame> chunks);
    void advance();
    bool handshake();
    void read_plain();
    void wait_for_memory();
    void deliver_frames();
    void pump_send();
    bool encrypt_front(std::vector<std::byte>& cipher);
    void flush_cipher(std::vector<std::byte>& cipher);
    void drain_wbio(std::vector<std::byte>& into);
    void fail(error why);
    void inner_closed(const error& why);
    void maybe_finish_close();

    connection_ptr _inner;
    std::shared_ptr<tls_context> _ctx;
    std::shared_ptr<tls_connection> _keepalive;
    runtime::reactor* _owner = nullptr;
    socket_address _peer, _local;
    SSL* _ssl = nullptr;
    BIO* _rbio = nullptr;  // ciphertext in (owned by _ssl)
    BIO* _wbio = nullptr;  // ciphertext out (owned by _ssl)
    connection_handlers _handlers;
    connection_stats _stats;
    transport_security _security;
    frame_reader _reader;
    std::vector<frame> _batch;
    bool _handshake_done = false;
    bool _paused = false;
    bool _memory_wait = false;  // over the core's memory budget (the inner is paused meanwhile)
    bool _receive_dead = false;
    bool _closing = false;
    bool _close_when_sent = false;
    bool _delivering = false;
    bool _had_queued = false;
    bool _closed_notified = false;
    bool _inner_closed = false;
    error _fail_reason;
    // Plaintext waiting to be encrypted: the caller's pieces and how far into the front one.
    std::deque<output::piece> _out;
    size_t _front_done = 0;
    size_t _queued_plain = 0;
    std::vector<std::byte> _file_buf;
    std::vector<std::byte> _cipher_out;  // what _wbio has been given since the last drain
};

void tls_connection::start(connection_handlers h) {
    _handlers = std::move(h);
    _keepalive = shared_from_this();
    _ssl = SSL_new(static_cast<SSL_CTX*>(_ctx->native()));
    _rbio = BIO_new(BIO_s_mem());
    _wbio = BIO_new(vec_bio_method());
    if (_wbio != nullptr) BIO_set_data(_wbio, &_cipher_out);
    _cipher_out.reserve(cipher_reserve_bytes);
    if (_ssl == nullptr || _rbio == nullptr || _wbio == nullptr) {
        if (_rbio) BIO_free(_rbio);
        if (_wbio) BIO_free(_wbio);
        _rbio = _wbio = nullptr;
        fail(error(errc::tls_failed, "out of memory creating the TLS session: " + openssl_errors()));
        return;
    }
    BIO_set_mem_eof_return(_rbio, -1);  // "no more data yet", not end of stream
    SSL_set_bio(_ssl, _rbio, _wbio);
    SSL_set_accept_state(_ssl);
    std::weak_ptr<tls_connection> weak = _keepalive;
    connection_handlers inner;
    inner.on_frames = [weak](std::span<frame> chunks) {
        if (auto s = weak.lock()) s->on_cipher(chunks);
    };
    inner.on_close = [weak](const error& why) {
        if (auto s = weak.lock()) s->inner_closed(why);
    };
    inner.on_drain = [weak] {
        if (auto s = weak.lock()) s->pump_send();
    };
    _inner->start(std::move(inner));
}

void tls_connection::on_cipher(std::span<frame> chunks) {
    for (const frame& c : chunks) {
        _stats.bytes_received += c.size();
        size_t off = 0;
        while (off < c.size()) {
            int n = BIO_write(_rbio, c.data() + off, static_cast<int>(std::min<size_t>(c.size() - off, 1u << 30)));
            if (n <= 0) {
                fail(error(errc::tls_failed, "buffering received bytes: " + openssl_errors()));
                return;
            }
            off += static_cast<size_t>(n);
        }
    }
    advance();
}

void tls_connection::advance() {
    if (_closing) return;
    if (!_handshake_done && !handshake()) return;
    read_plain();
}

bool tls_connection::handshake() {
    int r = SSL_do_handshake(_ssl);
    std::vector<std::byte> cipher;
    drain_wbio(cipher);
    if (r == 1) {
        _handshake_done = true;
        _security.protocol = SSL_get_version(_ssl);
        if (const SSL_CIPHER* c = SSL_get_current_cipher(_ssl)) _security.cipher = SSL_CIPHER_get_name(c);
        if (X509* peer = SSL_get1_peer_certificate(_ssl)) {
            if (SSL_get_verify_result(_ssl) == X509_V_OK) {
                bio_ptr b(BIO_new(BIO_s_mem()));
                X509_NAME_print_ex(b.get(), X509_get_subject_name(peer), 0, XN_FLAG_RFC2253);
                char* data = nullptr;
                long len = BIO_get_mem_data(b.get(), &data);
                _security.peer_subject.assign(data, static_cast<size_t>(std::max(0L, len)));
            }
            X509_free(peer);
        }
        flush_cipher(cipher);
        pump_send();
        return true;
    }
    int e = SSL_get_error(_ssl, r);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
        flush_cipher(cipher);  // our flight of the handshake
        return false;
    }
    // Send the alert OpenSSL wrote, then go.
    flush_cipher(cipher);
    fail(error(errc::tls_failed, "TLS handshake with " + _peer.to_string() + " failed: " + openssl_errors()));
    return false;
}

void tls_connection::wait_for_memory() {
    _memory_wait = true;
    if (_inner && _inner->is_open()) _inner->pause_receive();
    _reader.account()->budget()->wait([w = weak_from_this()] {
        auto s = w.lock();
        if (!s) return;
        s->_memory_wait = false;
        if (s->_closing || !s->_inner) return;
        if (!s->_paused) s->_inner->resume_receive();
        s->advance();
    });
}

void tls_connection::read_plain() {
    while (!_paused && !_closing && !_receive_dead && !_memory_wait) {
        if (!_reader.may_read()) {
            wait_for_memory();
            break;
        }
        std::span<std::byte> room = _reader.writable();
        _stats.recv_buffer_capacity_max = _reader.capacity_max();
        int n = SSL_read(_ssl, room.data(), static_cast<int>(std::min<size_t>(room.size(), 1u << 30)));
        if (n > 0) {
            _reader.commit(static_cast<size_t>(n));
            // Deliver as frames complete, so a large burst is not all decrypted before any of it
            // is handled (and pause_receive() from a handler takes effect promptly).
            if (_reader.pending() >= 4) deliver_frames();
            continue;
        }
        int e = SSL_get_error(_ssl, n);
        if (e == SSL_ERROR_WANT_READ) break;
        std::vector<std::byte> cipher;
        drain_wbio(cipher);
        flush_cipher(cipher);
        if (e == SSL_ERROR_ZERO_RETURN) {
            deliver_frames();
            fail(error(errc::peer_closed, "peer " + _peer.to_string() + " closed the TLS session"));
        } else {
            fail(error(errc::tls_failed, "TLS record from " + _peer.to_string() + ": " + openssl_errors()));
        }
        return;
    }
    deliver_frames();
    if (!_paused && !_closing) {
        // Whatever OpenSSL wrote while reading (alerts, key update answers).
        std::vector<std::byte> cipher;
        drain_wbio(cipher);
        flush_cipher(cipher);
    }
}

void tls_connection::deliver_frames() {
    if (_delivering || _closing) return;
    error failure;
    auto self = shared_from_this();
    bool ok = net::deliver_frames(_reader, _batch, failure, _peer, _stats, _handlers, _delivering).ok;
    if (!ok && !_receive_dead) {
        if (_closing || !hand_bad_frame_to_owner(_handlers, failure, _receive_dead, _paused)) {
            fail(std::move(failure));
        } else if (_inner) {
            _inner->pause_receive();
        }
        return;
    }
    _reader.rewind_if_idle();
}

void tls_connection::resume_receive() {
    if (!_paused || _receive_dead) return;
    _paused = false;
    if (_closing || !_inner || _memory_wait) return;
    _inner->resume_receive();
    _owner->defer([w = std::weak_ptr<tls_connection>(shared_from_this())] {
        if (auto s = w.lock()) s->advance();
    });
}

void tls_connection::send(output out) {
    if (_closing || _close_when_sent) return;
    _queued_plain += out.size_bytes();
    _had_queued = true;
    for (auto& p : out.pieces()) _out.push_back(std::move(p));
    ++_stats.sends;
    pump_send();
}

void tls_connection::pump_send() {
    if (_closing || !_handshake_done || !_inner) return;
    std::vector<std::byte> cipher;
    // One inner send per encrypted piece: each is a vector handed over without a copy.
    while (!_out.empty() && _inner->bytes_queued() < tls_send_window_bytes) {
        if (!encrypt_front(cipher)) return;
        flush_cipher(cipher);
        if (_closing) return;
    }
    if (_closing) return;
    if (_out.empty() && _close_when_sent) {
        SSL_shutdown(_ssl);  // our close_notify
        drain_wbio(cipher);
        flush_cipher(cipher);
        _inner->close_after_send();
        return;
    }
    if (_out.empty() && _inner->bytes_queued() == 0 && _had_queued) {
        _had_queued = false;
        if (_handlers.on_drain) _handlers.on_drain();
    }
}

// Encrypts (up to a bounded amount of) the front piece; false after a failure closed us.
bool tls_connection::encrypt_front(std::vector<std::byte>& cipher) {
    output::piece& p = _out.front();
    std::span<const std::byte> plain;
    size_t piece_len = 0;
    if (auto* v = std::get_if<std::vector<std::byte>>(&p)) {
        piece_len = v->size();
        plain = std::span<const std::byte>(*v).subspan(_front_done);
    } else if (auto* b = std::get_if<shared_buffer>(&p)) {
        piece_len = b->size();
        plain = b->bytes().subspan(_front_done);
    } else {
        auto& region = std::get<file_region>(p);
        piece_len = region.length;
        size_t want = std::min<size_t>(region.length - _front_done, tls_file_read_bytes);
        _file_buf.resize(want);
        ssize_t n = ::pread(region.file->get(), _file_buf.data(), want,
                            static_cast<off_t>(region.offset + _front_done));
        if (n <= 0) {
            fail(error(n == 0 ? errc::file_region_short : errc::io_error,
                       "reading a file region to encrypt: " +
                           std::string(n == 0 ? "end of file" : std::strerror(errno))));
            return false;
        }
        plain = std::span<const std::byte>(_file_buf.data(), static_cast<size_t>(n));
    }
    size_t take = std::min<size_t>(plain.size(), tls_file_read_bytes);
    if (take > 0) {
        size_t written = 0;
        if (SSL_write_ex(_ssl, plain.data(), take, &written) != 1 || written != take) {
            fail(error(errc::tls_failed, "encrypting for " + _peer.to_string() + ": " + openssl_errors()));
            return false;
        }
        drain_wbio(cipher);
    }
    _front_done += take;
    _queued_plain -= take;
    if (_front_done >= piece_len) {
        _out.pop_front();
        _front_done = 0;
    }
    return true;
}

void tls_connection::drain_wbio(std::vector<std::byte>& into) {
    if (_cipher_out.empty()) return;
    if (into.empty()) {
        into.swap(_cipher_out);
        _cipher_out.reserve(cipher_reserve_bytes);
    } else {
        into.insert(into.end(), _cipher_out.begin(), _cipher_out.end());
        _cipher_out.clear();
    }
}

void tls_connection::flush_cipher(std::vector<std::byte>& cipher) {
    if (cipher.empty() || !_inner || !_inner->is_open()) return;
    _stats.bytes_sent += cipher.size();
    output o;
    o.append(std::move(cipher));
    cipher = {};
    _inner->send(std::move(o));
}

void tls_connection::fail(error why) {
    if (_closing) return;
    _closing = true;
    _fail_reason = std::move(why);
    _out.clear();
    _queued_plain = 0;
    // Let an alert already queued leave; the inner close then reports back to inner_closed().
    if (_inner && _inner->is_open()) {
        _inner->close_after_send();
    } else {
        maybe_finish_close();
    }
}

void tls_connection::close() {
    if (_closing) return;
    _closing = true;
    _fail_reason = error(errc::closed, "");
    _out.clear();
    _queued_plain = 0;
    if (_inner && _inner->is_open()) {
        _inner->close();
    } else {
        maybe_finish_close();
    }
}

void tls_connection::close_after_send() {
    if (_closing || _close_when_sent) return;
    _close_when_sent = true;
    _paused = true;
    if (_inner && _inner->is_open()) _inner->pause_receive();
    pump_send();
}

void tls_connection::inner_closed(const error& why) {
    if (!_closing) {
        _closing = true;
        _fail_reason = _close_when_sent ? error(errc::closed, "") : why;
    }
    _inner_closed = true;
    maybe_finish_close();
}

void tls_connection::maybe_finish_close() {
    if (_closed_notified || (!_inner_closed && _inner)) return;
    _closed_notified = true;
    _reader.release();
    auto on_close = std::move(_handlers.on_close);
    _handlers = {};
    auto self = std::move(_keepalive);
    if (on_close) on_close(_fail_reason);
}

}  // namespace

connection_ptr make_tls_connection(connection_ptr inner, std::shared_ptr<tls_context> context,
                                   const connection_options& framing) {
    return std::make_shared<tls_connection>(std::move(inner), std::move(context), framing);
}

}  // namespace sluice::net
