// The loopback reference of `sluice bench`: how fast this machine moves bytes from one socket to
// another through the kernel, measured with the client code that reads Fetch answers
// (connection::read_frame). Broker figures are reported as a fraction of it.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cstring>
#include <thread>

#include "base/bytes.h"
#include "tools/bench.h"

namespace sluice::tools::bench {

namespace {

result<std::pair<unique_fd, uint16_t>> listen_loopback() {
    unique_fd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!fd.valid()) return errno_error(errno, "socket");
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
        return errno_error(errno, "bind");
    }
    if (::listen(fd.get(), 1) != 0) return errno_error(errno, "listen");
    socklen_t len = sizeof a;
    ::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&a), &len);
    return std::pair{std::move(fd), ntohs(a.sin_port)};
}

}  // namespace

result<loopback_result> run_loopback(const settings& s) {
    auto l = listen_loopback();
    if (!l) return l.error();
    auto& [listener, port] = *l;
    std::atomic<bool> stop{false};
    std::string server_error;
    std::thread server([&, lfd = listener.get()] {
        unique_fd c(::accept4(lfd, nullptr, nullptr, SOCK_CLOEXEC));
        if (!c.valid()) {
            server_error = std::strerror(errno);
            return;
        }
        connection out(std::move(c), {"127.0.0.1", 0}, s.client.conn);
        // Frames the size of a full fetch answer: size prefix + payload, sent from memory.
        std::vector<std::byte> frame(4 + static_cast<size_t>(s.fetch_bytes), std::byte{'x'});
        bytes::store_be32(frame.data(), static_cast<uint32_t>(s.fetch_bytes));
        while (!stop.load(std::memory_order_relaxed)) {
            if (!out.write_all(frame)) break;  // the client hung up
        }
    });
    auto client = connection::open_raw({"127.0.0.1", port}, s.client.conn);
    if (!client) {
        stop = true;
        ::shutdown(listener.get(), SHUT_RDWR);
        server.join();
        return client.error();
    }
    std::vector<std::byte> buf;
    loopback_result r;
    auto start = clock::now();
    auto until = start + std::chrono::duration_cast<clock::duration>(
                             std::chrono::duration<double>(s.duration_s));
    auto last_report = start;
    uint64_t last_bytes = 0;
    result<void> failed = ok();
    while (clock::now() < until) {
        auto f = (*client)->read_frame(buf);
        if (!f) {
            failed = f.error();
            break;
        }
        r.bytes += f->size() + 4;
        auto now = clock::now();
        if (!s.quiet && now - last_report >= std::chrono::seconds(1)) {
            double secs = std::chrono::duration<double>(now - last_report).count();
            std::fprintf(stderr, "[%5.1fs] loopback %9.1f MiB/s\n",
                         std::chrono::duration<double>(now - start).count(),
                         static_cast<double>(r.bytes - last_bytes) / secs / (1 << 20));
            last_report = now;
            last_bytes = r.bytes;
        }
    }
    r.seconds = std::chrono::duration<double>(clock::now() - start).count();
    stop = true;
    client->reset();  // unblocks the server's write
    server.join();
    if (!failed) return failed.error();
    if (!server_error.empty()) return error(errc::io_failed, "loopback server: " + server_error);
    return r;
}

}  // namespace sluice::tools::bench
