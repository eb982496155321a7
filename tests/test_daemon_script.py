"""scripts/run_scheduler_daemon.sh: finds the project's Python and execs the daemon."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from datetime import timedelta

import pytest
from django.utils import timezone

from scheduled_tasks.models import Execution
from tests.conftest import ROOT, database_url_for_subprocess
from tests.factories import make_task

SCRIPT = ROOT / "scripts" / "run_scheduler_daemon.sh"


def test_help_explains_the_flags():
    proc = subprocess.run([str(SCRIPT), "--help"], capture_output=True, text=True, check=False)
    assert proc.returncode == 0
    assert "--shutdown-timeout" in proc.stdout


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_script_runs_the_daemon_which_stops_cleanly_on_sigterm():
    task = make_task(name="via-script", code="print('ran')", anchor=timezone.now())
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "DATABASE_URL": database_url_for_subprocess(),
    }
    env.pop("VIRTUAL_ENV", None)
    proc = subprocess.Popen(
        [str(SCRIPT), "--interval", "1"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while not Execution.objects.filter(task=task, status="completed").exists():
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "the daemon did not run the due task"
            time.sleep(0.1)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
    assert proc.returncode == 0
    assert Execution.objects.get(task=task).output == "ran\n"
    assert task.__class__.objects.get(pk=task.pk).next_run_at > timezone.now() - timedelta(
        seconds=5
    )
