"""Code versions: every change of a task's code or function is kept (who, when), shown as a
diff against the version before, restorable; each run records the version it ran."""

from __future__ import annotations

import importlib
from types import SimpleNamespace

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.db.migrations.loader import MigrationLoader
from django.test import Client
from django.urls import reverse

from scheduled_tasks import claims, retries, run_requests, services
from scheduled_tasks.models import Execution, ScheduledTask, TaskVersion
from scheduled_tasks.views.versions import version_diff
from tests.factories import MIN, T0, H, claim_slot, make_execution, make_task, make_user

pytestmark = pytest.mark.django_db

versions_migration = importlib.import_module("scheduled_tasks.migrations.0008_task_versions")


def create(user: User | None = None, **values: object) -> ScheduledTask:
    task = ScheduledTask(**{"name": "report", "code": "print(1)", "anchor": T0, **values})
    return services.save_task(task, now=T0, user=user)


def edit(task: ScheduledTask, user: User | None = None, at=T0 + H, **values: object) -> None:
    task = ScheduledTask.objects.get(pk=task.pk)
    for name, value in values.items():
        setattr(task, name, value)
    services.save_task(task, now=at, user=user)


def numbers(task: ScheduledTask) -> list[int]:
    return list(task.versions.order_by("number").values_list("number", flat=True))


# --- the service ---------------------------------------------------------------------------


def test_creating_a_task_records_version_one_by_its_creator() -> None:
    ada = make_user("ada")
    task = create(ada)
    version = TaskVersion.objects.get(task=task)
    assert (version.number, version.code, version.created_by, version.created_at) == (
        1,
        "print(1)",
        ada,
        T0,
    )
    assert ScheduledTask.objects.get(pk=task.pk).current_version == version


def test_only_a_change_of_code_function_or_parameters_records_a_version() -> None:
    ada, bob = make_user("ada"), make_user("bob")
    task = create(ada)
    edit(task, bob, name="renamed", description="new words", every=2, priority=5)
    assert numbers(task) == [1]
    edit(task, bob, at=T0 + 2 * H, code="print(2)")
    assert numbers(task) == [1, 2]
    v2 = task.versions.get(number=2)
    assert (v2.code, v2.created_by, v2.created_at) == ("print(2)", bob, T0 + 2 * H)
    edit(task, code="", function_name="scheduled_tasks.cleanup", function_params={"days": 3})
    edit(task, function_params={"days": 4})
    edit(task, function_params={"days": 4})  # the same again: nothing new
    assert numbers(task) == [1, 2, 3, 4]
    assert task.versions.get(number=4).function_params == {"days": 4}
    assert ScheduledTask.objects.get(pk=task.pk).current_version.number == 4


def test_a_task_written_before_versions_gets_its_first_on_the_next_change() -> None:
    task = make_task(code="print('old')")  # a row without versions, as before 0008
    edit(task, name="renamed")  # (no version existed: this one records what it runs)
    assert numbers(task) == [1]
    edit(task, code="print('new')")
    assert numbers(task) == [1, 2]


def test_restoring_saves_the_old_code_as_a_new_version() -> None:
    ada = make_user("ada")
    task = create()
    edit(task, code="print(2)")
    task = ScheduledTask.objects.get(pk=task.pk)
    restored = services.restore_version(task, task.versions.get(number=1), now=T0 + 3 * H, user=ada)
    assert restored is not None
    assert (restored.number, restored.note, restored.created_by) == (3, "restored from v1", ada)
    task.refresh_from_db()
    assert (task.code, task.current_version_id, task.updated_by) == ("print(1)", restored.pk, ada)
    # Restoring what already runs changes nothing.
    assert services.restore_version(task, task.versions.get(number=1), now=T0 + 4 * H) is None
    assert numbers(task) == [1, 2, 3]


def test_a_version_of_another_task_cannot_be_restored() -> None:
    one, other = create(name="one"), create(name="other", code="print('other')")
    with pytest.raises(services.TaskWriteError):
        services.restore_version(one, other.versions.get(), now=T0 + H)
    assert ScheduledTask.objects.get(pk=one.pk).code == "print(1)"


# --- the diff ------------------------------------------------------------------------------


def test_the_diff_marks_added_and_removed_lines() -> None:
    old = TaskVersion(number=1, code="a = 1\nprint(a)\n")
    new = TaskVersion(number=2, code="a = 2\nprint(a)\n")
    diff = [(line.css, line.text) for line in version_diff(old, new)]
    assert diff == [
        ("diff-hunk", "@@ -1,2 +1,2 @@"),
        ("diff-del", "-a = 1"),
        ("diff-add", "+a = 2"),
        ("diff-context", " print(a)"),
    ]
    first = version_diff(None, old)
    assert [line.css for line in first] == ["diff-hunk", "diff-add", "diff-add"]


def test_the_diff_of_a_function_shows_its_name_and_parameters() -> None:
    old = TaskVersion(number=1, function_name="jobs.cleanup", function_params={"days": 3})
    new = TaskVersion(number=2, function_name="jobs.cleanup", function_params={"days": 4})
    texts = [line.text for line in version_diff(old, new)]
    assert '-  "days": 3' in texts and '+  "days": 4' in texts


# --- the pages -----------------------------------------------------------------------------


