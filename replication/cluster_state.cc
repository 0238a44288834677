#include "replication/cluster_state.h"

#include <algorithm>
#include <charconv>

#include "replication/json.h"

namespace sluice::replication {

const broker_registration* cluster_view::broker(int32_t id) const {
    auto it = std::lower_bound(brokers.begin(), brokers.end(), id,
                               [](const broker_registration& b, int32_t v) { return b.id < v; });
    return it != brokers.end() && it->id == id ? &*it : nullptr;
}

namespace {

constexpr char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

std::string int_list(const std::vector<int32_t>& v) {
    std::string out = "[";
    for (size_t i = 0; i < v.size(); ++i) out += (i ? "," : "") + std::to_string(v[i]);
    return out + "]";
}

// An array of integers within int32, or nullopt.
std::optional<std::vector<int32_t>> read_int_list(const json::value* v) {
    if (v == nullptr || v->as_array() == nullptr) return std::nullopt;
    std::vector<int32_t> out;
    for (const auto& e : *v->as_array()) {
        const int64_t* i = e.as_int();
        if (i == nullptr || *i < INT32_MIN || *i > INT32_MAX) return std::nullopt;
        out.push_back(static_cast<int32_t>(*i));
    }
    return out;
}

std::optional<int32_t> read_int(const json::value* v) {
    if (v == nullptr || v->as_int() == nullptr) return std::nullopt;
    int64_t i = *v->as_int();
    if (i < INT32_MIN || i > INT32_MAX) return std::nullopt;
    return static_cast<int32_t>(i);
}

}  // namespace

std::string topic_id_base64(const topic_id& id) {
    std::string out;
    uint32_t acc = 0;
    int bits = 0;
    for (uint8_t byte : id) {
        acc = (acc << 8) | byte;
        bits += 8;
        while (bits >= 6) {
            bits -= 6;
            out += b64[(acc >> bits) & 63];
        }
    }
    if (bits > 0) out += b64[(acc << (6 - bits)) & 63];
    return out;  // 22 characters, no padding
}

bool topic_id_from_base64(std::string_view s, topic_id& out) {
    if (s.size() != 22) return false;
    uint32_t acc = 0;
    int bits = 0;
    size_t n = 0;
    for (char c : s) {
        const char* at = std::find(b64, b64 + 64, c);
        if (at == b64 + 64) return false;
        acc = (acc << 6) | static_cast<uint32_t>(at - b64);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (n == out.size()) return false;
            out[n++] = static_cast<uint8_t>((acc >> bits) & 0xff);
        }
    }
    return n == out.size();
}

namespace {
std::string lists_object(const partition_lists& lists) {
    std::string out;
    for (const auto& [p, ids] : lists) {
        if (ids.empty()) continue;
        out += (out.empty() ? "" : ",") + json::quote(std::to_string(p)) + ":" + int_list(ids);
    }
    return "{" + out + "}";
}

result<partition_lists> read_lists(const json::value* v) {
    partition_lists out;
    if (v == nullptr || v->is_null()) return out;
    if (v->as_object() == nullptr) return error(errc::store_corrupt, "topic znode: bad replica lists");
    for (const auto& [key, ids] : *v->as_object()) {
        int32_t index = -1;
        auto [p, ec] = std::from_chars(key.data(), key.data() + key.size(), index);
        auto list = read_int_list(&ids);
        if (ec != std::errc() || p != key.data() + key.size() || index < 0 || !list) {
            return error(errc::store_corrupt, "topic znode: bad replica list '" + key + "'");
        }
        if (!list->empty()) out[index] = std::move(*list);
    }
    return out;
}
}  // namespace

std::string encode_topic_znode(const topic_id& id,
                               const std::vector<std::vector<int32_t>>& replicas,
                               const partition_lists& adding, const partition_lists& removing) {
    std::string parts;
    for (size_t p = 0; p < replicas.size(); ++p) {
        parts += (p ? "," : "") + json::quote(std::to_string(p)) + ":" + int_list(replicas[p]);
    }
    return "{\"version\":2,\"partitions\":{" + parts + "},\"topic_id\":" +
           json::quote(topic_id_base64(id)) + ",\"adding_replicas\":" + lists_object(adding) +
           ",\"removing_replicas\":" + lists_object(removing) + "}";
}

