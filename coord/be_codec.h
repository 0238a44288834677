#pragma once
// Big-endian, non-flexible field codecs for the records of the coordinators' internal topics
// (__consumer_offsets, __transaction_state), whose keys and values Kafka writes in its classic
// fixed-width encoding. Private to coord/.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "base/errc.h"
#include "base/result.h"

namespace sluice::coord::be_codec {

using bytes = std::vector<std::byte>;

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
    void i8(int8_t v) { be(static_cast<uint8_t>(v), 1); }
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
    int8_t i8() { return static_cast<int8_t>(be(1)); }
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

// The error of bytes that do not decode (they come from disk: counted, never asserted on).
inline error malformed(const char* what) { return error(base::errc::malformed, what); }

}  // namespace sluice::coord::be_codec
