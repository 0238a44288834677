#include "broker/producer_state.h"

namespace sluice::broker {

namespace {
// Sequences wrap from INT32_MAX to 0, as in Kafka.
int32_t next_seq(int32_t seq, int32_t n) {
    int64_t v = static_cast<int64_t>(seq) + n;
    return static_cast<int32_t>(v % (int64_t{1} << 31));
}
}  // namespace

producer_state::decision producer_state::check(const batch_info& b) const {
    if (b.producer_id < 0 || b.first_seq < 0) return {};
    auto it = _producers.find(b.producer_id);
    if (it == _producers.end()) {
        if (b.first_seq != 0) return {verdict::unknown_producer};
        return {};
    }
    const entry& e = it->second;
    if (b.epoch < e.epoch) return {verdict::fenced_epoch};
    if (b.epoch > e.epoch) {
        // A bumped epoch starts its sequences again from zero.
        return b.first_seq == 0 ? decision{} : decision{verdict::out_of_order};
    }
    int32_t last_seq = next_seq(b.first_seq, b.record_count - 1);
    for (int i = 0; i < e.count; ++i) {
        const cached_batch& c = e.recent[static_cast<size_t>(i)];
        if (c.first_seq == b.first_seq && c.last_seq == last_seq) {
            return {verdict::duplicate, c.base_offset, c.last_offset};
        }
    }
    if (e.count > 0 && b.first_seq != next_seq(e.newest().last_seq, 1)) {
        return {verdict::out_of_order};
    }
    return {};
}

void producer_state::commit(const batch_info& b, int64_t base_offset, int64_t last_offset) {
    if (b.producer_id < 0 || b.first_seq < 0) return;
    entry& e = _producers[b.producer_id];
    if (b.epoch != e.epoch) {
        e = entry{};
        e.epoch = b.epoch;
    }
    e.head = (e.head + 1) % max_batches_cached;
    e.recent[static_cast<size_t>(e.head)] =
        cached_batch{b.first_seq, next_seq(b.first_seq, b.record_count - 1), base_offset, last_offset};
    if (e.count < max_batches_cached) ++e.count;
}

}  // namespace sluice::broker
