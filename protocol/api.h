#pragma once
// The registry of every API this build defines: key, name, version range and the first flexible
// version. ApiVersions is answered from the intersection of this table with the broker's
// registered handlers. Light on purpose: it does not include the generated message structs.

#include <cstdint>
#include <span>
#include <string_view>

namespace sluice::protocol {

struct api_info {
    int16_t key = 0;
    std::string_view name;
    int16_t min_version = 0;
    int16_t max_version = 0;
    int16_t flexible_from = 0;  // 32767 (`not_flexible`) when no version is flexible

    bool supports(int16_t version) const {
        return version >= min_version && version <= max_version;
    }
    bool is_flexible(int16_t version) const { return version >= flexible_from; }
};

// All defined APIs, ordered by key.
std::span<const api_info> all_apis();
// The API with this key, or nullptr.
const api_info* find_api(int16_t key);

}  // namespace sluice::protocol
