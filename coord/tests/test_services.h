#pragma once
// In-memory services for coordinator tests: timers on a manual clock, and a log_storage whose
// appends complete at once (or fail on demand) and are kept for replay.

#include <algorithm>
#include <functional>
#include <map>

#include "coord/services.h"
#include "model/record_batch.h"
#include "runtime/clock.h"

namespace sluice::coord {

class manual_timers final : public timer_service {
public:
    explicit manual_timers(runtime::manual_clock& c) : _clock(c) {}
    uint64_t schedule(int64_t delay_ms, std::function<void()> fn) override {
        uint64_t id = ++_next;
        _timers[id] = {_clock.now_ms() + delay_ms, std::move(fn)};
        return id;
    }
    void cancel(uint64_t id) override { _timers.erase(id); }
    // Advances the clock, firing due timers in time order.
    void advance(int64_t ms) {
        int64_t until = _clock.now_ms() + ms;
        while (true) {
            auto best = _timers.end();
            for (auto it = _timers.begin(); it != _timers.end(); ++it) {
                if (it->second.first <= until && (best == _timers.end() || it->second.first < best->second.first)) best = it;
            }
            if (best == _timers.end()) break;
            _clock.set_ms(std::max(_clock.now_ms(), best->second.first));
            auto fn = std::move(best->second.second);
            _timers.erase(best);
            fn();
        }
        _clock.set_ms(until);
    }

private:
    runtime::manual_clock& _clock;
    uint64_t _next = 0;
    std::map<uint64_t, std::pair<int64_t, std::function<void()>>> _timers;
};

// Appends complete immediately (or are held, to test ordering) and are kept for replay.
class memory_storage final : public log_storage {
public:
    bool owns(int32_t) override { return owned; }
    int32_t leader_epoch(int32_t) override { return epoch; }
    void append(int32_t partition, bytes batch, std::function<void(bool)> done) override {
        auto& log = _logs[partition];
        model::set_base_offset(batch, static_cast<int64_t>(_counts[partition]));
        _counts[partition] += static_cast<size_t>(model::parse_header(batch)->record_count);
        log.insert(log.end(), batch.begin(), batch.end());
        ++appends;
        if (fail_appends) {
            done(false);
        } else {
            done(true);
        }
    }
    result<chunk> read(int32_t partition, int64_t, size_t) override {
        chunk c;
        c.batches = _logs[partition];
        c.next_offset = static_cast<int64_t>(_counts[partition]);
        c.end = true;
        return c;
    }
    int appends = 0;
    bool fail_appends = false;
    bool owned = true;
    int32_t epoch = 0;

private:
    std::map<int32_t, bytes> _logs;
    std::map<int32_t, size_t> _counts;
};

}  // namespace sluice::coord
