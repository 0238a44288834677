#pragma once
// Test helper for the retention, compaction and crash tests: one partition log in a fresh
// directory with its own reactor and a manual clock, and synchronous wrappers (append, roll, read
// everything back) that run the reactor until the operation completes.

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "engine/file.h"
#include "engine/partition_log.h"
#include "model/records.h"
#include "runtime/clock.h"
#include "runtime/reactor.h"

namespace sluice::engine::test {

// "<prefix><n>". (Written out because gcc 12 at -O3 warns, falsely, about
// `"literal" + std::to_string(n)`: -Wrestrict, GCC PR 105651.)
inline std::string numbered(std::string_view prefix, int64_t n) {
    std::string s(prefix);
    s.append(std::to_string(n));
    return s;
}

// A record as read back from the log.
struct stored_record {
    int64_t offset = 0;
    std::optional<std::string> key;
    std::optional<std::string> value;
    int64_t timestamp = 0;
};

// A fresh directory under $TMPDIR (or /tmp), removed with everything in it on destruction.
class temp_dir {
  public:
    temp_dir() {
        const char* base = std::getenv("TMPDIR");
        std::string tmpl = std::string(base != nullptr ? base : "/tmp") + "/sluice-engine-XXXXXX";
        char* p = ::mkdtemp(tmpl.data());
        SLUICE_ASSERT(p != nullptr, "mkdtemp failed");
        _path = p;
    }
    ~temp_dir() {
        std::error_code ec;
        std::filesystem::remove_all(_path, ec);
    }
    const std::string& path() const { return _path; }

  private:
    std::string _path;
};

class log_harness {
  public:
    explicit log_harness(log_config cfg = {}) : _cfg(cfg) {
        auto r = runtime::reactor::create({});
        SLUICE_ASSERT(r.has_value(), "reactor");
        reactor = std::move(*r);
        _cfg.preallocate = false;
    }
    ~log_harness() {
        if (log) close();
    }

    void open() {
        auto l = partition_log::open(*reactor, fs, dir.path(), tp, _cfg, clock);
        ASSERT_TRUE(l.has_value()) << l.error().describe();
        log = std::move(*l);
    }
    void close() {
        bool done = false;
        log->close([&](result<void> r) {
            EXPECT_TRUE(r.has_value()) << r.error().describe();
            done = true;
        });
        reactor->run_until([&] { return done; });
        log.reset();
    }
    void reopen() {
        close();
        open();
    }
    std::string partition_dir() const { return dir.path() + "/" + tp.dir_name(); }

    // Appends one batch and waits for its acknowledgement.
    result<append_result> append(std::vector<std::byte> batch) {
        std::optional<result<append_result>> got;
        log->append(batch, {}, [&](result<append_result> r) { got.emplace(std::move(r)); });
        reactor->run_until([&] { return got.has_value(); });
        return std::move(*got);
    }
    // Appends a batch of records (key, value) all with timestamp `ts_ms`; nullopt is null.
    append_result append_records(
        const std::vector<std::pair<std::optional<std::string>, std::optional<std::string>>>& recs,
        int64_t ts_ms, model::compression codec = model::compression::none) {
        model::batch_options o;
        o.codec = codec;
        model::batch_builder b(o);
        for (const auto& [k, v] : recs) {
            model::nullable_bytes key, value;
            if (k) key = model::bytes_of(*k);
            if (v) value = model::bytes_of(*v);
            b.add(key, value, ts_ms);
        }
        auto bytes = b.build();
        SLUICE_ASSERT(bytes.has_value(), "build");
        auto r = append(std::move(*bytes));
        SLUICE_ASSERT(r.has_value(), r.has_value() ? "" : r.error().describe().c_str());
        return *r;
    }
    // Closes the active segment and waits until it is counted among the closed ones.
    void roll() {
        const size_t before = log->closed_segments().size();
        auto r = log->roll();
        ASSERT_TRUE(r.has_value()) << r.error().describe();
        reactor->run_until([&] { return log->closed_segments().size() > before || log->failed(); });
        ASSERT_FALSE(log->failed());
    }

    // Reads from `start` to the log end and decodes every record.
    std::vector<stored_record> read_from(int64_t start) {
        std::vector<stored_record> out;
        const int64_t end = log->log_end_offset()();
        while (start < end) {
            auto rr = log->read(model::offset(start), 1 << 20, model::offset(end), true);
            EXPECT_TRUE(rr.has_value()) << rr.error().describe();
            if (!rr || rr->regions.empty()) break;
            for (const auto& region : rr->regions) decode_region(region, out);
            start = rr->last_offset() + 1;
        }
        return out;
    }
    std::vector<stored_record> read_all() { return read_from(log->log_start_offset()()); }

    static void decode_region(const file_region& region, std::vector<stored_record>& out) {
        std::vector<std::byte> bytes(region.length);
        ssize_t n = ::pread(region.file->get(), bytes.data(), bytes.size(),
                            static_cast<off_t>(region.offset));
        ASSERT_EQ(n, static_cast<ssize_t>(bytes.size()));
        model::batch_iterator it(bytes);
        model::batch_header h;
        std::span<const std::byte> batch;
        std::vector<std::byte> scratch;
        while (it.next(h, batch)) {
            auto r = model::for_each_record(batch, h, scratch, [&](const model::record_view& rec) {
                stored_record s;
                s.offset = rec.offset(h);
                if (rec.key) s.key = std::string(model::string_of(*rec.key));
                if (rec.value) s.value = std::string(model::string_of(*rec.value));
                s.timestamp = rec.timestamp(h);
                out.push_back(std::move(s));
            });
            ASSERT_TRUE(r.has_value()) << r.error().describe();
        }
        ASSERT_EQ(it.remaining(), 0u);
    }

    temp_dir dir;
    std::unique_ptr<runtime::reactor> reactor;
    runtime::manual_clock clock;
    posix_file_system& fs = posix_file_system::instance();
    model::tp tp{"topic", model::partition_id(0)};
    std::unique_ptr<partition_log> log;

  private:
    log_config _cfg;
};

}  // namespace sluice::engine::test
