"""The process tree of a run: the child leads a session of its own and is a child subreaper;
when the run ends the parent stops it, kills every descendant still under it, its process group,
then the child (:func:`end_tree`). A runner that does nothing else can be a subreaper too
(:func:`adopt_orphans`), so that descendants of a child that exited first come to it and are
swept (:func:`sweep_orphans`).

Descendants are found through ``/proc/<pid>/task/*/children`` where the kernel has it
(CONFIG_PROC_CHILDREN), otherwise through one scan of ``/proc/*/stat``; neither is needed when
no process was created after the child (``/proc/loadavg`` names the last pid handed out).
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import queue
import signal
import threading
import time
from typing import Any

log = logging.getLogger("scheduled_tasks.sandbox")

PR_SET_PDEATHSIG = 1
PR_SET_CHILD_SUBREAPER = 36
try:  # loaded once here, in the parent: every child inherits it
    _LIBC: Any = ctypes.CDLL(None, use_errno=True)
except OSError:  # pragma: no cover - not Linux
    _LIBC = None


def prctl(option: int, value: int) -> None:
    with contextlib.suppress(Exception):
        _LIBC.prctl(option, value, 0, 0, 0)


def own_session() -> None:
    # A session (and process group) of its own: no controlling terminal, and the parent can
    # kill the group. A subreaper: orphans of descendants are re-parented to us, not to init,
    # so the parent still finds them under us when the run ends.
    os.setsid()
    prctl(PR_SET_CHILD_SUBREAPER, 1)


_HAS_CHILDREN_FILES: bool | None = None


def last_pid() -> int | None:
    """The pid the kernel handed out last (in our pid namespace), or None if unknown."""
    try:
        with open("/proc/loadavg", "rb") as f:
            return int(f.read().split()[-1])
    except (OSError, ValueError, IndexError):
        return None


def proc_stat(pid: int) -> tuple[int, bytes] | None:
    """(parent pid, state) of a process, None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return None
    fields = data.rpartition(b")")[2].split()
    try:
        return int(fields[1]), fields[0]
    except (IndexError, ValueError):
        return None


def _children_by_files(pid: int) -> list[int] | None:
    global _HAS_CHILDREN_FILES
    if _HAS_CHILDREN_FILES is False:
        return None
    kids: list[int] = []
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return []
    for tid in tids:
        try:
            with open(f"/proc/{pid}/task/{tid}/children", "rb") as f:
                kids.extend(int(k) for k in f.read().split())
        except FileNotFoundError:
            if _HAS_CHILDREN_FILES is None and os.path.exists(f"/proc/{pid}/task/{tid}"):
                _HAS_CHILDREN_FILES = False  # a kernel without CONFIG_PROC_CHILDREN
                return None
        except (OSError, ValueError):
            continue
    _HAS_CHILDREN_FILES = True
    return kids


def live_descendants(root: int) -> list[int]:
    """Every descendant of ``root`` that has not exited (zombies left out)."""
    found: list[int] = []
    by_parent: dict[int, list[int]] | None = None
    stack, seen = [root], {root}
    while stack:
        pid = stack.pop()
        kids = _children_by_files(pid)
        if kids is None:  # no children files: one scan of /proc gives every parent link
            if by_parent is None:
                by_parent = {}
                for name in os.listdir("/proc"):
                    if name.isdigit() and (info := proc_stat(int(name))) is not None:
                        by_parent.setdefault(info[0], []).append(int(name))
            kids = by_parent.get(pid, [])
        for kid in kids:
            if kid not in seen:
                seen.add(kid)
                stack.append(kid)
                found.append(kid)
    return [pid for pid in found if (info := proc_stat(pid)) is not None and info[1] not in b"ZX"]


def end_tree(pid: int) -> bool:
    """Kill the child ``pid``, its process group and every descendant still under it.

    Order matters: the child is stopped first (it cannot fork any more) and killed last, so
    that descendants that left its group (``setsid``) are still found under it. Returns
    whether the child had descendants (they come to a subreaper once the child is gone, and
    need sweeping then); descendants that could not be killed are logged.
    """
    for target in (pid, -pid):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(target, signal.SIGSTOP)
    had_descendants = False
    if last_pid() != pid:
        # Some process (or thread) was created after the child: it may be one of ours. (If
        # the child is still the newest pid, it has no descendants: no walk needed.)
        deadline = time.monotonic() + 1.0
        while (left := live_descendants(pid)) and time.monotonic() < deadline:
            had_descendants = True
            for descendant in left:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(descendant, signal.SIGKILL)
            time.sleep(0.001)  # let the kills land; the next walk sees their orphans too
    else:
        left = []
    for target in (-pid, pid):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(target, signal.SIGKILL)
    if left:
        log.error("sandbox child %s: descendants %s could not be killed", pid, left)
    return had_descendants or bool(left)


