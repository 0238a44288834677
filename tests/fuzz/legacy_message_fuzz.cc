// libFuzzer target: the magic 0/1 message-set conversions (model/legacy_message.h) that Produce
// v0-v2 and Fetch v0-v3 run. Input: bytes that should hold a legacy message set. It is
// up-converted as given (most fail the CRC), then again with every message's CRC made right, so
// the fuzzer reaches the key/value framing, the wrapper codecs and the inner message sets; any
// batch that comes out is down-converted back to both magics. The input is also down-converted
// as if it were stored v2 batches.

#include <zlib.h>

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "base/bytes.h"
#include "model/legacy_message.h"

using namespace sluice;
namespace lf = model::legacy::message_format;

namespace {

constexpr size_t max_decompressed = 1 << 20;  // keep each run small

void up_and_back(std::span<const std::byte> set) {
    auto up = model::legacy::up_convert(set, 1000, max_decompressed);
    if (!up) return;
    for (int8_t magic : {0, 1}) {
        std::vector<std::byte> out;
        (void)model::legacy::down_convert(up->batch, magic, 0, 1 << 20, out);
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    auto input = std::as_bytes(std::span(data, size));
    up_and_back(input);
    std::vector<std::byte> copy(input.begin(), input.end());
    size_t at = 0;
    while (copy.size() - at >= lf::log_overhead + lf::min_size_v0) {
        auto len = static_cast<int32_t>(bytes::load_be32(copy.data() + at + lf::size_pos));
        if (len < static_cast<int32_t>(lf::min_size_v0) ||
            static_cast<size_t>(len) > copy.size() - at - lf::log_overhead) {
            break;
        }
        size_t covered = static_cast<size_t>(len) - 4;
        auto crc = ::crc32(0, reinterpret_cast<const Bytef*>(copy.data() + at + lf::magic_pos),
                           static_cast<uInt>(covered));
        bytes::store_be32(copy.data() + at + lf::crc_pos, static_cast<uint32_t>(crc));
        at += lf::log_overhead + static_cast<size_t>(len);
    }
    up_and_back(copy);
    std::vector<std::byte> out;
    (void)model::legacy::down_convert(input, 1, 0, 1 << 20, out);
    return 0;
}
