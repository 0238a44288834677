#pragma once
// A log-bucketed latency histogram in the style of HdrHistogram: values (any unit; the load
// generator records nanoseconds) fall into buckets whose width grows with the value, so the
// relative error of any reported percentile is at most 1/128 (< 0.8%) over the whole uint64
// range, in a fixed 60 KiB table and with O(1) recording.
//
// Layout: values below 256 have a bucket each. Above that, a value whose highest set bit is
// `msb` is shifted right by `msb - 7`, leaving a mantissa in [128, 256); the bucket index is
// `(msb - 7) * 128 + mantissa`. Each power of two is thus split into 128 equal buckets.
//
// Not thread-safe: one histogram per thread, merged by whoever reports.

#include <cstddef>
#include <cstdint>
#include <vector>

namespace sluice::tools {

class histogram {
  public:
    static constexpr int sub_bucket_bits = 7;
    static constexpr uint64_t sub_bucket_count = uint64_t{1} << sub_bucket_bits;  // 128
    static constexpr size_t bucket_count =
        (64 - sub_bucket_bits - 1) * sub_bucket_count + 2 * sub_bucket_count;

    void record(uint64_t value, uint64_t count = 1);
    void merge(const histogram& other);
    void reset();

    uint64_t count() const { return _count; }
    uint64_t min() const { return _count == 0 ? 0 : _min; }
    uint64_t max() const { return _max; }
    double mean() const;
    // The smallest recorded-equivalent value v such that at least `p` percent of the recorded
    // values are <= v (the bucket's upper end, never above max()). 0 when empty.
    uint64_t percentile(double p) const;

    // Bucket arithmetic, public for tests.
    static size_t index_of(uint64_t value);
    static uint64_t lowest_in(size_t index);
    static uint64_t highest_in(size_t index);

  private:
    std::vector<uint64_t> _counts = std::vector<uint64_t>(bucket_count, 0);
    uint64_t _count = 0;
    uint64_t _min = UINT64_MAX;
    uint64_t _max = 0;
    long double _sum = 0;
};

}  // namespace sluice::tools
