#!/bin/sh
# Entry point of the image (deploy/Dockerfile): one image, the service chosen by argument.
#
#   ee serve NAME           uvicorn NAME_service.main:app on 0.0.0.0:(8000 + NAME's offset in services.conf)
#   ee migrate [NAME...]    alembic upgrade head for each service with migrations (default: the table's)
#   ee topics               the event topics and their .dlq twins (python -m shared.kafka_admin ensure-topics)
#   ee gateway              the front door's merged /openapi.json and /docs on 0.0.0.0:8090
#   ee probe NAME PATH      exit 0 when GET PATH on NAME's port answers 200 (container health checks)
#   ee COMMAND...           anything else is run as is (python -m draws_service.cli list, say)
set -eu
APP="${EE_APP_ROOT:-/app}"  # the image's code; a checkout's root to try this script outside a container
cd "$APP"
TABLE="$APP/deploy/services.conf"

roots="$APP"
for dir in "$APP"/services/*/; do
    roots="$roots:${dir%/}"
done
export PYTHONPATH="$roots${PYTHONPATH:+:$PYTHONPATH}"

names() { sed -e 's/#.*//' -e '/^[[:space:]]*$/d' "$TABLE" | awk '{print $1}'; }
port_of() {
    port="$(sed -e 's/#.*//' "$TABLE" | awk -v n="$1" '$1 == n {print 8000 + $2}')"
    [ -n "$port" ] || { echo "ee: unknown service '$1' (known: $(names | tr '\n' ' '))" >&2; exit 2; }
    echo "$port"
}

command="${1:-help}"
[ $# -gt 0 ] && shift
case "$command" in
    serve)
        name="${1:?usage: ee serve NAME}"
        port="$(port_of "$name")"
        exec uvicorn "${name}_service.main:app" --host 0.0.0.0 --port "$port" --proxy-headers \
            --forwarded-allow-ips '*' --timeout-graceful-shutdown 20
        ;;
    migrate)
        [ $# -gt 0 ] || set -- $(names)
        for name in "$@"; do
            port_of "$name" >/dev/null
            [ -f "services/$name/alembic.ini" ] || { echo "ee: $name: no database, nothing to migrate"; continue; }
            echo "ee: $name: alembic upgrade head"
            alembic -c "services/$name/alembic.ini" upgrade head
        done
        ;;
    topics)
        exec python -m shared.kafka_admin ensure-topics --prefix "${EE_TOPIC_PREFIX:-}"
        ;;
    gateway)
        exec uvicorn shared.gateway:app --host 0.0.0.0 --port 8090
        ;;
    probe)
        port="$(port_of "${1:?usage: ee probe NAME PATH}")"
        exec python -c 'import sys, urllib.request
try:
    sys.exit(0 if urllib.request.urlopen(sys.argv[1], timeout=3).status == 200 else 1)
except Exception:
    sys.exit(1)' "http://127.0.0.1:$port${2:-/readyz}"
        ;;
    help | -h | --help)
        sed -n '2,10p' "$0"
        ;;
    *)
        exec "$command" "$@"
        ;;
esac
