#pragma once
// File descriptors with owners. `unique_fd` closes on destruction; `shared_fd` lets a reader (a
// fetch response being sent from a segment file) keep the file open after the engine has closed
// or deleted the segment. A `file_region` names bytes of a file to send without copying them.

#include <unistd.h>

#include <cstdint>
#include <memory>
#include <utility>

namespace sluice {

class unique_fd {
public:
    unique_fd() = default;
    explicit unique_fd(int fd) : _fd(fd) {}
    unique_fd(unique_fd&& o) noexcept : _fd(std::exchange(o._fd, -1)) {}
    unique_fd& operator=(unique_fd&& o) noexcept {
        if (this != &o) {
            reset();
            _fd = std::exchange(o._fd, -1);
        }
        return *this;
    }
    unique_fd(const unique_fd&) = delete;
    unique_fd& operator=(const unique_fd&) = delete;
    ~unique_fd() { reset(); }

    int get() const { return _fd; }
    bool valid() const { return _fd >= 0; }
    int release() { return std::exchange(_fd, -1); }
    void reset(int fd = -1) {
        if (_fd >= 0) ::close(_fd);
        _fd = fd;
    }

private:
    int _fd = -1;
};

using shared_fd = std::shared_ptr<const unique_fd>;

inline shared_fd make_shared_fd(int fd) { return std::make_shared<const unique_fd>(fd); }

struct file_region {
    shared_fd file;       // keeps the descriptor open while the region is in use
    uint64_t offset = 0;  // byte position in the file
    uint32_t length = 0;  // bytes
};

}  // namespace sluice
