#!/usr/bin/env bash
# Start TicketProo for a first look: virtualenv, dependencies, SQLite migrations, demo data,
# the web UI on http://127.0.0.1:8000 and the scheduler running due tasks every minute.
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
.venv/bin/python manage.py seed_demo

# The scheduler beside the web server: one run_scheduled_tasks per minute, on the minute,
# exactly as the crontab line would (see scripts/setup_cron.sh for a real server).
scheduler_loop() {
  while true; do
    .venv/bin/python manage.py run_scheduled_tasks >> logs/scheduler.out 2>&1 || true
    sleep $((60 - 10#$(date +%S)))
  done
}
scheduler_loop &
SCHEDULER_PID=$!
trap 'kill "$SCHEDULER_PID" 2>/dev/null || true' EXIT INT TERM

echo
echo "TicketProo is starting on http://127.0.0.1:${PORT}/ (scheduler pid ${SCHEDULER_PID})."
echo "Scheduler log: logs/scheduled_tasks.log. Stop with Ctrl-C."
.venv/bin/python manage.py runserver "127.0.0.1:${PORT}"
