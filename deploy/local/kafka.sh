#!/usr/bin/env bash
# Local single-node Apache Kafka (KRaft, broker+controller) from Maven Central, no Docker.
#
#   deploy/local/kafka.sh fetch    download kafka_2.13 and its runtime jars into .local/kafka/libs (once)
#   deploy/local/kafka.sh start    fetch, format storage (once), start in the background, wait until ready;
#                                  reuses a broker that already answers on 127.0.0.1:9092
#   deploy/local/kafka.sh stop     stop the broker this script started (by pid), wait for it to exit
#   deploy/local/kafka.sh status   print state; exit 0 when a broker answers, 3 otherwise
#   deploy/local/kafka.sh wait     wait until the broker answers (as start does; see the knobs)
#   deploy/local/kafka.sh wipe     delete the broker's data (topics, offsets, cluster id); must be stopped
#
# Layout: .local/kafka/{libs,data,logs}, config .local/kafka/server.properties (rendered from
# deploy/local/server.properties.in), pid .local/kafka/kafka.pid. Data survives stop/start.
#
# When KAFKA_BOOTSTRAP_SERVERS points anywhere other than 127.0.0.1:9092 (or localhost:9092), the
# broker is somebody else's: start/stop/wipe do nothing and `wait` probes that address instead.
#
# Knobs: EE_KAFKA_VERSION (default 4.1.2), EE_KAFKA_HEAP (512m), EE_KAFKA_START_TIMEOUT (90 s),
# EE_KAFKA_START_LIMIT (900 s). A start waits for the broker to answer as long as it makes progress:
# it fails once the broker we started has neither answered nor written a log line for
# EE_KAFKA_START_TIMEOUT seconds, or after EE_KAFKA_START_LIMIT in all. A node killed with -9 recovers
# its log segments before it serves (minutes on a loaded machine, one log line per partition): that is
# progress, not a hang. A broker that is not ours (no log to watch) gets EE_KAFKA_START_TIMEOUT flat.
# A second, private broker beside the shared one (the Kafka-outage fault test starts one):
#   EE_KAFKA_PORT (9092) and EE_KAFKA_CONTROLLER_PORT (port + 1): its listeners on 127.0.0.1;
#   EE_KAFKA_HOME (.local/kafka): its data/, logs/, server.properties and pid (the jars stay in
#   .local/kafka/libs, shared by every broker of the checkout; EE_KAFKA_LIBS moves them).
# Set KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:<EE_KAFKA_PORT> with them, or the broker counts as external.
# One node of a several-node KRaft cluster (deploy/local/cluster.sh): EE_KAFKA_NODE_ID (1),
#   EE_KAFKA_VOTERS (id@host:controller-port,...; default this node alone), EE_KAFKA_CLUSTER_ID (the
#   same for every node; default a new one at the first format), EE_KAFKA_REPLICATION_FACTOR (1) and
#   EE_KAFKA_MIN_ISR (1) for the broker defaults and the internal topics.
#
#   deploy/local/kafka.sh ours     exit 0 when the broker on the port is one this script started
set -euo pipefail

EE_LOG_TAG=kafka
# shellcheck source=deploy/local/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

KAFKA_VERSION="${EE_KAFKA_VERSION:-4.1.2}"
# Kafka 4.x logs through slf4j 1.7 but its POM brings no slf4j binding: add log4j's.
LOG4J_VERSION="${EE_LOG4J_VERSION:-2.25.3}"
DEPENDENCY_PLUGIN="org.apache.maven.plugins:maven-dependency-plugin:3.10.0"
HEAP="${EE_KAFKA_HEAP:-512m}"
START_TIMEOUT="${EE_KAFKA_START_TIMEOUT:-90}"
START_LIMIT="${EE_KAFKA_START_LIMIT:-900}"

