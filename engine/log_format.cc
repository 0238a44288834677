#include "engine/log_format.h"

#include <cstdio>

namespace sluice::engine::log_format {

std::string segment_file_name(int64_t base_offset, std::string_view suffix) {
    char digits[32];
    std::snprintf(digits, sizeof digits, "%020lld", static_cast<long long>(base_offset));
    std::string name(digits);
    name.append(suffix);
    return name;
}

bool parse_segment_file_name(std::string_view name, std::string_view suffix, int64_t& base_out) {
    if (name.size() != static_cast<size_t>(file_name_digits) + suffix.size()) return false;
    if (name.substr(file_name_digits) != suffix) return false;
    int64_t v = 0;
    for (int i = 0; i < file_name_digits; ++i) {
        char c = name[static_cast<size_t>(i)];
        if (c < '0' || c > '9') return false;
        if (v > (INT64_MAX - (c - '0')) / 10) return false;
        v = v * 10 + (c - '0');
    }
    base_out = v;
    return true;
}

}  // namespace sluice::engine::log_format
