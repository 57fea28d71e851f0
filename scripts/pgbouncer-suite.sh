#!/usr/bin/env bash
# `make pgbouncer`: the integration suite once through a real PgBouncer in transaction pooling.
#
# Starts a PgBouncer of its own (Debian's binary, scripts/install-pgbouncer.sh) on a free loopback
# port, with its own config, auth file, socket, log and pid file in a temporary directory, in front
# of the PostgreSQL the tests use (127.0.0.1:5432 unless CIRCULATE_PGBOUNCER_UPSTREAM says
# host:port). The machine's own pgbouncer service, if any, is never read or touched. The tests
# reach PostgreSQL through it (CIRCULATE_TEST_DATABASE_URL), with prepared statements off
# (Debian's PgBouncer is 1.18; protocol-level prepared statements need 1.21), except the relay's
# LISTEN, which goes straight to PostgreSQL (database_direct_url), as in production. PgBouncer's own
# counters are printed at the end, to show the traffic went through it; the pooler is stopped and
# its directory removed however the run ends. Arguments go to pytest (default: tests/integration).
# The summary is also written to artifacts/pgbouncer-suite.txt.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-.venv/bin}
PGBOUNCER=${PGBOUNCER:-$(command -v pgbouncer || echo /usr/sbin/pgbouncer)}
upstream=${CIRCULATE_PGBOUNCER_UPSTREAM:-127.0.0.1:5432}
pool_size=${CIRCULATE_PGBOUNCER_POOL_SIZE:-20}

if [ ! -x "$PGBOUNCER" ]; then
  echo "error: no pgbouncer binary at $PGBOUNCER; run: bash scripts/install-pgbouncer.sh" >&2
  exit 1
fi

dir=$(mktemp -d /tmp/circulate-pgbouncer-XXXXXX)
port=$("$BIN/python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
pidfile="$dir/pgbouncer.pid"

stop() {
  if [ -s "$pidfile" ]; then
    kill "$(cat "$pidfile")" 2>/dev/null || true
    for _ in $(seq 50); do
      kill -0 "$(cat "$pidfile" 2>/dev/null)" 2>/dev/null || break
      sleep 0.1
    done
  fi
  rm -rf "$dir"
}
trap stop EXIT

cat >"$dir/pgbouncer.ini" <<EOF
[databases]
; every database name the tests use (circulate_test_<pid>, and postgres to create it) goes upstream
* = host=${upstream%:*} port=${upstream##*:}

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $port
unix_socket_dir = $dir
auth_type = trust
auth_file = $dir/userlist.txt
admin_users = postgres
pool_mode = transaction
default_pool_size = $pool_size
max_client_conn = 2000
; psycopg sends no startup options that matter here; JDBC-style extra_float_digits is harmless
ignore_startup_parameters = extra_float_digits
logfile = $dir/pgbouncer.log
pidfile = $pidfile
EOF
echo '"postgres" ""' >"$dir/userlist.txt"

# PgBouncer refuses to run as root: run it as the postgres user, which then owns the directory.
run_as=()
if [ "$(id -u)" -eq 0 ]; then
  chown -R postgres "$dir"
  run_as=(runuser -u postgres --)
fi
"${run_as[@]}" "$PGBOUNCER" -d -q "$dir/pgbouncer.ini"

for _ in $(seq 100); do
  psql -h 127.0.0.1 -p "$port" -U postgres -d postgres -Atqc 'SELECT 1' >/dev/null 2>&1 && break
  sleep 0.1
done
version=$(psql -h 127.0.0.1 -p "$port" -U postgres -d pgbouncer -Atqc 'SHOW VERSION' 2>/dev/null || true)
echo "== $version on 127.0.0.1:$port (pool_mode=transaction, default_pool_size=$pool_size) -> $upstream =="

mkdir -p artifacts
started=$(date +%s)
status=0
CIRCULATE_TEST_DATABASE_URL="postgresql+psycopg://postgres@127.0.0.1:$port/circulate_test" \
CIRCULATE_TEST_DATABASE_DIRECT_URL="postgresql+psycopg://postgres@$upstream/circulate_test" \
CIRCULATE_DATABASE_PREPARED_STATEMENTS=${CIRCULATE_DATABASE_PREPARED_STATEMENTS:-false} \
  "$BIN/pytest" -q -p no:cacheprovider "${@:-tests/integration}" | tee "$dir/pytest.out" || status=$?
elapsed=$(( $(date +%s) - started ))

{
  echo "$(date -u +%Y-%m-%dT%H:%MZ) $version, transaction pooling, pool $pool_size: $(tail -n 1 "$dir/pytest.out") (${elapsed}s)"
  echo "PgBouncer totals (SHOW STATS, per database):"
  psql -h 127.0.0.1 -p "$port" -U postgres -d pgbouncer -Atqc 'SHOW STATS' -F ' ' \
    | awk '{print "  " $1 ": " $2 " transactions, " $3 " queries"}'
} | tee artifacts/pgbouncer-suite.txt
exit "$status"
