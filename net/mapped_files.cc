#include "net/mapped_files.h"

#include <sys/mman.h>

#include <algorithm>

namespace sluice::net {

file_mapping::~file_mapping() { ::munmap(_base, _length); }

std::shared_ptr<const file_mapping> mapped_files::map(const file_region& region) {
    const auto now = std::chrono::steady_clock::now();
    const uint64_t end = region.offset + region.length;
    auto it = std::find_if(_entries.begin(), _entries.end(),
                           [&](const entry& e) { return e.file.get() == region.file.get(); });
    if (it != _entries.end() && end <= it->mapping->length()) {
        it->last_used = now;
        return it->mapping;
    }
    // Past the end of the mapping (the active segment grew) or not mapped yet: map whole
    // steps from byte 0. Mapping beyond the end of the file is allowed; only the bytes the
    // caller checked exist are ever read.
    size_t length = static_cast<size_t>((end + growth_step - 1) / growth_step * growth_step);
    void* p = ::mmap(nullptr, length, PROT_READ, MAP_SHARED, region.file->get(), 0);
    if (p == MAP_FAILED) return nullptr;
    auto mapping = std::make_shared<const file_mapping>(static_cast<std::byte*>(p), length);
    if (it != _entries.end()) {
        it->mapping = mapping;
        it->last_used = now;
    } else {
        if (_entries.size() >= max_entries) {
            auto oldest = std::min_element(
                _entries.begin(), _entries.end(),
                [](const entry& a, const entry& b) { return a.last_used < b.last_used; });
            _entries.erase(oldest);
        }
        _entries.push_back(entry{region.file, mapping, now});
    }
    arm_sweep();
    return mapping;
}

void mapped_files::arm_sweep() {
    if (_sweep_armed) return;
    _sweep_armed = true;
    std::weak_ptr<mapped_files> weak = weak_from_this();
    _reactor.add_timer(
        std::chrono::duration_cast<std::chrono::microseconds>(_idle_release), [weak] {
            if (auto self = weak.lock()) {
                self->_sweep_armed = false;
                self->sweep();
            }
        });
}

void mapped_files::sweep() {
    const auto cutoff = std::chrono::steady_clock::now() - _idle_release;
    std::erase_if(_entries, [&](const entry& e) { return e.last_used <= cutoff; });
    if (!_entries.empty()) arm_sweep();
}

}  // namespace sluice::net
