#!/usr/bin/env bash
# Installs Debian's wrk for the benchmark's HTTP section (workers/harness/bench/http.py), which
# drives `circulate api` and the bare ASGI app with workers/harness/bench/post_order.lua.
# Idempotent: does nothing when wrk is already on PATH. Without it the section is skipped.
set -euo pipefail
if command -v wrk >/dev/null 2>&1; then
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "warning: no apt-get; install wrk by hand to run the benchmark's HTTP section" >&2
  exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  SUDO="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends wrk >/dev/null
command -v wrk >/dev/null || { echo "error: wrk did not install" >&2; exit 1; }
