#include "coord/offsets_format.h"

#include <cstring>

#include "base/errc.h"

namespace sluice::coord::format {

namespace {

class out {
public:
    void i16(int16_t v) { be(static_cast<uint16_t>(v), 2); }
    void i32(int32_t v) { be(static_cast<uint32_t>(v), 4); }
    void i64(int64_t v) { be(static_cast<uint64_t>(v), 8); }
    void str(const std::string& s) {
        i16(static_cast<int16_t>(s.size()));
        raw(s.data(), s.size());
    }
    void nstr(const std::optional<std::string>& s) {
        if (!s) {
            i16(-1);
        } else {
            str(*s);
        }
    }
    void blob(const bytes& b) {
        i32(static_cast<int32_t>(b.size()));
        raw(b.data(), b.size());
    }
    bytes take() { return std::move(_b); }

private:
    void be(uint64_t v, int n) {
        for (int i = n - 1; i >= 0; --i) _b.push_back(static_cast<std::byte>((v >> (8 * i)) & 0xff));
    }
    void raw(const void* p, size_t n) {
        auto* c = static_cast<const std::byte*>(p);
        _b.insert(_b.end(), c, c + n);
    }
    bytes _b;
};

// Reads fields in order; the first short read makes every later read fail too.
class in {
public:
    explicit in(std::span<const std::byte> b) : _b(b) {}
    bool ok() const { return _ok; }
    bool at_end() const { return _pos == _b.size(); }
    int16_t i16() { return static_cast<int16_t>(be(2)); }
    int32_t i32() { return static_cast<int32_t>(be(4)); }
    int64_t i64() { return static_cast<int64_t>(be(8)); }
    std::optional<std::string> nstr() {
        int16_t n = i16();
        if (!_ok || n < 0) return std::nullopt;
        if (!need(static_cast<size_t>(n))) return std::string();
        std::string s(reinterpret_cast<const char*>(_b.data() + _pos), static_cast<size_t>(n));
        _pos += static_cast<size_t>(n);
        return s;
    }
    std::string str() {
        auto s = nstr();
        if (!s) _ok = false;
        return s.value_or(std::string());
    }
    bytes blob() {
        int32_t n = i32();
        if (!_ok || n < 0 || !need(static_cast<size_t>(n))) return {};
        bytes out(_b.begin() + static_cast<ptrdiff_t>(_pos),
                  _b.begin() + static_cast<ptrdiff_t>(_pos + static_cast<size_t>(n)));
        _pos += static_cast<size_t>(n);
        return out;
    }

private:
    bool need(size_t n) {
        if (!_ok || _b.size() - _pos < n) _ok = false;
        return _ok;
    }
    uint64_t be(int n) {
        if (!need(static_cast<size_t>(n))) return 0;
        uint64_t v = 0;
        for (int i = 0; i < n; ++i) v = (v << 8) | static_cast<uint8_t>(_b[_pos++]);
        return v;
    }
    std::span<const std::byte> _b;
    size_t _pos = 0;
    bool _ok = true;
};

error malformed(const char* what) { return error(base::errc::malformed, what); }

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