KAFKA_HOME="${EE_KAFKA_HOME:-$EE_LOCAL/kafka}"
LIBS="${EE_KAFKA_LIBS:-$EE_LOCAL/kafka/libs}"
DATA="$KAFKA_HOME/data"
LOGS="$KAFKA_HOME/logs"
CONFIG="$KAFKA_HOME/server.properties"
PIDFILE="$KAFKA_HOME/kafka.pid"
TEMPLATE="$EE_ROOT/deploy/local/server.properties.in"
LOG4J_CONFIG="$EE_ROOT/deploy/local/log4j2.properties"
HOST=127.0.0.1
PORT="${EE_KAFKA_PORT:-9092}"
CONTROLLER_PORT="${EE_KAFKA_CONTROLLER_PORT:-$((PORT + 1))}"
NODE_ID="${EE_KAFKA_NODE_ID:-1}"
VOTERS="${EE_KAFKA_VOTERS:-$NODE_ID@127.0.0.1:$CONTROLLER_PORT}"
REPLICATION="${EE_KAFKA_REPLICATION_FACTOR:-1}"
MIN_ISR="${EE_KAFKA_MIN_ISR:-1}"
for number in "$NODE_ID" "$REPLICATION" "$MIN_ISR"; do
    [[ "$number" =~ ^[0-9]+$ ]] || die "EE_KAFKA_NODE_ID, EE_KAFKA_REPLICATION_FACTOR and EE_KAFKA_MIN_ISR are numbers"
done
[[ "$VOTERS" =~ ^[0-9]+@[^,@]+:[0-9]+(,[0-9]+@[^,@]+:[0-9]+)*$ ]] || die "EE_KAFKA_VOTERS: id@host:port,... (got '$VOTERS')"
for port in "$PORT" "$CONTROLLER_PORT"; do
    [[ "$port" =~ ^[0-9]+$ ]] && ((port >= 1024 && port <= 65535)) \
        || die "EE_KAFKA_PORT / EE_KAFKA_CONTROLLER_PORT must be ports from 1024 to 65535, got '$port'"
done

BOOTSTRAP="${KAFKA_BOOTSTRAP_SERVERS:-$HOST:$PORT}"

is_external() {
    case "$BOOTSTRAP" in
        "$HOST:$PORT" | "localhost:$PORT") return 1 ;;
        *) return 0 ;;
    esac
}

# Serialise start/stop/wipe between concurrent callers (make infra, a test conftest, ...).
# The broker itself must not inherit fd 9, or it would hold the lock for its whole life.
take_lock() {
    mkdir -p "$KAFKA_HOME"
    exec 9>"$KAFKA_HOME/.lock"
    flock 9
}

ensure_tools() {
    if ! command -v java >/dev/null || ! command -v mvn >/dev/null; then
        if [[ "$(id -u)" == 0 ]] && command -v apt-get >/dev/null; then
            log "installing Java 17 and Maven from Debian's packages"
            apt-get update -qq
            DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openjdk-17-jre-headless maven >/dev/null
        else
            die "Kafka needs java (17+) and mvn on PATH"
        fi
    fi
    local major
    major="$(java -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -1)"
    [[ -n "$major" && "$major" -ge 17 ]] || die "Kafka 4.x needs Java 17 or newer (found: ${major:-unknown})"
}

# The pid of the broker this script started, if it is still alive.
our_pid() {
    local pid
    pid="$(live_pid "$PIDFILE")" || return 1
    pid_cmdline_has "$pid" kafka.Kafka "$CONFIG" || return 1
    printf '%s\n' "$pid"
}

# A real Kafka request, not only a TCP connect: ApiVersions v0 (api key 18, correlation id 1,
# client id "ee"). The listening socket is bound before the broker serves requests; this answers
# only once it does. The reply starts with size(4) correlation id(4)=1 error code(2)=0.
kafka_answers() {
    local host="${1:-$HOST}" port="${2:-$PORT}" reply
    reply="$(timeout 3 bash -c '
        exec 3<>"/dev/tcp/$0/$1" || exit 1
        printf "\x00\x00\x00\x0c\x00\x12\x00\x00\x00\x00\x00\x01\x00\x02ee" >&3
        head -c 10 <&3 | od -An -tx1 | tr -d " \n"' "$host" "$port" 2>/dev/null)" || return 1
    [[ "$reply" =~ ^[0-9a-f]{8}000000010000$ ]]
}

