# shellcheck shell=bash disable=SC2034,SC2154
# (variables are shared with the sourcing script)
# Sourced by quick_cron_setup.sh and run_scheduler_daemon.sh (not run on its own).
# Checks that $project_dir holds manage.py, then sets $python to the project's Python and
# $python_source to where it came from: an active $VIRTUAL_ENV, else $project_dir/.venv,
# else $project_dir/venv, else python3 from PATH. Expects $PROG and $project_dir.

if [[ ! -f $project_dir/manage.py ]]; then
    printf '%s: error: no manage.py in %s; run this script from its place in the project.\n' \
        "$PROG" "$project_dir" >&2
    exit 2
fi

python=""
python_source=""
if [[ -n ${VIRTUAL_ENV:-} ]]; then
    if [[ -x $VIRTUAL_ENV/bin/python ]]; then
        python="$VIRTUAL_ENV/bin/python"
        python_source="the active virtualenv (\$VIRTUAL_ENV)"
    else
        printf '%s: warning: VIRTUAL_ENV is set but %s is missing; ignoring it.\n' \
            "$PROG" "$VIRTUAL_ENV/bin/python" >&2
    fi
fi
if [[ -z $python ]]; then
    for venv in .venv venv; do
        if [[ -x $project_dir/$venv/bin/python ]]; then
            python="$project_dir/$venv/bin/python"
            python_source="the project's virtualenv ($venv)"
            break
        fi
    done
fi
if [[ -z $python ]]; then
    if ! python="$(command -v python3)"; then
        printf '%s: error: no virtualenv found and python3 is not on PATH.\n' "$PROG" >&2
        exit 2
    fi
    python_source="python3 from PATH (no virtualenv found)"
fi
