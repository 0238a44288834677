#include "replication/zk_client.h"

#include <zookeeper/zookeeper.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <mutex>
#include <unordered_map>
#include <utility>

#include "base/assert.h"
#include "base/log.h"

namespace sluice::replication {

namespace {

using steady_clock = std::chrono::steady_clock;

// get() reads into a buffer of this size first and re-reads with the exact size when the value
// is larger; the value may grow between reads, so the number of attempts is bounded.
constexpr int32_t get_buffer_bytes_initial = 16 * 1024;
constexpr int get_attempts_max = 4;
// ZooKeeper's default jute.maxbuffer: the server refuses larger values anyway, and the bound keeps
// sizes within the C API's int lengths.
constexpr size_t data_bytes_max = 1024 * 1024;
// Room for the 10-digit suffix of a sequential znode in the created path.
constexpr size_t created_path_extra_bytes = 16;
constexpr size_t multi_ops_max = 1024;
// One-shot watches still waiting for their event; each holds a std::function.
constexpr size_t watches_max = 1 << 20;

// The client whose callback this thread is running, so its destructor can refuse to run there:
// libzookeeper cannot join its own completion thread.
thread_local const void* t_callback_owner = nullptr;

struct callback_scope {
    explicit callback_scope(const void* owner) : _saved(t_callback_owner) {
        t_callback_owner = owner;
    }
    ~callback_scope() { t_callback_owner = _saved; }
    const void* _saved;
};

// While ZooKeeper is unreachable libzookeeper reports every reconnect attempt (several a second)
// as an error; past this many warnings per window the rest are counted, not printed. on_state and
// our own state-change lines already say what matters.
constexpr int zoo_warnings_per_window_max = 5;
constexpr auto zoo_warning_window = std::chrono::seconds(10);

// True when a warning may be printed now; `suppressed` gets the count dropped before it.
bool zoo_warning_allowed(uint64_t& suppressed) {
    static std::mutex mu;
    static steady_clock::time_point window_start;
    static int printed = 0;
    static uint64_t dropped = 0;
    std::lock_guard lock(mu);
    auto now = steady_clock::now();
    if (now - window_start >= zoo_warning_window) {
        window_start = now;
        printed = 0;
    }
    if (printed >= zoo_warnings_per_window_max) {
        ++dropped;
        return false;
    }
    ++printed;
    suppressed = std::exchange(dropped, 0);
    return true;
}

// libzookeeper's log lines ("...:ZOO_WARN@function@line: text") go through base/log.h. Its own
// INFO lines (one per connection attempt) are debug-level chatter for us.
void emit_zoo_log(const char* message, log::level errors) {
    std::string_view m(message);
    while (!m.empty() && (m.back() == '\n' || m.back() == '\r')) m.remove_suffix(1);
    log::level l = errors;
    if (m.find("ZOO_INFO@") != std::string_view::npos) l = log::level::debug;
    if (m.find("ZOO_DEBUG@") != std::string_view::npos) l = log::level::trace;
    if (l < log::level::warn || l < log::current_level()) {
        log::emit(l, "zookeeper", m);
        return;
    }
    uint64_t suppressed = 0;
    if (!zoo_warning_allowed(suppressed)) return;
    if (suppressed == 0) {
        log::emit(l, "zookeeper", m);
    } else {
        log::emit(l, "zookeeper", m, " (", suppressed, " similar lines suppressed before this)");
    }
}
void forward_zoo_log(const char* message) { emit_zoo_log(message, log::level::warn); }
// While a handle closes, the server hanging up is expected; libzookeeper still reports it as an
// error, so those lines are demoted.
void forward_zoo_log_closing(const char* message) { emit_zoo_log(message, log::level::debug); }

// The library's level is process-wide; it follows Sluice's level at the first connect.
void set_zoo_log_level_once() {
    static std::once_flag once;
    std::call_once(once, [] {
        ZooLogLevel z = ZOO_LOG_LEVEL_WARN;
        switch (log::current_level()) {
            case log::level::trace: z = ZOO_LOG_LEVEL_DEBUG; break;
            case log::level::debug: z = ZOO_LOG_LEVEL_INFO; break;
            case log::level::error:
            case log::level::off: z = ZOO_LOG_LEVEL_ERROR; break;
            default: break;
        }
        zoo_set_debug_level(z);
    });
}

error zk_failure(int rc, std::string_view op, const std::string& path) {
    SLUICE_ASSERT(rc != ZOK, "zk_failure() of a success");
    return error(zk_errc_from_rc(rc), std::string(op) + " " + path + ": " + zerror(rc));
}

result<void> check_data(std::string_view data, const std::string& path) {
    if (data.size() <= data_bytes_max) return ok();
    return error(errc::invalid_argument, path + ": " + std::to_string(data.size()) +
                                             " bytes of data exceed " +
                                             std::to_string(data_bytes_max));
}

// A non-null pointer even for empty data: libzookeeper stores a null pointer as "no data".
const char* data_ptr(std::string_view data) { return data.empty() ? "" : data.data(); }

int zoo_flags(zk_mode mode) {
    switch (mode) {
        case zk_mode::persistent: return ZOO_PERSISTENT;
        case zk_mode::ephemeral: return ZOO_EPHEMERAL;
        case zk_mode::persistent_sequential: return ZOO_PERSISTENT_SEQUENTIAL;
        case zk_mode::ephemeral_sequential: return ZOO_EPHEMERAL_SEQUENTIAL;
    }
    return ZOO_PERSISTENT;
}

zk_stat from_stat(const Stat& s) {
    return {s.version, s.cversion, s.ephemeralOwner, s.mzxid, s.dataLength, s.numChildren};
}

zk_session_state from_zoo_state(int state) {
    if (state == ZOO_CONNECTED_STATE) return zk_session_state::connected;
    if (state == ZOO_EXPIRED_SESSION_STATE || state == ZOO_AUTH_FAILED_STATE) {
        return zk_session_state::expired;
    }
    return zk_session_state::connecting;
}

const char* state_name(zk_session_state s) {
    switch (s) {
        case zk_session_state::connecting: return "connecting";
        case zk_session_state::connected: return "connected";
        case zk_session_state::expired: return "expired";
    }
    return "?";
}

void* watch_ctx(uint64_t id) { return reinterpret_cast<void*>(static_cast<uintptr_t>(id)); }

struct connect_target {
    std::string hosts;
    std::string chroot;  // empty: none
};

// "host:port[,host:port...][/chroot]"; a chroot of "/" means none.
result<connect_target> parse_connect_string(const std::string& s) {
    connect_target t;
    auto slash = s.find('/');
    t.hosts = s.substr(0, slash);
    if (t.hosts.empty()) {
        return error(errc::invalid_argument, "zookeeper.connect '" + s + "' names no server");
    }
    if (slash != std::string::npos && s.size() - slash > 1) t.chroot = s.substr(slash);
    if (!t.chroot.empty() && t.chroot.back() == '/') {
        return error(errc::invalid_argument,
                     "zookeeper.connect '" + s + "': the chroot must not end with '/'");
    }
    return t;
}

}  // namespace

errc zk_errc_from_rc(int rc) {
    switch (rc) {
        case ZOK: return errc::ok;
        case ZNONODE: return errc::no_node;
        case ZNODEEXISTS: return errc::node_exists;
        case ZBADVERSION: return errc::bad_version;
        case ZNOTEMPTY: return errc::not_empty;
        case ZNOCHILDRENFOREPHEMERALS: return errc::ephemeral_parent;
        case ZBADARGUMENTS:
        case ZINVALIDACL: return errc::invalid_argument;
        case ZNOAUTH:
        case ZAUTHFAILED: return errc::not_authorized;
        case ZCONNECTIONLOSS:
        case ZOPERATIONTIMEOUT: return errc::connection_loss;
        // ZINVALIDSTATE: the handle is in the expired (or auth-failed) state for good.
        case ZSESSIONEXPIRED:
        case ZINVALIDSTATE: return errc::session_expired;
        default: return errc::zk_error;
    }
}

zk_op zk_op::check(std::string path, int32_t version) {
    return {kind::check, std::move(path), {}, version, zk_mode::persistent};
}
zk_op zk_op::create(std::string path, std::string data, zk_mode mode) {
    return {kind::create, std::move(path), std::move(data), -1, mode};
}
zk_op zk_op::set(std::string path, std::string data, int32_t version) {
    return {kind::set, std::move(path), std::move(data), version, zk_mode::persistent};
}
zk_op zk_op::remove(std::string path, int32_t version) {
    return {kind::remove, std::move(path), {}, version, zk_mode::persistent};
}

// Everything libzookeeper's threads touch. The handle's context points here; it outlives the
// handle because ~zk_client closes the handle (joining those threads) before freeing it.
struct zk_client::impl {
    std::string connect_string;  // for error messages
    zhandle_t* zh = nullptr;
    zk_state_fn on_state;

