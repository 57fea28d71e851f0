#!/usr/bin/env bash
# The test run behind `make test`: two pytest processes side by side.
#
# Tests that use service instances of their own (the `own_services` fixture: a PostgreSQL cluster
# or RabbitMQ nodes started for them, see docs/test-services.md) share nothing with the rest, which
# use the machine's PostgreSQL and RabbitMQ. They spend most of their time waiting for nodes to
# boot, restart and recover, so they run in a second process while the other layers run in the
# first; the run takes about as long as the longer half instead of both added up. Any arguments
# are passed to both processes. The exit status is non-zero if either half failed.
set -uo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-.venv/bin}
mkdir -p artifacts
own_log=artifacts/test-own-instances.log

"$BIN/pytest" -q -p no:cacheprovider -m own_instances "$@" >"$own_log" 2>&1 &
own_pid=$!
trap 'kill "$own_pid" 2>/dev/null' INT TERM

"$BIN/pytest" -q -m "not own_instances" "$@"
shared_status=$?

wait "$own_pid"
own_status=$?
echo
echo "== tests on service instances of their own (run alongside; full log: $own_log) =="
cat "$own_log"
# pytest exits 5 when a selection is empty; that is not a failure here.
[[ $shared_status -eq 5 ]] && shared_status=0
[[ $own_status -eq 5 ]] && own_status=0
exit $(( shared_status != 0 || own_status != 0 ))
