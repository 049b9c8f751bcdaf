#!/usr/bin/env bash
# Local PostgreSQL (Debian's packages, the system cluster 15/main on 127.0.0.1:5432).
#
#   deploy/local/postgres.sh install            apt-get install postgresql when it is missing
#   deploy/local/postgres.sh start              install if needed, start the cluster if down, wait until it
#                                               accepts connections, set max_connections (restart only when
#                                               it changed), ensure role ee/ee (LOGIN CREATEDB)
#   deploy/local/postgres.sh stop|restart       pg_ctlcluster stop|restart (`make down` does NOT stop it)
#   deploy/local/postgres.sh status             cluster state, max_connections, our databases
#   deploy/local/postgres.sh createdbs [SUFFIX] create each service's database (deploy/services.conf) + SUFFIX
#                                               (default $EE_DB_SUFFIX) owned by ee; idempotent
#   deploy/local/postgres.sh dropdbs [SUFFIX]   drop them (connections are terminated)
#
# Everything runs as root (or through `sudo -n`): the server belongs to the postgres user and is
# administered over its Unix socket with peer authentication. Services connect as ee over the Unix
# socket by default (postgresql://ee:ee@/<db>: no host), which `start` lets ee do with its password
# (a `local all ee scram-sha-256` line in pg_hba.conf, ahead of Debian's `local all all peer`); a URL
# naming 127.0.0.1:5432 connects over TCP (scram-sha-256), as some tests do.
#
# External databases: when EE_<SERVICE>_DATABASE_URL (EE_PROFILE_DATABASE_URL, EE_RANKING_..., EE_DRAWS_...,
# EE_APPLICATIONS_...) names a host other than 127.0.0.1/localhost, that database is not managed here;
# when all four do, this script does nothing at all (no install, no start). A URL on the local host
# keeps its database name (the path of the URL) instead of <service><suffix>.
#
# A second, private cluster (the PostgreSQL-restart fault test runs one): EE_PG_PORT (5432) with
# EE_PG_CLUSTER naming it; `start` creates it (pg_createcluster) when no cluster has that port or name.
#
# Knobs: EE_PG_VERSION (default: the cluster on port EE_PG_PORT, else 15), EE_PG_CLUSTER (main),
#        EE_PG_MAX_CONNECTIONS (300: four services x (pool + relay + consumers) + tests).
set -euo pipefail

EE_LOG_TAG=postgres
# shellcheck source=deploy/local/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# deploy/services.conf's services that own a database: those with migrations (the console has none).
mapfile -t SERVICES < <(service_names | while read -r name; do
    [[ -f "$EE_ROOT/services/$name/alembic.ini" ]] && printf '%s\n' "$name"; done)
ROLE=ee
ROLE_PASSWORD=ee
PG_HOST=127.0.0.1
PG_PORT="${EE_PG_PORT:-5432}"
[[ "$PG_PORT" =~ ^[0-9]+$ ]] || die "EE_PG_PORT must be a port number, got '$PG_PORT'"
PG_CLUSTER="${EE_PG_CLUSTER:-main}"
MAX_CONNECTIONS="${EE_PG_MAX_CONNECTIONS:-300}"
READY_TIMEOUT=60

# Runs a command as root. fd 8 (our lock) is closed for it: pg_ctlcluster and apt-get start server
# processes that would otherwise inherit the lock and hold it for as long as PostgreSQL runs.
as_root() {
    if [[ "$(id -u)" == 0 ]]; then
        "$@" 8>&-
    elif command -v sudo >/dev/null; then
        sudo -n "$@" 8>&-
    else
        die "run as root (or with passwordless sudo): '$*' needs it"
    fi
}

# psql as the postgres superuser over the Unix socket (peer auth). cd / avoids "could not change
# directory" noise when the checkout is not readable by postgres.
pg_psql() {
    (cd / && as_root runuser -u postgres -- psql -X -q -v ON_ERROR_STOP=1 -p "$PG_PORT" -d postgres "$@")
}

pg_scalar() {
    pg_psql -tA -c "$1"
}

