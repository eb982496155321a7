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


# --- cron expressions ----------------------------------------------------------------------------


def test_cron_weekdays_in_madrid_skip_the_weekend() -> None:
    lines = preview(
        "--cron", "30 8 * * MON-FRI", "--tz", "Europe/Madrid",
        "--after", "2026-01-02T00:00", "--count", "3",
    )  # fmt: skip

    assert lines == [
        "2026-01-02T08:30:00+01:00",
        "2026-01-05T08:30:00+01:00",
        "2026-01-06T08:30:00+01:00",
    ]


def test_cron_times_are_strictly_after_the_after_option() -> None:
    lines = preview(
        "--cron", "0 9 * * *", "--tz", "UTC", "--after", "2026-01-05T09:00Z", "--count", "1"
    )

    assert lines == ["2026-01-06T09:00:00+00:00"]


def test_cron_in_the_spring_gap_runs_at_the_end_of_the_gap() -> None:
    lines = preview(
        "--cron", "30 2 * * *", "--tz", "Europe/Madrid",
        "--after", "2024-03-30T00:00", "--count", "3",
    )  # fmt: skip

    assert lines == [
        "2024-03-30T02:30:00+01:00",
        "2024-03-31T03:00:00+02:00",
        "2024-04-01T02:30:00+02:00",
    ]


def test_cron_in_the_repeated_autumn_hour_runs_once() -> None:
    lines = preview(
        "--cron", "30 2 * * *", "--tz", "Europe/Madrid",
        "--after", "2024-10-26T12:00", "--count", "2",
    )  # fmt: skip

    assert lines == ["2024-10-27T02:30:00+02:00", "2024-10-28T02:30:00+01:00"]


def test_hourly_cron_follows_real_time_through_the_autumn_change() -> None:
    lines = preview(
        "--cron", "30 * * * *", "--tz", "Europe/Madrid",
        "--after", "2024-10-27T01:00", "--count", "4",
    )  # fmt: skip

    assert lines == [
        "2024-10-27T01:30:00+02:00",
        "2024-10-27T02:30:00+02:00",
        "2024-10-27T02:30:00+01:00",
        "2024-10-27T03:30:00+01:00",
    ]


def test_cron_day_of_month_or_day_of_week_as_in_cron() -> None:
    # Both restricted: the 13th of any month, or any Friday.
    lines = preview(
        "--cron", "0 12 13 * FRI", "--tz", "UTC", "--after", "2026-02-01T00:00Z", "--count", "4"
    )

    assert lines == [
        "2026-02-06T12:00:00+00:00",
        "2026-02-13T12:00:00+00:00",
        "2026-02-20T12:00:00+00:00",
        "2026-02-27T12:00:00+00:00",
    ]


def test_cron_zone_defaults_to_settings_time_zone(settings) -> None:
    settings.TIME_ZONE = "America/New_York"

    lines = preview("--cron", "0 9 * * *", "--after", "2026-07-01T00:00", "--count", "1")

    assert lines == ["2026-07-01T09:00:00-04:00"]


def test_cron_after_defaults_to_now() -> None:
    with time_machine.travel(datetime(2026, 3, 2, 10, 20, 30, tzinfo=UTC), tick=False):
        lines = preview("--cron", "*/15 * * * *", "--tz", "UTC", "--count", "2")

    assert lines == ["2026-03-02T10:30:00+00:00", "2026-03-02T10:45:00+00:00"]


# --- one-off times -------------------------------------------------------------------------------


def test_one_off_prints_its_single_time_in_the_zone() -> None:
    lines = preview(
        "--at", "2026-07-01T09:00", "--tz", "Europe/Madrid", "--after", "2026-01-01T00:00"
    )

    assert lines == ["2026-07-01T09:00:00+02:00"]


def test_one_off_with_an_offset_is_that_instant() -> None:
    lines = preview(
        "--at", "2026-07-01T07:00:00Z", "--tz", "America/New_York", "--after", "2026-01-01T00:00Z"
    )

    assert lines == ["2026-07-01T03:00:00-04:00"]


def test_one_off_not_after_the_after_option_prints_nothing() -> None:
    at_the_same_moment = preview(
        "--at", "2026-07-01T09:00Z", "--tz", "UTC", "--after", "2026-07-01T09:00Z"
    )
    before = preview("--at", "2026-07-01T09:00Z", "--tz", "UTC", "--after", "2026-08-01T00:00Z")

    assert at_the_same_moment == []
    assert before == []


def test_one_off_in_the_spring_gap_is_the_end_of_the_gap() -> None:
    lines = preview(
        "--at", "2026-03-29T02:30", "--tz", "Europe/Madrid", "--after", "2026-01-01T00:00"
    )

    assert lines == ["2026-03-29T03:00:00+02:00"]


def test_one_off_prints_one_line_whatever_the_count() -> None:
    lines = preview("--at", "2030-01-01T00:00Z", "--tz", "UTC", "--count", "10")

    assert lines == ["2030-01-01T00:00:00+00:00"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--cron", "0 0 31 2 *"],
            "invalid schedule: the cron expression '0 0 31 2 *' never runs: day 31 of the month "
            "never falls in month 2",
        ),
        (["--cron", "61 * * * *"], "invalid cron expression '61 * * * *': Bad minute"),
        (["--cron", "0 9 * *"], "a cron expression has 5 fields"),
        (["--cron", ""], "the cron expression is empty"),
        (["--cron", "0 9 * * *", "--tz", "Mars/Olympus"], "--tz: unknown time zone 'Mars/Olympus'"),
        (["--cron", "0 9 * * *", "--unit", "days"], "--unit is only for --every, not for --cron"),
        (
            ["--at", "2026-01-01T00:00", "--unit", "days", "--anchor", "2026-01-01T00:00"],
            "--unit and --anchor are only for --every, not for --at",
        ),
        (["--at", "soon"], "--at must be an ISO 8601 date"),
        (["--at", "2026-01-01", "--tz", "Nowhere"], "--tz: unknown time zone 'Nowhere'"),
        (["--every", "1"], "--unit is required with --every"),
        (["--every", "1", "--unit", "days", "--anchor", "2026-13-01"], "--anchor must be an ISO"),
    ],
)
def test_bad_cron_and_one_off_input_is_a_one_line_error_with_status_2(
    args: list[str], message: str
) -> None:
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
    two_kinds = _manage("--cron", "0 9 * * *", "--at", "2026-01-01T00:00")
    cron = _manage(
        "--cron", "30 8 * * MON-FRI", "--tz", "Europe/Madrid", "--after", "2026-03-27T00:00",
        "--count", "2",
    )  # fmt: skip
    impossible = _manage("--cron", "0 0 31 2 *")

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
    assert "one of the arguments --every --cron --at is required" in argparse_bad.stderr
    assert two_kinds.returncode == 2
    assert "not allowed with argument" in two_kinds.stderr
    assert cron.returncode == 0, cron.stderr
    assert cron.stdout.splitlines() == ["2026-03-27T08:30:00+01:00", "2026-03-30T08:30:00+02:00"]
    assert impossible.returncode == 2
    assert impossible.stdout == ""
    assert len(impossible.stderr.strip().splitlines()) == 1
    assert "never runs" in impossible.stderr
