"""The site with DEBUG off: static files served by WhiteNoise, the error pages and the login
page in the site's look, the favicon, one wording for relative times, a stored time zone this
machine does not know, and ``seed_demo`` keeping an existing admin's password."""

from __future__ import annotations

import re
from datetime import timedelta
from io import StringIO
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.auth.models import User
from django.core.management import call_command
from django.test import Client, RequestFactory, override_settings
from django.urls import reverse
from django.views.defaults import server_error

from scheduled_tasks.forms import ScheduledTaskForm
from scheduled_tasks.models import ScheduledTask
from scheduled_tasks.templatetags.dates import ago, until
from tests.factories import T0, make_task, make_user

TEMPLATES = Path(settings.BASE_DIR) / "ticketproo" / "templates"


# --- static files --------------------------------------------------------------------------


@pytest.mark.django_db
def test_static_files_are_served_with_debug_off_after_collectstatic(tmp_path: Path) -> None:
    assert settings.DEBUG is False
    with override_settings(STATIC_ROOT=tmp_path):
        call_command("collectstatic", interactive=False, verbosity=0)
        client = Client()  # a fresh handler: WhiteNoise reads STATIC_ROOT when it starts
        css = client.get("/static/scheduled_tasks/scheduler.css")
        icon = client.get("/static/scheduled_tasks/favicon.svg")
        missing = client.get("/static/scheduled_tasks/no-such-file.css")
    assert css.status_code == 200
    assert css["Content-Type"].startswith("text/css")
    assert b".table-wrap" in b"".join(css.streaming_content)
    assert icon.status_code == 200
    assert icon["Content-Type"].startswith("image/svg+xml")
    assert missing.status_code == 404


def test_whitenoise_comes_right_after_the_security_middleware() -> None:
    middleware = settings.MIDDLEWARE
    assert middleware[0] == "django.middleware.security.SecurityMiddleware"
    assert middleware[1] == "whitenoise.middleware.WhiteNoiseMiddleware"


# --- error pages, login, favicon ---------------------------------------------------------


@pytest.mark.django_db
def test_404_page_has_the_site_layout(client: Client) -> None:
    client.force_login(make_user("viewer", perms=("view_scheduledtask",)))
    response = client.get("/no-such-page/")
    html = response.content.decode()
    assert response.status_code == 404
    assert "Page not found" in html
    assert "scheduled_tasks/scheduler.css" in html
    assert "scheduled_tasks/favicon.svg" in html


@pytest.mark.django_db
def test_404_under_the_api_is_still_json(client: Client) -> None:
    response = client.get("/api/scheduler/no-such-endpoint/")
    assert response.status_code == 404
    assert response["Content-Type"].startswith("application/json")


@pytest.mark.django_db
def test_403_page_has_the_site_layout(client: Client) -> None:
    client.force_login(make_user("viewer", perms=("view_scheduledtask",)))
    task = make_task(name="guarded")
    response = client.get(reverse("scheduled_tasks:task_delete", args=[task.pk]))
    html = response.content.decode()
    assert response.status_code == 403
    assert "You cannot do that" in html
    assert "scheduled_tasks/scheduler.css" in html


def test_500_page_renders_without_a_request_context_or_database() -> None:
    # Django renders 500.html with an empty context; no query may be needed (the database
    # may be what failed): this test has no database access at all.
    response = server_error(RequestFactory().get("/tasks/"))
    html = response.content.decode()
    assert response.status_code == 500
    assert "Something went wrong" in html
    assert "/static/scheduled_tasks/scheduler.css" in html
    assert "/static/scheduled_tasks/favicon.svg" in html


@pytest.mark.django_db
def test_login_page_is_styled_like_the_site(client: Client) -> None:
    response = client.get(reverse("login"))
    html = response.content.decode()
    assert response.status_code == 200
    assert 'class="login-card panel"' in html
    assert "scheduled_tasks/scheduler.css" in html
    assert "scheduled_tasks/favicon.svg" in html


@pytest.mark.django_db
def test_pages_link_the_static_favicon_not_an_inline_one(client: Client) -> None:
    client.force_login(make_user("viewer", perms=("view_scheduledtask",)))
    html = client.get(reverse("scheduled_tasks:task_list")).content.decode()
    assert '<link rel="icon" href="/static/scheduled_tasks/favicon.svg"' in html
    assert "data:image/svg+xml" not in html


