#pragma once
// Shared helpers of the engine's unit tests: a temporary directory, a reactor, a manual clock,
// a fault-injecting file system, batches built with model::batch_builder, and synchronous
// wrappers that run the reactor until an operation calls back.

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "engine/partition_log.h"
#include "engine/testing/fault_fs.h"
#include "model/records.h"
#include "runtime/clock.h"
#include "runtime/reactor.h"

namespace sluice::engine::test {

struct record_out {
    int64_t offset;
    std::string value;
    int64_t timestamp;
};

class engine_fixture : public ::testing::Test {
protected:
    engine_fixture() {
        const char* base = std::getenv("TMPDIR");
        std::string tmpl = std::string(base ? base : "/tmp") + "/sluice-engine-test-XXXXXX";
        _root = ::mkdtemp(tmpl.data());
        reactor = runtime::reactor::create({}).value();
        cfg.segment_bytes = 16 * 1024;
        cfg.index_interval_bytes = 512;
    }
    ~engine_fixture() override {
        log.reset();
        reactor.reset();
        std::error_code ec;
        std::filesystem::remove_all(_root, ec);
    }

    std::string pdir() const { return _root + "/" + tp.dir_name(); }
    std::string seg_path(int64_t base, const char* suffix) const {
        char name[64];
        std::snprintf(name, sizeof name, "/%020lld%s", static_cast<long long>(base), suffix);
        return pdir() + name;
    }

    void open() {
        auto l = partition_log::open(*reactor, fs, _root, tp, cfg, clock);
        ASSERT_TRUE(l.has_value()) << l.error().describe();
        log = std::move(*l);
    }
    result<void> close() {
        std::optional<result<void>> out;
        log->close([&](result<void> r) { out = std::move(r); });
        reactor->run_until([&] { return out.has_value(); });
        log.reset();
        return *out;
    }
    // kill -9 as far as the disk is concerned: no close, page cache kept.
    void crash() {
        log.reset();
        for (int i = 0; i < 5; ++i) reactor->run_once(std::chrono::milliseconds(1));
    }

    // One batch of `n` records "<prefix><i>" with timestamps ts, ts+1, ...
    std::vector<std::byte> batch(int n, int64_t ts = 1000, const std::string& prefix = "v",
                                 model::compression codec = model::compression::none) {
        model::batch_options o;
        o.codec = codec;
        model::batch_builder b(o);
        std::vector<std::string> vals;
        for (int i = 0; i < n; ++i) vals.push_back(prefix + std::to_string(i));
        for (int i = 0; i < n; ++i) b.add(std::nullopt, model::bytes_of(vals[i]), ts + i);
        return *b.build();
    }

    result<append_result> append(std::vector<std::byte> bytes, append_options o = {}) {
        std::optional<result<append_result>> out;
        log->append(bytes, o, [&](result<append_result> r) { out = std::move(r); });
        reactor->run_until([&] { return out.has_value(); });
        return *out;
    }
    void append_async(std::vector<std::byte> bytes, append_callback cb) {
        log->append(bytes, {}, std::move(cb));
    }
    result<void> flush() {
        std::optional<result<void>> out;
        log->flush([&](result<void> r) { out = std::move(r); });
        reactor->run_until([&] { return out.has_value(); });
        return *out;
    }
    result<void> truncate(int64_t o) {
        std::optional<result<void>> out;
        log->truncate_to(model::offset(o), [&](result<void> r) { out = std::move(r); });
        reactor->run_until([&] { return out.has_value(); });
        return *out;
    }

    // Bytes of a read result, fetched from its file regions.
    static std::vector<std::byte> region_bytes(const read_result& rr) {
        std::vector<std::byte> out;
        for (const auto& reg : rr.regions) {
            size_t at = out.size();
            out.resize(at + reg.length);
            ssize_t n = ::pread(reg.file->get(), out.data() + at, reg.length, static_cast<off_t>(reg.offset));
            EXPECT_EQ(n, static_cast<ssize_t>(reg.length));
        }
        return out;
    }
    static std::vector<record_out> records_of(std::span<const std::byte> bytes) {
        std::vector<record_out> out;
        model::batch_iterator it(bytes);
        model::batch_header h;
        std::span<const std::byte> b;
        std::vector<std::byte> scratch;
        while (it.next(h, b)) {
            EXPECT_TRUE(model::validate(b, {64u << 20}).has_value());
            auto r = model::for_each_record(b, h, scratch, [&](const model::record_view& rec) {
                out.push_back({rec.offset(h), std::string(model::string_of(*rec.value)), rec.timestamp(h)});
            });
            EXPECT_TRUE(r.has_value());
        }
        return out;
    }
    std::vector<record_out> read_all(int64_t from = -1) {
        if (from < 0) from = log->log_start_offset()();
        auto rr = log->read(model::offset(from), 1u << 30, model::offset(INT64_MAX), true);
        EXPECT_TRUE(rr.has_value()) << rr.error().describe();
        if (!rr) return {};
        return records_of(region_bytes(*rr));
    }

    std::string _root;
    std::unique_ptr<runtime::reactor> reactor;
    runtime::manual_clock clock;
    testing::fault_fs fs;
    log_config cfg;
    model::tp tp{"topic", model::partition_id(3)};
    std::unique_ptr<partition_log> log;
};

}  // namespace sluice::engine::test
