#!/usr/bin/env bash
# Installs the Debian packages the tests need but pip cannot provide: `promtool` (package
# `prometheus`), which checks and unit-tests deploy/prometheus/. Idempotent: does nothing when
# promtool is already on PATH, so `make test` pays for apt only on a fresh machine.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib/apt.sh"

if command -v promtool >/dev/null 2>&1; then
  exit 0
fi

if ! have_apt; then
  echo "error: promtool is missing and apt-get is not available; install Prometheus (promtool) by hand" >&2
  exit 1
fi
apt_install "the 'prometheus' package (promtool)" prometheus

if ! command -v promtool >/dev/null 2>&1; then
  echo "error: the 'prometheus' package is installed but promtool is not on PATH" >&2
  exit 1
fi
