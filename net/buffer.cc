#include "net/buffer.h"

#include <cstring>
#include <new>

#include "base/assert.h"
#include "net/memory_budget.h"

namespace sluice::net {

shared_buffer::chunk* shared_buffer::new_chunk(size_t capacity) {
    // One allocation for header and bytes; the bytes are left uninitialised on purpose (a
    // receive chunk for an 8 MiB frame is filled by the kernel, zeroing it would be waste).
    void* mem = ::operator new(sizeof(chunk) + capacity);
    auto* c = new (mem) chunk();
    c->capacity = capacity;
    return c;
}

void shared_buffer::release(chunk* c) {
    if (c->refs.fetch_sub(1, std::memory_order_acq_rel) == 1) {
        if (c->account) c->account->release(c->capacity);
        c->~chunk();
        ::operator delete(static_cast<void*>(c));
    }
}

shared_buffer shared_buffer::allocate(size_t size) {
    chunk* c = new_chunk(size);
    return shared_buffer(c, c->bytes(), size);
}

shared_buffer shared_buffer::copy_of(std::span<const std::byte> bytes) {
    shared_buffer b = allocate(bytes.size());
    if (!bytes.empty()) std::memcpy(b.mutable_data(), bytes.data(), bytes.size());
    return b;
}

shared_buffer shared_buffer::share(size_t offset, size_t length) const {
    SLUICE_ASSERT(offset <= _size && length <= _size - offset, "share() past the end of a view");
    if (_chunk == nullptr) return {};
    retain(_chunk);
    return shared_buffer(_chunk, _data + offset, length);
}

uint32_t shared_buffer::use_count() const {
    return _chunk ? _chunk->refs.load(std::memory_order_relaxed) : 0;
}

size_t shared_buffer::chunk_capacity() const {
    return _chunk ? _chunk->capacity : 0;
}

}  // namespace sluice::net
