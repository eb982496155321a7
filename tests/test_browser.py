"""The pages in a real browser (issue #13): Debian's Chromium, headless, driven by Playwright for
Python against pytest-django's live server. What a person sees: logging in, the code editor
marking a syntax error's line, a test run's output, saving, "Run now" followed live from
running to completed, cancelling a long run, and a viewer who can neither edit nor run.

``UPDATE_SCREENSHOTS=1`` also writes the README's screenshots to docs/screenshots/ (without it
they are taken into a temporary directory, so the path that makes them stays tested).

Playwright's sync API keeps an asyncio loop running in the test's thread, so Django refuses
ORM calls there (``SynchronousOnlyOperation``) unless ``DJANGO_ALLOW_ASYNC_UNSAFE`` is set:
the ``browser`` fixture sets it for this module only.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import subprocess
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from django.contrib.auth.models import Group, Permission, User
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone

from scheduled_tasks import background
from scheduled_tasks.models import Execution, RunnerHeartbeat, ScheduledTask
from tests.conftest import start_manage
from tests.factories import make_editor, make_task, make_ticket, make_user

try:
    from playwright.sync_api import Browser, Locator, Page, expect, sync_playwright
except ImportError:  # requirements-dev.txt installs it
    if os.environ.get("CI") == "true":
        raise
    pytest.skip("playwright is not installed", allow_module_level=True)

pytestmark = [pytest.mark.slow, pytest.mark.browser, pytest.mark.django_db(transaction=True)]

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
PASSWORD = "pw-12345-secret"  # tests.factories.make_user's
# Generous: on a loaded machine a run forks a sandbox child and the pages poll every 2-3 s.
TIMEOUT_MS = 20_000
VIEWPORT = {"width": 1280, "height": 800}
SCREENSHOTS = Path(__file__).resolve().parent.parent / "docs" / "screenshots"

expect.set_options(timeout=TIMEOUT_MS)


# --- fixtures ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """One headless Chromium for the module. Missing: a skip on a developer's machine, a
    failure in CI (scripts/test.sh installs Debian's ``chromium``)."""
    if not Path(CHROMIUM).exists():
        message = f"{CHROMIUM} is missing (apt-get install chromium)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
            yield browser
            browser.close()
    finally:
        if previous is None:
            del os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"]
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture
def page(browser: Browser, live_server: object) -> Iterator[Page]:
    """A fresh context (no cookies) per test; confirm() dialogs are accepted, as by a user who
    clicks OK. Afterwards: no JavaScript error happened, and the web process's background
    runs are over before the database is flushed."""
    context = browser.new_context(viewport=VIEWPORT, base_url=str(live_server))
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    page.on("dialog", lambda dialog: dialog.accept())
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on(
        "response",
        lambda r: (
            errors.append(f"{r.status} {r.url}") if "/static/" in r.url and not r.ok else None
        ),
    )
    yield page
    context.close()
    assert background.join(timeout=60), "a background run did not end"
    assert not errors, f"JavaScript errors or missing static files: {errors}"


@contextlib.contextmanager
def running_daemon() -> Iterator[subprocess.Popen[str]]:
    """A real daemon, as deployed, so "Run now" is started by a runner process, not by the
    web process's fallback thread here. On SQLite that fallback is unsafe in a many-threaded
    process such as this live server: a sandbox child forked while another thread is inside
    SQLite can wait forever on a SQLite mutex that thread held (until the run's timeout)."""
    proc = start_manage("run_scheduled_tasks", "--daemon", "--interval", "60", "--concurrency", "1")
    try:
        deadline = time.monotonic() + 30
        while not RunnerHeartbeat.objects.filter(kind="daemon", stopped_at=None).exists():
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "the daemon did not beat within 30 s"
            time.sleep(0.05)
        yield proc
    finally:
        proc.terminate()
        try:
            proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()


@pytest.fixture
def daemon(transactional_db: None) -> Iterator[subprocess.Popen[str]]:
    with running_daemon() as proc:
        yield proc


# --- helpers -------------------------------------------------------------------------------


def log_in(page: Page, username: str) -> None:
    """Through the real login form, as a person does. (Each test logs in afresh: the
    transactional database is flushed between tests, sessions and users with it.)"""
    page.goto("/accounts/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(re.compile(r"/tasks/$"))
    expect(page.locator(".userbox .username")).to_have_text(username)


def make_viewer_in_group(username: str) -> User:
    """A member of "Task viewers". The group comes from a data migration, which a
    transactional test's flush removes: it is made again here as the migration makes it."""
    group, _ = Group.objects.get_or_create(name="Task viewers")
    group.permissions.add(
        *Permission.objects.filter(
            content_type__app_label="scheduled_tasks", codename__startswith="view_"
        )
    )
    user = make_user(username)
    user.groups.add(group)
    return user


def type_code(page: Page, code: str) -> None:
    """Replace the code editor's text as typing would (insert_text: no auto-indent)."""
    page.locator(".code-field .cm-content").click()
    page.keyboard.press("ControlOrMeta+a")
    page.keyboard.press("Delete")
    page.keyboard.insert_text(code)
    expect(page.locator(".code-field .cm-line")).to_have_count(code.count("\n") + 1)


def run_badge(page: Page) -> Locator:
    return page.locator("#run-page h1 .badge")


def mark_page(page: Page) -> None:
    """A flag that a reload or a navigation would lose: the page must update by itself."""
    page.evaluate("window.__sameDocument = true")


def assert_same_page(page: Page) -> None:
    assert page.evaluate("window.__sameDocument === true"), "the page was reloaded"


# Waits (without sleeping: it spins) until a ticket titled "go" exists: the test decides when
# the run ends, so it can see "Running" first however slow the machine is.
WAIT_FOR_GO = """\
print("waiting for go")
start = datetime.now()
while not Ticket.objects.filter(title="go").exists():
    pause = datetime.now()
    while (datetime.now() - pause).total_seconds() < 0.1:
        pass
    if (datetime.now() - start).total_seconds() > 120:
        raise RuntimeError("no go")
print("went")
"""

SPIN_FOR_MINUTES = """\
print("spinning")
start = datetime.now()
while (datetime.now() - start).total_seconds() < 300:
    pass
print("not cancelled")
"""


# --- the flows -----------------------------------------------------------------------------


def test_an_editor_logs_in_fixes_a_syntax_error_test_runs_and_saves(page: Page) -> None:
    make_editor("erin")
    log_in(page, "erin")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="New task").click()
    expect(page.get_by_role("heading", name="New task")).to_be_visible()
    page.get_by_label("Name").fill("Sum of doubles")

    type_code(page, "total = 0\nfor n in range(4):\n    total += n *\nprint('total', total)")
    page.get_by_role("button", name="Test run").click()
    lines = page.locator(".code-field .cm-line")
    expect(lines.nth(2)).to_have_class(re.compile(r"\bcm-error-line\b"))
    expect(page.locator(".code-field .cm-error-line")).to_have_count(1)
    expect(page.locator(".code-field .cm-error-marker")).to_have_attribute(
        "title", re.compile(r"^Line 3: SyntaxError")
    )
    expect(page.locator("[data-test-run-status]")).to_have_text("Refused")
    expect(page.locator("[data-test-run-error]")).to_contain_text("Line 3")

    type_code(page, "total = 0\nfor n in range(4):\n    total += n * 2\nprint('total', total)")
    page.get_by_role("button", name="Test run").click()
    expect(page.locator("[data-test-run-output]")).to_have_text("total 12\n")
    expect(page.locator("[data-test-run-status]")).to_have_text("Completed")
    expect(page.locator(".code-field .cm-error-line")).to_have_count(0)

    page.get_by_role("button", name="Create task").click()
    expect(page.get_by_role("heading", name="Sum of doubles")).to_be_visible()
    task = ScheduledTask.objects.get(name="Sum of doubles")
    expect(page).to_have_url(re.compile(rf"/tasks/{task.pk}/$"))
    assert task.code == "total = 0\nfor n in range(4):\n    total += n * 2\nprint('total', total)"


def test_run_now_is_followed_live_from_running_to_completed(
    page: Page, daemon: subprocess.Popen[str]
) -> None:
    make_editor("erin")
    task = make_task(name="Waits for go", code=WAIT_FOR_GO, timeout_seconds=150, is_active=False)
    log_in(page, "erin")
    page.goto(reverse("scheduled_tasks:task_detail", args=[task.pk]))
    page.get_by_role("button", name="Run now").click()

    expect(page).to_have_url(re.compile(r"/tasks/executions/\d+/$"))
    expect(page.locator(".message")).to_contain_text("queued")
    mark_page(page)
    expect(run_badge(page)).to_have_text("Running")
    expect(page.locator("#execution-output")).to_have_text("waiting for go\n")

    make_ticket(title="go")
    expect(run_badge(page)).to_have_text("Completed")
    expect(page.locator("#execution-output")).to_have_text("waiting for go\nwent\n")
    expect(page.get_by_role("button", name="Cancel")).to_have_count(0)
    assert_same_page(page)
    assert Execution.objects.get(task=task).status == "completed"


def test_a_long_run_is_cancelled_from_its_page(page: Page, daemon: subprocess.Popen[str]) -> None:
    make_editor("erin")
    task = make_task(name="Spins", code=SPIN_FOR_MINUTES, timeout_seconds=600, is_active=False)
    log_in(page, "erin")
    page.goto(reverse("scheduled_tasks:task_detail", args=[task.pk]))
    page.get_by_role("button", name="Run now").click()
    expect(run_badge(page)).to_have_text("Running")
    expect(page.locator("#execution-output")).to_have_text("spinning\n")

    page.get_by_role("button", name="Cancel").click()
    expect(run_badge(page)).to_have_text("Cancelled")
    expect(page.locator(".message")).to_contain_text("cancelled")
    expect(page.locator("dt:text-is('Cancelled by') + dd")).to_have_text("erin")
    execution = Execution.objects.get(task=task)
    assert (execution.status, execution.cancelled_by.username) == ("cancelled", "erin")
    assert "not cancelled" not in execution.output


def test_a_viewer_can_neither_edit_nor_run(page: Page) -> None:
    make_viewer_in_group("vera")
    task = make_task(name="Guarded", is_active=False)
    log_in(page, "vera")
    page.goto(reverse("scheduled_tasks:task_detail", args=[task.pk]))
    expect(page.get_by_role("heading", name="Guarded")).to_be_visible()
    expect(page.locator(".page-head .actions")).to_have_count(0)
    expect(page.get_by_role("button", name="Run now")).to_have_count(0)
    expect(page.get_by_role("link", name="Edit")).to_have_count(0)
    expect(page.get_by_role("link", name="New task")).to_have_count(0)

    response = page.goto(reverse("scheduled_tasks:task_edit", args=[task.pk]))
    assert response is not None and response.status == 403
    # A hand-made POST with the viewer's valid CSRF token: refused too, and nothing queued.
    page.goto(reverse("scheduled_tasks:task_detail", args=[task.pk]))
    token = page.locator("input[name=csrfmiddlewaretoken]").first.input_value()
    answer = page.request.post(
        reverse("scheduled_tasks:task_run", args=[task.pk]),
        form={"csrfmiddlewaretoken": token},
        max_redirects=0,
    )
    assert answer.status == 403
    assert not Execution.objects.filter(task=task).exists()


# --- the README's screenshots --------------------------------------------------------------


def seed_history(now: datetime) -> None:
    """A month of ended runs of the demo's code tasks, so the dashboard's charts have something
    to show."""
    tasks = list(ScheduledTask.objects.filter(function_name="").order_by("pk")[:3])
    runs = []
    for day in range(30):
        for hour in (2, 8, 14, 20):
            for number, task in enumerate(tasks):
                started = now - timedelta(days=day, hours=hour, minutes=number * 7)
                failed = (day * 5 + hour + number) % 11 == 3
                duration = 0.2 + 0.15 * number + ((day * 3 + hour) % 5) * 0.05
                runs.append(
                    Execution(
                        task=task,
                        status="failed" if failed else "completed",
                        trigger="scheduled",
                        scheduled_for=started,
                        created_at=started,
                        started_at=started,
                        finished_at=started + timedelta(seconds=duration),
                        duration_seconds=duration,
                        error="RuntimeError: the mail server did not answer" if failed else "",
                    )
                )
    Execution.objects.bulk_create(runs)


def test_screenshots_of_the_dashboard_the_form_and_a_run(page: Page, tmp_path: Path) -> None:
    folder = SCREENSHOTS if os.environ.get("UPDATE_SCREENSHOTS") == "1" else tmp_path
    folder.mkdir(parents=True, exist_ok=True)
    call_command("seed_demo", "--password", PASSWORD, stdout=io.StringIO())
    now = timezone.now()
    seed_history(now)
    # Started after the history: its first pass computes the dashboard's charts from it.
    with running_daemon():
        take_screenshots(page, folder)
    for name in ("dashboard.png", "task-form.png", "execution.png"):
        assert (folder / name).stat().st_size > 10_000, name


def take_screenshots(page: Page, folder: Path) -> None:
    log_in(page, "admin")

    report = ScheduledTask.objects.get(name="Daily ticket report")
    page.goto(reverse("scheduled_tasks:task_detail", args=[report.pk]))
    page.get_by_role("button", name="Run now").click()
    expect(run_badge(page)).to_have_text("Completed")
    expect(page.locator("#log-lines-body tr")).to_have_count(1)
    page.screenshot(path=folder / "execution.png")

    page.goto(reverse("scheduled_tasks:task_edit", args=[report.pk]))
    page.get_by_role("button", name="Test run").click()
    expect(page.locator("[data-test-run-status]")).to_have_text("Completed")
    # The code, the test run's result and the schedule's preview in one view.
    page.locator(".test-run-result").evaluate("node => node.scrollIntoView({block: 'end'})")
    page.screenshot(path=folder / "task-form.png")

    page.goto(reverse("scheduled_tasks:dashboard"))
    expect(page.get_by_role("heading", name="Dashboard")).to_be_visible()
    expect(page.locator("#durations-head ~ ul.chart-legend li")).to_have_count(2)
    page.screenshot(path=folder / "dashboard.png")
