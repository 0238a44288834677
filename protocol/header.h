#pragma once
// Request and response headers (Kafka's RequestHeader v0-v2 and ResponseHeader v0-v1), which
// precede every message body, and the rule that picks their versions:
//  - request header v2 (tagged fields) for flexible request versions, else v1 (client id);
//    v0 (no client id) is only used by ControlledShutdown v0, which Sluice does not define;
//  - response header v1 (tagged fields) for flexible versions, else v0 — except ApiVersions,
//    whose response header is always v0 so that a client can parse the answer even when it asked
//    for a version the broker does not know.
// For an unknown api key the request header is taken as v1.

#include <cstdint>
#include <optional>
#include <string>

#include "base/result.h"
#include "protocol/reader.h"
#include "protocol/types.h"
#include "protocol/writer.h"

namespace sluice::protocol {

inline constexpr int16_t api_versions_key = 18;

struct request_header {
    int16_t api_key = 0;
    int16_t api_version = 0;
    int32_t correlation_id = 0;
    std::optional<std::string> client_id;  // v1+; a plain int16-length string even in v2
    tagged_fields unknown_tags;            // v2
    bool operator==(const request_header&) const = default;
};

struct response_header {
    int32_t correlation_id = 0;
    tagged_fields unknown_tags;  // v1
    bool operator==(const response_header&) const = default;
};

int16_t request_header_version(int16_t api_key, int16_t api_version);
int16_t response_header_version(int16_t api_key, int16_t api_version);

// Reads api key and version first, then the rest of the header at the version they imply.
[[nodiscard]] result<request_header> decode_request_header(reader& r);
void encode_request_header(writer& w, const request_header& h);

[[nodiscard]] result<response_header> decode_response_header(reader& r, int16_t header_version);
void encode_response_header(writer& w, int16_t header_version, const response_header& h);

}  // namespace sluice::protocol
