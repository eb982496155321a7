"""The database as a wall: a snippet that escaped the Python layers still finds it refusing.

Each escape test forks a sandbox child, confines its connection with ``confine_database`` (the
``prepare`` step of ``run_in_child``) and then runs plain Python against ``django.db.connection``
(raw SQL, the inherited connections): exactly what code that got past RestrictedPython, the
guards and the proxies could do. On SQLite the wall is the authorizer, on PostgreSQL the
sandbox role that ``sync_sandbox_role`` made (the ``sandbox_role`` fixture).
"""

from __future__ import annotations

import io
import json
import os
import re
import sqlite3
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.checks import run_checks
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection

from scheduled_tasks import conf
from scheduled_tasks.sandbox import dbwall
from scheduled_tasks.sandbox.execute import execute_snippet
from scheduled_tasks.sandbox.isolation import ChildOutcome, Limits, OutputChannel, run_in_child
from tests import test_sandbox_legit as legit_suite
from ticketproo.crm.models import Contact, Ticket

pytestmark = pytest.mark.django_db(transaction=True)

ON_PG = connection.vendor == "postgresql"
pg_only = pytest.mark.skipif(not ON_PG, reason="PostgreSQL only (set DATABASE_URL)")
sqlite_only = pytest.mark.skipif(ON_PG, reason="SQLite only")

LIMITS = Limits(timeout=10, max_output_bytes=100_000, max_memory_mb=256)
WORKER = re.sub(r"[^a-z0-9_]", "_", os.environ.get("PYTEST_XDIST_WORKER", "main").lower())
ROLE = f"dbwall_test_{WORKER}"
PASSWORD = "dbwall-test-pw"

crm_data = legit_suite.crm_data  # the legit suite's rows, for its cases run behind the wall


def _pg_url(role: str = ROLE, password: str = PASSWORD) -> str:
    cfg = connection.settings_dict
    port = f":{cfg['PORT']}" if cfg.get("PORT") else ""
    return f"postgres://{role}:{password}@{cfg.get('HOST') or '127.0.0.1'}{port}/{cfg['NAME']}"


def _sync(role: str = ROLE, password: str | None = PASSWORD) -> str:
    out = io.StringIO()
    options: dict[str, Any] = {"role": role, "stdout": out}
    if password is not None:
        options["password"] = password
    call_command("sync_sandbox_role", **options)
    return out.getvalue()


def _drop_role(role: str) -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [role])
        if cursor.fetchone():
            cursor.execute(f'DROP OWNED BY "{role}"')
            cursor.execute(f'DROP ROLE "{role}"')


@pytest.fixture
def sandbox_role(settings) -> Iterator[str | None]:
    """On PostgreSQL: a synced sandbox role, and SANDBOX_DATABASE_URL pointing at it."""
    if not ON_PG:
        yield None
        return
    _sync()
    settings.SCHEDULED_TASKS = {**settings.SCHEDULED_TASKS, "SANDBOX_DATABASE_URL": _pg_url()}
    yield ROLE
    _drop_role(ROLE)


def confined(fn: Callable[[], Any], registry: Any = None) -> ChildOutcome:
    """Run ``fn`` in a sandbox child behind the wall; its JSON-able result is the output."""
    registry = registry if registry is not None else dbwall.namespace_registry()
    told: list[str] = []

    def prepare() -> None:
        told.append(dbwall.confine_database(registry))

    def target(channel: OutputChannel) -> tuple[str, str]:
        try:
            result = fn()
        except BaseException as exc:
            return "failed", f"{type(exc).__name__}: {exc}"
        channel.write(json.dumps({"result": result, "wall": told}, default=str))
        return "completed", ""

    return run_in_child(target, LIMITS, prepare=prepare)


def _result(outcome: ChildOutcome) -> Any:
    assert outcome.status == "completed", outcome.error
    return json.loads(outcome.output)["result"]


def raw_sql(sql: str) -> Callable[[], str]:
    """An escaped snippet's move: SQL straight on the child's connection."""

    def attempt() -> str:
        from django.db import connection as child_connection

        try:
            with child_connection.cursor() as cursor:
                cursor.execute(sql)
                rows = cursor.fetchall() if cursor.description else []
        except Exception as exc:
            return f"refused: {type(exc).__name__}: {exc}"
        return f"allowed: {rows!r}"

    return attempt


