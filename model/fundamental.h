#pragma once
// Value types that must not mix: partition ids, the kinds of offsets, epochs, producer ids.
// Each is a distinct type over an integer, so passing a high watermark where a log end offset
// is expected does not compile.

#include <compare>
#include <cstdint>
#include <functional>
#include <ostream>
#include <string>

namespace sluice::model {

template <class T, class Tag>
class named {
public:
    using value_type = T;
    constexpr named() = default;
    constexpr explicit named(T v) : _v(v) {}
    constexpr T operator()() const { return _v; }
    constexpr T value() const { return _v; }
    constexpr auto operator<=>(const named&) const = default;
    constexpr named operator+(T d) const { return named(_v + d); }
    constexpr named operator-(T d) const { return named(_v - d); }
    constexpr named& operator++() {
        ++_v;
        return *this;
    }
    friend std::ostream& operator<<(std::ostream& os, const named& n) { return os << n._v; }

private:
    T _v{};
};

using partition_id = named<int32_t, struct partition_id_tag>;
using leader_epoch = named<int32_t, struct leader_epoch_tag>;
using producer_id = named<int64_t, struct producer_id_tag>;
using producer_epoch = named<int16_t, struct producer_epoch_tag>;
using node_id = named<int32_t, struct node_id_tag>;

// A record's position in a partition. The kinds of offsets the log reports get their own types
// so they are not confused: the log end (next offset to assign), the high watermark (replicated
// to the ISR), the last stable offset (no open transaction below it), the log start.
using offset = named<int64_t, struct offset_tag>;
using log_end_offset = named<int64_t, struct log_end_offset_tag>;
using high_watermark = named<int64_t, struct high_watermark_tag>;
using last_stable_offset = named<int64_t, struct last_stable_offset_tag>;
using log_start_offset = named<int64_t, struct log_start_offset_tag>;

// Milliseconds since the Unix epoch, as Kafka timestamps are.
using timestamp_ms = named<int64_t, struct timestamp_ms_tag>;

// A topic partition: the unit of ordering, storage and ownership by a core.
struct tp {
    std::string topic;
    partition_id partition;
    auto operator<=>(const tp&) const = default;
    // "<topic>-<partition>", the directory name Kafka uses.
    std::string dir_name() const { return topic + "-" + std::to_string(partition()); }
};

}  // namespace sluice::model

template <>
struct std::hash<sluice::model::tp> {
    size_t operator()(const sluice::model::tp& t) const noexcept {
        return std::hash<std::string>()(t.topic) * 31 + static_cast<size_t>(t.partition());
    }
};
