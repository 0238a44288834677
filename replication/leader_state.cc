#include "replication/leader_state.h"

#include <algorithm>

#include "base/assert.h"

namespace sluice::replication {

leader_state::leader_state(model::node_id self, model::leader_epoch epoch,
                           model::offset epoch_start, std::vector<model::node_id> replicas,
                           std::vector<model::node_id> isr, model::offset log_end,
                           model::offset high_watermark, int64_t now_ms)
    : _self(self),
      _epoch(epoch),
      _epoch_start(epoch_start),
      _replicas(std::move(replicas)),
      _isr(std::move(isr)),
      _log_end(log_end),
      _hw(std::min(high_watermark, log_end)) {
    SLUICE_ASSERT(in_isr(_self), "a leader is always in its own ISR");
    for (auto id : _replicas) {
        // A new leader gives every follower a full lag window before it may be dropped.
        if (id != _self) _followers.push_back({id, -1, now_ms, 0, -1});
    }
    advance_high_watermark();
}

void leader_state::set_replicas(std::vector<model::node_id> replicas, int64_t now_ms) {
    std::vector<progress> next;
    for (auto id : replicas) {
        if (id == _self) continue;
        if (const progress* p = find(id)) {
            next.push_back(*p);
        } else {
            next.push_back({id, -1, now_ms, 0, -1});
        }
    }
    _followers = std::move(next);
    _replicas = std::move(replicas);
}

leader_state::progress* leader_state::find(model::node_id id) {
    for (auto& p : _followers) {
        if (p.id == id) return &p;
    }
    return nullptr;
}

const leader_state::progress* leader_state::find(model::node_id id) const {
    for (const auto& p : _followers) {
        if (p.id == id) return &p;
    }
    return nullptr;
}

bool leader_state::in_isr(model::node_id id) const {
    return std::find(_isr.begin(), _isr.end(), id) != _isr.end();
}

std::optional<model::offset> leader_state::follower_log_end(model::node_id id) const {
    const progress* p = find(id);
    if (p == nullptr || p->log_end < 0) return std::nullopt;
    return model::offset(p->log_end);
}

bool leader_state::on_append(model::offset log_end) {
    _log_end = std::max(_log_end, log_end);
    return advance_high_watermark();
}

bool leader_state::on_fetch(model::node_id id, model::offset fetch_offset, int64_t now_ms) {
    progress* p = find(id);
    if (p == nullptr) return false;
    // A follower never holds more than the leader wrote; a larger offset is a stale or bogus
    // report and must not let the high watermark pass data the leader does not have.
    const int64_t end = std::min(fetch_offset(), _log_end());
    p->log_end = end;
    if (end >= _log_end()) {
        p->last_caught_up_ms = now_ms;
    } else if (p->leader_end_at_last_fetch >= 0 && end >= p->leader_end_at_last_fetch) {
        p->last_caught_up_ms = std::max(p->last_caught_up_ms, p->last_fetch_ms);
    }
    p->leader_end_at_last_fetch = _log_end();
    p->last_fetch_ms = now_ms;
    return advance_high_watermark();
}

bool leader_state::advance_high_watermark() {
    int64_t low = _log_end();
    for (auto id : _isr) {
        if (id == _self) continue;
        const progress* p = find(id);
        if (p == nullptr || p->log_end < 0) return false;  // unknown: hold the watermark
        low = std::min(low, p->log_end);
    }
    if (low <= _hw()) return false;
    _hw = model::offset(low);
    return true;
}

std::vector<model::node_id> leader_state::lagging(int64_t now_ms, int64_t lag_max_ms) const {
    std::vector<model::node_id> out;
    for (auto id : _isr) {
        if (id == _self) continue;
        const progress* p = find(id);
        if (p == nullptr) continue;
        bool caught_up_now = p->log_end >= _log_end();
        if (!caught_up_now && now_ms - p->last_caught_up_ms > lag_max_ms) out.push_back(id);
    }
    return out;
}

std::vector<model::node_id> leader_state::joinable() const {
    std::vector<model::node_id> out;
    for (const auto& p : _followers) {
        if (in_isr(p.id) || p.log_end < 0) continue;
        if (p.log_end >= _hw() && p.log_end >= _epoch_start()) out.push_back(p.id);
    }
    return out;
}

bool leader_state::set_isr(std::vector<model::node_id> isr) {
    SLUICE_ASSERT(std::find(isr.begin(), isr.end(), _self) != isr.end(),
                  "a leader is always in its own ISR");
    _isr = std::move(isr);
    return advance_high_watermark();
}

}  // namespace sluice::replication
