#!/usr/bin/env bash
# The four services under uvicorn, in the background, from the repository's .venv.
#
#   deploy/local/services.sh start [NAME...]   migrate (alembic upgrade head, when services/<name>/alembic.ini
#                                             exists) and start each service, then wait for /readyz = 200;
#                                             a service already running (our pid alive, port answering)
#                                             is left alone, so a second start changes nothing
#   deploy/local/services.sh stop [NAME...]    stop the services this script started (by pid)
#   deploy/local/services.sh status [NAME...]  pid and /readyz of each; exit 0 when all are ready, 3 otherwise
#
# Services: the table deploy/services.conf (profile 8001, ranking 8002, draws 8003, applications 8004,
# all on 127.0.0.1); a new service is one line there.
# Logs: .local/logs/<name>.log (migrations too); pids: .local/run/<name>.pid.
# They inherit the environment (EE_ENV, EE_DB_SUFFIX, EE_TOPIC_PREFIX, KAFKA_BOOTSTRAP_SERVERS, ...).
# Knobs: EE_SERVICE_READY_TIMEOUT (60 s); for a second, isolated set (the end-to-end tests):
#   EE_PORT_BASE (8000): the services listen on base+1 .. base+4, and draws finds ranking at base+2
#                        unless EE_DRAWS_RANKING_URL says otherwise;
#   EE_LOCAL_RUN (.local): the directory holding run/ (pids) and logs/.
# EE_SERVICES_SKIP_MIGRATIONS=1: start without alembic (a restart of the code the database already
# runs: cluster.sh restart; its other instance keeps serving meanwhile).
set -euo pipefail

EE_LOG_TAG=services
# shellcheck source=deploy/local/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

PORT_BASE="${EE_PORT_BASE:-8000}"
[[ "$PORT_BASE" =~ ^[0-9]+$ ]] && ((PORT_BASE >= 1024 && PORT_BASE <= 65000)) \
    || die "EE_PORT_BASE must be a number from 1024 to 65000, got '$PORT_BASE'"
mapfile -t ALL_SERVICES < <(service_ports "$PORT_BASE")
HOST=127.0.0.1
VENV="$EE_ROOT/.venv"
LOCAL_RUN="${EE_LOCAL_RUN:-$EE_LOCAL}"
RUN="$LOCAL_RUN/run"
LOGS="$LOCAL_RUN/logs"
export EE_DRAWS_RANKING_URL="${EE_DRAWS_RANKING_URL:-http://$HOST:$((PORT_BASE + 2))}"
READY_TIMEOUT="${EE_SERVICE_READY_TIMEOUT:-60}"
IMPORT_ROOTS="."
for entry in "${ALL_SERVICES[@]}"; do
    IMPORT_ROOTS+=":services/${entry%%:*}"
done