    mutable std::mutex mu;
    std::condition_variable cv;  // connect() waits here for the first state change
    zk_session_state state = zk_session_state::connecting;
    int64_t session_id = 0;
    bool deliver_state = false;  // on_state hears changes only once connect() has returned
    bool closing = false;        // the destructor has begun: drop every event
    uint64_t next_watch_id = 1;
    // Watch contexts are ids, not pointers, so a late or repeated call from libzookeeper for a
    // watch that is gone finds nothing instead of freed memory.
    std::unordered_map<uint64_t, zk_watch_fn> watches;

    static void session_watcher(zhandle_t* zh, int type, int state, const char*, void* ctx);
    static void path_watcher(zhandle_t* zh, int type, int state, const char*, void* ctx);

    void on_session_event(zhandle_t* zh, int zoo_state);
    void fire_watch(uint64_t id, zk_event ev);
    result<uint64_t> add_watch(zk_watch_fn fn);
    void drop_watch(uint64_t id);
    result<void> wait_connected(steady_clock::time_point deadline, int32_t timeout_ms);

    result<zk_node> read(const std::string& path, uint64_t watch_id);
    result<std::optional<zk_stat>> stat(const std::string& path, uint64_t watch_id);
    result<std::vector<std::string>> children(const std::string& path, uint64_t watch_id);
};

// The default watcher: libzookeeper calls it with every session event.
void zk_client::impl::session_watcher(zhandle_t* zh, int type, int state, const char*,
                                      void* ctx) {
    if (type != ZOO_SESSION_EVENT) return;
    static_cast<impl*>(ctx)->on_session_event(zh, state);
}

// Every path watch. libzookeeper also passes session events to each live watch; only the final
// one matters (it re-registers watches by itself after a reconnect).
void zk_client::impl::path_watcher(zhandle_t* zh, int type, int state, const char*, void* ctx) {
    auto* im = static_cast<impl*>(const_cast<void*>(zoo_get_context(zh)));
    auto id = static_cast<uint64_t>(reinterpret_cast<uintptr_t>(ctx));
    zk_event ev;
    if (type == ZOO_SESSION_EVENT) {
        if (from_zoo_state(state) != zk_session_state::expired) return;
        ev = zk_event::session_expired;
    } else if (type == ZOO_CREATED_EVENT) {
        ev = zk_event::created;
    } else if (type == ZOO_CHANGED_EVENT) {
        ev = zk_event::changed;
    } else if (type == ZOO_DELETED_EVENT) {
        ev = zk_event::deleted;
    } else if (type == ZOO_CHILD_EVENT) {
        ev = zk_event::children_changed;
    } else {
        return;  // ZOO_NOTWATCHING_EVENT: we never remove watches on the server
    }
    im->fire_watch(id, ev);
}

void zk_client::impl::on_session_event(zhandle_t* handle, int zoo_state) {
    zk_session_state s = from_zoo_state(zoo_state);
    zk_state_fn fn;
    int64_t id = 0;
    bool report = false;
    {
        std::lock_guard lock(mu);
        if (closing || s == state || state == zk_session_state::expired) return;
        state = s;
        if (s == zk_session_state::connected) session_id = zoo_client_id(handle)->client_id;
        cv.notify_all();
        // The first connection is connect()'s result; only later changes are news.
        report = deliver_state;
        if (report) fn = on_state;
        id = session_id;
    }
    if (!report) return;
    log::emit(s == zk_session_state::connected ? log::level::info : log::level::warn, "zookeeper",
              "session 0x", std::hex, id, std::dec, " with ", connect_string, ": ", state_name(s));
    if (fn) {
        callback_scope scope(this);
        fn(s);
    }
}

void zk_client::impl::fire_watch(uint64_t id, zk_event ev) {
    zk_watch_fn fn;
    {
        std::lock_guard lock(mu);
        if (closing) return;
        auto it = watches.find(id);
        if (it == watches.end()) return;
        fn = std::move(it->second);
        watches.erase(it);
    }
    callback_scope scope(this);
    fn(ev);
}

result<uint64_t> zk_client::impl::add_watch(zk_watch_fn fn) {
    SLUICE_ASSERT(fn, "a watch needs a callback");
    std::lock_guard lock(mu);
    if (watches.size() >= watches_max) {
        return error(errc::zk_error, std::to_string(watches_max) + " watches are outstanding");
    }
    uint64_t id = next_watch_id++;
    watches.emplace(id, std::move(fn));
    return id;
}

void zk_client::impl::drop_watch(uint64_t id) {
    zk_watch_fn dead;  // destroyed outside the lock: its captures may be arbitrary
    std::lock_guard lock(mu);
    auto it = watches.find(id);
    if (it == watches.end()) return;
    dead = std::move(it->second);
    watches.erase(it);
}

result<void> zk_client::impl::wait_connected(steady_clock::time_point deadline,
                                             int32_t timeout_ms) {
    std::unique_lock lock(mu);
    cv.wait_until(lock, deadline, [&] { return state != zk_session_state::connecting; });
    if (state == zk_session_state::connected) {
        deliver_state = true;
        return ok();
    }
    if (state == zk_session_state::expired) {
        return error(errc::session_expired,
                     "ZooKeeper at " + connect_string + " refused the new session");
    }
    return error(errc::connect_failed, "no ZooKeeper session with " + connect_string +
                                           " within " + std::to_string(timeout_ms) + " ms");
}

namespace {

// The chroot and its parents, unless they are there already (another broker may make them at the
// same moment, which is fine).
result<void> ensure_chroot(zk_client& boot, const std::string& chroot) {
    auto there = boot.exists(chroot);
    if (!there) return there.error();
    if (*there) return ok();
    auto made = boot.create_recursive(chroot, "");
    if (made || made.error().is(errc::node_exists)) return ok();
    return made.error();
}

}  // namespace

zk_client::zk_client(std::unique_ptr<impl> im) : _impl(std::move(im)) {}

zk_client::~zk_client() {
    SLUICE_ASSERT(t_callback_owner != _impl.get(),
                  "a zk_client must not be destroyed from its own callback");
    {
        std::lock_guard lock(_impl->mu);
        _impl->closing = true;
    }
    zoo_set_log_callback(_impl->zh, &forward_zoo_log_closing);
    // Closes the session (its ephemerals go) and joins libzookeeper's threads, so no callback
    // runs after this; the close request to an unresponsive server is given up after 3 s.
    zookeeper_close(_impl->zh);
}

result<std::unique_ptr<zk_client>> zk_client::connect(const std::string& connect_string,
                                                      int32_t session_timeout_ms,
                                                      int32_t connect_timeout_ms,
                                                      zk_state_fn on_state) {
    if (session_timeout_ms <= 0 || connect_timeout_ms <= 0) {
        return error(errc::invalid_argument, "ZooKeeper session and connect timeouts must be > 0");
    }
    auto target = parse_connect_string(connect_string);
    if (!target) return target.error();
    auto deadline = steady_clock::now() + std::chrono::milliseconds(connect_timeout_ms);
    if (!target->chroot.empty()) {
        auto boot = open(target->hosts, session_timeout_ms, deadline, connect_timeout_ms, {});
        if (!boot) return boot.error();
        if (auto r = ensure_chroot(**boot, target->chroot); !r) {
            return error(r.error().code(), "creating chroot " + target->chroot + " at " +
                                               target->hosts + ": " + r.error().detail());
        }
    }
    return open(target->hosts + target->chroot, session_timeout_ms, deadline, connect_timeout_ms,
                std::move(on_state));
}

result<std::unique_ptr<zk_client>> zk_client::open(const std::string& target,
                                                   int32_t session_timeout_ms,
                                                   steady_clock::time_point deadline,
                                                   int32_t connect_timeout_ms,
                                                   zk_state_fn on_state) {
    set_zoo_log_level_once();
    auto im = std::make_unique<impl>();
    im->connect_string = target;
    im->on_state = std::move(on_state);
    errno = 0;
    zhandle_t* zh = zookeeper_init2(target.c_str(), &impl::session_watcher, session_timeout_ms,
                                    nullptr, im.get(), 0, &forward_zoo_log);
    if (zh == nullptr) {
        int err = errno;
        if (err == EINVAL) {
            return error(errc::invalid_argument, "'" + target + "' is not a host:port list");
        }
        // libzookeeper resolves every host up front; a name that does not resolve ends here.
        return error(errc::connect_failed, "cannot start a ZooKeeper client for '" + target +
                                               "' (does every host name resolve?): " +
                                               std::strerror(err));
    }
    im->zh = zh;
    // From here the destructor closes the handle, whatever happens next.
    std::unique_ptr<zk_client> c(new zk_client(std::move(im)));
    if (auto r = c->_impl->wait_connected(deadline, connect_timeout_ms); !r) return r.error();
    return c;
}

result<std::string> zk_client::create(const std::string& path, std::string_view data,
                                      zk_mode mode) {
    if (auto r = check_data(data, path); !r) return r.error();
    std::string created(path.size() + created_path_extra_bytes, '\0');
    int rc = zoo_create(_impl->zh, path.c_str(), data_ptr(data), static_cast<int>(data.size()),
                        &ZOO_OPEN_ACL_UNSAFE, zoo_flags(mode), created.data(),
                        static_cast<int>(created.size()));
    if (rc != ZOK) return zk_failure(rc, "create", path);
    created.resize(std::strlen(created.c_str()));
    return created;
}

result<std::string> zk_client::create_recursive(const std::string& path, std::string_view data,
                                                zk_mode mode) {
    auto r = create(path, data, mode);
    if (r || !r.error().is(errc::no_node)) return r;
    // Parents top-down; one that appears meanwhile (node_exists) is as good as one we made.
    for (auto slash = path.find('/', 1); slash != std::string::npos;
         slash = path.find('/', slash + 1)) {
        auto parent = create(path.substr(0, slash), "", zk_mode::persistent);
        if (!parent && !parent.error().is(errc::node_exists)) return parent.error();
    }
    return create(path, data, mode);
}

result<zk_node> zk_client::impl::read(const std::string& path, uint64_t watch_id) {
    std::string buf(get_buffer_bytes_initial, '\0');
    for (int attempt = 0; attempt < get_attempts_max; ++attempt) {
        int len = static_cast<int>(buf.size());
        Stat st{};
        int rc = watch_id != 0 ? zoo_wget(zh, path.c_str(), &path_watcher, watch_ctx(watch_id),
                                          buf.data(), &len, &st)
                               : zoo_get(zh, path.c_str(), 0, buf.data(), &len, &st);
        if (rc != ZOK) return zk_failure(rc, "get", path);
        if (st.dataLength <= static_cast<int32_t>(buf.size())) {
            buf.resize(static_cast<size_t>(std::max(len, 0)));  // -1: the znode has no data
            return zk_node{std::move(buf), from_stat(st)};
        }
        // Larger than the buffer: read again at its size (the same watch id is registered once).
        buf.assign(static_cast<size_t>(st.dataLength), '\0');
    }
    return error(errc::zk_error, "get " + path + ": the value kept growing while being read");
}

result<std::optional<zk_stat>> zk_client::impl::stat(const std::string& path,
                                                     uint64_t watch_id) {
    Stat st{};
    int rc = watch_id != 0
                 ? zoo_wexists(zh, path.c_str(), &path_watcher, watch_ctx(watch_id), &st)
                 : zoo_exists(zh, path.c_str(), 0, &st);
    if (rc == ZNONODE) return std::optional<zk_stat>();
    if (rc != ZOK) return zk_failure(rc, "exists", path);
    return std::optional<zk_stat>(from_stat(st));
}

result<std::vector<std::string>> zk_client::impl::children(const std::string& path,
                                                           uint64_t watch_id) {
    String_vector names{};
    int rc = watch_id != 0 ? zoo_wget_children(zh, path.c_str(), &path_watcher,
                                               watch_ctx(watch_id), &names)
                           : zoo_get_children(zh, path.c_str(), 0, &names);
    if (rc != ZOK) return zk_failure(rc, "get_children", path);
    std::vector<std::string> out(names.data, names.data + names.count);
    deallocate_String_vector(&names);
    std::sort(out.begin(), out.end());
    return out;
}

result<zk_node> zk_client::get(const std::string& path) { return _impl->read(path, 0); }

result<std::optional<zk_stat>> zk_client::exists(const std::string& path) {
    return _impl->stat(path, 0);
}

result<std::vector<std::string>> zk_client::get_children(const std::string& path) {
    return _impl->children(path, 0);
}

result<zk_node> zk_client::get(const std::string& path, zk_watch_fn on_change) {
    auto id = _impl->add_watch(std::move(on_change));
    if (!id) return id.error();
    auto r = _impl->read(path, *id);
    if (!r) _impl->drop_watch(*id);
    return r;
}

result<std::optional<zk_stat>> zk_client::exists(const std::string& path,
                                                 zk_watch_fn on_change) {
    auto id = _impl->add_watch(std::move(on_change));
    if (!id) return id.error();
    auto r = _impl->stat(path, *id);
    if (!r) _impl->drop_watch(*id);
    return r;
}

result<std::vector<std::string>> zk_client::get_children(const std::string& path,
                                                         zk_watch_fn on_change) {
    auto id = _impl->add_watch(std::move(on_change));
    if (!id) return id.error();
    auto r = _impl->children(path, *id);
    if (!r) _impl->drop_watch(*id);
    return r;
}

result<zk_stat> zk_client::set(const std::string& path, std::string_view data,
                               int32_t expected_version) {
    if (auto r = check_data(data, path); !r) return r.error();
    Stat st{};
    int rc = zoo_set2(_impl->zh, path.c_str(), data_ptr(data), static_cast<int>(data.size()),
                      expected_version, &st);
    if (rc != ZOK) return zk_failure(rc, "set", path);
    return from_stat(st);
}

result<void> zk_client::remove(const std::string& path, int32_t expected_version) {
    int rc = zoo_delete(_impl->zh, path.c_str(), expected_version);
    if (rc != ZOK) return zk_failure(rc, "delete", path);
    return ok();
}

zk_session_state zk_client::state() const {
    std::lock_guard lock(_impl->mu);
    return _impl->state;
}

int64_t zk_client::session_id() const {
    std::lock_guard lock(_impl->mu);
    return _impl->session_id;
}

int32_t zk_client::session_timeout_ms() const { return zoo_recv_timeout(_impl->zh); }

namespace {

// The C structures of one multi() call; they point into `ops` and into their own buffers.
struct multi_request {
    std::vector<zoo_op_t> ops;
    std::vector<zoo_op_result_t> results;
    std::vector<std::string> created;  // path buffers of create ops
    std::vector<Stat> stats;           // stats of set ops

