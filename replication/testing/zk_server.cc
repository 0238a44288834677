#include "replication/testing/zk_server.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>
#include <vector>

#include "base/fd.h"
#include "replication/errc.h"

namespace sluice::test {

namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

constexpr const char* jar_dir = "/usr/share/java";
// zookeeper.jar's manifest names its other dependencies; these are the ones a standalone server
// cannot start without, plus slf4j-simple so its log lines reach zookeeper.log.
constexpr const char* jars_required[] = {"zookeeper.jar", "zookeeper-jute.jar", "slf4j-api.jar",
                                         "metrics-core.jar", "snappy-java.jar"};
constexpr const char* jar_logger = "slf4j-simple.jar";
constexpr auto stop_grace = 10s;
constexpr auto poll_interval = 20ms;
constexpr int launch_attempts_max = 3;
constexpr int32_t probe_session_ms = 1000;  // the config's minSessionTimeout
constexpr auto probe_timeout_first = 100ms;  // per handshake attempt, doubling up to the max
constexpr auto probe_timeout_max = 2000ms;  // a fresh port each time another process took ours

std::optional<std::string> find_java() {
    if (const char* home = std::getenv("JAVA_HOME"); home && *home) {
        std::string java = std::string(home) + "/bin/java";
        if (::access(java.c_str(), X_OK) == 0) return java;
    }
    const char* path = std::getenv("PATH");
    std::istringstream dirs(path ? path : "/usr/bin:/bin");
    for (std::string d; std::getline(dirs, d, ':');) {
        std::string java = (d.empty() ? "." : d) + "/java";
        if (::access(java.c_str(), X_OK) == 0) return java;
    }
    return std::nullopt;
}

// The classpath, or why there is none.
result<std::string> find_classpath() {
    if (const char* cp = std::getenv("SLUICE_ZOOKEEPER_CLASSPATH"); cp && *cp) {
        return std::string(cp);
    }
    std::string cp;
    for (const char* jar : jars_required) {
        std::string p = std::string(jar_dir) + "/" + jar;
        if (::access(p.c_str(), R_OK) != 0) {
            return error(replication::errc::zk_error,
                         p + " is missing (Debian packages zookeeper and libzookeeper-java)");
        }
        cp += (cp.empty() ? "" : ":") + p;
    }
    std::string logger = std::string(jar_dir) + "/" + jar_logger;
    if (::access(logger.c_str(), R_OK) == 0) cp += ":" + logger;
    return cp;
}

uint16_t free_loopback_port() {
    unique_fd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (!fd.valid() || ::bind(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) return 0;
    socklen_t len = sizeof a;
    if (::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&a), &len) != 0) return 0;
    return ntohs(a.sin_port);
}

void put_be(std::string& out, uint64_t v, int bytes) {
    for (int i = bytes - 1; i >= 0; --i) out += static_cast<char>(v >> (8 * i));
}

// One ZooKeeper session handshake over a plain socket: true once the server grants a session
// (a ConnectResponse with a non-zero timeout). A server that is still starting closes the
// connection or stays silent instead. Speaking the handshake directly keeps the wait quiet: a
// zk_client would log every refused attempt. The probe's session expires on its own.
bool grants_session(uint16_t port, std::chrono::milliseconds timeout) {
    unique_fd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!fd.valid()) return false;
    timeval tv{static_cast<time_t>(timeout.count() / 1000),
               static_cast<suseconds_t>(timeout.count() % 1000 * 1000)};
    ::setsockopt(fd.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ::setsockopt(fd.get(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(port);
    if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) return false;
    // ConnectRequest: protocolVersion, lastZxidSeen, timeOut, sessionId, passwd, readOnly.
    std::string body;
    put_be(body, 0, 4);
    put_be(body, 0, 8);
    put_be(body, probe_session_ms, 4);
    put_be(body, 0, 8);
    put_be(body, 16, 4);
    body.append(16, '\0');
    body += '\0';
    std::string frame;
    put_be(frame, body.size(), 4);
    frame += body;
    if (::send(fd.get(), frame.data(), frame.size(), MSG_NOSIGNAL) !=
        static_cast<ssize_t>(frame.size())) {
        return false;
    }
    // The reply starts: length, protocolVersion, timeOut.
    unsigned char reply[12];
    size_t got = 0;
    while (got < sizeof reply) {
        ssize_t n = ::recv(fd.get(), reply + got, sizeof reply - got, 0);
        if (n <= 0) return false;
        got += static_cast<size_t>(n);
    }
    uint32_t granted_ms = (uint32_t{reply[8]} << 24) | (uint32_t{reply[9]} << 16) |
                          (uint32_t{reply[10]} << 8) | reply[11];
    return granted_ms > 0;
}

result<std::string> make_temp_dir() {
    std::error_code ec;
    fs::path base = fs::temp_directory_path(ec);
    if (ec) base = "/tmp";
    std::string tmpl = (base / "sluice-zk-XXXXXX").string();
    if (::mkdtemp(tmpl.data()) == nullptr) return errno_error(errno, "mkdtemp " + tmpl);
    return tmpl;
}

}  // namespace

