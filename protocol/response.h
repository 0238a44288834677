#pragma once
// Encoding a response frame: 4-byte size, response header (version chosen by
// response_header_version), body. The writer may hold several frames back to back; records given
// as file regions stay file pieces, so the caller sends `w.pieces()` with writev + sendfile/splice.
//
//   writer w;
//   encode_response_frame(w, api_key, api_version, correlation_id, fetch_response_value);
//   for (auto& piece : w.pieces()) ... // memory spans and file regions, in order
//
// An ApiVersions request at a version we do not define is answered with an ApiVersions response
// at version 0 (header v0) carrying UNSUPPORTED_VERSION: pass body_version = 0.

#include <cstdint>

#include "protocol/header.h"
#include "protocol/writer.h"

namespace sluice::protocol {

struct frame_mark {
    size_t size_at = 0;     // memory position of the size prefix
    uint64_t start = 0;     // writer size before the frame
};

// Reserves the size prefix and writes the response header for (api_key, api_version).
frame_mark begin_response_frame(writer& w, int16_t api_key, int16_t api_version,
                                int32_t correlation_id);
// Fills in the size prefix: everything written since begin_response_frame.
void end_response_frame(writer& w, const frame_mark& mark);

template <class Response>
void encode_response_frame(writer& w, int16_t api_key, int16_t body_version,
                           int32_t correlation_id, const Response& response) {
    const frame_mark mark = begin_response_frame(w, api_key, body_version, correlation_id);
    response.encode(w, body_version);
    end_response_frame(w, mark);
}

}  // namespace sluice::protocol
