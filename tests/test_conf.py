"""The SCHEDULED_TASKS settings: defaults, overrides, and system checks for bad values."""

from __future__ import annotations

import pytest

from scheduled_tasks import conf
from scheduled_tasks.checks import check_scheduled_tasks_settings


def error_ids() -> list[str]:
    return [e.id for e in check_scheduled_tasks_settings()]


def test_defaults_fill_in_what_the_project_does_not_set(settings):
    settings.SCHEDULED_TASKS = {"DEFAULT_TIMEOUT_SECONDS": 5}
    assert conf.get("DEFAULT_TIMEOUT_SECONDS") == 5
    assert conf.get("MAX_OUTPUT_BYTES") == 65536


def test_unknown_key_lookup_is_a_programming_error():
    with pytest.raises(KeyError):
        conf.get("NOPE")


def test_project_settings_pass_the_checks():
    assert check_scheduled_tasks_settings() == []


@pytest.mark.parametrize(
    ("override", "expected_id"),
    [
        ({"MAX_OUTPUT_BYTES": 0}, "scheduled_tasks.E002"),
        ({"DEFAULT_TIMEOUT_SECONDS": "60"}, "scheduled_tasks.E002"),
        ({"MAX_MEMORY_MB": True}, "scheduled_tasks.E002"),
        ({"EMBEDDED": "yes"}, "scheduled_tasks.E003"),
        ({"NAMESPACE": []}, "scheduled_tasks.E004"),
        ({"NAMESPACE": {"Invoice": {"model": "billing.Nope"}}}, "scheduled_tasks.E005"),
        ({"NAMESPACE": {"os": "os"}}, "scheduled_tasks.E005"),
        ({"NAMESPACE": {"_x": "datetime.datetime"}}, "scheduled_tasks.E005"),
        ({"NAMESPACE": {"x": "no.such.thing"}}, "scheduled_tasks.E005"),
        (
            {"NAMESPACE": {"U": {"model": "auth.User", "fields": ["password"]}}},
            "scheduled_tasks.E005",
        ),
        ({"TYPO_KEY": 1}, "scheduled_tasks.E001"),
    ],
)
def test_bad_values_are_reported_by_manage_py_check(settings, override, expected_id):
    settings.SCHEDULED_TASKS = {**settings.SCHEDULED_TASKS, **override}
    assert expected_id in error_ids()
