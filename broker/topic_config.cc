#include "broker/topic_config.h"

#include <string>

namespace sluice::broker {

config_map effective_topic_config(const config_map& defaults, const config_map& overrides) {
    config_map out = defaults;
    for (const auto& [k, v] : overrides) out[k] = v;
    return out;
}

namespace {
int64_t get_int(const config_map& m, const char* key, int64_t fallback) {
    auto it = m.find(key);
    if (it == m.end() || it->second.empty()) return fallback;
    try {
        return std::stoll(it->second);
    } catch (...) {
        return fallback;
    }
}
}  // namespace

engine::log_config make_log_config(const config_map& m) {
    engine::log_config c;
    c.segment_bytes = static_cast<uint64_t>(get_int(m, "segment.bytes", 1LL << 30));
    c.segment_ms = get_int(m, "segment.ms", c.segment_ms);
    c.segment_index_bytes = static_cast<uint64_t>(get_int(m, "segment.index.bytes", 10 << 20));
    c.index_interval_bytes = static_cast<uint32_t>(get_int(m, "index.interval.bytes", 4096));
    c.max_message_bytes = static_cast<uint32_t>(get_int(m, "max.message.bytes", 1048588));
    c.flush_messages = get_int(m, "flush.messages", engine::unlimited);
    c.flush_ms = get_int(m, "flush.ms", engine::unlimited);
    auto ts = m.find("message.timestamp.type");
    c.message_timestamp_type = (ts != m.end() && ts->second == "LogAppendTime")
                                   ? engine::timestamp_type::log_append_time
                                   : engine::timestamp_type::create_time;
    auto pre = m.find("preallocate");
    c.preallocate = pre == m.end() || pre->second == "true";
    auto fs = m.find("sluice.fsync");
    if (fs != m.end() && fs->second == "always") {
        c.fsync = engine::fsync_policy::always;
    } else if (fs != m.end() && fs->second == "batch") {
        c.fsync = engine::fsync_policy::batch;
    } else {
        c.fsync = engine::fsync_policy::never;
    }
    return c;
}

bool is_compacted(const config_map& m) {
    auto it = m.find("cleanup.policy");
    return it != m.end() && it->second.find("compact") != std::string::npos;
}

}  // namespace sluice::broker
