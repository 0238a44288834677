#pragma once
// Private to net/: the posix stack's connection, a kernel TCP socket driven by io_uring.
//
// Owned by the reactor that created it (always shared_ptr-managed). While any SQE that names
// it is in flight it holds a reference to itself (`_keepalive`), so a completion never touches
// freed memory even when the caller has dropped every connection_ptr. Operations in flight at
// any time: at most one recv, and either one sendmsg, one bounce-buffer read, one
// file->pipe->socket splice pair (two linked SQEs), or one POLLOUT wait of an inline send. Sends are serialised through that single
// slot, which is what keeps the bytes of successive send() calls in order.

#include <sys/uio.h>

#include <array>
#include <deque>
#include <memory>
#include <optional>

#include "base/fd.h"
#include "net/connection.h"
#include "net/frame_reader.h"
#include "net/mapped_files.h"
#include "runtime/reactor.h"

namespace sluice::net {

class posix_connection final : public connection,
                               public std::enable_shared_from_this<posix_connection> {
  public:
    // `on_final` runs once after on_close (the listener uses it to free a connection slot).
    // `mapped` (optional): the listener's cache of file mappings for the mapped send path.
    posix_connection(runtime::reactor& r, unique_fd fd, socket_address local, socket_address peer,
                     connection_options options, std::function<void()> on_final,
                     std::shared_ptr<mapped_files> mapped = nullptr);
    ~posix_connection() override;

    void start(connection_handlers handlers) override;
    void send(output out) override;
    size_t bytes_queued() const override { return _queued_bytes; }
    void pause_receive() override;
    void resume_receive() override;
    bool receive_paused() const override { return _paused; }
    void close() override;
    void close_after_send() override;
    bool is_open() const override { return !_closing; }
    const socket_address& peer_address() const override { return _peer; }
    const socket_address& local_address() const override { return _local; }
    runtime::reactor& owner() const override { return _reactor; }
    const connection_stats& stats() const override { return _stats; }
    void set_max_frame_bytes(uint32_t bytes) override { _reader.set_max_frame_bytes(bytes); }

    // Bounds of the send path, named so they can be reasoned about.
    static constexpr size_t max_iov = 64;                  // pieces per sendmsg
    static constexpr int pipe_bytes_wanted = 8 * 1024 * 1024;    // F_SETPIPE_SZ request
    static constexpr int pipe_bytes_fallback = 1024 * 1024;  // the unprivileged default maximum
    static constexpr size_t bounce_bytes = 256 * 1024;     // copy fallback read size

  private:
    struct op : runtime::io_completion {
        posix_connection* self = nullptr;
    };
    using guard = std::shared_ptr<posix_connection>;
    // One zero-copy send in flight: the pieces it names, kept (with the connection) until the
    // kernel's notification CQE, which may come after the result CQE and after later sends.
    struct zc_send : runtime::io_completion {
        guard conn;
        std::vector<output::piece> pieces;
        size_t front_offset = 0;  // bytes of pieces[0] already sent before this send
        size_t total = 0;         // bytes this send asked for
        std::array<iovec, max_iov> iov{};
        msghdr msg{};
    };

    // In-flight bookkeeping: started before an SQE is armed, finished in its completion.
    void op_started();
    guard op_finished();
    void assert_owner_thread() const;

    // Receive path.
    void arm_recv();
    void wait_for_memory();
    // The multishot path (connection_options::recv_multishot).
    static void on_single_recv(runtime::io_completion* c, int res, uint32_t flags);
    void arm_multishot();
    void on_multishot(int res, uint32_t flags);
    void cancel_multishot();
    void copy_in(std::span<const std::byte> bytes);
    void on_recv(int res);
    void process_frames();

    // Send path.
    void pump_send();
    void send_memory();
    void send_memory_zc(size_t pieces, size_t bytes);
    void on_sendmsg_zc(zc_send& z, int res);
    void send_file(file_region& region);
    void splice_pipe_to_socket(io_uring_sqe* sqe, size_t n);
    void read_bounce(file_region& region);
    void on_sendmsg(int res);
    void on_splice_in(int res);
    void on_splice_out(int res);
    void on_bounce_read(int res);
    void splice_pair_done();
    // The inline splice path (see send_file): returns what pump_send() should do next.
    enum class inline_outcome { waiting, done, use_ring };
    inline_outcome splice_inline();
    // The mapped path (connection_options::cached_send): send() from a mapping of the front
    // region. Same outcomes as splice_inline().
    inline_outcome send_mapped_inline();
    std::optional<inline_outcome> after_inline_send_error(const char* what);
    bool map_front(const file_region& region);
    void unmap();
    bool region_in_page_cache(const file_region& region) const;
    // Waits (through the ring) until the socket has room, then pumps the send queue again.
    void arm_pollout();
    void consume_memory(size_t n);
    void sent_bytes(size_t n);
    bool open_pipe();

    // Close path.
    void begin_close(error reason);
    void maybe_finalize();

    runtime::reactor& _reactor;
    unique_fd _fd;
    socket_address _local;
    socket_address _peer;
    connection_options _options;
    std::function<void()> _on_final;
    connection_handlers _handlers;
    connection_stats _stats;
    guard _keepalive;
    uint32_t _inflight = 0;
    bool _started = false;
    bool _closing = false;
    bool _finalized = false;
    bool _close_when_sent = false;
    error _close_reason;

    // Receive state: received bytes not yet delivered as frames.
    op _recv_op;
    frame_reader _reader;
    bool _recv_inflight = false;
    bool _paused = false;
    bool _receive_dead = false;  // an unreadable frame: receiving never resumes
    bool _delivering = false;
    bool _memory_wait = false;  // over the core's memory budget: waiting to read again
    runtime::buffer_ring* _buffers = nullptr;  // set: receives are multishot from this ring
    op _cancel_op;
    bool _cancel_inflight = false;
    std::vector<frame> _batch;

    // Send state.
    std::deque<output::piece> _sendq;
    size_t _front_offset = 0;  // bytes of the front memory piece already sent
    size_t _queued_bytes = 0;
    size_t _queued_memory_bytes = 0;  // of those, in memory (charged to the reader's account)
    bool _send_inflight = false;
    op _sendmsg_op;
    std::array<iovec, max_iov> _iov{};
    msghdr _msg{};
    op _splice_in_op;
    op _splice_out_op;
    unique_fd _pipe_r;
    unique_fd _pipe_w;
    size_t _pipe_capacity = 0;
    size_t _pipe_bytes = 0;      // bytes sitting in the pipe, to go to the socket next
    size_t _splice_pending = 0;  // CQEs still expected from the current splice pair
    size_t _splice_in_requested = 0;
    bool _splice_ok = true;  // false: file regions go through the copy fallback
    op _bounce_op;
    op _pollout_op;
    bool _wait_writable = false;  // an io_uring splice found the socket full  // waiting for socket space while bytes sit in the pipe (inline splice)
    std::vector<std::byte> _bounce;
    // The mapped path: true when page-cached regions go out through send() from a mapping.
    bool _use_mapped = false;
    std::shared_ptr<mapped_files> _mapped_files;  // null: a mapping per region
    std::shared_ptr<const file_mapping> _map;     // covers the front region while it is sent
    uint64_t _map_origin = 0;                     // file offset of the mapping's first byte
};

}  // namespace sluice::net
