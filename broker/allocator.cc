#include "broker/allocator.h"

#ifdef SLUICE_HAVE_JEMALLOC
#include <jemalloc/jemalloc.h>
#endif

namespace sluice::broker {

allocator_stats read_allocator_stats() {
    allocator_stats s;
#ifdef SLUICE_HAVE_JEMALLOC
    const char* version = nullptr;
    size_t len = sizeof version;
    mallctl("version", &version, &len, nullptr, 0);
    s.name = std::string("jemalloc ") + (version != nullptr ? version : "?");
    // Statistics are cached; bumping the epoch refreshes them.
    uint64_t epoch = 1;
    size_t elen = sizeof epoch;
    mallctl("epoch", &epoch, &elen, &epoch, elen);
    auto get = [](const char* name) {
        size_t v = 0;
        size_t l = sizeof v;
        return mallctl(name, &v, &l, nullptr, 0) == 0 ? static_cast<uint64_t>(v) : 0;
    };
    s.allocated = get("stats.allocated");
    s.active = get("stats.active");
    s.resident = get("stats.resident");
    s.mapped = get("stats.mapped");
    s.retained = get("stats.retained");
    s.available = true;
#else
    s.name = "glibc malloc";
#endif
    return s;
}

}  // namespace sluice::broker
