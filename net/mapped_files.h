#pragma once
// Private to net/: read-only mappings of files whose regions connections send with send()
// (connection_options::cached_send::mapped). Mapping a file once and reusing it across fetches
// saves setting up and tearing down page-table entries for every region (measured ~15% of a
// sending reactor's time with a fresh mapping per 8 MiB fetch).
//
// One cache per listener, used on its reactor's thread only. A mapping covers the file from
// byte 0 and grows (is replaced) when a region reaches past it. Entries not used for
// `idle_release` (2 s) are dropped by a sweep timer, so the cache never keeps a deleted segment's
// disk space for long; a mapping in use by a send is shared and lives until that send is done.

#include <chrono>
#include <cstddef>
#include <memory>
#include <vector>

#include "base/fd.h"
#include "runtime/reactor.h"

namespace sluice::net {

class file_mapping {
  public:
    file_mapping(std::byte* base, size_t length) : _base(base), _length(length) {}
    ~file_mapping();
    file_mapping(const file_mapping&) = delete;
    file_mapping& operator=(const file_mapping&) = delete;

    const std::byte* at(uint64_t offset) const { return _base + offset; }
    size_t length() const { return _length; }

  private:
    std::byte* _base;
    size_t _length;
};

class mapped_files : public std::enable_shared_from_this<mapped_files> {
  public:
    static constexpr size_t max_entries = 64;
    static constexpr size_t growth_step = 64u << 20;  // mappings cover whole 64 MiB steps
    static constexpr std::chrono::milliseconds default_idle_release{2000};

    explicit mapped_files(runtime::reactor& r,
                          std::chrono::milliseconds idle_release = default_idle_release)
        : _reactor(r), _idle_release(idle_release) {}

    // A mapping that covers `region` (whose bytes the caller checked are in the file), or null
    // when the file cannot be mapped.
    std::shared_ptr<const file_mapping> map(const file_region& region);
    size_t size() const { return _entries.size(); }

  private:
    struct entry {
        shared_fd file;
        std::shared_ptr<const file_mapping> mapping;
        std::chrono::steady_clock::time_point last_used;
    };
    void arm_sweep();
    void sweep();

    runtime::reactor& _reactor;
    std::chrono::milliseconds _idle_release;
    std::vector<entry> _entries;
    bool _sweep_armed = false;  // the timer holds only a weak reference
};

}  // namespace sluice::net