# --- what the wall refuses -------------------------------------------------------------------

BOTH = [
    ("read-password", "SELECT password FROM auth_user"),
    ("read-password-by-join", "SELECT t.id, u.password FROM crm_ticket t JOIN auth_user u ON true"),
    ("read-sessions", "SELECT * FROM django_session"),
    ("read-scheduler-tasks", "SELECT code FROM scheduled_tasks_scheduledtask"),
    ("count-scheduler-runs", "SELECT count(*) FROM scheduled_tasks_execution"),
    ("read-permissions", "SELECT * FROM auth_user_user_permissions"),
    ("make-superuser", "UPDATE auth_user SET is_superuser = true"),
    ("rename-user", "UPDATE auth_user SET username = 'x'"),
    (
        "insert-user",
        "INSERT INTO auth_user (password, is_superuser, username, first_name, last_name, email, "
        "is_staff, is_active, date_joined) VALUES ('x', true, 'evil', '', '', '', true, true, "
        "CURRENT_TIMESTAMP)",
    ),
    ("delete-users", "DELETE FROM auth_user"),
    ("delete-sessions", "DELETE FROM django_session"),
    ("create-table", "CREATE TABLE dbwall_probe (a integer)"),
    ("drop-table", "DROP TABLE crm_ticket"),
    ("alter-table", "ALTER TABLE crm_ticket ADD COLUMN dbwall_probe integer"),
    ("create-index", "CREATE INDEX dbwall_probe ON crm_ticket (title)"),
    ("create-view", "CREATE VIEW dbwall_probe AS SELECT 1 AS a"),
]
SQLITE = [
    ("attach", "ATTACH DATABASE '/tmp/dbwall-probe.sqlite3' AS x"),
    ("pragma-writable-schema", "PRAGMA writable_schema = 1"),
    ("pragma-read", "PRAGMA table_info(auth_user)"),
    ("pragma-foreign-keys-off", "PRAGMA foreign_keys = OFF"),
    ("load-extension", "SELECT load_extension('/tmp/x')"),
    ("fts3-tokenizer", "SELECT fts3_tokenizer('simple')"),
    ("unknown-function", "SELECT sqlite_compileoption_get(0)"),
    ("read-schema", "SELECT sql FROM sqlite_master"),
    ("temp-table", "CREATE TEMP TABLE dbwall_probe (a integer)"),
    ("trigger", "CREATE TRIGGER dbwall_probe AFTER INSERT ON crm_ticket BEGIN SELECT 1; END"),
    ("vacuum-into", "VACUUM INTO '/tmp/dbwall-probe-copy.sqlite3'"),
]
POSTGRESQL = [
    ("copy-to-program", "COPY (SELECT 1) TO PROGRAM 'id'"),
    ("copy-to-file", "COPY crm_ticket TO '/tmp/dbwall-probe.csv'"),
    ("read-server-file", "SELECT pg_read_file('/etc/passwd')"),
    ("large-object-import", "SELECT lo_import('/etc/passwd')"),
    ("create-schema", "CREATE SCHEMA dbwall_probe"),
    ("set-role", "SET ROLE postgres"),
    ("session-authorization", "SET SESSION AUTHORIZATION postgres"),
    ("grant-self", "GRANT SELECT ON auth_user TO CURRENT_USER"),
    ("become-superuser", "ALTER ROLE CURRENT_USER SUPERUSER"),
    ("create-role", "CREATE ROLE dbwall_probe SUPERUSER LOGIN"),
    ("read-password-hashes", "SELECT rolpassword FROM pg_authid"),
    ("truncate", "TRUNCATE crm_ticket"),
]
ESCAPES = [pytest.param(sql, id=name) for name, sql in BOTH]
ESCAPES += [pytest.param(sql, id=name, marks=sqlite_only) for name, sql in SQLITE]
ESCAPES += [pytest.param(sql, id=name, marks=pg_only) for name, sql in POSTGRESQL]


@pytest.mark.parametrize("sql", ESCAPES)
def test_escaped_snippet_finds_the_database_refusing(sql: str, sandbox_role, crm_data):
    before = _world()
    said = _result(confined(raw_sql(sql)))
    assert said.startswith("refused:"), said
    assert _world() == before


