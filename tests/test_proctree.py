"""The parent's process bookkeeping: a child already killed and handed to the reaper thread is
not an orphan to sweep (the sweep would wait for the kernel to tear it down)."""

from __future__ import annotations

import os
import signal
import time

from scheduled_tasks.sandbox import proctree


def _child_in_its_own_session() -> int:
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        os.setsid()
        time.sleep(30)
        os._exit(0)
    deadline = time.monotonic() + 5
    while proctree._session(pid) in (os.getsid(0), None) and time.monotonic() < deadline:
        time.sleep(0.01)
    return pid


def test_a_child_being_reaped_is_not_swept_as_an_orphan() -> None:
    pid = _child_in_its_own_session()
    pidfd = os.pidfd_open(pid)
    os.kill(pid, signal.SIGKILL)
    proctree.reap_later(pid, pidfd)
    assert pid not in proctree.sweep_orphans()
    deadline = time.monotonic() + 5
    while pid in proctree.REAPING and time.monotonic() < deadline:
        time.sleep(0.01)
    assert pid not in proctree.REAPING  # the reaper thread reaped it and forgot it


def test_an_unknown_child_in_another_session_is_swept() -> None:
    pid = _child_in_its_own_session()
    assert pid in proctree.sweep_orphans()