fetch() {
    local stamp="$LIBS/.complete-kafka_2.13-$KAFKA_VERSION"
    if [[ -f "$stamp" ]]; then
        log "kafka_2.13 $KAFKA_VERSION jars already in ${LIBS#"$EE_ROOT"/}"
        return 0
    fi
    ensure_tools
    local work="$LIBS.fetch" tmp="$LIBS.partial" t0
    t0="$(now_ms)"
    log "fetching org.apache.kafka:kafka_2.13:$KAFKA_VERSION and its runtime dependencies from Maven Central"
    rm -rf "$tmp"
    mkdir -p "$work" "$tmp"
    cat >"$work/pom.xml" <<EOF
<?xml version="1.0" encoding="UTF-8"?>
<!-- Throwaway POM written by deploy/local/kafka.sh: only used to copy Kafka's runtime jars. -->
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>local.ee</groupId>
  <artifactId>kafka-runtime</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency>
      <groupId>org.apache.kafka</groupId>
      <artifactId>kafka_2.13</artifactId>
      <version>$KAFKA_VERSION</version>
    </dependency>
    <dependency>
      <groupId>org.apache.logging.log4j</groupId>
      <artifactId>log4j-slf4j-impl</artifactId>
      <version>$LOG4J_VERSION</version>
    </dependency>
  </dependencies>
</project>
EOF
    # Maven 3.8 prints ANSI resets even in batch mode: strip them.
    mvn -B -q -Dstyle.color=never -f "$work/pom.xml" "$DEPENDENCY_PLUGIN:copy-dependencies" \
        -DoutputDirectory="$tmp" -DincludeScope=runtime 2>&1 | sed 's/\x1b\[[0-9;]*m//g' >&2 \
        || die "mvn could not fetch kafka_2.13 $KAFKA_VERSION (is Maven Central reachable?)"
    [[ -f "$tmp/kafka_2.13-$KAFKA_VERSION.jar" ]] || die "kafka_2.13-$KAFKA_VERSION.jar missing after the fetch"
    touch "$tmp/.complete-kafka_2.13-$KAFKA_VERSION"
    rm -rf "$LIBS"
    mv "$tmp" "$LIBS"
    log "fetched $(find "$LIBS" -name '*.jar' | wc -l) jars ($(du -sh "$LIBS" | cut -f1)) in $(( ($(now_ms) - t0) ))ms"
}

render_config() {
    mkdir -p "$DATA" "$LOGS"
    sed -e "s|@KAFKA_DATA_DIR@|$DATA|g" -e "s|@KAFKA_PORT@|$PORT|g" \
        -e "s|@KAFKA_CONTROLLER_PORT@|$CONTROLLER_PORT|g" -e "s|@KAFKA_NODE_ID@|$NODE_ID|g" \
        -e "s|@KAFKA_VOTERS@|$VOTERS|g" -e "s|@KAFKA_REPLICATION@|$REPLICATION|g" \
        -e "s|@KAFKA_MIN_ISR@|$MIN_ISR|g" "$TEMPLATE" >"$CONFIG.tmp"
    mv "$CONFIG.tmp" "$CONFIG"
}

java_common_opts() {
    printf '%s\n' \
        -Djava.awt.headless=true \
        "-Dlog4j2.configurationFile=file:$LOG4J_CONFIG" \
        "-Dkafka.logs.dir=$LOGS" \
        -cp "$LIBS/*"
}

# Kafka's cluster id: 16 random bytes, URL-safe base64 without padding, not starting with '-'.
new_cluster_id() {
    local id
    while :; do
        id="$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')"
        [[ "$id" != -* ]] && break
    done
    printf '%s\n' "$id"
}

