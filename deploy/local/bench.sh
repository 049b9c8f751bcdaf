#!/usr/bin/env bash
# `make bench`: every figure of the performance budget (docs/DESIGN.md) in one run, with a plain
# PostgreSQL baseline, on the running Kafka and PostgreSQL (`make infra` runs first).
#
#   deploy/local/bench.sh [python -m bench.run options]
#   make bench BENCH_POOL_SIZE=100000        a quicker run (default 1,000,000)
#
# Knobs (environment): BENCH_POOL_SIZE (1000000), BENCH_SEED (7), BENCH_PORT_BASE (18200: the services
# of the run listen on 18201..18203, or the next free base by 10). Everything the run starts (services,
# topics benchsuite<id>.*, databases *_benchsuite<id>, ranking_benchsuite<id>_bench,
# eebench_baseline<id>; <id> the run's unix time) is stopped or removed at the end.
# Figures: the terminal and .local/bench/results.json; logs of its services: .local/bench/logs/.
set -euo pipefail

EE_LOG_TAG=bench
# shellcheck source=deploy/local/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

VENV="$EE_ROOT/.venv"
[[ -x "$VENV/bin/python" ]] || die "no $VENV/bin/python: run 'make venv' first"
IMPORT_ROOTS=".:services/profile:services/ranking:services/draws:services/applications:services/notifications"

# pgbench (Debian's postgresql-contrib) gives the commit rate the event store's appends are compared with.
if ! command -v pgbench >/dev/null && ! compgen -G "/usr/lib/postgresql/*/bin/pgbench" >/dev/null; then
    if [[ "$(id -u)" == 0 ]] && command -v apt-get >/dev/null; then
        log "installing postgresql-contrib (pgbench) from Debian's packages"
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql-contrib >/dev/null \
            || log "could not install postgresql-contrib: the pgbench figure will be missing"
    else
        log "no pgbench and no root to install postgresql-contrib: the pgbench figure will be missing"
    fi
fi

cd "$EE_ROOT"
started="$(now_ms)"
rc=0
env PYTHONPATH="$IMPORT_ROOTS${PYTHONPATH:+:$PYTHONPATH}" "$VENV/bin/python" -m bench.run "$@" || rc=$?
log "make bench took $(( ($(now_ms) - started) / 1000 )) s (exit $rc)"
exit "$rc"
