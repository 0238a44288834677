#pragma once
// SASL mechanisms on the server side: PLAIN (RFC 4616) against a configured user list, and
// SCRAM-SHA-256 / SCRAM-SHA-512 (RFC 5802, RFC 7677) against stored salted credentials.
// Also the JAAS-style user list Kafka brokers are configured with, and SCRAM credential
// generation for `AlterUserScramCredentials`.
//
// Every parser here reads bytes from an unauthenticated client: they are total (any input is an
// error value, never a crash) and bounded by `max_token_bytes`.
//
// Threading: plain values; a `sasl_server` belongs to one connection.

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "base/result.h"

namespace sluice::security {

enum class errc {
    ok = 0,
    malformed,           // a SASL or SCRAM message that does not parse
    auth_failed,         // wrong password, unknown user, bad proof
    unsupported,         // a mechanism or SCRAM extension Sluice does not offer
    invalid_config,      // a JAAS string or security setting that does not parse
    store_failed,        // the security store cannot be read or written
    invalid_request,     // an ACL, credential or quota that cannot be stored (detail says why)
};
const char* describe(errc e);

}  // namespace sluice::security
SLUICE_DECLARE_ERRC(sluice::security, errc)

namespace sluice::security {

// Tokens longer than this are refused before they are looked at (Kafka caps SaslAuthenticate
// tokens far lower in practice: a SCRAM message is under 1 KiB).
inline constexpr size_t max_token_bytes = 64 * 1024;

enum class scram_mechanism { sha256, sha512 };
const char* mechanism_name(scram_mechanism m);  // "SCRAM-SHA-256"
std::optional<scram_mechanism> parse_mechanism(std::string_view name);
// Kafka's AlterUserScramCredentials mechanism codes: 1 = SHA-256, 2 = SHA-512.
std::optional<scram_mechanism> mechanism_from_code(int8_t code);
int8_t mechanism_code(scram_mechanism m);

// What the broker stores for a SCRAM user: never the password.
struct scram_credential {
    std::vector<uint8_t> salt;
    std::vector<uint8_t> stored_key;  // H(ClientKey)
    std::vector<uint8_t> server_key;  // HMAC(SaltedPassword, "Server Key")
    int32_t iterations = 4096;
    bool operator==(const scram_credential&) const = default;
};
inline constexpr int32_t scram_min_iterations = 4096;
inline constexpr int32_t scram_max_iterations = 16384;

// Derives the stored credential from a password (random salt when `salt` is empty).
scram_credential make_scram_credential(scram_mechanism m, std::string_view password,
                                       int32_t iterations, std::vector<uint8_t> salt = {});
// The same from SaltedPassword, as AlterUserScramCredentials carries it.
scram_credential scram_credential_from_salted(scram_mechanism m, std::vector<uint8_t> salt,
                                              std::span<const uint8_t> salted_password,
                                              int32_t iterations);
// Hi(password, salt, i): what a client computes (for tests and the CLI).
std::vector<uint8_t> scram_salted_password(scram_mechanism m, std::string_view password,
                                           std::span<const uint8_t> salt, int32_t iterations);

std::string base64_encode(std::span<const uint8_t> bytes);
result<std::vector<uint8_t>> base64_decode(std::string_view text);

// Where a SASL exchange looks its users up. Called on the connection's core.
struct credential_source {
    // PLAIN: the configured password of `user`.
    std::function<std::optional<std::string>(const std::string& user)> plain_password;
    // SCRAM: the stored credential of `user` for the mechanism.
    std::function<std::optional<scram_credential>(const std::string& user, scram_mechanism m)>
        scram;
};

// One server-side SASL exchange. step() takes each client token and returns the server's
// answer; `done()` once the client is authenticated (user() is then the authenticated name).
// A failure is errc::auth_failed (with a reason for the log, never the secret), malformed or
// unsupported; the exchange is over after any error.
class sasl_server {
  public:
    virtual ~sasl_server() = default;
    virtual result<std::string> step(std::string_view client_token) = 0;
    virtual bool done() const = 0;
    virtual const std::string& user() const = 0;
};

// "PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"; nullptr for any other name.
std::unique_ptr<sasl_server> make_sasl_server(std::string_view mechanism,
                                              credential_source source);

// The `user_<name>="<password>"` entries of a JAAS login-module string, as Kafka's
// PlainLoginModule takes them (`listener.name.*.plain.sasl.jaas.config`). The module's own
// `username`/`password` options are returned separately (inter-broker identity).
struct jaas_config {
    std::string login_module;
    std::map<std::string, std::string> options;  // every key="value" option
    std::map<std::string, std::string> users;     // user_<name> options, by name
};
result<jaas_config> parse_jaas(std::string_view text);

// A client's side of SCRAM, for tools and tests: first message, then final message from the
// server-first, then verify the server-final.
class scram_client {
  public:
    scram_client(scram_mechanism m, std::string user, std::string password,
                 std::string nonce = {});
    std::string first_message();
    result<std::string> final_message(std::string_view server_first);
    result<void> verify_server_final(std::string_view server_final);

  private:
    scram_mechanism _m;
    std::string _user, _password, _nonce, _client_first_bare, _auth_message;
    std::vector<uint8_t> _salted;
};

}  // namespace sluice::security
