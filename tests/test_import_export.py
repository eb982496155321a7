"""Export and import of scheduled tasks: the import_export module and its two commands."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command
from django.db import connection

from scheduled_tasks import registry
from scheduled_tasks.import_export import ImportValidationError, export_tasks, import_tasks
from scheduled_tasks.models import ScheduledTask
from scheduled_tasks.registry import JobContext
from tests.factories import make_task, make_user

pytestmark = pytest.mark.django_db

MANAGE_PY = Path(settings.BASE_DIR) / "manage.py"
DROP = object()  # an override value that removes the key


def entry(name: str = "nightly", /, **overrides: Any) -> dict[str, Any]:
    """A valid import entry; overrides replace keys (``DROP`` removes one)."""
    values: dict[str, Any] = {
        "name": name,
        "description": "Closes stale tickets.",
        "code": "print('hello')",
        "schedule": {"every": 1, "unit": "days", "anchor": "2026-01-05T09:00:00+00:00"},
        "active": True,
        "timeout_seconds": None,
    }
    for key, value in overrides.items():
        if value is DROP:
            values.pop(key, None)
        else:
            values[key] = value
    return values


def schedule(**overrides: Any) -> dict[str, Any]:
    values: dict[str, Any] = {"every": 1, "unit": "days", "anchor": "2026-01-05T09:00:00+00:00"}
    for key, value in overrides.items():
        if value is DROP:
            values.pop(key, None)
        else:
            values[key] = value
    return values


def write(tmp_path: Path, data: object, filename: str = "tasks.json") -> Path:
    path = tmp_path / filename
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def run_import(*args: str) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("import_scheduled_tasks", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def failed_import(*args: str) -> tuple[CommandError, str]:
    err = io.StringIO()
    with pytest.raises(CommandError) as excinfo:
        call_command("import_scheduled_tasks", *args, stdout=io.StringIO(), stderr=err)
    return excinfo.value, err.getvalue()


def run_export(*args: str) -> str:
    out = io.StringIO()
    call_command("export_scheduled_tasks", *args, stdout=out)
    return out.getvalue()


ALL_FIELDS = (
    "name", "description", "code", "function_name", "function_params", "schedule_kind",
    "every", "unit", "anchor", "cron_expression", "run_at", "time_zone", "is_active",
    "timeout_seconds", "catch_up", "grace_seconds", "max_instances", "max_retries",
    "retry_backoff_seconds", "priority", "queue",
)  # fmt: skip
INTERVAL_ONLY = ("every", "unit", "anchor")


def snapshot() -> list[tuple[Any, ...]]:
    """Every stored task, field by field, to prove that a refused import changed nothing."""
    return list(
        ScheduledTask.objects.order_by("name").values_list(*ALL_FIELDS, "next_run_at", "updated_at")
    )


def meaningful() -> list[dict[str, Any]]:
    """What each stored task means: every field, but an interval's fields only for an interval
    (a cron or one-off task keeps them only as leftovers)."""
    rows = []
    for row in ScheduledTask.objects.order_by("name").values(*ALL_FIELDS):
        if row["schedule_kind"] != "interval":
            for key in INTERVAL_ONLY:
                del row[key]
        rows.append(row)
    return rows


def example(ctx: JobContext, *, days: int, label: str = "tickets") -> str:
    """Count things older than ``days`` days."""
    return f"{days} {label}"


@pytest.fixture
def example_function() -> Iterator[registry.RegisteredFunction]:
    registry.register("tests.example")(example)
    yield registry.get("tests.example")
    registry._REGISTRY.pop("tests.example", None)


def a_few_tasks() -> list[ScheduledTask]:
    return [
        make_task(name="hourly-digest", code="print('digest')", every=1, unit="hours"),
        make_task(
            name="a-month-end-report",
            description="Finance wants it on the last day.",
            code="x = 1\nprint(x)",
            every=1,
            unit="months",
            anchor=datetime(2026, 1, 31, 8, 0, tzinfo=UTC),
            timeout_seconds=120,
        ),
        make_task(
            name="paused-cleanup",
            every=2,
            unit="weeks",
            anchor=datetime(2026, 1, 5, 3, 30, tzinfo=UTC),
            is_active=False,
        ),
    ]


# --- export --------------------------------------------------------------------------------------


def test_export_writes_the_documented_keys_sorted_by_name() -> None:
    a_few_tasks()

    data = json.loads(run_export())

    assert [item["name"] for item in data] == [
        "a-month-end-report",
        "hourly-digest",
        "paused-cleanup",
    ]
    assert data[0] == {
        "name": "a-month-end-report",
        "description": "Finance wants it on the last day.",
        "code": "x = 1\nprint(x)",
        "schedule": {
            "kind": "interval",
            "every": 1,
            "unit": "months",
            "anchor": "2026-01-31T08:00:00+00:00",
        },
        "time_zone": "UTC",
        "active": True,
        "timeout_seconds": 120,
        "catch_up": "run_once",
        "grace_seconds": None,
        "max_instances": 1,
        "max_retries": 0,
        "retry_backoff_seconds": 60,
        "priority": 0,
        "queue": "",
    }
    assert data[2]["active"] is False
    assert data[2]["timeout_seconds"] is None


def test_export_shows_the_anchor_in_the_server_zone_with_its_offset(settings) -> None:
    settings.TIME_ZONE = "Europe/Madrid"
    make_task(name="t", anchor=datetime(2026, 7, 1, 7, 0, tzinfo=UTC))

    (item,) = export_tasks(ScheduledTask.objects.all())

    assert item["schedule"]["anchor"] == "2026-07-01T09:00:00+02:00"


def test_export_of_no_tasks_is_an_empty_list() -> None:
    assert json.loads(run_export()) == []


def test_export_to_a_file_reports_the_count(tmp_path: Path) -> None:
    a_few_tasks()
    target = tmp_path / "out.json"

    output = run_export(str(target))

    assert output.strip() == f"exported 3 tasks to {target}"
    names = [item["name"] for item in json.loads(target.read_text(encoding="utf-8"))]
    assert names == ["a-month-end-report", "hourly-digest", "paused-cleanup"]


def test_export_indent_option() -> None:
    make_task(name="t")

    assert run_export("--indent", "0").count("\n") == 1
    assert '\n    {\n        "name": "t"' in run_export("--indent", "4")


def test_export_refuses_a_negative_indent_and_an_unwritable_file(tmp_path: Path) -> None:
    with pytest.raises(CommandError, match="--indent must be 0 or more"):
        run_export("--indent", "-1")
    with pytest.raises(CommandError, match="cannot write"):
        run_export(str(tmp_path / "missing-dir" / "out.json"))


# --- round trip and updates ----------------------------------------------------------------------


def every_kind_of_task() -> list[ScheduledTask]:
    """Tasks of each kind and zone, one running a registered function, with non-default
    settings (needs the ``example_function`` fixture)."""
    return [
        *a_few_tasks(),
        make_task(
            name="weekday-digest",
            schedule_kind="cron",
            cron_expression="30 8 * * MON-FRI",
            time_zone="Europe/Madrid",
            catch_up="skip",
            grace_seconds=600,
            max_instances=2,
            max_retries=3,
            retry_backoff_seconds=120,
            priority=10,
        ),
        make_task(
            name="migration-day",
            schedule_kind="once",
            run_at=datetime(2030, 6, 1, 20, 0, tzinfo=UTC),
            time_zone="America/New_York",
            priority=-5,
        ),
        make_task(
            name="done-once",
            schedule_kind="once",
            run_at=datetime(2025, 6, 1, 20, 0, tzinfo=UTC),
            is_active=False,
            next_run_at=None,
        ),
        make_task(
            name="function-task",
            code="",
            function_name="tests.example",
            function_params={"days": 30, "label": "señales"},
            every=3,
            unit="days",
            anchor=datetime(2026, 1, 5, 23, 30, tzinfo=UTC),
            time_zone="Asia/Tokyo",
        ),
    ]


def test_round_trip_into_an_empty_database_gives_identical_tasks(
    tmp_path: Path, example_function: registry.RegisteredFunction
) -> None:
    every_kind_of_task()
    before = meaningful()
    exported = run_export()
    path = tmp_path / "tasks.json"
    path.write_text(exported, encoding="utf-8")
    ScheduledTask.objects.all().delete()

    output, _ = run_import(str(path))

    assert output.strip() == "created 7, updated 0"
    assert meaningful() == before
    assert run_export() == exported


def test_round_trip_onto_the_same_tasks_changes_nothing(
    tmp_path: Path, example_function: registry.RegisteredFunction
) -> None:
    every_kind_of_task()
    before = list(ScheduledTask.objects.order_by("name").values_list(*ALL_FIELDS))
    exported = run_export()

    output, _ = run_import(str(write_text(tmp_path, exported)))

    assert output.strip() == "created 0, updated 7"
    assert list(ScheduledTask.objects.order_by("name").values_list(*ALL_FIELDS)) == before
    assert run_export() == exported


def write_text(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "exported.json"
    path.write_text(text, encoding="utf-8")
    return path


def test_reimporting_the_same_file_updates_and_never_duplicates(tmp_path: Path) -> None:
    data = [entry("a"), entry("b")]
    path = write(tmp_path, data)
    run_import(str(path))

    data[1]["code"] = "print('changed')"
    data[1]["schedule"]["every"] = 3
    output, _ = run_import(str(write(tmp_path, data)))

    assert output.strip() == "created 0, updated 2"
    assert ScheduledTask.objects.count() == 2
    changed = ScheduledTask.objects.get(name="b")
    assert changed.code == "print('changed')"
    assert changed.every == 3


def test_import_creates_new_and_updates_existing_in_one_file(tmp_path: Path) -> None:
    existing = make_task(name="old", code="print('old')")

    output, _ = run_import(str(write(tmp_path, [entry("new"), entry("old")])))

    assert output.strip() == "created 1, updated 1"
    existing.refresh_from_db()
    assert existing.code == "print('hello')"
    assert existing.description == "Closes stale tickets."
    assert ScheduledTask.objects.count() == 2


def test_optional_keys_take_their_defaults(now: datetime) -> None:
    import_tasks([entry("t", description=DROP, active=DROP, timeout_seconds=DROP)], now=now)

    task = ScheduledTask.objects.get(name="t")
    assert task.description == ""
    assert task.is_active is True
    assert task.timeout_seconds is None


def test_omitted_optional_keys_reset_an_existing_task(now: datetime) -> None:
    make_task(name="t", description="old", is_active=False, timeout_seconds=30)

    import_tasks([entry("t", description=DROP, active=DROP, timeout_seconds=DROP)], now=now)

    task = ScheduledTask.objects.get(name="t")
    assert (task.description, task.is_active, task.timeout_seconds) == ("", True, None)


def test_import_puts_next_run_on_the_grid_and_clears_it_when_inactive() -> None:
    now = datetime(2026, 3, 1, 12, 30, tzinfo=UTC)
    make_task(name="paused", next_run_at=datetime(2026, 1, 1, tzinfo=UTC))

    import_tasks([entry("daily"), entry("paused", active=False)], now=now)

    assert ScheduledTask.objects.get(name="daily").next_run_at == datetime(
        2026, 3, 2, 9, 0, tzinfo=UTC
    )
    assert ScheduledTask.objects.get(name="paused").next_run_at is None


def test_import_records_the_user_and_keeps_the_original_creator(now: datetime) -> None:
    alice, bob = make_user("alice"), make_user("bob")
    import_tasks([entry("t")], now=now, user=alice)

    report = import_tasks([entry("t"), entry("u")], now=now + timedelta(hours=1), user=bob)

    assert (report.created, report.updated) == (["u"], ["t"])
    t = ScheduledTask.objects.get(name="t")
    assert (t.created_by, t.updated_by) == (alice, bob)
    u = ScheduledTask.objects.get(name="u")
    assert (u.created_by, u.updated_by) == (bob, bob)


def test_import_without_a_user_leaves_the_user_fields_alone(now: datetime) -> None:
    alice = make_user("alice")
    import_tasks([entry("t")], now=now, user=alice)

    import_tasks([entry("t")], now=now)

    t = ScheduledTask.objects.get(name="t")
    assert (t.created_by, t.updated_by) == (alice, alice)


def test_user_option_of_the_command(tmp_path: Path) -> None:
    alice = make_user("alice")
    path = write(tmp_path, [entry("t")])

    run_import(str(path), "--user", "alice")
    error, _ = failed_import(str(path), "--user", "nobody")

    assert ScheduledTask.objects.get(name="t").created_by == alice
    assert error.returncode == 1
    assert "no user named 'nobody'" in str(error)


def test_an_empty_list_imports_nothing(tmp_path: Path) -> None:
    output, _ = run_import(str(write(tmp_path, [])))

    assert output.strip() == "created 0, updated 0"


def test_verbosity_2_lists_the_names(tmp_path: Path) -> None:
    make_task(name="old")

    output, _ = run_import(str(write(tmp_path, [entry("new"), entry("old")])), "-v", "2")

    assert output.splitlines() == ["create new", "update old", "created 1, updated 1"]


# --- anchors -------------------------------------------------------------------------------------


def test_naive_anchor_is_wall_time_in_the_server_zone(settings, now: datetime) -> None:
    settings.TIME_ZONE = "Europe/Madrid"

    import_tasks(
        [
            entry("summer", schedule=schedule(anchor="2026-07-01T09:00:00")),
            entry("winter", schedule=schedule(anchor="2026-01-05T09:00")),
            entry("in-the-gap", schedule=schedule(anchor="2024-03-31T02:30:00")),
        ],
        now=now,
    )

    anchors = dict(ScheduledTask.objects.values_list("name", "anchor"))
    assert anchors["summer"] == datetime(2026, 7, 1, 7, 0, tzinfo=UTC)
    assert anchors["winter"] == datetime(2026, 1, 5, 8, 0, tzinfo=UTC)
    assert anchors["in-the-gap"] == datetime(2024, 3, 31, 1, 0, tzinfo=UTC)


def test_anchor_with_an_offset_keeps_its_instant(settings, now: datetime) -> None:
    settings.TIME_ZONE = "Europe/Madrid"

    import_tasks(
        [
            entry("ny", schedule=schedule(anchor="2026-01-05T09:00:00-05:00")),
            entry("zulu", schedule=schedule(anchor="2026-01-05T09:00:00Z")),
        ],
        now=now,
    )

    anchors = dict(ScheduledTask.objects.values_list("name", "anchor"))
    assert anchors["ny"] == datetime(2026, 1, 5, 14, 0, tzinfo=UTC)
    assert anchors["zulu"] == datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


# --- schedule kinds, zones, functions and settings ----------------------------------------------


def test_export_of_cron_one_off_and_function_tasks(
    example_function: registry.RegisteredFunction,
) -> None:
    every_kind_of_task()

    data = {item["name"]: item for item in json.loads(run_export())}

    cron = data["weekday-digest"]
    assert cron["schedule"] == {"kind": "cron", "cron": "30 8 * * MON-FRI"}
    assert cron["time_zone"] == "Europe/Madrid"
    assert (cron["catch_up"], cron["grace_seconds"], cron["max_instances"]) == ("skip", 600, 2)
    assert (cron["max_retries"], cron["retry_backoff_seconds"], cron["priority"]) == (3, 120, 10)
    # A one-off's time is shown in its own zone.
    assert data["migration-day"]["schedule"] == {"kind": "once", "at": "2030-06-01T16:00:00-04:00"}
    function = data["function-task"]
    assert "code" not in function
    assert function["function"] == {
        "name": "tests.example",
        "params": {"days": 30, "label": "señales"},
    }
    assert function["schedule"]["anchor"] == "2026-01-06T08:30:00+09:00"
    assert list(function) == [
        "name", "description", "function", "schedule", "time_zone", "active", "timeout_seconds",
        "catch_up", "grace_seconds", "max_instances", "max_retries", "retry_backoff_seconds",
        "priority", "queue",
    ]  # fmt: skip


def test_import_of_a_cron_task_in_madrid(now: datetime) -> None:
    import_tasks(
        [
            entry(
                "c",
                schedule={"kind": "cron", "cron": "30  8 * * MON-FRI"},
                time_zone="Europe/Madrid",
            )
        ],
        now=now,
    )

    task = ScheduledTask.objects.get(name="c")
    assert (task.schedule_kind, task.cron_expression, task.run_at) == (
        "cron",
        "30 8 * * MON-FRI",
        None,
    )
    assert task.time_zone == "Europe/Madrid"
    assert task.anchor == now
    # Monday 09:00 UTC is 10:00 in Madrid: the next weekday 08:30 CET is Tuesday 07:30 UTC.
    assert task.next_run_at == datetime(2026, 1, 6, 7, 30, tzinfo=UTC)


def test_import_of_one_off_tasks(now: datetime) -> None:
    import_tasks(
        [
            entry("naive", schedule={"kind": "once", "at": "2026-02-01T10:00"},
                  time_zone="Europe/Madrid"),
            entry("aware", schedule={"kind": "once", "at": "2026-02-01T10:00:00Z"},
                  time_zone="Europe/Madrid"),
            entry("done", schedule={"kind": "once", "at": "2025-01-01T10:00:00Z"}, active=False),
            entry("now", schedule={"kind": "once", "at": now.isoformat()}),
        ],
        now=now,
    )  # fmt: skip

    tasks = {t.name: t for t in ScheduledTask.objects.all()}
    assert tasks["naive"].run_at == datetime(2026, 2, 1, 9, 0, tzinfo=UTC)
    assert tasks["naive"].next_run_at == tasks["naive"].run_at
    assert tasks["aware"].run_at == datetime(2026, 2, 1, 10, 0, tzinfo=UTC)
    assert tasks["done"].schedule_kind == "once"
    assert tasks["done"].next_run_at is None
    assert tasks["now"].next_run_at == now


def test_schedule_kind_defaults_to_interval_and_zone_to_the_servers(
    settings, now: datetime
) -> None:
    settings.TIME_ZONE = "Europe/Madrid"

    import_tasks([entry("old-format")], now=now)

    task = ScheduledTask.objects.get()
    assert (task.schedule_kind, task.time_zone) == ("interval", "Europe/Madrid")


def test_naive_times_are_wall_time_in_the_entrys_zone(settings, now: datetime) -> None:
    settings.TIME_ZONE = "UTC"

    import_tasks(
        [entry("tokyo", schedule=schedule(anchor="2026-01-06T09:00", unit="days"),
               time_zone="Asia/Tokyo")],
        now=now,
    )  # fmt: skip

    task = ScheduledTask.objects.get()
    assert task.anchor == datetime(2026, 1, 6, 0, 0, tzinfo=UTC)
    assert task.schedule_description == "Every day at 09:00 (Asia/Tokyo)"


def test_switching_kinds_on_update_keeps_exactly_one_schedule(now: datetime) -> None:
    task = make_task(name="t", every=2, unit="days", anchor=now)
    import_tasks([entry("t", schedule={"kind": "cron", "cron": "0 9 * * *"})], now=now)
    task.refresh_from_db()
    assert (task.schedule_kind, task.cron_expression, task.run_at) == ("cron", "0 9 * * *", None)
    assert (task.every, task.unit, task.anchor) == (2, "days", now)  # kept, unused

    import_tasks([entry("t", schedule={"kind": "once", "at": "2026-03-01T00:00:00Z"})], now=now)
    task.refresh_from_db()
    assert (task.schedule_kind, task.cron_expression) == ("once", "")
    assert task.run_at == datetime(2026, 3, 1, tzinfo=UTC)

    import_tasks([entry("t")], now=now)
    task.refresh_from_db()
    assert (task.schedule_kind, task.cron_expression, task.run_at) == ("interval", "", None)


def test_import_of_a_function_task(
    now: datetime, example_function: registry.RegisteredFunction
) -> None:
    import_tasks(
        [
            entry("f", code=DROP, function={"name": "tests.example", "params": {"days": 2}}),
            entry("g", code=DROP, function={"name": "tests.example", "params": {"days": 1}}),
        ],
        now=now,
    )
    make_task(name="h", code="print(1)")
    import_tasks(
        [entry("h", code=DROP, function={"name": "tests.example", "params": {"days": 9}})],
        now=now,
    )

    f = ScheduledTask.objects.get(name="f")
    assert (f.code, f.function_name, f.function_params) == ("", "tests.example", {"days": 2})
    h = ScheduledTask.objects.get(name="h")
    assert (h.code, h.function_params) == ("", {"days": 9})
    import_tasks([entry("h")], now=now)
    h.refresh_from_db()
    assert (h.code, h.function_name, h.function_params) == ("print('hello')", "", {})


@pytest.mark.parametrize(
    ("function", "problem"),
    [
        (
            {"name": "tests.example", "params": {}},
            "function.params: tests.example needs the parameter 'days'",
        ),
        (
            {"name": "tests.example", "params": {"days": 1, "colour": "red"}},
            "function.params: tests.example has no parameter 'colour' (parameters: days, label)",
        ),
        (
            {"name": "tests.example", "params": [1]},
            "function.params: must be an object, not a list",
        ),
        ({"name": "tests.example"}, "function.params: tests.example needs the parameter 'days'"),
        (
            {"name": "tests.example", "params": {"days": 1, "label": "a\x00"}},
            "function.params: must not contain a NUL character",
        ),
    ],
)
def test_function_parameters_are_checked_against_the_signature(
    now: datetime,
    example_function: registry.RegisteredFunction,
    function: dict[str, Any],
    problem: str,
) -> None:
    with pytest.raises(ImportValidationError) as excinfo:
        import_tasks([entry("f", code=DROP, function=function)], now=now)

    assert problem in [f"{p.field}: {p.message}" for p in excinfo.value.problems]
    assert ScheduledTask.objects.count() == 0


def test_settings_are_imported_and_reset_to_defaults_when_omitted(now: datetime) -> None:
    settings_keys = {
        "catch_up": "skip",
        "grace_seconds": 0,
        "max_instances": 50,
        "max_retries": 20,
        "retry_backoff_seconds": 86400,
        "priority": -100,
        "timeout_seconds": 1,
    }
    import_tasks([entry("t", **settings_keys)], now=now)
    task = ScheduledTask.objects.get()
    assert {key: getattr(task, key) for key in settings_keys} == settings_keys

    import_tasks([entry("t", timeout_seconds=DROP)], now=now)
    task.refresh_from_db()
    assert {key: getattr(task, key) for key in settings_keys} == {
        "catch_up": "run_once",
        "grace_seconds": None,
        "max_instances": 1,
        "max_retries": 0,
        "retry_backoff_seconds": 60,
        "priority": 0,
        "timeout_seconds": None,
    }


def test_a_one_off_in_the_past_is_judged_against_the_imports_now() -> None:
    data = [entry("o", schedule={"kind": "once", "at": "2026-01-05T09:00:00Z"})]

    with pytest.raises(ImportValidationError):
        import_tasks(data, now=datetime(2026, 1, 5, 9, 0, 1, tzinfo=UTC))
    import_tasks(data, now=datetime(2026, 1, 5, 8, 0, tzinfo=UTC))

    assert ScheduledTask.objects.get().next_run_at == datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def test_an_invalid_zone_does_not_hide_other_problems(now: datetime) -> None:
    with pytest.raises(ImportValidationError) as excinfo:
        import_tasks(
            [entry("z", time_zone="Nowhere", schedule={"kind": "cron", "cron": "0 0 30 2 *"},
                   max_retries=-3)],
            now=now,
        )  # fmt: skip

    assert [p.field for p in excinfo.value.problems] == [
        "time_zone",
        "schedule.cron",
        "max_retries",
    ]


# --- validation: every problem reported, nothing imported ----------------------------------------


LONG_NAME = "x" * 201

INVALID_ENTRIES = [
    (entry("bad", name=DROP), "entry 2, name: missing (required)"),
    (entry("bad", code=DROP), 'entry 2 ("bad"), code: missing (required)'),
    (entry("bad", schedule=DROP), 'entry 2 ("bad"), schedule: missing (required)'),
    (entry("bad", colour="red"), 'entry 2 ("bad"), colour: unknown key'),
    (entry(""), "entry 2, name: must not be empty"),
    (entry("   "), "entry 2, name: must not be empty"),
    (entry(" padded"), 'entry 2 (" padded"), name: must not start or end with whitespace'),
    (entry("bad", name=42), "entry 2, name: must be a string, not a number"),
    (entry(LONG_NAME), "name: is 201 characters; the limit is 200"),
    (entry("first"), 'entry 2 ("first"), name: duplicate name: entry 1 has it too'),
    (entry("bad\x00"), "name: must not contain a NUL character"),
    (entry("bad", description=["x"]), "description: must be a string, not a list"),
    (entry("bad", description="a\x00b"), "description: must not contain a NUL character"),
    (entry("bad", code="print(1)\x00"), "code: The code contains a NUL character."),
    (entry("bad", code=""), 'entry 2 ("bad"), code: The code is empty.'),
    (entry("bad", code=None), "code: must be a string, not null"),
    (entry("bad", code="def ("), "code: Line 1: SyntaxError"),
    (entry("bad", code="print(1)\nx.__class__"), 'code: Line 2: "__class__" is an invalid'),
    (entry("bad", schedule="daily"), "schedule: must be an object, not a string"),
    (entry("bad", schedule=schedule(every=DROP)), "schedule.every: missing (required)"),
    (entry("bad", schedule=schedule(unit=DROP)), "schedule.unit: missing (required)"),
    (entry("bad", schedule=schedule(anchor=DROP)), "schedule.anchor: missing (required)"),
    (entry("bad", schedule=schedule(tz="UTC")), "schedule.tz: unknown key"),
    (entry("bad", schedule=schedule(every=0)), "schedule.every: the frequency must be at least 1"),
    (entry("bad", schedule=schedule(every=-1)), "schedule.every: the frequency must be at least 1"),
    (entry("bad", schedule=schedule(every=True)), "schedule.every: the frequency must be a whole"),
    (entry("bad", schedule=schedule(every="3")), "schedule.every: the frequency must be a whole"),
    (entry("bad", schedule=schedule(every=2.5)), "schedule.every: the frequency must be a whole"),
    (
        entry("bad", schedule=schedule(every=100_001)),
        "schedule.every: the frequency must be at most",
    ),
    (
        entry("bad", schedule=schedule(unit="fortnights")),
        "schedule.unit: unknown unit 'fortnights'",
    ),
    (entry("bad", schedule=schedule(unit=None)), "schedule.unit: unknown unit None"),
    (entry("bad", schedule=schedule(unit=["days"])), "schedule.unit: unknown unit ['days']"),
    (
        entry("bad", schedule=schedule(anchor="tomorrow")),
        "schedule.anchor: 'tomorrow' is not an ISO 8601",
    ),
    (
        entry("bad", schedule=schedule(anchor="2026-02-30T09:00")),
        "schedule.anchor: '2026-02-30T09:00' is not",
    ),
    (
        entry("bad", schedule=schedule(anchor=1767603600)),
        "schedule.anchor: must be a string, not a number",
    ),
    (
        entry("bad", schedule=schedule(every=100_000, unit="months")),
        "schedule.every: the frequency must be at most 1200 for months",
    ),
    (entry("bad", active="yes"), 'entry 2 ("bad"), active: must be true or false, not a string'),
    (entry("bad", active=1), "active: must be true or false, not a number"),
    (entry("bad", timeout_seconds=0), "timeout_seconds: must be between 1 and 86400, not 0"),
    (
        entry("bad", timeout_seconds=86_401),
        "timeout_seconds: must be between 1 and 86400, not 86401",
    ),
    (
        entry("bad", timeout_seconds="60"),
        "timeout_seconds: must be a whole number or null, not a string",
    ),
    (entry("bad", timeout_seconds=True), "timeout_seconds: must be a whole number or null"),
    (entry("bad", timeout_seconds=1.5), "timeout_seconds: must be a whole number or null"),
    (entry("bad", schedule={"kind": "yearly"}), "schedule.kind: unknown schedule kind 'yearly'"),
    (entry("bad", schedule={"kind": 1}), "schedule.kind: unknown schedule kind 1"),
    (entry("bad", schedule={"kind": "cron"}), "schedule.cron: missing (required)"),
    (
        entry("bad", schedule={"kind": "cron", "cron": "0 0 31 2 *"}),
        "schedule.cron: the cron expression '0 0 31 2 *' never runs",
    ),
    (
        entry("bad", schedule={"kind": "cron", "cron": "61 * * * *"}),
        "schedule.cron: invalid cron expression '61 * * * *': Bad minute",
    ),
    (entry("bad", schedule={"kind": "cron", "cron": "* * *"}), "schedule.cron: a cron expression"),
    (entry("bad", schedule={"kind": "cron", "cron": 5}), "schedule.cron: must be a string"),
    (
        entry("bad", schedule={"kind": "cron", "cron": "0 9 * * *", "every": 1}),
        "schedule.every: not used by a schedule of kind 'cron'",
    ),
    (entry("bad", schedule={"kind": "once"}), "schedule.at: missing (required)"),
    (
        entry("bad", schedule={"kind": "once", "at": "2020-01-01T09:00:00Z"}),
        "schedule.at: 2020-01-01T09:00:00Z is in the past (the import runs at",
    ),
    (entry("bad", schedule={"kind": "once", "at": "next week"}), "schedule.at: 'next week' is not"),
    (
        entry("bad", schedule={"kind": "once", "at": "2030-01-01T09:00", "cron": "* * * * *"}),
        "schedule.cron: not used by a schedule of kind 'once'",
    ),
    (
        entry("bad", schedule=schedule(kind="interval", at="2030-01-01T09:00")),
        "schedule.at: not used by a schedule of kind 'interval'",
    ),
    (
        entry("bad", time_zone="Mars/Olympus"),
        "time_zone: unknown time zone 'Mars/Olympus'; use an IANA name such as Europe/Madrid",
    ),
    (entry("bad", time_zone=""), "time_zone: the time zone is empty"),
    (entry("bad", time_zone=None), "time_zone: the time zone is empty"),
    (entry("bad", code=DROP), 'code: missing (required): give "code" or "function"'),
    (
        entry("bad", function={"name": "tests.nope"}),
        'function: give either "code" or "function", not both',
    ),
    (
        entry("bad", code=DROP, function={"name": "tests.nope"}),
        "function.name: no registered function is called 'tests.nope'",
    ),
    (entry("bad", code=DROP, function="tests.nope"), "function: must be an object, not a string"),
    (entry("bad", code=DROP, function={}), "function.name: missing (required)"),
    (entry("bad", code=DROP, function={"name": 3}), "function.name: must be a string"),
    (
        entry("bad", code=DROP, function={"name": "x", "args": []}),
        "function.args: unknown key",
    ),
    (entry("bad", max_retries=-1), "max_retries: must be between 0 and 20, not -1"),
    (entry("bad", max_retries=21), "max_retries: must be between 0 and 20, not 21"),
    (entry("bad", max_retries=None), "max_retries: must be a whole number, not null"),
    (entry("bad", max_retries="3"), "max_retries: must be a whole number, not a string"),
    (entry("bad", max_instances=0), "max_instances: must be between 1 and 50, not 0"),
    (entry("bad", retry_backoff_seconds=0), "retry_backoff_seconds: must be between 1 and"),
    (entry("bad", priority=101), "priority: must be between -100 and 100, not 101"),
    (entry("bad", priority=1.5), "priority: must be a whole number, not a number"),
    (entry("bad", grace_seconds=-1), "grace_seconds: must be between 0 and 31622400, not -1"),
    (entry("bad", grace_seconds="1"), "grace_seconds: must be a whole number or null"),
    (
        entry("bad", catch_up="sometimes"),
        'catch_up: must be one of "run_once", "skip", not "sometimes"',
    ),
    (entry("bad", catch_up=None), 'catch_up: must be one of "run_once", "skip", not null'),
    (entry("bad", queue=5), "queue: must be a string, not a number"),
    (entry("bad", queue="two words"), "queue: A queue name: letters, digits and _ . : -"),
    (entry("bad", queue="q" * 101), "queue: Ensure this value has at most 100 characters"),
    ("oops", "entry 2: must be an object, not a string"),
    (["nested"], "entry 2: must be an object, not a list"),
    (None, "entry 2: must be an object, not null"),
]


@pytest.mark.parametrize(("bad", "problem"), INVALID_ENTRIES)
def test_one_bad_entry_of_three_is_reported_and_nothing_is_imported(
    tmp_path: Path, bad: object, problem: str
) -> None:
    make_task(name="first", code="print('original')")
    before = snapshot()
    path = write(tmp_path, [entry("first"), bad, entry("third")])

    error, stderr = failed_import(str(path))

    assert error.returncode == 1
    assert "nothing was imported" in str(error)
    assert any(problem in line for line in stderr.splitlines()), stderr
    assert snapshot() == before


def test_problems_name_the_entry_and_field(now: datetime) -> None:
    entries = [entry("ok"), entry("bad", active="yes", schedule=schedule(every=0, unit="x"))]

    with pytest.raises(ImportValidationError) as excinfo:
        import_tasks(entries, now=now)

    problems = excinfo.value.problems
    assert [(p.position, p.name, p.field) for p in problems] == [
        (2, "bad", "schedule.every"),
        (2, "bad", "schedule.unit"),
        (2, "bad", "active"),
    ]
    assert str(problems[1]) == (
        "entry 2 (\"bad\"), schedule.unit: unknown unit 'x'; "
        "use one of: minutes, hours, days, weeks, months"
    )


def test_every_problem_of_every_entry_is_reported_at_once(tmp_path: Path) -> None:
    entries = [
        entry("a", code="", timeout_seconds=0),
        entry("b"),
        entry("c", schedule=schedule(anchor="soon", unit="years"), extra=1),
        entry("a"),
    ]

    error, stderr = failed_import(str(write(tmp_path, entries)))

    assert stderr.splitlines() == [
        'entry 1 ("a"), code: The code is empty.',
        'entry 1 ("a"), timeout_seconds: must be between 1 and 86400, not 0',
        'entry 3 ("c"), extra: unknown key',
        "entry 3 (\"c\"), schedule.unit: unknown unit 'years'; "
        "use one of: minutes, hours, days, weeks, months",
        "entry 3 (\"c\"), schedule.anchor: 'soon' is not an ISO 8601 date-time such as "
        "2026-01-05T09:00:00+01:00",
        'entry 4 ("a"), name: duplicate name: entry 1 has it too',
    ]
    assert str(error) == "6 problems found; nothing was imported"
    assert ScheduledTask.objects.count() == 0


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        ({"name": "t"}, "file: must be a JSON list of tasks, not an object"),
        ("tasks", "file: must be a JSON list of tasks, not a string"),
        (None, "file: must be a JSON list of tasks, not null"),
    ],
)
def test_the_top_level_must_be_a_list(tmp_path: Path, data: object, problem: str) -> None:
    error, stderr = failed_import(str(write(tmp_path, data)))

    assert error.returncode == 1
    assert stderr.strip() == problem
    assert str(error) == "1 problem found; nothing was imported"


def test_an_overlong_name_is_shortened_in_the_message(now: datetime) -> None:
    with pytest.raises(ImportValidationError) as excinfo:
        import_tasks([entry(LONG_NAME)], now=now)

    assert str(excinfo.value.problems[0]).startswith(f'entry 1 ("{"x" * 57}..."), name: is 201')


# --- reading the file ----------------------------------------------------------------------------


def test_malformed_json_names_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "broken.json"
    path.write_text('[\n  {"name": "t",\n   "code": }\n]\n', encoding="utf-8")

    error, _ = failed_import(str(path))

    assert error.returncode == 1
    assert str(error) == f"{path}: invalid JSON at line 3, column 12: Expecting value"
    assert ScheduledTask.objects.count() == 0


def test_missing_file_and_directory_are_clear_errors(tmp_path: Path) -> None:
    missing, _ = failed_import(str(tmp_path / "nope.json"))
    directory, _ = failed_import(str(tmp_path))

    assert missing.returncode == 1
    assert str(missing) == f"cannot read {tmp_path / 'nope.json'}: no such file"
    assert directory.returncode == 1
    assert "it is a directory" in str(directory)


def test_non_utf8_file_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "latin1.json"
    path.write_bytes('[{"name": "caf\u00e9"}]'.encode("latin-1"))

    error, _ = failed_import(str(path))

    assert error.returncode == 1
    assert "not UTF-8 text" in str(error)


def test_a_utf8_byte_order_mark_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "bom.json"
    path.write_text(json.dumps([entry("caf\u00e9")]), encoding="utf-8-sig")

    output, _ = run_import(str(path))

    assert output.strip() == "created 1, updated 0"
    assert ScheduledTask.objects.filter(name="caf\u00e9").exists()


def test_dash_reads_stdin(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO(json.dumps([entry("from-stdin")])))

    output, _ = run_import("-")

    assert output.strip() == "created 1, updated 0"
    assert ScheduledTask.objects.filter(name="from-stdin").exists()


def test_malformed_json_on_stdin_is_labelled_stdin(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO("[1, 2"))

    error, _ = failed_import("-")

    assert error.returncode == 1
    assert str(error).startswith("stdin: invalid JSON at line 1, column 6")


# --- dry run -------------------------------------------------------------------------------------


def test_dry_run_reports_without_saving(tmp_path: Path) -> None:
    make_task(name="old", code="print('old')")
    before = snapshot()

    output, _ = run_import(str(write(tmp_path, [entry("new"), entry("old")])), "--dry-run")

    assert output.strip() == "dry run: would create 1, update 1; nothing was saved"
    assert snapshot() == before


def test_dry_run_of_a_bad_file_fails_like_a_real_import(tmp_path: Path) -> None:
    error, stderr = failed_import(str(write(tmp_path, [entry("t", code="")])), "--dry-run")

    assert error.returncode == 1
    assert 'entry 1 ("t"), code: The code is empty.' in stderr


def test_dry_run_report_of_the_domain_function(now: datetime) -> None:
    make_task(name="old")

    report = import_tasks([entry("old"), entry("new")], now=now, dry_run=True)

    assert (report.created, report.updated, report.dry_run) == (["new"], ["old"], True)
    assert ScheduledTask.objects.count() == 1


# --- the commands as real processes --------------------------------------------------------------


def _database_url() -> str:
    db = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{db['NAME']}"
    user = quote(db["USER"] or "", safe="")
    password = quote(db["PASSWORD"] or "", safe="")
    return f"postgres://{user}:{password}@{db['HOST'] or 'localhost'}:{db['PORT'] or 5432}/{db['NAME']}"


def _manage(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "DATABASE_URL": _database_url(),
    }
    return subprocess.run(
        [sys.executable, str(MANAGE_PY), *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        cwd=MANAGE_PY.parent,
        timeout=120,
        check=False,
    )


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_command_line_exit_statuses_and_stdin(tmp_path: Path) -> None:
    bad = _manage("import_scheduled_tasks", str(write(tmp_path, [entry("a"), entry("b", code="")])))
    broken = _manage("import_scheduled_tasks", "-", stdin="[{")
    assert ScheduledTask.objects.count() == 0

    good = _manage("import_scheduled_tasks", "-", stdin=json.dumps([entry("a"), entry("b")]))
    exported = _manage("export_scheduled_tasks")

    assert bad.returncode == 1
    assert bad.stderr.splitlines() == [
        'entry 2 ("b"), code: The code is empty.',
        "CommandError: 1 problem found; nothing was imported",
    ]
    assert broken.returncode == 1
    assert "stdin: invalid JSON at line 1, column 3" in broken.stderr
    assert good.returncode == 0, good.stderr
    assert good.stdout.strip() == "created 2, updated 0"
    assert sorted(ScheduledTask.objects.values_list("name", flat=True)) == ["a", "b"]
    assert exported.returncode == 0, exported.stderr
    assert [item["name"] for item in json.loads(exported.stdout)] == ["a", "b"]


def test_the_apis_read_only_keys_are_ignored_on_import(now: datetime) -> None:
    extra = {"id": 99, "next_run_at": "2020-01-01T00:00:00Z", "last_run_at": None}
    import_tasks([entry("t", **extra, last_status="failed")], now=now)
    task = ScheduledTask.objects.get()
    assert task.next_run_at is not None and task.next_run_at >= now  # on the grid, not 2020
    assert task.last_execution_id is None
