#pragma once
// A topic's effective configuration: the broker's defaults (from its log.* keys) overlaid with
// the topic's explicit overrides, and the engine's log_config derived from it.

#include <map>
#include <string>

#include "engine/log_config.h"

namespace sluice::broker {

using config_map = std::map<std::string, std::string>;

// defaults overlaid with overrides.
config_map effective_topic_config(const config_map& defaults, const config_map& overrides);

// The engine settings of a topic. Values are assumed validated (validate_topic_config).
engine::log_config make_log_config(const config_map& effective);

// True when cleanup.policy contains `compact`.
bool is_compacted(const config_map& effective);

}  // namespace sluice::broker
