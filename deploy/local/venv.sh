#!/usr/bin/env bash
# Create .venv with Python 3.11 (when missing or of another version) and install the project
# with its dev extras: `pip install -e '.[dev]'`. `make venv` runs it only when pyproject.toml is
# newer than the stamp file .venv/.ee-installed.
#
#   deploy/local/venv.sh [PYTHON]    PYTHON defaults to python3.11 (then /usr/bin/python3.11)
set -euo pipefail

EE_LOG_TAG=venv
# shellcheck source=deploy/local/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

VENV="$EE_ROOT/.venv"
WANT="3.11"

find_python() {
    local candidate
    for candidate in "${1:-python3.11}" python3.11 /usr/bin/python3.11; do
        if command -v "$candidate" >/dev/null \
            && [[ "$("$candidate" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null)" == "$WANT" ]]; then
            command -v "$candidate"
            return 0
        fi
    done
    return 1
}

apt_install() {
    if [[ "$(id -u)" == 0 ]] && command -v apt-get >/dev/null; then
        log "installing $* from Debian's packages"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
    else
        die "missing: $* (install it, or run as root so this script can)"
    fi
}

if [[ -x "$VENV/bin/python" ]]; then
    have="$("$VENV/bin/python" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null || true)"
    if [[ "$have" != "$WANT" ]]; then
        log ".venv runs Python ${have:-?}, not $WANT: recreating it"
        rm -rf "$VENV"
    fi
fi

if [[ ! -x "$VENV/bin/python" ]]; then
    python="$(find_python "${1:-}")" || { apt_install python3.11 python3.11-venv; python="$(find_python "${1:-}")"; }
    log "creating .venv with $python"
    if ! "$python" -m venv "$VENV" 2>/dev/null; then
        # Debian splits ensurepip out of the interpreter package.
        rm -rf "$VENV"
        apt_install python3.11-venv
        "$python" -m venv "$VENV"
    fi
fi

log "pip install -e '.[dev]'"
cd "$EE_ROOT"
"$VENV/bin/python" -m pip install -q -e '.[dev]'
