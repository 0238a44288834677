#include <climits>

#include "base/assert.h"
#include "protocol/request.h"
#include "protocol/response.h"

namespace sluice::protocol {

result<request_frame> parse_request_frame(std::span<const std::byte> frame,
                                          const reader_limits& limits) {
    reader r(frame, limits);
    auto header = decode_request_header(r);
    if (!header) return header.error();
    return request_frame{std::move(*header), r.rest()};
}

result<any_request> decode_request(int16_t api_key, int16_t version,
                                   std::span<const std::byte> body, const reader_limits& limits) {
    reader r(body, limits);
    return decode_request(api_key, version, r);
}

frame_mark begin_response_frame(writer& w, int16_t api_key, int16_t api_version,
                                int32_t correlation_id) {
    frame_mark mark;
    mark.start = w.size_bytes();
    mark.size_at = w.reserve(4);
    encode_response_header(w, response_header_version(api_key, api_version),
                           response_header{correlation_id, {}});
    return mark;
}

void end_response_frame(writer& w, const frame_mark& mark) {
    const uint64_t size = w.size_bytes() - mark.start - 4;
    SLUICE_ASSERT(size <= INT32_MAX, "response frame over 2 GiB");
    w.patch_int32(mark.size_at, static_cast<int32_t>(size));
}

}  // namespace sluice::protocol
