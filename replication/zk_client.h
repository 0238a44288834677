#pragma once
// zk_client: a small synchronous C++ face over libzookeeper-mt (Debian's libzookeeper-mt 3.8),
// the base of the ZooKeeper metadata store and the controller (DESIGN.md section 7).
//
// Ownership and lifecycle: the owner (the controller / metadata thread) makes a client with
// connect(), which returns once a session is established, and destroys it when done; destroying
// it closes the session, so every ephemeral znode it created disappears. The wrapper never
// reconnects after expiry: while merely disconnected, libzookeeper reconnects by itself and the
// session (with its ephemerals and watches) survives if it comes back within the session
// timeout; once the session has expired, every call fails with `session_expired`, on_state
// reports `expired`, and the owner makes a new client (and re-registers what it needs).
//
// Threading: every method may be called from any thread, concurrently. Calls block the caller
// until ZooKeeper answers or the connection is lost (about two thirds of the session timeout at
// worst), so they belong on a control thread and never on a reactor core. Callbacks (watches and
// on_state) run on libzookeeper's single completion thread, one at a time, in event order; they
// may call this client's methods (replies are handled on libzookeeper's separate I/O thread),
// should hand longer work to their owner's thread, and must not destroy the client (asserted).
//
// Paths are absolute ("/brokers/ids/1") and relative to the chroot of the connect string, if it
// has one. Znodes are created with the open ACL (world: all), as Kafka does without
// zookeeper.set.acl. Data is raw bytes in a std::string.

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "replication/errc.h"

namespace sluice::replication {

// The parts of a znode's Stat the controller needs.
struct zk_stat {
    int32_t version = 0;          // data version: the `expected_version` of set/remove/check
    int32_t child_version = 0;    // bumped by every create/delete of a child
    int64_t ephemeral_owner = 0;  // session id that owns an ephemeral znode; 0 if persistent
    int64_t modified_zxid = 0;    // zxid of the last data change
    int32_t data_bytes = 0;
    int32_t children = 0;
};

struct zk_node {
    std::string data;
    zk_stat stat;
};

enum class zk_mode { persistent, ephemeral, persistent_sequential, ephemeral_sequential };

// What the session is doing. `connecting` covers a lost connection that libzookeeper is busy
// re-establishing; `expired` is final (an authentication failure is reported as expired too).
enum class zk_session_state { connecting, connected, expired };

// Why a watch fired. A watch is one-shot: it fires once when its znode is created, changed or
// deleted, or its children change (get_children), and also once if the session expires first, so
// that nobody waits forever on a dead session.
enum class zk_event { created, changed, deleted, children_changed, session_expired };

using zk_watch_fn = std::function<void(zk_event)>;
using zk_state_fn = std::function<void(zk_session_state)>;

// One operation of a multi() transaction. Build them with the named constructors.
struct zk_op {
    enum class kind { check, create, set, remove };
    kind type = kind::check;
    std::string path;
    std::string data;
    int32_t version = -1;  // check/set/remove: the expected version; -1 = any (check: exists)
    zk_mode mode = zk_mode::persistent;

    static zk_op check(std::string path, int32_t version);
    static zk_op create(std::string path, std::string data, zk_mode mode = zk_mode::persistent);
    static zk_op set(std::string path, std::string data, int32_t version = -1);
    static zk_op remove(std::string path, int32_t version = -1);
};

// The outcome of one successful multi() operation: the created path (create), the new stat (set).
struct zk_op_result {
    std::string path;
    zk_stat stat;
};

class zk_client {
public:
    // `connect_string` is Kafka's zookeeper.connect: "host:port[,host:port...][/chroot]". A chroot
    // that does not exist yet is created first (as Kafka does): a session without it creates the
    // path and its parents, then the real session is opened inside it. Waits up to
    // `connect_timeout_ms` for a connected session; `session_timeout_ms` is a request that the
    // server bounds by its min/max session timeouts. `on_state` (optional) hears every session
    // state change after connect() has returned.
    static result<std::unique_ptr<zk_client>> connect(const std::string& connect_string,
                                                      int32_t session_timeout_ms,
                                                      int32_t connect_timeout_ms,
                                                      zk_state_fn on_state = {});
    ~zk_client();
    zk_client(const zk_client&) = delete;
    zk_client& operator=(const zk_client&) = delete;

    // Creates `path` and returns its real name (with the sequence suffix for *_sequential).
    // Fails with node_exists, or no_node when the parent is missing.
    result<std::string> create(const std::string& path, std::string_view data,
                               zk_mode mode = zk_mode::persistent);
    // As create(), but first makes any missing parents (persistent, empty). Still fails with
    // node_exists when `path` itself is there, so it can register an ephemeral znode safely.
    result<std::string> create_recursive(const std::string& path, std::string_view data,
                                         zk_mode mode = zk_mode::persistent);

    result<zk_node> get(const std::string& path);
    // Writes `data` if the znode's version is `expected_version` (-1 = any); bad_version if not.
    result<zk_stat> set(const std::string& path, std::string_view data,
                        int32_t expected_version = -1);
    // Deletes the znode if its version is `expected_version` (-1 = any).
    result<void> remove(const std::string& path, int32_t expected_version = -1);
    // nullopt when the znode does not exist (not an error).
    result<std::optional<zk_stat>> exists(const std::string& path);
    // Child names (not full paths), sorted.
    result<std::vector<std::string>> get_children(const std::string& path);

    // The same reads, also leaving a one-shot watch (see zk_event). The watch is left only when
    // the read succeeds (for exists(), also when the znode is missing: it fires on creation); if
    // the call returns an error, `on_change` is never called. It is never called after the
    // client is destroyed.
    result<zk_node> get(const std::string& path, zk_watch_fn on_change);
    result<std::optional<zk_stat>> exists(const std::string& path, zk_watch_fn on_change);
    result<std::vector<std::string>> get_children(const std::string& path, zk_watch_fn on_change);

    // Applies every op atomically or none. On failure the error is the code of the first op that
    // failed (bad_version for a failed check), and its detail names that op's index and path.
    result<std::vector<zk_op_result>> multi(const std::vector<zk_op>& ops);

    zk_session_state state() const;
    // The session id (the ephemeral_owner of znodes this client creates).
    int64_t session_id() const;
    // The session timeout the server granted (it bounds the requested one by its limits).
    int32_t session_timeout_ms() const;

private:
    struct impl;
    explicit zk_client(std::unique_ptr<impl> im);
    // One session to `target` (hosts plus chroot), connected by `deadline`.
    static result<std::unique_ptr<zk_client>> open(const std::string& target,
                                                   int32_t session_timeout_ms,
                                                   std::chrono::steady_clock::time_point deadline,
                                                   int32_t connect_timeout_ms,
                                                   zk_state_fn on_state);
    std::unique_ptr<impl> _impl;
};

// libzookeeper's ZOO_* return code as this module's errc (ZOK is errc::ok). Public for its test.
errc zk_errc_from_rc(int zoo_rc);

}  // namespace sluice::replication
