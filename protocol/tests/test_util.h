#pragma once
// Small helpers shared by the protocol tests.

#include <cstddef>
#include <initializer_list>
#include <string>
#include <vector>

#include "protocol/writer.h"

namespace sluice::protocol::testing {

inline std::vector<std::byte> bytes_of(std::initializer_list<int> v) {
    std::vector<std::byte> out;
    for (int b : v) out.push_back(static_cast<std::byte>(b));
    return out;
}

inline void append(std::vector<std::byte>& out, std::string_view s) {
    for (char c : s) out.push_back(static_cast<std::byte>(c));
}

inline void append(std::vector<std::byte>& out, std::initializer_list<int> v) {
    for (int b : v) out.push_back(static_cast<std::byte>(b));
}

inline std::vector<std::byte> copy_of(const writer& w) {
    auto m = w.memory();
    return {m.begin(), m.end()};
}

inline std::string hex(std::span<const std::byte> b) {
    static const char* digits = "0123456789abcdef";
    std::string s;
    for (auto x : b) {
        s += digits[static_cast<int>(x) >> 4];
        s += digits[static_cast<int>(x) & 15];
        s += ' ';
    }
    return s;
}

}  // namespace sluice::protocol::testing
