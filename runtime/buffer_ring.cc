#include "runtime/buffer_ring.h"

#include <sys/mman.h>

#include <cstring>
#include <string>

#include "runtime/errc.h"

namespace sluice::runtime {

result<std::unique_ptr<buffer_ring>> buffer_ring::create(io_uring* ring, uint16_t group,
                                                         unsigned count, size_t buffer_bytes) {
    if (count == 0 || (count & (count - 1)) != 0 || count > 32768) {
        return error(errc::io_uring_unavailable, "buffer ring size must be a power of two");
    }
    std::unique_ptr<buffer_ring> br(new buffer_ring());
    br->_count = count;
    br->_buffer_bytes = buffer_bytes;
    br->_group = group;
    br->_ring_bytes = count * sizeof(io_uring_buf);
    void* r = ::mmap(nullptr, br->_ring_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                     -1, 0);
    if (r == MAP_FAILED) return error(errc::io_uring_unavailable, "mmap of a buffer ring failed");
    br->_ring = static_cast<io_uring_buf_ring*>(r);
    br->_buffers_bytes = count * buffer_bytes;
    void* b = ::mmap(nullptr, br->_buffers_bytes, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (b == MAP_FAILED) return error(errc::io_uring_unavailable, "mmap of receive buffers failed");
    br->_buffers = static_cast<std::byte*>(b);
    io_uring_buf_ring_init(br->_ring);
    io_uring_buf_reg reg{};
    reg.ring_addr = reinterpret_cast<uint64_t>(br->_ring);
    reg.ring_entries = count;
    reg.bgid = group;
    int rc = io_uring_register_buf_ring(ring, &reg, 0);
    if (rc < 0) {
        return error(errc::io_uring_unavailable,
                     std::string("io_uring_register_buf_ring: ") + std::strerror(-rc));
    }
    int mask = io_uring_buf_ring_mask(count);
    for (unsigned i = 0; i < count; ++i) {
        io_uring_buf_ring_add(br->_ring, br->_buffers + static_cast<size_t>(i) * buffer_bytes,
                              static_cast<unsigned>(buffer_bytes), static_cast<unsigned short>(i),
                              mask, static_cast<int>(i));
    }
    io_uring_buf_ring_advance(br->_ring, static_cast<int>(count));
    return br;
}

buffer_ring::~buffer_ring() {
    if (_ring != nullptr) ::munmap(_ring, _ring_bytes);
    if (_buffers != nullptr) ::munmap(_buffers, _buffers_bytes);
}

void buffer_ring::recycle(uint16_t id) {
    io_uring_buf_ring_add(_ring, _buffers + static_cast<size_t>(id) * _buffer_bytes,
                          static_cast<unsigned>(_buffer_bytes), id, io_uring_buf_ring_mask(_count),
                          0);
    io_uring_buf_ring_advance(_ring, 1);
}

}  // namespace sluice::runtime
