#include "engine/testing/fault_fs.h"

#include <algorithm>
#include <cerrno>
#include <optional>

#include "engine/errc.h"
#include "runtime/reactor.h"

namespace sluice::engine::testing {

struct file_state {
    std::vector<std::byte> synced;  // content at the last successful fdatasync
    bool name_durable = false;
    std::optional<std::vector<std::byte>> replaced;  // durable content a rename overwrote
    struct write_rec {
        uint64_t pos;
        std::vector<std::byte> bytes;
    };
    std::vector<write_rec> unsynced;
};

struct fault_fs::state {
    file_system* inner = nullptr;
    std::map<std::string, std::shared_ptr<file_state>> files;
    std::string fail_write, fail_fsync, tear_write;
    bool fail_write_armed = false, fail_fsync_armed = false, tear_armed = false;
    bool full = false;
    size_t tear_prefix = 0;
    uint64_t fsyncs = 0, writes = 0, reads = 0;

    static bool take(bool& armed, const std::string& part, const std::string& path) {
        if (!armed || path.find(part) == std::string::npos) return false;
        armed = false;
        return true;
    }
    void snapshot(const std::string& path, file_state& fs) {
        auto bytes = read_whole_file(*inner, path);
        fs.synced = bytes ? std::move(*bytes) : std::vector<std::byte>{};
        fs.unsynced.clear();
    }
};

namespace {

error injected(const char* what, const std::string& path) {
    return error(errc::io_error, std::string(what) + " " + path + ": injected EIO");
}

error no_space(const char* what, const std::string& path) {
    return error(errc::no_space, std::string(what) + " " + path + ": injected ENOSPC");
}

std::string dir_of(const std::string& path) {
    auto slash = path.rfind('/');
    return slash == std::string::npos ? "." : path.substr(0, slash);
}

class fault_file final : public file {
public:
    fault_file(std::unique_ptr<file> inner, std::shared_ptr<fault_fs::state> st,
               std::shared_ptr<file_state> fs)
        : _inner(std::move(inner)), _st(std::move(st)), _fs(std::move(fs)) {}

    const std::string& path() const override { return _inner->path(); }
    const shared_fd& fd() const override { return _inner->fd(); }

    void write_at(runtime::reactor& r, uint64_t pos, std::span<const std::byte> data,
                  io_callback done) override {
        ++_st->writes;
        const std::string& p = path();
        if (fault_fs::state::take(_st->fail_write_armed, _st->fail_write, p)) {
            return r.defer([done = std::move(done), e = injected("write", p)] { done(e); });
        }
        bool tear = fault_fs::state::take(_st->tear_armed, _st->tear_write, p);
        auto part = tear ? data.first(std::min(data.size(), _st->tear_prefix)) : data;
        _inner->write_at(r, pos, part,
                         [fs = _fs, pos, part, tear, p, done = std::move(done)](result<void> res) {
                             if (res) fs->unsynced.push_back({pos, {part.begin(), part.end()}});
                             if (res && tear) return done(injected("torn write", p));
                             done(std::move(res));
                         });
    }

    void fdatasync(runtime::reactor& r, io_callback done) override {
        ++_st->fsyncs;
        const std::string& p = path();
        if (fault_fs::state::take(_st->fail_fsync_armed, _st->fail_fsync, p)) {
            return r.defer([done = std::move(done), e = injected("fdatasync", p)] { done(e); });
        }
        _inner->fdatasync(r, [st = _st, fs = _fs, p, done = std::move(done)](result<void> res) {
            if (res) st->snapshot(p, *fs);
            done(std::move(res));
        });
    }