result<topic_znode> decode_topic_znode(std::string_view text) {
    auto doc = json::parse(text);
    if (!doc) return doc.error();
    topic_znode out;
    const json::value* id = doc->get("topic_id");
    if (id == nullptr || id->as_string() == nullptr ||
        !topic_id_from_base64(*id->as_string(), out.id)) {
        return error(errc::store_corrupt, "topic znode: no valid topic_id");
    }
    const json::value* parts = doc->get("partitions");
    if (parts == nullptr || parts->as_object() == nullptr) {
        return error(errc::store_corrupt, "topic znode: no partitions");
    }
    std::map<int32_t, std::vector<int32_t>> by_index;
    for (const auto& [key, v] : *parts->as_object()) {
        int32_t index = -1;
        auto [p, ec] = std::from_chars(key.data(), key.data() + key.size(), index);
        auto list = read_int_list(&v);
        if (ec != std::errc() || p != key.data() + key.size() || index < 0 || !list ||
            list->empty()) {
            return error(errc::store_corrupt, "topic znode: bad partition '" + key + "'");
        }
        by_index[index] = std::move(*list);
    }
    int32_t expect = 0;
    for (auto& [index, list] : by_index) {
        if (index != expect++) return error(errc::store_corrupt, "topic znode: partitions not dense");
        out.replicas.push_back(std::move(list));
    }
    if (out.replicas.empty()) return error(errc::store_corrupt, "topic znode: no partitions");
    auto adding = read_lists(doc->get("adding_replicas"));
    if (!adding) return adding.error();
    auto removing = read_lists(doc->get("removing_replicas"));
    if (!removing) return removing.error();
    out.adding = std::move(*adding);
    out.removing = std::move(*removing);
    return out;
}

std::string encode_partition_state(const partition_state& s) {
    return "{\"controller_epoch\":" + std::to_string(s.controller_epoch) +
           ",\"leader\":" + std::to_string(s.leader) + ",\"version\":1,\"leader_epoch\":" +
           std::to_string(s.leader_epoch) + ",\"isr\":" + int_list(s.isr) + "}";
}

result<partition_state> decode_partition_state(std::string_view text, int32_t znode_version) {
    auto doc = json::parse(text);
    if (!doc) return doc.error();
    partition_state s;
    auto leader = read_int(doc->get("leader"));
    auto epoch = read_int(doc->get("leader_epoch"));
    auto cepoch = read_int(doc->get("controller_epoch"));
    auto isr = read_int_list(doc->get("isr"));
    if (!leader || !epoch || !isr || *epoch < 0) {
        return error(errc::store_corrupt, "partition state: missing leader, leader_epoch or isr");
    }
    s.leader = *leader;
    s.leader_epoch = *epoch;
    s.controller_epoch = cepoch.value_or(0);
    s.isr = std::move(*isr);
    s.version = znode_version;
    return s;
}

std::string encode_offline_replicas(const replica_set& partitions) {
    std::string body;
    for (const auto& [topic, p] : partitions) {
        body += (body.empty() ? "" : ",") + std::string("{\"topic\":") + json::quote(topic) +
                ",\"partition\":" + std::to_string(p) + "}";
    }
    return "{\"version\":1,\"partitions\":[" + body + "]}";
}

result<replica_set> decode_offline_replicas(std::string_view text) {
    auto doc = json::parse(text);
    if (!doc) return doc.error();
    const json::value* list = doc->get("partitions");
    if (list == nullptr || list->as_array() == nullptr) {
        return error(errc::store_corrupt, "offline replicas: no partitions list");
    }
    replica_set out;
    for (const auto& e : *list->as_array()) {
        const json::value* t = e.get("topic");
        auto p = read_int(e.get("partition"));
        if (t == nullptr || t->as_string() == nullptr || !p) {
            return error(errc::store_corrupt, "offline replicas: an entry without topic and partition");
        }
        out.insert({*t->as_string(), *p});
    }
    return out;
}

std::string encode_topic_config(const std::map<std::string, std::string>& configs) {
    std::string body;
    for (const auto& [k, v] : configs) body += (body.empty() ? "" : ",") + json::quote(k) + ":" + json::quote(v);
    return "{\"version\":1,\"config\":{" + body + "}}";
}

result<std::map<std::string, std::string>> decode_topic_config(std::string_view text) {
    auto doc = json::parse(text);
    if (!doc) return doc.error();
    const json::value* cfg = doc->get("config");
    if (cfg == nullptr || cfg->as_object() == nullptr) {
        return error(errc::store_corrupt, "topic config znode: no config object");
    }
    std::map<std::string, std::string> out;
    for (const auto& [k, v] : *cfg->as_object()) {
        if (v.as_string() == nullptr) return error(errc::store_corrupt, "topic config: " + k);
        out[k] = *v.as_string();
    }
    return out;
}

