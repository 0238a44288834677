#include "base/log.h"

#include <atomic>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <mutex>

namespace sluice::log {
namespace {
std::atomic<level> g_level{level::info};
std::mutex g_mu;
const char* name(level l) {
    switch (l) {
        case level::trace: return "TRACE";
        case level::debug: return "DEBUG";
        case level::info: return "INFO";
        case level::warn: return "WARN";
        case level::error: return "ERROR";
        case level::off: return "OFF";
    }
    return "?";
}
}  // namespace

void set_level(level l) { g_level.store(l, std::memory_order_relaxed); }
level current_level() { return g_level.load(std::memory_order_relaxed); }

bool parse_level(std::string_view s, level& out) {
    static constexpr std::pair<std::string_view, level> names[] = {
        {"trace", level::trace}, {"debug", level::debug}, {"info", level::info},
        {"warn", level::warn},   {"error", level::error}, {"off", level::off}};
    for (auto& [n, l] : names) {
        if (s == n) {
            out = l;
            return true;
        }
    }
    return false;
}

void write(level l, std::string_view module, const std::string& message) {
    using namespace std::chrono;
    auto now = system_clock::now();
    std::time_t t = system_clock::to_time_t(now);
    auto ms = duration_cast<milliseconds>(now.time_since_epoch()).count() % 1000;
    std::tm tm{};
    gmtime_r(&t, &tm);
    char ts[32];
    std::strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%S", &tm);
    std::lock_guard lock(g_mu);
    std::fprintf(stderr, "%s.%03lldZ %-5s [%.*s] %s\n", ts, static_cast<long long>(ms), name(l),
                 static_cast<int>(module.size()), module.data(), message.c_str());
}

}  // namespace sluice::log
