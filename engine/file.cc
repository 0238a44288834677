#include "engine/file.h"

#include <dirent.h>
#include <fcntl.h>
#include <liburing.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "engine/errc.h"
#include "runtime/reactor.h"

namespace sluice::engine {

namespace {

error io_err(int err, const std::string& what, const std::string& path) {
    // A full filesystem is its own kind of failure: the partition refuses appends until space
    // returns instead of stopping.
    errc kind = err == ENOSPC || err == EDQUOT ? errc::no_space : errc::io_error;
    return error(kind, what + " " + path + ": " + std::strerror(err));
}

class posix_file final : public file {
public:
    posix_file(std::string path, int fd) : _path(std::move(path)), _fd(make_shared_fd(fd)) {}

    const std::string& path() const override { return _path; }
    const shared_fd& fd() const override { return _fd; }

    void write_at(runtime::reactor& r, uint64_t pos, std::span<const std::byte> data,
                  io_callback done) override {
        auto o = std::make_shared<write_op>();
        o->fd = _fd;
        o->path = _path;
        o->pos = pos;
        o->data = data;
        o->cb = std::move(done);
        o->r = &r;
        submit_write(std::move(o));
    }

    void fdatasync(runtime::reactor& r, io_callback done) override {
        io_uring_sqe* sqe = r.get_sqe();
        io_uring_prep_fsync(sqe, _fd->get(), IORING_FSYNC_DATASYNC);
        r.submit(sqe, [fd = _fd, path = _path, done = std::move(done)](int res) {
            if (res < 0) return done(io_err(-res, "fdatasync", path));
            done(ok());
        });
    }

    result<size_t> pread(uint64_t pos, std::span<std::byte> out) override {
        size_t got = 0;
        while (got < out.size()) {
            ssize_t n = ::pread(_fd->get(), out.data() + got, out.size() - got,
                                static_cast<off_t>(pos + got));
            if (n < 0) {
                if (errno == EINTR) continue;
                return io_err(errno, "pread", _path);
            }
            if (n == 0) break;
            got += static_cast<size_t>(n);
        }
        return got;
    }

    result<void> write_sync(uint64_t pos, std::span<const std::byte> data) override {
        size_t put = 0;
        while (put < data.size()) {
            ssize_t n = ::pwrite(_fd->get(), data.data() + put, data.size() - put,
                                 static_cast<off_t>(pos + put));
            if (n < 0) {
                if (errno == EINTR) continue;
                return io_err(errno, "pwrite", _path);
            }
            if (n == 0) return io_err(EIO, "pwrite (no progress)", _path);
            put += static_cast<size_t>(n);
        }
        return ok();
    }

    result<void> sync() override {
        if (::fdatasync(_fd->get()) != 0) return io_err(errno, "fdatasync", _path);
        return ok();
    }

    result<uint64_t> size() override {
        struct stat st {};
        if (::fstat(_fd->get(), &st) != 0) return io_err(errno, "fstat", _path);
        return static_cast<uint64_t>(st.st_size);
    }

    result<void> truncate(uint64_t size) override {
        if (::ftruncate(_fd->get(), static_cast<off_t>(size)) != 0) {
            return io_err(errno, "ftruncate", _path);
        }
        return ok();
    }

    result<void> allocate(uint64_t pos, uint64_t len) override {
        if (::fallocate(_fd->get(), 0, static_cast<off_t>(pos), static_cast<off_t>(len)) != 0) {
            if (errno == EOPNOTSUPP || errno == ENOSYS) return ok();  // tmpfs and friends
            return io_err(errno, "fallocate", _path);
        }
        return ok();
    }

private:
    struct write_op {
        shared_fd fd;
        std::string path;
        uint64_t pos = 0;
        std::span<const std::byte> data;
        size_t done_bytes = 0;
        io_callback cb;
        runtime::reactor* r = nullptr;
    };

