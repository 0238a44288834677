// libFuzzer target for the request decoders (built by tests/fuzz with -DSLUICE_FUZZ=ON and
// clang; ci/fuzz.sh runs it). Input: a request frame without its
// size prefix, i.e. header then body, exactly what the broker hands to parse_request_frame().

#include <cstddef>
#include <cstdint>
#include <span>

#include "protocol/request.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    using namespace sluice::protocol;
    auto frame = parse_request_frame(std::as_bytes(std::span(data, size)));
    if (!frame) return 0;
    auto req = decode_request(frame->header.api_key, frame->header.api_version, frame->body);
    if (req && !std::holds_alternative<std::monostate>(*req)) {
        // Whatever decodes must encode again.
        std::visit(
            [&](const auto& m) {
                if constexpr (!std::is_same_v<std::decay_t<decltype(m)>, std::monostate>) {
                    writer w;
                    m.encode(w, frame->header.api_version);
                }
            },
            *req);
    }
    return 0;
}