def _world() -> dict[str, Any]:
    users = list(User.objects.order_by("pk").values_list("username", "is_superuser", "password"))
    tables = sorted(connection.introspection.table_names())
    return {"users": users, "tables": tables, "tickets": Ticket.objects.count()}


def test_allowlisted_sql_still_works_behind_the_wall(sandbox_role, crm_data):
    said = _result(
        confined(raw_sql("SELECT t.title, u.username FROM crm_ticket t JOIN auth_user u "
                         "ON u.id = t.assignee_id ORDER BY t.title"))
    )  # fmt: skip
    assert said == "allowed: [('Printer on fire', 'alice'), ('VPN down', 'alice')]"


def test_a_narrower_allowlist_narrows_the_wall(sandbox_role, crm_data, settings):
    """Fields left out of an entry are out of reach at the SQL level too (pk stays readable)."""
    namespace = {"Ticket": {"model": "crm.Ticket", "fields": ["title"], "read_only": True}}
    if ON_PG:
        settings.SCHEDULED_TASKS = {**settings.SCHEDULED_TASKS, "NAMESPACE": namespace}
        _sync()
    registry = dbwall.namespace_registry(namespace)
    assert _result(confined(raw_sql("SELECT id, title FROM crm_ticket"), registry)).startswith(
        "allowed:"
    )
    for sql in (
        "SELECT status FROM crm_ticket",
        "SELECT name FROM crm_company",
        "SELECT username FROM auth_user",
        "UPDATE crm_ticket SET title = 'x'",
        "DELETE FROM crm_ticket",
    ):
        said = _result(confined(raw_sql(sql), registry))
        assert said.startswith("refused:"), (sql, said)
    assert Ticket.objects.filter(title="x").count() == 0


# --- what keeps working: the legit suite behind the wall ------------------------------------


@pytest.mark.parametrize("case", legit_suite.LEGIT)
def test_legit_snippet_works_behind_the_wall(case, sandbox_role, crm_data):
    registry = dbwall.namespace_registry()
    outcome = run_in_child(
        lambda channel: execute_snippet(case.code, channel, "legit"),
        LIMITS,
        prepare=lambda: dbwall.confine_database(registry),
    )
    assert (outcome.status, outcome.error) == ("completed", "")
    assert outcome.output == case.output
    if case.then is not None:
        case.then()


def test_cascading_delete_of_a_company_works_behind_the_wall(sandbox_role, crm_data):
    code = "Company.objects.get(name='Acme').delete()\nprint(Company.objects.count())"
    registry = dbwall.namespace_registry()
    outcome = run_in_child(
        lambda channel: execute_snippet(code, channel, "cascade"),
        LIMITS,
        prepare=lambda: dbwall.confine_database(registry),
    )
    assert (outcome.status, outcome.error, outcome.output) == ("completed", "", "1\n")
    assert not Contact.objects.exists()  # CASCADE
    assert Ticket.objects.filter(title="VPN down", company=None).exists()  # SET_NULL


def test_orm_writes_through_the_proxies_work_behind_the_wall(sandbox_role, crm_data):
    code = (
        "acme = Company.objects.get(name='Acme')\n"
        "c = Contact.objects.create(company=acme, name='Bob')\n"
        "t = Ticket.objects.create(title='New', company=acme, contact=c)\n"
        "t.status = 'closed'\nt.save()\n"
        "print(Ticket.objects.filter(status='closed').update(status='resolved'))\n"
        "print(Ticket.objects.aggregate(n=Count('id')))\n"
        "print(list(User.objects.values_list('username', flat=True)))\n"
        "Contact.objects.filter(name='Bob').delete()\n"
        "Company.objects.create(name='Initech')\n"
        "print(sorted(Company.objects.values_list('name', flat=True)))"
    )
    registry = dbwall.namespace_registry()
    outcome = run_in_child(
        lambda channel: execute_snippet(code, channel, "writes"),
        LIMITS,
        prepare=lambda: dbwall.confine_database(registry),
    )
    assert (outcome.status, outcome.error) == ("completed", "")
    assert outcome.output == ("2\n{'n': 5}\n['alice']\n['Acme', 'Globex', 'Initech']\n")
    assert Ticket.objects.get(title="New").contact is None  # SET_NULL when Bob went


# --- the connection itself -------------------------------------------------------------------


