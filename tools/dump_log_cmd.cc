// `sluice dump-log FILE|DIR...`: what is on disk, batch by batch, like Kafka's
// kafka-dump-log.sh: segments (.log) with every batch's offsets, timestamps, producer id,
// epoch and sequence, codec, record count, size, position and whether its CRC is right;
// `--records` decodes each record (offset, timestamp, key, value, headers; control records as
// markers); offset and time indexes (.index, .timeindex) entry by entry; other files of a
// partition directory (checkpoints, snapshots) are named with their size. Read only: nothing
// is ever written. `--verify` prints only problems and a summary, exiting 1 if there are any.
//
// Reads are bounded: a segment is read batch by batch, each batch at most
// `max_batch_read_bytes`; a length beyond that or beyond the file is reported as corruption.

#include <sys/stat.h>

#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <vector>

#include "base/bytes.h"
#include "model/record_batch.h"
#include "model/records.h"
#include "tools/commands.h"

namespace sluice::tools {

namespace {

constexpr size_t max_batch_read_bytes = 128u << 20;
constexpr size_t print_bytes_max = 64;  // of a key or value with --records

void usage() {
    std::fprintf(stderr,
                 "usage: sluice dump-log PATH... [--records] [--verify]\n"
                 "  PATH: a segment (.log), an index (.index, .timeindex), or a partition\n"
                 "  directory (every file in it, segments in offset order).\n"
                 "  --records  decode each record: offset, timestamp, key, value, headers\n"
                 "  --verify   print only problems (bad CRC, torn or corrupt batches, offsets\n"
                 "             out of order, index entries out of order) and a summary;\n"
                 "             exit 1 when there are any. Nothing is ever written.\n");
}

struct options {
    bool records = false;
    bool verify = false;
};

struct totals {
    uint64_t files = 0, batches = 0, records = 0, problems = 0;
};

const char* codec_name(model::compression c) {
    switch (c) {
        case model::compression::none: return "none";
        case model::compression::gzip: return "gzip";
        case model::compression::snappy: return "snappy";
        case model::compression::lz4: return "lz4";
        case model::compression::zstd: return "zstd";
    }
    return "unknown";
}

// Printable bytes as they are, anything else as \xNN; long ones cut at print_bytes_max.
std::string show(std::optional<std::span<const std::byte>> b) {
    if (!b) return "null";
    std::string out;
    for (size_t i = 0; i < b->size() && i < print_bytes_max; ++i) {
        auto c = static_cast<unsigned char>((*b)[i]);
        if (c >= 0x20 && c < 0x7f && c != '\\') {
            out += static_cast<char>(c);
        } else {
            char hex[5];
            std::snprintf(hex, sizeof hex, "\\x%02x", c);
            out += hex;
        }
    }
    if (b->size() > print_bytes_max) out += "...(" + std::to_string(b->size()) + " bytes)";
    return out;
}

void problem(const options& o, totals& t, const std::string& path, const std::string& what) {
    ++t.problems;
    std::printf("%s%s: %s\n", o.verify ? "" : "  PROBLEM ", path.c_str(), what.c_str());
}

void print_records(const std::vector<std::byte>& batch, const model::batch_header& h, totals& t,
                   const options& o, const std::string& path) {
    std::vector<std::byte> scratch;
    auto r = model::for_each_record(batch, h, scratch, [&](const model::record_view& rec) {
        ++t.records;
        if (o.verify) return;
        std::printf("  | offset: %" PRId64 " %s: %" PRId64, rec.offset(h),
                    h.log_append_time() ? "LogAppendTime" : "CreateTime", rec.timestamp(h));
        if (h.control()) {
            auto m = model::parse_control_record(rec);
            std::printf(" control: %s", !m ? "unreadable"
                                        : m->type == model::control_type::commit ? "COMMIT"
                                        : m->type == model::control_type::abort ? "ABORT"
                                                                                : "other");
            if (m) std::printf(" coordinatorEpoch: %d", m->coordinator_epoch);
            std::printf("\n");
            return;
        }
        std::printf(" keySize: %d valueSize: %d",
                    rec.key ? static_cast<int>(rec.key->size()) : -1,
                    rec.value ? static_cast<int>(rec.value->size()) : -1);
        if (!rec.headers.empty()) {
            std::printf(" headers: [");
            bool first = true;
            for (const auto& hd : rec.headers) {
                std::printf("%s%s=%s", first ? "" : ", ", show(hd.key).c_str(), show(hd.value).c_str());
                first = false;
            }
            std::printf("]");
        }
        if (o.records) std::printf(" key: %s payload: %s", show(rec.key).c_str(), show(rec.value).c_str());
        std::printf("\n");
    });
    if (!r) problem(o, t, path, "records of the batch at offset " + std::to_string(h.base_offset) + ": " +
                                    r.error().describe());
}

void dump_segment(const std::string& path, const options& o, totals& t) {
    std::ifstream in(path, std::ios::binary);
    if (!in) {
        problem(o, t, path, "cannot open");
        return;
    }
    in.seekg(0, std::ios::end);
    uint64_t file_size = static_cast<uint64_t>(in.tellg());
    in.seekg(0);
    if (!o.verify) std::printf("Dumping %s (%" PRIu64 " bytes)\n", path.c_str(), file_size);
    uint64_t pos = 0;
    int64_t next_expected = -1;
    std::vector<std::byte> batch;
    while (pos + model::batch_format::header_size <= file_size) {
        batch.resize(model::batch_format::header_size);
        in.seekg(static_cast<std::streamoff>(pos));
        in.read(reinterpret_cast<char*>(batch.data()), static_cast<std::streamsize>(batch.size()));
        int32_t length = static_cast<int32_t>(bytes::load_be32(batch.data() + 8));
        if (length == 0) {
            // Preallocated, never written: the end of data (docs/formats/segment.md).
            if (!o.verify) std::printf("end of data at position %" PRIu64 " (%" PRIu64 " bytes preallocated)\n",
                                       pos, file_size - pos);
            return;
        }
        auto h = model::parse_header(batch);
        if (!h) {
            problem(o, t, path, "position " + std::to_string(pos) + ": " + h.error().describe());
            return;
        }
        size_t size = h->size_bytes();
        if (size > max_batch_read_bytes || pos + size > file_size) {
            problem(o, t, path, "position " + std::to_string(pos) + ": batch of " + std::to_string(size) +
                                    " bytes runs past the end of the file (torn write?)");
            return;
        }
        batch.resize(size);
        in.seekg(static_cast<std::streamoff>(pos));
        in.read(reinterpret_cast<char*>(batch.data()), static_cast<std::streamsize>(size));
        bool crc_ok = model::compute_crc(batch) == h->crc;
        ++t.batches;
        if (!o.verify) {
            std::printf("baseOffset: %" PRId64 " lastOffset: %" PRId64 " count: %d baseSequence: %d "
                        "lastSequence: %d producerId: %" PRId64 " producerEpoch: %d "
                        "partitionLeaderEpoch: %d isTransactional: %s isControl: %s position: %" PRIu64
                        " %s: %" PRId64 " size: %zu magic: %d compresscodec: %s crc: %u isvalid: %s\n",
                        h->base_offset, h->last_offset(), h->record_count, h->base_sequence,
                        h->base_sequence < 0 ? -1 : h->base_sequence + h->last_offset_delta, h->producer_id,
                        h->producer_epoch, h->partition_leader_epoch, h->transactional() ? "true" : "false",
                        h->control() ? "true" : "false", pos,
                        h->log_append_time() ? "LogAppendTime" : "CreateTime", h->max_timestamp, size,
                        h->magic, codec_name(h->codec()), h->crc, crc_ok ? "true" : "false");
        }
        if (!crc_ok) {
            problem(o, t, path, "batch at offset " + std::to_string(h->base_offset) + " (position " +
                                    std::to_string(pos) + ") fails its CRC");
        } else if (o.records || o.verify) {
            print_records(batch, *h, t, o, path);
        } else {
            t.records += static_cast<uint64_t>(std::max(h->record_count, 0));
        }
        if (next_expected >= 0 && h->base_offset < next_expected) {
            problem(o, t, path, "batch at offset " + std::to_string(h->base_offset) +
                                    " overlaps the previous batch (ends at " + std::to_string(next_expected - 1) + ")");
        }
        next_expected = h->last_offset() + 1;
        pos += size;
    }
    if (pos < file_size) {
        problem(o, t, path, std::to_string(file_size - pos) + " bytes at position " + std::to_string(pos) +
                                " are too short for a batch header (torn write?)");
    } else if (!o.verify) {
        std::printf("end of file at position %" PRIu64 "\n", pos);
    }
}

void dump_index(const std::string& path, bool time_index, const options& o, totals& t) {
    std::ifstream in(path, std::ios::binary);
    if (!in) {
        problem(o, t, path, "cannot open");
        return;
    }
    std::vector<char> data((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    int64_t base = 0;
    std::string name = std::filesystem::path(path).filename().string();
    try {
        base = std::stoll(name.substr(0, name.find('.')));
    } catch (...) {
        base = 0;
    }
    size_t entry = time_index ? 12 : 8;
    if (!o.verify) std::printf("Dumping %s (%zu entries)\n", path.c_str(), data.size() / entry);
    if (data.size() % entry != 0) {
        problem(o, t, path, "size " + std::to_string(data.size()) + " is not a multiple of " + std::to_string(entry));
    }
    int64_t last_a = INT64_MIN, last_b = INT64_MIN;
    for (size_t at = 0; at + entry <= data.size(); at += entry) {
        const auto* p = reinterpret_cast<const std::byte*>(data.data() + at);
        int64_t a, b;
        if (time_index) {
            a = static_cast<int64_t>(bytes::load_be64(p));
            b = base + static_cast<int32_t>(bytes::load_be32(p + 8));
            if (!o.verify) std::printf("timestamp: %" PRId64 " offset: %" PRId64 "\n", a, b);
        } else {
            a = base + static_cast<int32_t>(bytes::load_be32(p));
            b = static_cast<int32_t>(bytes::load_be32(p + 4));
            if (!o.verify) std::printf("offset: %" PRId64 " position: %" PRId64 "\n", a, b);
        }
        if (a < last_a || (!time_index && b <= last_b && last_b != INT64_MIN)) {
            problem(o, t, path, "entry " + std::to_string(at / entry) + " goes backwards");
        }
        last_a = a;
        last_b = b;
    }
}

void dump_path(const std::string& path, const options& o, totals& t) {
    std::error_code ec;
    if (std::filesystem::is_directory(path, ec)) {
        std::vector<std::filesystem::path> files;
        for (const auto& e : std::filesystem::directory_iterator(path, ec)) {
            if (e.is_regular_file()) files.push_back(e.path());
        }
        std::sort(files.begin(), files.end());
        for (const auto& f : files) dump_path(f.string(), o, t);
        return;
    }
    ++t.files;
    std::string ext = std::filesystem::path(path).extension().string();
    if (ext == ".log") {
        dump_segment(path, o, t);
    } else if (ext == ".index") {
        dump_index(path, false, o, t);
    } else if (ext == ".timeindex") {
        dump_index(path, true, o, t);
    } else if (!o.verify) {
        std::printf("Skipping %s (%ju bytes): not a segment or an index\n", path.c_str(),
                    static_cast<uintmax_t>(std::filesystem::file_size(path, ec)));
    }
}

}  // namespace

int dump_log_main(int argc, char** argv) {
    auto a = args::parse(argc, argv, {{"records", false}, {"verify", false}, {"help", false}});
    if (!a) {
        usage();
        return report("dump-log", a.error());
    }
    if (a->has("help") || a->positional().empty()) {
        usage();
        return a->has("help") ? exit_ok : exit_usage;
    }
    options o{a->has("records"), a->has("verify")};
    totals t;
    for (const auto& p : a->positional()) {
        std::error_code ec;
        if (!std::filesystem::exists(p, ec)) {
            std::fprintf(stderr, "sluice dump-log: %s does not exist\n", p.c_str());
            return exit_failed;
        }
        dump_path(p, o, t);
    }
    if (o.verify) {
        std::printf("verified %" PRIu64 " file(s), %" PRIu64 " batch(es), %" PRIu64 " record(s): %" PRIu64
                    " problem(s)\n", t.files, t.batches, t.records, t.problems);
    }
    return t.problems == 0 ? exit_ok : exit_failed;
}

}  // namespace sluice::tools