format_storage() {
    if [[ -f "$DATA/meta.properties" ]]; then
        return 0
    fi
    local cid
    cid="${EE_KAFKA_CLUSTER_ID:-$(new_cluster_id)}"
    log "formatting storage in ${DATA#"$EE_ROOT"/} (cluster id $cid)"
    local -a opts
    mapfile -t opts < <(java_common_opts)
    java -Xmx256m -XX:TieredStopAtLevel=1 "${opts[@]}" \
        kafka.tools.StorageTool format -t "$cid" -c "$CONFIG" --ignore-formatted \
        >>"$LOGS/format.log" 2>&1 9>&- \
        || { tail -n 30 "$LOGS/format.log" >&2; die "formatting the storage failed (log above)"; }
}

launch() {
    local -a opts
    mapfile -t opts < <(java_common_opts)
    rm -f "$PIDFILE"
    {
        printf '\n===== %s starting kafka_2.13 %s =====\n' "$(date -Is)" "$KAFKA_VERSION"
    } >>"$LOGS/kafka.out"
    # setsid: the broker leaves our session, so Ctrl-C in the terminal (or make/pytest being
    # interrupted) does not kill it. The inner shell writes its own pid, then execs java (same pid).
    (
        cd "$KAFKA_HOME"
        exec setsid bash -c 'echo $$ >"$0"; exec "$@"' "$PIDFILE" \
            java "-Xms$HEAP" "-Xmx$HEAP" -XX:+ExitOnOutOfMemoryError \
            -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35 \
            -XX:+ExplicitGCInvokesConcurrent "${opts[@]}" kafka.Kafka "$CONFIG"
    ) </dev/null >>"$LOGS/kafka.out" 2>&1 9>&- &
    local i
    for i in $(seq 50); do
        [[ -s "$PIDFILE" ]] && break
        sleep 0.05
    done
    [[ -s "$PIDFILE" ]] || die "the broker did not write its pid"
}

print_log_tail() {
    log "last lines of ${LOGS#"$EE_ROOT"/}/kafka.out and server.log:"
    tail -n 20 "$LOGS/kafka.out" >&2 2>/dev/null || true
    tail -n 40 "$LOGS/server.log" >&2 2>/dev/null || true
}

# What the broker we started has logged so far (sizes and times of its log files): a change is progress.
log_mark() {
    { stat -c '%n:%s:%Y' "$LOGS"/server.log "$LOGS"/controller.log "$LOGS"/kafka.out 2>/dev/null || true; } \
        | tr '\n' ' '
}

# Wait until the broker answers; fail early when the process we started dies. The broker we started (a
# pid) gets START_TIMEOUT seconds without progress (no answer and nothing new in its logs), at most
# START_LIMIT in all; any other one START_TIMEOUT seconds.
wait_ready() {
    local pid="${1:-}" host="${2:-$HOST}" port="${3:-$PORT}" t0 now last_progress mark seen
    t0="$(date +%s)"
    last_progress="$t0"
    seen=""
    [[ -z "$pid" ]] || seen="$(log_mark)"
    until kafka_answers "$host" "$port"; do
        if [[ -n "$pid" ]] && ! kill -0 "$pid" 2>/dev/null; then
            print_log_tail
            die "the broker (pid $pid) exited during startup"
        fi
        now="$(date +%s)"
        if [[ -n "$pid" ]]; then
            mark="$(log_mark)"
            [[ "$mark" != "$seen" ]] && { seen="$mark"; last_progress="$now"; }
            if (( now - last_progress >= START_TIMEOUT || now - t0 >= START_LIMIT )); then
                print_log_tail
                die "no Kafka answer on $host:$port after $(( now - t0 ))s (nothing new in its logs for" \
                    "$(( now - last_progress ))s; EE_KAFKA_START_TIMEOUT=$START_TIMEOUT, EE_KAFKA_START_LIMIT=$START_LIMIT)"
            fi
        elif (( now - t0 >= START_TIMEOUT )); then
            die "no Kafka answer on $host:$port after ${START_TIMEOUT}s"
        fi
        sleep 0.1
    done
}

