#include "protocol/header.h"

#include "base/assert.h"
#include "protocol/api.h"

namespace sluice::protocol {

namespace {
bool flexible_request(int16_t api_key, int16_t api_version) {
    const api_info* api = find_api(api_key);
    // Versions above our maximum are judged by the flexible boundary too: a newer client's
    // ApiVersions request must still be parsed so it can be told which versions exist.
    return api != nullptr && api_version >= api->flexible_from;
}
}  // namespace

int16_t request_header_version(int16_t api_key, int16_t api_version) {
    return flexible_request(api_key, api_version) ? 2 : 1;
}

int16_t response_header_version(int16_t api_key, int16_t api_version) {
    if (api_key == api_versions_key) return 0;
    return flexible_request(api_key, api_version) ? 1 : 0;
}

result<request_header> decode_request_header(reader& r) {
    request_header h;
    h.api_key = r.read_int16();
    h.api_version = r.read_int16();
    h.correlation_id = r.read_int32();
    const int16_t version = request_header_version(h.api_key, h.api_version);
    if (version >= 1) h.client_id = r.read_nullable_string(false, true);
    if (version >= 2) r.read_unknown_tags(h.unknown_tags);
    if (auto st = r.status(); !st) return st.error();
    return h;
}

void encode_request_header(writer& w, const request_header& h) {
    const int16_t version = request_header_version(h.api_key, h.api_version);
    w.write_int16(h.api_key);
    w.write_int16(h.api_version);
    w.write_int32(h.correlation_id);
    if (version >= 1) w.write_nullable_string(h.client_id, false, true);
    if (version >= 2) w.write_tags({}, h.unknown_tags);
}

result<response_header> decode_response_header(reader& r, int16_t header_version) {
    response_header h;
    h.correlation_id = r.read_int32();
    if (header_version >= 1) r.read_unknown_tags(h.unknown_tags);
    if (auto st = r.status(); !st) return st.error();
    return h;
}

void encode_response_header(writer& w, int16_t header_version, const response_header& h) {
    SLUICE_ASSERT(header_version == 0 || header_version == 1, "response header version");
    w.write_int32(h.correlation_id);
    if (header_version >= 1) w.write_tags({}, h.unknown_tags);
}

}  // namespace sluice::protocol
