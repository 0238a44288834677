#include "security/sasl.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include <cctype>
#include <cstring>

namespace sluice::security {

const char* describe(errc e) {
    switch (e) {
        case errc::ok:
            return "ok";
        case errc::malformed:
            return "malformed SASL message";
        case errc::auth_failed:
            return "authentication failed";
        case errc::unsupported:
            return "unsupported SASL feature";
        case errc::invalid_config:
            return "invalid security configuration";
        case errc::store_failed:
            return "security store failed";
        case errc::invalid_request:
            return "invalid security request";
    }
    return "unknown security error";
}

}  // namespace sluice::security

SLUICE_DEFINE_ERRC(sluice::security, errc, "security", describe)

namespace sluice::security {

namespace {

const EVP_MD* digest(scram_mechanism m) { return m == scram_mechanism::sha256 ? EVP_sha256() : EVP_sha512(); }
size_t digest_bytes(scram_mechanism m) { return m == scram_mechanism::sha256 ? 32 : 64; }

std::vector<uint8_t> hmac(scram_mechanism m, std::span<const uint8_t> key, std::string_view data) {
    std::vector<uint8_t> out(EVP_MAX_MD_SIZE);
    unsigned len = 0;
    HMAC(digest(m), key.data(), static_cast<int>(key.size()),
         reinterpret_cast<const unsigned char*>(data.data()), data.size(), out.data(), &len);
    out.resize(len);
    return out;
}

std::vector<uint8_t> hash(scram_mechanism m, std::span<const uint8_t> data) {
    std::vector<uint8_t> out(EVP_MAX_MD_SIZE);
    unsigned len = 0;
    EVP_Digest(data.data(), data.size(), out.data(), &len, digest(m), nullptr);
    out.resize(len);
    return out;
}

std::string random_nonce() {
    uint8_t raw[24];
    RAND_bytes(raw, sizeof raw);
    return base64_encode(raw);
}

// The comma-separated attributes of a SCRAM message: "n=user,r=nonce" -> {n: user, r: nonce},
// keeping their order. Each attribute is one letter, '=', a value without commas.
struct attr {
    char name;
    std::string_view value;
};
result<std::vector<attr>> split_attrs(std::string_view msg) {
    std::vector<attr> out;
    size_t pos = 0;
    while (pos <= msg.size()) {
        size_t comma = msg.find(',', pos);
        std::string_view item = msg.substr(pos, comma == std::string_view::npos ? msg.npos : comma - pos);
        if (item.size() < 2 || item[1] != '=' || !std::isalpha(static_cast<unsigned char>(item[0]))) {
            return error(errc::malformed, "SCRAM attribute '" + std::string(item.substr(0, 16)) + "'");
        }
        out.push_back({item[0], item.substr(2)});
        if (comma == std::string_view::npos) break;
        pos = comma + 1;
        if (out.size() > 32) return error(errc::malformed, "too many SCRAM attributes");
    }
    return out;
}

// saslname decoding: "=2C" -> ',', "=3D" -> '='; any other '=' is an error (RFC 5802 5.1).
result<std::string> decode_saslname(std::string_view s) {
    std::string out;
    for (size_t i = 0; i < s.size(); ++i) {
        if (s[i] != '=') {
            out += s[i];
            continue;
        }
        if (s.substr(i, 3) == "=2C") {
            out += ',';
        } else if (s.substr(i, 3) == "=3D") {
            out += '=';
        } else {
            return error(errc::malformed, "bad '=' escape in a SCRAM user name");
        }
        i += 2;
    }
    return out;
}

class plain_server final : public sasl_server {
  public:
    explicit plain_server(credential_source src) : _src(std::move(src)) {}
    result<std::string> step(std::string_view token) override {
        if (_over) return error(errc::malformed, "PLAIN takes one message");
        _over = true;
        size_t a = token.find('\0');
        size_t b = a == token.npos ? token.npos : token.find('\0', a + 1);
        if (b == token.npos) {
            return error(errc::malformed, "PLAIN message is not authzid NUL user NUL password");
        }
        std::string authzid(token.substr(0, a));
        std::string user(token.substr(a + 1, b - a - 1));
        std::string_view password = token.substr(b + 1);
        if (user.empty()) return error(errc::malformed, "PLAIN message without a user name");
        if (!authzid.empty() && authzid != user) {
            return error(errc::auth_failed, "authorization id '" + authzid +
                                                "' differs from the user name '" + user + "'");
        }
        std::optional<std::string> want = _src.plain_password ? _src.plain_password(user) : std::nullopt;
        // Compare in constant time even for unknown users.
        std::string expected = want.value_or(std::string(password.size() + 1, '\0'));
        bool equal = expected.size() == password.size() &&
                     CRYPTO_memcmp(expected.data(), password.data(), password.size()) == 0;
        if (!want || !equal) {
            return error(errc::auth_failed, "invalid username or password for user '" + user + "'");
        }
        _user = std::move(user);
        _done = true;
        return std::string();
    }
    bool done() const override { return _done; }
    const std::string& user() const override { return _user; }

