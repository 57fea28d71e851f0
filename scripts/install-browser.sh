#!/usr/bin/env bash
# Installs Debian's Chromium for the console's browser tests (tests/e2e/test_console_browser.py).
# Playwright drives this system browser; `playwright install` (which downloads its own build) is
# never used. Idempotent: does nothing when /usr/bin/chromium is already there.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib/apt.sh"
if [ -x /usr/bin/chromium ]; then
  exit 0
fi
if ! have_apt; then
  echo "warning: no apt-get; install Chromium at /usr/bin/chromium to run the console browser tests" >&2
  exit 0
fi
apt_install "the 'chromium' package" chromium fonts-dejavu-core
test -x /usr/bin/chromium || { echo "error: chromium did not install at /usr/bin/chromium" >&2; exit 1; }
