#pragma once
// Private to net/: Kafka framing on the receive side, shared by both stacks. Bytes arrive into
// the tail of a reference-counted chunk (`writable()` then `commit()`); `parse()` cuts every
// complete frame out of it as a shared_buffer view into the chunk. When the tail fills, only the
// partial frame is carried over: slid to the front if no delivered frame still refers to the
// chunk, otherwise copied into a fresh chunk. A frame bigger than the chunk gets a chunk of its
// own size. The size prefix is checked before anything is allocated.
//
// Owned by one connection, used on its reactor's thread.

#include <cstddef>
#include <span>
#include <vector>

#include "base/result.h"
#include "net/buffer.h"
#include "net/connection.h"
#include "net/memory_budget.h"
#include "net/socket_address.h"

namespace sluice::net {

class frame_reader {
  public:
    static constexpr size_t min_room = 4096;  // below this, compact or move to a new chunk

    // `raw`: no framing; parse() hands out everything received so far as one piece (for a
    // layer that frames the stream itself, connection_options::raw_stream).
    frame_reader(size_t chunk_bytes, uint32_t max_frame_bytes, bool raw = false)
        : _chunk_bytes(chunk_bytes), _max_frame_bytes(max_frame_bytes), _raw(raw) {}
    ~frame_reader();
    frame_reader(const frame_reader&) = delete;
    frame_reader& operator=(const frame_reader&) = delete;

    // Receive chunks allocated from now on are charged to `account` (null: not counted).
    void set_account(std::shared_ptr<memory_account> account) { _account = std::move(account); }
    const std::shared_ptr<memory_account>& account() const { return _account; }
    // Bytes the next writable() would allocate (0: it reuses the current chunk). Cuts the
    // complete frames first (see writable()).
    size_t growth_bytes();
    // Whether the owner may read more now, by the memory budget (always true without one, and
    // for the rest of a frame whose chunk is allocated): false means wait (memory_budget::wait)
    // before calling writable().
    bool may_read();

    // Room to receive into (never empty). Moves or replaces the chunk as needed, so call it only
    // when no receive into the previous span is in flight. Complete frames committed since the
    // last parse() are cut first (kept for the next parse(), in order), so the room is sized for
    // the frame actually being assembled and a completed frame is never copied again.
    std::span<std::byte> writable();
    void commit(size_t n) { _end += n; }

    // Appends the complete frames to `out`. Returns false (with `failure`) at a size prefix that
    // must end the connection (negative, or above max_frame_bytes); frames before it are kept.
    // `peer` names the peer in the error text.
    bool parse(std::vector<shared_buffer>& out, error& failure, const socket_address& peer);
    // Everything parsed has been released by the consumers: reuse the chunk from its start.
    // Not while a receive into writable() is in flight.
    void rewind_if_idle();
    // Drops the chunk (frames already handed out keep it alive on their own).
    void release();

    void set_max_frame_bytes(uint32_t bytes) { _max_frame_bytes = bytes; }
    size_t pending() const { return _end - _start; }  // bytes of an incomplete frame
    size_t capacity_max() const { return _capacity_max; }

  private:
    size_t _chunk_bytes;
    uint32_t _max_frame_bytes;
    shared_buffer::chunk* _chunk = nullptr;
    size_t _start = 0;
    size_t _end = 0;
    size_t _need = 0;  // size of the frame being assembled, with its prefix
    size_t _capacity_max = 0;
    bool _raw = false;
    std::shared_ptr<memory_account> _account;
    std::vector<shared_buffer> _ready;  // cut by writable()/growth_bytes(), not yet parsed out

    void cut_complete();
};

// Cuts the complete frames out of `reader` and hands them to the owner in one on_frames call,
// with `delivering` set meanwhile (a handler that re-enters the connection does not deliver
// again). The caller keeps itself alive across the call (the handler may drop the last
// pointer to it). `ok` is parse()'s verdict; `delivered` whether on_frames ran.
struct parse_outcome {
    bool ok;
    bool delivered;
};
inline parse_outcome deliver_frames(frame_reader& reader, std::vector<frame>& batch, error& failure,
                                    const socket_address& peer, connection_stats& stats,
                                    const connection_handlers& h, bool& delivering) {
    bool ok = reader.parse(batch, failure, peer);
    if (batch.empty()) return {ok, false};
    stats.frames_received += batch.size();
    delivering = true;
    if (h.on_frames) h.on_frames(std::span<frame>(batch));
    delivering = false;
    batch.clear();
    return {ok, true};
}

// The policy both stacks apply to an unreadable size prefix, once the frames before it were
// delivered: without an on_bad_frame handler the caller closes with `failure` (returns false);
// with one, receiving stops for good and the owner decides (it usually answers what it has,
// then close_after_send()). The owner logs it with what it does about it.
inline bool hand_bad_frame_to_owner(const connection_handlers& h, const error& failure,
                                    bool& receive_dead, bool& paused) {
    if (!h.on_bad_frame) return false;
    receive_dead = true;
    paused = true;
    auto on_bad = h.on_bad_frame;  // the handler may replace the handlers
    on_bad(failure);
    return true;
}

}  // namespace sluice::net
