#include "broker/partition_txns.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <filesystem>
#include <map>
#include <set>

#include "base/errc.h"
#include "base/fd.h"
#include "broker/txn_index_format.h"
#include "engine/file.h"
#include "engine/log_format.h"

namespace sluice::broker {

namespace {

using entry_bytes = std::array<uint8_t, txn_format::txn_index_entry_bytes>;

void put_be(uint8_t* at, uint64_t v, int n) {
    for (int i = n - 1; i >= 0; --i) {
        at[n - 1 - i] = static_cast<uint8_t>((v >> (8 * i)) & 0xff);
    }
}

uint64_t get_be(const uint8_t* at, int n) {
    uint64_t v = 0;
    for (int i = 0; i < n; ++i) v = (v << 8) | at[i];
    return v;
}

entry_bytes encode(const aborted_txn& a) {
    entry_bytes b{};
    put_be(b.data(), static_cast<uint16_t>(txn_format::txn_index_version), 2);
    put_be(b.data() + 2, static_cast<uint64_t>(a.producer_id), 8);
    put_be(b.data() + 10, static_cast<uint64_t>(a.first_offset), 8);
    put_be(b.data() + 18, static_cast<uint64_t>(a.last_offset), 8);
    put_be(b.data() + 26, static_cast<uint64_t>(a.last_stable_offset), 8);
    return b;
}

result<void> write_all(const std::string& path, const std::vector<uint8_t>& bytes, bool append) {
    int flags = O_WRONLY | O_CREAT | O_CLOEXEC | (append ? O_APPEND : O_TRUNC);
    unique_fd f(::open(path.c_str(), flags, 0644));
    if (!f.valid()) return errno_error(errno, "opening " + path);
    size_t done = 0;
    while (done < bytes.size()) {
        ssize_t n = ::write(f.get(), bytes.data() + done, bytes.size() - done);
        if (n < 0) {
            if (errno == EINTR) continue;
            return errno_error(errno, "writing " + path);
        }
        done += static_cast<size_t>(n);
    }
    return ok();
}

}  // namespace

std::string partition_txns::file_for(int64_t segment_base) const {
    return _dir + "/" +
           engine::log_format::segment_file_name(segment_base, txn_format::txn_index_suffix);
}

result<void> partition_txns::load(const std::string& dir, int64_t log_start) {
    _dir = dir;
    _aborted.clear();
    _open.clear();
    std::error_code ec;
    std::vector<int64_t> bases;
    for (const auto& de : std::filesystem::directory_iterator(dir, ec)) {
        int64_t base = 0;
        if (engine::log_format::parse_segment_file_name(de.path().filename().string(),
                                                        txn_format::txn_index_suffix, base)) {
            bases.push_back(base);
        }
    }
    if (ec) return errno_error(ec.value(), "listing " + dir);
    std::sort(bases.begin(), bases.end());
    for (int64_t base : bases) {
        std::string path = file_for(base);
        unique_fd f(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
        if (!f.valid()) return errno_error(errno, "opening " + path);
        entry_bytes b{};
        off_t pos = 0;
        while (::pread(f.get(), b.data(), b.size(), pos) == static_cast<ssize_t>(b.size())) {
            pos += static_cast<off_t>(b.size());
            if (static_cast<int16_t>(get_be(b.data(), 2)) != txn_format::txn_index_version) break;
            aborted_txn a;
            a.producer_id = static_cast<int64_t>(get_be(b.data() + 2, 8));
            a.first_offset = static_cast<int64_t>(get_be(b.data() + 10, 8));
            a.last_offset = static_cast<int64_t>(get_be(b.data() + 18, 8));
            a.last_stable_offset = static_cast<int64_t>(get_be(b.data() + 26, 8));
            a.segment_base = base;
            if (a.last_offset >= log_start) _aborted.push_back(a);
        }
    }
    std::stable_sort(_aborted.begin(), _aborted.end(),
                     [](const aborted_txn& x, const aborted_txn& y) {
                         return x.last_offset < y.last_offset;
                     });
    return ok();
}

void partition_txns::on_data(int64_t producer_id, int64_t base_offset) {
    _open.emplace(producer_id, base_offset);  // keeps the first offset of an open transaction
}

result<void> partition_txns::on_marker(int64_t producer_id, bool commit, int64_t offset,
                                       int64_t segment_base, int64_t lso) {
    auto it = _open.find(producer_id);
    if (it == _open.end()) return ok();  // a marker repeated by a retrying coordinator
    int64_t first = it->second;
    _open.erase(it);
    if (commit) return ok();
    aborted_txn a{producer_id, first, offset, lso, segment_base};
    // A replay over a range already indexed finds its entry there.
    for (auto r = _aborted.rbegin(); r != _aborted.rend() && r->last_offset >= offset; ++r) {
        if (r->producer_id == producer_id && r->last_offset == offset) return ok();
    }
    _aborted.push_back(a);
    auto bytes = encode(a);
    return write_all(file_for(segment_base), {bytes.begin(), bytes.end()}, true);
}

std::optional<int64_t> partition_txns::first_unstable_offset() const {
    std::optional<int64_t> out;
    for (const auto& [pid, first] : _open) {
        if (!out || first < *out) out = first;
    }
    return out;
}

std::vector<aborted_txn> partition_txns::aborted_between(int64_t from, int64_t to) const {
    std::vector<aborted_txn> out;
    auto it = std::lower_bound(_aborted.begin(), _aborted.end(), from,
                               [](const aborted_txn& a, int64_t v) { return a.last_offset < v; });
    for (; it != _aborted.end(); ++it) {
        if (it->first_offset < to) out.push_back(*it);
    }
    return out;
}

result<void> partition_txns::truncate(int64_t end) {
    size_t before = _aborted.size();
    std::erase_if(_aborted, [end](const aborted_txn& a) { return a.last_offset >= end; });
    std::erase_if(_open, [end](const auto& kv) { return kv.second >= end; });
    if (_aborted.size() == before) return ok();
    return rewrite_files();
}

result<void> partition_txns::forget_markers(
    const std::vector<std::pair<int64_t, int64_t>>& markers) {
    std::vector<aborted_txn> keep;
    std::set<int64_t> touched;
    for (const auto& a : _aborted) {
        if (std::find(markers.begin(), markers.end(), std::pair{a.producer_id, a.last_offset}) !=
            markers.end()) {
            touched.insert(a.segment_base);
        } else {
            keep.push_back(a);
        }
    }
    if (touched.empty()) return ok();
    // Durable before the entries leave memory: the caller removes the markers only after this.
    if (auto r = write_files(keep, &touched); !r) return r;
    _aborted = std::move(keep);
    return ok();
}

void partition_txns::drop_before(int64_t log_start) {
    std::erase_if(_aborted, [log_start](const aborted_txn& a) { return a.last_offset < log_start; });
    // Index files of deleted segments go with them.
    std::error_code ec;
    for (const auto& de : std::filesystem::directory_iterator(_dir, ec)) {
        int64_t base = 0;
        std::string name = de.path().filename().string();
        if (!engine::log_format::parse_segment_file_name(name, txn_format::txn_index_suffix,
                                                         base)) {
            continue;
        }
        auto log = _dir + "/" +
                   engine::log_format::segment_file_name(base, engine::log_format::log_suffix);
        if (!std::filesystem::exists(log, ec)) std::filesystem::remove(de.path(), ec);
    }
}

result<void> partition_txns::rewrite_files() { return write_files(_aborted, nullptr); }

result<void> partition_txns::write_files(const std::vector<aborted_txn>& entries,
                                         const std::set<int64_t>* only) {
    // Every file that is written: the given ones, or all the directory holds (rewritten, and
    // emptied if nothing stays in them) plus those the entries name.
    std::map<int64_t, std::vector<std::byte>> files;
    std::error_code ec;
    if (only != nullptr) {
        for (int64_t base : *only) files[base];
    } else {
        for (const auto& de : std::filesystem::directory_iterator(_dir, ec)) {
            int64_t base = 0;
            if (engine::log_format::parse_segment_file_name(de.path().filename().string(),
                                                            txn_format::txn_index_suffix, base)) {
                files[base];
            }
        }
    }
    for (const auto& a : entries) {
        if (only != nullptr && only->count(a.segment_base) == 0) continue;
        auto b = encode(a);
        auto& f = files[a.segment_base];
        const auto* p = reinterpret_cast<const std::byte*>(b.data());
        f.insert(f.end(), p, p + b.size());
    }
    auto& fs = engine::posix_file_system::instance();
    bool removed = false;
    for (const auto& [base, bytes] : files) {
        if (bytes.empty()) {
            removed = std::filesystem::remove(file_for(base), ec) || removed;
            continue;
        }
        // Whole or not at all, even across a crash: a torn rewrite could lose entries whose
        // aborted records are still in the log.
        auto name = engine::log_format::segment_file_name(base, txn_format::txn_index_suffix);
        if (auto r = engine::replace_file_atomically(fs, _dir, name, bytes); !r) return r;
    }
    if (removed) return fs.fsync_dir(_dir);
    return ok();
}

}  // namespace sluice::broker
