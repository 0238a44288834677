#pragma once
// Idempotent-producer bookkeeping for one partition (Kafka's ProducerStateManager in small).
// For every producer id it remembers the epoch and the last five batches (sequence range and the
// offsets they were given), which is what lets the broker acknowledge a retried batch without
// writing it twice and reject a batch that skipped ahead.
//
// Owned by the partition's core. check() runs before offsets are assigned and commit() right
// after, on the same core, so pipelined batches (up to 5 in flight per producer) see each
// other's sequences.

#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <unordered_map>
#include <vector>

namespace sluice::broker {

class producer_state {
public:
    static constexpr int max_batches_cached = 5;

    enum class verdict {
        accept,        // next in sequence (or not idempotent): append it
        duplicate,     // seen before: acknowledge with the remembered offsets, do not append
        out_of_order,  // OUT_OF_ORDER_SEQUENCE_NUMBER (45)
        fenced_epoch,  // INVALID_PRODUCER_EPOCH (47): an older epoch than the one we know
        unknown_producer,  // UNKNOWN_PRODUCER_ID (59): no state and sequence is not 0
    };

    struct batch_info {
        int64_t producer_id = -1;
        int16_t epoch = -1;
        int32_t first_seq = -1;
        int32_t record_count = 0;
    };

    struct decision {
        verdict v = verdict::accept;
        int64_t base_offset = -1;  // for duplicates: the offsets first given to the batch
        int64_t last_offset = -1;
    };

    decision check(const batch_info& b) const;
    // Records an accepted batch with its assigned offsets.
    void commit(const batch_info& b, int64_t base_offset, int64_t last_offset);
    // A transaction marker of `epoch` was written: a bumped epoch (the coordinator fenced the
    // producer) becomes the producer's, with no sequences yet.
    void on_marker(int64_t producer_id, int16_t epoch);
    // What DescribeProducers shows of each producer: its epoch and last sequence.
    struct summary {
        int64_t producer_id = -1;
        int16_t epoch = -1;
        int32_t last_seq = -1;
        int64_t last_offset = -1;
    };
    std::vector<summary> summaries() const;
    // Forgets everything (after a truncation the state is rebuilt by replaying the log).
    void clear() { _producers.clear(); }
    size_t producers() const { return _producers.size(); }

    // The snapshot's view (broker/producer_snapshot.cc): every producer with its cached batches,
    // oldest first.
    struct cached_batch {
        int32_t first_seq = -1;
        int32_t last_seq = -1;
        int64_t base_offset = -1;
        int64_t last_offset = -1;
    };
    void for_each(const std::function<void(int64_t pid, int16_t epoch,
                                           const std::vector<cached_batch>& batches)>& fn) const;
    void restore(int64_t producer_id, int16_t epoch, const std::vector<cached_batch>& batches);

private:
    struct entry {
        int16_t epoch = -1;
        std::array<cached_batch, max_batches_cached> recent{};  // ring, newest at `head`
        int count = 0;
        int head = -1;
        const cached_batch& newest() const { return recent[static_cast<size_t>(head)]; }
    };
    std::unordered_map<int64_t, entry> _producers;
};

}  // namespace sluice::broker
