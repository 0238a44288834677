#pragma once
// Helpers for the net tests: a reactor with an echo server and framed clients on loopback.
// Timeouts below only stop a hung test; nothing asserts on how fast anything is.

#include <gtest/gtest.h>

#include <chrono>
#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "base/bytes.h"
#include "net/errc.h"
#include "net/network_stack.h"
#include "runtime/reactor.h"

namespace sluice::net::testing {

inline std::vector<std::byte> pattern(size_t n, uint32_t seed) {
    std::vector<std::byte> v(n);
    uint32_t x = seed * 2654435761u + 1;
    for (size_t i = 0; i < n; ++i) {
        x = x * 1103515245u + 12345u;
        v[i] = std::byte(x >> 24);
    }
    return v;
}

inline std::vector<std::byte> prefix(uint32_t size) {
    std::vector<std::byte> p(4);
    bytes::store_be32(p.data(), size);
    return p;
}

inline std::vector<std::byte> framed(std::span<const std::byte> payload) {
    auto v = prefix(static_cast<uint32_t>(payload.size()));
    v.insert(v.end(), payload.begin(), payload.end());
    return v;
}

inline output one_piece(std::vector<std::byte> v) {
    output o;
    o.append(std::move(v));
    return o;
}

// Runs `r` until `done()`; fails the test (and returns false) after `limit`.
inline bool run_until(runtime::reactor& r, const std::function<bool()>& done,
                      std::chrono::seconds limit = std::chrono::seconds(30)) {
    auto deadline = std::chrono::steady_clock::now() + limit;
    while (!done()) {
        if (std::chrono::steady_clock::now() > deadline) {
            ADD_FAILURE() << "timed out waiting";
            return false;
        }
        r.run_once(std::chrono::milliseconds(5));
    }
    return true;
}

// One end of a connection as the tests see it: the frames it received (kept past the handler,
// which also exercises frames that outlive their receive call) and how it closed.
struct endpoint {
    connection_ptr conn;
    std::vector<frame> frames;
    size_t frame_calls = 0;
    int close_calls = 0;
    error close_reason;
    size_t recv_capacity_at_close = 0;
    std::function<void(endpoint&, std::span<frame>)> on_frames;  // optional override

    void start() {
        conn->start(connection_handlers{
            .on_frames =
                [this](std::span<frame> fs) {
                    ++frame_calls;
                    if (on_frames) {
                        on_frames(*this, fs);
                        return;
                    }
                    for (auto& f : fs) frames.push_back(std::move(f));
                },
            .on_close =
                [this](const error& e) {
                    ++close_calls;
                    close_reason = e;
                    recv_capacity_at_close = conn->stats().recv_buffer_capacity_max;
                },
        });
    }
    bool closed() const { return close_calls > 0; }
};

class net_fixture : public ::testing::Test {
  protected:
    void SetUp() override {
        auto r = runtime::reactor::create({});
        ASSERT_TRUE(r) << r.error().describe();
        reactor = std::move(*r);
        auto s = make_network_stack("posix");
        ASSERT_TRUE(s);
        stack = std::move(*s);
    }

    void TearDown() override {
        for (auto& e : servers)
            if (e->conn) e->conn->close();
        for (auto& e : clients)
            if (e->conn) e->conn->close();
        int listeners_open = 0;
        for (auto& l : listeners) {
            ++listeners_open;
            l->close([&] { --listeners_open; });
        }
        run_until(*reactor, [&] {
            for (auto& e : servers)
                if (!e->closed()) return false;
            for (auto& e : clients)
                if (e->conn && !e->closed()) return false;
            return listeners_open == 0;
        });
        listeners.clear();
        servers.clear();
        clients.clear();
        reactor.reset();
    }

    // An echo server: each frame comes back framed, sent from the received buffer itself.
    // Answers every frame with the same bytes.
    static void echo_frames(endpoint& ep, std::span<frame> fs) {
        for (auto& f : fs) {
            output out;
            out.append(prefix(static_cast<uint32_t>(f.size())));
            out.append(std::move(f));
            ep.conn->send(std::move(out));
        }
    }

    socket_address start_echo_server(listen_options opts = {}) {
        return start_server(opts, echo_frames);
    }

    socket_address start_server(listen_options opts,
                                std::function<void(endpoint&, std::span<frame>)> handler) {
        auto addr = listen_on(socket_address::ipv4_loopback(0), opts, std::move(handler));
        EXPECT_TRUE(addr) << addr.error().describe();
        return *addr;
    }

    // A listener at `where` whose connections become `servers` running `handler`; the address
    // it is bound to, or why it could not listen.
    result<socket_address> listen_on(const socket_address& where, listen_options opts,
                                     std::function<void(endpoint&, std::span<frame>)> handler) {
        auto l = stack->listen(*reactor, where, opts, [this, handler](connection_ptr c) {
            auto ep = std::make_unique<endpoint>();
            ep->conn = std::move(c);
            ep->on_frames = handler;
            ep->start();
            servers.push_back(std::move(ep));
        });
        if (!l) return l.error();
        auto addr = (*l)->local_address();
        listeners.push_back(std::move(*l));
        return addr;
    }

    endpoint& connect(const socket_address& addr, connect_options opts = {}) {
        clients.push_back(std::make_unique<endpoint>());
        endpoint* ep = clients.back().get();
        bool done = false;
        stack->connect(*reactor, addr, opts, [&, ep](result<connection_ptr> c) {
            done = true;
            EXPECT_TRUE(c) << c.error().describe();
            if (!c) return;
            ep->conn = std::move(*c);
            ep->start();
        });
        run_until(*reactor, [&] { return done; });
        return *ep;
    }

    std::unique_ptr<runtime::reactor> reactor;
    std::unique_ptr<network_stack> stack;
    std::vector<std::unique_ptr<listener>> listeners;
    std::vector<std::unique_ptr<endpoint>> servers;
    std::vector<std::unique_ptr<endpoint>> clients;
};

}  // namespace sluice::net::testing
