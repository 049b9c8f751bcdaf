#!/usr/bin/env bash
# A cluster on this machine (issue 11): three Kafka nodes (KRaft, each broker and controller: three
# controllers, replication factor 3, min.insync.replicas=2; producers use acks=all), two instances of
# every service, all behind the front door (HAProxy) on 127.0.0.1:8000.
#
#   deploy/local/cluster.sh start    the three brokers (kafka.sh, one home each), the topics (RF 3), the
#                                    databases, instance a and b of every service (services.sh twice),
#                                    then the front door with both instances of each service. What already
#                                    runs is left alone: a second start changes nothing.
#   deploy/local/cluster.sh stop     stop all of it (by the pids the scripts wrote); data is kept
#   deploy/local/cluster.sh status   exit 0 when all of it answers
#   deploy/local/cluster.sh wipe     delete the three brokers' data (stopped first)
#   deploy/local/cluster.sh restart a|b [SERVICE...]
#                                    restart instance a (or b) of the services (default: all, side by side:
#                                    each service's other instance serves meanwhile) without failing a
#                                    request: the front door drains it (HAProxy's runtime API: state drain,
#                                    then wait until nothing is in flight on it), SIGTERM (uvicorn's graceful
#                                    shutdown: services.sh stop), start it (no migrations: the database
#                                    already runs this code; /readyz 200), state ready, and wait until
#                                    HAProxy sends it traffic again (its health check passed)
#   deploy/local/cluster.sh rolling-restart [SERVICE...]
#                                    one instance at a time: for each service, restart its instance a
#                                    (as `restart a SERVICE`: drained, stopped, started, /readyz 200, UP
#                                    in HAProxy again), then its instance b the same way; only then the
#                                    next service. At every moment every service has an instance serving
#                                    and at most one instance of the whole cluster is away
#   deploy/local/cluster.sh recover  after a crash (kill -9 of a Kafka node or an instance): start again,
#                                    side by side, whatever of it is not running; no topic or database
#                                    step and no migrations (the databases already run this code), so it
#                                    is quicker than `start` (which does the same one step after another)
#
# Layout under EE_LOCAL_RUN (.local/cluster): kafka-1..3/ (data, logs, config, pid), a/ and b/ (each
# instance set's run/ and logs/), run/ and logs/ of the front door. Ports (EE_PORT_BASE, 8000): front door
# on the base, instance a on base + 100 + offset (8101..), instance b on base + 200 + offset (8201..), the
# API document on base + 90; Kafka on EE_CLUSTER_KAFKA_PORT (29192) + 0, 2, 4 (controllers one above each).
# Databases: <service>_cluster (EE_DB_SUFFIX), shared by both instances; topics under EE_TOPIC_PREFIX.
# Restarts: EE_CLUSTER_DRAIN_TIMEOUT (60 s) for an instance's requests in flight to end once drained;
# EE_SERVICE_READY_TIMEOUT (60 s) for it to be ready and UP in HAProxy again.
#
# Ranking: both instances score (one consumer group: each its share of the partitions, in the shared
# database ranking_cluster, emitting Ranked through the outbox) and each follows the scored stream, so
# both answer pool queries over the whole pool (services/ranking/README.md, "Scaling out"). Draws ask
# ranking through the front door.
set -euo pipefail

EE_LOG_TAG=cluster
# shellcheck source=deploy/local/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

PORT_BASE="${EE_PORT_BASE:-8000}"
[[ "$PORT_BASE" =~ ^[0-9]+$ ]] && ((PORT_BASE >= 1024 && PORT_BASE <= 65000)) \
    || die "EE_PORT_BASE must be a number from 1024 to 65000, got '$PORT_BASE'"
KAFKA_PORT="${EE_CLUSTER_KAFKA_PORT:-29192}"
CLUSTER_RUN="${EE_LOCAL_RUN:-$EE_LOCAL/cluster}"
SUFFIX="${EE_DB_SUFFIX:-_cluster}"
PREFIX="${EE_TOPIC_PREFIX:-}"
HOST=127.0.0.1
NODES=(1 2 3)
INSTANCES=(a b)
LOCAL_DIR="$EE_ROOT/deploy/local"

broker_port() { echo $((KAFKA_PORT + 2 * ($1 - 1))); }
instance_base() { [[ "$1" == a ]] && echo $((PORT_BASE + 100)) || echo $((PORT_BASE + 200)); }

BOOTSTRAP=""
VOTERS=""
for node in "${NODES[@]}"; do
    BOOTSTRAP+="${BOOTSTRAP:+,}$HOST:$(broker_port "$node")"
    VOTERS+="${VOTERS:+,}$node@$HOST:$(( $(broker_port "$node") + 1 ))"
