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

if [[ ! -f $project_dir/manage.py ]]; then
    printf '%s: error: no manage.py in %s; run this script from its place in the project.\n' \
        "$PROG" "$project_dir" >&2
    exit 2
fi

python=""
if [[ -n ${VIRTUAL_ENV:-} ]]; then
    if [[ -x $VIRTUAL_ENV/bin/python ]]; then
        python="$VIRTUAL_ENV/bin/python"
    else
        printf '%s: warning: VIRTUAL_ENV is set but %s is missing; ignoring it.\n' \
            "$PROG" "$VIRTUAL_ENV/bin/python" >&2
    fi
fi
if [[ -z $python ]]; then
    for venv in .venv venv; do
        if [[ -x $project_dir/$venv/bin/python ]]; then
            python="$project_dir/$venv/bin/python"
            break
        fi
    done
fi
if [[ -z $python ]]; then
    if ! python="$(command -v python3)"; then
        printf '%s: error: no virtualenv found and python3 is not on PATH.\n' "$PROG" >&2
        exit 2
    fi
fi

mkdir -p -- "$project_dir/logs"
cd -- "$project_dir"
# Lines reach the journal (or the terminal) as they are written, not when a buffer fills.
export PYTHONUNBUFFERED=1
exec "$python" manage.py run_scheduled_tasks --daemon "$@"
