#pragma once
// The per-partition checkpoint (docs/formats/checkpoint.md): the recovery point and the log
// start offset, replaced atomically (tmp + fsync + rename + fsync dir). Private to the engine.

#include <cstdint>
#include <optional>
#include <string>

#include "base/result.h"
#include "engine/file.h"

namespace sluice::engine {

struct partition_checkpoint {
    int64_t recovery_point = 0;
    int64_t log_start_offset = 0;
};

// nullopt when there is no checkpoint file; errc::corrupt when it does not parse or its
// checksum does not match.
result<std::optional<partition_checkpoint>> read_checkpoint(file_system& fs, const std::string& dir);
result<void> write_checkpoint(file_system& fs, const std::string& dir, const partition_checkpoint& cp);

}  // namespace sluice::engine
