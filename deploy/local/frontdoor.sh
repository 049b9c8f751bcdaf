#!/usr/bin/env bash
# The front door: HAProxy on 127.0.0.1:8000 in front of the services, and the tiny process serving the
# merged OpenAPI document (/openapi.json, /docs) behind it.
#
#   deploy/local/frontdoor.sh start    install HAProxy (Debian's package) when missing, start the docs
#                                      process (uvicorn shared.gateway:app on base + 90) and HAProxy with the
#                                      configuration rendered from deploy/services.conf; wait until the front
#                                      door answers. Running with the same configuration: nothing changes.
#                                      Running with another (the table changed): HAProxy is restarted.
#   deploy/local/frontdoor.sh stop     stop both (by the pids this script wrote)
#   deploy/local/frontdoor.sh status   exit 0 when the front door answers /readyz with 200, 3 otherwise
#
# Routing, health checks on /readyz, X-Correlation-Id, problem+json errors: shared/gateway.py.
# Same knobs as services.sh: EE_PORT_BASE (8000: the front door on the base, the services on base +
# their offset), EE_LOCAL_RUN (.local: run/ holds haproxy.cfg and the pids, logs/ frontdoor.log and
# frontdoor-docs.log). EE_FRONTDOOR_INSTANCES (name=port+port,...) puts several instances of a service
# behind it (make cluster). Timeout: EE_SERVICE_READY_TIMEOUT (60 s).
set -euo pipefail

EE_LOG_TAG=frontdoor
# shellcheck source=deploy/local/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

PORT_BASE="${EE_PORT_BASE:-8000}"
[[ "$PORT_BASE" =~ ^[0-9]+$ ]] && ((PORT_BASE >= 1024 && PORT_BASE <= 65000)) \
    || die "EE_PORT_BASE must be a number from 1024 to 65000, got '$PORT_BASE'"
DOCS_PORT=$((PORT_BASE + 90))
HOST=127.0.0.1
VENV="$EE_ROOT/.venv"
LOCAL_RUN="${EE_LOCAL_RUN:-$EE_LOCAL}"
RUN="$LOCAL_RUN/run"
LOGS="$LOCAL_RUN/logs"
CONFIG="$RUN/haproxy.cfg"
HAPROXY_PID="$RUN/haproxy.pid"
DOCS_PID="$RUN/frontdoor-docs.pid"
READY_TIMEOUT="${EE_SERVICE_READY_TIMEOUT:-60}"

as_root() {
    if [[ "$(id -u)" == 0 ]]; then
        "$@" 6>&-
    elif command -v sudo >/dev/null; then
        sudo -n "$@" 6>&-
    else
        die "run as root (or with passwordless sudo): '$*' needs it"
    fi
}

ensure_haproxy() {
    command -v haproxy >/dev/null && return 0
    command -v apt-get >/dev/null || die "HAProxy is not installed and there is no apt-get to install it"
    log "installing HAProxy from Debian's packages"
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq haproxy >/dev/null
    command -v haproxy >/dev/null || die "apt-get install haproxy did not provide haproxy"
}

take_lock() {
    mkdir -p "$RUN" "$LOGS"
    exec 6>"$RUN/.frontdoor.lock"
    flock 6
}

haproxy_pid() {
    local pid
    pid="$(live_pid "$HAPROXY_PID")" || return 1
    pid_cmdline_has "$pid" haproxy "$CONFIG" || return 1
    printf '%s\n' "$pid"
}

docs_pid() {
    local pid
    pid="$(live_pid "$DOCS_PID")" || return 1
    pid_cmdline_has "$pid" uvicorn shared.gateway:app "--port $DOCS_PORT" || return 1
    printf '%s\n' "$pid"
}

# HTTP status of GET $2 on port $1 (000 when nothing answers).
http_status() {
    local port="$1" path="$2" line
    line="$(timeout 3 bash -c '
        exec 3<>"/dev/tcp/$0/$1" || exit 1
        printf "GET %s HTTP/1.0\r\nHost: %s:%s\r\nConnection: close\r\n\r\n" "$2" "$0" "$1" >&3
        head -n 1 <&3' "$HOST" "$port" "$path" 2>/dev/null)" || { echo 000; return; }
    line="${line#HTTP/* }"
    printf '%s\n' "${line:0:3}"
}

# Runs "$@" detached (own session), its pid in $1 (the inner shell writes it, then execs).
spawn() {
    local pidfile="$1" logfile="$2"
    shift 2
    rm -f "$pidfile"
    (
        cd "$EE_ROOT"
        exec setsid bash -c 'echo $$ >"$0"; exec "$@"' "$pidfile" "$@"
    ) </dev/null >>"$logfile" 2>&1 6>&- &
    local i
    for i in $(seq 50); do
        [[ -s "$pidfile" ]] && return 0
        sleep 0.05
    done
    die "$* did not write its pid"
}

