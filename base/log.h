#pragma once
// Minimal structured logging to stderr: `log::info("engine", "rolled segment ", path)`.
// Not for hot paths; the level is process-wide and set once at start-up.

#include <sstream>
#include <string_view>

namespace sluice::log {

enum class level { trace = 0, debug, info, warn, error, off };

void set_level(level l);
level current_level();
bool parse_level(std::string_view s, level& out);
void write(level l, std::string_view module, const std::string& message);

template <class... Args>
void emit(level l, std::string_view module, const Args&... args) {
    if (l < current_level()) return;
    std::ostringstream os;
    (os << ... << args);
    write(l, module, os.str());
}
template <class... Args>
void debug(std::string_view m, const Args&... a) { emit(level::debug, m, a...); }
template <class... Args>
void info(std::string_view m, const Args&... a) { emit(level::info, m, a...); }
template <class... Args>
void warn(std::string_view m, const Args&... a) { emit(level::warn, m, a...); }
template <class... Args>
void error(std::string_view m, const Args&... a) { emit(level::error, m, a...); }

}  // namespace sluice::log
