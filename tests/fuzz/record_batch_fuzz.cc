// libFuzzer target: the record-batch parser (model/record_batch.h, model/records.h), as the
// broker runs it on every produced batch and on segments at recovery. Input: bytes that should
// hold one or more v2 batches. Each batch is validated as given (most fail the CRC), then again
// with its CRC made right, so the fuzzer reaches the record framing, the codecs (gzip, snappy,
// lz4, zstd, bounded output) and control records behind the checksum.

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <vector>

#include "base/bytes.h"
#include "model/record_batch.h"
#include "model/records.h"

using namespace sluice;

namespace {

constexpr size_t crc_offset = 17;             // after base offset, length, epoch, magic
constexpr size_t max_decompressed = 1 << 20;  // keep each run small

void walk(std::span<const std::byte> bytes) {
    model::validation_limits limits;
    limits.max_batch_bytes = 1 << 20;
    auto h = model::validate(bytes, limits);
    if (!h) return;
    std::vector<std::byte> scratch;
    auto batch = bytes.first(h->size_bytes());
    (void)model::validate_records(batch, *h, scratch, max_decompressed);
    size_t records = 0;
    (void)model::for_each_record(
        batch, *h, scratch,
        [&](const model::record_view& r) {
            ++records;
            if (h->control()) (void)model::parse_control_record(r);
        },
        max_decompressed);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    auto input = std::as_bytes(std::span(data, size));
    walk(input);
    // The same bytes with a correct CRC, batch by batch.
    std::vector<std::byte> copy(input.begin(), input.end());
    size_t at = 0;
    while (copy.size() - at >= 61) {
        auto h = model::parse_header(std::span<const std::byte>(copy).subspan(at));
        if (!h || h->size_bytes() > copy.size() - at) break;
        auto batch = std::span<std::byte>(copy).subspan(at, h->size_bytes());
        bytes::store_be32(batch.data() + crc_offset, model::compute_crc(batch));
        walk(batch);
        at += h->size_bytes();
    }
    model::batch_iterator it(input);
    model::batch_header hdr;
    std::span<const std::byte> b;
    while (it.next(hdr, b)) {
    }
    return 0;
}
