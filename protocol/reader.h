#pragma once
// `reader` decodes Kafka primitive types from a span of bytes. It is total: it never reads past
// the end, never allocates more than the bytes left justify, and never asserts on input. The first
// failure is sticky — later reads return zero values and do not advance — so generated decoders
// read straight through and check `status()` once at the end. Every length and count is checked
// against the bytes left (`base::errc::malformed`) and against `reader_limits`
// (`base::errc::limit_exceeded`).
//
// Owned by one decode call on one core; it borrows the bytes, which must outlive it and any
// `records` views decoded from it.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "base/errc.h"
#include "base/result.h"
#include "protocol/types.h"

namespace sluice::protocol {

struct reader_limits {
    // Kafka strings have an int16 length; compact strings are held to the same bound.
    uint32_t string_bytes_max = 32767;
    // `bytes` and `records` fields (the frame size limit normally bounds these first).
    uint32_t blob_bytes_max = 100u << 20;
    // Elements of one array.
    uint32_t array_length_max = 1u << 20;
    // Elements reserved up front for one array; beyond this the vector grows as elements decode,
    // so memory follows bytes actually present rather than a claimed count.
    uint32_t reserve_elements_max = 1024;
};

class reader {
public:
    explicit reader(std::span<const std::byte> data, const reader_limits& limits = {})
        : _data(data), _limits(limits) {}

    bool ok() const { return _err == base::errc::ok; }
    size_t position() const { return _pos; }
    size_t remaining() const { return _data.size() - _pos; }
    std::span<const std::byte> rest() const { return _data.subspan(_pos); }
    const reader_limits& limits() const { return _limits; }
    // ok(), or the first failure with the field kind and byte position.
    [[nodiscard]] result<void> status() const;
    // Marks the reader failed (sticky; the first failure wins) and stops further reads.
    void fail(base::errc e, const char* what);

    int8_t read_int8();
    int16_t read_int16();
    int32_t read_int32();
    int64_t read_int64();
    uint16_t read_uint16();
    uint32_t read_uint32();
    double read_float64();
    bool read_bool();
    uuid read_uuid();
    // An unsigned LEB128 varint that must fit 32 bits (at most 5 bytes).
    uint32_t read_uvarint32();
    // Zigzag varints as used inside records.
    int32_t read_varint();
    int64_t read_varlong();

    std::string read_string(bool flexible);
    // `nullable` says whether null is legal at this version; null where it is not is malformed.
    std::optional<std::string> read_nullable_string(bool flexible, bool nullable);
    std::vector<std::byte> read_bytes(bool flexible);
    std::optional<std::vector<std::byte>> read_nullable_bytes(bool flexible, bool nullable);
    // A view into the input; no copy.
    records read_records(bool flexible, bool nullable);

    // An array length: -1 for null (only when `nullable`), else 0..n. The count times
    // `element_bytes_min` must fit in the bytes left. Returns 0 after a failure.
    int32_t read_array_length(bool flexible, bool nullable, size_t element_bytes_min);
    // How many elements to reserve for an array of `n` (bounded by reserve_elements_max).
    size_t reserve_hint(int32_t n) const;

    // Tagged-field section of a flexible struct.
    uint32_t read_tag_count();
    uint32_t read_tag_size();  // checked against the bytes left
    void read_unknown_tags(tagged_fields& out);
    // A known tagged field must end exactly at `end`.
    void expect_position(size_t end);

    std::vector<std::byte> read_blob(size_t n);
    std::span<const std::byte> read_view(size_t n);

private:
    // -1 for null, -2 after failure, else the length (already checked against limit and input).
    int64_t read_length(bool flexible, bool int32_prefix, bool nullable, uint32_t limit,
                        const char* what);
    const std::byte* take(size_t n, const char* what);

    std::span<const std::byte> _data;
    size_t _pos = 0;
    reader_limits _limits;
    base::errc _err = base::errc::ok;
    const char* _err_what = nullptr;
    size_t _err_pos = 0;
};

}  // namespace sluice::protocol
