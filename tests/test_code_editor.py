"""The code editor of the task form (vendored CodeMirror, ``static/.../editor.js``), its help
panel of snippet names (``namespace_help.py``) and the highlighted, read-only code of the task
and run pages (``highlight.py``, ``{% load code %}``)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from django.contrib.staticfiles import finders
from django.core.management import call_command
from django.template import Context, Template
from django.templatetags.static import static
from django.test import Client
from django.urls import reverse

from scheduled_tasks import conf, services
from scheduled_tasks.highlight import error_lines, highlight_python
from scheduled_tasks.models import Execution, ScheduledTask
from scheduled_tasks.namespace_help import DESCRIPTIONS, namespace_help
from scheduled_tasks.sandbox import run_snippet
from tests.factories import T0, form_data, make_company, make_execution, make_task

ROOT = Path(__file__).resolve().parent.parent
HOSTILE = 'x = "</code></pre><script>alert(1)</script>"\nprint(x)\n'
ASSET = re.compile(r"<(?:script|link)\b[^>]*?\b(?:src|href)=\"([^\"]*)\"", re.IGNORECASE)


def assets(html: str) -> list[str]:
    return ASSET.findall(html)


def help_panel(html: str) -> str:
    start = html.index('id="snippet-help"')
    return html[start : html.index("</details>", start)]


# --- the editor on the form ----------------------------------------------------------------


@pytest.mark.django_db
def test_the_form_loads_the_vendored_editor_from_static(editor_client: Client) -> None:
    html = editor_client.get(reverse("scheduled_tasks:task_create")).content.decode()
    found = assets(html)
    for path in (
        "scheduled_tasks/vendor/codemirror.js",
        "scheduled_tasks/editor.js",
        "scheduled_tasks/editor.css",
    ):
        assert static(path) in found
        assert finders.find(path), path
    # The bundle runs before the script that uses it (both deferred, in document order).
    assert found.index(static("scheduled_tasks/vendor/codemirror.js")) < found.index(
        static("scheduled_tasks/editor.js")
    )


def test_findstatic_finds_the_vendored_bundle_and_its_licence(capsys: Any) -> None:
    call_command("findstatic", "scheduled_tasks/vendor/codemirror.js", verbosity=1)
    assert "vendor/codemirror.js" in capsys.readouterr().out
    bundle = Path(finders.find("scheduled_tasks/vendor/codemirror.js"))
    notice = bundle.with_name("codemirror.LICENSE.txt").read_text()
    assert "@codemirror/view" in notice and "MIT" in notice


def test_the_bundle_is_pinned_and_rebuilt_by_a_script() -> None:
    package = json.loads((ROOT / "frontend" / "package.json").read_text())
    lock = json.loads((ROOT / "frontend" / "package-lock.json").read_text())
    pinned = {**package["dependencies"], **package["devDependencies"]}
    assert "@codemirror/lang-python" in pinned and "esbuild" in pinned
    for name, version in pinned.items():
        assert re.fullmatch(r"\d+\.\d+\.\d+", version), f"{name} {version} is not an exact pin"
        assert lock["packages"][f"node_modules/{name}"]["version"] == version
    script = (ROOT / "scripts" / "build_vendor.sh").read_text()
    assert "npm ci" in script and "codemirror.LICENSE.txt" in script
    assert "node_modules/" in (ROOT / ".gitignore").read_text().splitlines()


@pytest.mark.django_db
def test_no_page_loads_a_script_or_stylesheet_from_another_site(editor_client: Client) -> None:
    task = make_task(code=HOSTILE)
    execution = make_execution(task, status=Execution.Status.FAILED, error="Line 1: boom")
    pages = [
        reverse("scheduled_tasks:task_list"),
        reverse("scheduled_tasks:task_create"),
        reverse("scheduled_tasks:task_edit", args=[task.pk]),
        reverse("scheduled_tasks:task_detail", args=[task.pk]),
        reverse("scheduled_tasks:execution_detail", args=[execution.pk]),
    ]
    for url in pages:
        response = editor_client.get(url)
        assert response.status_code == 200, url
        for src in assets(response.content.decode()):
            assert not re.match(r"^(?:[a-z][a-z0-9+.-]*:)?//", src, re.I), (url, src)


@pytest.mark.django_db
def test_the_form_posts_the_code_without_javascript(editor_client: Client) -> None:
    code = "for n in range(3):\n\tprint(n)  # a tab, kept as typed\n"
    html = editor_client.get(reverse("scheduled_tasks:task_create")).content.decode()
    # The plain textarea is in the page: the editor only enhances it.
    assert re.search(r'<textarea name="code"[^>]*class="code-input"', html)
    response = editor_client.post(reverse("scheduled_tasks:task_create"), form_data(code=code))
    assert response.status_code == 302
    assert ScheduledTask.objects.get().code == code


@pytest.mark.django_db
def test_a_code_error_reaches_the_editor_with_its_line(editor_client: Client) -> None:
    response = editor_client.post(
        reverse("scheduled_tasks:task_create"), form_data(code="x = 1\nimport os\n")
    )
    html = response.content.decode()
    assert response.status_code == 200
    # editor.js reads the field's errors from inside the code field's wrapper.
    field = html[html.index('id="field-code"') :]
    field = field[: field.index("</ul>")]
    assert "code-field" in html[html.rindex("<div", 0, html.index('id="field-code"')) :][:200]
    assert re.search(r"<li>Line 2: import of &#x27;os&#x27; is not allowed", field)
    assert "x = 1\nimport os\n" in html  # the textarea keeps what was typed


# --- the help panel ------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_help_panel_lists_every_name_a_snippet_sees(editor_client: Client) -> None:
    html = editor_client.get(reverse("scheduled_tasks:task_create")).content.decode()
    panel = help_panel(html)
    names = [*conf.get("NAMESPACE"), "logger", "print"]
    for name in names:
        assert f"<dt><code>{name}</code></dt>" in panel, name
    assert panel.count("<dt>") == len(names)
    assert "Ticket.objects.filter(status=&quot;open&quot;).count()" in panel


def test_names_without_an_entry_get_a_line_from_their_model_or_object(settings: Any) -> None:
    namespace = {
        **conf.get("NAMESPACE"),
        "Firm": {"model": "crm.Company", "fields": ["name", "is_active"]},
        "quote": "urllib.parse.quote",
        "Decimal": "decimal.Decimal",
    }
    settings.SCHEDULED_TASKS = {"NAMESPACE": namespace}
    entries = {entry.name: entry for entry in namespace_help()}
    assert set(entries) == {*namespace, "logger", "print"}
    firm = entries["Firm"]
    assert "crm.Company" in firm.description and "is_active, name" in firm.description
    assert "read and write" in firm.description
    assert firm.example == "Firm.objects.count()"
    assert entries["quote"].description.startswith("quote('abc def')")
    assert entries["quote"].example == "result = quote(...)"
    assert entries["Decimal"].example == "value = Decimal(...)"
    assert all(entry.description and entry.example for entry in entries.values())


def test_the_help_is_sorted_like_the_old_name_list() -> None:
    names = [entry.name for entry in namespace_help()]
    assert names == sorted(names, key=str.lower)


@pytest.mark.django_db(transaction=True)
def test_every_example_of_the_help_panel_runs_in_the_sandbox() -> None:
    make_company()
    examples = [example for _, example in DESCRIPTIONS.values()]
    code = "\n".join(["count = overdue = 0", *examples])
    result = run_snippet(code, timeout=30, label="help-examples")
    assert result.error == ""


# --- highlighted code on the pages ---------------------------------------------------------


def test_the_highlight_filter_escapes_the_code() -> None:
    html = Template("{% load code %}{{ code|highlight_code }}").render(Context({"code": HOSTILE}))
    assert "<script>" not in html and "</code></pre><script" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert 'class="linenos"' in html and ">2</span>" in html  # line numbers 1 and 2


def test_the_filter_marks_the_lines_an_error_names() -> None:
    error = (
        "Traceback (snippet lines only):\n  Line 3, in snippet\n    f()\n"
        "  Line 2, in f\n    return 1 / 0\nZeroDivisionError: division by zero"
    )
    assert error_lines(error) == [3, 2]
    assert error_lines("Line 2: SyntaxError: invalid syntax") == [2]
    assert error_lines("Timed out after 5 s") == []
    code = "def f():\n    return 1 / 0\nf()\n"
    html = Template("{% load code %}{{ code|highlight_code:error }}").render(
        Context({"code": code, "error": error})
    )
    assert html.count('class="hll"') == 2
    assert highlight_python(code).count('class="hll"') == 0


@pytest.mark.django_db
def test_the_task_page_shows_the_code_highlighted(viewer_client: Client) -> None:
    task = make_task(code=HOSTILE)
    html = viewer_client.get(reverse("scheduled_tasks:task_detail", args=[task.pk])).content
    html = html.decode()
    assert 'class="codehilite"' in html
    assert static("scheduled_tasks/code.css") in assets(html)
    assert "<script>alert(1)" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


@pytest.mark.django_db
def test_the_run_page_shows_the_code_with_the_failing_line(viewer_client: Client) -> None:
    task = make_task(code="x = 1\nraise ValueError('nope')\n")
    execution = make_execution(
        task,
        status=Execution.Status.FAILED,
        error="Traceback (snippet lines only):\n  Line 2, in snippet\nValueError: nope",
    )
    html = viewer_client.get(reverse("scheduled_tasks:execution_detail", args=[execution.pk]))
    html = html.content.decode()
    section = html[html.index('<details class="panel code-section"') :]
    section = section[: section.index("</details>")]
    assert "unchanged since this run" in section
    assert section.count('class="hll"') == 1
    assert "raise" in section and "'nope'" in section


@pytest.mark.django_db
def test_the_run_page_says_when_the_code_shown_is_not_what_ran(viewer_client: Client) -> None:
    task = make_task(code="x = 1\nraise ValueError('nope')\n")
    test_run = make_execution(
        task, status=Execution.Status.FAILED, trigger=Execution.Trigger.TEST, error="  Line 1, in x"
    )
    older = make_execution(task, status=Execution.Status.FAILED, error="  Line 2, in snippet")
    task.code = "print('rewritten')\n"
    task.save()
    for execution, words in (
        (test_run, "the code a test run tried is not kept"),
        (older, "the task was changed after this run"),
    ):
        url = reverse("scheduled_tasks:execution_detail", args=[execution.pk])
        html = viewer_client.get(url).content.decode()
        section = html[html.index('<details class="panel code-section"') :]
        section = section[: section.index("</details>")]
        assert words in section
        assert 'class="hll"' not in section  # no line marked on code that did not run


@pytest.mark.django_db
def test_the_run_page_shows_the_version_that_ran_not_the_current_code(
    viewer_client: Client,
) -> None:
    if not hasattr(ScheduledTask, "current_version"):
        pytest.skip("code versions are not kept in this tree")
    task = services.save_task(
        ScheduledTask(name="report", code="x = 1\nraise ValueError('v1')\n", anchor=T0), now=T0
    )
    execution = make_execution(
        task,
        status=Execution.Status.FAILED,
        version=task.current_version,
        error="Traceback (snippet lines only):\n  Line 2, in snippet\nValueError: v1",
    )
    task.code = "print('version two')\n"
    services.save_task(task, now=T0)
    html = viewer_client.get(reverse("scheduled_tasks:execution_detail", args=[execution.pk]))
    html = html.content.decode()
    section = html[html.index('<details class="panel code-section"') :]
    section = section[: section.index("</details>")]
    assert "version 1, as this run ran it" in section
    assert "v1" in section and "version two" not in section
    assert section.count('class="hll"') == 1


@pytest.mark.django_db
def test_a_run_of_a_registered_function_shows_no_code(viewer_client: Client) -> None:
    task = make_task(code="", function_name="reports.nightly")
    execution = make_execution(task)
    html = viewer_client.get(reverse("scheduled_tasks:execution_detail", args=[execution.pk]))
    assert "code-section" not in html.content.decode()
