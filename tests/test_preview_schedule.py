"""``manage.py preview_schedule``: parse, ask schedules.py, print one ISO time per line."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime
from io import StringIO
from pathlib import Path

import pytest
import time_machine
from django.conf import settings
from django.core.management import CommandError, call_command

MANAGE_PY = Path(settings.BASE_DIR) / "manage.py"


def preview(*args: str) -> list[str]:
    out = StringIO()
    call_command("preview_schedule", *args, stdout=out)
    return out.getvalue().splitlines()


def test_monthly_month_end_in_madrid_keeps_last_day_and_wall_clock() -> None:
    lines = preview(
        "--every", "1", "--unit", "months", "--anchor", "2024-01-31T09:00",
        "--tz", "Europe/Madrid", "--after", "2024-01-01T00:00", "--count", "4",
    )  # fmt: skip

    assert lines == [
        "2024-01-31T09:00:00+01:00",
        "2024-02-29T09:00:00+01:00",
        "2024-03-31T09:00:00+02:00",
        "2024-04-30T09:00:00+02:00",
    ]


def test_times_are_strictly_after_the_after_option() -> None:
    lines = preview(
        "--every", "1", "--unit", "days", "--anchor", "2026-01-05T09:00:00+00:00",
        "--tz", "UTC", "--after", "2026-01-06T09:00:00+00:00", "--count", "2",
    )  # fmt: skip

    assert lines == ["2026-01-07T09:00:00+00:00", "2026-01-08T09:00:00+00:00"]


def test_default_count_is_five() -> None:
    lines = preview(
        "--every", "15", "--unit", "minutes", "--anchor", "2026-01-05T09:00Z",
        "--after", "2026-01-05T09:00Z", "--tz", "UTC",
    )  # fmt: skip

    assert lines == [
        "2026-01-05T09:15:00+00:00",
        "2026-01-05T09:30:00+00:00",
        "2026-01-05T09:45:00+00:00",
        "2026-01-05T10:00:00+00:00",
        "2026-01-05T10:15:00+00:00",
    ]


def test_hourly_across_fall_back_prints_both_0230s_with_their_offsets() -> None:
    lines = preview(
        "--every", "1", "--unit", "hours", "--anchor", "2024-10-27T00:30",
        "--tz", "Europe/Madrid", "--after", "2024-10-27T01:00", "--count", "3",
    )  # fmt: skip

    assert lines == [
        "2024-10-27T01:30:00+02:00",
        "2024-10-27T02:30:00+02:00",
        "2024-10-27T02:30:00+01:00",
    ]


def test_naive_after_in_the_spring_gap_is_the_end_of_the_gap() -> None:
    # 02:30 does not exist on 2024-03-31 in Madrid; it means 03:00+02:00 (01:00 UTC).
    lines = preview(
        "--every", "30", "--unit", "minutes", "--anchor", "2024-03-31T00:00:00+00:00",
        "--tz", "Europe/Madrid", "--after", "2024-03-31T02:30", "--count", "1",
    )  # fmt: skip

    assert lines == ["2024-03-31T03:30:00+02:00"]


def test_aware_anchor_is_printed_in_the_requested_zone() -> None:
    lines = preview(
        "--every", "1", "--unit", "weeks", "--anchor", "2026-01-05T09:00:00+00:00",
        "--tz", "America/New_York", "--after", "2026-01-01T00:00:00+00:00", "--count", "1",
    )  # fmt: skip

    assert lines == ["2026-01-05T04:00:00-05:00"]


def test_zone_defaults_to_settings_time_zone(settings) -> None:
    settings.TIME_ZONE = "Europe/Madrid"

    lines = preview(
        "--every", "1", "--unit", "days", "--anchor", "2026-07-01T09:00",
        "--after", "2026-07-01T00:00", "--count", "1",
    )  # fmt: skip

    assert lines == ["2026-07-01T09:00:00+02:00"]


def test_anchor_and_after_default_to_now() -> None:
    with time_machine.travel(datetime(2026, 3, 2, 10, 20, 30, tzinfo=UTC), tick=False):
        lines = preview("--every", "1", "--unit", "hours", "--tz", "UTC", "--count", "2")

    assert lines == ["2026-03-02T11:20:30+00:00", "2026-03-02T12:20:30+00:00"]


def test_thousand_is_the_largest_count() -> None:
    lines = preview(
        "--every", "1", "--unit", "minutes", "--anchor", "2026-01-01T00:00Z",
        "--after", "2026-01-01T00:00Z", "--tz", "UTC", "--count", "1000",
    )  # fmt: skip

    assert len(lines) == 1000
    assert lines[-1] == "2026-01-01T16:40:00+00:00"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--every", "0", "--unit", "days"], "the frequency must be at least 1, not 0"),
        (["--every", "-3", "--unit", "days"], "the frequency must be at least 1, not -3"),
        (["--every", "1.5", "--unit", "days"], "--every must be a whole number, not '1.5'"),
        (["--every", "two", "--unit", "days"], "--every must be a whole number, not 'two'"),
        (["--every", "36501", "--unit", "days"], "the frequency must be at most 36500 for days"),
        (["--every", "1", "--unit", "fortnights"], "unknown unit 'fortnights'"),
        (["--every", "1", "--unit", "days", "--count", "0"], "--count must be between 1 and 1000"),
        (["--every", "1", "--unit", "days", "--count", "1001"], "between 1 and 1000, not 1001"),
        (["--every", "1", "--unit", "days", "--count", "x"], "--count must be a whole number"),
        (["--every", "1", "--unit", "days", "--tz", "Mars/Olympus"], "unknown time zone"),
        (["--every", "1", "--unit", "days", "--tz", ""], "unknown time zone ''"),
        (["--every", "1", "--unit", "days", "--anchor", "tomorrow"], "--anchor must be an ISO"),
        (["--every", "1", "--unit", "days", "--after", "2026-02-30"], "--after must be an ISO"),
        (
            ["--every", "1200", "--unit", "months", "--anchor", "9990-01-01T00:00"],
            "no further runs",
        ),
    ],
)
def test_bad_input_is_a_one_line_error_with_status_2(args: list[str], message: str) -> None:
    with pytest.raises(CommandError) as excinfo:
        preview(*args)

    assert excinfo.value.returncode == 2
    assert message in str(excinfo.value)
    assert "\n" not in str(excinfo.value)


def _manage(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings"}
    return subprocess.run(
        [sys.executable, str(MANAGE_PY), "preview_schedule", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=MANAGE_PY.parent,
        timeout=60,
        check=False,
    )


@pytest.mark.slow
def test_command_line_prints_lines_and_exits_2_on_bad_input() -> None:
    ok = _manage(
        "--every", "1", "--unit", "days", "--anchor", "2024-03-30T02:30",
        "--tz", "Europe/Madrid", "--after", "2024-03-30T00:00", "--count", "3",
    )  # fmt: skip
    bad = _manage("--every", "0", "--unit", "days")
    argparse_bad = _manage("--unit", "days")

    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.splitlines() == [
        "2024-03-30T02:30:00+01:00",
        "2024-03-31T03:00:00+02:00",
        "2024-04-01T02:30:00+02:00",
    ]
    assert bad.returncode == 2
    assert bad.stdout == ""
    assert bad.stderr.strip().splitlines() == [
        "CommandError: invalid schedule: the frequency must be at least 1, not 0"
    ]
    assert argparse_bad.returncode == 2
    assert "--every" in argparse_bad.stderr
