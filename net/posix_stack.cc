// The posix stack: listeners with SO_REUSEPORT and multishot accept, connects through
// io_uring, and posix_connection for the streams (posix_connection.cc).

#include "net/posix_stack.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <algorithm>
#include <cstring>

#include "base/assert.h"
#include "base/log.h"
#include "net/errc.h"
#include "net/posix_connection.h"
#include "runtime/reactor.h"

namespace sluice::net {

namespace {
constexpr std::string_view k_log = "net";
// After an accept error such as EMFILE, wait this long before accepting again instead of
// spinning on a listener the kernel keeps reporting ready.
constexpr auto accept_retry_delay = std::chrono::milliseconds(10);

socket_address local_address_of(int fd) {
    sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    if (::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return {};
    return socket_address(reinterpret_cast<sockaddr*>(&ss), len);
}

socket_address peer_address_of(int fd) {
    sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    if (::getpeername(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return {};
    return socket_address(reinterpret_cast<sockaddr*>(&ss), len);
}

void set_nodelay(int fd, bool on) {
    int v = on ? 1 : 0;
    (void)::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &v, sizeof v);
}

// Listener state shared with the multishot accept SQE and with every accepted connection (for
// the connection count), so it outlives the listener handle while either is around.
class listener_state : public runtime::io_completion,
                       public std::enable_shared_from_this<listener_state> {
  public:
    listener_state(runtime::reactor& r, unique_fd fd, socket_address local, listen_options o,
                   accept_callback cb)
        : _reactor(r), _fd(std::move(fd)), _local(local), _options(o), _on_accept(std::move(cb)) {
        on_complete = [](runtime::io_completion* c, int res, uint32_t flags) {
            static_cast<listener_state*>(c)->on_accept_cqe(res, flags);
        };
    }

    void arm() {
        if (_closing || _armed) return;
        io_uring_sqe* sqe = _reactor.get_sqe();
        if (_multishot) {
            io_uring_prep_multishot_accept(sqe, _fd.get(), nullptr, nullptr, SOCK_CLOEXEC);
        } else {
            io_uring_prep_accept(sqe, _fd.get(), nullptr, nullptr, SOCK_CLOEXEC);
        }
        runtime::reactor::arm(sqe, this);
        _armed = true;
        _keepalive = shared_from_this();
    }

    void close(std::function<void()> on_closed) {
        if (on_closed) _on_closed = std::move(on_closed);
        if (_closing) return;
        _closing = true;
        if (_armed) {
            io_uring_sqe* sqe = _reactor.get_sqe();
            io_uring_prep_cancel64(
                sqe, reinterpret_cast<uint64_t>(static_cast<io_completion*>(this)), 0);
            _reactor.submit(sqe, [](int) {});
        } else {
            _reactor.defer([self = shared_from_this()] { self->finish_close(); });
        }
    }

    const socket_address& local() const { return _local; }
    size_t live() const { return _live; }

  private:
    void on_accept_cqe(int res, uint32_t flags) {
        auto self = shared_from_this();  // _keepalive may be dropped below
        bool more = (flags & IORING_CQE_F_MORE) != 0;
        if (!more) {
            _armed = false;
            _keepalive.reset();
        }
        if (res >= 0) {
            if (_closing) {
                ::close(res);
            } else {
                accepted(unique_fd(res));
            }
        } else if (res == -EINVAL && _multishot && !_closing && _accepted_total == 0) {
            log::info(k_log, "multishot accept unsupported; using single-shot accept on ",
                      _local.to_string());
            _multishot = false;
        } else if (res != -ECANCELED && !_closing) {
            log::warn(k_log, "accept on ", _local.to_string(), " failed: ", std::strerror(-res));
            if (!more) {
                _reactor.add_timer(accept_retry_delay, [self] { self->arm(); });
                return;
            }
        }
        if (!more) {
            if (_closing) {
                finish_close();
            } else {
                arm();
            }
        }
    }

    void accepted(unique_fd fd) {
        ++_accepted_total;
        socket_address peer = peer_address_of(fd.get());
        if (_live >= _options.max_connections) {
            log::warn(k_log, "listener ", _local.to_string(), " at max_connections (",
                      _options.max_connections, "): closing connection from ", peer.to_string());
            return;  // fd closes here
        }
        set_nodelay(fd.get(), _options.connection.tcp_nodelay);
        socket_address local = local_address_of(fd.get());
        ++_live;
        auto conn = std::make_shared<posix_connection>(
            _reactor, std::move(fd), local, peer, _options.connection,
            [self = shared_from_this()] { --self->_live; }, _mapped);
        if (_on_accept) {
            _on_accept(std::move(conn));
        }
    }

    void finish_close() {
        if (_fd.valid()) {
            log::debug(k_log, "listener ", _local.to_string(), " closed");
            _fd.reset();
        }
        _on_accept = nullptr;
        if (_on_closed) std::exchange(_on_closed, nullptr)();
    }

    runtime::reactor& _reactor;
    unique_fd _fd;
    socket_address _local;
    listen_options _options;
    accept_callback _on_accept;
    std::function<void()> _on_closed;
    std::shared_ptr<listener_state> _keepalive;  // while the accept SQE is armed
    size_t _live = 0;
    uint64_t _accepted_total = 0;
    bool _armed = false;
    bool _closing = false;
    bool _multishot = true;
    // File mappings shared by this listener's connections (the mapped send path).
    std::shared_ptr<mapped_files> _mapped = std::make_shared<mapped_files>(_reactor);
};

class posix_listener final : public listener {
  public:
    explicit posix_listener(std::shared_ptr<listener_state> st) : _st(std::move(st)) {}
    ~posix_listener() override { _st->close({}); }
    const socket_address& local_address() const override { return _st->local(); }
    void close(std::function<void()> on_closed) override { _st->close(std::move(on_closed)); }
    size_t connection_count() const override { return _st->live(); }

  private:
    std::shared_ptr<listener_state> _st;
};

result<unique_fd> open_listen_socket(const socket_address& requested, const listen_options& o) {
    socket_address address = requested;
    unique_fd fd(::socket(address.family(), SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!fd.valid() && errno == EAFNOSUPPORT && address.is_ipv6_any()) {
        // "Every interface" on a kernel without IPv6 is every IPv4 interface.
        address = socket_address::ipv4_any(requested.port());
        fd = unique_fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    }
    if (!fd.valid())
        return error(errc::listen_failed, std::string("socket: ") + std::strerror(errno));
    int one = 1;
    int zero = 0;
    (void)::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    // The IPv6 wildcard takes IPv4 connections too, whatever net.ipv6.bindv6only says.
    if (address.is_ipv6_any() &&
        ::setsockopt(fd.get(), IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero) != 0) {
        return error(errc::listen_failed, std::string("IPV6_V6ONLY: ") + std::strerror(errno));
    }
    if (o.reuse_port && ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0) {
        return error(errc::listen_failed, std::string("SO_REUSEPORT: ") + std::strerror(errno));
    }
    if (::bind(fd.get(), address.sa(), address.length()) != 0) {
        return error(errc::listen_failed,
                     "bind " + address.to_string() + ": " + std::strerror(errno));
    }
    if (::listen(fd.get(), o.backlog) != 0) {
        return error(errc::listen_failed,
                     "listen " + address.to_string() + ": " + std::strerror(errno));
    }
    return fd;
}

struct connect_state {
    runtime::reactor* reactor = nullptr;
    __kernel_timespec timeout{};  // read by the kernel while the link timeout is armed
    unique_fd fd;
    socket_address address;
    connect_options options;
    connect_callback callback;
};

void connect_done(const std::shared_ptr<connect_state>& st, int res) {
    if (res < 0) {
        std::string why = res == -ECANCELED ? std::string("timed out") : std::strerror(-res);
        st->callback(error(errc::connect_failed, st->address.to_string() + ": " + why));
        return;
    }
    set_nodelay(st->fd.get(), st->options.connection.tcp_nodelay);
    socket_address local = local_address_of(st->fd.get());
    auto conn = std::make_shared<posix_connection>(*st->reactor, std::move(st->fd), local,
                                                   st->address, st->options.connection, nullptr);
    st->callback(connection_ptr(std::move(conn)));
}

class posix_stack final : public network_stack {
  public:
    std::string_view name() const override { return "posix"; }

    result<std::unique_ptr<listener>> listen(runtime::reactor& r, const socket_address& address,
                                             listen_options options,
                                             accept_callback on_accept) override {
        SLUICE_ASSERT(runtime::reactor::local() == &r, "listen() off the reactor's thread");
        if (!address.valid()) return error(errc::address_invalid, "listen on an empty address");
        auto fd = open_listen_socket(address, options);
        if (!fd) return fd.error();
        socket_address local = local_address_of(fd->get());
        auto st = std::make_shared<listener_state>(r, std::move(*fd), local, options,
                                                   std::move(on_accept));
        st->arm();
        log::info(k_log, "listening on ", local.to_string(), " (core ", r.core(), ")");
        return std::unique_ptr<listener>(new posix_listener(std::move(st)));
    }

    void connect(runtime::reactor& r, const socket_address& address, connect_options options,
                 connect_callback on_connected) override {
        SLUICE_ASSERT(runtime::reactor::local() == &r, "connect() off the reactor's thread");
        auto st = std::make_shared<connect_state>();
        st->reactor = &r;
        st->address = address;
        st->options = options;
        st->callback = std::move(on_connected);
        if (!address.valid()) {
            r.defer([st] { st->callback(error(errc::connect_failed, "empty address")); });
            return;
        }
        st->fd.reset(::socket(address.family(), SOCK_STREAM | SOCK_CLOEXEC, 0));
        if (!st->fd.valid()) {
            int err = errno;
            r.defer([st, err] {
                st->callback(
                    error(errc::connect_failed, std::string("socket: ") + std::strerror(err)));
            });
            return;
        }
        // connect + linked timeout: two SQEs that must reach the kernel together.
        if (io_uring_sq_space_left(r.ring()) < 2) r.flush();
        io_uring_sqe* sqe = r.get_sqe();
        io_uring_sqe* timeout_sqe = r.get_sqe();
        io_uring_prep_connect(sqe, st->fd.get(), st->address.sa(), st->address.length());
        sqe->flags |= IOSQE_IO_LINK;
        r.submit(sqe, [st](int res) { connect_done(st, res); });
        auto ms = std::max<int64_t>(1, options.timeout.count());
        st->timeout.tv_sec = ms / 1000;
        st->timeout.tv_nsec = (ms % 1000) * 1'000'000;
        io_uring_prep_link_timeout(timeout_sqe, &st->timeout, 0);
        r.submit(timeout_sqe, [st](int) {});
    }
};

}  // namespace

std::unique_ptr<network_stack> make_posix_stack() {
    return std::make_unique<posix_stack>();
}

}  // namespace sluice::net
