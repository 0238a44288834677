#include "coord/txn_format.h"

#include <map>

#include "base/errc.h"
#include "coord/be_codec.h"

namespace sluice::coord::format {

namespace {
using be_codec::in;
using be_codec::out;
using be_codec::malformed;
}  // namespace

std::vector<std::byte> encode_txn_key(const std::string& transactional_id) {
    out o;
    o.i16(txn_key_version);
    o.str(transactional_id);
    return o.take();
}

std::vector<std::byte> encode_txn_value(const txn_value& v) {
    out o;
    o.i16(txn_value_version);
    o.i64(v.producer_id);
    o.i16(v.producer_epoch);
    o.i32(v.timeout_ms);
    o.i8(static_cast<int8_t>(v.state));
    std::map<std::string, std::vector<int32_t>> by_topic;
    for (const auto& p : v.partitions) by_topic[p.topic].push_back(p.partition);
    o.i32(static_cast<int32_t>(by_topic.size()));
    for (const auto& [topic, parts] : by_topic) {
        o.str(topic);
        o.i32(static_cast<int32_t>(parts.size()));
        for (int32_t p : parts) o.i32(p);
    }
    o.i64(v.last_update_ms);
    o.i64(v.start_ms);
    return o.take();
}

result<std::string> decode_txn_key(std::span<const std::byte> b) {
    in i(b);
    int16_t version = i.i16();
    if (!i.ok()) return malformed("transaction key too short");
    if (version != txn_key_version) return malformed("unknown transaction key version");
    std::string id = i.str();
    if (!i.ok()) return malformed("transaction key too short");
    return id;
}

result<txn_value> decode_txn_value(std::span<const std::byte> b) {
    in i(b);
    int16_t version = i.i16();
    if (!i.ok()) return malformed("transaction value too short");
    // Version 1 (flexible) is Kafka 3.x's; this build writes and reads version 0.
    if (version != txn_value_version) return malformed("unknown transaction value version");
    txn_value v;
    v.producer_id = i.i64();
    v.producer_epoch = i.i16();
    v.timeout_ms = i.i32();
    int8_t state = i.i8();
    if (!i.ok() || state < 0 || state > static_cast<int8_t>(txn_state::prepare_epoch_fence)) {
        return malformed("bad transaction state");
    }
    v.state = static_cast<txn_state>(state);
    int32_t topics = i.i32();
    // A null array (-1) means no partitions.
    for (int32_t t = 0; i.ok() && t < topics; ++t) {
        std::string topic = i.str();
        int32_t n = i.i32();
        if (!i.ok() || n < 0 || n > 1 << 20) return malformed("bad transaction partitions");
        for (int32_t k = 0; i.ok() && k < n; ++k) v.partitions.push_back({topic, i.i32()});
    }
    v.last_update_ms = i.i64();
    v.start_ms = i.i64();
    if (!i.ok()) return malformed("transaction value too short");
    return v;
}

}  // namespace sluice::coord::format