render() {
    "$VENV/bin/python" -m shared.gateway render-haproxy --port-base "$PORT_BASE" \
        --instances "${EE_FRONTDOOR_INSTANCES:-}" --admin-socket "$RUN/haproxy.sock" >"$CONFIG.new" 6>&- || die "rendering $CONFIG failed"
    haproxy -c -q -f "$CONFIG.new" 6>&- || die "HAProxy refuses the rendered configuration $CONFIG.new"
}

wait_answer() {
    local port="$1" path="$2" what="$3" pid="$4" deadline code
    deadline=$(( $(date +%s) + READY_TIMEOUT ))
    while :; do
        code="$(http_status "$port" "$path")"
        [[ "$code" == 200 ]] && return 0
        kill -0 "$pid" 2>/dev/null || { tail -n 30 "$LOGS/frontdoor"*.log >&2 || true; die "$what exited during startup"; }
        (( $(date +%s) < deadline )) || die "$what: GET $path answers $code after ${READY_TIMEOUT}s (see $LOGS)"
        sleep 0.2
    done
}

cmd_start() {
    [[ -x "$VENV/bin/uvicorn" ]] || die "no $VENV/bin/uvicorn: run 'make venv' first"
    ensure_haproxy
    take_lock
    local pid changed=()
    if ! pid="$(docs_pid)"; then
        port_open "$HOST" "$DOCS_PORT" && die "port $DOCS_PORT (front door documents) is taken by another process"
        printf '\n===== %s starting the front door documents on %s:%s =====\n' "$(date -Is)" "$HOST" "$DOCS_PORT" \
            >>"$LOGS/frontdoor-docs.log"
        spawn "$DOCS_PID" "$LOGS/frontdoor-docs.log" env "EE_PORT_BASE=$PORT_BASE" PYTHONPATH=. \
            "$VENV/bin/uvicorn" shared.gateway:app --host "$HOST" --port "$DOCS_PORT" --no-access-log
        pid="$(<"$DOCS_PID")"
        changed+=("documents (pid $pid)")
    fi
    wait_answer "$DOCS_PORT" /healthz "the front door documents" "$pid"

    render
    if pid="$(haproxy_pid)"; then
        if cmp -s "$CONFIG" "$CONFIG.new"; then
            rm -f "$CONFIG.new"
        else
            log "the configuration changed: restarting HAProxy (pid $pid)"
            stop_pid "$pid" 10
            rm -f "$HAPROXY_PID"
        fi
    fi
    if ! pid="$(haproxy_pid)"; then
        port_open "$HOST" "$PORT_BASE" && die "port $PORT_BASE (front door) is taken by another process"
        [[ -f "$CONFIG.new" ]] && mv "$CONFIG.new" "$CONFIG"
        printf '\n===== %s starting HAProxy on %s:%s =====\n' "$(date -Is)" "$HOST" "$PORT_BASE" >>"$LOGS/frontdoor.log"
        spawn "$HAPROXY_PID" "$LOGS/frontdoor.log" haproxy -db -f "$CONFIG"
        pid="$(<"$HAPROXY_PID")"
        changed+=("HAProxy (pid $pid)")
    fi
    wait_answer "$PORT_BASE" /healthz "HAProxy" "$pid"
    if ((${#changed[@]} == 0)); then
        log "already running: front door http://$HOST:$PORT_BASE (same configuration)"
    else
        log "started ${changed[*]}"
    fi
    printf '  %-13s http://%s:%s  (/docs, /openapi.json)\n' "front door" "$HOST" "$PORT_BASE"
}

cmd_stop() {
    take_lock
    local pid
    if pid="$(haproxy_pid)"; then
        stop_pid "$pid" 10
        log "HAProxy stopped (pid $pid)"
    else
        log "HAProxy: not running"
    fi
    if pid="$(docs_pid)"; then
        stop_pid "$pid" 10
        log "front door documents stopped (pid $pid)"
    fi
    rm -f "$HAPROXY_PID" "$DOCS_PID"
}

cmd_status() {
    local code pid
    code="$(http_status "$PORT_BASE" /readyz)"
    if pid="$(haproxy_pid)"; then
        echo "front door: HAProxy running (pid $pid) http://$HOST:$PORT_BASE  /readyz $code"
    elif [[ "$code" != 000 ]]; then
        echo "front door: not started by this script, but http://$HOST:$PORT_BASE answers (/readyz $code)"
    else
        echo "front door: not running"
    fi
    [[ "$code" == 200 ]] || return 3
}

case "${1:-}" in
    start) cmd_start ;;
    stop) cmd_stop ;;
    status) cmd_status ;;
    *)
        echo "usage: $0 {start|stop|status}" >&2
        exit 2
        ;;
esac
