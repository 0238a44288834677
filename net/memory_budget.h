#pragma once
// Per-core memory budget for what connections hold (Kafka's queued.max.request.bytes, made per
// core): receive chunks that still hold requests (a request in flight pins the chunk its frame
// was read into, until its handler has finished with it) and in-memory bytes queued to send
// (file regions are not counted: they hold no memory). Received requests have three quarters
// of the limit, queued answers a quarter. A connection holding more than `light_bytes` reads
// only while received requests are under their share, and, if more than `light_bytes` of its
// own are queued answers, while queued answers are under theirs (a consumer that does not read
// its socket stops asking for more, and cannot starve producers: answers it will never take
// count against their own share). A connection holding little keeps being read, so small
// requests (metadata, heartbeats, fetches, small produces) are still served while large
// producers wait.
//
// Bound: a core's charged bytes stay under the limit + per connection light_bytes and the one
// answer it may have been building when answers crossed their share. (A heavy connection is
// admitted only when its new chunk fits the requests' share: a frame larger than the share
// that remains never is, hence the floor the broker puts under a core's share.) Nothing is allocated for a frame before its admission.
//
// Ownership and threads: one memory_budget per reactor (core), created by whoever creates the
// listeners and shared (shared_ptr) by every memory_account of that core; one memory_account
// per connection, shared by the connection and by the receive chunks it charged, which may be
// freed on any core (charge/release are atomic). wait() and the wake-ups run on the owning
// reactor's thread only.

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "runtime/reactor.h"

namespace sluice::net {

class memory_budget : public std::enable_shared_from_this<memory_budget> {
  public:
    // A connection holding at most this much is never made to wait (two default receive
    // chunks: the one being read and one still pinned by requests in flight).
    static constexpr size_t light_bytes = 128 * 1024;
    // While connections wait, how often the owner checks whether memory came back (releases
    // on other cores do not wake it directly).
    static constexpr std::chrono::microseconds poll_interval{1000};

    // `limit_bytes` 0: unlimited (accounting only).
    memory_budget(runtime::reactor& owner, size_t limit_bytes)
        : _owner(owner), _limit(limit_bytes) {}
    memory_budget(const memory_budget&) = delete;
    memory_budget& operator=(const memory_budget&) = delete;

    size_t limit_bytes() const { return _limit; }
    size_t used_bytes() const { return static_cast<size_t>(_used.load(std::memory_order_relaxed)); }
    size_t peak_bytes() const { return static_cast<size_t>(_peak.load(std::memory_order_relaxed)); }
    uint64_t waits_total() const { return _waits.load(std::memory_order_relaxed); }
    size_t waiting() const { return _waiting.load(std::memory_order_relaxed); }

    // The shares of the limit: received requests, and answers queued to sockets (a quarter).
    size_t receive_limit_bytes() const { return _limit - _limit / 4; }
    size_t send_limit_bytes() const { return _limit / 4; }
    size_t send_used_bytes() const {
        return static_cast<size_t>(_send_used.load(std::memory_order_relaxed));
    }

    // May a connection that holds `held` bytes, `held_send` of them in queued answers, take
    // `more`? (Policy in the header comment.)
    bool admits(size_t held, size_t held_send, size_t more) const;

    // Owner thread: `resume` runs (from the loop, never inside this call) once the core is
    // under its budget again. Waiters are resumed in the order they began to wait; each
    // re-checks and may wait again.
    void wait(std::function<void()> resume);

    // Any thread. `send`: bytes of answers queued to a socket (else: received requests).
    void charge(size_t n, bool send = false);
    void release(size_t n, bool send = false);

  private:
    void poll();
    void arm_poll();

    runtime::reactor& _owner;
    size_t _limit;
    std::atomic<int64_t> _used{0};
    std::atomic<int64_t> _send_used{0};
    std::atomic<int64_t> _peak{0};
    std::atomic<uint64_t> _waits{0};
    std::atomic<size_t> _waiting{0};
    std::vector<std::function<void()>> _waiters;  // owner thread
    runtime::timer_id _timer = 0;
};

// What one connection holds against its core's budget.
class memory_account {
  public:
    explicit memory_account(std::shared_ptr<memory_budget> budget) : _budget(std::move(budget)) {}
    ~memory_account() {
        if (!_budget) return;
        _budget->release(held_bytes() - held_send_bytes());
        _budget->release(held_send_bytes(), true);
    }
    memory_account(const memory_account&) = delete;
    memory_account& operator=(const memory_account&) = delete;

    size_t held_bytes() const { return static_cast<size_t>(_held.load(std::memory_order_relaxed)); }
    size_t held_send_bytes() const {
        return static_cast<size_t>(_held_send.load(std::memory_order_relaxed));
    }
    memory_budget* budget() const { return _budget.get(); }
    bool may_take(size_t more) const {
        return !_budget || _budget->admits(held_bytes(), held_send_bytes(), more);
    }

    // Any thread.
    void charge(size_t n) {
        if (n == 0) return;
        _held.fetch_add(static_cast<int64_t>(n), std::memory_order_relaxed);
        if (_budget) _budget->charge(n);
    }
    void release(size_t n) {
        if (n == 0) return;
        _held.fetch_sub(static_cast<int64_t>(n), std::memory_order_relaxed);
        if (_budget) _budget->release(n);
    }
    // Answers queued to the socket (owner thread).
    void charge_send(size_t n) {
        if (n == 0) return;
        _held.fetch_add(static_cast<int64_t>(n), std::memory_order_relaxed);
        _held_send.fetch_add(static_cast<int64_t>(n), std::memory_order_relaxed);
        if (_budget) _budget->charge(n, true);
    }
    void release_send(size_t n) {
        if (n == 0) return;
        _held.fetch_sub(static_cast<int64_t>(n), std::memory_order_relaxed);
        _held_send.fetch_sub(static_cast<int64_t>(n), std::memory_order_relaxed);
        if (_budget) _budget->release(n, true);
    }

  private:
    std::shared_ptr<memory_budget> _budget;
    std::atomic<int64_t> _held{0};
    std::atomic<int64_t> _held_send{0};
};

}  // namespace sluice::net
