"""Settings for the test suite: the project's settings with a known secret and quick limits."""

import os

from ticketproo.settings import *  # noqa: F403
from ticketproo.settings import BASE_DIR, DATABASES, LOGGING

# A known secret, so security tests can assert that no snippet ever prints it.
SECRET_KEY = "test-secret-key-ticketproo-NEVER-LEAK-4f9c2e71"

if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # A file, not :memory:, so forked sandbox children and real runner processes see the data.
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    DATABASES["default"]["TEST"] = {"NAME": str(BASE_DIR / f".test-db-{worker}.sqlite3")}

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

TEST_LOG_FILE = BASE_DIR / "logs" / "test_scheduled_tasks.log"
SCHEDULED_TASKS = {
    "LOG_FILE": TEST_LOG_FILE,
    "DEFAULT_TIMEOUT_SECONDS": 10,
}
LOGGING["handlers"]["scheduled_tasks_file"]["filename"] = str(TEST_LOG_FILE)
