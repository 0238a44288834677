#include "engine/checkpoint.h"

#include <cstdio>
#include <sstream>

#include "base/crc32c.h"
#include "engine/errc.h"
#include "engine/log_format.h"

namespace sluice::engine {

namespace lf = log_format;

namespace {
std::string body(const partition_checkpoint& cp) {
    std::ostringstream os;
    os << lf::checkpoint_version << "\n"
       << "recovery_point " << cp.recovery_point << "\n"
       << "log_start_offset " << cp.log_start_offset << "\n";
    return os.str();
}
}  // namespace

result<void> write_checkpoint(file_system& fs, const std::string& dir,
                              const partition_checkpoint& cp) {
    std::string text = body(cp);
    char crc[32];
    std::snprintf(crc, sizeof crc, "crc32c %08x\n", crc32c::value(text.data(), text.size()));
    text += crc;
    return replace_file_atomically(fs, dir, std::string(lf::checkpoint_file),
                                   std::as_bytes(std::span(text.data(), text.size())));
}

result<std::optional<partition_checkpoint>> read_checkpoint(file_system& fs,
                                                            const std::string& dir) {
    std::string path = dir + "/" + std::string(lf::checkpoint_file);
    if (!fs.exists(path)) return std::optional<partition_checkpoint>{};
    auto bytes = read_whole_file(fs, path);
    if (!bytes) return bytes.error();
    std::string text(reinterpret_cast<const char*>(bytes->data()), bytes->size());
    auto bad = [&](const char* why) {
        return error(errc::corrupt, path + ": " + why);
    };
    size_t crc_line = text.rfind("crc32c ");
    if (crc_line == std::string::npos) return bad("no checksum line");
    unsigned stored = 0;
    if (std::sscanf(text.c_str() + crc_line, "crc32c %8x", &stored) != 1) return bad("bad checksum line");
    if (crc32c::value(text.data(), crc_line) != stored) return bad("checksum mismatch");
    std::istringstream in(text.substr(0, crc_line));
    int version = 0;
    std::string k1, k2;
    partition_checkpoint cp;
    if (!(in >> version) || version != lf::checkpoint_version) return bad("unknown version");
    if (!(in >> k1 >> cp.recovery_point >> k2 >> cp.log_start_offset) ||
        k1 != "recovery_point" || k2 != "log_start_offset") {
        return bad("unexpected fields");
    }
    return std::optional<partition_checkpoint>(cp);
}

}  // namespace sluice::engine