result<std::vector<std::vector<int32_t>>> assign_replicas(std::vector<assignable_broker> brokers,
                                                          int32_t first, int32_t partitions,
                                                          int32_t rf, uint32_t start_seed) {
    if (rf <= 0 || static_cast<size_t>(rf) > brokers.size()) {
        return error(errc::invalid_replication_factor,
                     "replication factor " + std::to_string(rf) + " is larger than the " +
                         std::to_string(brokers.size()) + " live broker(s)");
    }
    std::sort(brokers.begin(), brokers.end(),
              [](const auto& a, const auto& b) { return a.id < b.id; });
    // Racks alternate: the first broker of each rack, then the second of each, ...
    std::map<std::string, std::vector<int32_t>> by_rack;
    bool racks = false;
    for (const auto& b : brokers) {
        racks |= b.rack.has_value();
        by_rack[b.rack.value_or("")].push_back(b.id);
    }
    std::vector<int32_t> order;
    if (!racks) {
        for (const auto& b : brokers) order.push_back(b.id);
    } else {
        for (size_t round = 0; order.size() < brokers.size(); ++round) {
            for (const auto& [rack, ids] : by_rack) {
                if (round < ids.size()) order.push_back(ids[round]);
            }
        }
    }
    const size_t n = order.size();
    std::vector<std::vector<int32_t>> out;
    for (int32_t p = first; p < first + partitions; ++p) {
        size_t start = (start_seed + static_cast<size_t>(p)) % n;
        std::vector<int32_t> replicas;
        for (int32_t j = 0; j < rf; ++j) replicas.push_back(order[(start + static_cast<size_t>(j)) % n]);
        out.push_back(std::move(replicas));
    }
    return out;
}

std::optional<partition_state> decide_partition(const std::vector<int32_t>& replicas,
                                                const std::optional<partition_state>& current,
                                                const std::set<int32_t>& live,
                                                const std::set<int32_t>& shutting_down,
                                                int32_t controller_epoch, election_rules rules) {
    auto eligible = [&](int32_t id) { return live.count(id) && !shutting_down.count(id); };
    if (!current) {
        // A new partition: every eligible replica starts in sync (all logs are empty).
        partition_state s;
        s.controller_epoch = controller_epoch;
        for (int32_t r : replicas) {
            if (eligible(r)) s.isr.push_back(r);
        }
        if (s.isr.empty()) return std::nullopt;  // wait until a replica is alive
        s.leader = s.isr.front();
        return s;
    }
    const partition_state& cur = *current;
    auto in_isr = [&](int32_t id) {
        return std::find(cur.isr.begin(), cur.isr.end(), id) != cur.isr.end();
    };
    bool leader_ok = cur.leader >= 0 && eligible(cur.leader);
    bool move_preferred = false;
    if (leader_ok && rules.preferred && !replicas.empty() && replicas.front() != cur.leader &&
        eligible(replicas.front()) && in_isr(replicas.front())) {
        move_preferred = true;
    }
    if (leader_ok && !move_preferred) {
        // The leader stands; drop dead and shutting-down followers from the ISR so that
        // acks=all does not wait for them.
        std::vector<int32_t> isr;
        for (int32_t r : cur.isr) {
            if (r == cur.leader || eligible(r)) isr.push_back(r);
        }
        if (isr == cur.isr) return std::nullopt;
        partition_state s = cur;
        s.isr = std::move(isr);
        return s;
    }
    // Elect: the first replica, in preference order, that is in the ISR and eligible.
    int32_t leader = -1;
    for (int32_t r : replicas) {
        if (in_isr(r) && eligible(r)) {
            leader = r;
            break;
        }
    }
    std::vector<int32_t> isr;
    if (leader >= 0) {
        for (int32_t r : cur.isr) {
            if (eligible(r)) isr.push_back(r);
        }
    } else if (cur.leader >= 0 && live.count(cur.leader) && shutting_down.count(cur.leader)) {
        // Controlled shutdown with no other in-sync replica: the leader keeps leading.
        return std::nullopt;
    } else if (rules.unclean) {
        for (int32_t r : replicas) {
            if (eligible(r)) {
                leader = r;
                break;
            }
        }
        if (leader >= 0) isr = {leader};
    }
    partition_state s = cur;
    s.controller_epoch = controller_epoch;
    if (leader < 0) {
        // Offline: nobody eligible holds everything acknowledged. The ISR stays as it was so
        // that its members (and only they) can be elected when they come back.
        if (cur.leader == -1) return std::nullopt;
        s.leader = -1;
        s.leader_epoch = cur.leader_epoch + 1;
        return s;
    }
    s.leader = leader;
    s.leader_epoch = cur.leader_epoch + 1;
    s.isr = std::move(isr);
    return s;
}

}  // namespace sluice::replication
