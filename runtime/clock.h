#pragma once
// Wall-clock time in milliseconds behind an interface so that retention, segment rolling and
// timeouts can be tested on a manual clock.

#include <atomic>
#include <chrono>
#include <cstdint>

namespace sluice::runtime {

class clock {
public:
    virtual ~clock() = default;
    virtual int64_t now_ms() const = 0;
};

class system_clock final : public clock {
public:
    int64_t now_ms() const override {
        return std::chrono::duration_cast<std::chrono::milliseconds>(
                   std::chrono::system_clock::now().time_since_epoch())
            .count();
    }
    static system_clock& instance() {
        static system_clock c;
        return c;
    }
};

class manual_clock final : public clock {
public:
    explicit manual_clock(int64_t start_ms = 1'700'000'000'000) : _now(start_ms) {}
    int64_t now_ms() const override { return _now.load(); }
    void advance_ms(int64_t d) { _now += d; }
    void set_ms(int64_t t) { _now = t; }

private:
    std::atomic<int64_t> _now;
};

}  // namespace sluice::runtime
