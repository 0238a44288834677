#pragma once
// `writer` encodes Kafka primitive types into a growable buffer. Output is a sequence of pieces:
// in-memory byte ranges interleaved with file regions (record bytes of a Fetch response that stay
// in segment files and go out with sendfile/splice). `size_bytes()` counts both, so a frame's size
// prefix is known before anything is sent.
//
// Owned by whoever builds a response on one core; `pieces()` spans point into the writer and are
// valid until it is modified or destroyed. Values that cannot be represented (a string longer than
// its length prefix allows, a record set over 2 GiB) are bugs of the caller and assert.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "base/fd.h"
#include "protocol/types.h"

namespace sluice::protocol {

using output_piece = std::variant<std::span<const std::byte>, file_region>;

class writer {
public:
    writer() = default;
    explicit writer(size_t reserve_bytes) { _buf.reserve(reserve_bytes); }

    void write_int8(int8_t v);
    void write_int16(int16_t v);
    void write_int32(int32_t v);
    void write_int64(int64_t v);
    void write_uint16(uint16_t v);
    void write_uint32(uint32_t v);
    void write_float64(double v);
    void write_bool(bool v) { write_int8(v ? 1 : 0); }
    void write_uuid(const uuid& v) { write_raw(v.bytes); }
    void write_uvarint(uint64_t v);
    void write_varint(int32_t v);
    void write_varlong(int64_t v);

    void write_string(std::string_view s, bool flexible);
    // Null is written as null only where `nullable`; elsewhere as the empty string.
    void write_nullable_string(const std::optional<std::string>& s, bool flexible, bool nullable);
    void write_bytes(std::span<const std::byte> b, bool flexible);
    void write_nullable_bytes(const std::optional<std::vector<std::byte>>& b, bool flexible,
                              bool nullable);
    // Memory records are copied; file records become file pieces (zero-copy).
    void write_records(const records& r, bool flexible, bool nullable);
    // `n` = -1 writes null where `nullable`, an empty array elsewhere.
    void write_array_length(int64_t n, bool flexible, bool nullable);
    // The tagged-field section: `known` (ascending tags) merged with `unknown` in tag order.
    void write_tags(std::span<const tagged_field> known, const tagged_fields& unknown);

    void write_raw(std::span<const std::byte> b);
    void append_file(const file_region& region);

    // Reserves `n` bytes to fill in later; returns their position in the memory buffer.
    size_t reserve(size_t n);
    void patch_int32(size_t memory_pos, int32_t v);

    // Total output bytes: memory plus file regions.
    uint64_t size_bytes() const { return _buf.size() + _file_bytes; }
    bool has_files() const { return !_files.empty(); }
    // The output in order. Memory spans point into the writer.
    std::vector<output_piece> pieces() const;
    // The whole output when it has no file regions (asserts otherwise).
    std::span<const std::byte> memory() const;
    std::vector<std::byte> take_bytes();

private:
    struct file_slot {
        size_t at;  // memory position the region comes before
        file_region region;
    };
    std::vector<std::byte> _buf;
    std::vector<file_slot> _files;
    uint64_t _file_bytes = 0;
};

}  // namespace sluice::protocol
