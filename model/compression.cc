#include "model/compression.h"

#include <lz4frame.h>
#include <snappy.h>
#include <zlib.h>
#include <zstd.h>
#include <zstd_errors.h>

#include <algorithm>
#include <climits>
#include <cstring>
#include <string>

#include "base/bytes.h"

namespace sluice::model {

namespace {

const uint8_t* u8(const std::byte* p) {
    return reinterpret_cast<const uint8_t*>(p);
}
uint8_t* u8(std::byte* p) {
    return reinterpret_cast<uint8_t*>(p);
}

// First output chunk when the input gives no better guess; later chunks double.
constexpr size_t first_chunk_bytes = 16 * 1024;

// Output that grows on demand inside `out` but never past `max_bytes` + 1 bytes from where it
// started: reaching that extra byte proves the payload is larger than allowed. Owned by one
// decompress call; on failure the destructor cuts `out` back to its size on entry.
class bounded_sink {
  public:
    bounded_sink(std::vector<std::byte>& out, size_t max_bytes, size_t input_bytes)
        : _out(out), _start(out.size()), _used(out.size()), _max(max_bytes) {
        size_t room = out.max_size() - _start;
        _cap_end = _start + (max_bytes < room ? max_bytes + 1 : room);
        _next_chunk = std::max(first_chunk_bytes, input_bytes * 4);
    }
    ~bounded_sink() { _out.resize(_done ? _used : _start); }
    bounded_sink(const bounded_sink&) = delete;
    bounded_sink& operator=(const bounded_sink&) = delete;

    // Free space to decode into; empty once the limit (plus one byte) has been filled.
    std::span<std::byte> window() {
        if (_used == _out.size()) {
            if (!grow_to(std::min(_cap_end, _out.size() + _next_chunk))) return {};
            _next_chunk = std::min(_next_chunk * 2, size_t{8} << 20);
        }
        return {_out.data() + _used, _out.size() - _used};
    }
    // Exactly `n` bytes of space, or an empty span when that would pass the limit.
    std::span<std::byte> take(size_t n) {
        if (over_limit() || n > _max - produced()) return {};
        if (_used + n > _out.size() && !grow_to(_used + n)) return {};
        auto s = std::span<std::byte>(_out.data() + _used, n);
        _used += n;
        return s;
    }
    void commit(size_t n) { _used += n; }
    size_t produced() const { return _used - _start; }
    bool over_limit() const { return produced() > _max; }
    result<void> finish() {
        if (over_limit()) return too_large();
        _done = true;
        return ok();
    }
    error too_large() const {
        return error(errc::too_large,
                     "decompressed payload over " + std::to_string(_max) + " bytes");
    }

  private:
    bool grow_to(size_t size) {
        if (size <= _out.size()) return size > _used;
        // Reserve geometrically ourselves so the vector never over-allocates past the cap.
        if (size > _out.capacity()) {
            _out.reserve(std::min(_cap_end, std::max(size, _out.capacity() + _out.capacity() / 2)));
        }
        _out.resize(size);
        return true;
    }

