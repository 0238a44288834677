#pragma once
// The one interface through which the engine touches files. Production uses
// `posix_file_system` (io_uring for data writes and fdatasync, plain syscalls for metadata and
// start-up reads); tests substitute `testing::fault_fs`, which wraps real files and injects
// failures, torn writes and power loss. Every file has a real descriptor because reads hand
// out `file_region`s that the network layer sends straight from the file.
//
// Threading: a `file` is used by the reactor thread that owns its partition. Async operations
// complete on that reactor (the callback runs from a completion, never inside the call).
// The object passed to write_at must stay valid (its bytes unchanged) until the callback runs;
// a `file` may be destroyed with operations in flight (the descriptor stays open until they end).

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "base/fd.h"
#include "base/result.h"

namespace sluice::runtime {
class reactor;
}

namespace sluice::engine {

using io_callback = std::function<void(result<void>)>;

enum class open_mode {
    read_only,
    read_write,         // must exist
    create,             // read-write, created if missing
    create_exclusive,   // read-write, fails if it exists
    truncate,           // read-write, created if missing, emptied
};

class file {
public:
    virtual ~file() = default;
    virtual const std::string& path() const = 0;
    // The descriptor, shared so a file_region can outlive this object.
    virtual const shared_fd& fd() const = 0;

    // Asynchronous, through the reactor's ring. Writes all of `data` at `pos` (short writes are
    // continued). Errors name the file.
    virtual void write_at(runtime::reactor& r, uint64_t pos, std::span<const std::byte> data,
                          io_callback done) = 0;
    virtual void fdatasync(runtime::reactor& r, io_callback done) = 0;

    // Synchronous: start-up recovery, index scans, control paths. pread returns the bytes read
    // (fewer than asked only at end of file).
    virtual result<size_t> pread(uint64_t pos, std::span<std::byte> out) = 0;
    virtual result<void> write_sync(uint64_t pos, std::span<const std::byte> data) = 0;
    virtual result<void> sync() = 0;
    virtual result<uint64_t> size() = 0;
    virtual result<void> truncate(uint64_t size) = 0;
    // Reserves [pos, pos+len) and extends the file size to cover it (zero-filled).
    // Returns errc-free success if the file system cannot preallocate (nothing to do then).
    virtual result<void> allocate(uint64_t pos, uint64_t len) = 0;
};

class file_system {
public:
    virtual ~file_system() = default;
    virtual result<std::unique_ptr<file>> open(const std::string& path, open_mode mode) = 0;
    virtual result<void> remove(const std::string& path) = 0;
    // Atomically replaces `to` with `from` (rename(2)); call fsync_dir afterwards.
    virtual result<void> rename(const std::string& from, const std::string& to) = 0;
    // File names (not paths) in `dir`, without "." and "..".
    virtual result<std::vector<std::string>> list(const std::string& dir) = 0;
    virtual result<void> make_dirs(const std::string& dir) = 0;
    virtual bool exists(const std::string& path) = 0;
    // Makes creations, renames and removals in `dir` durable.
    virtual result<void> fsync_dir(const std::string& dir) = 0;
};

// Real files: data writes and fdatasync go through io_uring; everything else is a syscall.
// Stateless, so one instance may serve every core.
class posix_file_system final : public file_system {
public:
    result<std::unique_ptr<file>> open(const std::string& path, open_mode mode) override;
    result<void> remove(const std::string& path) override;
    result<void> rename(const std::string& from, const std::string& to) override;
    result<std::vector<std::string>> list(const std::string& dir) override;
    result<void> make_dirs(const std::string& dir) override;
    bool exists(const std::string& path) override;
    result<void> fsync_dir(const std::string& dir) override;

    static posix_file_system& instance();
};

// Helpers over any file_system.
// Reads a whole (small) file.
result<std::vector<std::byte>> read_whole_file(file_system& fs, const std::string& path);
// Writes `data` to `path` atomically: write path.tmp, fsync it, rename over path, fsync the
// directory. Synchronous (control paths only: checkpoints).
result<void> replace_file_atomically(file_system& fs, const std::string& dir,
                                     const std::string& name, std::span<const std::byte> data);

}  // namespace sluice::engine
