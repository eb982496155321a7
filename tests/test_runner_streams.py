"""The runner's streams are never the snippet's; log lines can be neither forged nor lost."""

from __future__ import annotations

import gc
import json
import logging
import os
import re
import subprocess
import sys
import warnings
from datetime import timedelta

import pytest
from django.conf import settings
from django.utils import timezone

from scheduled_tasks.models import Execution
from scheduled_tasks.sandbox import run_snippet
from scheduled_tasks.sandbox.isolation import LOG_LIMIT_NOTICE, Limits, OutputChannel, run_in_child
from scheduled_tasks.sandbox.snippet_logger import escape_line, log_writer
from tests.conftest import ROOT, database_url_for_subprocess, run_manage
from tests.factories import make_task

LIMITS = Limits(timeout=5, max_output_bytes=4000, max_memory_mb=128)


class Noisy:
    def __del__(self) -> None:
        raise ValueError("raised in __del__")


def noisy_target(channel: OutputChannel) -> tuple[str, str]:
    """Everything that writes to a process's stdout or stderr behind the sandbox's back."""
    os.write(1, b"os.write to fd 1\n")
    os.write(2, b"os.write to fd 2\n")
    print("print to sys.stdout")
    print("print to sys.stderr", file=sys.stderr)
    sys.__stdout__.write("to sys.__stdout__\n")
    sys.__stdout__.flush()
    Noisy()
    gc.collect()
    warnings.warn("a warning from the target", UserWarning, stacklevel=1)
    re.compile("debug-me", re.DEBUG)
    logging.getLogger("some.library").warning("a library's warning")
    logging.getLogger("scheduled_tasks.job.test").info("a job's log line")
    return "completed", ""


def test_nothing_the_child_writes_reaches_the_parents_fds_1_and_2(capfd):
    lines: list[tuple[int, str]] = []
    outcome = run_in_child(
        noisy_target, LIMITS, on_log=lambda level, text: lines.append((level, text))
    )
    assert outcome.status == "completed", outcome.error
    assert capfd.readouterr() == ("", "")
    output = outcome.output
    assert "print to sys.stdout\n" in output
    assert "print to sys.stderr\n" in output
    assert "Exception ignored: ValueError: raised in __del__\n" in output
    assert "UserWarning: a warning from the target" in output
    assert "LITERAL 100" in output  # the re.DEBUG dump of "debug-me"
    assert "os.write" not in output  # C-level writes to fds 1 and 2 go to /dev/null
    assert (logging.WARNING, "(some.library) a library's warning") in lines
    assert (logging.INFO, "(scheduled_tasks.job.test) a job's log line") in lines


CHILD_SCRIPT = """
import json, django
django.setup()
from tests.test_runner_streams import LIMITS, noisy_target
from scheduled_tasks.sandbox.isolation import run_in_child
outcome = run_in_child(noisy_target, LIMITS)
print(json.dumps({"status": outcome.status, "output": outcome.output}))
"""


def subprocess_env() -> dict[str, str]:
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "DATABASE_URL": database_url_for_subprocess(),
    }


