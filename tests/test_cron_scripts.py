"""Tests for scripts/setup_cron.sh and scripts/quick_cron_setup.sh.

The scripts run as subprocesses against two crontab back ends:

* "real": Debian's crontab(1), editing the crontab of a throwaway system user created for
  the test session (root's own crontab is never touched). Needs root and the `cron`
  package; skipped otherwise, except that with CI=true it fails instead of skipping.
* "fake": a small shell script that keeps each user's table in a file in a temp directory
  and logs its calls, so the tests also run anywhere.

None of these tests use the database.
"""

from __future__ import annotations

import os
import secrets
import shlex
import shutil
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SETUP = ROOT / "scripts" / "setup_cron.sh"
QUICK = ROOT / "scripts" / "quick_cron_setup.sh"
MARKER = "# ticketproo-scheduler:"
PYTHON = sys.executable

# A stand-in for the project's manage.py: records each run in the current directory (so the
# test sees that the cron line cd'd into the project), writes to stdout and stderr (which
# the cron line sends to the log file) and, with FAKE_HOLD=1, keeps running until the test
# creates a "release" file, holding the flock lock meanwhile.
FAKE_MANAGE_PY = textwrap.dedent(
    """\
    import os
    import sys
    import time
    from pathlib import Path

    here = Path.cwd()
    with open(here / "runs.log", "a") as runs:
        runs.write(" ".join(sys.argv[1:]) + "\\n")
    print("fake runner stdout:", " ".join(sys.argv[1:]), flush=True)
    print("fake runner stderr", file=sys.stderr, flush=True)
    if os.environ.get("FAKE_HOLD") == "1":
        (here / "started").touch()
        deadline = time.monotonic() + 30
        while not (here / "release").exists() and time.monotonic() < deadline:
            time.sleep(0.01)
    """
)

# A crontab(1) stand-in: tables are files named after the user in TABLES; every call is
# appended to TABLES/calls. Like the real one, it refuses a table without a final newline.
FAKE_CRONTAB = textwrap.dedent(
    """\
    #!/usr/bin/env bash
    set -euo pipefail
    tables=%(tables)s
    printf '%%s\\n' "$*" >>"$tables/calls"
    user=$(id -un)
    if [[ ${1:-} == -u ]]; then
        user=$2
        shift 2
    fi
    table="$tables/$user"
    case ${1:-} in
        -l)
            if [[ -f $table ]]; then cat -- "$table"; else echo "no crontab for $user" >&2; exit 1; fi
            ;;
        -r)
            if [[ -f $table ]]; then rm -- "$table"; else echo "no crontab for $user" >&2; exit 1; fi
            ;;
        -)
            cat >"$table.new"
            if [[ -s $table.new && $(tail -c 1 "$table.new" | od -An -c) != *'\\n'* ]]; then
                echo "new crontab file is missing newline before EOF, can't install." >&2
                rm -- "$table.new"
                exit 1
            fi
            mv -- "$table.new" "$table"
            ;;
        *)
            echo "fake crontab: unsupported arguments: $*" >&2
            exit 1
            ;;
    esac
    """
)


# ---------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------


