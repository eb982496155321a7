"""Registered job functions (``registry.py``): registration, parameter checks against the
signature and the annotations, and running them for real, through tick() and in a child
(``run_function``)."""

from __future__ import annotations

import time

import pytest

from scheduled_tasks import registry, runner
from scheduled_tasks.sandbox import run_function
from tests.conftest import Clock, FakeSandbox
from tests.factories import T0, make_task

pytestmark = pytest.mark.django_db


# --- registered functions ------------------------------------------------------------------


@registry.register("tests.engine.greet", description="Say hello.")
def greet(ctx: registry.JobContext, *, name: str = "world") -> dict[str, str]:
    ctx.print(f"hello {name} at {ctx.now.isoformat()}")
    ctx.log("greeted %s person(s)", 1)
    return {"greeted": name}


@registry.register("tests.engine.quiet")
def quiet(ctx: registry.JobContext) -> None:
    ctx.print("nothing to return")


@registry.register("tests.engine.explode")
def explode(ctx: registry.JobContext, *, customer_id: int) -> None:
    ctx.print("about to fail")
    raise ValueError(f"no such customer: {customer_id}")


@registry.register("tests.engine.sleepy")
def sleepy(ctx: registry.JobContext, *, seconds: float = 30) -> None:
    ctx.print("going to sleep")
    time.sleep(seconds)


def test_real_function_task_through_tick_records_output_and_return_value():
    make_task(code="", function_name="tests.engine.greet", function_params={"name": "Ada"})
    [execution] = runner.tick(T0, clock=Clock(T0), snippet_executor=FakeSandbox()).executions
    assert execution.status == "completed", execution.error
    assert execution.output == (
        "hello Ada at 2026-01-05T09:00:00+00:00\n[INFO] greeted 1 person(s)\n{'greeted': 'Ada'}\n"
    )


def test_run_function_in_a_child_prints_output_and_the_return_value():
    result = run_function("tests.engine.greet", {}, now=T0, timeout=10)
    assert (result.status, result.error) == ("completed", "")
    assert result.output == (
        "hello world at 2026-01-05T09:00:00+00:00\n"
        "[INFO] greeted 1 person(s)\n"
        "{'greeted': 'world'}\n"
    )


def test_run_function_prints_nothing_for_a_none_return():
    result = run_function("tests.engine.quiet", {}, now=T0, timeout=10)
    assert (result.status, result.output) == ("completed", "nothing to return\n")


def test_run_function_exception_gives_the_functions_traceback_not_the_sandboxs():
    result = run_function("tests.engine.explode", {"customer_id": 42}, now=T0, timeout=10)
    assert result.status == "failed"
    assert result.output == "about to fail\n"
    assert result.error.startswith("Traceback (most recent call last):")
    assert "in explode" in result.error
    assert 'raise ValueError(f"no such customer: {customer_id}")' in result.error
    assert result.error.endswith("ValueError: no such customer: 42")
    assert "execute_function" not in result.error
    assert "isolation.py" not in result.error


def test_run_function_is_killed_at_its_timeout_keeping_what_it_printed():
    result = run_function("tests.engine.sleepy", {"seconds": 30}, now=T0, timeout=1)
    assert result.status == "timeout"
    assert result.error == "timed out after 1 s"
    assert result.output == "going to sleep\n"
    assert result.duration < 10


@pytest.mark.parametrize(
    ("name", "params", "message"),
    [
        ("tests.engine.nope", {}, "no registered function is called 'tests.engine.nope'"),
        ("tests.engine.greet", {"nmae": "x"}, "tests.engine.greet has no parameter 'nmae'"),
        ("tests.engine.explode", {}, "tests.engine.explode needs the parameter 'customer_id'"),
    ],
)
def test_run_function_refuses_bad_calls_in_the_child(name, params, message):
    result = run_function(name, params, now=T0, timeout=10)
    assert result.status == "failed"
    assert message in result.error


@registry.register("tests.engine.no_params")
def no_params(ctx: registry.JobContext) -> None:
    pass


@pytest.mark.parametrize(
    ("name", "params", "problems"),
    [
        ("tests.engine.greet", {}, []),
        ("tests.engine.greet", {"name": "Ada"}, []),
        ("tests.engine.explode", {"customer_id": 7}, []),
        ("tests.engine.nope", {}, ["no registered function is called 'tests.engine.nope'"]),
        ("tests.engine.greet", [], ["parameters must be a JSON object"]),
        ("tests.engine.greet", "name=Ada", ["parameters must be a JSON object"]),
        ("tests.engine.greet", None, ["parameters must be a JSON object"]),
        (
            "tests.engine.greet",
            {"nmae": "Ada"},
            ["tests.engine.greet has no parameter 'nmae' (parameters: name)"],
        ),
        (
            "tests.engine.no_params",
            {"x": 1},
            ["tests.engine.no_params has no parameter 'x' (parameters: none)"],
        ),
        ("tests.engine.explode", {}, ["tests.engine.explode needs the parameter 'customer_id'"]),
        (
            "tests.engine.explode",
            {"customer_id": 1, "extra": 2},
            ["tests.engine.explode has no parameter 'extra' (parameters: customer_id)"],
        ),
        ("tests.engine.greet", {"name": {1, 2}}, ["parameters must be plain JSON values"]),
        ("tests.engine.greet", {"name": T0}, ["parameters must be plain JSON values"]),
    ],
)
def test_param_problems(name, params, problems):
    assert registry.param_problems(name, params) == problems


def test_registering_another_function_under_a_taken_name_is_refused():
    with pytest.raises(ValueError, match=r"already registered as 'tests\.engine\.greet'"):
        registry.register("tests.engine.greet")(lambda ctx: None)
    assert registry.register("tests.engine.greet", description="Say hello.")(greet) is greet


def test_registered_function_defaults_to_its_dotted_path_and_docstring():
    def tidy(ctx: registry.JobContext, *, keep: int = 3) -> None:
        """Tidy things up.

        More words."""

    registry.register()(tidy)
    registered = registry.get(f"{__name__}.{tidy.__qualname__}")
    assert registered.description == "Tidy things up."
    assert registered.defaults() == {"keep": 3}


# --- parameter types of registered functions -----------------------------------------------


@registry.register("tests.engine.typed")
def typed(ctx: registry.JobContext, *, hours: int | float = 24, label: str = "", on: bool = False):
    return None


@registry.register("tests.engine.open_ended")
def open_ended(ctx: registry.JobContext, **options: object):
    return options


@pytest.mark.parametrize(
    ("params", "problem"),
    [
        ({"hours": 3}, None),
        ({"hours": 2.5}, None),
        ({"hours": "24"}, "'hours' must be a whole number or a number, not '24'"),
        ({"hours": True}, "'hours' must be a whole number or a number, not True"),
        ({"label": 5}, "'label' must be a string, not 5"),
        ({"on": 1}, "'on' must be true or false, not 1"),
        ({"nope": 1}, "has no parameter 'nope'"),
    ],
)
def test_function_parameters_are_checked_against_their_annotations(params, problem):
    problems = registry.param_problems("tests.engine.typed", params)
    if problem is None:
        assert problems == []
    else:
        assert len(problems) == 1 and problem in problems[0]


def test_a_function_taking_keyword_arguments_accepts_any_parameter():
    assert registry.param_problems("tests.engine.open_ended", {"anything": [1, 2]}) == []
