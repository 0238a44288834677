#include "protocol/consumer_protocol.h"

#include <algorithm>

#include "protocol/reader.h"
#include "protocol/writer.h"

namespace sluice::protocol {

namespace {

// Smallest wire size of one [topic, [partition]] element: an empty string and an empty array.
constexpr size_t topic_partitions_bytes_min = 2 + 4;

void write_topic_partitions(writer& w, const std::vector<consumer_topic_partitions>& tps) {
    w.write_array_length(static_cast<int64_t>(tps.size()), false, false);
    for (const auto& tp : tps) {
        w.write_string(tp.topic, false);
        w.write_array_length(static_cast<int64_t>(tp.partitions.size()), false, false);
        for (int32_t p : tp.partitions) w.write_int32(p);
    }
}

std::vector<consumer_topic_partitions> read_topic_partitions(reader& r) {
    std::vector<consumer_topic_partitions> out;
    int32_t n = r.read_array_length(false, false, topic_partitions_bytes_min);
    out.reserve(r.reserve_hint(n));
    for (int32_t i = 0; i < n && r.ok(); ++i) {
        auto& tp = out.emplace_back();
        tp.topic = r.read_string(false);
        int32_t m = r.read_array_length(false, false, 4);
        tp.partitions.reserve(r.reserve_hint(m));
        for (int32_t j = 0; j < m && r.ok(); ++j) tp.partitions.push_back(r.read_int32());
    }
    return out;
}

// The version prefix; negative versions are malformed. Returns the version to read the rest at.
int16_t read_version(reader& r, int16_t& stated) {
    stated = r.read_int16();
    if (r.ok() && stated < 0) r.fail(base::errc::malformed, "consumer protocol version");
    return std::min(stated, consumer_protocol_version_max);
}

}  // namespace

std::vector<std::byte> encode_subscription(const consumer_subscription& s) {
    SLUICE_ASSERT(s.version >= 0 && s.version <= consumer_protocol_version_max,
                  "consumer subscription version out of range");
    writer w(64);
    w.write_int16(s.version);
    w.write_array_length(static_cast<int64_t>(s.topics.size()), false, false);
    for (const auto& t : s.topics) w.write_string(t, false);
    w.write_nullable_bytes(s.user_data, false, true);
    if (s.version >= 1) write_topic_partitions(w, s.owned_partitions);
    if (s.version >= 2) w.write_int32(s.generation_id);
    if (s.version >= 3) w.write_nullable_string(s.rack_id, false, true);
    return w.take_bytes();
}

std::vector<std::byte> encode_assignment(const consumer_assignment& a) {
    SLUICE_ASSERT(a.version >= 0 && a.version <= consumer_protocol_version_max,
                  "consumer assignment version out of range");
    writer w(64);
    w.write_int16(a.version);
    write_topic_partitions(w, a.partitions);
    w.write_nullable_bytes(a.user_data, false, true);
    return w.take_bytes();
}

result<consumer_subscription> decode_subscription(std::span<const std::byte> b) {
    reader r(b);
    consumer_subscription s;
    int16_t v = read_version(r, s.version);
    int32_t n = r.read_array_length(false, false, 2);
    s.topics.reserve(r.reserve_hint(n));
    for (int32_t i = 0; i < n && r.ok(); ++i) s.topics.push_back(r.read_string(false));
    s.user_data = r.read_nullable_bytes(false, true);
    if (v >= 1) s.owned_partitions = read_topic_partitions(r);
    if (v >= 2) s.generation_id = r.read_int32();
    if (v >= 3) s.rack_id = r.read_nullable_string(false, true);
    if (auto st = r.status(); !st) return st.error();
    return s;
}

result<consumer_assignment> decode_assignment(std::span<const std::byte> b) {
    reader r(b);
    consumer_assignment a;
    read_version(r, a.version);
    a.partitions = read_topic_partitions(r);
    a.user_data = r.read_nullable_bytes(false, true);
    if (auto st = r.status(); !st) return st.error();
    return a;
}

}  // namespace sluice::protocol