std::optional<std::string> zk_server::unavailable_reason() {
    if (!find_java()) {
        return "no java found ($JAVA_HOME/bin/java or java on $PATH; Debian package "
               "default-jre-headless): ZooKeeper tests skipped";
    }
    auto cp = find_classpath();
    if (!cp) return cp.error().detail() + ": ZooKeeper tests skipped";
    return std::nullopt;
}

result<std::unique_ptr<zk_server>> zk_server::launch(std::chrono::milliseconds ready_timeout) {
    if (auto why = unavailable_reason()) return error(replication::errc::zk_error, *why);
    sluice::error last;
    for (int attempt = 0; attempt < launch_attempts_max; ++attempt) {
        auto dir = make_temp_dir();
        if (!dir) return dir.error();
        std::unique_ptr<zk_server> s(new zk_server(*dir, free_loopback_port()));
        if (s->_port == 0) return errno_error(errno, "no free loopback port");
        if (auto r = s->write_config(); !r) return r.error();
        auto r = s->start(ready_timeout);
        if (r) return s;
        last = r.error();
        // Only a lost race for the port is worth another try.
        if (s->log_tail().find("Address already in use") == std::string::npos) break;
    }
    return last;
}

zk_server::~zk_server() {
    kill_now();
    std::error_code ec;
    fs::remove_all(_dir, ec);
}

std::string zk_server::connect_string() const { return "127.0.0.1:" + std::to_string(_port); }

std::string zk_server::log_tail(size_t bytes) const {
    std::ifstream in(_dir + "/zookeeper.log", std::ios::binary);
    std::stringstream s;
    s << in.rdbuf();
    std::string all = s.str();
    return all.size() <= bytes ? all : all.substr(all.size() - bytes);
}

// The same settings as ci/zookeeper.sh. The session timeout bounds (1 s to 30 s) let tests
// expire sessions quickly and still accept Kafka's default of 18 s; fsync is off because the
// data is scratch and other work on the machine should not wait behind it. The empty whitelist
// turns off every four-letter-word command except srvr, which ZooKeeper always allows.
result<void> zk_server::write_config() const {
    std::error_code ec;
    fs::create_directories(_dir + "/data", ec);
    if (ec) return errno_error(ec.value(), "mkdir " + _dir + "/data");
    std::ofstream out(_dir + "/zoo.cfg", std::ios::trunc);
    out << "# A private ZooKeeper for one Sluice test (replication/testing/zk_server.cc).\n"
        << "tickTime=500\n"
        << "dataDir=" << _dir << "/data\n"
        << "clientPort=" << _port << "\n"
        << "clientPortAddress=127.0.0.1\n"
        << "minSessionTimeout=1000\n"
        << "maxSessionTimeout=30000\n"
        << "maxClientCnxns=60\n"
        << "admin.enableServer=false\n"
        << "4lw.commands.whitelist=\n"
        << "forceSync=no\n"
        << "preAllocSize=1024\n";
    out.flush();
    if (!out) return error(replication::errc::zk_error, "cannot write " + _dir + "/zoo.cfg");
    return ok();
}

result<void> zk_server::start(std::chrono::milliseconds ready_timeout) {
    if (_pid > 0) return ok();
    if (auto r = spawn(); !r) return r;
    auto r = wait_ready(ready_timeout);
    if (!r) kill_now();
    return r;
}

