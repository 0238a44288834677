#pragma once
// Decoding a request frame: the bytes after the 4-byte size prefix are a request header followed
// by the body. `parse_request_frame` splits them; `decode_request` turns a body into the message
// struct for its API and version. Both are total over arbitrary bytes (the fuzz entry point).
//
//   auto frame = parse_request_frame(bytes, limits);       // header + body view
//   if (!frame) -> close the connection (the header itself is unreadable)
//   auto req = decode_request(frame->header.api_key, frame->header.api_version, frame->body);
//   if (!req) -> Kafka error for the API (or close), per req.error()
//   std::visit(handler, *req);
//
// Views inside the decoded request (records) point into `bytes`, which must stay alive.

#include <span>
#include <variant>

#include "base/result.h"
#include "protocol/generated/messages.h"
#include "protocol/header.h"
#include "protocol/reader.h"

namespace sluice::protocol {

#define SLUICE_PROTOCOL_REQUEST_TYPE(api, request, response) , request
using any_request = std::variant<std::monostate SLUICE_PROTOCOL_APIS(SLUICE_PROTOCOL_REQUEST_TYPE)>;
#undef SLUICE_PROTOCOL_REQUEST_TYPE

struct request_frame {
    request_header header;
    std::span<const std::byte> body;
};

[[nodiscard]] result<request_frame> parse_request_frame(std::span<const std::byte> frame,
                                                        const reader_limits& limits = {});

// Decodes a request body; errors: protocol::errc::unsupported_api / unsupported_version,
// base::errc::malformed / limit_exceeded.
[[nodiscard]] result<any_request> decode_request(int16_t api_key, int16_t version, reader& r);
[[nodiscard]] result<any_request> decode_request(int16_t api_key, int16_t version,
                                                 std::span<const std::byte> body,
                                                 const reader_limits& limits = {});

}  // namespace sluice::protocol
