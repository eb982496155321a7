#!/usr/bin/env bash
# Run TicketProo's scheduler daemon in the foreground: 'manage.py run_scheduled_tasks --daemon'.
#
# Meant for systemd (scripts/ticketproo-scheduler.service), supervisord, a container or a
# terminal. Detects the project directory (the parent of this script's directory, which holds
# manage.py) and its Python (an active $VIRTUAL_ENV, else DIR/.venv, else DIR/venv, else
# python3 from PATH) like quick_cron_setup.sh, creates DIR/logs, then replaces itself with the
# daemon, so signals (SIGTERM, Ctrl-C) reach it directly. Arguments are passed on, e.g.
#   run_scheduler_daemon.sh --interval 5 --shutdown-timeout 120 --verbose
# See docs/daemon.md.
set -euo pipefail

PROG="$(basename -- "$0")"
readonly PROG

case ${1:-} in
    -h | --help)
        cat <<EOF
Usage: $PROG [--interval N] [--shutdown-timeout S] [--verbose]

Runs 'python manage.py run_scheduled_tasks --daemon' for the project this script belongs
to, in the foreground, using the detected virtualenv. Stop it with SIGTERM or Ctrl-C: it
claims nothing more, lets the run in progress finish (up to --shutdown-timeout seconds,
default 60) and exits 0.

  --interval N          longest sleep between looks at the schedule (default: 10 s or
                        SCHEDULED_TASKS['DAEMON_INTERVAL_SECONDS'])
  --shutdown-timeout S  grace period for a run in progress after SIGTERM/SIGINT
  --verbose             print each run's start, status, duration and output

The environment (DATABASE_URL, SECRET_KEY, TIME_ZONE, ...) is passed through unchanged.
EOF
        exit 0
        ;;
esac

script_dir="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd -P)"
project_dir="$(dirname -- "$script_dir")"

# shellcheck source=scripts/find_python.sh
source "$script_dir/find_python.sh"

mkdir -p -- "$project_dir/logs"
cd -- "$project_dir"
# Lines reach the journal (or the terminal) as they are written, not when a buffer fills.
export PYTHONUNBUFFERED=1
exec "$python" manage.py run_scheduled_tasks --daemon "$@"