_reaper_queue: queue.SimpleQueue[tuple[int, int]] | None = None
_reaper_lock = threading.Lock()
# Killed children handed to the reaper thread and not yet reaped: not orphans to sweep (a
# sweep would wait here for the kernel to tear the child down, which reap_later spares us).
REAPING: set[int] = set()


def _reap_forever(pidfds: queue.SimpleQueue[tuple[int, int]]) -> None:
    while True:
        pid, pidfd = pidfds.get()
        try:
            # Through the pidfd, not the pid: if someone else reaped the child and its pid
            # was handed out again, this must not wait for (or reap) the newcomer.
            with contextlib.suppress(ChildProcessError, OSError):
                os.waitid(os.P_PIDFD, pidfd, os.WEXITED)
        finally:
            REAPING.discard(pid)
            os.close(pidfd)


def reap_later(pid: int, pidfd: int | None) -> None:
    """Reap a killed child whose exit status is not needed, in a background thread; takes
    ownership of ``pidfd``. Without a pidfd (an old kernel) it is reaped here and now."""
    global _reaper_queue
    if pidfd is None or not hasattr(os, "P_PIDFD"):
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, 0)
        if pidfd is not None:
            os.close(pidfd)
        return
    with _reaper_lock:
        if _reaper_queue is None:
            _reaper_queue = queue.SimpleQueue()
            threading.Thread(
                target=_reap_forever, args=(_reaper_queue,), name="sandbox-reaper", daemon=True
            ).start()
    REAPING.add(pid)
    _reaper_queue.put((pid, pidfd))


_ADOPTING = False


def adopting() -> bool:
    """Whether this process adopts orphans (see :func:`adopt_orphans`)."""
    return _ADOPTING


def adopt_orphans() -> bool:
    """Make this process a child subreaper; for processes that only run the scheduler (the
    ``run_scheduled_tasks`` command), not web or worker processes.

    A sandbox child that exits before its descendants leaves them to the nearest subreaper
    above it, normally init, out of :func:`end_tree`'s reach. With the runner a subreaper they
    come to it instead, and every run ends with :func:`sweep_orphans`. Returns whether it
    took effect.
    """
    global _ADOPTING
    if _LIBC is not None and _LIBC.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0:
        _ADOPTING = True
    return _ADOPTING


def _session(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return int(f.read().rpartition(b")")[2].split()[3])
    except (OSError, ValueError, IndexError):
        return None


def _direct_children(pid: int) -> list[int]:
    kids = _children_by_files(pid)
    if kids is None:
        kids = []
        for name in os.listdir("/proc"):
            if name.isdigit() and (info := proc_stat(int(name))) is not None and info[0] == pid:
                kids.append(int(name))
    return kids


# The sandbox children this process forked and still follows (runs in progress, spares waiting
# for a job): in sessions of their own, but not orphans.
CHILDREN: set[int] = set()


def sweep_orphans() -> list[int]:
    """Kill and reap our children that live in another session than ours: descendants of a
    sandbox child re-parented to us (we are a subreaper). Children the runner started itself
    share its session and are left alone, as are the sandbox children it follows
    (:data:`CHILDREN`) and those already killed and being reaped (:data:`REAPING`). Returns
    the pids swept."""
    me, session = os.getpid(), os.getsid(0)
    swept: list[int] = []
    deadline = time.monotonic() + 1.0
    while time.monotonic() < deadline:
        foreign = [
            kid
            for kid in _direct_children(me)
            if _session(kid) not in (session, None) and kid not in CHILDREN and kid not in REAPING
        ]
        if not foreign:
            break
        for kid in foreign:  # their own children come to us in turn: the next round
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(kid, signal.SIGKILL)
        for kid in foreign:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(kid, 0)
            swept.append(kid)
    if swept:
        log.warning("swept %d process(es) a sandbox child left behind: %s", len(swept), swept)
    return swept
