#include "net/frame_reader.h"

#include <algorithm>
#include <cstring>
#include <string>

#include "base/bytes.h"
#include "net/errc.h"

namespace sluice::net {

frame_reader::~frame_reader() {
    if (_chunk != nullptr) shared_buffer::release(_chunk);
}

std::span<std::byte> frame_reader::writable() {
    size_t pending = _end - _start;
    size_t need = std::max<size_t>(_need, 4);
    size_t capacity = _chunk ? _chunk->capacity : 0;
    bool fits = _chunk != nullptr && _start + need <= capacity;
    size_t room = capacity - _end;
    if (fits && (room >= min_room || room >= need - std::min(need, pending)) && room > 0) {
        return {_chunk->bytes() + _end, room};
    }
    // Never less room than min_room past what is pending: bytes may be committed several
    // times before the next parse() (so `_need` can be stale and `pending` a full chunk).
    size_t new_capacity = std::max({_chunk_bytes, need, pending + min_room});
    bool sole_owner = _chunk != nullptr && _chunk->refs.load(std::memory_order_acquire) == 1;
    if (sole_owner && _chunk->capacity >= new_capacity) {
        // Nobody else holds frames of this chunk: slide the partial frame to the front.
        std::memmove(_chunk->bytes(), _chunk->bytes() + _start, pending);
    } else {
        // Kept frames still point into the old chunk, or it is too small: start a new one and
        // carry over only the partial frame.
        shared_buffer::chunk* fresh = shared_buffer::new_chunk(new_capacity);
        if (pending > 0) std::memcpy(fresh->bytes(), _chunk->bytes() + _start, pending);
        if (_chunk != nullptr) shared_buffer::release(_chunk);
        _chunk = fresh;
        _capacity_max = std::max(_capacity_max, new_capacity);
    }
    _start = 0;
    _end = pending;
    return {_chunk->bytes() + _end, _chunk->capacity - _end};
}

bool frame_reader::parse(std::vector<shared_buffer>& out, error& failure,
                         const socket_address& peer) {
    if (_chunk == nullptr) return true;
    std::byte* base = _chunk->bytes();
    if (_raw) {
        if (_end > _start) {
            shared_buffer::retain(_chunk);
            out.emplace_back(_chunk, base + _start, _end - _start);
            _start = _end;
        }
        return true;
    }
    while (_end - _start >= 4) {
        int32_t size = static_cast<int32_t>(bytes::load_be32(base + _start));
        if (size < 0) {
            failure = error(errc::frame_size_invalid,
                            "size prefix " + std::to_string(size) + " from " + peer.to_string());
            return false;
        }
        if (static_cast<uint32_t>(size) > _max_frame_bytes) {
            failure = error(errc::frame_too_large,
                            "frame of " + std::to_string(size) + " bytes from " + peer.to_string() +
                                " exceeds max_frame_bytes (socket.request.max.bytes) " +
                                std::to_string(_max_frame_bytes));
            return false;
        }
        size_t total = 4 + static_cast<size_t>(size);
        if (_end - _start < total) {
            _need = total;
            return true;
        }
        shared_buffer::retain(_chunk);
        out.emplace_back(_chunk, base + _start + 4, static_cast<size_t>(size));
        _start += total;
    }
    _need = 0;
    return true;
}

void frame_reader::release() {
    if (_chunk != nullptr) shared_buffer::release(_chunk);
    _chunk = nullptr;
    _start = _end = _need = 0;
}

void frame_reader::rewind_if_idle() {
    if (_chunk != nullptr && _start == _end &&
        _chunk->refs.load(std::memory_order_acquire) == 1) {
        _start = _end = 0;
    }
}

}  // namespace sluice::net