cmd_start() {
    if is_external; then
        log "KAFKA_BOOTSTRAP_SERVERS=$BOOTSTRAP is not the local broker: nothing to start"
        return 0
    fi
    take_lock
    local pid t0
    t0="$(now_ms)"
    if pid="$(our_pid)"; then
        wait_ready "$pid"
        log "already running (pid $pid) on $HOST:$PORT"
        return 0
    fi
    if port_open "$HOST" "$PORT"; then
        wait_ready ""
        log "a broker not started by this script answers on $HOST:$PORT: reusing it"
        return 0
    fi
    if port_open "$HOST" "$CONTROLLER_PORT"; then
        die "port $CONTROLLER_PORT (KRaft controller) is taken by another process"
    fi
    fetch
    render_config
    format_storage
    launch
    pid="$(<"$PIDFILE")"
    wait_ready "$pid"
    log "started kafka_2.13 $KAFKA_VERSION (pid $pid) on $HOST:$PORT in $(( $(now_ms) - t0 ))ms;" \
        "logs in ${LOGS#"$EE_ROOT"/}"
}

cmd_stop() {
    if is_external; then
        log "KAFKA_BOOTSTRAP_SERVERS=$BOOTSTRAP is not the local broker: nothing to stop"
        return 0
    fi
    take_lock
    local pid t0
    if ! pid="$(our_pid)"; then
        rm -f "$PIDFILE"
        if port_open "$HOST" "$PORT"; then
            log "not stopping: the broker on $HOST:$PORT was not started by this script"
        else
            log "not running"
        fi
        return 0
    fi
    t0="$(now_ms)"
    log "stopping the broker (pid $pid)"
    stop_pid "$pid" 60
    rm -f "$PIDFILE"
    log "stopped in $(( $(now_ms) - t0 ))ms"
}

cmd_status() {
    local pid cid=""
    [[ -f "$DATA/meta.properties" ]] && cid="$(sed -n 's/^cluster.id=//p' "$DATA/meta.properties")"
    if is_external; then
        local first="${BOOTSTRAP%%,*}"
        if kafka_answers "${first%:*}" "${first##*:}"; then
            echo "kafka: external broker $BOOTSTRAP answers"
            return 0
        fi
        echo "kafka: external broker $BOOTSTRAP does not answer"
        return 3
    fi
    if pid="$(our_pid)"; then
        if kafka_answers; then
            echo "kafka: running (pid $pid) on $HOST:$PORT, cluster id ${cid:-?}, kafka_2.13 $KAFKA_VERSION"
            return 0
        fi
        echo "kafka: starting (pid $pid), not answering yet on $HOST:$PORT"
        return 3
    fi
    if kafka_answers; then
        echo "kafka: a broker not started by this script answers on $HOST:$PORT"
        return 0
    fi
    echo "kafka: not running${cid:+ (data kept, cluster id $cid)}"
    return 3
}

cmd_wait() {
    if is_external; then
        local first="${BOOTSTRAP%%,*}"
        wait_ready "" "${first%:*}" "${first##*:}"
    else
        wait_ready "$(our_pid || true)"
    fi
    log "answering on $BOOTSTRAP"
}

cmd_wipe() {
    if is_external; then
        log "KAFKA_BOOTSTRAP_SERVERS=$BOOTSTRAP is not the local broker: nothing to wipe"
        return 0
    fi
    take_lock
    if our_pid >/dev/null; then
        die "the broker is running: run '$0 stop' first"
    fi
    rm -rf "$DATA"
    log "wiped ${DATA#"$EE_ROOT"/} (topics, offsets and cluster id); the next start formats a new cluster"
}

cmd_ours() {
    is_external && return 1
    our_pid >/dev/null
}

case "${1:-}" in
    fetch) fetch ;;
    ours) cmd_ours ;;
    start) cmd_start ;;
    stop) cmd_stop ;;
    status) cmd_status ;;
    wait) cmd_wait ;;
    wipe) cmd_wipe ;;
    *)
        echo "usage: $0 {fetch|start|stop|status|wait|wipe|ours}" >&2
        exit 2
        ;;
esac
