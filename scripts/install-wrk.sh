#!/usr/bin/env bash
# Installs Debian's wrk for the benchmark's HTTP section (workers/harness/bench/http.py), which
# drives `circulate api` and the bare ASGI app with workers/harness/bench/post_order.lua.
# Idempotent: does nothing when wrk is already on PATH. Without it the section is skipped.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib/apt.sh"
if command -v wrk >/dev/null 2>&1; then
  exit 0
fi
if ! have_apt; then
  echo "warning: no apt-get; install wrk by hand to run the benchmark's HTTP section" >&2
  exit 0
fi
apt_install "the 'wrk' package" wrk
command -v wrk >/dev/null || { echo "error: wrk did not install" >&2; exit 1; }
