"""Settings for the test suite: the project's settings with a known secret and quick limits."""

import os

from ticketproo.settings import *  # noqa: F403
from ticketproo.settings import BASE_DIR, DATABASES, LOGGING

# A known secret, so security tests can assert that no snippet ever prints it.
SECRET_KEY = "test-secret-key-ticketproo-NEVER-LEAK-4f9c2e71"

worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # A file, not :memory:, so forked sandbox children and real runner processes see the data.
    DATABASES["default"]["TEST"] = {"NAME": str(BASE_DIR / f".test-db-{worker}.sqlite3")}
else:
    # One test database per worker, so parallel runs on one server do not collide.
    DATABASES["default"]["TEST"] = {"NAME": f"test_ticketproo_{worker}"}

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