# --- which databases are ours -------------------------------------------------------------------

url_var() { printf 'EE_%s_DATABASE_URL\n' "${1^^}"; }

# Prints "local <dbname>" or "external <host>" for a service.
db_target() {
    local service="$1" suffix="$2" var url host name
    var="$(url_var "$service")"
    url="${!var:-}"
    if [[ -z "$url" ]]; then
        printf 'local %s%s\n' "$service" "$suffix"
        return
    fi
    host="$(url_host "$url")"
    if is_local_host "$host"; then
        name="${url#*://}"
        name="${name#*/}"
        name="${name%%\?*}"
        [[ "$name" != "${url#*://}" && -n "$name" ]] || name="$service$suffix"
        printf 'local %s\n' "$name"
    else
        printf 'external %s\n' "$host"
    fi
}

all_external() {
    local service
    for service in "${SERVICES[@]}"; do
        [[ "$(db_target "$service" "")" == external* ]] || return 1
    done
}

# --- the cluster ---------------------------------------------------------------------------------

installed() {
    command -v pg_lsclusters >/dev/null && command -v pg_ctlcluster >/dev/null
}

cmd_install() {
    if installed; then
        return 0
    fi
    command -v apt-get >/dev/null || die "PostgreSQL is not installed and there is no apt-get to install it"
    log "installing PostgreSQL from Debian's packages"
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
    installed || die "apt-get install postgresql did not provide pg_ctlcluster"
}

# Sets PG_VERSION: $EE_PG_VERSION, else the version of the cluster on port 5432, else any cluster
# named $PG_CLUSTER; creates the cluster when there is none.
find_cluster() {
    PG_VERSION="${EE_PG_VERSION:-}"
    if [[ -z "$PG_VERSION" ]]; then
        PG_VERSION="$(pg_lsclusters -h | awk -v p="$PG_PORT" '$3 == p {print $1; exit}')"
    fi
    if [[ -z "$PG_VERSION" ]]; then
        PG_VERSION="$(pg_lsclusters -h | awk -v c="$PG_CLUSTER" '$2 == c {print $1; exit}')"
    fi
    if [[ -z "$PG_VERSION" ]]; then
        PG_VERSION="$(find /usr/lib/postgresql -mindepth 1 -maxdepth 1 -printf '%f\n' 2>/dev/null | sort -n | tail -1)"
        [[ -n "$PG_VERSION" ]] || die "no PostgreSQL server binaries under /usr/lib/postgresql"
        log "creating cluster $PG_VERSION/$PG_CLUSTER on port $PG_PORT"
        as_root pg_createcluster "$PG_VERSION" "$PG_CLUSTER" --port "$PG_PORT" >/dev/null
    fi
    local port
    port="$(pg_lsclusters -h | awk -v v="$PG_VERSION" -v c="$PG_CLUSTER" '$1 == v && $2 == c {print $3}')"
    [[ -n "$port" ]] || die "cluster $PG_VERSION/$PG_CLUSTER does not exist (pg_lsclusters)"
    [[ "$port" == "$PG_PORT" ]] || die "cluster $PG_VERSION/$PG_CLUSTER listens on port $port, not $PG_PORT"
}

cluster_online() {
    pg_lsclusters -h | awk -v v="$PG_VERSION" -v c="$PG_CLUSTER" '$1 == v && $2 == c {print $4}' \
        | grep -q '^online'
}

wait_accepting() {
    local deadline=$(( $(date +%s) + READY_TIMEOUT ))
    until pg_isready -q -h "$PG_HOST" -p "$PG_PORT"; do
        if (( $(date +%s) >= deadline )); then
            tail -n 20 "/var/log/postgresql/postgresql-$PG_VERSION-$PG_CLUSTER.log" >&2 2>/dev/null || true
            die "PostgreSQL does not accept connections on $PG_HOST:$PG_PORT after ${READY_TIMEOUT}s"
        fi
        sleep 0.1
    done
}

