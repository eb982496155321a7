"""What the scheduler's background threads (lease keeper, monitors, alert sender) share."""

from __future__ import annotations

import os
import threading


def running_here(pid: int, thread: threading.Thread | None, stopped: threading.Event) -> bool:
    """Whether ``thread``, started by process ``pid``, runs in this very process (a forked
    copy has none of its parent's threads) and has not been asked to stop."""
    return pid == os.getpid() and thread is not None and thread.is_alive() and not stopped.is_set()
