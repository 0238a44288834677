#pragma once
// A small JSON reader and writer for the znodes Kafka's ZooKeeper layout keeps as JSON
// (docs/formats/zookeeper.md). Reads are total: any malformed input, nesting deeper than
// `max_depth` or input longer than `max_bytes` is an error (errc::store_corrupt), never a crash.
// Numbers are integers only (the layout has no others).
//
// Threading: plain values, no shared state.

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "base/result.h"

namespace sluice::replication::json {

struct value;
using array = std::vector<value>;
using object = std::map<std::string, value>;

struct value {
    std::variant<std::nullptr_t, bool, int64_t, std::string, std::shared_ptr<array>,
                 std::shared_ptr<object>>
        v = nullptr;

    bool is_null() const { return std::holds_alternative<std::nullptr_t>(v); }
    const int64_t* as_int() const { return std::get_if<int64_t>(&v); }
    const std::string* as_string() const { return std::get_if<std::string>(&v); }
    const array* as_array() const;
    const object* as_object() const;
    // The member `key` of an object, or nullptr.
    const value* get(const std::string& key) const;
};

inline constexpr size_t max_bytes = 1u << 20;
inline constexpr int max_depth = 16;

result<value> parse(std::string_view text);

// Writing: a string with JSON escapes, quoted.
std::string quote(std::string_view s);

}  // namespace sluice::replication::json
