#pragma once
// A file system for tests that wraps real files (so reads still hand out real descriptors) and
// injects the failures a disk can produce (LevelDB's fault_injection_test is the model):
//  - fail the next write or fsync of a chosen file (EIO);
//  - tear the next write of a chosen file: only a prefix reaches the file, then EIO;
//  - a full disk: while set, allocating space, creating a file and synchronous writes (index
//    and checkpoint files) fail with ENOSPC; writes into already allocated segment space still
//    succeed, as they do on a filesystem that honours fallocate;
//  - lose power: every file touched through this file system goes back to the content it had
//    at its last successful fdatasync (files created and never made durable disappear),
//    optionally keeping a torn prefix of the first unsynced write of each file.
//
// Model of durability: data is durable after a successful fdatasync of its file; a file's name
// is durable after fsync_dir of its directory (a rename's target keeps its previous durable
// content until then); removals are durable at once. Files that existed before this file system
// first opened them are taken as durable.
//
// Threading: single-threaded, like the reactor it serves. Destroy files before lose_power.

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "engine/file.h"

namespace sluice::engine::testing {

class fault_fs final : public file_system {
public:
    explicit fault_fs(file_system& inner = posix_file_system::instance());
    ~fault_fs() override;

    // `path_part` selects files whose path contains it ("" matches every file).
    void fail_next_write(std::string path_part);
    void fail_next_fsync(std::string path_part);
    void tear_next_write(std::string path_part, size_t prefix_bytes);
    void lose_power(size_t keep_torn_prefix_bytes = 0);
    void set_full(bool full);

    uint64_t fsyncs() const;
    uint64_t writes() const;
    uint64_t reads() const;  // pread calls

    result<std::unique_ptr<file>> open(const std::string& path, open_mode mode) override;
    result<void> remove(const std::string& path) override;
    result<void> rename(const std::string& from, const std::string& to) override;
    result<std::vector<std::string>> list(const std::string& dir) override;
    result<void> make_dirs(const std::string& dir) override;
    bool exists(const std::string& path) override;
    result<void> fsync_dir(const std::string& dir) override;

    struct state;

private:
    file_system& _inner;
    std::shared_ptr<state> _state;
};

}  // namespace sluice::engine::testing
