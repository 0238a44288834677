// libFuzzer target: the broker's server.properties parser and every key's validation
// (broker/config.cc), and the derived views the broker computes from a loaded config.

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "broker/config.h"

using namespace sluice::broker;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    std::string_view text(reinterpret_cast<const char*>(data), size);
    auto c = broker_config::load_text(text, "fuzz", {});
    if (!c) return 0;
    (void)c->listeners();
    (void)c->advertised_listeners();
    (void)c->log_dirs();
    (void)c->topic_defaults();
    for (const auto& [k, v] : c->all()) {
        (void)c->broker_key_synonyms(k);
        if (is_topic_config_key(k)) (void)validate_topic_config(k, v);
    }
    for (const auto& k : topic_config_keys()) (void)c->topic_key_synonyms(k);
    return 0;
}
