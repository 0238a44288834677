// decode_request() over random and mutated bytes for every API: it must return (a value or an
// error) without crashing. The same entry point serves libFuzzer (see README.md).

#include <gtest/gtest.h>

#include "protocol/generated/sample.h"
#include "protocol/request.h"
#include "protocol/tests/test_util.h"

namespace sluice::protocol {
namespace {

using testing::copy_of;

constexpr int inputs_per_api = 20000;

// Valid encodings of each version, to mutate.
template <class Api, class Msg>
std::vector<std::pair<int16_t, std::vector<std::byte>>> seeds() {
    std::vector<std::pair<int16_t, std::vector<std::byte>>> out;
    for (int16_t v = Api::min_version; v <= Api::max_version; ++v) {
        for (uint64_t s = 0; s < 3; ++s) {
            sample_rng g(s + 100 * static_cast<uint64_t>(v));
            Msg m;
            fill_sample(m, v, g);
            writer w;
            m.encode(w, v);
            out.emplace_back(v, copy_of(w));
        }
    }
    return out;
}

std::vector<std::byte> mutate(std::vector<std::byte> b, sample_rng& g) {
    const uint64_t edits = 1 + g.next() % 4;
    for (uint64_t e = 0; e < edits; ++e) {
        switch (g.next() % 6) {
            case 0:  // flip a byte
                if (!b.empty()) b[g.next() % b.size()] = static_cast<std::byte>(g.next());
                break;
            case 1:  // truncate
                if (!b.empty()) b.resize(g.next() % b.size());
                break;
            case 2:  // insert a byte
                b.insert(b.begin() + static_cast<ptrdiff_t>(g.next() % (b.size() + 1)),
                         static_cast<std::byte>(g.next()));
                break;
            case 3:  // set a "length" to a boundary value
                if (b.size() >= 4) {
                    size_t at = g.next() % (b.size() - 3);
                    const uint8_t pats[][4] = {{0xff, 0xff, 0xff, 0xff}, {0x7f, 0xff, 0xff, 0xff},
                                               {0x80, 0x00, 0x00, 0x00}, {0xff, 0xfe, 0x00, 0x00}};
                    const auto& p = pats[g.next() % 4];
                    for (int i = 0; i < 4; ++i) b[at + i] = static_cast<std::byte>(p[i]);
                }
                break;
            case 4:  // remove a byte
                if (!b.empty()) b.erase(b.begin() + static_cast<ptrdiff_t>(g.next() % b.size()));
                break;
            default:  // a varint that never ends
                b.insert(b.begin() + static_cast<ptrdiff_t>(g.next() % (b.size() + 1)), 6,
                         std::byte{0xff});
                break;
        }
    }
    return b;
}

template <class Api, class Msg>
void fuzz_api() {
    const auto corpus = seeds<Api, Msg>();
    sample_rng g(Api::key + 1);
    size_t decoded_ok = 0;
    for (int i = 0; i < inputs_per_api; ++i) {
        std::vector<std::byte> input;
        int16_t version;
        if (i % 4 == 0) {  // pure noise at a random version in (and just around) the range
            input.resize(g.next() % 64);
            for (auto& x : input) x = static_cast<std::byte>(g.next());
            version = static_cast<int16_t>(Api::min_version - 1 +
                                           static_cast<int>(g.next() % (Api::max_version -
                                                                        Api::min_version + 3)));
        } else {
            const auto& [v, bytes] = corpus[g.next() % corpus.size()];
            input = mutate(bytes, g);
            version = v;
        }
        auto r = decode_request(Api::key, version, input);
        if (r) {
            ++decoded_ok;
            // Whatever decodes must encode again (the writer asserts its own invariants).
            writer w;
            std::get<Msg>(*r).encode(w, version);
        }
    }
    ::testing::Test::RecordProperty(std::string(Api::name), static_cast<int>(decoded_ok));
}

TEST(fuzz, decode_request_survives_random_and_mutated_input) {
#define SLUICE_FUZZ_API(api, request, response) fuzz_api<api, request>();
    SLUICE_PROTOCOL_APIS(SLUICE_FUZZ_API)
#undef SLUICE_FUZZ_API
}

TEST(fuzz, parse_request_frame_survives_noise) {
    sample_rng g(5);
    for (int i = 0; i < 20000; ++i) {
        std::vector<std::byte> input(g.next() % 48);
        for (auto& x : input) x = static_cast<std::byte>(g.next());
        auto f = parse_request_frame(input);
        if (f) {
            auto r = decode_request(f->header.api_key, f->header.api_version, f->body);
            (void)r;
        }
    }
}

}  // namespace
}  // namespace sluice::protocol
