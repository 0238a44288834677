#pragma once
// Invariant checks that stay on in release builds. Use them for facts the program itself
// guarantees; never for bytes that came from a socket or a disk (those are errors, see result.h).

namespace sluice::detail {
[[noreturn]] void assert_failed(const char* expr, const char* file, int line, const char* msg);
}  // namespace sluice::detail

#define SLUICE_ASSERT(cond, msg)                                               \
    do {                                                                       \
        if (__builtin_expect(!(cond), 0)) {                                    \
            ::sluice::detail::assert_failed(#cond, __FILE__, __LINE__, (msg)); \
        }                                                                      \
    } while (0)
