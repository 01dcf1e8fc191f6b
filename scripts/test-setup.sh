#!/usr/bin/env bash
# What `make test` needs beyond the virtualenv: Debian's chromium for the dashboard's browser
# tests, PostgreSQL (at HEADEND_TEST_POSTGRES_URL) for the store tests and RabbitMQ (on
# 127.0.0.1:5672, managed with rabbitmqctl) for the distributed executor's tests. Installs
# chromium when it is missing (as root only) and starts the installed PostgreSQL cluster and
# RabbitMQ server when they are not running; says in one line what is missing when it cannot
# be had, and stops with a non-zero status. Quiet when everything is already there.
set -euo pipefail

CHROMIUM=${HEADEND_TEST_CHROMIUM:-/usr/bin/chromium}
# host and port from the URL the tests use (the Makefile's default: 127.0.0.1:5432)
PG_URL=${HEADEND_TEST_POSTGRES_URL:-postgresql+psycopg://postgres@127.0.0.1:5432/postgres}
PG_HOSTPORT=${PG_URL#*://}
PG_HOSTPORT=${PG_HOSTPORT##*@}
PG_HOSTPORT=${PG_HOSTPORT%%/*}
PG_HOST=${PG_HOSTPORT%%:*}
PG_PORT=5432
[[ $PG_HOSTPORT == *:* ]] && PG_PORT=${PG_HOSTPORT##*:}

missing() {
  echo "make test: $*" >&2
  exit 1
}

if [ ! -x "$CHROMIUM" ]; then
  if [ -n "${HEADEND_TEST_CHROMIUM:-}" ]; then
    missing "chromium is missing: HEADEND_TEST_CHROMIUM=$CHROMIUM is not an executable"
  elif [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    missing "chromium is missing: install Debian's chromium (apt-get install chromium) as root"
  fi
  echo "installing chromium"
  apt-get update -q >/dev/null || missing "chromium is missing: apt-get update failed"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null \
    || missing "chromium is missing: apt-get install chromium failed"
  [ -x "$CHROMIUM" ] || missing "chromium is missing: apt-get did not install $CHROMIUM"
fi

command -v pg_isready >/dev/null 2>&1 \
  || missing "PostgreSQL is missing: pg_isready not found (install Debian's postgresql)"
command -v rabbitmqctl >/dev/null 2>&1 \
  || missing "RabbitMQ is missing: rabbitmqctl not found (install Debian's rabbitmq-server)"
if ! rabbitmqctl -q status >/dev/null 2>&1; then
  echo "starting RabbitMQ"
  rabbitmq-server -detached >/dev/null 2>&1 || missing "RabbitMQ is missing: it did not start"
  for _ in $(seq 1 60); do
    rabbitmqctl -q status >/dev/null 2>&1 && break
    sleep 1
  done
  rabbitmqctl -q status >/dev/null 2>&1 \
    || missing "RabbitMQ is missing: it did not answer 60 s after it started"
fi

if ! pg_isready -h "$PG_HOST" -p "$PG_PORT" -q; then
  if [[ $PG_HOST != 127.0.0.1 && $PG_HOST != localhost ]]; then
    missing "PostgreSQL is missing: nothing answers at $PG_HOST:$PG_PORT"
  fi
  if ! command -v pg_ctlcluster >/dev/null 2>&1 || [ -z "$(ls /etc/postgresql 2>/dev/null)" ]; then
    missing "PostgreSQL is missing: nothing answers at $PG_HOST:$PG_PORT and no cluster is installed"
  fi
  echo "starting PostgreSQL"
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start \
    || missing "PostgreSQL is missing: its cluster did not start"
  for _ in $(seq 1 30); do
    pg_isready -h "$PG_HOST" -p "$PG_PORT" -q && exit 0
    sleep 1
  done
  missing "PostgreSQL is missing: nothing answers at $PG_HOST:$PG_PORT 30 s after it started"
fi
