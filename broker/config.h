#pragma once
// Broker configuration with Kafka's key names and meanings (`server.properties`). Keys come from
// a file (`--config FILE`) and from `--key=value` arguments, later ones winning. Every key is
// declared once in config.cc with its type, default, bounds and (for log.* keys) the topic-level
// key it supplies the default for. An unknown key or a bad value is a start-up error that names
// the key.

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"

namespace sluice::broker {

enum class errc {
    ok = 0,
    unknown_config,   // a key Sluice does not know
    invalid_config,   // a value of the wrong type or out of range
    config_file,      // the file cannot be read
};
const char* describe(errc e);

}  // namespace sluice::broker
SLUICE_DECLARE_ERRC(sluice::broker, errc)

namespace sluice::broker {

struct listener_config {
    std::string name = "PLAINTEXT";
    std::string host;  // empty: all interfaces
    uint16_t port = 9092;
};

class broker_config {
public:
    // Parses `key=value` lines (Java properties subset: '#'/'!' comments, blank lines, '=' or
    // ':' separators, trailing whitespace trimmed) and then applies overrides in order.
    static result<broker_config> load(const std::optional<std::string>& path,
                                      const std::vector<std::pair<std::string, std::string>>& overrides);
    // The same from the file's text (`origin` names it in errors).
    static result<broker_config> load_text(std::string_view text, const std::string& origin,
                                           const std::vector<std::pair<std::string, std::string>>& overrides);
    // Validates and applies one key; used by load() and by dynamic config changes.
    result<void> set(const std::string& key, const std::string& value);

    // The value in effect (explicit or default) as a string, for DescribeConfigs.
    std::optional<std::string> get(const std::string& key) const;
    bool is_default(const std::string& key) const { return !_explicit.contains(key); }
    // Every known key with its value in effect.
    std::vector<std::pair<std::string, std::string>> all() const;

    // Topic-level defaults derived from the broker's log.* keys, keyed by topic config name
    // (segment.bytes, retention.ms, cleanup.policy, ...).
    std::map<std::string, std::string> topic_defaults() const;

    // DescribeConfigs synonyms of a topic key at broker level, in Kafka's order of precedence:
    // the broker keys that supply it which are set explicitly (STATIC_BROKER_CONFIG), then the
    // default (DEFAULT_CONFIG) under the broker key's name, or the topic key's own name when
    // no broker key supplies it. Of a broker key: itself if set, then its default.
    struct synonym {
        std::string name;
        std::optional<std::string> value;
        bool is_static = false;  // false: the default
    };
    std::vector<synonym> topic_key_synonyms(const std::string& topic_key) const;
    std::vector<synonym> broker_key_synonyms(const std::string& key) const;

    // Typed accessors for what the broker needs at start-up.
    int32_t broker_id() const { return static_cast<int32_t>(int_value("broker.id")); }
    std::vector<listener_config> listeners() const;
    std::vector<listener_config> advertised_listeners() const;  // falls back to listeners()
    std::vector<std::string> log_dirs() const;
    int64_t int_value(const std::string& key) const;
    bool bool_value(const std::string& key) const;
    std::string string_value(const std::string& key) const;

private:
    std::map<std::string, std::string> _values;  // every known key, defaults included
    std::map<std::string, std::string> _explicit;
};

// Broker keys that may change at run time (AlterConfigs on a BROKER resource): those that supply
// a topic-level default (log.retention.*, log.segment.bytes, log.cleanup.policy,
// message.max.bytes, ...), as in Kafka's dynamic per-broker and cluster-default configs, and
// Kafka's dynamic thread-pool sizes (log.cleaner.threads, num.io.threads, ...), which Sluice
// stores and reports but has no use for.
bool is_dynamic_broker_key(const std::string& key);

// Topic-level config keys (CreateTopics configs, AlterConfigs on a topic) with their validation.
bool is_topic_config_key(const std::string& key);
result<void> validate_topic_config(const std::string& key, const std::string& value);
// Names of all topic-level keys, for DescribeConfigs of a topic.
const std::vector<std::string>& topic_config_keys();

// Parses Kafka listener lists: "PLAINTEXT://127.0.0.1:9092,INTERNAL://:9093".
result<std::vector<listener_config>> parse_listeners(const std::string& s);

}  // namespace sluice::broker
