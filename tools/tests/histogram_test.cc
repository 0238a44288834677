#include "tools/histogram.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>

namespace sluice::tools {
namespace {

// Every reported percentile is within the histogram's bucket precision (1/128) of the truth.
void expect_close(uint64_t got, double want) {
    EXPECT_LE(std::abs(static_cast<double>(got) - want), want / 128 + 1)
        << "got " << got << ", want " << want;
}

TEST(histogram, empty_reports_zeros) {
    histogram h;
    EXPECT_EQ(h.count(), 0u);
    EXPECT_EQ(h.percentile(50), 0u);
    EXPECT_EQ(h.max(), 0u);
    EXPECT_EQ(h.min(), 0u);
    EXPECT_EQ(h.mean(), 0.0);
}

TEST(histogram, buckets_cover_every_value_once_and_in_order) {
    uint64_t prev_high = 0;
    for (size_t i = 0; i < histogram::bucket_count; ++i) {
        uint64_t lo = histogram::lowest_in(i);
        uint64_t hi = histogram::highest_in(i);
        ASSERT_LE(lo, hi) << i;
        if (i > 0) {
            ASSERT_EQ(lo, prev_high + 1) << i;
        }
        ASSERT_EQ(histogram::index_of(lo), i);
        ASSERT_EQ(histogram::index_of(hi), i);
        prev_high = hi;
    }
    EXPECT_EQ(prev_high, UINT64_MAX);
    EXPECT_EQ(histogram::index_of(UINT64_MAX), histogram::bucket_count - 1);
}

TEST(histogram, bucket_width_is_within_one_128th_of_its_values) {
    for (size_t i = 256; i < histogram::bucket_count; i += 97) {
        double lo = static_cast<double>(histogram::lowest_in(i));
        double width = static_cast<double>(histogram::highest_in(i)) - lo + 1;
        EXPECT_LE(width / lo, 1.0 / 128 + 1e-12) << i;
    }
}

TEST(histogram, small_values_are_exact) {
    histogram h;
    for (uint64_t v = 0; v < 200; ++v) h.record(v);
    EXPECT_EQ(h.percentile(50), 99u);
    EXPECT_EQ(h.percentile(100), 199u);
    EXPECT_EQ(h.min(), 0u);
    EXPECT_EQ(h.max(), 199u);
    EXPECT_DOUBLE_EQ(h.mean(), 99.5);
}

TEST(histogram, uniform_distribution_percentiles) {
    histogram h;
    for (uint64_t v = 1; v <= 1000000; ++v) h.record(v);
    expect_close(h.percentile(50), 500000);
    expect_close(h.percentile(90), 900000);
    expect_close(h.percentile(99), 990000);
    expect_close(h.percentile(99.9), 999000);
    EXPECT_EQ(h.percentile(100), 1000000u);
    EXPECT_EQ(h.max(), 1000000u);
    EXPECT_NEAR(h.mean(), 500000.5, 1e-6);
}

TEST(histogram, constant_value) {
    histogram h;
    h.record(123456789, 1000);
    EXPECT_EQ(h.count(), 1000u);
    // Never above the largest recorded value, never below the smallest.
    EXPECT_EQ(h.percentile(0), 123456789u);
    EXPECT_EQ(h.percentile(50), 123456789u);
    EXPECT_EQ(h.percentile(99.99), 123456789u);
}

TEST(histogram, exponential_distribution_percentiles) {
    // Latency-like: exponential with mean 1 ms (in ns). Quantile q is -mean * ln(1 - q).
    std::mt19937_64 rng(42);
    std::exponential_distribution<double> d(1.0 / 1e6);
    histogram h;
    const int n = 2000000;
    std::vector<uint64_t> values;
    values.reserve(n);
    for (int i = 0; i < n; ++i) {
        auto v = static_cast<uint64_t>(d(rng));
        values.push_back(v);
        h.record(v);
    }
    std::sort(values.begin(), values.end());
    for (double p : {50.0, 99.0, 99.9}) {
        auto exact = values[static_cast<size_t>(std::ceil(p / 100 * n)) - 1];
        expect_close(h.percentile(p), static_cast<double>(exact));
    }
    EXPECT_EQ(h.max(), values.back());
}

TEST(histogram, bimodal_tail) {
    // 99% fast (100 us), 1% slow (50 ms): p99 is still fast, p99.9 is slow.
    histogram h;
    h.record(100000, 9900);
    h.record(50000000, 100);
    expect_close(h.percentile(50), 100000);
    expect_close(h.percentile(99), 100000);
    expect_close(h.percentile(99.5), 50000000);
    expect_close(h.percentile(99.9), 50000000);
}

TEST(histogram, merge_equals_recording_together) {
    histogram a, b, all;
    for (uint64_t v = 1; v <= 5000; ++v) {
        (v % 3 == 0 ? a : b).record(v * 1000);
        all.record(v * 1000);
    }
    a.merge(b);
    EXPECT_EQ(a.count(), all.count());
    for (double p : {1.0, 50.0, 99.0, 99.9, 100.0}) EXPECT_EQ(a.percentile(p), all.percentile(p));
    EXPECT_EQ(a.min(), all.min());
    EXPECT_EQ(a.max(), all.max());
    a.reset();
    EXPECT_EQ(a.count(), 0u);
    EXPECT_EQ(a.percentile(50), 0u);
}

}  // namespace
}  // namespace sluice::tools