  private:
    credential_source _src;
    std::string _user;
    bool _over = false;
    bool _done = false;
};

class scram_server final : public sasl_server {
  public:
    scram_server(scram_mechanism m, credential_source src) : _m(m), _src(std::move(src)) {}

    result<std::string> step(std::string_view token) override {
        switch (_state) {
            case state::first:
                _state = state::failed;
                return client_first(token);
            case state::final:
                _state = state::failed;
                return client_final(token);
            default:
                return error(errc::malformed, "SCRAM exchange is already over");
        }
    }
    bool done() const override { return _state == state::done; }
    const std::string& user() const override { return _user; }

  private:
    enum class state { first, final, done, failed };

    result<std::string> client_first(std::string_view msg) {
        // gs2-header: cbind flag, then the optional authzid, each followed by a comma.
        if (msg.size() < 3) return error(errc::malformed, "SCRAM client-first message too short");
        if (msg[0] == 'p') return error(errc::unsupported, "SCRAM channel binding is not supported");
        if ((msg[0] != 'n' && msg[0] != 'y') || msg[1] != ',') {
            return error(errc::malformed, "SCRAM client-first message: bad gs2 header");
        }
        size_t second = msg.find(',', 2);
        if (second == msg.npos) return error(errc::malformed, "SCRAM client-first message: bad gs2 header");
        std::string_view authz = msg.substr(2, second - 2);
        _gs2_header = std::string(msg.substr(0, second + 1));
        _client_first_bare = std::string(msg.substr(second + 1));
        auto attrs = split_attrs(_client_first_bare);
        if (!attrs) return attrs.error();
        if (attrs->size() < 2 || (*attrs)[0].name != 'n' || (*attrs)[1].name != 'r') {
            return error(errc::malformed, "SCRAM client-first message needs n= then r=");
        }
        for (size_t i = 2; i < attrs->size(); ++i) {
            if ((*attrs)[i].name == 'm') return error(errc::unsupported, "SCRAM mandatory extension");
        }
        auto user = decode_saslname((*attrs)[0].value);
        if (!user) return user.error();
        if (user->empty()) return error(errc::malformed, "SCRAM user name is empty");
        if (!authz.empty()) {
            if (authz.substr(0, 2) != "a=") return error(errc::malformed, "SCRAM authzid");
            auto a = decode_saslname(authz.substr(2));
            if (!a) return a.error();
            if (*a != *user) {
                return error(errc::auth_failed, "authorization id '" + *a +
                                                    "' differs from the user name '" + *user + "'");
            }
        }
        std::string_view client_nonce = (*attrs)[1].value;
        if (client_nonce.empty()) return error(errc::malformed, "SCRAM client nonce is empty");
        auto cred = _src.scram ? _src.scram(*user, _m) : std::nullopt;
        if (!cred) {
            return error(errc::auth_failed, "unknown user '" + *user + "' for " +
                                                std::string(mechanism_name(_m)));
        }
        _cred = std::move(*cred);
        _user = std::move(*user);
        _nonce = std::string(client_nonce) + random_nonce();
        _server_first = "r=" + _nonce + ",s=" + base64_encode(_cred.salt) +
                        ",i=" + std::to_string(_cred.iterations);
        _state = state::final;
        return _server_first;
    }