done

# The environment of one Kafka node for kafka.sh (its own home and ports; the cluster's voters).
node_env() {
    local node="$1" port
    port="$(broker_port "$node")"
    printf '%s\n' "EE_KAFKA_HOME=$CLUSTER_RUN/kafka-$node" "EE_KAFKA_PORT=$port" \
        "EE_KAFKA_CONTROLLER_PORT=$((port + 1))" "EE_KAFKA_NODE_ID=$node" "EE_KAFKA_VOTERS=$VOTERS" \
        "EE_KAFKA_REPLICATION_FACTOR=3" "EE_KAFKA_MIN_ISR=2" "KAFKA_BOOTSTRAP_SERVERS=$HOST:$port" \
        "EE_KAFKA_CLUSTER_ID=$(cluster_id)"
}

kafka_node() {
    local node="$1"
    shift
    local -a vars
    mapfile -t vars < <(node_env "$node")
    env "${vars[@]}" EE_LOG_TAG="kafka-$node" "$LOCAL_DIR/kafka.sh" "$@"
}

# One cluster id for the three nodes, chosen once and kept beside their data.
cluster_id() {
    local file="$CLUSTER_RUN/kafka-cluster-id"
    if [[ ! -s "$file" ]]; then
        mkdir -p "$CLUSTER_RUN"
        local id
        while :; do
            id="$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')"
            [[ "$id" != -* ]] && break
        done
        printf '%s\n' "$id" >"$file"
    fi
    cat "$file"
}

# The environment of one instance set of the services.
instance_env() {
    local instance="$1" base
    base="$(instance_base "$instance")"
    printf '%s\n' "EE_PORT_BASE=$base" "EE_LOCAL_RUN=$CLUSTER_RUN/$instance" "EE_DB_SUFFIX=$SUFFIX" \
        "EE_TOPIC_PREFIX=$PREFIX" "KAFKA_BOOTSTRAP_SERVERS=$BOOTSTRAP" \
        "EE_DRAWS_RANKING_URL=http://$HOST:$PORT_BASE"
}

services() {
    local instance="$1"
    shift
    local -a vars
    mapfile -t vars < <(instance_env "$instance")
    env "${vars[@]}" EE_LOG_TAG="services-$instance" "$LOCAL_DIR/services.sh" "$@"
}

frontdoor_env() {
    local instances="" upstreams="" name offset
    while read -r name offset _; do
        instances+="${instances:+,}$name=$((PORT_BASE + 100 + offset))+$((PORT_BASE + 200 + offset))"
        upstreams+="${upstreams:+,}$name=http://$HOST:$((PORT_BASE + 100 + offset))"
    done < <(service_table)
    printf '%s\n' "EE_PORT_BASE=$PORT_BASE" "EE_LOCAL_RUN=$CLUSTER_RUN" "EE_FRONTDOOR_INSTANCES=$instances" \
        "EE_GATEWAY_UPSTREAMS=$upstreams"
}

frontdoor() {
    local -a vars
    mapfile -t vars < <(frontdoor_env)
    env "${vars[@]}" "$LOCAL_DIR/frontdoor.sh" "$@"
}

cmd_start() {
    local t0 node pids=() rc=0
    t0="$(now_ms)"
    "$LOCAL_DIR/kafka.sh" fetch >/dev/null 2>&1 || "$LOCAL_DIR/kafka.sh" fetch
    cluster_id >/dev/null  # chosen once, before the three nodes format their storage side by side
    for node in "${NODES[@]}"; do
        kafka_node "$node" start & pids+=($!)
    done
    for node in "${pids[@]}"; do
        wait "$node" || rc=1
    done
    ((rc == 0)) || die "a Kafka node did not start (logs in $CLUSTER_RUN/kafka-*/logs)"
    "$EE_ROOT/.venv/bin/python" -m shared.kafka_admin --bootstrap "$BOOTSTRAP" ensure-topics \
        --prefix "$PREFIX" --replication-factor 3
    "$LOCAL_DIR/postgres.sh" start
    "$LOCAL_DIR/postgres.sh" createdbs "$SUFFIX"
    services a start
    services b start
    frontdoor start
    log "cluster ready in $(( ($(now_ms) - t0) / 1000 ))s: Kafka $BOOTSTRAP (RF 3, min ISR 2)," \
        "front door http://$HOST:$PORT_BASE"
}

