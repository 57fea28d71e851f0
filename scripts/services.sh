#!/usr/bin/env bash
# Makes sure PostgreSQL and RabbitMQ answer on loopback, starting them when they do not.
# With a Docker engine, `docker compose up -d rabbitmq postgres` is used instead of local services.
set -uo pipefail

answers() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_for() {  # port, name, seconds
  for _ in $(seq 1 "$3"); do answers "$1" && return 0; sleep 1; done
  echo "error: $2 does not answer on 127.0.0.1:$1; start it (see README.md, 'Services') and run make again" >&2
  exit 1
}

docker_engine() { command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; }

if ! answers 5432 || ! answers 5672; then
  if docker_engine; then
    docker compose up -d rabbitmq postgres
  fi
fi

if ! answers 5432; then
  if command -v pg_ctlcluster >/dev/null 2>&1; then
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start || true
  fi
fi
wait_for 5432 PostgreSQL 30

if ! answers 5672; then
  if command -v rabbitmq-server >/dev/null 2>&1; then
    rabbitmq-server -detached || true
    rabbitmqctl await_startup >/dev/null 2>&1 || true
  fi
fi
wait_for 5672 RabbitMQ 60

# The management API (vhost creation, queue overview) and the Prometheus endpoint; idempotent.
if command -v rabbitmq-plugins >/dev/null 2>&1; then
  enabled=$(rabbitmq-plugins list -e -m 2>/dev/null || true)
  if ! grep -q '^rabbitmq_management$' <<<"$enabled" || ! grep -q '^rabbitmq_prometheus$' <<<"$enabled"; then
    rabbitmq-plugins enable rabbitmq_management rabbitmq_prometheus >/dev/null
  fi
fi
wait_for 15672 "RabbitMQ management API" 30