    std::vector<std::byte>& _out;
    size_t _start;
    size_t _used;
    size_t _max;
    size_t _cap_end;
    size_t _next_chunk;
    bool _done = false;
};

error failed(const char* codec, const std::string& why) {
    return error(errc::compression_failed, std::string(codec) + ": " + why);
}

// ---- gzip ----------------------------------------------------------------------------------

result<void> gzip_compress(std::span<const std::byte> in, std::vector<std::byte>& out, int level) {
    if (in.size() > UINT_MAX) return errc::too_large;
    z_stream zs{};
    if (deflateInit2(&zs, level == 0 ? Z_DEFAULT_COMPRESSION : std::clamp(level, 1, 9), Z_DEFLATED,
                     15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
        return failed("gzip", "deflateInit2");
    }
    size_t start = out.size();
    size_t bound = deflateBound(&zs, static_cast<uLong>(in.size()));
    out.resize(start + bound);
    zs.next_in = const_cast<Bytef*>(u8(in.data()));
    zs.avail_in = static_cast<uInt>(in.size());
    zs.next_out = u8(out.data() + start);
    zs.avail_out = static_cast<uInt>(bound);
    int rc = deflate(&zs, Z_FINISH);
    out.resize(start + zs.total_out);
    deflateEnd(&zs);
    if (rc != Z_STREAM_END) {
        out.resize(start);
        return failed("gzip", "deflate did not finish");
    }
    return ok();
}

result<void> gzip_decompress(std::span<const std::byte> in, bounded_sink& sink) {
    if (in.size() > UINT_MAX) return failed("gzip", "input too long");
    z_stream zs{};
    if (inflateInit2(&zs, 15 + 16) != Z_OK) return failed("gzip", "inflateInit2");
    struct guard {
        z_stream* z;
        ~guard() { inflateEnd(z); }
    } g{&zs};
    zs.next_in = const_cast<Bytef*>(u8(in.data()));
    zs.avail_in = static_cast<uInt>(in.size());
    while (true) {
        auto w = sink.window();
        if (w.empty()) return sink.too_large();
        zs.next_out = u8(w.data());
        zs.avail_out = static_cast<uInt>(std::min<size_t>(w.size(), UINT_MAX));
        uInt in_before = zs.avail_in;
        uInt out_before = zs.avail_out;
        int rc = inflate(&zs, Z_NO_FLUSH);
        sink.commit(out_before - zs.avail_out);
        if (rc == Z_STREAM_END) {
            // Another gzip member may follow (Java's GZIPInputStream reads them all); anything
            // else after the first member is ignored, as Java does.
            if (zs.avail_in >= 2 && zs.next_in[0] == 0x1f && zs.next_in[1] == 0x8b) {
                if (inflateReset(&zs) != Z_OK) return failed("gzip", "inflateReset");
                continue;
            }
            return ok();
        }
        if (rc != Z_OK && rc != Z_BUF_ERROR) {
            return failed("gzip",
                          zs.msg ? std::string(zs.msg) : "inflate error " + std::to_string(rc));
        }
        bool progress = zs.avail_in != in_before || zs.avail_out != out_before;
        if (!progress || (zs.avail_in == 0 && zs.avail_out != 0)) {
            return failed("gzip", "truncated stream");
        }
    }
}

// ---- snappy --------------------------------------------------------------------------------

result<void> snappy_compress(std::span<const std::byte> in, std::vector<std::byte>& out) {
    namespace xf = xerial_format;
    size_t blocks = (in.size() + xf::block_bytes - 1) / xf::block_bytes;
    size_t start = out.size();
    out.resize(start + xf::header_size +
               blocks * (4 + snappy::MaxCompressedLength(xf::block_bytes)));
    uint8_t* p = u8(out.data() + start);
    std::memcpy(p, xf::magic, sizeof(xf::magic));
    bytes::store_be32(p + 8, static_cast<uint32_t>(xf::version));
    bytes::store_be32(p + 12, static_cast<uint32_t>(xf::min_compatible_version));
    p += xf::header_size;
    for (size_t pos = 0; pos < in.size(); pos += xf::block_bytes) {
        size_t n = std::min(xf::block_bytes, in.size() - pos);
        size_t written = 0;
        snappy::RawCompress(reinterpret_cast<const char*>(in.data() + pos), n,
                            reinterpret_cast<char*>(p + 4), &written);
        bytes::store_be32(p, static_cast<uint32_t>(written));
        p += 4 + written;
    }
    out.resize(static_cast<size_t>(p - u8(out.data())));
    return ok();
}

result<void> snappy_block(const std::byte* data, size_t n, bounded_sink& sink) {
    const char* src = reinterpret_cast<const char*>(data);
    size_t length = 0;
    if (!snappy::GetUncompressedLength(src, n, &length))
        return failed("snappy", "bad block header");
    auto dst = sink.take(length);
    if (dst.size() != length) return sink.too_large();
    if (length == 0) return n == 1 ? ok() : failed("snappy", "bad empty block");
    if (!snappy::RawUncompress(src, n, reinterpret_cast<char*>(dst.data()))) {
        return failed("snappy", "corrupt block");
    }
    return ok();
}

result<void> snappy_decompress(std::span<const std::byte> in, bounded_sink& sink) {
    namespace xf = xerial_format;
    bool xerial =
        in.size() >= xf::header_size && std::memcmp(in.data(), xf::magic, sizeof(xf::magic)) == 0;
    if (!xerial) return snappy_block(in.data(), in.size(), sink);
    size_t pos = xf::header_size;
    while (pos < in.size()) {
        if (in.size() - pos < 4) return failed("snappy", "truncated xerial chunk length");
        size_t n = bytes::load_be32(in.data() + pos);
        pos += 4;
        if (n > in.size() - pos) return failed("snappy", "xerial chunk past the end");
        if (n > 0) {
            auto r = snappy_block(in.data() + pos, n, sink);
            if (!r) return r;
        }
        pos += n;
    }
    return ok();
}

// ---- lz4 -----------------------------------------------------------------------------------

uint32_t rotl32(uint32_t x, int r) {
    return (x << r) | (x >> (32 - r));
}

// XXH32, the checksum of the LZ4 frame header. liblz4 keeps its copy private, so we carry one.
uint32_t xxh32(const uint8_t* p, size_t n, uint32_t seed) {
    constexpr uint32_t p1 = 2654435761u, p2 = 2246822519u, p3 = 3266489917u, p4 = 668265263u,
                       p5 = 374761393u;
    auto le32 = [](const uint8_t* q) {
        return uint32_t{q[0]} | uint32_t{q[1]} << 8 | uint32_t{q[2]} << 16 | uint32_t{q[3]} << 24;
    };
    const uint8_t* end = p + n;
    uint32_t h;
    if (n >= 16) {
        uint32_t v[4] = {seed + p1 + p2, seed + p2, seed, seed - p1};
        for (; end - p >= 16; p += 16) {
            for (int i = 0; i < 4; ++i) v[i] = rotl32(v[i] + le32(p + 4 * i) * p2, 13) * p1;
        }
        h = rotl32(v[0], 1) + rotl32(v[1], 7) + rotl32(v[2], 12) + rotl32(v[3], 18);
    } else {
        h = seed + p5;
    }
    h += static_cast<uint32_t>(n);
    for (; end - p >= 4; p += 4) h = rotl32(h + le32(p) * p3, 17) * p4;
    for (; p < end; ++p) h = rotl32(h + *p * p5, 11) * p1;
    h ^= h >> 15;
    h *= p2;
    h ^= h >> 13;
    h *= p3;
    h ^= h >> 16;
    return h;
}

constexpr uint32_t lz4_frame_magic = 0x184D2204;
constexpr size_t lz4_max_header_bytes = 19;

// Kafka clients before 0.10 (and librdkafka of that time) computed the frame header checksum
// over the magic number too. If the frame at `p` has exactly that mistake, writes the header
// with the right checksum to `fixed` and returns its length; otherwise returns 0.
size_t lz4_fix_header(const uint8_t* p, size_t n, uint8_t (&fixed)[lz4_max_header_bytes]) {
    if (n < 7) return 0;
    uint32_t magic =
        uint32_t{p[0]} | uint32_t{p[1]} << 8 | uint32_t{p[2]} << 16 | uint32_t{p[3]} << 24;
    if (magic != lz4_frame_magic) return 0;
    uint8_t flg = p[4];
    size_t hc_pos = 6 + ((flg & 0x08) ? 8 : 0) + ((flg & 0x01) ? 4 : 0);
    if (n <= hc_pos) return 0;
    auto hc = [](uint32_t h) { return static_cast<uint8_t>((h >> 8) & 0xff); };
    uint8_t right = hc(xxh32(p + 4, hc_pos - 4, 0));
    if (p[hc_pos] == right || p[hc_pos] != hc(xxh32(p, hc_pos, 0))) return 0;
    std::memcpy(fixed, p, hc_pos);
    fixed[hc_pos] = right;
    return hc_pos + 1;
}

struct lz4_dctx {
    LZ4F_dctx* ctx = nullptr;
    lz4_dctx() {
        if (LZ4F_isError(LZ4F_createDecompressionContext(&ctx, LZ4F_VERSION))) ctx = nullptr;
    }
    ~lz4_dctx() {
        if (ctx) LZ4F_freeDecompressionContext(ctx);
    }
};

result<void> lz4_compress(std::span<const std::byte> in, std::vector<std::byte>& out, int level) {
    // What Kafka's Java client writes: independent 64 KiB blocks, no checksums beyond the header.
    LZ4F_preferences_t prefs{};
    prefs.frameInfo.blockSizeID = LZ4F_max64KB;
    prefs.frameInfo.blockMode = LZ4F_blockIndependent;
    prefs.compressionLevel = std::clamp(level, 0, 12);
    size_t start = out.size();
    size_t bound = LZ4F_compressFrameBound(in.size(), &prefs);
    out.resize(start + bound);
    size_t n = LZ4F_compressFrame(out.data() + start, bound, in.data(), in.size(), &prefs);
    if (LZ4F_isError(n)) {
        out.resize(start);
        return failed("lz4", LZ4F_getErrorName(n));
    }
    out.resize(start + n);
    return ok();
}

// Feeds all of `src` to the decoder; used for a repaired frame header, which yields no output.
result<void> lz4_feed_header(LZ4F_dctx* ctx, const uint8_t* src, size_t n) {
    uint8_t none = 0;
    while (n > 0) {
        size_t dst_n = 0, src_n = n;
        size_t r = LZ4F_decompress(ctx, &none, &dst_n, src, &src_n, nullptr);
        if (LZ4F_isError(r)) return failed("lz4", LZ4F_getErrorName(r));
        if (src_n == 0) return failed("lz4", "header not consumed");
        src += src_n;
        n -= src_n;
    }
    return ok();
}

result<void> lz4_decompress(std::span<const std::byte> in, bounded_sink& sink) {
    lz4_dctx d;
    if (!d.ctx) return failed("lz4", "no decompression context");
    if (in.empty()) return failed("lz4", "empty input");
    const uint8_t* src = u8(in.data());
    size_t left = in.size();
    bool frame_start = true;
    while (left > 0 || !frame_start) {
        if (frame_start) {
            uint8_t fixed[lz4_max_header_bytes];
            if (size_t hn = lz4_fix_header(src, left, fixed)) {
                auto r = lz4_feed_header(d.ctx, fixed, hn);
                if (!r) return r;
                src += hn;
                left -= hn;
            }
            frame_start = false;
        }
        auto w = sink.window();
        if (w.empty()) return sink.too_large();
        size_t dst_n = w.size(), src_n = left;
        size_t r = LZ4F_decompress(d.ctx, w.data(), &dst_n, src, &src_n, nullptr);
        if (LZ4F_isError(r)) return failed("lz4", LZ4F_getErrorName(r));
        sink.commit(dst_n);
        src += src_n;
        left -= src_n;
        if (r == 0) {
            frame_start = true;  // frame complete; another may follow
        } else if (dst_n == 0 && src_n == 0) {
            return failed("lz4", "truncated frame");
        }
    }
    return ok();
}

// ---- zstd ----------------------------------------------------------------------------------

// One compression and one decompression context per thread: creating them costs more than
// compressing a small batch.
struct zstd_contexts {
    ZSTD_CCtx* c = ZSTD_createCCtx();
    ZSTD_DCtx* d = ZSTD_createDCtx();
    ~zstd_contexts() {
        ZSTD_freeCCtx(c);
        ZSTD_freeDCtx(d);
    }
};
zstd_contexts& zstd_ctx() {
    thread_local zstd_contexts ctx;
    return ctx;
}

// Largest window a frame may ask for: enough for any producer's settings (the Java client's
// streaming level 3 uses 2 MiB), never more than the output allowed, and at most 128 MiB.
int zstd_window_log_max(size_t max_out_bytes) {
    int log = 10;
    while (log < 27 && (size_t{1} << log) < max_out_bytes) ++log;
    return std::max(log, 23);
}

result<void> zstd_compress(std::span<const std::byte> in, std::vector<std::byte>& out, int level) {
    ZSTD_CCtx* c = zstd_ctx().c;
    if (!c) return failed("zstd", "no compression context");
    ZSTD_CCtx_reset(c, ZSTD_reset_session_and_parameters);
    size_t rc = ZSTD_CCtx_setParameter(c, ZSTD_c_compressionLevel,
                                       level == 0 ? 3 : std::clamp(level, 1, ZSTD_maxCLevel()));
    if (ZSTD_isError(rc)) return failed("zstd", ZSTD_getErrorName(rc));
    size_t start = out.size();
    size_t bound = ZSTD_compressBound(in.size());
    out.resize(start + bound);
    size_t n = ZSTD_compress2(c, out.data() + start, bound, in.data(), in.size());
    if (ZSTD_isError(n)) {
        out.resize(start);
        return failed("zstd", ZSTD_getErrorName(n));
    }
    out.resize(start + n);
    return ok();
}

result<void> zstd_decompress(std::span<const std::byte> in, bounded_sink& sink, size_t max_out) {
    ZSTD_DCtx* d = zstd_ctx().d;
    if (!d) return failed("zstd", "no decompression context");
    ZSTD_DCtx_reset(d, ZSTD_reset_session_and_parameters);
    ZSTD_DCtx_setParameter(d, ZSTD_d_windowLogMax, zstd_window_log_max(max_out));
    ZSTD_inBuffer src{in.data(), in.size(), 0};
    if (in.empty()) return failed("zstd", "empty input");
    size_t r = 1;
    while (src.pos < src.size || r != 0) {
        auto w = sink.window();
        if (w.empty()) return sink.too_large();
        ZSTD_outBuffer dst{w.data(), w.size(), 0};
        size_t in_before = src.pos;
        r = ZSTD_decompressStream(d, &dst, &src);
        if (ZSTD_isError(r)) {
            if (ZSTD_getErrorCode(r) == ZSTD_error_frameParameter_windowTooLarge) {
                return error(errc::too_large, "zstd: frame window larger than allowed");
            }
            return failed("zstd", ZSTD_getErrorName(r));
        }
        sink.commit(dst.pos);
        bool progress = dst.pos != 0 || src.pos != in_before;
        if (r != 0 && src.pos == src.size && dst.pos < dst.size) {
            return failed("zstd", "truncated frame");
        }
        if (!progress) return failed("zstd", "no progress");
    }
    return ok();
}

}  // namespace

result<void> compress(compression codec, std::span<const std::byte> in, std::vector<std::byte>& out,
                      int level) {
    switch (codec) {
        case compression::none:
            out.insert(out.end(), in.begin(), in.end());
            return ok();
        case compression::gzip:
            return gzip_compress(in, out, level);
        case compression::snappy:
            return snappy_compress(in, out);
        case compression::lz4:
            return lz4_compress(in, out, level);
        case compression::zstd:
            return zstd_compress(in, out, level);
    }
    return errc::unknown_compression;
}

result<void> decompress(compression codec, std::span<const std::byte> in,
                        std::vector<std::byte>& out, size_t max_out_bytes) {
    bounded_sink sink(out, max_out_bytes, in.size());
    result<void> r = ok();
    switch (codec) {
        case compression::none: {
            auto dst = sink.take(in.size());
            if (dst.size() != in.size()) return sink.too_large();
            if (!in.empty()) std::memcpy(dst.data(), in.data(), in.size());
            break;
        }
        case compression::gzip:
            r = gzip_decompress(in, sink);
            break;
        case compression::snappy:
            r = snappy_decompress(in, sink);
            break;
        case compression::lz4:
            r = lz4_decompress(in, sink);
            break;
        case compression::zstd:
            r = zstd_decompress(in, sink, max_out_bytes);
            break;
        default:
            return errc::unknown_compression;
    }
    if (!r) return r;
    return sink.finish();
}

}  // namespace sluice::model
