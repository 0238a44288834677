#pragma once
// `shared_buffer`: a view of bytes inside a reference-counted chunk. Received frames are handed
// out as shared_buffers pointing into the connection's receive chunk, so a handler can keep a
// request alive (while it waits for disk or for another core) without copying it: keeping the
// shared_buffer keeps the chunk. The count is atomic, so a frame may be passed to another core
// and released there. The bytes are immutable once shared; only the creator of a fresh buffer
// (`allocate`) writes into it before sharing it.
//
// Memory note: a kept frame pins its whole receive chunk (default 64 KiB). Copy small frames
// (`copy_of`) if they will be held for a long time.

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <utility>

namespace sluice::net {

class memory_account;

class shared_buffer {
  public:
    shared_buffer() = default;
    // A fresh, uninitialised buffer of `size` bytes (write it through mutable_data()).
    static shared_buffer allocate(size_t size);
    static shared_buffer copy_of(std::span<const std::byte> bytes);

    shared_buffer(const shared_buffer& o) noexcept
        : _chunk(o._chunk), _data(o._data), _size(o._size) {
        retain();
    }
    shared_buffer(shared_buffer&& o) noexcept
        : _chunk(std::exchange(o._chunk, nullptr)),
          _data(o._data),
          _size(std::exchange(o._size, 0)) {}
    shared_buffer& operator=(shared_buffer o) noexcept {
        swap(o);
        return *this;
    }
    ~shared_buffer() { release(); }
    void swap(shared_buffer& o) noexcept {
        std::swap(_chunk, o._chunk);
        std::swap(_data, o._data);
        std::swap(_size, o._size);
    }

    const std::byte* data() const { return _data; }
    size_t size() const { return _size; }
    bool empty() const { return _size == 0; }
    std::span<const std::byte> bytes() const { return {_data, _size}; }
    const std::byte& operator[](size_t i) const { return _data[i]; }

    // Writable access for whoever created the buffer with allocate() and has not shared it.
    std::byte* mutable_data() { return const_cast<std::byte*>(_data); }

    // A sub-view [offset, offset + length) sharing the same chunk (no copy).
    shared_buffer share(size_t offset, size_t length) const;

    // Number of shared_buffers (views) holding this chunk; 0 for an empty buffer.
    uint32_t use_count() const;
    // Bytes of the underlying chunk (what keeping this view pins in memory).
    size_t chunk_capacity() const;

    // Implementation detail, public for the stacks in this module.
    struct chunk {
        std::atomic<uint32_t> refs{1};
        size_t capacity = 0;
        // Set for receive chunks charged to a connection's memory budget (net/memory_budget.h):
        // the capacity is released to it when the last view goes, on whatever core that is.
        std::shared_ptr<memory_account> account;
        std::byte* bytes() { return reinterpret_cast<std::byte*>(this + 1); }
    };
    static chunk* new_chunk(size_t capacity);
    shared_buffer(chunk* c, const std::byte* data, size_t size) noexcept  // takes one reference
        : _chunk(c), _data(data), _size(size) {}
    static void retain(chunk* c) { c->refs.fetch_add(1, std::memory_order_relaxed); }
    static void release(chunk* c);

  private:
    void retain() {
        if (_chunk) retain(_chunk);
    }
    void release() {
        if (_chunk) release(std::exchange(_chunk, nullptr));
    }

    chunk* _chunk = nullptr;
    const std::byte* _data = nullptr;
    size_t _size = 0;
};

}  // namespace sluice::net