    result<std::string> client_final(std::string_view msg) {
        size_t p = msg.rfind(",p=");
        if (p == msg.npos) return error(errc::malformed, "SCRAM client-final message without a proof");
        std::string_view without_proof = msg.substr(0, p);
        auto attrs = split_attrs(without_proof);
        if (!attrs) return attrs.error();
        if (attrs->size() < 2 || (*attrs)[0].name != 'c' || (*attrs)[1].name != 'r') {
            return error(errc::malformed, "SCRAM client-final message needs c= then r=");
        }
        auto cbind = base64_decode((*attrs)[0].value);
        if (!cbind || std::string(cbind->begin(), cbind->end()) != _gs2_header) {
            return error(errc::auth_failed, "SCRAM channel binding does not match the first message");
        }
        // The final nonce must end with the server-first one: librdkafka sends its client
        // nonce again in front of it, and Kafka accepts that, so Sluice does too.
        std::string_view final_nonce = (*attrs)[1].value;
        if (final_nonce.size() < _nonce.size() ||
            final_nonce.substr(final_nonce.size() - _nonce.size()) != _nonce) {
            return error(errc::auth_failed, "SCRAM nonce of the final message does not match");
        }
        auto proof = base64_decode(msg.substr(p + 3));
        if (!proof || proof->size() != digest_bytes(_m)) {
            return error(errc::malformed, "SCRAM client proof has the wrong size");
        }
        std::string auth_message = _client_first_bare + "," + _server_first + "," + std::string(without_proof);
        std::vector<uint8_t> signature = hmac(_m, _cred.stored_key, auth_message);
        if (signature.size() != proof->size()) return error(errc::auth_failed, "SCRAM proof");
        std::vector<uint8_t> client_key(proof->size());
        for (size_t i = 0; i < client_key.size(); ++i) client_key[i] = (*proof)[i] ^ signature[i];
        std::vector<uint8_t> stored = hash(_m, client_key);
        if (stored.size() != _cred.stored_key.size() ||
            CRYPTO_memcmp(stored.data(), _cred.stored_key.data(), stored.size()) != 0) {
            return error(errc::auth_failed, "invalid credentials for user '" + _user + "'");
        }
        _state = state::done;
        return "v=" + base64_encode(hmac(_m, _cred.server_key, auth_message));
    }

    scram_mechanism _m;
    credential_source _src;
    state _state = state::first;
    std::string _user, _gs2_header, _client_first_bare, _server_first, _nonce;
    scram_credential _cred;
};

}  // namespace

const char* mechanism_name(scram_mechanism m) {
    return m == scram_mechanism::sha256 ? "SCRAM-SHA-256" : "SCRAM-SHA-512";
}

std::optional<scram_mechanism> parse_mechanism(std::string_view name) {
    if (name == "SCRAM-SHA-256") return scram_mechanism::sha256;
    if (name == "SCRAM-SHA-512") return scram_mechanism::sha512;
    return std::nullopt;
}

std::optional<scram_mechanism> mechanism_from_code(int8_t code) {
    if (code == 1) return scram_mechanism::sha256;
    if (code == 2) return scram_mechanism::sha512;
    return std::nullopt;
}

int8_t mechanism_code(scram_mechanism m) { return m == scram_mechanism::sha256 ? 1 : 2; }

std::vector<uint8_t> scram_salted_password(scram_mechanism m, std::string_view password,
                                           std::span<const uint8_t> salt, int32_t iterations) {
    std::vector<uint8_t> out(digest_bytes(m));
    PKCS5_PBKDF2_HMAC(password.data(), static_cast<int>(password.size()), salt.data(),
                      static_cast<int>(salt.size()), iterations, digest(m), static_cast<int>(out.size()),
                      out.data());
    return out;
}

scram_credential scram_credential_from_salted(scram_mechanism m, std::vector<uint8_t> salt,
                                              std::span<const uint8_t> salted, int32_t iterations) {
    scram_credential c;
    c.salt = std::move(salt);
    c.iterations = iterations;
    c.stored_key = hash(m, hmac(m, salted, "Client Key"));
    c.server_key = hmac(m, salted, "Server Key");
    return c;
}

scram_credential make_scram_credential(scram_mechanism m, std::string_view password,
                                       int32_t iterations, std::vector<uint8_t> salt) {
    if (salt.empty()) {
        salt.resize(32);
        RAND_bytes(salt.data(), static_cast<int>(salt.size()));
    }
    auto salted = scram_salted_password(m, password, salt, iterations);
    return scram_credential_from_salted(m, std::move(salt), salted, iterations);
}

std::string base64_encode(std::span<const uint8_t> bytes) {
    std::string out(4 * ((bytes.size() + 2) / 3) + 1, '\0');
    int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()), bytes.data(),
                            static_cast<int>(bytes.size()));
    out.resize(static_cast<size_t>(n));
    return out;
}

result<std::vector<uint8_t>> base64_decode(std::string_view text) {
    if (text.size() % 4 != 0 || text.size() > max_token_bytes) {
        return error(errc::malformed, "base64 text of " + std::to_string(text.size()) + " characters");
    }
    for (char c : text) {
        if (!std::isalnum(static_cast<unsigned char>(c)) && c != '+' && c != '/' && c != '=') {
            return error(errc::malformed, "not base64");
        }
    }
    std::vector<uint8_t> out(text.size() / 4 * 3);
    int n = EVP_DecodeBlock(out.data(), reinterpret_cast<const unsigned char*>(text.data()),
                            static_cast<int>(text.size()));
    if (n < 0) return error(errc::malformed, "not base64");
    size_t len = static_cast<size_t>(n);
    // EVP_DecodeBlock counts padding as zero bytes.
    if (!text.empty() && text.back() == '=') --len;
    if (text.size() >= 2 && text[text.size() - 2] == '=') --len;
    out.resize(len);
    return out;
}

