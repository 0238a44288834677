#include "security/store.h"

#include <fcntl.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <sstream>
#include <vector>

namespace sluice::security {

namespace {

constexpr const char* header = "sluice-security 1";
constexpr const char* default_name = "<default>";
constexpr size_t max_state_bytes = 64u << 20;

// Fields are space-separated; anything outside a safe set is %XX-escaped.
std::string enc(std::string_view s) {
    std::string out;
    for (unsigned char c : s) {
        if (std::isalnum(c) || std::strchr("._-:*=,@/+", c) != nullptr) {
            out += static_cast<char>(c);
        } else {
            char buf[4];
            std::snprintf(buf, sizeof buf, "%%%02X", c);
            out += buf;
        }
    }
    return out.empty() ? "%" : out;  // "%" alone: the empty string
}

result<std::string> dec(std::string_view s) {
    if (s == "%") return std::string();
    std::string out;
    for (size_t i = 0; i < s.size(); ++i) {
        if (s[i] != '%') {
            out += s[i];
            continue;
        }
        if (i + 2 >= s.size() || !std::isxdigit(static_cast<unsigned char>(s[i + 1])) ||
            !std::isxdigit(static_cast<unsigned char>(s[i + 2]))) {
            return error(errc::store_failed, "bad escape in '" + std::string(s) + "'");
        }
        out += static_cast<char>(std::stoi(std::string(s.substr(i + 1, 2)), nullptr, 16));
        i += 2;
    }
    return out;
}

std::string enc_opt(bool has, const std::optional<std::string>& name) {
    if (!has) return "-";
    return name ? enc(*name) : default_name;
}

result<void> dec_opt(std::string_view s, bool& has, std::optional<std::string>& name) {
    has = s != "-";
    if (!has) return ok();
    if (s == default_name) {
        name.reset();
        return ok();
    }
    auto d = dec(s);
    if (!d) return d.error();
    name = std::move(*d);
    return ok();
}

std::vector<std::string_view> fields(std::string_view line) {
    std::vector<std::string_view> out;
    size_t i = 0;
    while (i < line.size()) {
        size_t j = line.find(' ', i);
        if (j == line.npos) j = line.size();
        if (j > i) out.push_back(line.substr(i, j - i));
        i = j + 1;
    }
    return out;
}

result<void> decode_line(std::string_view line, security_state& s) {
    auto f = fields(line);
    if (f.empty()) return ok();
    auto bad = [&] { return error(errc::store_failed, "unreadable line '" + std::string(line.substr(0, 80)) + "'"); };
    if (f[0] == "scram" && f.size() == 7) {
        auto user = dec(f[1]);
        auto m = parse_mechanism(f[2]);
        auto salt = base64_decode(f[4]);
        auto stored = base64_decode(f[5]);
        auto server = base64_decode(f[6]);
        if (!user || !m || !salt || !stored || !server) return bad();
        scram_credential c;
        c.iterations = std::atoi(std::string(f[3]).c_str());
        c.salt = std::move(*salt);
        c.stored_key = std::move(*stored);
        c.server_key = std::move(*server);
        if (c.iterations <= 0) return bad();
        s.scram[*user][*m] = std::move(c);
        return ok();
    }
    if (f[0] == "acl" && f.size() == 8) {
        acl_binding b;
        auto t = parse_resource_type(f[1]);
        auto p = parse_pattern_type(f[2]);
        auto name = dec(f[3]);
        auto principal = dec(f[4]);
        auto host = dec(f[5]);
        auto op = parse_operation(f[6]);
        auto perm = parse_permission(f[7]);
        if (!t || !p || !name || !principal || !host || !op || !perm) return bad();
        b = {*t, *name, *p, *principal, *host, *op, *perm};
        if (invalid_binding(b)) return bad();
        s.acls.insert(std::move(b));
        return ok();
    }
    if (f[0] == "config" && f.size() == 4) {
        auto entity = dec(f[1]);
        auto key = dec(f[2]);
        auto value = dec(f[3]);
        if (!entity || !key || !value || key->empty()) return bad();
        s.broker_configs[*entity][*key] = *value;
        return ok();
    }
    if (f[0] == "quota" && f.size() == 5) {
        quota_entity e;
        if (!dec_opt(f[1], e.has_user, e.user) || !dec_opt(f[2], e.has_client_id, e.client_id)) return bad();
        char* end = nullptr;
        std::string v(f[4]);
        double value = std::strtod(v.c_str(), &end);
        if (end == v.c_str() || (!e.has_user && !e.has_client_id)) return bad();
        s.quotas[e][std::string(f[3])] = value;
        return ok();
    }
    return bad();
}

class file_store_backend final : public store_backend {
  public:
    explicit file_store_backend(std::string path) : _path(std::move(path)) {}
    result<std::string> load() override {
        FILE* f = std::fopen(_path.c_str(), "rb");
        if (f == nullptr) {
            if (errno == ENOENT) return std::string();
            return errno_error(errno, "open " + _path);
        }
        std::string text;
        char buf[65536];
        size_t n;
        while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) {
            text.append(buf, n);
            if (text.size() > max_state_bytes) {
                std::fclose(f);
                return error(errc::store_failed, _path + " is larger than " + std::to_string(max_state_bytes) + " bytes");
            }
        }
        std::fclose(f);
        return text;
    }
    result<void> save(const std::string& text) override {
        std::string tmp = _path + ".tmp";
        int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (fd < 0) return errno_error(errno, "create " + tmp);
        size_t done = 0;
        while (done < text.size()) {
            ssize_t n = ::write(fd, text.data() + done, text.size() - done);
            if (n < 0) {
                int e = errno;
                ::close(fd);
                return errno_error(e, "write " + tmp);
            }
            done += static_cast<size_t>(n);
        }
        if (::fsync(fd) != 0) {
            int e = errno;
            ::close(fd);
            return errno_error(e, "fsync " + tmp);
        }
        ::close(fd);
        if (::rename(tmp.c_str(), _path.c_str()) != 0) return errno_error(errno, "rename " + tmp);
        std::string dir = _path.substr(0, _path.find_last_of('/') == std::string::npos ? 0 : _path.find_last_of('/'));
        int dfd = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd >= 0) {
            ::fsync(dfd);
            ::close(dfd);
        }
        return ok();
    }

