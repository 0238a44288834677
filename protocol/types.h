#pragma once
// Value types that generated messages are made of, beyond integers, strings and vectors:
// `uuid`, `tagged_field` (a tag this build does not know, kept as raw bytes so it can be sent on
// unchanged) and `records` (a record-batch payload that is a view, never a copy).

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "base/fd.h"

namespace sluice::protocol {

struct uuid {
    std::array<std::byte, 16> bytes{};
    bool is_zero() const { return *this == uuid{}; }
    bool operator==(const uuid&) const = default;
};

struct tagged_field {
    uint32_t tag = 0;
    std::vector<std::byte> data;  // the field's encoded value, without tag and size
    bool operator==(const tagged_field&) const = default;
};
using tagged_fields = std::vector<tagged_field>;

// The `records` field of Produce requests and Fetch responses. It is one of:
//  - null (the default; Kafka's "no records"),
//  - memory: a span of bytes owned elsewhere — on decode, a view into the request frame, valid as
//    long as the frame buffer is; on encode, bytes the caller keeps alive until the writer is done,
//  - files: regions of segment files, for zero-copy sends; the writer does not read them, it only
//    lists them among its output pieces.
// A value type; it never owns record bytes (file regions share ownership of the descriptor only).
class records {
public:
    records() = default;
    static records from_memory(std::span<const std::byte> bytes) {
        records r;
        r._kind = kind::memory;
        r._memory = bytes;
        return r;
    }
    static records from_files(std::vector<file_region> regions) {
        records r;
        r._kind = kind::files;
        r._files = std::move(regions);
        return r;
    }

    bool is_null() const { return _kind == kind::null; }
    bool in_memory() const { return _kind == kind::memory; }
    bool in_files() const { return _kind == kind::files; }
    // The bytes when in memory; empty otherwise.
    std::span<const std::byte> memory() const { return _memory; }
    const std::vector<file_region>& files() const { return _files; }
    uint64_t size_bytes() const;

    // Null equals null; memory compares content; files compare descriptor, offset and length.
    bool operator==(const records& o) const;

private:
    enum class kind : uint8_t { null, memory, files };
    kind _kind = kind::null;
    std::span<const std::byte> _memory;
    std::vector<file_region> _files;
};

}  // namespace sluice::protocol
