#!/usr/bin/env bash
# A private ZooKeeper server for cluster scripts and end-to-end tests:
#   ci/zookeeper.sh start DIR PORT   writes DIR/zoo.cfg, keeps data in DIR/data and the log in
#                                    DIR/zookeeper.log, and returns once the server grants sessions
#                                    on 127.0.0.1:PORT (within $SLUICE_ZK_START_TIMEOUT, 60 s)
#   ci/zookeeper.sh stop DIR [PORT]  SIGTERM, then SIGKILL after 10 s; DIR itself is left alone
# SLUICE_ZK_ADDRESS (default 127.0.0.1) is the address it listens on: a test that builds its own
# veth pair puts it on its end of that pair.
# It runs Debian's ZooKeeper 3.8 jars with java (packages zookeeper, default-jre-headless), never
# the system service or /etc/zookeeper, and it signals only the process whose pid it wrote in
# DIR/zookeeper.pid (checked against that process's command line first). The jars and settings
# are those of replication/testing/zk_server.cc: keep the two in step.
set -euo pipefail

usage() {
    echo "usage: $0 start DIR PORT | stop DIR [PORT]" >&2
    exit 2
}
(($# >= 2)) || usage
cmd=$1
mkdir -p "$2"
dir=$(cd "$2" && pwd)
port=${3:-}
address=${SLUICE_ZK_ADDRESS:-127.0.0.1}
pid_file=$dir/zookeeper.pid

jar_dir=/usr/share/java
# zookeeper.jar's manifest names its other dependencies; these are the ones a standalone server
# cannot start without. slf4j-simple, when present, sends its log lines to zookeeper.log.
jars=(zookeeper.jar zookeeper-jute.jar slf4j-api.jar metrics-core.jar snappy-java.jar)

find_java() {
    if [[ -n "${JAVA_HOME:-}" && -x "$JAVA_HOME/bin/java" ]]; then
        echo "$JAVA_HOME/bin/java"
    else
        command -v java && return
        echo "ci/zookeeper: no java (install default-jre-headless)" >&2
        return 1
    fi
}

classpath() {
    if [[ -n "${SLUICE_ZOOKEEPER_CLASSPATH:-}" ]]; then
        echo "$SLUICE_ZOOKEEPER_CLASSPATH"
        return
    fi
    local cp="" jar
    for jar in "${jars[@]}"; do
        if [[ ! -r $jar_dir/$jar ]]; then
            echo "ci/zookeeper: $jar_dir/$jar is missing (install zookeeper)" >&2
            return 1
        fi
        cp+="${cp:+:}$jar_dir/$jar"
    done
    if [[ -r $jar_dir/slf4j-simple.jar ]]; then cp+=":$jar_dir/slf4j-simple.jar"; fi
    echo "$cp"
}

# Session timeouts of 1 s to 30 s let tests expire sessions quickly and still accept Kafka's
# default of 18 s; fsync is off because the data is scratch. The empty whitelist turns off every
# four-letter-word command except srvr, which ZooKeeper always allows.
write_config() {
    mkdir -p "$dir/data"
    cat >"$dir/zoo.cfg" <<EOF
# A private ZooKeeper for Sluice (ci/zookeeper.sh).
tickTime=500
dataDir=$dir/data
clientPort=$port
clientPortAddress=$address
minSessionTimeout=1000
maxSessionTimeout=30000
maxClientCnxns=60
admin.enableServer=false
4lw.commands.whitelist=
forceSync=no
preAllocSize=1024
EOF
}

# The pid in DIR/zookeeper.pid if that process is still the server started for DIR.
running_pid() {
    [[ -r $pid_file ]] || return 1
    local pid
    pid=$(<"$pid_file")
    [[ $pid =~ ^[0-9]+$ && -r /proc/$pid/cmdline ]] || return 1
    tr '\0' '\n' <"/proc/$pid/cmdline" | grep -qxF "$dir/zoo.cfg" || return 1
    echo "$pid"
}

# One session handshake (a ConnectRequest asking for a 1 s session); true when the reply grants
# a non-zero timeout. A server that is still starting closes the connection or stays silent.
grants_session() {
    local reply
    reply=$(timeout 2 bash -c '
        exec 3<>"/dev/tcp/$2/$1" || exit 1
        printf "\x00\x00\x00\x2d\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00" >&3
        printf "\x00\x00\x03\xe8\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x10" >&3
        printf "\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00" >&3
        head -c 12 <&3 | od -An -tx1' _ "$port" "$address" 2>/dev/null) || return 1
    read -ra bytes <<<"$reply"
    ((${#bytes[@]} == 12)) && [[ "${bytes[*]:8:4}" != "00 00 00 00" ]]
}

start() {
    [[ $port =~ ^[0-9]+$ ]] || usage
    if pid=$(running_pid); then
        echo "ci/zookeeper: already running for $dir (pid $pid)"
        return 0
    fi
    local java cp
    java=$(find_java)
    cp=$(classpath)
    write_config
    # Small, quick-starting JVM: a test server needs little heap and no optimising compiler.
    "$java" -Xms16m -Xmx256m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -XX:-UsePerfData \
        -Djava.awt.headless=true -Dzookeeper.jmx.log4j.disable=true \
        -Dorg.slf4j.simpleLogger.showDateTime=true \
        -cp "$cp" org.apache.zookeeper.server.ZooKeeperServerMain "$dir/zoo.cfg" \
        >>"$dir/zookeeper.log" 2>&1 </dev/null &
    local pid=$!
    echo "$pid" >"$pid_file"
    local deadline=$((SECONDS + ${SLUICE_ZK_START_TIMEOUT:-60}))
    until grants_session; do
        if ! kill -0 "$pid" 2>/dev/null || ((SECONDS >= deadline)); then
            echo "ci/zookeeper: the server on $address:$port did not come up; its log ends:" >&2
            tail -n 20 "$dir/zookeeper.log" >&2 || true
            kill -KILL "$pid" 2>/dev/null || true
            rm -f "$pid_file"
            return 1
        fi
        sleep 0.1
    done
    echo "ci/zookeeper: serving $address:$port (pid $pid, log $dir/zookeeper.log)"
}

stop() {
    local pid
    if ! pid=$(running_pid); then
        echo "ci/zookeeper: nothing running for $dir"
        rm -f "$pid_file"
        return 0
    fi
    kill -CONT "$pid" 2>/dev/null || true  # a paused server would not act on SIGTERM
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 100); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then kill -KILL "$pid" 2>/dev/null || true; fi
    rm -f "$pid_file"
    echo "ci/zookeeper: stopped pid $pid"
}

case $cmd in
    start) start ;;
    stop) stop ;;
    *) usage ;;
esac