def test_the_versions_page_shows_who_when_and_an_escaped_diff(
    viewer_client: Client, django_assert_num_queries
) -> None:
    ada = make_user("ada")
    task = create(ada, code="print('safe')")
    edit(task, ada, code="print('<script>alert(1)</script>')")
    url = reverse("scheduled_tasks:task_versions", args=[task.pk])
    # session, user, permissions, the task, the count, the page of versions with their authors
    with django_assert_num_queries(7):
        response = viewer_client.get(url)
    html = response.content.decode()
    assert response.status_code == 200
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert '<span class="diff-line diff-add">+print(&#x27;&lt;script&gt;' in html
    assert '<span class="diff-line diff-del">-print(&#x27;safe&#x27;)</span>' in html
    assert 'id="version-2"' in html and 'id="version-1"' in html
    assert "ada" in html
    assert "Restore this version" not in html  # a viewer may not


def test_the_versions_page_compares_across_pages(viewer_client: Client, monkeypatch) -> None:
    from scheduled_tasks.views import versions

    monkeypatch.setattr(versions, "VERSIONS_PER_PAGE", 1)
    task = create(code="print('one')")
    edit(task, code="print('two')")
    url = reverse("scheduled_tasks:task_versions", args=[task.pk])
    page = viewer_client.get(url).content.decode()  # version 2 alone, against version 1
    assert "Changes since version 1" in page
    assert "-print(&#x27;one&#x27;)" in page


def test_an_editor_restores_a_version_from_the_page(editor_client: Client) -> None:
    task = create()
    edit(task, code="print(2)")
    url = reverse("scheduled_tasks:task_versions", args=[task.pk])
    page = editor_client.get(url).content.decode()
    restore = reverse("scheduled_tasks:version_restore", args=[task.pk, 1])
    assert f'action="{restore}"' in page
    assert reverse("scheduled_tasks:version_restore", args=[task.pk, 2]) not in page  # current
    assert "csrfmiddlewaretoken" in page
    response = editor_client.post(restore)
    assert response.status_code == 302 and response["Location"] == url
    task.refresh_from_db()
    assert task.code == "print(1)" and task.current_version.number == 3
    assert editor_client.get(restore).status_code == 405
    missing = reverse("scheduled_tasks:version_restore", args=[task.pk, 9])
    assert editor_client.post(missing).status_code == 404


def test_the_task_page_links_to_its_versions(viewer_client: Client) -> None:
    task = create()
    page = viewer_client.get(reverse("scheduled_tasks:task_detail", args=[task.pk]))
    assert reverse("scheduled_tasks:task_versions", args=[task.pk]) in page.content.decode()


def test_the_run_page_says_which_version_ran(viewer_client: Client) -> None:
    task = create()
    execution = make_execution(task, version=task.current_version)
    page = viewer_client.get(reverse("scheduled_tasks:execution_detail", args=[execution.pk]))
    html = page.content.decode()
    link = reverse("scheduled_tasks:task_versions", args=[task.pk]) + "#version-1"
    assert f'<a href="{link}">version 1</a>' in html


# --- the runs ------------------------------------------------------------------------------


def test_a_scheduled_claim_records_the_version_the_task_runs() -> None:
    task = create()
    edit(task, code="print(2)", at=T0 + MIN)
    task.refresh_from_db()
    claim = claim_slot(task.pk, task.next_run_at, task.next_run_at)
    assert claim is not None
    assert claim.execution.version_id == task.current_version_id
    assert Execution.objects.get(pk=claim.execution.pk).version.number == 2


def test_run_now_and_a_requested_run_record_the_version() -> None:
    task = create()
    manual = claims.claim_manual(task, T0 + MIN, runner="test")
    assert Execution.objects.get(pk=manual.execution.pk).version_id == task.current_version_id
    requested = run_requests.request_run(ScheduledTask.objects.get(pk=task.pk), now=T0 + MIN)
    assert requested.version_id == task.current_version_id


def test_a_retry_keeps_the_version_until_it_starts_with_the_code_of_then() -> None:
    task = create(max_retries=2)
    v1 = task.current_version
    failed = make_execution(task, status=Execution.Status.FAILED, version=v1)
    retry = retries.schedule_retry(failed, task, T0)
    assert retry is not None and retry.version_id == v1.pk
    edit(task, code="print(2)")
    started = claims.claim_pending(retry.pk, T0 + H, runner="test")
    assert started is not None
    assert started.execution.version.number == 2  # what runs now is the edited code


def test_a_task_without_versions_runs_without_one() -> None:
    task = make_task()
    claim = claim_slot(task.pk, task.next_run_at, task.next_run_at)
    assert claim is not None and claim.execution.version_id is None


# --- the migration -------------------------------------------------------------------------


def test_the_migration_gives_each_existing_task_its_first_version() -> None:
    creator = make_user("old-hand")
    task = make_task(code="print('before')", updated_by=creator)
    make_execution(task)
    apps = MigrationLoader(connection).project_state(("scheduled_tasks", "0008_task_versions"))
    versions_migration.first_versions(apps.apps, SimpleNamespace(connection=connection))
    task.refresh_from_db()
    version = task.current_version
    assert (version.number, version.code, version.created_by) == (1, "print('before')", creator)
    assert version.created_at == task.updated_at
    assert Execution.objects.get().version is None  # what older runs ran is not known
