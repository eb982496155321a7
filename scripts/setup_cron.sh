#!/usr/bin/env bash
# Install, remove or inspect the crontab line that runs TicketProo's task scheduler
# (`python manage.py run_scheduled_tasks`) once per minute (or every N minutes).
#
# The line is tagged with a marker comment that is unique per project directory, so
# several checkouts can each have their own line, and `install` can replace its own
# line without touching anything else in the crontab. See docs/cron.md.
set -euo pipefail

readonly MARKER_PREFIX="# ticketproo-scheduler:"
PROG="$(basename -- "$0")"
readonly PROG

usage() {
    cat <<EOF
Usage: $PROG {install|remove|status} [options]
       $PROG -h | --help

Manage the crontab line that runs 'python manage.py run_scheduled_tasks'.

Commands:
  install   add the line, or replace this project's existing line (idempotent)
  remove    delete this project's line; other crontab lines are left untouched
  status    show whether the line is installed (exit 0) or not (exit 1),
            and the last lines of the cron log file

Options (each takes a value, as '--opt VALUE' or '--opt=VALUE'):
  --project-dir DIR  project directory containing manage.py
                     (default: the parent of this script's directory)
  --python PATH      Python interpreter (default: DIR/.venv/bin/python if it
                     exists, else python3 from PATH)
  --interval N       run every N minutes, 1-59 (default: 1 = every minute)
  --log-file FILE    file receiving the cron job's stdout/stderr
                     (default: DIR/logs/cron.log)
  --lock-file FILE   flock(1) lock file that stops overlapping runs
                     (default: /tmp/ticketproo-scheduler-<hash of DIR>.lock)
  --crontab CMD      crontab program to use (default: crontab)
  --user USER        edit USER's crontab (crontab -u USER; needs root)
  -h, --help         show this help and exit

Exit status: 0 success (status: installed), 1 status: not installed, or the
crontab program failed, 2 invalid usage.
EOF
}

die_usage() {
    printf '%s: error: %s\n' "$PROG" "$1" >&2
    printf "Run '%s --help' for usage.\n" "$PROG" >&2
    exit 2
}

die() {
    printf '%s: error: %s\n' "$PROG" "$1" >&2
    exit "${2:-1}"
}

# Quote a string for a POSIX shell (cron runs its lines with /bin/sh).
shquote() {
    local s=$1
    printf "'%s'" "${s//\'/\'\\\'\'}"
}

# Make a path absolute (relative to the current directory) without resolving symlinks:
# a virtualenv's bin/python is a symlink that must be kept as is.
abspath() {
    case $1 in
        /*) printf '%s' "$1" ;;
        *) printf '%s/%s' "$PWD" "${1#./}" ;;
    esac
}

# Paths end up in a crontab line: cron turns '%' into a newline and a line cannot
# contain a newline, so refuse those characters outright.
check_path_chars() {
    local flag=$1 value=$2
    case $value in
        *%* | *$'\n'* | *$'\r'*)
            die_usage "$flag must not contain '%', a newline or a carriage return: $value"
            ;;
    esac
}

script_dir="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd -P)"

command=""
project_dir=""
python=""
interval="1"
log_file=""
lock_file=""
crontab_cmd="crontab"
user=""

while (($# > 0)); do
    arg=$1
    shift
    case $arg in
        -h | --help)
            usage
            exit 0
            ;;
        --project-dir | --python | --interval | --log-file | --lock-file | --crontab | --user)
            if (($# == 0)) || [[ $1 == --* ]]; then
                die_usage "$arg requires a value"
            fi
            value=$1
            shift
            ;;
        --project-dir=* | --python=* | --interval=* | --log-file=* | --lock-file=* | --crontab=* | --user=*)
            value=${arg#*=}
            arg=${arg%%=*}
            ;;
        install | remove | status)
            if [[ -n $command ]]; then
                die_usage "only one command may be given (got '$command' and '$arg')"
            fi
            command=$arg
            continue
            ;;
        -*)
            die_usage "unknown option: $arg"
            ;;
        *)
            die_usage "unknown command: $arg (expected install, remove or status)"
            ;;
    esac
    if [[ -z $value ]]; then
        die_usage "$arg requires a non-empty value"
    fi
    case $arg in
        --project-dir) project_dir=$value ;;
        --python) python=$value ;;
        --interval) interval=$value ;;
        --log-file) log_file=$value ;;
        --lock-file) lock_file=$value ;;
        --crontab) crontab_cmd=$value ;;
        --user) user=$value ;;
    esac
done

if [[ -z $command ]]; then
    die_usage "no command given (expected install, remove or status)"
fi

# --interval: 1-59 minutes.
if ! [[ $interval =~ ^[0-9]+$ ]]; then
    die_usage "--interval must be a whole number of minutes (1-59), got: $interval"
fi
interval=$((10#$interval))
if ((interval < 1 || interval > 59)); then
    die_usage "--interval must be between 1 and 59 minutes, got: $interval"
fi
if ((interval == 1)); then
    schedule="* * * * *"
else
    schedule="*/$interval * * * *"
fi

# --project-dir: must contain manage.py for install; remove and status also accept a
# directory that has gone away, so a stale line can still be cleaned up.
if [[ -z $project_dir ]]; then
    project_dir="$(dirname -- "$script_dir")"
fi
check_path_chars --project-dir "$project_dir"
if [[ -d $project_dir ]]; then
    project_dir="$(cd -- "$project_dir" && pwd -P)"
elif [[ $command == install ]]; then
    die_usage "--project-dir is not a directory: $project_dir"
else
    project_dir="$(abspath "$project_dir")"
fi
if [[ $command == install && ! -f $project_dir/manage.py ]]; then
    die_usage "--project-dir has no manage.py (not a Django project directory): $project_dir"
fi
check_path_chars --project-dir "$project_dir"
marker="$MARKER_PREFIX$project_dir"

# --python: an executable file; a bare name is looked up on PATH.
if [[ -z $python ]]; then
    if [[ -x $project_dir/.venv/bin/python ]]; then
        python="$project_dir/.venv/bin/python"
    elif ! python="$(command -v python3)"; then
        if [[ $command == install ]]; then
            die_usage "no --python given, $project_dir/.venv/bin/python does not exist and python3 is not on PATH"
        fi
        python=""
    fi
elif [[ $python != */* ]]; then
    if ! resolved="$(command -v -- "$python")" || [[ $resolved != /* ]]; then
        die_usage "--python: '$python' not found on PATH"
    fi
    python=$resolved
fi
if [[ -n $python ]]; then
    python="$(abspath "$python")"
    check_path_chars --python "$python"
    if [[ $command == install ]] && [[ ! -f $python || ! -x $python ]]; then
        die_usage "--python is not an executable file: $python"
    fi
fi

# --log-file
if [[ -z $log_file ]]; then
    log_file="$project_dir/logs/cron.log"
fi
log_file="$(abspath "$log_file")"
check_path_chars --log-file "$log_file"
if [[ -d $log_file ]]; then
    die_usage "--log-file is a directory: $log_file"
fi

# --lock-file: its directory must exist, or flock would fail every minute.
if [[ -z $lock_file ]]; then
    hash="$(printf '%s' "$project_dir" | cksum | cut -d' ' -f1)"
    lock_file="/tmp/ticketproo-scheduler-$hash.lock"
fi
lock_file="$(abspath "$lock_file")"
check_path_chars --lock-file "$lock_file"
if [[ $command == install && ! -d $(dirname -- "$lock_file") ]]; then
    die_usage "--lock-file: directory does not exist: $(dirname -- "$lock_file")"
fi
if [[ -d $lock_file ]]; then
    die_usage "--lock-file is a directory: $lock_file"
fi

# --crontab
if ! command -v -- "$crontab_cmd" >/dev/null 2>&1; then
    die_usage "crontab program not found: $crontab_cmd (on Debian/Ubuntu: apt-get install cron)"
fi

# --user
crontab_args=()
if [[ -n $user ]]; then
    if ! id -- "$user" >/dev/null 2>&1; then
        die_usage "--user: no such user: $user"
    fi
    crontab_args=(-u "$user")
fi
owner="${user:-$(id -un)}"

tmp_dir="$(mktemp -d)"
trap 'rm -rf -- "$tmp_dir"' EXIT
current="$tmp_dir/current"
new="$tmp_dir/new"

# Write the user's current crontab to $current (empty if the user has none).
read_crontab() {
    local err="$tmp_dir/list.err"
    if LC_ALL=C "$crontab_cmd" "${crontab_args[@]}" -l >"$current" 2>"$err"; then
        return 0
    fi
    if grep -qi 'no crontab for' "$err"; then
        : >"$current"
        return 0
    fi
    cat "$err" >&2
    die "could not read the crontab of $owner with '$crontab_cmd -l'"
}

# Install $new as the user's crontab (the full table, fed to 'crontab -').
write_crontab() {
    if ! "$crontab_cmd" "${crontab_args[@]}" - <"$new"; then
        die "could not install the new crontab of $owner with '$crontab_cmd -'"
    fi
}

# Print the lines of $1 that end with our marker.
our_lines() {
    MARKER="$marker" LC_ALL=C awk '
        { m = ENVIRON["MARKER"]; n = length(m) }
        length($0) >= n && substr($0, length($0) - n + 1) == m
    ' "$1"
}

# Copy $current to $new; the lines ending with our marker are replaced by $1 (the first
# one in place, the others dropped), or dropped if $1 is empty. Every other line is
# copied unchanged. With a non-empty $1 and no marker line, $1 is appended.
rewrite_crontab() {
    MARKER="$marker" LINE="$1" LC_ALL=C awk '
        BEGIN { m = ENVIRON["MARKER"]; n = length(m); line = ENVIRON["LINE"]; done = 0 }
        length($0) >= n && substr($0, length($0) - n + 1) == m {
            if (!done && line != "") print line
            done = 1
            next
        }
        { print }
        END { if (!done && line != "") print line }
    ' "$current" >"$new"
}

case $command in
    install)
        if ! flock="$(command -v flock)"; then
            die_usage "flock not found (it is in util-linux; on Debian/Ubuntu: apt-get install util-linux)"
        fi
        cron_command="cd $(shquote "$project_dir") && $(shquote "$flock") -n $(shquote "$lock_file")"
        cron_command+=" $(shquote "$python") manage.py run_scheduled_tasks"
        cron_command+=" >> $(shquote "$log_file") 2>&1"
        line="$schedule $cron_command $marker"

        log_dir="$(dirname -- "$log_file")"
        if ! mkdir -p -- "$log_dir"; then
            die "could not create the log directory: $log_dir"
        fi

        read_crontab
        rewrite_crontab "$line"
        if cmp -s "$current" "$new"; then
            echo "The scheduler cron line for $project_dir is already installed (crontab of $owner):"
        else
            write_crontab
            echo "Installed the scheduler cron line for $project_dir (crontab of $owner):"
        fi
        printf '  %s\n' "$line"
        echo "Cron output goes to: $log_file"
        ;;
    remove)
        read_crontab
        if [[ -z $(our_lines "$current") ]]; then
            echo "No scheduler cron line for $project_dir in the crontab of $owner; nothing to remove."
            exit 0
        fi
        rewrite_crontab ""
        write_crontab
        echo "Removed the scheduler cron line for $project_dir from the crontab of $owner."
        ;;
    status)
        read_crontab
        installed="$(our_lines "$current")"
        if [[ -n $installed ]]; then
            echo "Installed: the scheduler cron line for $project_dir is in the crontab of $owner:"
            printf '%s\n' "$installed" | sed 's/^/  /'
        else
            echo "Not installed: no scheduler cron line for $project_dir in the crontab of $owner."
        fi
        if [[ -f $log_file ]]; then
            echo "Last lines of $log_file:"
            tail -n 10 -- "$log_file" | sed 's/^/  /'
        else
            echo "No cron log file yet at $log_file."
        fi
        if [[ -n $installed ]]; then
            exit 0
        fi
        exit 1
        ;;
esac