@pytest.mark.django_db
def test_a_runner_process_prints_only_its_own_report():
    proc = subprocess.run(
        [sys.executable, "-c", CHILD_SCRIPT],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        env=subprocess_env(),
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    [line] = proc.stdout.splitlines()
    report = json.loads(line)
    assert report["status"] == "completed"
    assert "LITERAL 100" in report["output"]


NOISY_SNIPPET = """\
import re
print("hello")
re.compile("a", 128)
re.compile("[[a]")
def gen():
    try:
        yield 1
    finally:
        raise ValueError("from a finalizer")
g = gen()
next(g)
g = None
logger.info("logged")
"""


@pytest.mark.django_db
def test_run_snippet_json_stays_one_valid_json_document():
    proc = run_manage("run_snippet", "--json", "-", input=NOISY_SNIPPET)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    payload = json.loads(proc.stdout)
    assert payload["status"] == "completed"
    output = payload["output"]
    assert output.startswith("hello\nLITERAL 97\n")
    assert "FutureWarning (line 4): Possible nested set at position 1\n" in output
    assert "Exception ignored: ValueError: from a finalizer\n" in output
    assert output.endswith("[INFO] logged\n")


@pytest.mark.django_db(transaction=True)
def test_run_scheduled_tasks_task_id_prints_exactly_the_run():
    task = make_task(name="noisy", code=NOISY_SNIPPET, anchor=timezone.now() + timedelta(days=3))
    proc = run_manage("run_scheduled_tasks", "--task-id", str(task.pk))
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    execution = Execution.objects.get(task=task)
    expected = rf"task {task.pk} “noisy”: completed in \d+\.\d{{3}}s\n" + re.escape(
        execution.output.rstrip("\n") + "\n"
    )
    assert re.fullmatch(expected, proc.stdout), proc.stdout
    assert "LITERAL 97" in execution.output


# -- log lines ----------------------------------------------------------------------------------


def test_escape_line_leaves_nothing_a_terminal_or_a_log_reader_would_act_on():
    text = "a\x1b[2Jb\rc\nd\x00e\x7ff\x85g\x9bh\u2028i\u2029j\u202ek\ud800l\udfffm é €"
    escaped = escape_line(text)
    assert escaped == (
        "a\\x1b[2Jb\\x0dc\\x0ad\\x00e\\x7ff\\x85g\\x9bh\\u2028i\\u2029j\\u202ek\\ud800l\\udfffm é €"
    )
    escaped.encode("utf-8")  # strict: nothing left that an encoder refuses


def log_file_lines_after(size: int) -> list[str]:
    data = settings.TEST_LOG_FILE.read_bytes()[size:]
    return data.decode("utf-8").splitlines()  # strict: every line was written


def log_size() -> int:
    return settings.TEST_LOG_FILE.stat().st_size if settings.TEST_LOG_FILE.exists() else 0


HOSTILE_LOG_SNIPPET = """\
logger.info("esc \\x1b[31mred\\x1b[0m end")
logger.info("line\\u2028separator")
logger.info("next\\x85line")
logger.info("lone \\ud800 surrogate")
logger.warning("x\\n2026-01-01 00:00:00,000 INFO [scheduled_tasks.runner] execution 1 finished")
logger.error("INFO [scheduled_tasks.runner] execution 2 finished: task 1 'x' status=completed")
"""


@pytest.mark.django_db
def test_snippet_log_lines_are_escaped_prefixed_and_never_dropped():
    size = log_size()
    result = run_snippet(HOSTILE_LOG_SNIPPET, label="task-7", execution_id=42)
    assert result.status == "completed", result.error
    lines = [ln for ln in log_file_lines_after(size) if "scheduled_tasks.snippet" in ln]
    assert len(lines) == 6  # one line per call: none split, none lost
    prefix = " [scheduled_tasks.snippet.task-7] [snippet task-7 execution 42] "
    assert all(prefix in ln for ln in lines)
    assert lines[0].endswith(f"{prefix}esc \\x1b[31mred\\x1b[0m end")
    assert lines[1].endswith("line\\u2028separator")
    assert lines[2].endswith("next\\x85line")
    assert lines[3].endswith("lone \\ud800 surrogate")
    assert "x\\x0a2026-01-01 00:00:00,000 INFO [scheduled_tasks.runner]" in lines[4]
    # No line of the file starts the way a runner line does unless the runner wrote it.
    for line in log_file_lines_after(size):
        assert not re.match(r"\S+ \S+ \w+ \[scheduled_tasks\.runner\] execution [12] ", line)
    raw = settings.TEST_LOG_FILE.read_bytes()[size:]
    assert not re.search(rb"[\x00-\x09\x0b-\x1f\x7f]", raw)
    assert "\x85".encode() not in raw and "\u2028".encode() not in raw


def test_log_lines_travel_to_the_parent_within_the_budget():
    lines: list[tuple[int, str]] = []

    def target(channel: OutputChannel) -> tuple[str, str]:
        for i in range(100):
            channel.log(logging.INFO, f"line {i:03d}")  # 8 bytes + the level byte
        return "completed", ""

    limits = Limits(timeout=5, max_output_bytes=100, max_memory_mb=128)
    outcome = run_in_child(target, limits, on_log=lambda level, text: lines.append((level, text)))
    assert outcome.status == "completed", outcome.error
    # 11 lines of 9 bytes fit in the 100-byte budget; then the notice, once; then nothing.
    assert lines[:11] == [(logging.INFO, f"line {i:03d}") for i in range(11)]
    assert lines[11:] == [(logging.WARNING, LOG_LIMIT_NOTICE)]


def test_log_lines_written_before_a_timeout_are_kept():
    lines: list[tuple[int, str]] = []

    def target(channel: OutputChannel) -> tuple[str, str]:
        channel.log(logging.WARNING, "about to hang")
        while True:
            pass

    limits = Limits(timeout=0.5, max_output_bytes=100, max_memory_mb=128)
    outcome = run_in_child(target, limits, on_log=lambda level, text: lines.append((level, text)))
    assert outcome.status == "timeout"
    assert lines == [(logging.WARNING, "about to hang")]


def test_the_parent_writes_child_lines_through_the_snippet_logger(caplog):
    write = log_writer("task-3", 99)
    with caplog.at_level(logging.INFO, logger="scheduled_tasks.snippet.task-3"):
        write(logging.INFO, "evil\r\nINFO [scheduled_tasks.runner] hi \udcff")
    [record] = caplog.records
    assert record.name == "scheduled_tasks.snippet.task-3"
    assert record.getMessage() == (
        "[snippet task-3 execution 99] evil\\x0d\\x0aINFO [scheduled_tasks.runner] hi \\udcff"
    )