def test_the_child_connection_is_open_and_described(sandbox_role):
    def who() -> list[Any]:
        from django.db import connection as child_connection

        return [child_connection.connection is not None, child_connection.vendor]

    outcome = confined(who)
    assert _result(outcome) == [True, connection.vendor]
    wall = json.loads(outcome.output)["wall"][0]
    assert ("sandbox role" in wall) if ON_PG else ("authorizer" in wall)


@pg_only
def test_the_parents_connection_is_no_way_around_the_role(sandbox_role):
    """The parent's connection objects, inherited over fork, act as the sandbox role at most
    (their descriptors are closed; a reused number is the child's own socket) and no longer
    know the application's password. The parent's session survives."""
    assert User.objects.count() == 0  # the parent's connection is open before the fork

    def borrow() -> dict[str, list[str]]:
        from django.db import connection as child_connection

        from scheduled_tasks.sandbox import isolation

        said: dict[str, list[str]] = {"users": [], "passwords": []}
        for old in isolation._KEEP_ALIVE:
            said["passwords"].append(old.info.password)
            try:
                said["users"].append(old.execute("SELECT current_user").fetchone()[0])
            except Exception as exc:
                said["users"].append(f"refused: {type(exc).__name__}")
        said["users"].append(child_connection.connection.info.user)
        said["passwords"].append(child_connection.connection.info.password)
        return said

    said = _result(confined(borrow))
    assert len(said["users"]) >= 2, said  # the parent's connection was there to borrow
    assert all(u == ROLE or u.startswith("refused:") for u in said["users"]), said
    assert said["users"][-1] == ROLE
    assert said["passwords"] == [""] * len(said["passwords"])
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_user")
        assert cursor.fetchone()[0] != ROLE


@pg_only
def test_the_sandbox_url_cannot_lift_the_statement_timeout(sandbox_role, settings):
    url = _pg_url() + "?options=-c%20statement_timeout%3D0&application_name=dbwall"
    settings.SCHEDULED_TASKS["SANDBOX_DATABASE_URL"] = url

    def show() -> list[str]:
        from django.db import connection as child_connection

        with child_connection.cursor() as cursor:
            cursor.execute("SHOW statement_timeout")
            timeout = cursor.fetchone()[0]
            cursor.execute("SHOW application_name")
            return [timeout, cursor.fetchone()[0]]

    assert _result(confined(show)) == ["10s", "dbwall"]  # LIMITS.timeout, the URL's option


@pg_only
def test_forget_passwords_zeroes_libpq_memory_and_keeps_the_connection():
    import psycopg

    cfg = connection.settings_dict
    with psycopg.connect(
        dbname=cfg["NAME"], user=cfg["USER"] or None, password="not-the-real-one",
        host=cfg["HOST"] or None, port=cfg["PORT"] or None,
    ) as conn:  # fmt: skip
        assert conn.info.password == "not-the-real-one"
        assert dbwall.forget_passwords([conn, object()]) == 1
        assert conn.info.password == ""
        assert "not-the-real-one" not in conn.info.dsn
        assert conn.execute("SELECT 1").fetchone() == (1,)


@sqlite_only
def test_the_parents_sqlite_connection_is_walled_too(crm_data):
    assert User.objects.count() == 1  # the parent's connection is open before the fork

    def borrow() -> list[str]:
        from scheduled_tasks.sandbox import isolation

        said = []
        for old in isolation._KEEP_ALIVE:
            try:
                said.append(repr(old.execute("SELECT password FROM auth_user").fetchall()))
            except sqlite3.DatabaseError as exc:
                said.append(f"refused: {exc}")
        return said

    said = _result(confined(borrow))
    assert said and all(s.startswith("refused:") for s in said), said


@sqlite_only
def test_sqlite_authorizer_on_a_fresh_connection():
    """The authorizer alone, on a plain sqlite3 connection to the test database."""
    registry = dbwall.namespace_registry()
    raw = sqlite3.connect(connection.settings_dict["NAME"])
    refused: list[str] = []
    raw.set_authorizer(dbwall.sqlite_authorizer(dbwall.grants_for(registry), refused=refused))
    try:
        raw.execute("SELECT id, username, email FROM auth_user").fetchall()
        raw.execute("SELECT count(*), max(title), lower(status) FROM crm_ticket").fetchall()
        raw.execute("SAVEPOINT s").fetchall()
        raw.execute("RELEASE s").fetchall()
        for sql in (
            "SELECT password FROM auth_user",
            "SELECT load_extension('x')",
            "SELECT * FROM django_session",
            "PRAGMA writable_schema = 1",
        ):
            with pytest.raises(sqlite3.DatabaseError):
                raw.execute(sql)
    finally:
        raw.close()
    assert any("password" in r for r in refused)


