#pragma once
// A connection: one TCP stream owned by one reactor (core). Every method must be called on the
// owning reactor's thread, and every handler runs there.
//
// Receive side (Kafka framing, DESIGN.md section 1): the connection reads large chunks into a
// per-connection buffer, splits them into frames (the bytes after each 4-byte big-endian size
// prefix) and hands every complete frame of a read to `on_frames` in one call. Each frame is a
// `shared_buffer` into the receive chunk: use it in place, or keep (copy or move) the
// shared_buffer to hold the request past the handler without copying bytes. A size prefix that
// is negative or above `max_frame_bytes` closes the connection with `frame_size_invalid` /
// `frame_too_large`; nothing of that size is ever allocated.
//
// Send side: `send(output)` queues pieces (owned memory, shared buffers, file regions) that go
// out in the order of the send() calls and, within one output, in piece order. File regions
// travel file -> pipe -> socket inside the kernel (posix stack: io_uring SPLICE) and never pass
// through user space. `bytes_queued()` and `on_drain` let the caller apply back-pressure.
//
// Lifecycle: created by a listener (accept) or by network_stack::connect(); receiving starts
// with start(). The connection stays alive while it is open even if the caller drops every
// connection_ptr: it ends only by close(), by the peer, or by an error. `on_close` then runs
// exactly once, after every in-flight kernel operation has finished and the socket is closed;
// no handler runs after it. Queued but unsent data is discarded on close.

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <variant>
#include <vector>

#include "base/fd.h"
#include "base/result.h"
#include "net/buffer.h"
#include "net/socket_address.h"

namespace sluice::runtime {
class reactor;
}

namespace sluice::net {

class memory_budget;

// A received frame: the request bytes without the size prefix.
using frame = shared_buffer;

// Kafka's socket.request.max.bytes default (100 MiB).
inline constexpr uint32_t default_max_frame_bytes = 100 * 1024 * 1024;
inline constexpr size_t default_recv_buffer_bytes = 64 * 1024;

struct connection_options {
    // Largest accepted frame (socket.request.max.bytes). Frames above it close the connection.
    uint32_t max_frame_bytes = default_max_frame_bytes;
    // Size of each receive chunk; a frame larger than this gets a chunk of its own size.
    size_t recv_buffer_bytes = default_recv_buffer_bytes;
    bool tcp_nodelay = true;
    // False sends file regions by reading them into memory first (a copy through user space).
    // The stack also falls back to that by itself when a file cannot be spliced.
    bool splice_file_regions = true;
    // True: regions whose bytes are in the page cache are spliced on the reactor thread
    // (non-blocking); false: every splice goes through io_uring (run by its worker threads),
    // which is also the path for bytes that may need the disk.
    bool inline_file_splice = true;
    // How page-cached regions go out on the reactor thread when inline_file_splice is on.
    // splice: page references move file -> pipe -> socket, no copy at all.
    // mapped: send() straight from a read-only mapping of the file (MSG_DONTWAIT): the kernel
    //   copies page cache -> socket buffer once, user space never touches the bytes.
    // automatic: splice, except to a same-host peer whose socket uses a pacing congestion
    //   control (bbr): pacing skbs made of 4 KiB page fragments was measured ~1.5x slower than
    //   sending one copy from a mapping (perf/README.md, "Broker throughput").
    enum class cached_send { automatic, splice, mapped };
    cached_send cached_file_send = cached_send::automatic;
    // TCP congestion control for peers on this host (loopback, or the connection's own address);
    // empty keeps the system's default. A pacing algorithm (bbr) models a bottleneck link that
    // a same-host connection does not have and throttles the bursts of request/response
    // traffic: measured ~1.4x more fetch throughput to a same-host consumer with cubic.
    std::string same_host_tcp_congestion;
    // No Kafka framing: each on_frames call hands the bytes of one read as a single piece, and
    // max_frame_bytes does not apply. For a layer that frames the stream itself (net/tls.h).
    bool raw_stream = false;
    // io_uring zero-copy send (IORING_OP_SENDMSG_ZC) for runs of in-memory pieces of at least
    // this many bytes (the kernel pins the pages instead of copying them; the pieces are kept
    // until its notification says it is done with them). 0: off, every memory send copies.
    // Posix stack only.
    size_t send_zc_min_bytes = 0;
    // Multishot recv into the reactor's provided-buffer ring (runtime/buffer_ring.h): one
    // receive stays armed for the connection's life and the kernel picks a shared buffer when
    // bytes arrive; they are copied into the frame chunk and the buffer given back at once.
    // Falls back to plain receives if the kernel has no buffer rings. Posix stack only.
    bool recv_multishot = false;
    // The core's memory budget (net/memory_budget.h): receive chunks holding requests and
    // in-memory bytes queued to send are charged to it, and the connection stops reading while
    // the core is over budget and it is one of the connections holding much. Null: not counted.
    std::shared_ptr<memory_budget> memory;
};

// What to send: pieces in order. Build it, then hand it to connection::send() (moved).
class output {
  public:
    using piece = std::variant<std::vector<std::byte>, shared_buffer, file_region>;

