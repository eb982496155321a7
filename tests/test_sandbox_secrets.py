"""No secret in the snippet's process: settings, os.environ, /proc/self/environ.

The runner is started as a real process with secrets in its environment; the child that would
run a snippet looks for them everywhere a snippet that escaped the Python layers could read.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

from scheduled_tasks.sandbox.secrets import is_secret_name
from tests.conftest import ROOT

SECRET = "env-secret-key-5e1f0c9a-must-not-reach-the-child"
DB_PASSWORD = "db-password-77b2-must-not-reach-the-child"

PROBE = r"""
import json, os, sys
import django
django.setup()
from django.conf import settings
from scheduled_tasks.sandbox.isolation import Limits, run_in_child
from scheduled_tasks.sandbox.secrets import scrub_process_secrets

def target(channel):
    import ticketproo.settings as module
    found = {
        "environ_block": open("/proc/self/environ", "rb").read().decode("latin-1"),
        "os_environ": json.dumps(dict(os.environ)),
        "settings": repr({n: getattr(settings, n) for n in dir(settings) if n.isupper()}),
        "module": repr({n: getattr(module, n) for n in dir(module) if n.isupper()}),
        "settings_module": repr(vars(sys.modules[os.environ["DJANGO_SETTINGS_MODULE"]])),
    }
    channel.write(json.dumps(found))
    return "completed", ""

outcome = run_in_child(target, Limits(10, 10**6, 256), prepare=scrub_process_secrets)
print(outcome.output)
# The runner itself keeps its secrets (it needs them).
print(json.dumps({"parent_secret": settings.SECRET_KEY}))
"""


def test_the_snippet_process_holds_no_secret():
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "ticketproo.settings",
        "SECRET_KEY": SECRET,
        "DATABASE_URL": f"postgres://app:{DB_PASSWORD}@127.0.0.1:5432/nowhere",
        "EMAIL_HOST_PASSWORD": DB_PASSWORD,
    }
    proc = subprocess.run(
        [sys.executable, "-c", PROBE],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    child_line, parent_line = proc.stdout.strip().splitlines()[-2:]
    found = json.loads(child_line)
    assert set(found) == {"environ_block", "os_environ", "settings", "module", "settings_module"}
    for where, text in found.items():
        assert SECRET not in text, where
        assert DB_PASSWORD not in text, where
    # The names are still there, their values are not.
    assert "SECRET_KEY=" in found["environ_block"]
    assert json.loads(parent_line) == {"parent_secret": SECRET}


def test_secret_names_follow_djangos_own_rule():
    for name in ("SECRET_KEY", "DATABASE_URL", "EMAIL_HOST_PASSWORD", "API_TOKEN", "AWS_KEY"):
        assert is_secret_name(name, environment=True)
    assert is_secret_name("SENTRY_DSN", environment=True)
    assert not is_secret_name("STATIC_URL")  # a setting, not a credential
    assert not is_secret_name("TIME_ZONE", environment=True)
