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
    if (b.producer_id < 0) return {};
    auto it = _producers.find(b.producer_id);
    if (b.first_seq < 0) {
        // Without sequences (markers, transactional offset commits) only the epoch is checked.
        if (it != _producers.end() && b.epoch < it->second.epoch) return {verdict::fenced_epoch};
        return {};
    }
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

void producer_state::on_marker(int64_t producer_id, int16_t epoch) {
    if (producer_id < 0) return;
    entry& e = _producers[producer_id];
    if (epoch > e.epoch) {
        e = entry{};
        e.epoch = epoch;
    }
}

std::vector<producer_state::summary> producer_state::summaries() const {
    std::vector<summary> out;
    for (const auto& [pid, e] : _producers) {
        summary s{pid, e.epoch, -1, -1};
        if (e.count > 0) {
            s.last_seq = e.newest().last_seq;
            s.last_offset = e.newest().last_offset;
        }
        out.push_back(s);
    }
    return out;
}

void producer_state::for_each(
    const std::function<void(int64_t, int16_t, const std::vector<cached_batch>&)>& fn) const {
    std::vector<cached_batch> batches;
    for (const auto& [pid, e] : _producers) {
        batches.clear();
        for (int i = e.count - 1; i >= 0; --i) {
            int at = (e.head - i + max_batches_cached) % max_batches_cached;
            batches.push_back(e.recent[static_cast<size_t>(at)]);
        }
        fn(pid, e.epoch, batches);
    }
}

void producer_state::restore(int64_t producer_id, int16_t epoch,
                             const std::vector<cached_batch>& batches) {
    entry& e = _producers[producer_id];
    e = entry{};
    e.epoch = epoch;
    for (const auto& c : batches) {
        e.head = (e.head + 1) % max_batches_cached;
        e.recent[static_cast<size_t>(e.head)] = c;
        if (e.count < max_batches_cached) ++e.count;
    }
}

}  // namespace sluice::broker