    output() = default;
    output(output&&) = default;
    output& operator=(output&&) = default;

    void append(std::vector<std::byte> bytes) { add(std::move(bytes)); }
    void append(shared_buffer bytes) { add(std::move(bytes)); }
    void append(file_region region) { add(std::move(region)); }
    void append_copy(std::span<const std::byte> bytes) {
        add(std::vector<std::byte>(bytes.begin(), bytes.end()));
    }

    size_t size_bytes() const { return _size_bytes; }
    bool empty() const { return _pieces.empty(); }
    std::vector<piece>& pieces() { return _pieces; }

  private:
    void add(piece p);
    std::vector<piece> _pieces;
    size_t _size_bytes = 0;
};

struct connection_handlers {
    // Complete frames of one read, in arrival order. The span is valid until the handler
    // returns; the shared_buffers may be moved out of it and kept.
    std::function<void(std::span<frame> frames)> on_frames;
    // Exactly once: the reason the connection ended (net::errc::closed for a local close(),
    // peer_closed, frame_too_large, frame_size_invalid, io_error, ...).
    std::function<void(const error& reason)> on_close;
    // Optional: the send queue became empty (bytes_queued() == 0) after holding data.
    std::function<void()> on_drain;
    // Optional: the stream reached a frame that cannot be read (a size prefix over
    // max_frame_bytes, or negative). The frames before it were delivered; receiving has stopped
    // for good. Without this handler the connection closes at once (dropping whatever answers
    // are still queued); with it, the owner decides, typically: answer what was delivered, then
    // close_after_send().
    std::function<void(const error& reason)> on_bad_frame;
};

struct connection_stats {
    uint64_t bytes_received = 0;
    uint64_t bytes_sent = 0;
    uint64_t frames_received = 0;
    uint64_t sends = 0;                   // send() calls accepted
    size_t recv_buffer_capacity_max = 0;  // largest receive chunk this connection allocated
    uint64_t file_bytes_spliced = 0;      // file-region bytes sent without a user-space copy
    uint64_t file_bytes_spliced_inline = 0;  // of those, spliced on the reactor thread
    uint64_t file_bytes_mapped = 0;  // file-region bytes sent from a mapping (one kernel copy)
    uint64_t file_bytes_copied = 0;       // file-region bytes sent through the copy fallback
    uint64_t zero_copy_bytes_sent = 0;    // memory bytes sent with IORING_OP_SENDMSG_ZC
    uint64_t provided_buffer_receives = 0;  // receives that landed in the reactor's buffer ring
};

// What protects a connection's bytes on the wire (net/tls.h); plaintext connections have none.
struct transport_security {
    std::string protocol;  // "TLSv1.3"
    std::string cipher;    // "TLS_AES_256_GCM_SHA384"
    // The client certificate's subject in RFC 2253 form ("CN=alice,O=Example"), when the client
    // presented one and it verified against the trusted CAs; empty otherwise.
    std::string peer_subject;
};

class connection {
  public:
    virtual ~connection() = default;

    // Installs the handlers and starts receiving. Call once.
    virtual void start(connection_handlers handlers) = 0;

    // Queues `out` behind everything sent before. Ignored (pieces released) once closing.
    virtual void send(output out) = 0;
    // Bytes handed to send() and not yet written to the socket.
    virtual size_t bytes_queued() const = 0;

    // Back-pressure: after pause_receive() no further on_frames call is made and the socket is
    // not read (a read already in flight completes into the buffer) until resume_receive().
    // Calling them from inside on_frames is allowed; pause then takes effect when it returns.
    virtual void pause_receive() = 0;
    virtual void resume_receive() = 0;
    virtual bool receive_paused() const = 0;

    // Starts closing: in-flight operations are cancelled, queued data is dropped, on_close runs
    // (with errc::closed) once they have all completed. Idempotent.
    virtual void close() = 0;
    // Stops receiving, lets everything already sent go out, then closes (on_close gets
    // errc::closed). For "answer, then hang up". Further send() calls are ignored.
    virtual void close_after_send() = 0;
    // False once closing has started for any reason.
    virtual bool is_open() const = 0;

    virtual const socket_address& peer_address() const = 0;
    virtual const socket_address& local_address() const = 0;
    virtual runtime::reactor& owner() const = 0;
    virtual const connection_stats& stats() const = 0;
    // Changes the largest frame accepted from now on (a session lowers it until the client
    // has authenticated: sasl.server.max.receive.size).
    virtual void set_max_frame_bytes(uint32_t bytes) = 0;
    // Set once a TLS handshake has completed (before the first frame is delivered).
    virtual const transport_security* security() const { return nullptr; }
};

using connection_ptr = std::shared_ptr<connection>;

}  // namespace sluice::net
