#!/usr/bin/env bash
# The headless browser the console's end-to-end test drives: Debian's chromium and chromium-driver,
# installed with apt-get when missing (as root; otherwise it says what to install). `make test` runs it.
#
#   deploy/local/browser.sh     prints the paths of chromium and chromedriver
set -euo pipefail

EE_LOG_TAG=browser
# shellcheck source=deploy/local/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

have() { command -v chromium >/dev/null && command -v chromedriver >/dev/null; }

if ! have; then
    if [[ "$(id -u)" == 0 ]] && command -v apt-get >/dev/null; then
        log "installing chromium and chromium-driver from Debian's packages"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null
    else
        die "missing: chromium and chromedriver (apt-get install chromium chromium-driver, or run as root so this script can)"
    fi
fi
have || die "chromium or chromedriver still missing after apt-get install"
log "chromium $(command -v chromium), chromedriver $(command -v chromedriver)"