def test_grants_follow_the_allowlist():
    grants = dbwall.grants_for(dbwall.namespace_registry())
    assert grants.select["auth_user"] == {
        "id", "username", "first_name", "last_name", "email", "is_active", "is_staff",
        "date_joined",
    }  # fmt: skip
    assert "auth_user" not in grants.update and "auth_user" not in grants.delete
    assert {"crm_ticket", "crm_company", "crm_contact"} <= set(grants.delete)
    assert "assignee_id" in grants.update["crm_ticket"]
    assert "id" in grants.insert["crm_ticket"] and "id" not in grants.update["crm_ticket"]
    assert not any(t.startswith(("django_", "scheduled_tasks_")) for t in grants.select)


# --- sync_sandbox_role -----------------------------------------------------------------------


@sqlite_only
def test_sync_sandbox_role_refuses_sqlite():
    with pytest.raises(CommandError, match="PostgreSQL only") as info:
        call_command("sync_sandbox_role")
    assert info.value.returncode == 2


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"database": "nope"}, "unknown database alias"),
        ({"role": "Robert'); DROP TABLE x;--"}, "role name" if ON_PG else "PostgreSQL only"),
        ({"role": "pg_monitor"}, "reserved" if ON_PG else "PostgreSQL only"),
    ],
    ids=["alias", "injection", "reserved"],
)
def test_sync_sandbox_role_refuses_bad_input(options, message):
    with pytest.raises(CommandError, match=re.escape(message)) as info:
        call_command("sync_sandbox_role", **options)
    assert info.value.returncode == 2


def _role_privileges(role: str) -> list[tuple[Any, ...]]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT 'col', table_name, column_name, privilege_type "
            "FROM information_schema.column_privileges WHERE grantee = %s "
            "UNION ALL SELECT 'tab', table_name, '', privilege_type "
            "FROM information_schema.role_table_grants WHERE grantee = %s "
            "UNION ALL SELECT 'role', r.rolname, '', '' FROM pg_auth_members m "
            "JOIN pg_roles r ON r.oid = m.roleid JOIN pg_roles u ON u.oid = m.member "
            "WHERE u.rolname = %s "
            "UNION ALL SELECT 'attr', rolsuper::text || rolcreatedb::text || rolcreaterole::text "
            "|| rolreplication::text || rolbypassrls::text, '', '' FROM pg_roles "
            "WHERE rolname = %s ORDER BY 1, 2, 3, 4",
            [role, role, role, role],
        )
        return cursor.fetchall()


@pg_only
def test_sync_sandbox_role_is_idempotent_and_repairs_a_role():
    try:
        out = _sync()
        assert f"Role {ROLE} created" in out
        assert "SANDBOX_DATABASE_URL=postgres://" in out and PASSWORD not in out
        first = _role_privileges(ROLE)
        assert ("attr", "falsefalsefalsefalsefalse", "", "") in first
        assert ("col", "auth_user", "password", "SELECT") not in first
        assert ("col", "auth_user", "username", "SELECT") in first
        assert ("col", "crm_ticket", "status", "UPDATE") in first
        assert ("tab", "crm_ticket", "", "DELETE") in first
        assert f"Role {ROLE} updated" in _sync()
        assert _role_privileges(ROLE) == first
        # Someone widened it by hand: the next sync puts it back.
        with connection.cursor() as cursor:
            cursor.execute(f'ALTER ROLE "{ROLE}" SUPERUSER CREATEROLE')
            cursor.execute(f'GRANT SELECT ON auth_user, django_session TO "{ROLE}"')
            cursor.execute(f'GRANT pg_read_server_files TO "{ROLE}"')
        assert _role_privileges(ROLE) != first
        _sync(password=None)  # an existing role keeps its password
        assert _role_privileges(ROLE) == first
    finally:
        _drop_role(ROLE)


