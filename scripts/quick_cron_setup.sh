#!/usr/bin/env bash
# One-step, non-interactive cron setup for TicketProo's task scheduler.
#
# Detects the project directory (the parent of this script's directory, which holds
# manage.py) and its Python (an active $VIRTUAL_ENV, else DIR/.venv, else DIR/venv,
# else python3 from PATH), creates DIR/logs and installs the every-minute cron line
# with setup_cron.sh. Any arguments are passed on to 'setup_cron.sh install'
# (for example --user USER or --crontab CMD). See docs/cron.md.
set -euo pipefail

PROG="$(basename -- "$0")"
readonly PROG

case ${1:-} in
    -h | --help)
        cat <<EOF
Usage: $PROG [setup_cron.sh install options]

Installs the crontab line that runs 'python manage.py run_scheduled_tasks' every
minute for the project this script belongs to, using the detected virtualenv.
Extra options are passed to 'setup_cron.sh install' (see 'setup_cron.sh --help').
EOF
        exit 0
        ;;
esac

script_dir="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd -P)"
project_dir="$(dirname -- "$script_dir")"
setup="$script_dir/setup_cron.sh"

# shellcheck source=scripts/find_python.sh
source "$script_dir/find_python.sh"

echo "Project directory: $project_dir"
echo "Python: $python  [$python_source]"

mkdir -p -- "$project_dir/logs"

"$setup" install --project-dir "$project_dir" --python "$python" --interval 1 "$@"

echo
echo "The scheduler now runs every minute. To check on it:"
printf '  %q status --project-dir %q\n' "$setup" "$project_dir"
echo "To remove the cron line:"
printf '  %q remove --project-dir %q\n' "$setup" "$project_dir"
if (($# > 0)); then
    echo "(add the same --user/--crontab options you passed here: $*)"
fi
