#pragma once
// A `sluice serve` child process for integration tests: a free loopback port, a private data
// directory (removed at the end unless kept for a restart), and clean or hard stops. It kills
// only the process it started.

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace sluice::test {

class broker_process {
public:
    explicit broker_process(std::vector<std::string> extra_args = {})
        : _extra(std::move(extra_args)) {
        char tmpl[] = "/tmp/sluice-it-XXXXXX";
        _dir = ::mkdtemp(tmpl);
        _port = free_port();
    }
    ~broker_process() {
        stop(SIGKILL);
        std::error_code ec;
        std::filesystem::remove_all(_dir, ec);
    }

    uint16_t port() const { return _port; }
    std::string bootstrap() const { return "127.0.0.1:" + std::to_string(_port); }
    std::string log() const {
        std::ifstream f(_dir + "/broker.log");
        std::stringstream s;
        s << f.rdbuf();
        return s.str();
    }

    // Starts the broker and waits until its port accepts connections. False on failure.
    bool start() {
        _pid = ::fork();
        if (_pid == 0) {
            int out = ::open((_dir + "/broker.log").c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
            ::dup2(out, 1);
            ::dup2(out, 2);
            std::vector<std::string> args{SLUICE_BIN, "serve",
                                          "--listeners=PLAINTEXT://127.0.0.1:" + std::to_string(_port),
                                          "--log.dirs=" + _dir + "/data"};
            args.insert(args.end(), _extra.begin(), _extra.end());
            std::vector<char*> argv;
            for (auto& a : args) argv.push_back(a.data());
            argv.push_back(nullptr);
            ::execv(argv[0], argv.data());
            ::_exit(127);
        }
        for (int i = 0; i < 400; ++i) {
            int status = 0;
            if (::waitpid(_pid, &status, WNOHANG) == _pid) {
                _pid = -1;
                return false;
            }
            if (port_open()) return true;
            std::this_thread::sleep_for(std::chrono::milliseconds(25));
        }
        return false;
    }

    // Stops the broker with `sig` (SIGTERM: clean shutdown) and returns its exit status.
    int stop(int sig = SIGTERM) {
        if (_pid <= 0) return -1;
        ::kill(_pid, sig);
        int status = 0;
        for (int i = 0; i < 800 && ::waitpid(_pid, &status, WNOHANG) == 0; ++i) {
            std::this_thread::sleep_for(std::chrono::milliseconds(25));
        }
        if (::waitpid(_pid, &status, WNOHANG) == 0) {
            ::kill(_pid, SIGKILL);
            ::waitpid(_pid, &status, 0);
        }
        _pid = -1;
        return status;
    }

private:
    static uint16_t free_port() {
        int fd = ::socket(AF_INET, SOCK_STREAM, 0);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
        socklen_t len = sizeof a;
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
        ::close(fd);
        return ntohs(a.sin_port);
    }
    bool port_open() const {
        int fd = ::socket(AF_INET, SOCK_STREAM, 0);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        a.sin_port = htons(_port);
        bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
        ::close(fd);
        return ok;
    }

    std::vector<std::string> _extra;
    std::string _dir;
    uint16_t _port = 0;
    pid_t _pid = -1;
};

}  // namespace sluice::test
