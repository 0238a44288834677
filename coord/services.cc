#include "coord/services.h"

#include <algorithm>

#include "base/assert.h"

namespace sluice::coord {

result<bool> replay_chunk(
    log_storage& storage, int32_t partition, int64_t& next, size_t max_bytes,
    const std::function<void(const model::batch_header&, std::span<const std::byte>)>& on_batch) {
    auto ch = storage.read(partition, next, max_bytes);
    if (!ch) return ch.error();
    model::batch_iterator batches(ch->batches);
    model::batch_header h;
    std::span<const std::byte> b;
    while (batches.next(h, b)) on_batch(h, b);
    next = ch->next_offset;
    return ch->end;
}

owned_timers::~owned_timers() {
    for (uint64_t id : _live) _timers.cancel(id);
}

uint64_t owned_timers::schedule(int64_t delay_ms, std::function<void()> fn) {
    auto self_id = std::make_shared<uint64_t>(0);
    uint64_t id = _timers.schedule(std::max<int64_t>(delay_ms, 0),
                                   [this, self_id, fn = std::move(fn)] {
                                       _live.erase(*self_id);
                                       fn();
                                   });
    SLUICE_ASSERT(id != 0, "timer ids start at 1");
    *self_id = id;
    _live.insert(id);
    return id;
}

void owned_timers::cancel(uint64_t& id) {
    if (id == 0) return;
    _timers.cancel(id);
    _live.erase(id);
    id = 0;
}

}  // namespace sluice::coord
