#pragma once
// tcp_proxy: a loopback TCP forwarder for network-fault tests. Clients connect to port() and their
// bytes flow to and from the target port. cut() is a partition: it closes every forwarded
// connection and, until restore(), accepts new ones only to close them at once (the port stays
// bound, so nothing else can take it). Unlike pausing the server, a partition lets the server go
// on running, so it expires the sessions it no longer hears from, deterministically.
//
// Owner and lifecycle: one test owns it; start() begins forwarding on a thread of its own, the
// destructor stops and joins that thread and closes every socket. cut() and restore() are called
// from the test's thread and return once the thread has applied them.

#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <thread>

#include "base/fd.h"
#include "base/result.h"

namespace sluice::test {

class tcp_proxy {
public:
    static result<std::unique_ptr<tcp_proxy>> start(uint16_t target_port);
    ~tcp_proxy();
    tcp_proxy(const tcp_proxy&) = delete;
    tcp_proxy& operator=(const tcp_proxy&) = delete;

    uint16_t port() const { return _port; }
    void cut();
    void restore();

private:
    enum class command { none, cut, restore, stop };
    tcp_proxy(unique_fd listener, unique_fd wake, uint16_t port, uint16_t target)
        : _listener(std::move(listener)), _wake(std::move(wake)), _port(port), _target(target) {}
    void run();
    void apply(command c);  // hands `c` to the thread and waits until it has been applied

    unique_fd _listener;
    unique_fd _wake;  // eventfd: a command is waiting
    uint16_t _port;
    uint16_t _target;
    std::mutex _mu;
    std::condition_variable _cv;
    command _pending = command::none;  // guarded by _mu; back to none once applied
    std::thread _thread;
};

}  // namespace sluice::test