result<void> zk_server::spawn() {
    auto java = find_java();
    auto cp = find_classpath();
    if (!java || !cp) return error(replication::errc::zk_error, "java or ZooKeeper jars missing");
    // Small, quick-starting JVM: one test server needs little heap and no optimising compiler.
    std::vector<std::string> args{*java,
                                  "-Xms16m",
                                  "-Xmx256m",
                                  "-XX:+UseSerialGC",
                                  "-XX:TieredStopAtLevel=1",
                                  "-XX:-UsePerfData",
                                  "-Djava.awt.headless=true",
                                  "-Dzookeeper.jmx.log4j.disable=true",
                                  "-Dorg.slf4j.simpleLogger.showDateTime=true",
                                  "-cp",
                                  *cp,
                                  "org.apache.zookeeper.server.ZooKeeperServerMain",
                                  _dir + "/zoo.cfg"};
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    std::string log_path = _dir + "/zookeeper.log";
    unique_fd log(::open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644));
    unique_fd null(::open("/dev/null", O_RDONLY | O_CLOEXEC));
    if (!log.valid() || !null.valid()) return errno_error(errno, "open " + log_path);
    pid_t parent = ::getpid();
    pid_t pid = ::fork();
    if (pid < 0) return errno_error(errno, "fork");
    if (pid == 0) {
        // Only async-signal-safe calls between fork and exec.
        ::prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (::getppid() != parent) ::_exit(126);
        ::dup2(null.get(), 0);
        ::dup2(log.get(), 1);
        ::dup2(log.get(), 2);
        ::execv(argv[0], argv.data());
        ::_exit(127);
    }
    _pid = pid;
    _paused = false;
    return ok();
}

// Ready means the server grants sessions, not just that its port is bound.
result<void> zk_server::wait_ready(std::chrono::milliseconds timeout) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    // A connection accepted while the server is still starting may go unanswered, so the first
    // attempts give up quickly; later ones wait longer, in case the machine is just slow.
    auto attempt_timeout = probe_timeout_first;
    while (!grants_session(_port, attempt_timeout)) {
        attempt_timeout = std::min(attempt_timeout * 2, probe_timeout_max);
        int status = 0;
        if (::waitpid(_pid, &status, WNOHANG) == _pid) {
            _pid = -1;
            return not_ready("exited (wait status " + std::to_string(status) + ")");
        }
        if (std::chrono::steady_clock::now() >= deadline) {
            return not_ready("granted no session within " + std::to_string(timeout.count()) +
                             " ms");
        }
        std::this_thread::sleep_for(poll_interval);
    }
    return ok();
}

error zk_server::not_ready(const std::string& why) const {
    return error(replication::errc::connect_failed, "ZooKeeper test server on port " +
                                                        std::to_string(_port) + " " + why +
                                                        "; its log ends:\n" + log_tail());
}

void zk_server::stop() {
    if (_pid <= 0) return;
    if (_paused) resume();
    ::kill(_pid, SIGTERM);
    auto deadline = std::chrono::steady_clock::now() + stop_grace;
    while (std::chrono::steady_clock::now() < deadline) {
        if (::waitpid(_pid, nullptr, WNOHANG) == _pid) {
            _pid = -1;
            return;
        }
        std::this_thread::sleep_for(poll_interval);
    }
    kill_now();
}

void zk_server::kill_now() {
    if (_pid <= 0) return;
    ::kill(_pid, SIGKILL);  // also ends a stopped (paused) process
    ::waitpid(_pid, nullptr, 0);
    _pid = -1;
    _paused = false;
}

// Sends `sig` and waits for the state change `options` names (WUNTRACED, WCONTINUED); notices a
// process that died meanwhile.
void zk_server::signal_and_wait(int sig, int options) {
    ::kill(_pid, sig);
    int status = 0;
    if (::waitpid(_pid, &status, options) == _pid && (WIFEXITED(status) || WIFSIGNALED(status))) {
        _pid = -1;
    }
}

void zk_server::pause() {
    if (_pid <= 0 || _paused) return;
    signal_and_wait(SIGSTOP, WUNTRACED);
    _paused = _pid > 0;
}

void zk_server::resume() {
    if (_pid <= 0 || !_paused) return;
    signal_and_wait(SIGCONT, WCONTINUED);
    _paused = false;
}

}  // namespace sluice::test
