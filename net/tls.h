#pragma once
// TLS for any connection of either stack, with OpenSSL. A `tls_context` holds the server's
// certificate, key, trusted CAs and client-authentication policy (built once per listener at
// start-up); `make_tls_connection()` wraps a connection accepted in raw mode
// (connection_options::raw_stream) into one that speaks TLS underneath and offers the same
// connection interface above: Kafka frames in, outputs (memory and file regions) out.
//
// How bytes move: received ciphertext is fed to OpenSSL through a memory BIO, the plaintext is
// decrypted straight into the frame reader's chunk, and frames are handed out as views into it
// (one copy, the decryption itself). On the send side plaintext pieces are encrypted in
// records of up to 16 KiB and the ciphertext goes to the inner connection; file regions are read
// into a bounded buffer first (they must pass through user space to be encrypted). At most
// `send_window_bytes` of ciphertext waits in the inner connection at a time, so a slow reader
// holds a bounded amount of memory; the rest waits as the caller's pieces.
//
// Kernel TLS (kTLS): Linux can take over record encryption after the handshake
// (setsockopt TCP_ULP "tls"), letting file regions go to the socket from the page cache again.
// `kernel_tls_available()` says whether this kernel offers it (the "tls" upper-layer protocol);
// where it does not (CONFIG_TLS off), every TLS connection uses the user-space path above.
//
// Threading: a tls_connection lives on its inner connection's reactor, like every connection.
// A tls_context is immutable after creation and shared by all cores.

#include <memory>
#include <string>

#include "base/result.h"
#include "net/connection.h"

namespace sluice::net {

enum class client_auth { none, requested, required };

struct tls_options {
    // PEM files: the certificate (with its chain) and its private key, which may be one file.
    std::string certificate_file;
    std::string key_file;
    std::string key_password;  // for an encrypted key; empty: none
    // PEM: the same, given inline as text (Kafka's ssl.keystore.certificate.chain / .key).
    std::string certificate_pem;
    std::string key_pem;
    // A PKCS#12 keystore instead of PEM (ssl.keystore.type=PKCS12); its password.
    std::string pkcs12_file;
    std::string pkcs12_password;
    // CAs that client certificates must chain to: a PEM file, or inline PEM text.
    std::string ca_file;
    std::string ca_pem;
    client_auth auth = client_auth::none;
    // Allowed protocol versions, from "TLSv1.2,TLSv1.3" (ssl.enabled.protocols).
    std::string enabled_protocols = "TLSv1.2,TLSv1.3";
    // OpenSSL cipher list for TLS 1.2 (ssl.cipher.suites); empty: OpenSSL's defaults.
    std::string cipher_list;
};

class tls_context {
  public:
    // Loads and checks everything up front: a missing file, a key that does not match the
    // certificate or an unknown protocol name is an error that says which.
    static result<std::shared_ptr<tls_context>> create_server(const tls_options& options);
    ~tls_context();
    tls_context(const tls_context&) = delete;
    tls_context& operator=(const tls_context&) = delete;

    void* native() const { return _ctx; }  // SSL_CTX*

  private:
    explicit tls_context(void* ctx) : _ctx(ctx) {}
    void* _ctx;
};

// Ciphertext allowed to wait in the inner connection before more plaintext is encrypted.
inline constexpr size_t tls_send_window_bytes = 1u << 20;
// Largest piece of a file region read (and encrypted) at once.
inline constexpr size_t tls_file_read_bytes = 256u << 10;

// Wraps `inner`, a connection accepted with raw_stream set and not yet started. `framing`
// gives the Kafka framing limits (max_frame_bytes, recv_buffer_bytes) of the decrypted stream.
// The handshake starts with start(); frames are delivered only after it completed, and then
// security() is set. A failed handshake closes the connection with errc::tls_failed, naming
// OpenSSL's reason.
connection_ptr make_tls_connection(connection_ptr inner, std::shared_ptr<tls_context> context,
                                   const connection_options& framing);

// Whether this kernel offers kernel TLS (the "tls" ULP: /proc/sys/net/ipv4/tcp_available_ulp
// lists it, or the module loads).
bool kernel_tls_available();

}  // namespace sluice::net
