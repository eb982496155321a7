"""Settings for the test suite: the project's settings with a known secret and quick limits."""

import os

from ticketproo.settings import *  # noqa: F403
from ticketproo.settings import BASE_DIR, DATABASES, LOGGING

# A known secret, so security tests can assert that no snippet ever prints it.
SECRET_KEY = "test-secret-key-ticketproo-NEVER-LEAK-4f9c2e71"

worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    # A file, not :memory:, so forked sandbox children and real runner processes see the data.
    DATABASES["default"]["TEST"] = {"NAME": str(BASE_DIR / f".test-db-{worker}.sqlite3")}
else:
    # One test database per worker, so parallel runs on one server do not collide.
    DATABASES["default"]["TEST"] = {"NAME": f"test_ticketproo_{worker}"}

# This machine's interpreter lives under /root, which the sandbox user cannot read (W105 is
# right to warn a deployment about it); the commands the tests run must not print it.
# tests/test_oslayer.py calls the check itself.
SILENCED_SYSTEM_CHECKS = ["scheduled_tasks.W105"]

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

TEST_LOG_FILE = BASE_DIR / "logs" / "test_scheduled_tasks.log"
SCHEDULED_TASKS = {
    "LOG_FILE": TEST_LOG_FILE,
    "DEFAULT_TIMEOUT_SECONDS": 10,
    # Real-process tests (kill -9 of a runner) shorten the lease so a dead runner's run is
    # reaped within seconds.
    "LEASE_SECONDS": int(os.environ.get("TEST_LEASE_SECONDS", "60")),
}
LOGGING["handlers"]["scheduled_tasks_file"]["filename"] = str(TEST_LOG_FILE)

if not DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    # Snippets connect as a sandbox role holding the allowlist only; tests/conftest.py creates
    # it on the test database after the migrations (``sync_sandbox_role``). Roles are global
    # to the server: one per worker, dropped at the end of the run.
    _db = DATABASES["default"]
    SANDBOX_TEST_ROLE = "ticketproo_sandbox_" + "".join(
        c if c.isalnum() else "_" for c in worker.lower()
    )
    SANDBOX_TEST_PASSWORD = "sandbox-test-password"
    SCHEDULED_TASKS["SANDBOX_DATABASE_URL"] = (
        f"postgres://{SANDBOX_TEST_ROLE}:{SANDBOX_TEST_PASSWORD}@{_db.get('HOST') or '127.0.0.1'}"
        f"{':' + str(_db['PORT']) if _db.get('PORT') else ''}/{DATABASES['default']['TEST']['NAME']}"
    )