@pg_only
def test_sync_sandbox_role_without_password_prints_a_generated_one():
    role = f"{ROLE}_gen"
    try:
        out = _sync(role=role, password=None)
        url = re.search(r"SANDBOX_DATABASE_URL=(\S+)", out).group(1)
        creds = dbwall.sandbox_connection_settings(url)
        assert creds["USER"] == role and len(creds["PASSWORD"]) >= 24
        assert "<its password>" in _sync(role=role, password=None)
    finally:
        _drop_role(role)


@pg_only
def test_the_role_as_seen_from_psycopg(sandbox_role, crm_data):
    import psycopg

    cfg = dbwall.sandbox_connection_settings(_pg_url())
    with psycopg.connect(
        dbname=cfg["NAME"], user=cfg["USER"], password=cfg["PASSWORD"], host=cfg["HOST"],
        port=cfg["PORT"] or None, autocommit=True,
    ) as conn:  # fmt: skip
        for sql, error in (
            ("SELECT password FROM auth_user", psycopg.errors.InsufficientPrivilege),
            ("COPY (SELECT 1) TO PROGRAM 'id'", psycopg.errors.InsufficientPrivilege),
            ("CREATE TABLE dbwall_probe (a int)", psycopg.errors.InsufficientPrivilege),
        ):
            with pytest.raises(error):
                conn.execute(sql)
        assert conn.execute("SELECT count(*) FROM crm_ticket").fetchone() == (4,)
        conn.execute("UPDATE crm_ticket SET status = 'closed' WHERE title = 'VPN down'")
        row = conn.execute(
            "INSERT INTO crm_company (name, website, is_active, created_at) "
            "VALUES ('Initech', '', true, now()) RETURNING id"
        ).fetchone()
        conn.execute("DELETE FROM crm_company WHERE id = %s", row)
    assert Ticket.objects.get(title="VPN down").status == "closed"


# --- system checks ---------------------------------------------------------------------------


def _ids(**kwargs: Any) -> set[str]:
    return {m.id for m in run_checks(**kwargs) if m.id and m.id.startswith("scheduled_tasks.")}


@pg_only
def test_check_warns_when_snippets_would_use_the_application_role(settings):
    settings.SCHEDULED_TASKS = {**settings.SCHEDULED_TASKS, "SANDBOX_DATABASE_URL": None}
    assert "scheduled_tasks.W020" in _ids()
    app_user = connection.settings_dict["USER"] or "postgres"
    settings.SCHEDULED_TASKS["SANDBOX_DATABASE_URL"] = _pg_url(role=app_user)
    assert "scheduled_tasks.W020" in _ids()


@pg_only
def test_database_check_passes_for_a_synced_role_and_warns_otherwise(sandbox_role, settings):
    assert not {"scheduled_tasks.W020", "scheduled_tasks.W021", "scheduled_tasks.W022"} & _ids(
        databases=["default"]
    )
    with connection.cursor() as cursor:
        cursor.execute(f'GRANT SELECT ON auth_user TO "{ROLE}"')
    assert "scheduled_tasks.W022" in _ids(databases=["default"])
    assert "scheduled_tasks.W022" not in _ids()  # only with --database
    settings.SCHEDULED_TASKS["SANDBOX_DATABASE_URL"] = _pg_url(role="dbwall_no_such_role")
    assert "scheduled_tasks.W021" in _ids(databases=["default"])


@sqlite_only
def test_check_refuses_a_sandbox_url_on_sqlite(settings):
    settings.SCHEDULED_TASKS = {
        **settings.SCHEDULED_TASKS,
        "SANDBOX_DATABASE_URL": "postgres://sandbox:pw@localhost/db",
    }
    assert "scheduled_tasks.E021" in _ids()


def test_check_refuses_a_sandbox_url_that_is_not_postgres(settings):
    settings.SCHEDULED_TASKS = {
        **settings.SCHEDULED_TASKS,
        "SANDBOX_DATABASE_URL": "mysql://sandbox:pw@localhost/db",
    }
    assert "scheduled_tasks.E020" in _ids()


def test_no_sandbox_warnings_by_default_on_sqlite_or_with_the_test_role():
    if ON_PG and not conf.get("SANDBOX_DATABASE_URL"):
        pytest.skip("tests/settings.py sets no SANDBOX_DATABASE_URL")
    assert not {"scheduled_tasks.E020", "scheduled_tasks.E021", "scheduled_tasks.W020"} & _ids()