  private:
    std::string _path;
};

}  // namespace

std::string to_string(const quota_entity& e) {
    std::string out;
    if (e.has_user) out += "user=" + e.user.value_or(default_name);
    if (e.has_client_id) out += std::string(out.empty() ? "" : ",") + "client-id=" + e.client_id.value_or(default_name);
    return out;
}

bool is_quota_key(const std::string& key) { return key == producer_byte_rate || key == consumer_byte_rate; }

std::optional<double> security_state::quota_for(const std::string& user, const std::string& client_id,
                                                const std::string& key) const {
    if (quotas.empty()) return std::nullopt;
    using opt = std::optional<std::string>;
    const quota_entity order[] = {
        {true, opt(user), true, opt(client_id)}, {true, opt(user), true, std::nullopt},
        {true, opt(user), false, std::nullopt},  {true, std::nullopt, true, opt(client_id)},
        {true, std::nullopt, true, std::nullopt}, {true, std::nullopt, false, std::nullopt},
        {false, std::nullopt, true, opt(client_id)}, {false, std::nullopt, true, std::nullopt},
    };
    for (const quota_entity& e : order) {
        auto it = quotas.find(e);
        if (it == quotas.end()) continue;
        auto k = it->second.find(key);
        if (k != it->second.end()) return k->second;
    }
    return std::nullopt;
}

std::string encode_state(const security_state& s) {
    std::ostringstream out;
    out << header << "\n";
    for (const auto& [user, mechs] : s.scram) {
        for (const auto& [m, c] : mechs) {
            out << "scram " << enc(user) << " " << mechanism_name(m) << " " << c.iterations << " "
                << base64_encode(c.salt) << " " << base64_encode(c.stored_key) << " "
                << base64_encode(c.server_key) << "\n";
        }
    }
    for (const acl_binding& b : s.acls) {
        out << "acl " << to_string(b.type) << " " << to_string(b.pattern) << " " << enc(b.name) << " "
            << enc(b.principal) << " " << enc(b.host) << " " << to_string(b.operation) << " "
            << to_string(b.permission) << "\n";
    }
    for (const auto& [e, keys] : s.quotas) {
        for (const auto& [k, v] : keys) {
            char num[64];
            std::snprintf(num, sizeof num, "%.17g", v);
            out << "quota " << enc_opt(e.has_user, e.user) << " " << enc_opt(e.has_client_id, e.client_id)
                << " " << enc(k) << " " << num << "\n";
        }
    }
    for (const auto& [entity, keys] : s.broker_configs) {
        for (const auto& [k, v] : keys) out << "config " << enc(entity) << " " << enc(k) << " " << enc(v) << "\n";
    }
    return out.str();
}

result<security_state> decode_state(std::string_view text) {
    security_state s;
    if (text.empty()) return s;
    size_t nl = text.find('\n');
    if (text.substr(0, nl) != header) {
        return error(errc::store_failed, "not a Sluice security file (first line is not '" + std::string(header) + "')");
    }
    size_t pos = nl == text.npos ? text.size() : nl + 1;
    while (pos < text.size()) {
        size_t end = text.find('\n', pos);
        if (end == text.npos) end = text.size();
        if (auto r = decode_line(text.substr(pos, end - pos), s); !r) return r.error();
        pos = end + 1;
    }
    return s;
}

std::unique_ptr<store_backend> file_backend(std::string path) {
    return std::make_unique<file_store_backend>(std::move(path));
}

result<std::unique_ptr<security_store>> security_store::open(std::unique_ptr<store_backend> backend) {
    std::unique_ptr<security_store> s(new security_store(std::move(backend)));
    if (!s->_backend->ready()) {
        s->publish(std::make_shared<const security_state>());  // read once it is (reload())
        return s;
    }
    if (auto r = s->reload(); !r) return r.error();
    return s;
}

result<void> security_store::reload() {
    std::lock_guard lock(_write_mu);
    if (!_backend->ready()) return error(errc::store_failed, "the security state's store is not reachable now");
    auto text = _backend->load();
    if (!text) return text.error();
    auto state = decode_state(*text);
    if (!state) return state.error();
    publish(std::make_shared<const security_state>(std::move(*state)));
    return ok();
}

void security_store::publish(std::shared_ptr<const security_state> next) {
    _has_quotas.store(!next->quotas.empty(), std::memory_order_relaxed);
    _current.store(std::move(next));
}

result<void> security_store::update(const std::function<result<void>(security_state&)>& change) {
    std::lock_guard lock(_write_mu);
    auto next = std::make_shared<security_state>(*_current.load());
    if (auto r = change(*next); !r) return r.error();
    if (auto r = _backend->save(encode_state(*next)); !r) return r.error();
    publish(std::move(next));
    return ok();
}

}  // namespace sluice::security
