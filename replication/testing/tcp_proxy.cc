#include "replication/testing/tcp_proxy.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <vector>

namespace sluice::test {

namespace {

constexpr size_t connections_max = 64;    // forwarded pairs; more are refused
constexpr size_t chunk_bytes = 64 * 1024;  // one read, then written in full to the other side

sockaddr_in loopback(uint16_t port) {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(port);
    return a;
}

bool write_all(int fd, const char* p, size_t n) {
    while (n > 0) {
        ssize_t w = ::send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return false;
        p += w;
        n -= static_cast<size_t>(w);
    }
    return true;
}

// Moves one chunk from `from` to `to`; false when either side is done.
bool pump(int from, int to) {
    char buf[chunk_bytes];
    ssize_t n = ::recv(from, buf, sizeof buf, 0);
    if (n < 0 && errno == EINTR) return true;
    return n > 0 && write_all(to, buf, static_cast<size_t>(n));
}

unique_fd connect_to(uint16_t port) {
    unique_fd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    auto a = loopback(port);
    if (!fd.valid() || ::connect(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
        return unique_fd();
    }
    return fd;
}

struct forwarded {
    unique_fd client;
    unique_fd server;
};

}  // namespace

result<std::unique_ptr<tcp_proxy>> tcp_proxy::start(uint16_t target_port) {
    unique_fd listener(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    auto a = loopback(0);
    socklen_t len = sizeof a;
    if (!listener.valid() ||
        ::bind(listener.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
        ::listen(listener.get(), 64) != 0 ||
        ::getsockname(listener.get(), reinterpret_cast<sockaddr*>(&a), &len) != 0) {
        return errno_error(errno, "tcp_proxy listener");
    }
    unique_fd wake(::eventfd(0, EFD_CLOEXEC));
    if (!wake.valid()) return errno_error(errno, "tcp_proxy eventfd");
    std::unique_ptr<tcp_proxy> p(
        new tcp_proxy(std::move(listener), std::move(wake), ntohs(a.sin_port), target_port));
    p->_thread = std::thread([raw = p.get()] { raw->run(); });
    return p;
}

tcp_proxy::~tcp_proxy() {
    apply(command::stop);
    _thread.join();
}

void tcp_proxy::cut() { apply(command::cut); }
void tcp_proxy::restore() { apply(command::restore); }

void tcp_proxy::apply(command c) {
    std::unique_lock lock(_mu);
    _pending = c;
    uint64_t one = 1;
    [[maybe_unused]] auto n = ::write(_wake.get(), &one, sizeof one);
    _cv.wait(lock, [&] { return _pending == command::none; });
}

void tcp_proxy::run() {
    std::vector<forwarded> conns;
    bool partitioned = false;
    for (;;) {
        std::vector<pollfd> fds{{_wake.get(), POLLIN, 0}, {_listener.get(), POLLIN, 0}};
        for (auto& c : conns) {
            fds.push_back({c.client.get(), POLLIN, 0});
            fds.push_back({c.server.get(), POLLIN, 0});
        }
        if (::poll(fds.data(), fds.size(), -1) < 0) continue;  // EINTR
        if (fds[0].revents != 0) {
            uint64_t count = 0;
            [[maybe_unused]] auto n = ::read(_wake.get(), &count, sizeof count);
            std::lock_guard lock(_mu);
            command c = _pending;
            if (c == command::cut || c == command::stop) conns.clear();  // closes them all
            if (c == command::cut) partitioned = true;
            if (c == command::restore) partitioned = false;
            _pending = command::none;
            _cv.notify_all();
            if (c == command::stop) return;
            continue;  // `conns` may have changed under `fds`
        }
        // Walk backwards so erasing a finished pair leaves the earlier indexes valid.
        for (size_t i = conns.size(); i-- > 0;) {
            short from_client = fds[2 + 2 * i].revents;
            short from_server = fds[3 + 2 * i].revents;
            bool open = true;
            if (from_client != 0) open = pump(conns[i].client.get(), conns[i].server.get());
            if (open && from_server != 0) {
                open = pump(conns[i].server.get(), conns[i].client.get());
            }
            if (!open) conns.erase(conns.begin() + static_cast<std::ptrdiff_t>(i));
        }
        if (fds[1].revents != 0) {
            unique_fd client(::accept4(_listener.get(), nullptr, nullptr, SOCK_CLOEXEC));
            if (client.valid() && !partitioned && conns.size() < connections_max) {
                unique_fd server = connect_to(_target);
                if (server.valid()) conns.push_back({std::move(client), std::move(server)});
            }
        }
    }
}

}  // namespace sluice::test
