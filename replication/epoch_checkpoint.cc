#include "replication/epoch_checkpoint.h"

#include <charconv>
#include <string_view>
#include <vector>

#include "replication/errc.h"

namespace sluice::replication {

namespace {

// Splits on '\n'; the file ends with one, so the last piece is empty.
std::vector<std::string_view> lines_of(std::string_view text) {
    std::vector<std::string_view> out;
    size_t at = 0;
    while (at < text.size()) {
        size_t nl = text.find('\n', at);
        if (nl == std::string_view::npos) nl = text.size();
        out.push_back(text.substr(at, nl - at));
        at = nl + 1;
    }
    return out;
}

template <class T>
bool parse_whole(std::string_view s, T& v) {
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    return ec == std::errc() && p == s.data() + s.size();
}

}  // namespace

result<leader_epoch_cache> read_epoch_checkpoint(engine::file_system& fs, const std::string& dir) {
    std::string path = dir + "/" + epoch_checkpoint_file;
    if (!fs.exists(path)) return leader_epoch_cache{};
    auto bytes = engine::read_whole_file(fs, path);
    if (!bytes) return bytes.error();
    std::string_view text(reinterpret_cast<const char*>(bytes->data()), bytes->size());
    auto bad = [&](size_t line, const std::string& why) {
        return error(errc::store_corrupt, path + " line " + std::to_string(line + 1) + ": " + why);
    };
    if (text.empty() || text.back() != '\n') return bad(0, "truncated (no final newline)");
    auto lines = lines_of(text);
    int version = -1;
    if (lines.empty() || !parse_whole(lines[0], version) || version != 0) {
        return bad(0, "unknown version");
    }
    size_t count = 0;
    if (lines.size() < 2 || !parse_whole(lines[1], count)) return bad(1, "no entry count");
    if (lines.size() != count + 2) {
        return bad(1, "says " + std::to_string(count) + " entries, holds " +
                          std::to_string(lines.size() - 2));
    }
    std::vector<epoch_entry> entries;
    for (size_t i = 2; i < lines.size(); ++i) {
        std::string_view l = lines[i];
        size_t sp = l.find(' ');
        int32_t epoch = -1;
        int64_t start = -1;
        if (sp == std::string_view::npos || !parse_whole(l.substr(0, sp), epoch) ||
            !parse_whole(l.substr(sp + 1), start) || epoch < 0 || start < 0) {
            return bad(i, "expected '<epoch> <start offset>'");
        }
        if (!entries.empty() && (epoch <= entries.back().epoch() ||
                                 start < entries.back().start_offset())) {
            return bad(i, "epochs and offsets must increase");
        }
        entries.push_back({model::leader_epoch(epoch), model::offset(start)});
    }
    return leader_epoch_cache(std::move(entries));
}

result<void> write_epoch_checkpoint(engine::file_system& fs, const std::string& dir,
                                    const leader_epoch_cache& cache) {
    std::string text = "0\n" + std::to_string(cache.entries().size()) + "\n";
    for (const auto& e : cache.entries()) {
        text += std::to_string(e.epoch()) + " " + std::to_string(e.start_offset()) + "\n";
    }
    return engine::replace_file_atomically(fs, dir, epoch_checkpoint_file,
                                           std::as_bytes(std::span(text.data(), text.size())));
}

}  // namespace sluice::replication
