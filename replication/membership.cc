#include "replication/membership.h"

#include <algorithm>
#include <charconv>

#include "replication/json.h"

namespace sluice::replication {

namespace {

constexpr const char* ids_path = "/brokers/ids";
constexpr const char* controller_path = "/controller";
constexpr const char* controller_epoch_path = "/controller_epoch";

std::string ids_child(int32_t id) { return std::string(ids_path) + "/" + std::to_string(id); }

// "PLAINTEXT://host:9092" -> endpoint; hosts may be bracketed IPv6 literals.
std::optional<broker_endpoint> parse_endpoint(const std::string& s) {
    auto sep = s.find("://");
    auto colon = s.rfind(':');
    if (sep == std::string::npos || colon == std::string::npos || colon <= sep + 2) {
        return std::nullopt;
    }
    broker_endpoint e;
    e.listener = s.substr(0, sep);
    e.host = s.substr(sep + 3, colon - sep - 3);
    if (e.host.size() >= 2 && e.host.front() == '[' && e.host.back() == ']') {
        e.host = e.host.substr(1, e.host.size() - 2);
    }
    auto port = s.substr(colon + 1);
    auto [p, ec] = std::from_chars(port.data(), port.data() + port.size(), e.port);
    if (ec != std::errc() || p != port.data() + port.size() || e.port <= 0 || e.port > 65535) {
        return std::nullopt;
    }
    return e;
}

std::string endpoint_string(const broker_endpoint& e) {
    bool v6 = e.host.find(':') != std::string::npos;
    return e.listener + "://" + (v6 ? "[" + e.host + "]" : e.host) + ":" + std::to_string(e.port);
}

}  // namespace

std::string encode_registration(const broker_registration& b) {
    std::string endpoints, protocols;
    for (const auto& e : b.endpoints) {
        endpoints += (endpoints.empty() ? "" : ",") + json::quote(endpoint_string(e));
        protocols += (protocols.empty() ? "" : ",") + json::quote(e.listener) + ":" +
                     json::quote(e.listener);
    }
    const broker_endpoint first = b.endpoints.empty() ? broker_endpoint{} : b.endpoints.front();
    std::string out = "{\"version\":5,\"host\":" + json::quote(first.host) +
                      ",\"port\":" + std::to_string(first.port) + ",\"jmx_port\":-1" +
                      ",\"timestamp\":" + json::quote(std::to_string(b.timestamp_ms)) +
                      ",\"endpoints\":[" + endpoints + "]" +
                      ",\"listener_security_protocol_map\":{" + protocols + "}" +
                      ",\"features\":{}";
    if (b.rack) out += ",\"rack\":" + json::quote(*b.rack);
    return out + "}";
}

result<broker_registration> decode_registration(int32_t id, std::string_view text) {
    auto doc = json::parse(text);
    if (!doc) return doc.error();
    broker_registration b;
    b.id = id;
    const json::value* eps = doc->get("endpoints");
    if (eps == nullptr || eps->as_array() == nullptr) {
        return error(errc::store_corrupt, ids_child(id) + ": no endpoints");
    }
    for (const auto& e : *eps->as_array()) {
        const std::string* s = e.as_string();
        auto parsed = s ? parse_endpoint(*s) : std::nullopt;
        if (!parsed) return error(errc::store_corrupt, ids_child(id) + ": bad endpoint");
        b.endpoints.push_back(*parsed);
    }
    if (const json::value* rack = doc->get("rack"); rack && rack->as_string()) {
        b.rack = *rack->as_string();
    }
    if (const json::value* ts = doc->get("timestamp"); ts && ts->as_string()) {
        std::from_chars(ts->as_string()->data(), ts->as_string()->data() + ts->as_string()->size(),
                        b.timestamp_ms);
    }
    return b;
}

result<void> register_broker(zk_client& zk, const broker_registration& b) {
    auto made = zk.create_recursive(ids_child(b.id), encode_registration(b), zk_mode::ephemeral);
    if (made) return ok();
    if (!made.error().is(errc::node_exists)) return made.error();
    std::string owner = "another session";
    if (auto node = zk.get(ids_child(b.id)); node) {
        if (node->stat.ephemeral_owner == zk.session_id()) return ok();  // ours already
        owner = "session 0x" + [](int64_t v) {
            char buf[24];
            auto r = std::to_chars(buf, buf + sizeof buf, static_cast<uint64_t>(v), 16);
            return std::string(buf, r.ptr);
        }(node->stat.ephemeral_owner);
    }
    return error(errc::broker_id_in_use,
                 "broker.id " + std::to_string(b.id) + " is already registered in ZooKeeper (" +
                     ids_child(b.id) + ", held by " + owner +
                     "): another broker runs with this id");
}

result<live_brokers> read_live_brokers(zk_client& zk) {
    live_brokers out;
    auto ids = zk.get_children(ids_path);
    if (!ids) {
        if (ids.error().is(errc::no_node)) return out;
        return ids.error();
    }
    for (const auto& name : *ids) {
        int32_t id = -1;
        auto [p, ec] = std::from_chars(name.data(), name.data() + name.size(), id);
        if (ec != std::errc() || p != name.data() + name.size()) {
            ++out.unreadable;
            continue;
        }
        auto node = zk.get(ids_child(id));
        if (!node) {
            if (node.error().is(errc::no_node)) continue;  // went away meanwhile
            return node.error();
        }
        auto b = decode_registration(id, node->data);
        if (!b) {
            ++out.unreadable;
            continue;
        }
        out.brokers.push_back(std::move(*b));
    }
    std::sort(out.brokers.begin(), out.brokers.end(),
              [](const auto& a, const auto& b) { return a.id < b.id; });
    return out;
}

namespace {

result<int32_t> read_controller_id(zk_client& zk) {
    auto node = zk.get(controller_path);
    if (!node) return node.error();
    auto doc = json::parse(node->data);
    if (!doc) return doc.error();
    const json::value* id = doc->get("brokerid");
    if (id == nullptr || id->as_int() == nullptr) {
        return error(errc::store_corrupt, "/controller: no brokerid");
    }
    return static_cast<int32_t>(*id->as_int());
}

// Reads /controller_epoch and writes epoch + 1 conditionally (creating it as 1). A concurrent
// writer makes the version check fail; then the read is retried.
result<int32_t> bump_controller_epoch(zk_client& zk) {
    for (int attempt = 0; attempt < 5; ++attempt) {
        auto node = zk.get(controller_epoch_path);
        if (!node && node.error().is(errc::no_node)) {
            auto made = zk.create(controller_epoch_path, "1");
            if (made) return 1;
            if (!made.error().is(errc::node_exists)) return made.error();
            continue;
        }
        if (!node) return node.error();
        int32_t epoch = 0;
        auto [p, ec] = std::from_chars(node->data.data(), node->data.data() + node->data.size(),
                                       epoch);
        if (ec != std::errc()) return error(errc::store_corrupt, "/controller_epoch: not a number");
        auto set = zk.set(controller_epoch_path, std::to_string(epoch + 1), node->stat.version);
        if (set) return epoch + 1;
        if (!set.error().is(errc::bad_version)) return set.error();
    }
    return error(errc::bad_version, "/controller_epoch kept changing under the new controller");
}

}  // namespace

result<controller_claim> claim_controller(zk_client& zk, int32_t broker_id) {
    controller_claim c;
    std::string body = "{\"version\":1,\"brokerid\":" + std::to_string(broker_id) +
                       ",\"timestamp\":\"0\"}";
    auto made = zk.create(controller_path, body, zk_mode::ephemeral);
    if (made) {
        auto epoch = bump_controller_epoch(zk);
        if (!epoch) return epoch.error();
        c.won = true;
        c.controller_id = broker_id;
        c.epoch = *epoch;
        return c;
    }
    if (!made.error().is(errc::node_exists)) return made.error();
    auto holder = read_controller_id(zk);
    if (!holder && !holder.error().is(errc::no_node)) return holder.error();
    c.controller_id = holder ? *holder : -1;
    if (auto e = zk.get(controller_epoch_path); e) {
        std::from_chars(e->data.data(), e->data.data() + e->data.size(), c.epoch);
    }
    return c;
}

}  // namespace sluice::replication
