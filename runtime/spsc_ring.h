#pragma once
// A bounded single-producer / single-consumer ring (Seastar's smp queues, Lamport's queue):
// one thread pushes, one other thread pops, and neither ever takes a lock. Capacity is a power
// of two fixed at construction; the producer owns `_tail`, the consumer `_head`, each on its
// own cache line; the producer caches the consumer's index and reads the shared line only
// when its cached view says the ring is full, the consumer reads the producer's once a batch.
//
// Ordering: a slot is written before the release store of the tail that publishes it, and read
// after the acquire load that sees it; the consumer's release of the head hands the slot back.
// Elements are moved in and out; a popped slot is left in its moved-from state.

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <new>
#include <utility>

#include "base/assert.h"

namespace sluice::runtime {

template <class T>
class spsc_ring {
public:
    explicit spsc_ring(size_t capacity) : _mask(capacity - 1), _slots(new T[capacity]) {
        SLUICE_ASSERT(capacity >= 2 && (capacity & (capacity - 1)) == 0,
                      "spsc_ring capacity must be a power of two");
    }
    spsc_ring(const spsc_ring&) = delete;
    spsc_ring& operator=(const spsc_ring&) = delete;

    size_t capacity() const { return _mask + 1; }

    // Producer thread only. False (and `v` untouched) when the ring is full.
    bool try_push(T& v) {
        uint64_t tail = _prod.tail.load(std::memory_order_relaxed);
        if (tail - _prod.cached_head > _mask) {
            _prod.cached_head = _cons.head.load(std::memory_order_acquire);
            if (tail - _prod.cached_head > _mask) return false;
        }
        _slots[tail & _mask] = std::move(v);
        _prod.tail.store(tail + 1, std::memory_order_release);
        return true;
    }

    // Consumer thread only: calls fn(T&&) for up to `max` elements, oldest first; returns how
    // many. The slots are released together after the batch.
    template <class Fn>
    size_t pop_batch(Fn&& fn, size_t max = SIZE_MAX) {
        uint64_t head = _cons.head.load(std::memory_order_relaxed);
        // One look at the producer's index per batch: everything published so far is taken.
        _cons.cached_tail = _prod.tail.load(std::memory_order_acquire);
        if (head == _cons.cached_tail) return 0;
        size_t n = static_cast<size_t>(std::min<uint64_t>(_cons.cached_tail - head, max));
        for (size_t i = 0; i < n; ++i) {
            T v = std::move(_slots[(head + i) & _mask]);
            _slots[(head + i) & _mask] = T{};
            // Released before fn runs: fn may take long, and the producer may refill meanwhile.
            _cons.head.store(head + i + 1, std::memory_order_release);
            fn(std::move(v));
        }
        return n;
    }

    // Either thread; exact only when the other side is quiet (tests, sleep decisions).
    bool empty() const {
        return _cons.head.load(std::memory_order_acquire) ==
               _prod.tail.load(std::memory_order_acquire);
    }

private:
    static constexpr size_t line = 64;
    const uint64_t _mask;
    std::unique_ptr<T[]> _slots;
    struct alignas(line) producer_side {
        std::atomic<uint64_t> tail{0};
        uint64_t cached_head = 0;
    } _prod;
    struct alignas(line) consumer_side {
        std::atomic<uint64_t> head{0};
        uint64_t cached_tail = 0;  // the batch being taken
    } _cons;
};

}  // namespace sluice::runtime
