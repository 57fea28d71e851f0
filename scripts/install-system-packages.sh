#!/usr/bin/env bash
# Installs the Debian packages the tests need but pip cannot provide: `promtool` (package
# `prometheus`), which checks and unit-tests deploy/prometheus/. Idempotent: does nothing when
# promtool is already on PATH, so `make test` pays for apt only on a fresh machine.
set -euo pipefail

if command -v promtool >/dev/null 2>&1; then
  exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
  echo "error: promtool is missing and apt-get is not available; install Prometheus (promtool) by hand" >&2
  exit 1
fi

sudo_cmd=()
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then
    sudo_cmd=(sudo)
  else
    echo "error: installing promtool needs root; run: apt-get install -y prometheus" >&2
    exit 1
  fi
fi

log=$(mktemp)
trap 'rm -f "$log"' EXIT
if ! "${sudo_cmd[@]}" apt-get update -qq >"$log" 2>&1 \
  || ! "${sudo_cmd[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
    --no-install-recommends prometheus >>"$log" 2>&1; then
  cat "$log" >&2
  echo "error: apt-get could not install the 'prometheus' package (promtool); see apt's output above" >&2
  exit 1
fi

if ! command -v promtool >/dev/null 2>&1; then
  echo "error: the 'prometheus' package is installed but promtool is not on PATH" >&2
  exit 1
fi