def test_site_templates_load_nothing_from_another_host() -> None:
    for template in TEMPLATES.rglob("*.html"):
        text = template.read_text()
        assert not re.search(r"""(src|href)=["']?(https?:)?//""", text), template


# --- relative times ------------------------------------------------------------------------


def words(text: str) -> str:
    return text.replace("\xa0", " ")  # Django keeps a number and its unit together


def test_ago_reads_just_now_under_a_minute() -> None:
    assert ago(T0, T0) == "just now"
    assert ago(T0 - timedelta(seconds=59), T0) == "just now"
    assert ago(T0 + timedelta(seconds=5), T0) == "just now"  # a clock a little ahead
    assert words(ago(T0 - timedelta(minutes=5), T0)) == "5 minutes ago"
    assert words(ago(T0 - timedelta(days=1, hours=2), T0)) == "1 day, 2 hours ago"
    assert ago(None, T0) == ""


def test_until_reads_under_a_minute_instead_of_zero_minutes() -> None:
    assert until(T0 + timedelta(seconds=30), T0) == "in under a minute"
    assert words(until(T0 + timedelta(hours=2), T0)) == "in 2 hours"
    assert until(None, T0) == ""


@pytest.mark.django_db
def test_list_says_just_now_for_a_run_seconds_ago(client: Client) -> None:
    from django.utils import timezone

    client.force_login(make_user("viewer", perms=("view_scheduledtask",)))
    make_task(name="fresh", last_run_at=timezone.now() - timedelta(seconds=10))
    html = client.get(reverse("scheduled_tasks:task_list")).content.decode()
    assert "just now" in html
    assert "0 minutes ago" not in html


# --- a stored zone this machine does not know ---------------------------------------------


@pytest.mark.django_db
@override_settings(TIME_ZONE="Europe/Madrid")
def test_an_unknown_stored_zone_shows_the_servers_zone_selected() -> None:
    task = make_task(name="zoned", time_zone="Europe/Madrid")
    ScheduledTask.objects.filter(pk=task.pk).update(time_zone="Mars/Olympus_Mons")
    task.refresh_from_db()
    form = ScheduledTaskForm(instance=task, now=T0)
    assert form["time_zone"].value() == "Europe/Madrid"
    html = str(form["time_zone"])
    assert '<option value="Europe/Madrid" selected>' in html
    assert html.count(" selected>") == 1
    assert "Mars/Olympus_Mons" in form.fields["time_zone"].help_text


@pytest.mark.django_db
def test_a_known_stored_zone_stays_selected() -> None:
    task = make_task(name="tokyo", time_zone="Asia/Tokyo")
    form = ScheduledTaskForm(instance=task, now=T0)
    assert form["time_zone"].value() == "Asia/Tokyo"
    assert "unknown" not in form.fields["time_zone"].help_text


# --- seed_demo ----------------------------------------------------------------------------


def seed_demo(*args: str) -> str:
    out = StringIO()
    call_command("seed_demo", *args, stdout=out)
    return out.getvalue()


@pytest.mark.django_db
def test_seed_demo_prints_a_password_only_when_it_creates_the_admin() -> None:
    first = seed_demo()
    password = re.search(r"Admin login: admin / (\S+)", first).group(1)  # type: ignore[union-attr]
    admin = User.objects.get(username="admin")
    assert admin.check_password(password)

    second = seed_demo()
    admin.refresh_from_db()
    assert admin.check_password(password)  # kept, not reset on every start
    assert "admin / " not in second
    assert "manage.py changepassword admin" in second


@pytest.mark.django_db
def test_seed_demo_sets_a_given_password_on_an_existing_admin() -> None:
    seed_demo()
    output = seed_demo("--password", "a-new-secret-42")
    assert "Admin login: admin / a-new-secret-42" in output
    assert User.objects.get(username="admin").check_password("a-new-secret-42")


def test_start_script_documents_its_port_argument() -> None:
    readme = (Path(settings.BASE_DIR) / "README.md").read_text()
    script = (Path(settings.BASE_DIR) / "scripts" / "start.sh").read_text()
    assert "bash scripts/start.sh [PORT]" in readme
    assert 'PORT="${1:-8000}"' in script
    assert "collectstatic" in script
