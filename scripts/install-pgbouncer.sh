#!/usr/bin/env bash
# Installs Debian's `pgbouncer` for `make pgbouncer` (the integration suite through a transaction
# pooler). Idempotent: does nothing when the binary is already there. Only the binary is used: the
# package's own service is never started or configured (scripts/pgbouncer-suite.sh runs a private
# instance with its own config directory on a free port).
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib/apt.sh"

if command -v pgbouncer >/dev/null 2>&1 || [ -x /usr/sbin/pgbouncer ]; then
  exit 0
fi

if ! have_apt; then
  echo "error: pgbouncer is missing and apt-get is not available; install PgBouncer by hand" >&2
  exit 1
fi
apt_install "the 'pgbouncer' package" pgbouncer
