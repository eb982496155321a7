"""A run's log lines in the database (``loglines.py``): gathered from real sandbox runs through
the runner (pool and blocking path), bounded, cut, made storable, stored while the run goes on."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest
from django.utils import timezone

from scheduled_tasks import conf, loglines, registry, runner
from scheduled_tasks.models import Execution, ExecutionLogLine
from scheduled_tasks.sandbox import SnippetResult, protocol, run_snippet
from tests.conftest import Clock
from tests.factories import T0, make_company, make_execution, make_task

pytestmark = pytest.mark.django_db(transaction=True)


@registry.register("tests.loglines.chatty")
def chatty(ctx: registry.JobContext, *, times: int = 2) -> None:
    for n in range(times):
        ctx.log("job line %s", n, level=logging.WARNING if n else logging.INFO)


def due_task(name: str, code: str, **options: object):
    return make_task(
        name=name, code=code, next_run_at=timezone.now() - timedelta(seconds=1), **options
    )


def stored(execution: Execution) -> list[tuple[int, int, str]]:
    return list(execution.log_lines.values_list("seq", "level", "message"))


LOGGING_SNIPPET = (
    "logger.info('first %s', 1)\n"
    "print('printed, not logged')\n"
    "logger.warning('second')\n"
    "logger.debug('third')\n"
    "logger.error('fourth')\n"
    "logger.critical('fifth')\n"
)
EXPECTED = [
    (1, logging.INFO, "first 1"),
    (2, logging.WARNING, "second"),
    (3, logging.DEBUG, "third"),
    (4, logging.ERROR, "fourth"),
    (5, logging.CRITICAL, "fifth"),
]


# --- real runs through the runner ----------------------------------------------------------


def test_lines_of_a_scheduled_run_are_stored_in_order_with_their_levels():
    due_task("chatty", LOGGING_SNIPPET)
    before = timezone.now()
    [execution] = runner.tick(timezone.now()).executions
    assert execution.status == "completed", execution.error
    assert stored(execution) == EXPECTED
    line = execution.log_lines.first()
    assert before <= line.at <= execution.finished_at
    assert line.level_name == "INFO"


def test_lines_of_a_run_now_are_stored():
    task = make_task(name="now", code=LOGGING_SNIPPET)
    execution = runner.run_task_now(task, now=timezone.now())
    assert execution.status == "completed", execution.error
    assert stored(execution) == EXPECTED


def test_lines_of_a_failing_run_are_kept():
    task = make_task(name="fails", code="logger.info('before')\n1 / 0\n")
    execution = runner.run_task_now(task, now=timezone.now())
    assert execution.status == "failed"
    assert stored(execution) == [(1, logging.INFO, "before")]


def test_a_registered_functions_lines_are_stored_like_a_snippets():
    task = make_task(name="job", code="", function_name="tests.loglines.chatty")
    execution = runner.run_task_now(task, now=timezone.now())
    assert execution.status == "completed", execution.error
    assert stored(execution) == [
        (1, logging.INFO, "job line 0"),
        (2, logging.WARNING, "job line 1"),
    ]


def test_lines_still_go_to_the_log_file(caplog):
    task = make_task(name="file", code="logger.warning('to the file too')")
    with caplog.at_level(logging.INFO, logger="scheduled_tasks"):
        execution = runner.run_task_now(task, now=timezone.now())
    assert f"[snippet task-{task.pk} execution {execution.pk}] to the file too" in caplog.text
    assert stored(execution) == [(1, logging.WARNING, "to the file too")]


def test_past_the_bound_one_marker_line_is_stored_and_the_rest_dropped(settings, caplog):
    settings.SCHEDULED_TASKS = {**conf.all_settings(), "MAX_LOG_LINES": 3}
    due_task("many", "for i in range(10):\n    logger.info('line %s', i)\n")
    with caplog.at_level(logging.INFO, logger="scheduled_tasks"):
        [execution] = runner.tick(timezone.now()).executions
    assert stored(execution) == [
        (1, logging.INFO, "line 0"),
        (2, logging.INFO, "line 1"),
        (3, logging.INFO, "line 2"),
        (4, logging.WARNING, loglines.MORE_NOT_STORED),
    ]
    assert "line 9" in caplog.text  # the log file still gets every line


def test_a_long_line_is_cut_and_marked():
    task = make_task(name="long", code="logger.info('x' * 5000)\nlogger.info('short')")
    execution = runner.run_task_now(task, now=timezone.now())
    first, second = execution.log_lines.all()
    assert len(first.message) == loglines.LINE_CHARS
    assert first.message == "x" * (loglines.LINE_CHARS - 1) + "…"
    assert second.message == "short"


def test_the_childs_log_budget_notice_is_stored_as_a_line(settings):
    settings.SCHEDULED_TASKS = {**conf.all_settings(), "MAX_OUTPUT_BYTES": 300}
    task = make_task(name="budget", code="for i in range(100):\n    logger.info('line %03d', i)\n")
    execution = runner.run_task_now(task, now=timezone.now())
    lines = stored(execution)
    assert lines[0] == (1, logging.INFO, "line 000")
    assert lines[-1][1:] == (logging.WARNING, protocol.LOG_LIMIT_NOTICE)
    assert len(lines) < 100


def test_hostile_text_from_a_run_is_stored_safely():
    code = "logger.info('a\\x00b\\x1bc\\u2028d\\ud800e <b>f</b>')\n"
    task = make_task(name="hostile", code=code)
    execution = runner.run_task_now(task, now=timezone.now())
    assert execution.status == "completed", execution.error
    [(_, level, message)] = stored(execution)
    assert level == logging.INFO
    assert "\x00" not in message
    assert message.startswith("a\\x00b\x1bc\u2028d")
    assert message.endswith("e <b>f</b>")
    message.encode("utf-8")  # no lone surrogate made it in


def test_lines_are_in_the_database_while_the_run_goes_on():
    code = (
        "logger.info('waiting for the test')\n"
        "start = datetime.now()\n"
        "while (datetime.now() - start).total_seconds() < 20:\n"
        "    if Company.objects.filter(name='go').exists():\n"
        "        break\n"
        "logger.info('allowed to finish')\n"
    )
    task = due_task("live", code, timeout_seconds=30)
    seen: dict[str, object] = {}

    def look() -> str:  # the tick asks between its looks at the runs: the page's view
        if not seen and ExecutionLogLine.objects.filter(message="waiting for the test").exists():
            seen["status"] = task.executions.get().status
            seen["lines"] = task.executions.get().log_lines.count()
            make_company("go")
        return ""

    [execution] = runner.tick(timezone.now(), forced=look).executions
    assert seen == {"status": "running", "lines": 1}
    assert execution.status == "completed", execution.error
    assert [m for _, _, m in stored(execution)] == ["waiting for the test", "allowed to finish"]


def test_a_test_run_of_unsaved_code_stores_nothing():
    result = run_snippet("logger.info('only a test')", label="test-run")
    assert result.status == "completed"
    assert not ExecutionLogLine.objects.exists()


# --- the collector itself --------------------------------------------------------------------


def test_the_collector_makes_text_storable_and_cuts_it():
    execution = make_execution(make_task())
    lines = loglines.LogLines(execution.pk, Clock(T0), max_lines=10)
    lines.add(logging.INFO, "lone \ud800 surrogate, NUL \x00, ESC \x1b, LS \u2028")
    lines.add(logging.ERROR, "y" * 3000)
    lines.add(7, "an odd level")
    assert loglines.store([lines], everything=True) == 3
    first, second, third = execution.log_lines.all()
    assert first.message == "lone \ufffd surrogate, NUL \\x00, ESC \x1b, LS \u2028"
    assert (first.at, first.seq) == (T0, 1)
    assert second.message.endswith("…") and len(second.message) == loglines.LINE_CHARS
    assert (third.level, third.level_name) == (logging.DEBUG, "DEBUG")


def test_the_collector_writes_a_run_at_most_every_so_often():
    execution = make_execution(make_task())
    lines = loglines.LogLines(execution.pk, Clock(T0))
    lines.add(logging.INFO, "one")
    assert loglines.store([lines]) == 1  # the first line at once
    lines.add(logging.INFO, "two")
    assert loglines.store([lines]) == 0  # then it waits
    assert loglines.store([lines, None], everything=True) == 1  # the run's end takes all
    assert loglines.store([lines], everything=True) == 0


def test_a_failing_write_is_logged_and_the_run_goes_on(caplog):
    lines = loglines.LogLines(987654, Clock(T0))  # no such execution
    lines.add(logging.INFO, "lost")
    with caplog.at_level(logging.ERROR, logger="scheduled_tasks"):
        assert loglines.store([lines], everything=True) == 0
    assert "1 log line(s) of a run could not be stored" in caplog.text


def test_the_blocking_path_stores_lines_when_it_looks_at_the_run():
    task = make_task(name="blocking")
    seen: list[int] = []

    def executor(code: str, **options) -> SnippetResult:
        options["on_log"](logging.INFO, "early")
        options["cancel"]()  # the follower asks on every look at the run
        seen.append(ExecutionLogLine.objects.filter(execution__task=task).count())
        options["on_log"](logging.INFO, "late")
        return SnippetResult("completed", "", "", 0.01)

    execution = runner.run_task_now(task, now=T0, clock=Clock(T0), snippet_executor=executor)
    assert seen == [1]
    assert stored(execution) == [(1, logging.INFO, "early"), (2, logging.INFO, "late")]
