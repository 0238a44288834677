#include "coord/offsets_format.h"

#include <cstring>

#include "base/errc.h"
#include "coord/be_codec.h"

namespace sluice::coord::format {

namespace {

using be_codec::in;
using be_codec::out;

using be_codec::malformed;

}  // namespace

bytes encode_offset_key(const std::string& group, const std::string& topic, int32_t partition) {
    out o;
    o.i16(offset_key_version);
    o.str(group);
    o.str(topic);
    o.i32(partition);
    return o.take();
}

bytes encode_group_key(const std::string& group) {
    out o;
    o.i16(group_key_version);
    o.str(group);
    return o.take();
}

bytes encode_offset_value(const committed_offset& v) {
    out o;
    o.i16(offset_value_version);
    o.i64(v.offset);
    o.i32(v.leader_epoch);
    o.str(v.metadata);
    o.i64(v.commit_timestamp_ms);
    return o.take();
}

bytes encode_group_value(const group_value& v) {
    out o;
    o.i16(group_value_version);
    o.str(v.protocol_type);
    o.i32(v.generation);
    o.nstr(v.protocol);
    o.nstr(v.leader);
    o.i64(v.current_state_timestamp_ms);
    o.i32(static_cast<int32_t>(v.members.size()));
    for (const auto& m : v.members) {
        o.str(m.member_id);
        o.nstr(m.group_instance_id);
        o.str(m.client_id);
        o.str(m.client_host);
        o.i32(m.rebalance_timeout_ms);
        o.i32(m.session_timeout_ms);
        o.blob(m.subscription);
        o.blob(m.assignment);
    }
    return o.take();
}

result<record_key> decode_key(std::span<const std::byte> b) {
    in r(b);
    int16_t version = r.i16();
    if (!r.ok()) return malformed("consumer offsets key: no version");
    if (version == 0 || version == 1) {
        offset_key k;
        k.group = r.str();
        k.topic = r.str();
        k.partition = r.i32();
        if (!r.ok()) return malformed("consumer offsets key: truncated offset key");
        return record_key(std::move(k));
    }
    if (version == 2) {
        group_key k;
        k.group = r.str();
        if (!r.ok()) return malformed("consumer offsets key: truncated group key");
        return record_key(std::move(k));
    }
    return record_key(other_key{version});
}

result<committed_offset> decode_offset_value(std::span<const std::byte> b) {
    in r(b);
    int16_t version = r.i16();
    if (!r.ok() || version < 0 || version > 3) return malformed("offset value: bad version");
    committed_offset v;
    v.offset = r.i64();
    if (version >= 3) v.leader_epoch = r.i32();
    v.metadata = r.str();
    v.commit_timestamp_ms = r.i64();
    if (version == 1) (void)r.i64();  // expire timestamp, no longer used
    if (!r.ok()) return malformed("offset value: truncated");
    return v;
}

result<group_value> decode_group_value(std::span<const std::byte> b) {
    in r(b);
    int16_t version = r.i16();
    if (!r.ok() || version < 0 || version > 3) return malformed("group value: bad version");
    group_value v;
    v.protocol_type = r.str();
    v.generation = r.i32();
    v.protocol = r.nstr();
    v.leader = r.nstr();
    if (version >= 2) v.current_state_timestamp_ms = r.i64();
    int32_t n = r.i32();
    if (!r.ok() || n < 0) return malformed("group value: bad member count");
    for (int32_t i = 0; i < n && r.ok(); ++i) {
        stored_member m;
        m.member_id = r.str();
        if (version >= 3) m.group_instance_id = r.nstr();
        m.client_id = r.str();
        m.client_host = r.str();
        m.rebalance_timeout_ms = r.i32();
        if (version == 0) {
            m.session_timeout_ms = m.rebalance_timeout_ms;
        } else {
            m.session_timeout_ms = r.i32();
        }
        m.subscription = r.blob();
        m.assignment = r.blob();
        v.members.push_back(std::move(m));
    }
    if (!r.ok()) return malformed("group value: truncated");
    return v;
}

}  // namespace sluice::coord::format
