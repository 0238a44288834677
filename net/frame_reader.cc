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

namespace {
bool current_chunk_fits(const shared_buffer::chunk* chunk, size_t start, size_t end, size_t need) {
    if (chunk == nullptr || start + need > chunk->capacity) return false;
    size_t pending = end - start;
    size_t room = chunk->capacity - end;
    return (room >= frame_reader::min_room || room >= need - std::min(need, pending)) && room > 0;
}
}  // namespace

void frame_reader::cut_complete() {
    if (_chunk == nullptr || _raw) return;
    std::byte* base = _chunk->bytes();
    while (_end - _start >= 4) {
        int32_t size = static_cast<int32_t>(bytes::load_be32(base + _start));
        if (size < 0 || static_cast<uint32_t>(size) > _max_frame_bytes) return;  // parse() reports it
        size_t total = 4 + static_cast<size_t>(size);
        if (_end - _start < total) {
            _need = total;
            return;
        }
        shared_buffer::retain(_chunk);
        _ready.emplace_back(_chunk, base + _start + 4, static_cast<size_t>(size));
        _start += total;
    }
    _need = 0;
}

size_t frame_reader::growth_bytes() {
    cut_complete();
    size_t pending = _end - _start;
    size_t need = std::max<size_t>(_need, 4);
    if (current_chunk_fits(_chunk, _start, _end, need)) return 0;
    size_t new_capacity = std::max({_chunk_bytes, need, pending + min_room});
    bool sole_owner = _chunk != nullptr && _chunk->refs.load(std::memory_order_acquire) == 1;
    if (sole_owner && _chunk->capacity >= new_capacity) return 0;
    return new_capacity;
}

bool frame_reader::may_read() {
    if (!_account) return true;
    size_t growth = growth_bytes();
    // The rest of a frame whose chunk is already allocated is always read: that memory is
    // committed, and only a complete request can be answered and give it back (refusing it
    // would let large producers that each hold half a frame wait for one another for ever).
    bool mid_frame = _need > 0 && _end - _start < _need;
    if (growth == 0 && mid_frame) return true;
    return _account->may_take(growth);
}

std::span<std::byte> frame_reader::writable() {
    cut_complete();
    size_t pending = _end - _start;
    size_t need = std::max<size_t>(_need, 4);
    if (current_chunk_fits(_chunk, _start, _end, need)) {
        return {_chunk->bytes() + _end, _chunk->capacity - _end};
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
        if (_account) {
            _account->charge(new_capacity);
            fresh->account = _account;
        }
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
    for (auto& f : _ready) out.push_back(std::move(f));
    _ready.clear();
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
    _ready.clear();
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
