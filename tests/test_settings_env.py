"""Settings read from the environment: typed helpers with safe defaults."""

from __future__ import annotations

import pytest

from ticketproo.env import env_bool, env_list, env_str


def test_unset_or_empty_strings_fall_back_to_the_default(monkeypatch):
    monkeypatch.delenv("TP_X", raising=False)
    assert env_str("TP_X", "default") == "default"
    monkeypatch.setenv("TP_X", "")
    assert env_str("TP_X", "default") == "default"
    monkeypatch.setenv("TP_X", "set")
    assert env_str("TP_X", "default") == "set"


@pytest.mark.parametrize(("raw", "value"), [("1", True), ("yes", True), ("off", False), ("", True)])
def test_booleans(monkeypatch, raw, value):
    monkeypatch.setenv("TP_B", raw)
    assert env_bool("TP_B", True) is value


def test_a_bad_boolean_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("TP_B", "maybe")
    with pytest.raises(ValueError, match="TP_B='maybe' is not a boolean"):
        env_bool("TP_B", False)


def test_lists_are_comma_separated(monkeypatch):
    monkeypatch.setenv("TP_L", "a.example, b.example,,")
    assert env_list("TP_L", []) == ["a.example", "b.example"]