ensure_max_connections() {
    local current
    current="$(pg_scalar "SHOW max_connections")"
    if [[ "$current" == "$MAX_CONNECTIONS" ]]; then
        return 0
    fi
    log "max_connections $current -> $MAX_CONNECTIONS (ALTER SYSTEM, restarting the cluster)"
    pg_psql -c "ALTER SYSTEM SET max_connections = $MAX_CONNECTIONS"
    as_root pg_ctlcluster "$PG_VERSION" "$PG_CLUSTER" restart
    wait_accepting
}

ensure_role() {
    pg_psql <<SQL
DO \$\$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$ROLE') THEN
        CREATE ROLE $ROLE LOGIN CREATEDB PASSWORD '$ROLE_PASSWORD';
    ELSE
        ALTER ROLE $ROLE LOGIN CREATEDB PASSWORD '$ROLE_PASSWORD';
    END IF;
END
\$\$;
SQL
}

# ee logs in with its password over the Unix socket too. Debian's pg_hba.conf has `local all all peer`,
# which would ask for an OS user named ee: our line goes before the first `local` line.
ensure_socket_login() {
    local hba line
    hba="$(pg_scalar "SHOW hba_file")"
    line="local   all             $ROLE                                      scram-sha-256"
    if as_root grep -Eq "^local[[:space:]]+all[[:space:]]+$ROLE[[:space:]]+scram-sha-256" "$hba"; then
        return 0
    fi
    if as_root grep -Eq '^local[[:space:]]' "$hba"; then
        as_root sed -i "0,/^local[[:space:]]/s//$line\n&/" "$hba"
    else
        printf '%s\n' "$line" | as_root tee -a "$hba" >/dev/null
    fi
    pg_scalar "SELECT pg_reload_conf()" >/dev/null
    log "pg_hba.conf: $ROLE may log in with its password over the Unix socket"
}

take_lock() {
    mkdir -p "$EE_LOCAL"
    exec 8>"$EE_LOCAL/.postgres.lock"
    flock 8
}

cmd_start() {
    if all_external; then
        log "every EE_<SERVICE>_DATABASE_URL points to another host: no local PostgreSQL needed"
        return 0
    fi
    take_lock
    cmd_install
    find_cluster
    local t0
    t0="$(now_ms)"
    if ! cluster_online; then
        log "starting cluster $PG_VERSION/$PG_CLUSTER"
        as_root pg_ctlcluster "$PG_VERSION" "$PG_CLUSTER" start
    fi
    wait_accepting
    ensure_max_connections
    ensure_role
    ensure_socket_login
    log "cluster $PG_VERSION/$PG_CLUSTER accepting connections on $PG_HOST:$PG_PORT" \
        "(max_connections $MAX_CONNECTIONS, role $ROLE) after $(( $(now_ms) - t0 ))ms"
}

cmd_stop() {
    if all_external; then
        log "every database is external: nothing to stop"
        return 0
    fi
    installed || { log "PostgreSQL is not installed"; return 0; }
    take_lock
    find_cluster
    if cluster_online; then
        as_root pg_ctlcluster "$PG_VERSION" "$PG_CLUSTER" stop
        log "stopped cluster $PG_VERSION/$PG_CLUSTER"
    else
        log "cluster $PG_VERSION/$PG_CLUSTER is not running"
    fi
}

cmd_restart() {
    cmd_stop
    exec 8>&-
    cmd_start
}

valid_suffix() {
    [[ "$1" =~ ^[a-z0-9_]*$ ]] || die "database suffix '$1' must match [a-z0-9_]*"
}

# Names of the local databases for a suffix, one per line.
local_dbs() {
    local service target
    for service in "${SERVICES[@]}"; do
        target="$(db_target "$service" "$1")"
        if [[ "$target" == local* ]]; then
            printf '%s\n' "${target#local }"
        else
            log "$service: database on ${target#external } (EE_${service^^}_DATABASE_URL), not managed here"
        fi
    done
}

# Make sure the server is up before touching databases (the caller may not have run `start`).
require_running() {
    cmd_install
    find_cluster
    cluster_online && pg_isready -q -h "$PG_HOST" -p "$PG_PORT" && return 0
    exec 8>&-
    cmd_start
}