    explicit multi_request(const std::vector<zk_op>& in)
        : ops(in.size()), results(in.size()), created(in.size()), stats(in.size()) {
        for (size_t i = 0; i < in.size(); ++i) init(i, in[i]);
    }

    void init(size_t i, const zk_op& op) {
        const char* path = op.path.c_str();
        const char* data = data_ptr(op.data);
        int len = static_cast<int>(op.data.size());
        switch (op.type) {
            case zk_op::kind::check: zoo_check_op_init(&ops[i], path, op.version); break;
            case zk_op::kind::create:
                created[i].assign(op.path.size() + created_path_extra_bytes, '\0');
                zoo_create_op_init(&ops[i], path, data, len, &ZOO_OPEN_ACL_UNSAFE,
                                   zoo_flags(op.mode), created[i].data(),
                                   static_cast<int>(created[i].size()));
                break;
            case zk_op::kind::set:
                zoo_set_op_init(&ops[i], path, data, len, op.version, &stats[i]);
                break;
            case zk_op::kind::remove: zoo_delete_op_init(&ops[i], path, op.version); break;
        }
    }
};

const char* op_name(zk_op::kind k) {
    switch (k) {
        case zk_op::kind::check: return "check";
        case zk_op::kind::create: return "create";
        case zk_op::kind::set: return "set";
        case zk_op::kind::remove: return "delete";
    }
    return "?";
}

// The error of a failed transaction: the first op the server refused (those after it report
// ZRUNTIMEINCONSISTENCY), or the call's own code when no op got that far (connection loss).
error multi_failure(int rc, const std::vector<zk_op>& ops, const multi_request& req) {
    for (size_t i = 0; i < ops.size(); ++i) {
        int err = req.results[i].err;
        if (err == ZOK || err == ZRUNTIMEINCONSISTENCY) continue;
        return error(zk_errc_from_rc(err), "multi op " + std::to_string(i) + " (" +
                                               op_name(ops[i].type) + " " + ops[i].path +
                                               "): " + zerror(err));
    }
    return error(zk_errc_from_rc(rc),
                 "multi of " + std::to_string(ops.size()) + " ops: " + zerror(rc));
}

}  // namespace

result<std::vector<zk_op_result>> zk_client::multi(const std::vector<zk_op>& ops) {
    if (ops.empty()) return std::vector<zk_op_result>{};
    if (ops.size() > multi_ops_max) {
        return error(errc::invalid_argument, "multi of " + std::to_string(ops.size()) +
                                                 " ops exceeds " + std::to_string(multi_ops_max));
    }
    for (const auto& op : ops) {
        if (auto r = check_data(op.data, op.path); !r) return r.error();
    }
    multi_request req(ops);
    int rc = zoo_multi(_impl->zh, static_cast<int>(ops.size()), req.ops.data(),
                       req.results.data());
    if (rc != ZOK) return multi_failure(rc, ops, req);
    std::vector<zk_op_result> out(ops.size());
    for (size_t i = 0; i < ops.size(); ++i) {
        if (ops[i].type == zk_op::kind::create) out[i].path = req.created[i].c_str();
        if (ops[i].type == zk_op::kind::set) out[i].stat = from_stat(req.stats[i]);
    }
    return out;
}

}  // namespace sluice::replication
