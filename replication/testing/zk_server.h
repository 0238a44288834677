#pragma once
// zk_server: a private ZooKeeper server for one test. It runs Debian's ZooKeeper 3.8 jars
// (package `zookeeper`) with the system java as a child process of the test: a free loopback
// port, its own data directory under $TMPDIR (or /tmp), and a generated zoo.cfg bound to
// 127.0.0.1 with the admin server and the four-letter-word commands off (but srvr, which
// ZooKeeper always answers). It never touches the system service or its /etc/zookeeper
// configuration, and it signals only the process it started.
// ci/zookeeper.sh starts the same server (same classpath and config) for scripts and e2e tests;
// keep the two in step.
//
// Owner and lifecycle: one test owns it. launch() returns once the server grants sessions; the
// destructor kills the process (SIGKILL: the data is scratch) and removes the directory. The
// JVM also dies with the thread that launched it (PR_SET_PDEATHSIG), so a crashed or timed-out
// test leaves no server behind. Not thread-safe: use it from the test's thread.
//
// Classpath: /usr/share/java/{zookeeper, zookeeper-jute, slf4j-api, metrics-core, snappy-java}.jar
// (what a standalone server cannot start without; zookeeper.jar's manifest adds the rest) plus
// slf4j-simple.jar for its log, or $SLUICE_ZOOKEEPER_CLASSPATH when set (another installation).
// java is $JAVA_HOME/bin/java or the first `java` on $PATH.

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "base/result.h"

namespace sluice::test {

class zk_server {
public:
    // A sentence saying why no server can run here (java or a jar is missing), for GTEST_SKIP;
    // nullopt when one can.
    static std::optional<std::string> unavailable_reason();

    // Starts a server on a fresh port and directory and waits until it answers.
    static result<std::unique_ptr<zk_server>> launch(
        std::chrono::milliseconds ready_timeout = std::chrono::seconds(60));

    ~zk_server();
    zk_server(const zk_server&) = delete;
    zk_server& operator=(const zk_server&) = delete;

    // Starts the server again after stop(), on the same port and data directory.
    result<void> start(std::chrono::milliseconds ready_timeout = std::chrono::seconds(60));
    // SIGTERM, then SIGKILL if it has not exited within a few seconds; waits for the process.
    void stop();
    // SIGSTOP / SIGCONT: the process stays (its port keeps accepting TCP connections) but answers
    // nothing until resumed, as a hung server would. Each waits until the kernel reports it.
    void pause();
    void resume();
    bool running() const { return _pid > 0; }

    uint16_t port() const { return _port; }
    std::string connect_string() const;  // "127.0.0.1:<port>"
    const std::string& dir() const { return _dir; }
    // The last `bytes` of the server's output (dir()/zookeeper.log), for failure messages.
    std::string log_tail(size_t bytes = 4096) const;

private:
    zk_server(std::string dir, uint16_t port) : _dir(std::move(dir)), _port(port) {}
    result<void> write_config() const;
    result<void> spawn();
    result<void> wait_ready(std::chrono::milliseconds timeout);
    error not_ready(const std::string& why) const;
    void kill_now();
    void signal_and_wait(int sig, int options);

    std::string _dir;
    uint16_t _port = 0;
    pid_t _pid = -1;
    bool _paused = false;
};

}  // namespace sluice::test
