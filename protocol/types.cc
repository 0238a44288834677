#include "protocol/types.h"

#include <algorithm>

#include "protocol/errc.h"

namespace sluice::protocol {

uint64_t records::size_bytes() const {
    if (_kind == kind::memory) return _memory.size();
    uint64_t n = 0;
    for (const auto& r : _files) n += r.length;
    return n;
}

bool records::operator==(const records& o) const {
    if (_kind != o._kind) return false;
    switch (_kind) {
        case kind::null: return true;
        case kind::memory:
            return std::equal(_memory.begin(), _memory.end(), o._memory.begin(), o._memory.end());
        case kind::files:
            return std::equal(_files.begin(), _files.end(), o._files.begin(), o._files.end(),
                              [](const file_region& a, const file_region& b) {
                                  return a.file == b.file && a.offset == b.offset &&
                                         a.length == b.length;
                              });
    }
    return false;
}

const char* describe(errc e) {
    switch (e) {
        case errc::ok: return "ok";
        case errc::unsupported_api: return "unsupported api key";
        case errc::unsupported_version: return "unsupported api version";
    }
    return "unknown protocol error";
}

}  // namespace sluice::protocol

SLUICE_DEFINE_ERRC(sluice::protocol, errc, "protocol", describe)
