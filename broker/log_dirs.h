#pragma once
// The broker's log dirs (log.dirs, JBOD) and which of them are offline, as Kafka handles a
// failed disk (KIP-112): a dir that cannot be used at start-up, or whose partition hits an I/O
// error while running, goes offline; its partitions answer KAFKA_STORAGE_ERROR and the other
// dirs keep serving. A dir stays offline until the broker restarts with it usable again.
//
// Placement: a partition stays in the online dir that holds it; a new partition goes to the
// online dir holding the fewest partitions (Kafka's rule). An existing partition found in no
// online dir while some dir is offline is offline too (it may live on the failed disk, and
// creating it afresh elsewhere would restart its offsets).
//
// The first dir is the metadata home (topics, security, producer ids): it must be usable at
// start-up.
//
// Threading: shared by every core and the admin threads; all members are safe to call from
// any thread (a mutex; dirs change state rarely).

#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "base/result.h"
#include "model/fundamental.h"

namespace sluice::broker {

class log_dir_set {
public:
    // Checks every configured dir, creating missing ones. Errors: no dir given, or the first
    // one unusable. Other unusable dirs start offline (logged).
    static result<log_dir_set> open(const std::vector<std::string>& dirs);

    log_dir_set(log_dir_set&& o) noexcept
        : _dirs(std::move(o._dirs)), _offline(std::move(o._offline)), _existing(std::move(o._existing)) {}

    const std::vector<std::string>& all() const { return _dirs; }
    const std::string& metadata_home() const { return _dirs.front(); }
    // The reason a dir is offline, or nullopt when it is online.
    std::optional<std::string> offline_reason(const std::string& dir) const;
    size_t offline_count() const;
    // Marks `dir` offline; true only for the call that changed it.
    bool take_offline(const std::string& dir, const std::string& reason);

    // Where `tp` lives (`created`: a partition being created now, which exists nowhere yet).
    // nullopt: the partition is offline.
    std::optional<std::string> place(const model::tp& tp, bool created) const;
    // Adds to the partitions that existed when a dir went offline (or, for a dir offline from
    // the start, when the broker first learned its topics). A partition found in no online dir
    // while a dir is offline is offline only if it is among them; one that appeared later (a
    // new topic, a new replica) is created on an online dir, as Kafka does for new replicas.
    void remember_existing(const std::set<model::tp>& partitions);

private:
    explicit log_dir_set(std::vector<std::string> dirs) : _dirs(std::move(dirs)) {}

    std::vector<std::string> _dirs;
    mutable std::mutex _mu;
    mutable std::mutex _place_mu;  // held across one placement (count, choose, create)
    std::map<std::string, std::string> _offline;  // dir -> why
    std::optional<std::set<model::tp>> _existing;  // see remember_existing()
};

}  // namespace sluice::broker
