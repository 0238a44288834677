#pragma once
// A ring of provided buffers (IORING_REGISTER_PBUF_RING) for receives that pick their buffer
// when data arrives (IOSQE_BUFFER_SELECT, multishot recv): one per reactor, shared by its
// connections, so a connection with nothing to read holds no buffer. Registered by hand
// (liburing 2.3 has no io_uring_setup_buf_ring): the ring's memory is mapped here, initialised,
// registered, and every buffer added.
//
// Owned by its reactor (reactor::receive_buffers()), used on its thread only. A completion
// names the buffer it filled (`IORING_CQE_F_BUFFER`, id in the upper 16 bits of the flags);
// the receiver copies the bytes out and gives the buffer back with recycle() at once.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>

#include <liburing.h>

#include "base/result.h"

namespace sluice::runtime {

class buffer_ring {
  public:
    static constexpr unsigned default_count = 256;
    static constexpr size_t default_buffer_bytes = 16 * 1024;

    // Fails when the kernel refuses the registration (older kernels): callers fall back to
    // receives into their own buffers.
    static result<std::unique_ptr<buffer_ring>> create(io_uring* ring, uint16_t group,
                                                       unsigned count = default_count,
                                                       size_t buffer_bytes = default_buffer_bytes);
    // Unmaps the memory; the reactor destroys it after its ring has exited.
    ~buffer_ring();
    buffer_ring(const buffer_ring&) = delete;
    buffer_ring& operator=(const buffer_ring&) = delete;

    uint16_t group() const { return _group; }
    size_t buffer_bytes() const { return _buffer_bytes; }
    // The first `length` bytes of buffer `id` (as a completion reported them).
    std::span<const std::byte> bytes(uint16_t id, size_t length) const {
        return {_buffers + static_cast<size_t>(id) * _buffer_bytes, length};
    }
    // Gives buffer `id` back to the kernel.
    void recycle(uint16_t id);

  private:
    buffer_ring() = default;
    io_uring_buf_ring* _ring = nullptr;
    size_t _ring_bytes = 0;
    std::byte* _buffers = nullptr;
    size_t _buffers_bytes = 0;
    unsigned _count = 0;
    size_t _buffer_bytes = 0;
    uint16_t _group = 0;
};

}  // namespace sluice::runtime