cmd_recover() {
    local t0 pid pids=() rc=0 node
    t0="$(now_ms)"
    for node in "${NODES[@]}"; do
        kafka_node "$node" start & pids+=($!)
    done
    EE_SERVICES_SKIP_MIGRATIONS=1 services a start >/dev/null & pids+=($!)
    EE_SERVICES_SKIP_MIGRATIONS=1 services b start >/dev/null & pids+=($!)
    for pid in "${pids[@]}"; do
        wait "$pid" || rc=1
    done
    ((rc == 0)) || die "something did not start again (logs in $CLUSTER_RUN)"
    frontdoor start >/dev/null
    log "recovered in $(( ($(now_ms) - t0) / 1000 ))s"
}

cmd_stop() {
    frontdoor stop || true
    services b stop || true
    services a stop || true
    local node pids=()
    for node in "${NODES[@]}"; do
        kafka_node "$node" stop & pids+=($!)
    done
    for node in "${pids[@]}"; do
        wait "$node" || true
    done
}

cmd_status() {
    local rc=0 node
    for node in "${NODES[@]}"; do
        kafka_node "$node" status || rc=3
    done
    services a status || rc=3
    services b status || rc=3
    frontdoor status || rc=3
    return "$rc"
}

# HAProxy's runtime API (frontdoor.sh renders the configuration with this admin socket).
server_state() {
    "$EE_ROOT/.venv/bin/python" -m shared.haproxy_admin server-state --socket "$CLUSTER_RUN/run/haproxy.sock" "$@"
}

server_of() { echo "be_$2/$2$([[ "$1" == a ]] && echo 1 || echo 2)"; }

# Restart instance a (or b) of the services named, side by side (their other instance serves meanwhile).
cmd_restart() {
    local instance="${1:-}" name t0 pids=() rc=0 pid
    [[ "$instance" == a || "$instance" == b ]] || die "usage: $0 restart a|b [SERVICE...]"
    shift
    local -a names=("$@")
    ((${#names[@]})) || mapfile -t names < <(service_names)
    for name in "${names[@]}"; do
        service_names | grep -qx "$name" || die "unknown service '$name' ($(service_names | paste -sd' '))"
    done
    t0="$(now_ms)"
    for name in "${names[@]}"; do
        server_state "$(server_of "$instance" "$name")" drain --wait-idle "${EE_CLUSTER_DRAIN_TIMEOUT:-60}" >&2 &
        pids+=($!)
    done
    for pid in "${pids[@]}"; do wait "$pid" || rc=1; done
    ((rc == 0)) || die "could not drain instance $instance of ${names[*]} (is the front door running?)"
    services "$instance" stop "${names[@]}"
    EE_SERVICES_SKIP_MIGRATIONS=1 services "$instance" start "${names[@]}" >/dev/null
    pids=()
    for name in "${names[@]}"; do
        server_state "$(server_of "$instance" "$name")" ready --wait-up "${EE_SERVICE_READY_TIMEOUT:-60}" >&2 &
        pids+=($!)
    done
    for pid in "${pids[@]}"; do wait "$pid" || rc=1; done
    ((rc == 0)) || die "HAProxy does not send instance $instance of ${names[*]} traffic again"
    log "instance $instance of ${names[*]} restarted in $(( $(now_ms) - t0 )) ms"
}

# One instance at a time: cmd_restart returns only once the restarted instance answers /readyz (services.sh
# start waits for it) and HAProxy reports it UP again, so the next one is taken away only then.
cmd_rolling_restart() {
    local instance name t0
    local -a names=("$@")
    ((${#names[@]})) || mapfile -t names < <(service_names)
    for name in "${names[@]}"; do
        service_names | grep -qx "$name" || die "unknown service '$name' ($(service_names | paste -sd' '))"
    done
    t0="$(now_ms)"
    for name in "${names[@]}"; do
        for instance in "${INSTANCES[@]}"; do
            cmd_restart "$instance" "$name"
        done
    done
    log "rolling restart done in $(( $(now_ms) - t0 )) ms (${#names[@]} services, one instance at a time)"
}

cmd_wipe() {
    cmd_stop
    local node
    for node in "${NODES[@]}"; do
        kafka_node "$node" wipe
    done
    rm -f "$CLUSTER_RUN/kafka-cluster-id"
}

case "${1:-}" in
    start) cmd_start ;;
    recover) cmd_recover ;;
    stop) cmd_stop ;;
    status) cmd_status ;;
    wipe) cmd_wipe ;;
    restart) shift; cmd_restart "$@" ;;
    rolling-restart) shift; cmd_rolling_restart "$@" ;;
    bootstrap) echo "$BOOTSTRAP" ;;
    *)
        echo "usage: $0 {start|recover|stop|status|wipe|restart a|b [SERVICE...]|rolling-restart [SERVICE...]|bootstrap}" >&2
        exit 2
        ;;
esac
