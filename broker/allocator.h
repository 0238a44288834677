#pragma once
// The broker's allocator: jemalloc when built with it (SLUICE_HAVE_JEMALLOC), else glibc's.
//
// Settings (`malloc_conf` in tools/sluice_main.cc, the binary): background threads purge
// unused dirty pages off the reactors' paths (background_thread:true), dirty and muzzy pages
// are returned after 5 s (a burst of large produce requests does not pin memory for long).
// Arenas: jemalloc's default of 4 per CPU with one thread cache per thread, so each reactor
// thread allocates from its own tcache and, in practice, its own arena without contention;
// per-CPU arenas (percpu_arena) are not used because reactor threads are not pinned to CPUs,
// and a thread moving between CPUs would then move between arenas.
//
// Threading: the statistics may be read from any thread.

#include <cstdint>
#include <string>

namespace sluice::broker {

struct allocator_stats {
    std::string name;        // "jemalloc 5.3.0-..." or "glibc malloc"
    bool available = false;  // false: the fields below are not known
    uint64_t allocated = 0;  // bytes the application holds
    uint64_t active = 0;     // bytes in active pages
    uint64_t resident = 0;   // bytes of physically resident allocator memory
    uint64_t mapped = 0;     // bytes mapped by the allocator
    uint64_t retained = 0;   // bytes kept mapped but returned to the OS
};

allocator_stats read_allocator_stats();

}  // namespace sluice::broker
