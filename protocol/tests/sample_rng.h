#pragma once
// Deterministic random values for generated fill_sample() functions (test support only).

#include <cstddef>
#include <cstdint>
#include <deque>
#include <string>
#include <vector>

#include "protocol/types.h"

namespace sluice::protocol {

class sample_rng {
public:
    explicit sample_rng(uint64_t seed) : _s(seed * 0x9e3779b97f4a7c15ull + 1) {}

    uint64_t next() {
        // splitmix64
        uint64_t z = (_s += 0x9e3779b97f4a7c15ull);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
        return z ^ (z >> 31);
    }
    std::string string() {
        std::string s(next() % 9, 'a');
        for (auto& c : s) c = static_cast<char>('a' + next() % 26);
        return s;
    }
    std::vector<std::byte> bytes() {
        std::vector<std::byte> b(next() % 9);
        for (auto& x : b) x = static_cast<std::byte>(next());
        return b;
    }
    protocol::uuid make_uuid() {
        protocol::uuid u;
        for (auto& x : u.bytes) x = static_cast<std::byte>(next());
        return u;
    }
    // Bytes that live as long as the generator (records fields only view them).
    std::span<const std::byte> blob() {
        _blobs.push_back(bytes());
        _blobs.back().resize(_blobs.back().size() + 3, std::byte{0x5a});
        return _blobs.back();
    }

private:
    uint64_t _s;
    std::deque<std::vector<std::byte>> _blobs;
};

}  // namespace sluice::protocol
