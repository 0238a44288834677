#include "replication/leader_epoch_cache.h"

#include <algorithm>

namespace sluice::replication {

bool leader_epoch_cache::assign(model::leader_epoch epoch, model::offset start) {
    if (!_entries.empty()) {
        const auto& last = _entries.back();
        if (epoch == last.epoch) return true;
        if (epoch < last.epoch) return false;
    }
    // A newer epoch starting below existing entries replaces them: the log was truncated and
    // rewritten from `start` on.
    while (!_entries.empty() && _entries.back().start_offset >= start) _entries.pop_back();
    _entries.push_back({epoch, start});
    return true;
}

epoch_end leader_epoch_cache::end_offset_for(model::leader_epoch requested,
                                             model::offset log_end) const {
    if (requested() < 0 || _entries.empty()) return {};
    if (requested == _entries.back().epoch) return {requested, log_end};
    // The first entry with an epoch above the requested one.
    auto higher = std::upper_bound(
        _entries.begin(), _entries.end(), requested,
        [](model::leader_epoch e, const epoch_entry& x) { return e < x.epoch; });
    if (higher == _entries.end()) return {};  // newer than anything this log has seen
    if (higher == _entries.begin()) {
        // Older than every epoch here: nothing of it is in this log, which starts its first
        // known epoch at `higher->start_offset`.
        return {requested, higher->start_offset};
    }
    return {std::prev(higher)->epoch, higher->start_offset};
}

void leader_epoch_cache::truncate_from_end(model::offset log_end) {
    while (!_entries.empty() && _entries.back().start_offset >= log_end) _entries.pop_back();
}

void leader_epoch_cache::truncate_from_start(model::offset log_start) {
    // Keep the last entry starting at or below log_start (it covers log_start), moved up.
    size_t keep_from = 0;
    for (size_t i = 0; i < _entries.size(); ++i) {
        if (_entries[i].start_offset <= log_start) keep_from = i;
    }
    _entries.erase(_entries.begin(), _entries.begin() + static_cast<std::ptrdiff_t>(keep_from));
    if (!_entries.empty() && _entries.front().start_offset < log_start) {
        _entries.front().start_offset = log_start;
    }
}

model::leader_epoch leader_epoch_cache::latest_epoch() const {
    return _entries.empty() ? model::leader_epoch(-1) : _entries.back().epoch;
}

truncation truncation_point(const leader_epoch_cache& follower, model::offset log_end,
                            model::offset high_watermark, const epoch_end& leader_answer) {
    if (leader_answer.undefined()) {
        return {model::offset(std::min(high_watermark(), log_end())), true};
    }
    const model::leader_epoch mine = follower.latest_epoch();
    if (leader_answer.epoch == mine) {
        return {model::offset(std::min(leader_answer.end_offset(), log_end())), true};
    }
    // The leader does not have our latest epoch: it has `leader_answer.epoch` up to its end
    // offset. Our own records of that epoch end where our next epoch starts.
    epoch_end own = follower.end_offset_for(leader_answer.epoch, log_end);
    if (own.undefined()) {
        return {model::offset(std::min(leader_answer.end_offset(), log_end())), true};
    }
    model::offset cut(std::min({own.end_offset(), leader_answer.end_offset(), log_end()}));
    // Same epoch on both sides: the point is exact. Otherwise ask again from the new end.
    return {cut, own.epoch == leader_answer.epoch};
}

}  // namespace sluice::replication