    static void submit_write(std::shared_ptr<write_op> o) {
        io_uring_sqe* sqe = o->r->get_sqe();
        io_uring_prep_write(sqe, o->fd->get(), o->data.data() + o->done_bytes,
                            static_cast<unsigned>(o->data.size() - o->done_bytes),
                            o->pos + o->done_bytes);
        runtime::reactor* r = o->r;
        r->submit(sqe, [o = std::move(o)](int res) mutable {
            if (res < 0) return o->cb(io_err(-res, "write", o->path));
            if (res == 0) return o->cb(io_err(EIO, "write (no progress)", o->path));
            o->done_bytes += static_cast<size_t>(res);
            if (o->done_bytes < o->data.size()) return submit_write(std::move(o));
            o->cb(ok());
        });
    }

    std::string _path;
    shared_fd _fd;
};

}  // namespace

result<std::unique_ptr<file>> posix_file_system::open(const std::string& path, open_mode mode) {
    int flags = O_CLOEXEC;
    switch (mode) {
        case open_mode::read_only: flags |= O_RDONLY; break;
        case open_mode::read_write: flags |= O_RDWR; break;
        case open_mode::create: flags |= O_RDWR | O_CREAT; break;
        case open_mode::create_exclusive: flags |= O_RDWR | O_CREAT | O_EXCL; break;
        case open_mode::truncate: flags |= O_RDWR | O_CREAT | O_TRUNC; break;
    }
    int fd = ::open(path.c_str(), flags, 0644);
    if (fd < 0) return io_err(errno, "open", path);
    return std::unique_ptr<file>(new posix_file(path, fd));
}

result<void> posix_file_system::remove(const std::string& path) {
    if (::unlink(path.c_str()) != 0 && errno != ENOENT) return io_err(errno, "unlink", path);
    return ok();
}

result<void> posix_file_system::rename(const std::string& from, const std::string& to) {
    if (::rename(from.c_str(), to.c_str()) != 0) return io_err(errno, "rename to " + to, from);
    return ok();
}

result<std::vector<std::string>> posix_file_system::list(const std::string& dir) {
    DIR* d = ::opendir(dir.c_str());
    if (d == nullptr) return io_err(errno, "opendir", dir);
    std::vector<std::string> names;
    while (dirent* e = ::readdir(d)) {
        std::string n = e->d_name;
        if (n != "." && n != "..") names.push_back(std::move(n));
    }
    ::closedir(d);
    return names;
}

result<void> posix_file_system::make_dirs(const std::string& dir) {
    for (size_t i = 1; i <= dir.size(); ++i) {
        if (i != dir.size() && dir[i] != '/') continue;
        std::string part = dir.substr(0, i);
        if (::mkdir(part.c_str(), 0755) != 0 && errno != EEXIST) {
            return io_err(errno, "mkdir", part);
        }
    }
    return ok();
}

bool posix_file_system::exists(const std::string& path) {
    struct stat st {};
    return ::stat(path.c_str(), &st) == 0;
}

result<void> posix_file_system::fsync_dir(const std::string& dir) {
    int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return io_err(errno, "open dir", dir);
    unique_fd owner(fd);
    if (::fsync(fd) != 0) return io_err(errno, "fsync dir", dir);
    return ok();
}

posix_file_system& posix_file_system::instance() {
    static posix_file_system fs;
    return fs;
}

result<std::vector<std::byte>> read_whole_file(file_system& fs, const std::string& path) {
    auto f = fs.open(path, open_mode::read_only);
    if (!f) return f.error();
    auto sz = (*f)->size();
    if (!sz) return sz.error();
    std::vector<std::byte> out(*sz);
    auto n = (*f)->pread(0, out);
    if (!n) return n.error();
    out.resize(*n);
    return out;
}

result<void> replace_file_atomically(file_system& fs, const std::string& dir,
                                     const std::string& name, std::span<const std::byte> data) {
    std::string final_path = dir + "/" + name;
    std::string tmp_path = final_path + ".tmp";
    {
        auto f = fs.open(tmp_path, open_mode::truncate);
        if (!f) return f.error();
        auto written = (*f)->write_sync(0, data);
        if (written) written = (*f)->sync();
        if (!written) {
            // A half-written temporary file (a full disk, most often) must not hold the space.
            f->reset();
            (void)fs.remove(tmp_path);
            return written;
        }
    }
    if (auto r = fs.rename(tmp_path, final_path); !r) return r;
    return fs.fsync_dir(dir);
}

}  // namespace sluice::engine