cmd_createdbs() {
    local suffix="${1-${EE_DB_SUFFIX:-}}" db created=() existing=()
    valid_suffix "$suffix"
    all_external && { log "every database is external: nothing to create"; return 0; }
    require_running
    take_lock
    ensure_role
    while read -r db; do
        [[ "$db" =~ ^[a-z_][a-z0-9_]*$ ]] || die "unexpected database name '$db'"
        if [[ "$(pg_scalar "SELECT 1 FROM pg_database WHERE datname = '$db'")" == 1 ]]; then
            pg_psql -c "ALTER DATABASE \"$db\" OWNER TO $ROLE"
            existing+=("$db")
        else
            pg_psql -c "CREATE DATABASE \"$db\" OWNER $ROLE"
            created+=("$db")
        fi
    done < <(local_dbs "$suffix")
    # Prove the ways services and tests connect (the Unix socket and TCP, with the password) work.
    local probe="${created[0]:-${existing[0]:-postgres}}" socket_dir
    socket_dir="$(pg_scalar "SHOW unix_socket_directories" | cut -d, -f1)"
    PGPASSWORD="$ROLE_PASSWORD" psql -X -q -h "$socket_dir" -p "$PG_PORT" -U "$ROLE" -d "$probe" -tAc 'SELECT 1' \
        >/dev/null || die "cannot log in as $ROLE over the Unix socket ($socket_dir): check pg_hba.conf"
    PGPASSWORD="$ROLE_PASSWORD" psql -X -q -h "$PG_HOST" -p "$PG_PORT" -U "$ROLE" -d "$probe" -tAc 'SELECT 1' \
        >/dev/null || die "cannot log in as $ROLE over TCP ($PG_HOST:$PG_PORT): check pg_hba.conf"
    log "databases ready (owner $ROLE):${created[*]:+ created ${created[*]}}${existing[*]:+ existing ${existing[*]}}"
}

cmd_dropdbs() {
    local suffix="${1-${EE_DB_SUFFIX:-}}" db dropped=()
    valid_suffix "$suffix"
    all_external && { log "every database is external: nothing to drop"; return 0; }
    require_running
    take_lock
    while read -r db; do
        [[ "$db" =~ ^[a-z_][a-z0-9_]*$ ]] || die "unexpected database name '$db'"
        pg_psql -c "SET client_min_messages = warning" -c "DROP DATABASE IF EXISTS \"$db\" WITH (FORCE)"
        dropped+=("$db")
    done < <(local_dbs "$suffix")
    log "dropped (if present): ${dropped[*]}"
}

cmd_status() {
    if all_external; then
        echo "postgres: every database is external (EE_<SERVICE>_DATABASE_URL)"
        return 0
    fi
    if ! installed; then
        echo "postgres: not installed"
        return 3
    fi
    find_cluster
    if ! cluster_online || ! pg_isready -q -h "$PG_HOST" -p "$PG_PORT"; then
        echo "postgres: cluster $PG_VERSION/$PG_CLUSTER is down"
        return 3
    fi
    local suffix="${EE_DB_SUFFIX:-}" dbs
    dbs="$(pg_scalar "SELECT string_agg(datname, ' ' ORDER BY datname) FROM pg_database
                      WHERE datname ~ '^($(IFS='|'; echo "${SERVICES[*]}"))'")"
    echo "postgres: cluster $PG_VERSION/$PG_CLUSTER online on $PG_HOST:$PG_PORT," \
        "max_connections $(pg_scalar "SHOW max_connections"), databases: ${dbs:-none}" \
        "(suffix '${suffix}')"
}

case "${1:-}" in
    install) take_lock; cmd_install ;;
    start) cmd_start ;;
    stop) cmd_stop ;;
    restart) cmd_restart ;;
    status) cmd_status ;;
    createdbs) shift; cmd_createdbs "$@" ;;
    dropdbs) shift; cmd_dropdbs "$@" ;;
    *)
        echo "usage: $0 {install|start|stop|restart|status|createdbs [SUFFIX]|dropdbs [SUFFIX]}" >&2
        exit 2
        ;;
esac