# Selected services as name:port, from the arguments (default: all).
select_services() {
    SELECTED=()
    if (($# == 0)); then
        SELECTED=("${ALL_SERVICES[@]}")
        return
    fi
    local want entry found
    for want in "$@"; do
        found=""
        for entry in "${ALL_SERVICES[@]}"; do
            [[ "${entry%%:*}" == "$want" ]] && { SELECTED+=("$entry"); found=1; }
        done
        [[ -n "$found" ]] || die "unknown service '$want' (${ALL_SERVICES[*]%%:*})"
    done
}

take_lock() {
    mkdir -p "$RUN" "$LOGS"
    exec 7>"$RUN/.lock"
    flock 7
}

pidfile() { printf '%s/%s.pid\n' "$RUN" "$1"; }

# Pid of the uvicorn we started for a service, if alive (the command line guards against pid reuse).
our_pid() {
    local name="$1" port="$2" pid
    pid="$(live_pid "$(pidfile "$name")")" || return 1
    pid_cmdline_has "$pid" uvicorn "${name}_service.main:app" "--port $port" || return 1
    printf '%s\n' "$pid"
}

# HTTP status of GET /readyz (000 when nothing answers), with bash's /dev/tcp: no curl needed.
readyz_status() {
    local port="$1" line
    line="$(timeout 3 bash -c '
        exec 3<>"/dev/tcp/$0/$1" || exit 1
        printf "GET /readyz HTTP/1.0\r\nHost: %s:%s\r\nConnection: close\r\n\r\n" "$0" "$1" >&3
        head -n 1 <&3' "$HOST" "$port" 2>/dev/null)" || { echo 000; return; }
    line="${line#HTTP/* }"
    printf '%s\n' "${line:0:3}"
}

log_tail() {
    local name="$1"
    log "last lines of $LOGS/$name.log:"
    grep -v "\"GET /readyz " "$LOGS/$name.log" 2>/dev/null | tail -n 40 >&2 || true
}

with_env() {
    env PYTHONPATH="$IMPORT_ROOTS${PYTHONPATH:+:$PYTHONPATH}" "$@"
}

migrate() {
    local name="$1" ini="services/$name/alembic.ini"
    [[ -f "$EE_ROOT/$ini" ]] || return 0
    [[ "${EE_SERVICES_SKIP_MIGRATIONS:-}" == 1 ]] && return 0
    log "$name: alembic upgrade head"
    printf '\n===== %s alembic upgrade head =====\n' "$(date -Is)" >>"$LOGS/$name.log"
    if ! (cd "$EE_ROOT" && with_env "$VENV/bin/alembic" -c "$ini" upgrade head) >>"$LOGS/$name.log" 2>&1 7>&-; then
        log_tail "$name"
        die "$name: migrations failed"
    fi
}

# EE_<NAME>_WORKERS (1): processes serving the service (uvicorn --workers), e.g. EE_PROFILE_WORKERS=2.
# The pid file names uvicorn's supervisor; its workers die with it (shared.runtime, PR_SET_PDEATHSIG),
# and one of them at a time runs the consumers and jobs (shared.runtime.DutyElection).
workers_of() {
    local name="$1" var workers
    var="EE_${name^^}_WORKERS"
    workers="${!var:-1}"
    [[ "$workers" =~ ^[1-9][0-9]?$ ]] || die "$var must be a number from 1 to 99, got '$workers'"
    if [[ "$name" == ranking && "$workers" != 1 ]]; then
        die "$var: ranking holds the pool in memory and consumes every event: one process per instance"
    fi
    printf '%s\n' "$workers"
}

launch() {
    local name="$1" port="$2" file workers extra=()
    workers="$(workers_of "$name")"
    ((workers == 1)) || extra=(--workers "$workers")
    file="$(pidfile "$name")"
    rm -f "$file"
    printf '\n===== %s starting %s_service on %s:%s =====\n' "$(date -Is)" "$name" "$HOST" "$port" >>"$LOGS/$name.log"
    # setsid: Ctrl-C in the terminal does not reach the service. The inner shell records its pid,
    # then execs uvicorn (same pid).
    (
        cd "$EE_ROOT"
        exec setsid bash -c 'echo $$ >"$0"; exec "$@"' "$file" \
            env PYTHONPATH="$IMPORT_ROOTS${PYTHONPATH:+:$PYTHONPATH}" EE_WORKERS="$workers" \
            "$VENV/bin/uvicorn" "${name}_service.main:app" --host "$HOST" --port "$port" ${extra[@]+"${extra[@]}"}
    ) </dev/null >>"$LOGS/$name.log" 2>&1 7>&- &
    local i
    for i in $(seq 50); do
        [[ -s "$file" ]] && break
        sleep 0.05
    done
    [[ -s "$file" ]] || die "$name: uvicorn did not write its pid"
}

cmd_start() {
    select_services "$@"
    [[ -x "$VENV/bin/uvicorn" ]] || die "no $VENV/bin/uvicorn: run 'make venv' first"
    take_lock
    local entry name port pid missing=() waiting=() reused=()
    for entry in "${SELECTED[@]}"; do
        name="${entry%%:*}" port="${entry##*:}"
        if pid="$(our_pid "$name" "$port")"; then
            if port_open "$HOST" "$port"; then
                reused+=("$name")
            else
                log "$name: pid $pid alive but port $port not answering yet"
            fi
            waiting+=("$entry")
            continue
        fi
        rm -f "$(pidfile "$name")"
        if port_open "$HOST" "$port"; then
            die "$name: port $port is taken by a process this script did not start"
        fi
        if [[ ! -f "$EE_ROOT/services/$name/${name}_service/main.py" ]]; then
            log "$name: services/$name/${name}_service/main.py does not exist yet: not started"
            missing+=("$name")
            continue
        fi
        migrate "$name"
        launch "$name" "$port"
        log "$name: started uvicorn (pid $(<"$(pidfile "$name")")) on $HOST:$port"
        waiting+=("$entry")
    done
    ((${#reused[@]} == 0)) || log "already running: ${reused[*]}"

    # Wait for every service at once; fail fast when one exits.
    local deadline failed=() pending code
    deadline=$(( $(date +%s) + READY_TIMEOUT ))
    pending=("${waiting[@]}")
    while ((${#pending[@]} > 0)); do
        local still=()
        for entry in "${pending[@]}"; do
            name="${entry%%:*}" port="${entry##*:}"
            code="$(readyz_status "$port")"
            if [[ "$code" == 200 ]]; then
                continue
            fi
            if ! our_pid "$name" "$port" >/dev/null; then
                log_tail "$name"
                log "$name: uvicorn exited during startup"
                failed+=("$name")
                continue
            fi
            if (( $(date +%s) >= deadline )); then
                log_tail "$name"
                log "$name: /readyz still answers $code after ${READY_TIMEOUT}s (left running; see the log)"
                failed+=("$name")
                continue
            fi
            still+=("$entry")
        done
        pending=("${still[@]+"${still[@]}"}")
        ((${#pending[@]} == 0)) || sleep 0.2
    done

    local note
    for entry in "${SELECTED[@]}"; do
        name="${entry%%:*}" port="${entry##*:}" note=""
        [[ " ${missing[*]-} " == *" $name "* ]] && note="   NOT STARTED (not written yet)"
        [[ " ${failed[*]-} " == *" $name "* ]] && note="   NOT READY (see $LOGS/$name.log)"
        printf '  %-13s http://%s:%s%s\n' "$name" "$HOST" "$port" "$note"
    done
    ((${#failed[@]} == 0)) || die "not ready: ${failed[*]}"
    ((${#missing[@]} == 0)) || die "not written yet: ${missing[*]}"
    log "ready: ${waiting[*]%%:*}"
}

cmd_stop() {
    select_services "$@"
    take_lock
    local entry name port pid
    # Stop them side by side: each takes a second or two to shut down gracefully.
    for entry in "${SELECTED[@]}"; do
        name="${entry%%:*}" port="${entry##*:}"
        if pid="$(our_pid "$name" "$port")"; then
            (stop_pid "$pid" 20 && log "$name: stopped (pid $pid)") 7>&- &
        elif port_open "$HOST" "$port"; then
            log "$name: port $port answers, but not a process this script started: left alone"
        else
            log "$name: not running"
        fi
    done
    wait
    for entry in "${SELECTED[@]}"; do
        rm -f "$(pidfile "${entry%%:*}")"
    done
}

cmd_status() {
    select_services "$@"
    local entry name port pid code rc=0
    for entry in "${SELECTED[@]}"; do
        name="${entry%%:*}" port="${entry##*:}"
        code="$(readyz_status "$port")"
        if pid="$(our_pid "$name" "$port")"; then
            echo "$name: running (pid $pid) http://$HOST:$port  /readyz $code"
        elif [[ "$code" != 000 ]]; then
            echo "$name: not started by this script, but http://$HOST:$port answers (/readyz $code)"
        else
            echo "$name: not running"
        fi
        [[ "$code" == 200 ]] || rc=3
    done
    return "$rc"
}

command="${1:-}"
shift || true
case "$command" in
    start) cmd_start "$@" ;;
    stop) cmd_stop "$@" ;;
    status) cmd_status "$@" ;;
    *)
        echo "usage: $0 {start|stop|status} [$(service_names | paste -sd'|') ...]" >&2
        exit 2
        ;;
esac