std::unique_ptr<sasl_server> make_sasl_server(std::string_view mechanism, credential_source source) {
    if (mechanism == "PLAIN") return std::make_unique<plain_server>(std::move(source));
    if (auto m = parse_mechanism(mechanism)) return std::make_unique<scram_server>(*m, std::move(source));
    return nullptr;
}

// JAAS: `Module flag key="value" key2="value2";` — one login module entry.
result<jaas_config> parse_jaas(std::string_view text) {
    jaas_config out;
    size_t i = 0;
    auto skip_space = [&] {
        while (i < text.size() && std::isspace(static_cast<unsigned char>(text[i]))) ++i;
    };
    auto word = [&] {
        size_t start = i;
        while (i < text.size() && !std::isspace(static_cast<unsigned char>(text[i])) && text[i] != '=' &&
               text[i] != ';')
            ++i;
        return std::string(text.substr(start, i - start));
    };
    skip_space();
    out.login_module = word();
    skip_space();
    std::string flag = word();
    if (out.login_module.empty() ||
        (flag != "required" && flag != "requisite" && flag != "sufficient" && flag != "optional")) {
        return error(errc::invalid_config,
                     "JAAS config must start with 'LoginModule required' (got '" +
                         out.login_module + " " + flag + "')");
    }
    for (;;) {
        skip_space();
        if (i >= text.size()) return error(errc::invalid_config, "JAAS config must end with ';'");
        if (text[i] == ';') break;
        std::string key = word();
        skip_space();
        if (key.empty() || i >= text.size() || text[i] != '=') {
            return error(errc::invalid_config, "JAAS option '" + key + "' has no '=value'");
        }
        ++i;
        skip_space();
        std::string value;
        if (i < text.size() && text[i] == '"') {
            size_t close = text.find('"', i + 1);
            if (close == text.npos) return error(errc::invalid_config, "JAAS option '" + key + "': unterminated quote");
            value = std::string(text.substr(i + 1, close - i - 1));
            i = close + 1;
        } else {
            value = word();
        }
        if (key.rfind("user_", 0) == 0 && key.size() > 5) out.users[key.substr(5)] = value;
        out.options[key] = std::move(value);
    }
    return out;
}

scram_client::scram_client(scram_mechanism m, std::string user, std::string password, std::string nonce)
    : _m(m), _user(std::move(user)), _password(std::move(password)),
      _nonce(nonce.empty() ? random_nonce() : std::move(nonce)) {}

std::string scram_client::first_message() {
    std::string name;
    for (char c : _user) {
        if (c == ',') name += "=2C";
        else if (c == '=') name += "=3D";
        else name += c;
    }
    _client_first_bare = "n=" + name + ",r=" + _nonce;
    return "n,," + _client_first_bare;
}

result<std::string> scram_client::final_message(std::string_view server_first) {
    auto attrs = split_attrs(server_first);
    if (!attrs) return attrs.error();
    std::string_view nonce, salt_b64;
    int64_t iterations = 0;
    for (const attr& a : *attrs) {
        if (a.name == 'r') nonce = a.value;
        if (a.name == 's') salt_b64 = a.value;
        if (a.name == 'i') iterations = std::atoll(std::string(a.value).c_str());
    }
    if (nonce.substr(0, _nonce.size()) != _nonce || iterations <= 0 || iterations > 1'000'000) {
        return error(errc::malformed, "bad SCRAM server-first message");
    }
    auto salt = base64_decode(salt_b64);
    if (!salt) return salt.error();
    _salted = scram_salted_password(_m, _password, *salt, static_cast<int32_t>(iterations));
    std::string without_proof = "c=biws,r=" + std::string(nonce);
    _auth_message = _client_first_bare + "," + std::string(server_first) + "," + without_proof;
    auto client_key = hmac(_m, _salted, "Client Key");
    auto signature = hmac(_m, hash(_m, client_key), _auth_message);
    for (size_t i = 0; i < client_key.size(); ++i) client_key[i] ^= signature[i];
    return without_proof + ",p=" + base64_encode(client_key);
}

result<void> scram_client::verify_server_final(std::string_view server_final) {
    std::string want = "v=" + base64_encode(hmac(_m, hmac(_m, _salted, "Server Key"), _auth_message));
    if (server_final != want) return error(errc::auth_failed, "the server's SCRAM signature is wrong");
    return ok();
}

}  // namespace sluice::security
