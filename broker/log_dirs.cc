#include "broker/log_dirs.h"

#include <unistd.h>

#include <filesystem>
#include <system_error>

#include "base/log.h"
#include "broker/config.h"

namespace sluice::broker {

namespace fs = std::filesystem;

namespace {

// Why `dir` cannot hold logs (created if missing), or nullopt when it can.
std::optional<std::string> unusable(const std::string& dir) {
    std::error_code ec;
    fs::create_directories(dir, ec);
    if (ec) return "cannot create it: " + ec.message();
    if (!fs::is_directory(dir, ec)) return "not a directory";
    if (::access(dir.c_str(), R_OK | W_OK | X_OK) != 0) return "not readable and writable";
    fs::directory_iterator it(dir, ec);  // can it be listed at all
    if (ec) return "cannot list it: " + ec.message();
    return std::nullopt;
}

// Partition directories in `dir` (names with a '-' followed by a partition number).
size_t partitions_in(const std::string& dir) {
    size_t n = 0;
    std::error_code ec;
    for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
        if (!it->is_directory(ec)) continue;
        auto name = it->path().filename().string();
        auto dash = name.rfind('-');
        if (dash != std::string::npos && dash + 1 < name.size() &&
            name.find_first_not_of("0123456789", dash + 1) == std::string::npos) {
            ++n;
        }
    }
    return n;
}

}  // namespace

result<log_dir_set> log_dir_set::open(const std::vector<std::string>& dirs) {
    if (dirs.empty()) return error(errc::invalid_config, "log.dirs: no directory given");
    log_dir_set set(dirs);
    for (size_t i = 0; i < dirs.size(); ++i) {
        auto why = unusable(dirs[i]);
        if (!why) continue;
        if (i == 0) {
            return error(errc::invalid_config,
                         "log.dirs: " + dirs[i] + " (the first dir, which holds the broker's "
                         "metadata) is unusable: " + *why);
        }
        set._offline[dirs[i]] = *why;
        log::error("broker", "log dir ", dirs[i], " is offline: ", *why,
                   "; its partitions answer KAFKA_STORAGE_ERROR, the other dirs serve");
    }
    return set;
}

std::optional<std::string> log_dir_set::offline_reason(const std::string& dir) const {
    std::lock_guard lock(_mu);
    auto it = _offline.find(dir);
    if (it == _offline.end()) return std::nullopt;
    return it->second;
}

void log_dir_set::remember_existing(const std::set<model::tp>& partitions) {
    std::lock_guard lock(_mu);
    if (!_existing) _existing.emplace();
    _existing->insert(partitions.begin(), partitions.end());
}

size_t log_dir_set::offline_count() const {
    std::lock_guard lock(_mu);
    return _offline.size();
}

bool log_dir_set::take_offline(const std::string& dir, const std::string& reason) {
    {
        std::lock_guard lock(_mu);
        if (!_offline.emplace(dir, reason).second) return false;
    }
    log::error("broker", "log dir ", dir, " is offline: ", reason,
               "; its partitions answer KAFKA_STORAGE_ERROR until the broker restarts with it "
               "usable, the other dirs serve");
    return true;
}

std::optional<std::string> log_dir_set::place(const model::tp& tp, bool created) const {
    std::vector<std::string> online;
    bool some_offline = false;
    {
        std::lock_guard lock(_mu);
        if (!created && _existing && !_existing->contains(tp)) created = true;
        for (const auto& d : _dirs) {
            if (_offline.contains(d)) {
                some_offline = true;
            } else {
                online.push_back(d);
            }
        }
    }
    // One placement at a time, and the chosen directory is made before the next one counts:
    // cores creating partitions together still spread them.
    std::lock_guard placing(_place_mu);
    std::error_code ec;
    for (const auto& d : online) {
        if (fs::exists(fs::path(d) / tp.dir_name(), ec)) return d;
    }
    if ((some_offline && !created) || online.empty()) return std::nullopt;
    const std::string* best = &online.front();
    size_t fewest = SIZE_MAX;
    for (const auto& d : online) {
        size_t n = partitions_in(d);
        if (n < fewest) {
            fewest = n;
            best = &d;
        }
    }
    fs::create_directories(fs::path(*best) / tp.dir_name(), ec);  // the log's open reports errors
    return *best;
}

}  // namespace sluice::broker