@dataclass
class Crontab:
    """One crontab back end, and the user whose table the tests edit."""

    kind: str
    program: str
    user: str | None = None
    tables: Path | None = None

    def flags(self) -> list[str]:
        flags = ["--crontab", self.program]
        if self.user:
            flags += ["--user", self.user]
        return flags

    def _run(self, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        user = ["-u", self.user] if self.user else []
        return subprocess.run(
            [self.program, *user, *args],
            input=stdin,
            capture_output=True,
            text=True,
            env={**os.environ, "LC_ALL": "C"},
            check=False,
        )

    def read(self) -> str | None:
        """The current table, or None when the user has no crontab."""
        result = self._run("-l")
        if result.returncode != 0:
            assert "no crontab for" in result.stderr, result.stderr
            return None
        return result.stdout

    def write(self, table: str) -> None:
        result = self._run("-", stdin=table)
        assert result.returncode == 0, result.stderr

    def clear(self) -> None:
        self._run("-r")
        if self.tables is not None:
            (self.tables / "calls").unlink(missing_ok=True)

    def calls(self) -> list[str]:
        """The fake's call log (always empty for the real crontab)."""
        if self.tables is None or not (self.tables / "calls").exists():
            return []
        return (self.tables / "calls").read_text().splitlines()


def real_crontab_problem() -> str | None:
    if shutil.which("crontab") is None:
        return "the crontab program is missing (apt-get install cron)"
    if os.geteuid() != 0:
        return "not running as root (needed for useradd and crontab -u)"
    if shutil.which("useradd") is None or shutil.which("userdel") is None:
        return "useradd/userdel are missing"
    return None


def skip_or_fail(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true requires the real crontab test to run, but {reason}")
    pytest.skip(reason)


def run_script(
    script: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(script), *args],
        capture_output=True,
        text=True,
        env=env if env is not None else os.environ.copy(),
        timeout=30,
        check=False,
    )


def setup_cron(
    crontab: Crontab, project: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run setup_cron.sh with the back end's flags, --project-dir and --python first."""
    defaults = [*crontab.flags(), "--project-dir", str(project), "--python", PYTHON]
    return run_script(SETUP, *defaults, *args, env=env)


def sq(value: str) -> str:
    """Single-quote for sh, the way the script does it (always, even when not needed)."""
    return "'" + value.replace("'", "'\\''") + "'"


def our_lines(table: str | None, project: Path) -> list[str]:
    return [line for line in (table or "").splitlines() if line.endswith(MARKER + str(project))]


def installed_line(crontab: Crontab, project: Path) -> str:
    lines = our_lines(crontab.read(), project)
    assert len(lines) == 1, lines
    return lines[0]


def cron_command(line: str) -> str:
    """The command part of a crontab line (everything after the five time fields)."""
    return line.split(" ", 5)[5]


def make_project(path: Path) -> Path:
    path.mkdir(parents=True)
    (path / "manage.py").write_text(FAKE_MANAGE_PY)
    return path.resolve()


def cron_env(**extra: str) -> dict[str, str]:
    """An environment as poor as cron's."""
    return {"PATH": "/usr/bin:/bin", "HOME": "/", "LC_ALL": "C", **extra}


def run_line(command: str, shell: str = "/bin/sh", **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [shell, "-c", command],
        capture_output=True,
        text=True,
        env=cron_env(**env),
        timeout=15,
        check=False,
    )


def wait_for(path: Path, process: subprocess.Popen[str], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert process.poll() is None, f"process exited early: {process.communicate()}"
        assert time.monotonic() < deadline, f"timed out waiting for {path}"
        time.sleep(0.01)


# ---------------------------------------------------------------------------------------
# Fixtures
# ---------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def real_cron_user() -> Iterator[str | None]:
    """A throwaway system user whose crontab the real-crontab tests may edit."""
    if real_crontab_problem() is not None:
        yield None
        return
    name = f"tpcron{secrets.token_hex(4)}"
    created = subprocess.run(
        ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", name],
        capture_output=True,
        text=True,
        check=False,
    )
    if created.returncode != 0:
        yield None
        return
    try:
        yield name
    finally:
        subprocess.run(["crontab", "-u", name, "-r"], capture_output=True, check=False)
        subprocess.run(["userdel", name], capture_output=True, check=False)


def _real_crontab(real_cron_user: str | None) -> Crontab:
    problem = real_crontab_problem()
    if problem is None and real_cron_user is None:
        problem = "could not create a throwaway user with useradd"
    if problem is not None:
        skip_or_fail(problem)
    assert real_cron_user is not None
    return Crontab(kind="real", program=shutil.which("crontab") or "crontab", user=real_cron_user)


def _fake_crontab(tmp_path: Path) -> Crontab:
    tables = tmp_path / "fake-crontabs"
    tables.mkdir()
    program = tmp_path / "fake-bin" / "crontab"
    program.parent.mkdir()
    program.write_text(FAKE_CRONTAB % {"tables": sq(str(tables))})
    program.chmod(0o755)
    return Crontab(kind="fake", program=str(program), tables=tables)


@pytest.fixture(params=["real", "fake"])
def crontab(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Crontab]:
    """An empty crontab (no table at all) on either back end, emptied again afterwards."""
    if request.param == "real":
        backend = _real_crontab(request.getfixturevalue("real_cron_user"))
    else:
        backend = _fake_crontab(tmp_path)
    backend.clear()
    assert backend.read() is None
    yield backend
    backend.clear()


@pytest.fixture
def real_crontab(real_cron_user: str | None) -> Iterator[Crontab]:
    backend = _real_crontab(real_cron_user)
    backend.clear()
    yield backend
    backend.clear()


@pytest.fixture
def fake_crontab(tmp_path: Path) -> Crontab:
    return _fake_crontab(tmp_path)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return make_project(tmp_path / "project")


# A crontab as people really write them: environment lines, comments, blank lines, tabs,
# trailing blanks, and lines of other projects whose directories share a prefix or suffix
# with the test project's, or carry a similar marker.
def other_lines(project: Path) -> str:
    return (
        'MAILTO="ops@example.com"\n'
        "SHELL=/bin/bash\n"
        "PATH=/usr/local/bin:/usr/bin:/bin\n"
        "# m h  dom mon dow   command\n"
        "\n"
        "0 3 * * 1\t/usr/local/bin/backup --full   \n"
        "@reboot echo 'héllo wörld' > /dev/null\n"
        f"* * * * * echo other {MARKER}{project}-other\n"
        f"* * * * * echo parent {MARKER}{project.parent}\n"
        f"* * * * * echo nested {MARKER}{project}/sub\n"
        f"* * * * * echo suffix {MARKER}/elsewhere{project}\n"
        f"# a comment mentioning {MARKER}{project} in the middle, not at the end.\n"
    )


# ---------------------------------------------------------------------------------------
# setup_cron.sh install / remove / status
# ---------------------------------------------------------------------------------------


def test_install_into_empty_crontab(crontab: Crontab, project: Path) -> None:
    result = setup_cron(crontab, project, "install")

    assert result.returncode == 0, result.stderr
    table = crontab.read()
    assert table is not None and table.endswith("\n")
    assert table.count("\n") == 1
    line = table.rstrip("\n")
    assert our_lines(table, project) == [line]
    assert line in result.stdout
    flock = shutil.which("flock")
    assert flock is not None
    expected_start = f"* * * * * cd {sq(str(project))} && {sq(flock)} -n "
    assert line.startswith(expected_start)
    assert (
        f" {sq(PYTHON)} manage.py run_scheduled_tasks"
        f" >> {sq(str(project / 'logs' / 'cron.log'))} 2>&1 {MARKER}{project}"
    ) in line
    assert "%" not in line
    assert (project / "logs").is_dir()


def test_install_twice_gives_one_line(crontab: Crontab, project: Path) -> None:
    first = setup_cron(crontab, project, "install")
    table = crontab.read()
    second = setup_cron(crontab, project, "install")

    assert first.returncode == second.returncode == 0, second.stderr
    assert crontab.read() == table
    assert len(our_lines(table, project)) == 1
    assert "already installed" in second.stdout
    if crontab.kind == "fake":
        # The second run only listed the table; it did not rewrite it.
        assert crontab.calls()[-1] == "-l"


def test_install_preserves_other_lines_byte_for_byte(crontab: Crontab, project: Path) -> None:
    others = other_lines(project)
    crontab.write(others)
    assert crontab.read() == others

    result = setup_cron(crontab, project, "install")

    assert result.returncode == 0, result.stderr
    table = crontab.read()
    assert table is not None
    line = installed_line(crontab, project)
    assert table == others + line + "\n"

    removed = setup_cron(crontab, project, "remove")
    assert removed.returncode == 0, removed.stderr
    assert crontab.read() == others


def test_changing_interval_replaces_the_line_in_place(crontab: Crontab, project: Path) -> None:
    assert setup_cron(crontab, project, "install").returncode == 0
    every_minute = installed_line(crontab, project)
    crontab.write('MAILTO=""\n# before\n' + every_minute + "\n# after\n0 * * * * true\n")

    result = setup_cron(crontab, project, "install", "--interval", "5")

    assert result.returncode == 0, result.stderr
    every_five = installed_line(crontab, project)
    assert every_five == "*/5" + every_minute[1:]
    assert crontab.read() == 'MAILTO=""\n# before\n' + every_five + "\n# after\n0 * * * * true\n"

    # --opt=value works too, and back to every minute.
    assert setup_cron(crontab, project, "install", "--interval=1").returncode == 0
    assert installed_line(crontab, project) == every_minute


def test_install_collapses_duplicate_lines(crontab: Crontab, project: Path) -> None:
    assert setup_cron(crontab, project, "install", "--interval", "7").returncode == 0
    line = installed_line(crontab, project)
    crontab.write(f"{line}\n# keep\n{line}\n")

    assert setup_cron(crontab, project, "install").returncode == 0

    table = crontab.read()
    assert table is not None
    new_line = installed_line(crontab, project)
    assert new_line.startswith("* * * * * ")
    assert table == f"{new_line}\n# keep\n"


def test_remove_only_removes_our_line(crontab: Crontab, project: Path, tmp_path: Path) -> None:
    other_project = make_project(tmp_path / "other")
    assert setup_cron(crontab, other_project, "install").returncode == 0
    assert setup_cron(crontab, project, "install").returncode == 0
    other_line = installed_line(crontab, other_project)
    crontab.write("# mine\n" + (crontab.read() or "") + "5 4 * * * true\n")

    result = setup_cron(crontab, project, "remove")

    assert result.returncode == 0, result.stderr
    assert "Removed" in result.stdout
    assert crontab.read() == f"# mine\n{other_line}\n5 4 * * * true\n"


def test_remove_last_line_leaves_an_empty_table(crontab: Crontab, project: Path) -> None:
    assert setup_cron(crontab, project, "install").returncode == 0

    result = setup_cron(crontab, project, "remove")

    assert result.returncode == 0, result.stderr
    assert crontab.read() == ""


@pytest.mark.parametrize("table", [None, "# just a comment\n"], ids=["no-crontab", "other-lines"])
def test_remove_when_absent_is_a_no_op(crontab: Crontab, project: Path, table: str | None) -> None:
    if table is not None:
        crontab.write(table)

    result = setup_cron(crontab, project, "remove")

    assert result.returncode == 0, result.stderr
    assert "nothing to remove" in result.stdout
    assert crontab.read() == table


def test_status_exit_codes_and_output(crontab: Crontab, project: Path) -> None:
    not_yet = setup_cron(crontab, project, "status")
    assert not_yet.returncode == 1
    assert "Not installed" in not_yet.stdout
    assert "No cron log file yet" in not_yet.stdout

    assert setup_cron(crontab, project, "install").returncode == 0
    line = installed_line(crontab, project)
    log = project / "logs" / "cron.log"
    log.write_text("".join(f"log line {i:02d}\n" for i in range(15)))

    installed = setup_cron(crontab, project, "status")
    assert installed.returncode == 0, installed.stderr
    assert "Installed" in installed.stdout
    assert line in installed.stdout
    assert "log line 14" in installed.stdout
    assert "log line 05" in installed.stdout
    assert "log line 04" not in installed.stdout

    assert setup_cron(crontab, project, "remove").returncode == 0
    assert setup_cron(crontab, project, "status").returncode == 1


def test_status_of_another_project_is_not_installed(
    crontab: Crontab, project: Path, tmp_path: Path
) -> None:
    assert setup_cron(crontab, project, "install").returncode == 0
    sibling = make_project(tmp_path / "project-2")

    assert setup_cron(crontab, sibling, "status").returncode == 1
    assert setup_cron(crontab, project.parent, "status").returncode == 1


def test_project_dir_with_spaces_and_quotes(crontab: Crontab, tmp_path: Path) -> None:
    project = make_project(tmp_path / "my projects" / "it's $HOME `x` \\ here")
    others = 'MAILTO=""\n'
    crontab.write(others)

    result = setup_cron(crontab, project, "install", "--lock-file", str(project / "a lock"))

    assert result.returncode == 0, result.stderr
    line = installed_line(crontab, project)
    assert crontab.read() == others + line + "\n"
    assert setup_cron(crontab, project, "status").returncode == 0

    ran = run_line(cron_command(line))
    assert ran.returncode == 0, ran.stderr
    assert (project / "runs.log").read_text() == "run_scheduled_tasks\n"
    assert "fake runner stdout" in (project / "logs" / "cron.log").read_text()

    assert setup_cron(crontab, project, "remove").returncode == 0
    assert crontab.read() == others


def test_relative_project_dir_is_made_absolute(
    crontab: Crontab, project: Path, tmp_path: Path
) -> None:
    result = subprocess.run(
        [str(SETUP), "install", *crontab.flags(), "--project-dir", "project", "--python", PYTHON],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        check=False,
    )

    assert result.returncode == 0, result.stderr
    assert installed_line(crontab, project).endswith(f"{MARKER}{project}")


def test_defaults_python_from_project_venv_and_lock_file_per_project(
    crontab: Crontab, project: Path, tmp_path: Path
) -> None:
    venv_python = project / ".venv" / "bin" / "python"
    venv_python.parent.mkdir(parents=True)
    venv_python.symlink_to(PYTHON)
    other = make_project(tmp_path / "other")

    defaults = [*crontab.flags(), "install"]
    assert run_script(SETUP, *defaults, "--project-dir", str(project)).returncode == 0
    assert run_script(SETUP, *defaults, "--project-dir", str(other)).returncode == 0

    line = installed_line(crontab, project)
    # The venv's python is kept as the symlink, not resolved to the base interpreter.
    assert f" {sq(str(venv_python))} manage.py " in line
    lock = shlex.split(cron_command(line))[5]
    assert lock.startswith("/tmp/ticketproo-scheduler-") and lock.endswith(".lock")
    other_line = installed_line(crontab, other)
    other_lock = shlex.split(cron_command(other_line))[5]
    assert other_lock != lock
    # Without a venv, python3 from PATH, as an absolute path.
    python3 = shutil.which("python3")
    assert python3 is not None
    assert f" {sq(python3)} manage.py " in other_line


def test_explicit_log_and_lock_files(crontab: Crontab, project: Path, tmp_path: Path) -> None:
    log = tmp_path / "var log" / "sched.log"
    lock = tmp_path / "sched.lock"

    result = setup_cron(
        crontab, project, "install", "--log-file", str(log), "--lock-file", str(lock)
    )

    assert result.returncode == 0, result.stderr
    line = installed_line(crontab, project)
    assert f" -n {sq(str(lock))} " in line
    assert f" >> {sq(str(log))} 2>&1 " in line
    assert log.parent.is_dir()


def test_help() -> None:
    for flag in ("-h", "--help"):
        result = run_script(SETUP, flag)
        assert result.returncode == 0
        assert result.stdout.startswith("Usage:")
        for option in ("install", "remove", "status", "--project-dir", "--python", "--interval",
                       "--log-file", "--lock-file", "--crontab", "--user"):  # fmt: skip
            assert option in result.stdout


BAD_ARGS = [
    pytest.param([], "no command given", id="no-command"),
    pytest.param(["frobnicate"], "unknown command: frobnicate", id="unknown-command"),
    pytest.param(["install", "remove"], "only one command", id="two-commands"),
    pytest.param(["install", "--bogus"], "unknown option: --bogus", id="unknown-flag"),
    pytest.param(["install", "-x"], "unknown option: -x", id="unknown-short-flag"),
    pytest.param(["install", "--interval"], "--interval requires a value", id="missing-value"),
    pytest.param(
        ["install", "--python", "--interval", "5"], "--python requires a value", id="flag-as-value"
    ),
    pytest.param(["install", "--log-file="], "non-empty value", id="empty-value"),
    pytest.param(["install", "--interval", "abc"], "whole number", id="interval-not-numeric"),
    pytest.param(["install", "--interval", "-5"], "whole number", id="interval-negative"),
    pytest.param(["install", "--interval", "2.5"], "whole number", id="interval-fraction"),
    pytest.param(["install", "--interval", "0"], "between 1 and 59", id="interval-zero"),
    pytest.param(["install", "--interval=60"], "between 1 and 59", id="interval-60"),
    pytest.param(["status", "--interval", "x"], "whole number", id="status-validates-too"),
    pytest.param(["install", "--project-dir", "{empty}"], "no manage.py", id="no-manage-py"),
    pytest.param(
        ["install", "--project-dir", "{tmp}/nowhere"], "not a directory", id="no-project-dir"
    ),
    pytest.param(["install", "--project-dir", "{pct}"], "must not contain '%'", id="percent"),
    pytest.param(["install", "--python", "{tmp}/nopython"], "not an executable", id="no-python"),
    pytest.param(
        ["install", "--python", "{project}/manage.py"], "not an executable", id="python-not-exec"
    ),
    pytest.param(
        ["install", "--python", "no-such-python-xyz"], "not found on PATH", id="python-not-on-path"
    ),
    pytest.param(
        ["install", "--lock-file", "{tmp}/nowhere/x.lock"], "does not exist", id="lock-dir-missing"
    ),
    pytest.param(["install", "--log-file", "{tmp}"], "is a directory", id="log-file-is-dir"),
    pytest.param(
        ["install", "--crontab", "{tmp}/no-crontab"], "crontab program not found", id="no-crontab"
    ),
    pytest.param(["install", "--user", "no-such-user-xyz"], "no such user", id="no-such-user"),
]


@pytest.mark.parametrize(("args", "message"), BAD_ARGS)
def test_bad_arguments_exit_2_and_leave_crontab_alone(
    crontab: Crontab, project: Path, tmp_path: Path, args: list[str], message: str
) -> None:
    others = other_lines(project)
    crontab.write(others)
    calls_before = crontab.calls()
    (tmp_path / "empty").mkdir()
    (tmp_path / "50%").mkdir()
    (tmp_path / "50%" / "manage.py").touch()
    (tmp_path / "nopython").touch()
    places = {
        "{tmp}": str(tmp_path),
        "{empty}": str(tmp_path / "empty"),
        "{pct}": str(tmp_path / "50%"),
        "{project}": str(project),
    }
    for placeholder, value in places.items():
        args = [arg.replace(placeholder, value) for arg in args]

    result = setup_cron(crontab, project, *args)

    assert result.returncode == 2, (result.stdout, result.stderr)
    assert message in result.stderr
    assert "error:" in result.stderr
    assert result.stdout == ""
    assert crontab.read() == others
    if crontab.kind == "fake":
        # The script did not even call crontab; the only new call is our own read-back.
        assert crontab.calls() == [*calls_before, "-l"]


def test_crontab_list_failure_is_reported(project: Path, tmp_path: Path) -> None:
    broken = tmp_path / "broken-crontab"
    broken.write_text(
        "#!/bin/sh\necho 'crontab: cannot open spool: Permission denied' >&2\nexit 1\n"
    )
    broken.chmod(0o755)

    result = run_script(
        SETUP,
        "install",
        "--crontab",
        str(broken),
        "--project-dir",
        str(project),
        "--python",
        PYTHON,
    )

    assert result.returncode == 1
    assert "Permission denied" in result.stderr
    assert "could not read the crontab" in result.stderr


def test_missing_flock_fails_clearly(fake_crontab: Crontab, project: Path, tmp_path: Path) -> None:
    # A PATH holding every program of the normal PATH except flock.
    bin_dir = tmp_path / "bin-without-flock"
    bin_dir.mkdir()
    for directory in os.environ.get("PATH", "/usr/bin:/bin").split(os.pathsep):
        if not os.path.isdir(directory):
            continue
        for entry in os.scandir(directory):
            target = bin_dir / entry.name
            if entry.name != "flock" and not target.exists() and os.access(entry.path, os.X_OK):
                target.symlink_to(entry.path)
    env = {**os.environ, "PATH": str(bin_dir)}

    result = setup_cron(fake_crontab, project, "install", env=env)

    assert result.returncode == 2
    assert "flock not found" in result.stderr
    assert fake_crontab.read() is None


def test_fake_backend_passes_user_to_crontab(fake_crontab: Crontab, project: Path) -> None:
    user = subprocess.run(["id", "-un"], capture_output=True, text=True, check=True).stdout.strip()

    result = setup_cron(fake_crontab, project, "install", "--user", user)

    assert result.returncode == 0, result.stderr
    assert fake_crontab.calls() == [f"-u {user} -l", f"-u {user} -"]
    assert f"crontab of {user}" in result.stdout


def test_real_crontab_round_trip(real_crontab: Crontab, project: Path) -> None:
    """The scripts against Debian's crontab, whatever back end the other tests could use."""
    others = other_lines(project)
    real_crontab.write(others)

    assert setup_cron(real_crontab, project, "install").returncode == 0
    assert setup_cron(real_crontab, project, "install", "--interval", "10").returncode == 0
    spool = Path("/var/spool/cron/crontabs") / str(real_crontab.user)
    assert spool.exists()
    line = installed_line(real_crontab, project)
    assert line.startswith("*/10 * * * * ")
    assert real_crontab.read() == others + line + "\n"
    assert setup_cron(real_crontab, project, "status").returncode == 0
    assert setup_cron(real_crontab, project, "remove").returncode == 0
    assert real_crontab.read() == others


# ---------------------------------------------------------------------------------------
# The installed line really runs, and flock -n keeps runs from piling up
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("shell", ["/bin/sh", "/bin/bash"])
def test_installed_line_runs_the_scheduler(
    crontab: Crontab, project: Path, tmp_path: Path, shell: str
) -> None:
    assert (
        setup_cron(crontab, project, "install", "--lock-file", str(tmp_path / "x.lock")).returncode
        == 0
    )
    command = cron_command(installed_line(crontab, project))

    # Run from elsewhere: the line must cd into the project itself.
    result = run_line(command, shell=shell)

    assert result.returncode == 0, result.stderr
    assert result.stdout == result.stderr == ""  # everything went to the log file
    assert (project / "runs.log").read_text() == "run_scheduled_tasks\n"
    log = (project / "logs" / "cron.log").read_text()
    assert "fake runner stdout: run_scheduled_tasks" in log
    assert "fake runner stderr" in log

    # The log is appended to, not overwritten.
    assert run_line(command, shell=shell).returncode == 0
    assert (project / "logs" / "cron.log").read_text().count("fake runner stdout") == 2


def test_second_run_exits_at_once_while_the_first_holds_the_lock(
    crontab: Crontab, project: Path, tmp_path: Path
) -> None:
    lock = tmp_path / "sched.lock"
    assert setup_cron(crontab, project, "install", "--lock-file", str(lock)).returncode == 0
    command = cron_command(installed_line(crontab, project))
    runs = project / "runs.log"

    first = subprocess.Popen(
        ["/bin/sh", "-c", command],
        env=cron_env(FAKE_HOLD="1"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for(project / "started", first)

        started = time.monotonic()
        second = run_line(command)
        elapsed = time.monotonic() - started

        assert second.returncode == 1  # flock -n: the lock is taken, give up
        assert elapsed < 5
        assert runs.read_text() == "run_scheduled_tasks\n"  # the runner did not start again
    finally:
        (project / "release").touch()
        first.communicate(timeout=15)
    assert first.returncode == 0

    # Once the first run is over, the next one runs normally.
    third = run_line(command)
    assert third.returncode == 0, third.stderr
    assert runs.read_text() == "run_scheduled_tasks\n" * 2


# ---------------------------------------------------------------------------------------
# quick_cron_setup.sh
# ---------------------------------------------------------------------------------------


def make_quick_project(path: Path) -> Path:
    """A project with its own copy of the scripts, so they detect it as theirs."""
    project = make_project(path)
    (project / "scripts").mkdir()
    for script in (SETUP, QUICK, ROOT / "scripts" / "find_python.sh"):
        shutil.copy2(script, project / "scripts" / script.name)
    return project


def make_venv(path: Path) -> Path:
    python = path / "bin" / "python"
    python.parent.mkdir(parents=True)
    python.symlink_to(PYTHON)
    return python


def quick_env(**extra: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key != "VIRTUAL_ENV"}
    return {**env, **extra}


@pytest.mark.parametrize("venv_name", [".venv", "venv"])
def test_quick_setup_detects_the_project_venv(
    crontab: Crontab, tmp_path: Path, venv_name: str
) -> None:
    project = make_quick_project(tmp_path / "quick project")
    python = make_venv(project / venv_name)
    if venv_name == "venv":
        make_venv(project / "not-a-venv")  # only .venv and venv count

    result = run_script(project / "scripts" / QUICK.name, *crontab.flags(), env=quick_env())

    assert result.returncode == 0, result.stderr
    assert (project / "logs").is_dir()
    line = installed_line(crontab, project)
    assert line.startswith("* * * * * ")
    assert f" {sq(str(python))} manage.py run_scheduled_tasks " in line
    assert line in result.stdout
    assert f"{project / 'scripts' / 'setup_cron.sh'} remove" in result.stdout.replace("\\ ", " ")

    # Running it again changes nothing.
    table = crontab.read()
    again = run_script(project / "scripts" / QUICK.name, *crontab.flags(), env=quick_env())
    assert again.returncode == 0, again.stderr
    assert crontab.read() == table


def test_quick_setup_prefers_the_active_virtualenv(crontab: Crontab, tmp_path: Path) -> None:
    project = make_quick_project(tmp_path / "project")
    make_venv(project / ".venv")
    active = make_venv(tmp_path / "active-env")

    env = quick_env(VIRTUAL_ENV=str(tmp_path / "active-env"))
    result = run_script(project / "scripts" / QUICK.name, *crontab.flags(), env=env)

    assert result.returncode == 0, result.stderr
    assert f" {sq(str(active))} manage.py " in installed_line(crontab, project)


def test_quick_setup_falls_back_to_python3(crontab: Crontab, tmp_path: Path) -> None:
    project = make_quick_project(tmp_path / "project")
    env = quick_env(VIRTUAL_ENV=str(tmp_path / "gone"))  # set, but not a virtualenv

    result = run_script(project / "scripts" / QUICK.name, *crontab.flags(), env=env)

    assert result.returncode == 0, result.stderr
    assert "warning" in result.stderr
    python3 = shutil.which("python3", path=env["PATH"])
    assert python3 is not None
    assert f" {sq(python3)} manage.py " in installed_line(crontab, project)


def test_quick_setup_refuses_a_dir_without_manage_py(crontab: Crontab, tmp_path: Path) -> None:
    project = make_quick_project(tmp_path / "project")
    (project / "manage.py").unlink()

    result = run_script(project / "scripts" / QUICK.name, *crontab.flags(), env=quick_env())

    assert result.returncode == 2
    assert "no manage.py" in result.stderr
    assert crontab.read() is None
