#include <cstdio>
#include <cstdlib>

#include "base/assert.h"
#include "base/errc.h"
#include "base/result.h"

namespace sluice {

namespace detail {
void assert_failed(const char* expr, const char* file, int line, const char* msg) {
    std::fprintf(stderr, "SLUICE_ASSERT failed: %s at %s:%d: %s\n", expr, file, line,
                 msg ? msg : "");
    std::fflush(stderr);
    std::abort();
}
}  // namespace detail

std::string error::describe() const {
    std::string s = std::string(_code.category().name()) + ": " + _code.message();
    if (!_detail.empty()) s += " (" + _detail + ")";
    return s;
}

namespace base {
const char* describe(errc e) {
    switch (e) {
        case errc::ok: return "ok";
        case errc::malformed: return "malformed input";
        case errc::limit_exceeded: return "limit exceeded";
    }
    return "unknown base error";
}
}  // namespace base

}  // namespace sluice

SLUICE_DEFINE_ERRC(sluice::base, errc, "base", describe)
