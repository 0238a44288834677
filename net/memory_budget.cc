#include "net/memory_budget.h"

#include <algorithm>
#include <utility>

namespace sluice::net {

bool memory_budget::admits(size_t held, size_t held_send, size_t more) const {
    if (_limit == 0) return true;
    if (held + more <= light_bytes) return true;
    if (held_send > light_bytes && send_used_bytes() >= send_limit_bytes()) return false;
    // Heavy: only while the new chunk fits the requests' share. (Admitting any size while
    // under the share was tried: e2e_memory_budget's producers then all ended up waiting with
    // their requests unanswered; not understood yet, see the closing note.)
    size_t received = used_bytes() - std::min(used_bytes(), send_used_bytes());
    return received + more <= receive_limit_bytes();
}

void memory_budget::charge(size_t n, bool send) {
    if (send) _send_used.fetch_add(static_cast<int64_t>(n), std::memory_order_relaxed);
    int64_t now = _used.fetch_add(static_cast<int64_t>(n), std::memory_order_relaxed) +
                  static_cast<int64_t>(n);
    int64_t peak = _peak.load(std::memory_order_relaxed);
    while (now > peak && !_peak.compare_exchange_weak(peak, now, std::memory_order_relaxed)) {
    }
}

void memory_budget::release(size_t n, bool send) {
    if (send) _send_used.fetch_sub(static_cast<int64_t>(n), std::memory_order_relaxed);
    _used.fetch_sub(static_cast<int64_t>(n), std::memory_order_relaxed);
}

void memory_budget::wait(std::function<void()> resume) {
    _waits.fetch_add(1, std::memory_order_relaxed);
    _waiters.push_back(std::move(resume));
    _waiting.store(_waiters.size(), std::memory_order_relaxed);
    if (_timer == 0) arm_poll();
}

void memory_budget::arm_poll() {
    // Weak: a budget dropped with waiters (its core stopping) is simply not polled again.
    _timer = _owner.add_timer(poll_interval, [w = weak_from_this()] {
        if (auto self = w.lock()) {
            self->_timer = 0;
            self->poll();
        }
    });
}

void memory_budget::poll() {
    if (_waiters.empty()) return;
    size_t send = send_used_bytes();
    size_t received = used_bytes() - std::min(used_bytes(), send);
    if (_limit != 0 && received >= receive_limit_bytes() && send >= send_limit_bytes()) {
        arm_poll();
        return;
    }
    // Under the budget: every waiter re-checks in order; those still refused wait again (and
    // re-arm the timer).
    std::vector<std::function<void()>> ready = std::exchange(_waiters, {});
    _waiting.store(0, std::memory_order_relaxed);
    for (auto& fn : ready) fn();
}

}  // namespace sluice::net
