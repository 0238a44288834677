#include "tools/histogram.h"

#include <algorithm>
#include <bit>
#include <cmath>

namespace sluice::tools {

size_t histogram::index_of(uint64_t value) {
    if (value < 2 * sub_bucket_count) return static_cast<size_t>(value);
    int msb = 63 - std::countl_zero(value);
    int shift = msb - sub_bucket_bits;
    return static_cast<size_t>(shift) * sub_bucket_count + static_cast<size_t>(value >> shift);
}

uint64_t histogram::lowest_in(size_t index) {
    if (index < 2 * sub_bucket_count) return index;
    uint64_t shift = index / sub_bucket_count - 1;
    uint64_t mantissa = index % sub_bucket_count + sub_bucket_count;
    return mantissa << shift;
}

uint64_t histogram::highest_in(size_t index) {
    if (index < 2 * sub_bucket_count) return index;
    uint64_t shift = index / sub_bucket_count - 1;
    uint64_t mantissa = index % sub_bucket_count + sub_bucket_count;
    // The top bucket's end is UINT64_MAX; computing ((m + 1) << s) - 1 would overflow to it too.
    if (mantissa + 1 == 2 * sub_bucket_count && shift == 64 - sub_bucket_bits - 1) {
        return UINT64_MAX;
    }
    return ((mantissa + 1) << shift) - 1;
}

void histogram::record(uint64_t value, uint64_t count) {
    if (count == 0) return;
    _counts[index_of(value)] += count;
    _count += count;
    _min = std::min(_min, value);
    _max = std::max(_max, value);
    _sum += static_cast<long double>(value) * count;
}

void histogram::merge(const histogram& other) {
    if (other._count == 0) return;
    for (size_t i = 0; i < bucket_count; ++i) _counts[i] += other._counts[i];
    _count += other._count;
    _min = std::min(_min, other._min);
    _max = std::max(_max, other._max);
    _sum += other._sum;
}

void histogram::reset() {
    std::fill(_counts.begin(), _counts.end(), 0);
    _count = 0;
    _min = UINT64_MAX;
    _max = 0;
    _sum = 0;
}

double histogram::mean() const {
    return _count == 0 ? 0.0 : static_cast<double>(_sum / static_cast<long double>(_count));
}

uint64_t histogram::percentile(double p) const {
    if (_count == 0) return 0;
    p = std::clamp(p, 0.0, 100.0);
    auto rank = static_cast<uint64_t>(std::ceil(p / 100.0 * static_cast<double>(_count)));
    rank = std::clamp<uint64_t>(rank, 1, _count);
    uint64_t seen = 0;
    for (size_t i = 0; i < bucket_count; ++i) {
        seen += _counts[i];
        if (seen >= rank) return std::clamp(highest_in(i), min(), _max);
    }
    return _max;
}

}  // namespace sluice::tools
