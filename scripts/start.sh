#!/usr/bin/env bash
# Start TicketProo for a first look: virtualenv, dependencies, SQLite migrations, demo data,
# and the web UI on http://127.0.0.1:8000 with the scheduler running inside the web process
# (embedded mode: due tasks start within about a second of their time while it is up).
# Usage: bash scripts/start.sh [PORT]
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PORT="${1:-8000}"
PYTHON="${PYTHON:-python3}"

if [ ! -x .venv/bin/python ]; then
  echo "Creating the virtualenv in .venv ..."
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --disable-pip-version-check -r requirements.txt
mkdir -p logs

export DEBUG="${DEBUG:-true}"
.venv/bin/python manage.py migrate --noinput
# An existing admin keeps its password (the command says how to set a new one); a new admin
# gets a random one, printed here once.
.venv/bin/python manage.py seed_demo
case "${DEBUG,,}" in
  1|true|yes|on) ;;  # runserver serves the static files itself
  *) .venv/bin/python manage.py collectstatic --noinput --verbosity 0 ;;  # WhiteNoise serves them
esac

# The scheduler runs as a background thread of the web server (SCHEDULED_TASKS["EMBEDDED"]),
# started only in runserver's serving process and kept to one process by a database leader
# lock. On a real server use the daemon or cron instead (docs/daemon.md, docs/cron.md).
# SCHEDULED_TASKS_EMBEDDED=false bash scripts/start.sh starts the web UI without it.
export SCHEDULED_TASKS_EMBEDDED="${SCHEDULED_TASKS_EMBEDDED:-true}"

echo
echo "TicketProo is starting on http://127.0.0.1:${PORT}/ (scheduler embedded: ${SCHEDULED_TASKS_EMBEDDED})."
echo "Scheduler log: logs/scheduled_tasks.log. Stop with Ctrl-C."
exec .venv/bin/python manage.py runserver "127.0.0.1:${PORT}"
