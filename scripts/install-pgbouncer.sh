#!/usr/bin/env bash
# Installs Debian's `pgbouncer` for `make pgbouncer` (the integration suite through a transaction
# pooler). Idempotent: does nothing when the binary is already there. Only the binary is used: the
# package's own service is never started or configured (scripts/pgbouncer-suite.sh runs a private
# instance with its own config directory on a free port).
set -euo pipefail

if command -v pgbouncer >/dev/null 2>&1 || [ -x /usr/sbin/pgbouncer ]; then
  exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
  echo "error: pgbouncer is missing and apt-get is not available; install PgBouncer by hand" >&2
  exit 1
fi

sudo_cmd=()
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then
    sudo_cmd=(sudo)
  else
    echo "error: installing pgbouncer needs root; run: apt-get install -y pgbouncer" >&2
    exit 1
  fi
fi

log=$(mktemp)
trap 'rm -f "$log"' EXIT
if ! "${sudo_cmd[@]}" apt-get update -qq >"$log" 2>&1 \
  || ! "${sudo_cmd[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
    --no-install-recommends pgbouncer >>"$log" 2>&1; then
  cat "$log" >&2
  echo "error: apt-get could not install the 'pgbouncer' package; see apt's output above" >&2
  exit 1
fi
