#!/usr/bin/env bash
# Installs Debian's Chromium for the console's browser tests (tests/e2e/test_console_browser.py).
# Playwright drives this system browser; `playwright install` (which downloads its own build) is
# never used. Idempotent: does nothing when /usr/bin/chromium is already there.
set -euo pipefail
if [ -x /usr/bin/chromium ]; then
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "warning: no apt-get; install Chromium at /usr/bin/chromium to run the console browser tests" >&2
  exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  SUDO="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >/dev/null
test -x /usr/bin/chromium || { echo "error: chromium did not install at /usr/bin/chromium" >&2; exit 1; }
