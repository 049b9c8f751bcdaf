# Helpers shared by the deploy/local scripts (sourced, not executed).
# shellcheck shell=bash

EE_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
EE_LOCAL="$EE_ROOT/.local"

log() { printf '[%s] %s\n' "${EE_LOG_TAG:-local}" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# Seconds since the epoch with millisecond precision (for elapsed-time messages).
now_ms() { date +%s%3N; }

# True when something accepts TCP connections on host:port (bash's /dev/tcp, no nc needed).
port_open() {
    timeout 1 bash -c "exec 3<>/dev/tcp/$1/$2" 2>/dev/null
}

# The pid stored in a pid file, if that process is still alive.
live_pid() {
    local file="$1" pid
    [[ -s "$file" ]] || return 1
    pid="$(<"$file")"
    [[ "$pid" =~ ^[0-9]+$ ]] || return 1
    kill -0 "$pid" 2>/dev/null || return 1
    printf '%s\n' "$pid"
}

# True when process $1's command line contains every further argument (guards against pid reuse).
pid_cmdline_has() {
    local pid="$1" cmd
    shift
    cmd="$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null)" || return 1
    local word
    for word in "$@"; do
        [[ "$cmd" == *"$word"* ]] || return 1
    done
}

# Send SIGTERM to one pid, wait up to $2 seconds for it to exit, then SIGKILL it.
stop_pid() {
    local pid="$1" grace="${2:-30}" deadline
    kill -TERM "$pid" 2>/dev/null || return 0
    deadline=$(( $(date +%s) + grace ))
    while kill -0 "$pid" 2>/dev/null; do
        if (( $(date +%s) >= deadline )); then
            log "pid $pid still alive after ${grace}s, sending SIGKILL"
            kill -KILL "$pid" 2>/dev/null || true
            sleep 0.2
        fi
        sleep 0.1
    done
}

# Host part of a URL such as postgresql+asyncpg://user:pw@host:5432/db (empty for a socket URL).
url_host() {
    local rest="${1#*://}"
    rest="${rest%%/*}"
    rest="${rest##*@}"
    if [[ "$rest" == \[* ]]; then
        rest="${rest#[}"; rest="${rest%%]*}"
    else
        rest="${rest%%:*}"
    fi
    printf '%s\n' "$rest"
}

is_local_host() {
    case "$1" in
        ""|127.0.0.1|localhost|::1|/*) return 0 ;;
        *) return 1 ;;
    esac
}

# The service table (deploy/services.conf): one "name offset route..." line per service.
EE_SERVICES_CONF="$EE_ROOT/deploy/services.conf"

# Prints the table's lines without comments and blank lines.
service_table() {
    sed -e 's/#.*//' -e '/^[[:space:]]*$/d' "$EE_SERVICES_CONF"
}

# Names of every service, in table order, one per line.
service_names() {
    service_table | awk '{print $1}'
}

# "name:port" of every service for a port base (8000 when not given).
service_ports() {
    local base="${1:-8000}"
    service_table | awk -v base="$base" '{print $1 ":" base + $2}'
}
