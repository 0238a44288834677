// libFuzzer target: everything security/ parses from an unauthenticated client or from disk —
// SASL PLAIN, both SCRAM server steps (the first input line is the client-first message, the
// rest the client-final one, so the fuzzer can reach the proof check), JAAS strings, base64 and
// the persisted security state.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "security/acl.h"
#include "security/sasl.h"
#include "security/store.h"

using namespace sluice::security;

namespace {

credential_source users() {
    static const scram_credential c256 = make_scram_credential(scram_mechanism::sha256, "pw", 4096,
                                                              std::vector<uint8_t>(16, 7));
    static const scram_credential c512 = make_scram_credential(scram_mechanism::sha512, "pw", 4096,
                                                              std::vector<uint8_t>(16, 9));
    credential_source s;
    s.plain_password = [](const std::string& u) -> std::optional<std::string> {
        if (u == "alice") return std::string("alice-secret");
        return std::nullopt;
    };
    s.scram = [](const std::string& u, scram_mechanism m) -> std::optional<scram_credential> {
        if (u != "bob") return std::nullopt;
        return m == scram_mechanism::sha256 ? c256 : c512;
    };
    return s;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    std::string_view in(reinterpret_cast<const char*>(data), size);
    if (auto p = make_sasl_server("PLAIN", users())) (void)p->step(in);
    size_t nl = in.find('\n');
    std::string_view first = in.substr(0, nl);
    std::string_view final_msg = nl == in.npos ? std::string_view() : in.substr(nl + 1);
    for (const char* mech : {"SCRAM-SHA-256", "SCRAM-SHA-512"}) {
        auto s = make_sasl_server(mech, users());
        if (s->step(first) && !final_msg.empty()) (void)s->step(final_msg);
    }
    (void)parse_jaas(in);
    (void)base64_decode(in);
    if (auto state = decode_state(in)) {
        // Whatever decodes must encode and decode to the same state.
        auto again = decode_state(encode_state(*state));
        if (!again || again->acls != state->acls || again->scram != state->scram ||
            again->quotas.size() != state->quotas.size() ||
            again->broker_configs != state->broker_configs) {
            __builtin_trap();
        }
        for (const auto& b : state->acls) (void)invalid_binding(b);
        authorizer_config cfg{true, {}, false};
        (void)authorize(cfg, state->acls, "User:bob", "127.0.0.1", acl_operation::read,
                        resource_type::topic, "orders");
    }
    (void)parse_operation(in);
    (void)parse_resource_type(in);
    return 0;
}
