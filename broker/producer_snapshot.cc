#include "broker/producer_snapshot.h"

#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <vector>

#include "base/crc32c.h"
#include "broker/partition_txns.h"
#include "broker/producer_state.h"
#include "broker/txn_index_format.h"

namespace sluice::broker {

namespace {

constexpr size_t header_bytes = 4 + 2 + 4;  // magic, version, crc
// A bound on what is read back: a partition with more producers than this is replayed instead.
constexpr size_t max_snapshot_bytes = size_t{64} << 20;

class writer {
public:
    void u(uint64_t v, int n) {
        for (int i = n - 1; i >= 0; --i) b.push_back(static_cast<uint8_t>((v >> (8 * i)) & 0xff));
    }
    std::vector<uint8_t> b;
};

class reader {
public:
    reader(const uint8_t* p, size_t n) : _p(p), _n(n) {}
    uint64_t u(int n) {
        if (_n - _pos < static_cast<size_t>(n)) {
            _ok = false;
            return 0;
        }
        uint64_t v = 0;
        for (int i = 0; i < n; ++i) v = (v << 8) | _p[_pos++];
        return v;
    }
    bool ok() const { return _ok; }
    bool at_end() const { return _pos == _n; }

private:
    const uint8_t* _p;
    size_t _n;
    size_t _pos = 0;
    bool _ok = true;
};

std::string path_of(const std::string& dir) {
    return dir + "/" + std::string(txn_format::snapshot_file);
}

}  // namespace

result<void> save_producer_snapshot(const std::string& dir, int64_t offset,
                                    const producer_state& producers, const partition_txns& txns) {
    writer body;
    body.u(static_cast<uint64_t>(offset), 8);
    body.u(producers.producers(), 4);
    producers.for_each([&](int64_t pid, int16_t epoch,
                           const std::vector<producer_state::cached_batch>& batches) {
        body.u(static_cast<uint64_t>(pid), 8);
        body.u(static_cast<uint16_t>(epoch), 2);
        body.u(batches.size(), 1);
        for (const auto& c : batches) {
            body.u(static_cast<uint32_t>(c.first_seq), 4);
            body.u(static_cast<uint32_t>(c.last_seq), 4);
            body.u(static_cast<uint64_t>(c.base_offset), 8);
            body.u(static_cast<uint64_t>(c.last_offset), 8);
        }
    });
    body.u(txns.open().size(), 4);
    for (const auto& [pid, first] : txns.open()) {
        body.u(static_cast<uint64_t>(pid), 8);
        body.u(static_cast<uint64_t>(first), 8);
    }
    writer all;
    all.u(txn_format::snapshot_magic, 4);
    all.u(static_cast<uint16_t>(txn_format::snapshot_version), 2);
    all.u(crc32c::value(body.b.data(), body.b.size()), 4);
    all.b.insert(all.b.end(), body.b.begin(), body.b.end());
    std::string path = path_of(dir);
    std::string tmp = path + ".tmp";
    int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) return errno_error(errno, "creating " + tmp);
    size_t done = 0;
    while (done < all.b.size()) {
        ssize_t n = ::write(fd, all.b.data() + done, all.b.size() - done);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            int e = errno;
            ::close(fd);
            return errno_error(e, "writing " + tmp);
        }
        done += static_cast<size_t>(n);
    }
    ::close(fd);
    if (::rename(tmp.c_str(), path.c_str()) != 0) return errno_error(errno, "renaming " + tmp);
    return ok();
}

result<void> sync_producer_snapshot(const std::string& dir) {
    std::string path = path_of(dir);
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return errno_error(errno, "opening " + path);
    int rc = ::fdatasync(fd);
    int e = errno;
    ::close(fd);
    if (rc != 0) return errno_error(e, "syncing " + path);
    int d = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (d < 0) return errno_error(errno, "opening " + dir);
    rc = ::fsync(d);
    e = errno;
    ::close(d);
    if (rc != 0) return errno_error(e, "syncing " + dir);
    return ok();
}

std::optional<int64_t> load_producer_snapshot(const std::string& dir, int64_t log_start,
                                              int64_t log_end, producer_state& producers,
                                              partition_txns& txns) {
    std::string path = path_of(dir);
    std::error_code ec;
    auto size = std::filesystem::file_size(path, ec);
    if (ec || size < header_bytes || size > max_snapshot_bytes) return std::nullopt;
    std::vector<uint8_t> bytes(size);
    FILE* f = std::fopen(path.c_str(), "rb");
    if (f == nullptr) return std::nullopt;
    size_t got = std::fread(bytes.data(), 1, size, f);
    std::fclose(f);
    if (got != size) return std::nullopt;
    reader h(bytes.data(), header_bytes);
    if (h.u(4) != txn_format::snapshot_magic) return std::nullopt;
    if (static_cast<int16_t>(h.u(2)) != txn_format::snapshot_version) return std::nullopt;
    auto crc = static_cast<uint32_t>(h.u(4));
    const uint8_t* body = bytes.data() + header_bytes;
    size_t body_n = size - header_bytes;
    if (crc32c::value(body, body_n) != crc) return std::nullopt;
    reader r(body, body_n);
    auto offset = static_cast<int64_t>(r.u(8));
    if (!r.ok() || offset < log_start || offset > log_end) return std::nullopt;
    // Parsed in full before anything is restored, so a bad body changes nothing.
    struct prod {
        int64_t pid;
        int16_t epoch;
        std::vector<producer_state::cached_batch> batches;
    };
    std::vector<prod> prods;
    auto n = r.u(4);
    if (!r.ok() || n > body_n / 11) return std::nullopt;
    for (uint64_t i = 0; i < n && r.ok(); ++i) {
        prod p{static_cast<int64_t>(r.u(8)), static_cast<int16_t>(r.u(2)), {}};
        auto k = r.u(1);
        if (k > static_cast<uint64_t>(producer_state::max_batches_cached)) return std::nullopt;
        for (uint64_t j = 0; j < k; ++j) {
            producer_state::cached_batch c;
            c.first_seq = static_cast<int32_t>(r.u(4));
            c.last_seq = static_cast<int32_t>(r.u(4));
            c.base_offset = static_cast<int64_t>(r.u(8));
            c.last_offset = static_cast<int64_t>(r.u(8));
            p.batches.push_back(c);
        }
        prods.push_back(std::move(p));
    }
    auto open_n = r.u(4);
    if (!r.ok() || open_n > body_n / 16) return std::nullopt;
    std::vector<std::pair<int64_t, int64_t>> open;
    for (uint64_t i = 0; i < open_n; ++i) {
        auto pid = static_cast<int64_t>(r.u(8));
        auto first = static_cast<int64_t>(r.u(8));
        open.emplace_back(pid, first);
    }
    if (!r.ok() || !r.at_end()) return std::nullopt;
    for (const auto& p : prods) producers.restore(p.pid, p.epoch, p.batches);
    for (const auto& [pid, first] : open) txns.on_data(pid, first);
    return offset;
}

void remove_producer_snapshot(const std::string& dir) {
    std::error_code ec;
    std::filesystem::remove(path_of(dir), ec);
}

}  // namespace sluice::broker