    result<size_t> pread(uint64_t pos, std::span<std::byte> out) override {
        ++_st->reads;
        return _inner->pread(pos, out);
    }
    result<void> write_sync(uint64_t pos, std::span<const std::byte> data) override {
        ++_st->writes;
        if (fault_fs::state::take(_st->fail_write_armed, _st->fail_write, path())) {
            return injected("write", path());
        }
        if (_st->full && !data.empty()) return no_space("write", path());
        auto r = _inner->write_sync(pos, data);
        if (r) _fs->unsynced.push_back({pos, {data.begin(), data.end()}});
        return r;
    }
    result<void> sync() override {
        ++_st->fsyncs;
        if (fault_fs::state::take(_st->fail_fsync_armed, _st->fail_fsync, path())) {
            return injected("fdatasync", path());
        }
        auto r = _inner->sync();
        if (r) _st->snapshot(path(), *_fs);
        return r;
    }
    result<uint64_t> size() override { return _inner->size(); }
    result<void> truncate(uint64_t size) override { return _inner->truncate(size); }
    result<void> allocate(uint64_t pos, uint64_t len) override {
        if (_st->full) return no_space("fallocate", path());
        return _inner->allocate(pos, len);
    }

private:
    std::unique_ptr<file> _inner;
    std::shared_ptr<fault_fs::state> _st;
    std::shared_ptr<file_state> _fs;
};

}  // namespace

fault_fs::fault_fs(file_system& inner) : _inner(inner), _state(std::make_shared<state>()) {
    _state->inner = &inner;
}
fault_fs::~fault_fs() = default;

void fault_fs::fail_next_write(std::string part) {
    _state->fail_write = std::move(part);
    _state->fail_write_armed = true;
}
void fault_fs::fail_next_fsync(std::string part) {
    _state->fail_fsync = std::move(part);
    _state->fail_fsync_armed = true;
}
void fault_fs::tear_next_write(std::string part, size_t prefix) {
    _state->tear_write = std::move(part);
    _state->tear_prefix = prefix;
    _state->tear_armed = true;
}
uint64_t fault_fs::fsyncs() const { return _state->fsyncs; }
uint64_t fault_fs::writes() const { return _state->writes; }
uint64_t fault_fs::reads() const { return _state->reads; }

void fault_fs::set_full(bool full) { _state->full = full; }

result<std::unique_ptr<file>> fault_fs::open(const std::string& path, open_mode mode) {
    bool existed = _inner.exists(path);
    bool creates = mode != open_mode::read_only && mode != open_mode::read_write;
    if (_state->full && !existed && creates) return no_space("open", path);
    auto f = _inner.open(path, mode);
    if (!f) return f.error();
    auto& fs = _state->files[path];
    if (!fs) {
        fs = std::make_shared<file_state>();
        if (existed) {
            _state->snapshot(path, *fs);
            fs->name_durable = true;
        }
    }
    return std::unique_ptr<file>(new fault_file(std::move(*f), _state, fs));
}

result<void> fault_fs::remove(const std::string& path) {
    _state->files.erase(path);
    return _inner.remove(path);
}

result<void> fault_fs::rename(const std::string& from, const std::string& to) {
    // What the target name shows after a power loss until the directory is fsynced: its
    // durable content before the rename (untracked files count as durable), or nothing.
    std::optional<std::vector<std::byte>> replaced;
    if (auto it = _state->files.find(to); it != _state->files.end()) {
        if (it->second->name_durable) replaced = it->second->synced;
    } else if (_inner.exists(to)) {
        if (auto bytes = read_whole_file(_inner, to)) replaced = std::move(*bytes);
    }
    auto r = _inner.rename(from, to);
    if (!r) return r;
    std::shared_ptr<file_state> src;
    if (auto it = _state->files.find(from); it != _state->files.end()) {
        src = it->second;
        _state->files.erase(it);
    } else {
        src = std::make_shared<file_state>();
        _state->snapshot(to, *src);
    }
    src->name_durable = false;
    src->replaced = std::move(replaced);
    _state->files[to] = src;
    return ok();
}

result<std::vector<std::string>> fault_fs::list(const std::string& dir) { return _inner.list(dir); }
result<void> fault_fs::make_dirs(const std::string& dir) { return _inner.make_dirs(dir); }
bool fault_fs::exists(const std::string& path) { return _inner.exists(path); }

result<void> fault_fs::fsync_dir(const std::string& dir) {
    auto r = _inner.fsync_dir(dir);
    if (!r) return r;
    for (auto& [path, fs] : _state->files) {
        if (dir_of(path) == dir) {
            fs->name_durable = true;
            fs->replaced.reset();
        }
    }
    return ok();
}

void fault_fs::lose_power(size_t keep_torn_prefix_bytes) {
    for (auto it = _state->files.begin(); it != _state->files.end();) {
        const std::string& path = it->first;
        file_state& fs = *it->second;
        if (!fs.name_durable && !fs.replaced) {
            (void)_inner.remove(path);
            it = _state->files.erase(it);
            continue;
        }
        std::vector<std::byte> content = fs.name_durable ? fs.synced : *fs.replaced;
        if (fs.name_durable && keep_torn_prefix_bytes > 0 && !fs.unsynced.empty()) {
            const auto& w = fs.unsynced.front();
            size_t n = std::min(keep_torn_prefix_bytes, w.bytes.size());
            if (content.size() < w.pos + n) content.resize(w.pos + n);
            std::copy_n(w.bytes.begin(), n, content.begin() + static_cast<std::ptrdiff_t>(w.pos));
        }
        if (auto f = _inner.open(path, open_mode::truncate)) {
            (void)(*f)->write_sync(0, content);
        }
        fs.synced = std::move(content);
        fs.unsynced.clear();
        fs.name_durable = true;
        fs.replaced.reset();
        ++it;
    }
}

}  // namespace sluice::engine::testing
