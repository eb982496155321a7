#!/usr/bin/env bash
# Run the whole test suite on a fresh machine: virtualenv, dev dependencies, system packages
# the tests need, ruff, then pytest on SQLite and (in CI or with DATABASE_URL) PostgreSQL.
# Usage: bash scripts/test.sh [extra pytest arguments]
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PYTHON="${PYTHON:-python3}"
PG_URL="${TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/test}"

if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt

# System packages the tests drive: Debian's crontab (cron scripts), flock (util-linux),
# libseccomp2 (the sandbox's seccomp layer), chromium (the browser tests, driven by Playwright;
# never `playwright install`: tests/test_browser.py launches /usr/bin/chromium).
need_apt=()
command -v crontab >/dev/null 2>&1 || need_apt+=(cron)
command -v flock >/dev/null 2>&1 || need_apt+=(util-linux)
compgen -G '/usr/lib/*/libseccomp.so.2' >/dev/null || compgen -G '/lib/*/libseccomp.so.2' >/dev/null \
  || need_apt+=(libseccomp2)
[ -x /usr/bin/chromium ] || need_apt+=(chromium)
# The brokers of the Celery backend's tests (tests/test_celery_workers.py: real workers).
command -v redis-server >/dev/null 2>&1 || need_apt+=(redis-server)
command -v rabbitmq-server >/dev/null 2>&1 || need_apt+=(rabbitmq-server)
if [ "${#need_apt[@]}" -gt 0 ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "Installing ${need_apt[*]} ..."
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}"
fi
mkdir -p logs

# Brokers down (a fresh machine, a reboot): start them; the Celery tests fail in CI without.
if command -v redis-cli >/dev/null && ! redis-cli -h 127.0.0.1 ping >/dev/null 2>&1; then
  echo "Starting Redis ..."
  redis-server --daemonize yes >/dev/null || true
fi
if command -v rabbitmq-diagnostics >/dev/null && ! rabbitmq-diagnostics -q ping >/dev/null 2>&1; then
  echo "Starting RabbitMQ ..."
  rabbitmq-server -detached >/dev/null 2>&1 || true
  for _ in $(seq 1 60); do rabbitmq-diagnostics -q ping >/dev/null 2>&1 && break; sleep 1; done
fi

echo "== ruff"
.venv/bin/ruff check .
.venv/bin/ruff format --check .

echo "== pytest on SQLite"
# The Celery workers' tests run once, on PostgreSQL below (where a team running Celery keeps
# its data); without PostgreSQL (no CI, no DATABASE_URL) they run here.
sqlite_marks=()
if [ "${CI:-}" = "true" ] || [ -n "${DATABASE_URL:-}" ]; then
  sqlite_marks=(-m "not celery")
fi
env -u DATABASE_URL .venv/bin/pytest "${sqlite_marks[@]}" "$@"

echo "== the REST API against its OpenAPI schema (schemathesis, live server)"
env -u DATABASE_URL bash scripts/api_fuzz.sh

run_pg=false
if [ "${CI:-}" = "true" ] || [ -n "${DATABASE_URL:-}" ]; then
  run_pg=true
  PG_URL="${DATABASE_URL:-$PG_URL}"
fi
if $run_pg; then
  if ! pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then
    echo "Starting PostgreSQL ..."
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql)" main start || true
    for _ in $(seq 1 30); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 1; done
  fi
  echo "== pytest on PostgreSQL"
  # No skip here: in CI a missing PostgreSQL must fail the run. The browser tests ran on
  # SQLite above; what they drive is the same on both (an -m given in "$@" overrides these).
  DATABASE_URL="$PG_URL" .venv/bin/pytest -m "not browser" "$@"
fi
