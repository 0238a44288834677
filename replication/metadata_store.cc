#include "replication/metadata_store.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <random>
#include <sstream>

#include "base/fd.h"

namespace sluice::replication {

topic_id random_topic_id() {
    static thread_local std::mt19937_64 rng{std::random_device{}()};
    topic_id id;
    for (size_t i = 0; i < id.size(); i += 8) {
        uint64_t v = rng();
        for (size_t j = 0; j < 8; ++j) id[i + j] = static_cast<uint8_t>(v >> (8 * j));
    }
    return id;
}

namespace {

constexpr const char* file_name = "sluice-metadata";
constexpr const char* format_line = "sluice-metadata v1";

// Percent-encodes everything outside [A-Za-z0-9._-] so values may hold any byte.
std::string escape(const std::string& s) {
    std::string out;
    for (unsigned char c : s) {
        if (std::isalnum(c) || c == '.' || c == '_' || c == '-') {
            out += static_cast<char>(c);
        } else {
            char buf[4];
            std::snprintf(buf, sizeof buf, "%%%02X", c);
            out += buf;
        }
    }
    return out;
}

bool unescape(const std::string& s, std::string& out) {
    out.clear();
    for (size_t i = 0; i < s.size(); ++i) {
        if (s[i] != '%') {
            out += s[i];
            continue;
        }
        if (i + 2 >= s.size()) return false;
        int v = 0;
        if (std::sscanf(s.c_str() + i + 1, "%2x", &v) != 1) return false;
        out += static_cast<char>(v);
        i += 2;
    }
    return true;
}

bool parse_id(const std::string& hex, topic_id& id) {
    if (hex.size() != 32) return false;
    for (size_t i = 0; i < 16; ++i) {
        unsigned v = 0;
        if (std::sscanf(hex.c_str() + 2 * i, "%2x", &v) != 1) return false;
        id[i] = static_cast<uint8_t>(v);
    }
    return true;
}

std::string hex_id(const topic_id& id) {
    std::string s;
    char buf[3];
    for (uint8_t b : id) {
        std::snprintf(buf, sizeof buf, "%02x", b);
        s += buf;
    }
    return s;
}

result<void> fsync_path(const std::string& path, int flags) {
    unique_fd fd(::open(path.c_str(), flags | O_CLOEXEC));
    if (!fd.valid()) return errno_error(errno, "open " + path);
    if (::fsync(fd.get()) != 0) return errno_error(errno, "fsync " + path);
    return ok();
}

}  // namespace

result<void> validate_topic_name(const std::string& name) {
    if (name.empty() || name.size() > 249 || name == "." || name == "..") {
        return error(errc::invalid_topic_name, "'" + name + "'");
    }
    for (unsigned char c : name) {
        if (!(std::isalnum(c) || c == '.' || c == '_' || c == '-')) {
            return error(errc::invalid_topic_name,
                         "'" + name + "': only letters, digits, '.', '_' and '-' are allowed");
        }
    }
    return ok();
}

std::string topic_id_to_string(const topic_id& id) { return hex_id(id); }

result<std::unique_ptr<local_metadata_store>> local_metadata_store::open(const std::string& dir) {
    std::unique_ptr<local_metadata_store> s(new local_metadata_store(dir));
    if (auto r = s->load(); !r) return r.error();
    return s;
}

result<void> local_metadata_store::load() {
    auto topics = std::make_shared<topic_map>();
    std::string path = _dir + "/" + file_name;
    std::ifstream in(path);
    if (!in) {
        // A new store: pick a cluster id and write the empty file so it stays stable.
        _cluster_id = hex_id(random_topic_id()).substr(0, 22);
        return publish(topics);
    }
    std::string line;
    if (!std::getline(in, line) || line != format_line) {
        return error(errc::store_corrupt, path + ": missing header");
    }
    int lineno = 1;
    while (std::getline(in, line)) {
        ++lineno;
        std::istringstream ls(line);
        std::string kind;
        ls >> kind;
        auto bad = [&] { return error(errc::store_corrupt, path + ":" + std::to_string(lineno)); };
        if (kind == "cluster") {
            ls >> _cluster_id;
        } else if (kind == "topic") {
            topic_metadata t;
            std::string name, id;
            if (!(ls >> name >> id >> t.partitions) || !unescape(name, t.name) ||
                !parse_id(id, t.id) || t.partitions <= 0) {
                return bad();
            }
            std::string kv;
            while (ls >> kv) {
                auto eq = kv.find('=');
                std::string k, v;
                if (eq == std::string::npos || !unescape(kv.substr(0, eq), k) ||
                    !unescape(kv.substr(eq + 1), v)) {
                    return bad();
                }
                t.configs[k] = v;
            }
            (*topics)[t.name] = std::move(t);
        } else if (!kind.empty()) {
            return bad();
        }
    }
    if (_cluster_id.empty()) return error(errc::store_corrupt, path + ": no cluster id");
    _current.store(std::move(topics));
    return ok();
}

result<void> local_metadata_store::publish(std::shared_ptr<topic_map> next) {
    std::string path = _dir + "/" + file_name;
    std::string tmp = path + ".tmp";
    {
        std::ofstream out(tmp, std::ios::trunc);
        if (!out) return error(errc::store_io, "cannot write " + tmp);
        out << format_line << "\n" << "cluster " << _cluster_id << "\n";
        for (const auto& [name, t] : *next) {
            out << "topic " << escape(name) << " " << hex_id(t.id) << " " << t.partitions;
            for (const auto& [k, v] : t.configs) out << " " << escape(k) << "=" << escape(v);
            out << "\n";
        }
        out.flush();
        if (!out) return error(errc::store_io, "cannot write " + tmp);
    }
    if (auto r = fsync_path(tmp, O_RDONLY); !r) return r;
    if (::rename(tmp.c_str(), path.c_str()) != 0) return errno_error(errno, "rename " + tmp);
    if (auto r = fsync_path(_dir, O_RDONLY | O_DIRECTORY); !r) return r;
    _current.store(std::move(next));
    return ok();
}

std::shared_ptr<const topic_map> local_metadata_store::snapshot() const { return _current.load(); }

result<topic_metadata> local_metadata_store::create_topic(const topic_spec& spec) {
    const std::string& name = spec.name;
    int32_t partitions = spec.assignment.empty() ? spec.partitions
                                                 : static_cast<int32_t>(spec.assignment.size());
    if (auto r = validate_topic_name(name); !r) return r.error();
    if (spec.replication_factor > 1) {
        return error(errc::invalid_replication_factor,
                     "replication factor " + std::to_string(spec.replication_factor) +
                         " is larger than the 1 broker of a single-broker (no zookeeper.connect) "
                         "deployment");
    }
    if (partitions <= 0 || partitions > 100000) {
        return error(errc::invalid_partitions, std::to_string(partitions));
    }
    std::lock_guard lock(_write_mu);
    auto cur = _current.load();
    if (cur->contains(name)) return error(errc::topic_exists, name);
    auto next = std::make_shared<topic_map>(*cur);
    topic_metadata t{name, random_topic_id(), partitions, spec.configs, {}, {}};
    (*next)[name] = t;
    if (auto r = publish(std::move(next)); !r) return r.error();
    return t;
}

result<void> local_metadata_store::delete_topic(const std::string& name) {
    std::lock_guard lock(_write_mu);
    auto cur = _current.load();
    if (!cur->contains(name)) return error(errc::unknown_topic, name);
    auto next = std::make_shared<topic_map>(*cur);
    next->erase(name);
    return publish(std::move(next));
}

result<void> local_metadata_store::set_partition_count(const std::string& name, int32_t partitions) {
    std::lock_guard lock(_write_mu);
    auto cur = _current.load();
    auto it = cur->find(name);
    if (it == cur->end()) return error(errc::unknown_topic, name);
    if (partitions <= it->second.partitions || partitions > 100000) {
        return error(errc::invalid_partitions,
                     "topic " + name + " has " + std::to_string(it->second.partitions) +
                         " partitions; the new count must be larger");
    }
    auto next = std::make_shared<topic_map>(*cur);
    (*next)[name].partitions = partitions;
    return publish(std::move(next));
}

result<void> local_metadata_store::set_topic_configs(const std::string& name,
                                                     std::map<std::string, std::string> configs) {
    std::lock_guard lock(_write_mu);
    auto cur = _current.load();
    if (!cur->contains(name)) return error(errc::unknown_topic, name);
    auto next = std::make_shared<topic_map>(*cur);
    (*next)[name].configs = std::move(configs);
    return publish(std::move(next));
}

}  // namespace sluice::replication
