"""The OS layers of a snippet's process, each proved on its own with plain Python targets.

The Python layers (RestrictedPython, guards, namespace) are not involved here: every target is
ordinary code that *tries* what a snippet that escaped them would try - exec, fork, sockets,
writes, reading the runner's environment - and reports what happened through the channel.

A layer this machine cannot offer (not root, no Landlock, no libseccomp) skips its tests with
the reason, except in CI (CI=true), where it fails: CI must prove every layer.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import importlib
import importlib.util
import json
import mmap
import os
import platform
import pwd
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from scheduled_tasks.checks import check_sandbox_os_layers
from scheduled_tasks.sandbox import oslayer
from scheduled_tasks.sandbox.isolation import Limits, OutputChannel, run_in_child
from scheduled_tasks.sandbox.oslayer import (
    available_layers,
    describe_layers,
    install_os_layers,
)

LIMITS = Limits(timeout=10, max_output_bytes=20000, max_memory_mb=256)
CI = os.environ.get("CI") == "true"
SANDBOX_USER = "nobody"
X86_64 = platform.machine() == "x86_64"


def need(condition: object, reason: str) -> None:
    """Skip when this machine cannot offer what the test proves; in CI, fail instead."""
    if not condition:
        if CI:
            pytest.fail(f"CI must offer this: {reason}")
        pytest.skip(reason)


def need_root() -> None:
    need(os.geteuid() == 0, "the uid drop needs a root runner")
    try:
        pwd.getpwnam(SANDBOX_USER)
    except KeyError:
        need(False, f"no user {SANDBOX_USER!r} on this machine")


def need_landlock(abi: int = 1) -> None:
    need(
        oslayer.landlock_abi() >= abi,
        f"Landlock ABI >= {abi} needed, the kernel offers {oslayer.landlock_abi()}",
    )


def need_seccomp() -> None:
    offer = available_layers(None)
    need(offer["seccomp"], f"seccomp unavailable: {offer.get('seccomp_error')}")


# --- running probes in a confined child ------------------------------------------------------


def outcome_of(probe: Callable[[], Any]) -> Any:
    """``"ok"`` (or the probe's JSON-able value), else the errno name / exception type."""
    try:
        value = probe()
    except OSError as exc:
        if exc.errno:
            return errno.errorcode.get(exc.errno, str(exc.errno))
        return type(exc).__name__
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    return "ok" if value is None else value


def _refuse(layer: str, message: str) -> None:
    raise RuntimeError(f"layer {layer} not installed: {message}")


def confined(
    probes: dict[str, Callable[[], Any]],
    *,
    layers: Sequence[str],
    writable: Sequence[str | Path] = (),
    user: str | None = None,
    before: Callable[[], object] | None = None,
) -> dict[str, Any]:
    """Run each probe in a forked child confined by ``layers``; return their outcomes.

    ``before`` runs in the child just before the layers (where the sandbox opens its database
    connection). Any layer that does not install fails the run: no silent half-confinement.
    """
    active: list[str] = []

    def prepare() -> None:
        if before is not None:
            before()
        active.extend(
            install_os_layers(
                writable_paths=[str(p) for p in writable],
                user=user,
                layers=layers,
                on_failure=_refuse,
            )
        )

    def target(channel: OutputChannel) -> tuple[str, str]:
        results = {name: outcome_of(probe) for name, probe in probes.items()}
        channel.write(json.dumps({"layers": active, **results}))
        return "completed", ""

    outcome = run_in_child(target, LIMITS, prepare=prepare)
    assert outcome.status == "completed", (outcome.error, outcome.output)
    return json.loads(outcome.output)


# --- probes ----------------------------------------------------------------------------------


def exec_true() -> None:
    os.execv("/bin/true", ["true"])  # noqa: S606 - if this works, the child becomes /bin/true: no result


def fork_child() -> None:
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    os.waitpid(pid, 0)


def run_subprocess() -> None:
    subprocess.run(["/bin/true"], check=True)


def new_socket() -> None:
    socket.socket(socket.AF_INET, socket.SOCK_STREAM).close()


def new_socketpair() -> None:
    a, b = socket.socketpair()
    a.close()
    b.close()


def start_thread() -> str:
    box: list[str] = []
    thread = threading.Thread(target=lambda: box.append("ran"))
    thread.start()
    thread.join()
    with ThreadPoolExecutor(max_workers=2) as pool:
        squares = list(pool.map(lambda n: n * n, range(4)))
    return f"{box[0]} {squares}"


def lazy_strptime() -> str:
    sys.modules.pop("_strptime", None)  # make datetime.strptime import it from disk again
    return datetime.strptime("2026-12-07", "%Y-%m-%d").date().isoformat()


def _unimported_extension() -> str | None:
    for name in ("_bz2", "_lzma", "_dbm", "_gdbm", "_curses", "audioop", "_crypt", "nis"):
        if name in sys.modules:
            continue
        spec = importlib.util.find_spec(name)
        if spec is not None and (spec.origin or "").endswith(".so"):
            return name
    return None


def lazy_extension_import(name: str | None) -> Callable[[], str]:
    def probe() -> str:
        if name is None:
            return "none left to import"
        importlib.import_module(name)
        return "imported"

    return probe


def read_file(path: str | Path) -> Callable[[], None]:
    def probe() -> None:
        with open(path, "rb") as f:
            f.read(1)

    return probe


def write_file(path: str | Path, mode: str = "ab") -> Callable[[], None]:
    def probe() -> None:
        with open(path, mode) as f:
            f.write(b"x")

    return probe


def parent_environ() -> None:
    with open(f"/proc/{os.getppid()}/environ", "rb") as f:
        f.read()


def parent_mem() -> None:
    with open(f"/proc/{os.getppid()}/mem", "rb"):
        pass


class _IOVec(ctypes.Structure):
    _fields_ = [("base", ctypes.c_void_p), ("len", ctypes.c_size_t)]


_LIBC = ctypes.CDLL(None, use_errno=True)
_MARKER = ctypes.create_string_buffer(b"parent memory", 16)


def _errno_raise(result: int) -> int:
    if result < 0:
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code))
    return result


def read_parent_memory() -> None:
    # The buffer lives at the same address in the parent (the child is a fork).
    local = ctypes.create_string_buffer(16)
    local_iov = _IOVec(ctypes.addressof(local), 16)
    remote_iov = _IOVec(ctypes.addressof(_MARKER), 16)
    _LIBC.process_vm_readv.restype = ctypes.c_ssize_t
    _errno_raise(
        _LIBC.process_vm_readv(
            os.getppid(), ctypes.byref(local_iov), 1, ctypes.byref(remote_iov), 1, 0
        )
    )


def ptrace_seize_parent() -> None:
    # PTRACE_SEIZE does not stop the parent; only ever run confined.
    _LIBC.ptrace.restype = ctypes.c_long
    _errno_raise(_LIBC.ptrace(0x4206, os.getppid(), None, None))


def raw_syscall(number: int, *args: int) -> Callable[[], None]:
    def probe() -> None:
        _LIBC.syscall.restype = ctypes.c_long
        _errno_raise(_LIBC.syscall(ctypes.c_long(number), *[ctypes.c_long(a) for a in args]))

    return probe


def unshare_user_namespace() -> None:
    _errno_raise(_LIBC.unshare(0x10000000))


def setuid_root() -> None:
    os.setuid(0)


def signal_parent() -> None:
    os.kill(os.getppid(), 0)


class ChildSockets:
    """Sockets the child makes for itself just before its layers: the sandbox closes every
    descriptor the child inherits, so nothing made in the parent survives the fork."""

    def __init__(self) -> None:
        self.made: dict[str, socket.socket] = {}
        self._plan: list[tuple[str, int, Any]] = []

    def add(self, name: str, family: int = socket.AF_INET, connect_to: Any = None) -> None:
        self._plan.append((name, family, connect_to))

    def make(self) -> None:  # the ``before`` hook, in the child
        for name, family, address in self._plan:
            sock = socket.socket(family, socket.SOCK_STREAM)
            sock.settimeout(5)
            if address is not None:
                sock.connect(address)  # like the database connection: opened before
            self.made[name] = sock

    def connect(self, name: str, address: Any) -> Callable[[], None]:
        def probe() -> None:
            self.made[name].connect(address)

        return probe


@pytest.fixture
def server():
    """A TCP server on 127.0.0.1 in the parent."""
    listening = socket.create_server(("127.0.0.1", 0))
    listening.settimeout(5)
    yield listening
    listening.close()


CLONE3 = 435  # the same number on every architecture


# --- seccomp ---------------------------------------------------------------------------------


def test_without_layers_the_probes_succeed(tmp_path, server):
    """The control: what the layers below refuse works in an unconfined child."""
    sockets = ChildSockets()
    sockets.add("client")
    result = confined(
        {
            "fork": fork_child,
            "subprocess": run_subprocess,
            "socket": new_socket,
            "connect": sockets.connect("client", server.getsockname()),
            "write_outside": write_file(tmp_path / "outside.txt", "wb"),
            "parent_environ": parent_environ,
            "clone3": raw_syscall(CLONE3, 0, 0),
            "thread": start_thread,
        },
        layers=(),
        before=sockets.make,
    )
    assert result == {
        "layers": [],
        "fork": "ok",
        "subprocess": "ok",
        "socket": "ok",
        "connect": "ok",
        "write_outside": "ok",
        "parent_environ": "ok",
        "clone3": "EINVAL",  # reached the kernel, which refused the empty argument
        "thread": "ran [0, 1, 4, 9]",
    }


def test_seccomp_refuses_programs_processes_sockets_and_tracing(server):
    need_seccomp()
    sockets = ChildSockets()
    sockets.add("client")
    # Stands for the database socket: connected before the layers, used after them.
    sockets.add("database", connect_to=server.getsockname())
    result = confined(
        {
            "exec": exec_true,
            "execveat": raw_syscall(322 if X86_64 else 281, -100, 0, 0, 0, 0),
            "fork": fork_child,
            "subprocess": run_subprocess,
            "socket": new_socket,
            "socketpair": new_socketpair,
            "connect": sockets.connect("client", server.getsockname()),
            "open_socket_still_works": lambda: sockets.made["database"].sendall(b"still here"),
            "process_vm_readv": read_parent_memory,
            "ptrace": ptrace_seize_parent,
            "unshare": unshare_user_namespace,
            "setuid": setuid_root,
            "clear_death_signal": lambda: _errno_raise(_LIBC.prctl(1, 0, 0, 0, 0)),
            "clone3": raw_syscall(CLONE3, 0, 0),
            "io_uring_setup": raw_syscall(425, 1, 0),
            "bpf": raw_syscall(321 if X86_64 else 280, 0, 0, 0),
            "thread": start_thread,
        },
        layers=("seccomp",),
        before=sockets.make,
    )
    accepted, _ = server.accept()
    with accepted:
        accepted.settimeout(5)
        assert accepted.recv(100) == b"still here"
    assert result == {
        "layers": ["no_new_privs", "seccomp"],
        "exec": "EPERM",
        "execveat": "EPERM",
        "fork": "EPERM",
        "subprocess": "EPERM",
        "socket": "EPERM",
        "socketpair": "EPERM",
        "connect": "EPERM",
        "open_socket_still_works": "ok",
        "process_vm_readv": "EPERM",
        "ptrace": "EPERM",
        "unshare": "EPERM",
        "setuid": "EPERM",
        "clear_death_signal": "EPERM",
        "clone3": "ENOSYS",  # glibc then falls back to clone, where threads pass the filter
        "io_uring_setup": "EPERM",
        "bpf": "EPERM",
        "thread": "ran [0, 1, 4, 9]",
    }


def _machine_code(code: bytes) -> Callable[[], int]:
    def probe() -> int:
        area = mmap.mmap(-1, 4096, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
        area.write(code)
        address = ctypes.addressof(ctypes.c_char.from_buffer(area))
        return ctypes.CFUNCTYPE(ctypes.c_long)(address)()

    return probe


@pytest.mark.skipif(not X86_64, reason="x86_64 machine code")
@pytest.mark.parametrize(
    "code",
    [
        pytest.param(bytes.fromhex("b814000000cd80c3"), id="i386-int80-getpid"),
        pytest.param(bytes.fromhex("b8270000400f05c3"), id="x32-getpid"),
    ],
)
def test_seccomp_kills_a_syscall_from_a_foreign_architecture(code):
    need_seccomp()

    def target(channel: OutputChannel) -> tuple[str, str]:
        channel.write(f"returned {_machine_code(code)()}")
        return "completed", ""

    def prepare() -> None:
        install_os_layers(writable_paths=[], user=None, layers=("seccomp",), on_failure=_refuse)

    outcome = run_in_child(target, LIMITS, prepare=prepare)
    assert outcome.status == "failed"
    assert "SIGSYS" in outcome.error
    assert outcome.output == ""


# --- Landlock --------------------------------------------------------------------------------


def test_landlock_leaves_only_the_writable_paths_writable(tmp_path):
    need_landlock()
    database = tmp_path / "app.sqlite3"
    database.write_bytes(b"")
    result = confined(
        {
            "write_inside": write_file(database),
            "create_beside": write_file(tmp_path / "new-file", "xb"),
            "write_outside": write_file(tmp_path / "outside.txt", "wb"),
            "write_tmp": write_file(f"/tmp/ticketproo-oslayer-{os.getpid()}", "wb"),
            "read_etc": read_file("/etc/passwd"),
            "read_project_file": read_file(
                str(Path(__file__).resolve().parent.parent / "manage.py")
            ),
            "read_library": read_file(os.__file__),
            "read_code": read_file(oslayer.__file__),
            "exec": exec_true,
            "subprocess": run_subprocess,
            "thread": start_thread,
        },
        layers=("landlock",),
        writable=[database, f"{database}-wal", f"{database}-shm"],  # not created yet: skipped
    )
    assert result == {
        "layers": ["no_new_privs", f"landlock abi {oslayer.landlock_abi()}"],
        "write_inside": "ok",
        "create_beside": "EACCES",
        "write_outside": "EACCES",
        "write_tmp": "EACCES",
        # Only the interpreter, its libraries and the project's packages are readable: not
        # /etc, nor the project directory (its database file, .env, logs).
        "read_etc": "EACCES",
        "read_project_file": "EACCES",
        "read_library": "ok",
        "read_code": "ok",
        "exec": "EACCES",  # no EXECUTE right anywhere: exec is closed here too
        "subprocess": "EACCES",
        "thread": "ran [0, 1, 4, 9]",
    }
    assert database.read_bytes() == b"x"


def test_landlock_keeps_lazy_imports_working():
    """Reading stays open, and loading a C extension needs no EXECUTE right (mmap, not exec)."""
    need_landlock()
    extension = _unimported_extension()
    result = confined(
        {"strptime": lazy_strptime, "extension": lazy_extension_import(extension)},
        layers=("landlock",),
    )
    assert result["strptime"] == "2026-12-07"
    assert result["extension"] in {"imported", "none left to import"}


def test_landlock_refuses_tcp(server):
    need_landlock(4)
    sockets = ChildSockets()
    sockets.add("client")
    sockets.add("binder")
    result = confined(
        {
            "connect": sockets.connect("client", server.getsockname()),
            "bind": lambda: sockets.made["binder"].bind(("127.0.0.1", 0)),
        },
        layers=("landlock",),
        before=sockets.make,
    )
    assert (result["connect"], result["bind"]) == ("EACCES", "EACCES")


def test_landlock_scopes_signals_and_abstract_unix_sockets():
    need_landlock(6)
    name = f"\0ticketproo-oslayer-{os.getpid()}"
    listening = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listening.bind(name)
    listening.listen(1)
    sockets = ChildSockets()
    sockets.add("client", socket.AF_UNIX)
    try:
        result = confined(
            {"signal_parent": signal_parent, "abstract_unix": sockets.connect("client", name)},
            layers=("landlock",),
            before=sockets.make,
        )
    finally:
        listening.close()
    assert (result["signal_parent"], result["abstract_unix"]) == ("EPERM", "EPERM")


def test_landlock_closes_the_runner_environ_to_the_same_uid():
    """No uid drop here: the child runs as the same user as the parent, whoever that is.

    The parent can still read the child's /proc/<pid>/environ; the landlocked child cannot read
    the parent's, nor its memory. Landlock's own ptrace scoping only covers the ATTACH-mode
    accesses (mem, ptrace, process_vm_readv) on current kernels, so the layer leaves /proc out
    of its read rules altogether: environ, maps and cmdline of every process are closed."""
    need_landlock()
    listening = socket.create_server(("127.0.0.1", 0))
    listening.settimeout(5)
    sockets = ChildSockets()
    sockets.add("handshake", connect_to=listening.getsockname())  # before the layers
    seen: dict[str, Any] = {}

    def parent_side() -> None:
        with contextlib.suppress(OSError):
            conn, _ = listening.accept()
            with conn:
                conn.settimeout(5)
                pid = int(conn.recv(32))
                seen["child_environ"] = outcome_of(read_file(f"/proc/{pid}/environ"))
                conn.sendall(b"g")

    def wait_for_parent() -> str:
        sock = sockets.made["handshake"]
        sock.sendall(str(os.getpid()).encode())
        return "go" if sock.recv(1) == b"g" else "parent never answered"

    helper = threading.Thread(target=parent_side)
    helper.start()
    try:
        result = confined(
            {
                "handshake": wait_for_parent,
                "parent_environ": parent_environ,
                "parent_cmdline": lambda: read_file(f"/proc/{os.getppid()}/cmdline")(),
                "own_proc": read_file("/proc/self/status"),
                "parent_mem": parent_mem,
                "process_vm_readv": read_parent_memory,
                "ptrace": ptrace_seize_parent,
            },
            layers=("landlock",),
            before=sockets.make,
        )
    finally:
        helper.join(10)
        listening.close()
    assert seen == {"child_environ": "ok"}
    assert result["handshake"] == "go"
    assert result["parent_environ"] == "EACCES"
    assert result["parent_cmdline"] == "EACCES"
    assert result["own_proc"] == "EACCES"
    assert result["parent_mem"] == "EACCES"
    assert result["process_vm_readv"] == "EPERM"
    assert result["ptrace"] == "EPERM"


# --- uid drop --------------------------------------------------------------------------------


def test_uid_drop_becomes_the_sandbox_user_and_rearms_the_parent_death_signal(tmp_path):
    need_root()
    entry = pwd.getpwnam(SANDBOX_USER)
    root_file = tmp_path / "root-only.txt"
    root_file.write_text("secret")
    os.chmod(root_file, 0o644)
    os.chmod(tmp_path, 0o755)  # noqa: S103 - only the file itself keeps nobody out

    def pdeathsig() -> int:
        value = ctypes.c_int()
        _errno_raise(_LIBC.prctl(2, ctypes.byref(value), 0, 0, 0))  # PR_GET_PDEATHSIG
        return value.value

    result = confined(
        {
            "ids": lambda: [list(os.getresuid()), list(os.getresgid()), os.getgroups()],
            "pdeathsig": pdeathsig,
            "write_root_file": write_file(root_file),
            "parent_environ": parent_environ,
            "signal_parent": signal_parent,
            # Non-dumpable after setuid: even its own /proc/self/environ is closed (fine).
            "own_environ": read_file("/proc/self/environ"),
            "setuid_back": setuid_root,
        },
        layers=("uid",),
        user=SANDBOX_USER,
    )
    assert result == {
        "layers": [f"uid {SANDBOX_USER}"],
        "ids": [[entry.pw_uid] * 3, [entry.pw_gid] * 3, []],
        "pdeathsig": signal.SIGKILL,
        "write_root_file": "EACCES",
        "parent_environ": "EACCES",
        "signal_parent": "EPERM",
        "own_environ": "EACCES",
        "setuid_back": "EPERM",
    }


@pytest.mark.parametrize(
    ("user", "message"),
    [("ticketproo-no-such-user", "does not exist"), ("root", "is root")],
)
def test_a_missing_sandbox_user_fails_the_run_instead_of_running_as_root(user, message):
    need_root()
    ran: list[str] = []

    def target(channel: OutputChannel) -> tuple[str, str]:
        ran.append("yes")
        channel.write(f"ran as uid {os.getuid()}")
        return "completed", ""

    def prepare() -> None:
        install_os_layers(writable_paths=[], user=user)

    outcome = run_in_child(target, LIMITS, prepare=prepare)
    assert outcome.status == "failed"
    assert "OSLayerError" in outcome.error
    assert message in outcome.error
    assert outcome.output == ""


def test_a_runner_that_is_not_root_keeps_its_user_and_says_so():
    """Without root there is nothing to drop to: reported, not fatal (check W103/W104 only
    concern a root runner)."""
    told: list[str] = []

    def target(channel: OutputChannel) -> tuple[str, str]:
        channel.write(json.dumps(told))
        return "completed", ""

    def prepare() -> None:
        os.geteuid = lambda: 1000  # the child's own os module: pretend not to be root
        active = install_os_layers(
            writable_paths=[],
            user=SANDBOX_USER,
            layers=("uid",),
            on_failure=lambda layer, message: told.append(f"{layer}: {message}"),
        )
        told.append(f"active {active}")

    outcome = run_in_child(target, LIMITS, prepare=prepare)
    assert outcome.status == "completed", outcome.error
    assert json.loads(outcome.output) == [
        "uid: not root (euid 1000): the runner's user is kept",
        "active []",
    ]


# --- everything together ---------------------------------------------------------------------


def _stdlib_readable_by_sandbox_user() -> None:
    # Where the interpreter lives is the machine's, not something the project can install
    # (this one's is under /root): a skip with the reason, in CI too. W105 reports it.
    unreadable = oslayer.python_unreadable_by(SANDBOX_USER)
    if unreadable:
        pytest.skip(
            f"{SANDBOX_USER} cannot read {unreadable}: this interpreter lives where the "
            "sandbox user cannot import from it (a deployment must not do that; W105 says so)"
        )


def test_all_layers_together():
    need_root()
    need_landlock()
    need_seccomp()
    result = confined(
        {
            "thread": start_thread,
            "exec": exec_true,
            "fork": fork_child,
            "socket": new_socket,
            "parent_environ": parent_environ,
            "write_tmp": write_file(f"/tmp/ticketproo-oslayer-{os.getpid()}", "wb"),
        },
        layers=oslayer.LAYERS,
        user=SANDBOX_USER,
    )
    assert result == {
        "layers": [
            "no_new_privs",
            f"uid {SANDBOX_USER}",
            f"landlock abi {oslayer.landlock_abi()}",
            "seccomp",
        ],
        "thread": "ran [0, 1, 4, 9]",
        "exec": "EPERM",
        "fork": "EPERM",
        "socket": "EPERM",
        "parent_environ": "EACCES",
        "write_tmp": "EACCES",
    }


def test_the_runner_still_stops_a_confined_child():
    """Landlock's signal scope and the uid drop bind the child, not its parent: the timeout
    still kills it."""
    need_root()
    need_landlock()
    need_seccomp()

    def target(channel: OutputChannel) -> tuple[str, str]:
        channel.write("looping\n")
        while True:
            pass

    def prepare() -> None:
        install_os_layers(writable_paths=[], user=SANDBOX_USER, on_failure=_refuse)

    outcome = run_in_child(
        target, Limits(timeout=0.5, max_output_bytes=100, max_memory_mb=64), prepare=prepare
    )
    assert (outcome.status, outcome.output) == ("timeout", "looping\n")


def test_lazy_imports_still_work_after_the_uid_drop():
    """datetime.strptime imports _strptime on first use, i.e. inside the snippet's process:
    the sandbox user must be able to read the interpreter's files."""
    need_root()
    need_landlock()
    need_seccomp()
    _stdlib_readable_by_sandbox_user()
    extension = _unimported_extension()
    result = confined(
        {"strptime": lazy_strptime, "extension": lazy_extension_import(extension)},
        layers=oslayer.LAYERS,
        user=SANDBOX_USER,
    )
    assert result["strptime"] == "2026-12-07"
    assert result["extension"] in {"imported", "none left to import"}


def test_strptime_works_after_the_uid_drop_as_the_parent_preloads_it():
    """Even where the sandbox user cannot read the interpreter (W105), datetime.strptime
    works: oslayer imports _strptime in the parent."""
    need_root()
    need_landlock()
    need_seccomp()
    result = confined(
        {"strptime": lambda: datetime.strptime("2026-12-07", "%Y-%m-%d").date().isoformat()},
        layers=oslayer.LAYERS,
        user=SANDBOX_USER,
    )
    assert result["strptime"] == "2026-12-07"


def _sqlite_database(directory: Path, rows: int = 0) -> Path:
    """A root-owned WAL database in a root-only directory.

    The parent closes its own connection before the fork: SQLite shares one lock record per
    file among a process's connections, and the sandbox closes every inherited descriptor
    except those of Django's databases, so a foreign connection would break the child's
    locking ("locking protocol")."""
    directory.mkdir()
    os.chmod(directory, 0o700)  # the sandbox user cannot even reach it by path
    path = directory / "app.sqlite3"
    with contextlib.closing(sqlite3.connect(path, isolation_level=None)) as setup:
        setup.execute("PRAGMA journal_mode=WAL")
        setup.execute("CREATE TABLE t (x INTEGER, blob BLOB)")
        setup.execute("INSERT INTO t VALUES (0, NULL)")
        setup.execute("BEGIN")
        setup.executemany("INSERT INTO t VALUES (?, randomblob(200))", [(i,) for i in range(rows)])
        setup.execute("COMMIT")
    os.chmod(path, 0o644)
    return path


def _count_and_check(path: Path) -> tuple[int, str]:
    with contextlib.closing(sqlite3.connect(path)) as conn:
        count = conn.execute("SELECT count(*) FROM t").fetchone()[0]
        return count, conn.execute("PRAGMA integrity_check").fetchone()[0]


def _sandbox_connection(path: Path, holder: dict[str, sqlite3.Connection], **pragmas: str):
    def before() -> None:
        # What the sandbox child does before the layers: open its own connection the way
        # settings.py configures it (WAL, synchronous NORMAL) and touch the database, so the
        # database, -wal and -shm files are open.
        conn = sqlite3.connect(path, timeout=2, isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        for name, value in pragmas.items():
            conn.execute(f"PRAGMA {name}={value}")
        conn.execute("SELECT count(*) FROM t").fetchone()
        holder["conn"] = conn

    return before


def _writable(path: Path) -> list[str]:
    return [str(path) + suffix for suffix in ("", "-wal", "-shm", "-journal")]


def test_sqlite_connection_opened_before_confinement_keeps_writing_as_the_sandbox_user(
    tmp_path,
):
    """Root-owned database in a 0700 directory: the descriptors opened before the drop (the
    database, -wal, -shm) keep working, checkpoints included; a new connection does not."""
    need_root()
    need_landlock()
    need_seccomp()
    path = _sqlite_database(tmp_path / "db")
    holder: dict[str, sqlite3.Connection] = {}

    def insert() -> None:
        conn = holder["conn"]
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("INSERT INTO t VALUES (1, NULL)")
        conn.execute("COMMIT")

    def bulk_insert() -> None:  # grows the WAL and the -shm index well past their first pages
        conn = holder["conn"]
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany("INSERT INTO t VALUES (?, randomblob(100))", [(i,) for i in range(5000)])
        conn.execute("COMMIT")

    def checkpoint() -> list[int]:
        return list(holder["conn"].execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone())

    def big_sort() -> int:
        conn = holder["conn"]
        conn.execute("PRAGMA cache_size=-64")
        return len(conn.execute("SELECT x, blob FROM t ORDER BY randomblob(8)").fetchall())

    def new_connection() -> None:
        sqlite3.connect(path, timeout=0.2).execute("INSERT INTO t VALUES (2, NULL)")

    def close() -> None:
        holder["conn"].close()

    result = confined(
        {
            "uid": os.getuid,
            "insert": insert,
            "bulk_insert": bulk_insert,
            "checkpoint": checkpoint,
            "big_sort": big_sort,
            "new_connection": new_connection,
            "close": close,
        },
        layers=oslayer.LAYERS,
        user=SANDBOX_USER,
        writable=_writable(path),
        before=_sandbox_connection(path, holder, temp_store="MEMORY"),
    )
    assert result == {
        "layers": [
            "no_new_privs",
            f"uid {SANDBOX_USER}",
            f"landlock abi {oslayer.landlock_abi()}",
            "seccomp",
        ],
        "uid": pwd.getpwnam(SANDBOX_USER).pw_uid,
        "insert": "ok",
        "bulk_insert": "ok",
        "checkpoint": [0, 0, 0],
        "big_sort": 5002,
        "new_connection": "OperationalError: unable to open database file",
        "close": "ok",
    }
    # The child, last to close, could not delete the -wal/-shm files (root's directory): the
    # next connection simply reuses them.
    assert _count_and_check(path) == (5002, "ok")


def test_sqlite_temp_files_need_temp_store_memory_under_landlock(tmp_path):
    """A sort bigger than the page cache spills to a temp file in /tmp, which Landlock closes:
    the sandbox's connection must use PRAGMA temp_store=MEMORY (bounded by the memory limit)."""
    need_landlock()
    with sqlite3.connect(":memory:") as probe:
        options = {row[0] for row in probe.execute("PRAGMA compile_options")}
    if {"TEMP_STORE=2", "TEMP_STORE=3"} & options:
        pytest.skip("this SQLite keeps temp files in memory anyway")
    path = _sqlite_database(tmp_path / "db", rows=5000)

    def big_sort(holder: dict[str, sqlite3.Connection]) -> Callable[[], int]:
        def probe() -> int:
            conn = holder["conn"]
            conn.execute("PRAGMA cache_size=-64")
            return len(conn.execute("SELECT x, blob FROM t ORDER BY randomblob(8)").fetchall())

        return probe

    results = {}
    for temp_store in ("DEFAULT", "MEMORY"):
        holder: dict[str, sqlite3.Connection] = {}
        results[temp_store] = confined(
            {"big_sort": big_sort(holder)},
            layers=("landlock",),
            writable=_writable(path),
            before=_sandbox_connection(path, holder, temp_store=temp_store),
        )["big_sort"]
    assert results == {
        "DEFAULT": "OperationalError: unable to open database file",
        "MEMORY": 5001,
    }


def test_sqlite_without_wal_cannot_write_under_landlock(tmp_path):
    """A rollback journal is a new file beside the database for each write transaction, which
    Landlock refuses: the sandboxed database must be in WAL mode (settings.py sets it)."""
    need_landlock()
    path = _sqlite_database(tmp_path / "db")
    with contextlib.closing(sqlite3.connect(path)) as conn:
        conn.execute("PRAGMA journal_mode=DELETE")
    holder: dict[str, sqlite3.Connection] = {}

    def before() -> None:
        holder["conn"] = sqlite3.connect(path, isolation_level=None)
        holder["conn"].execute("SELECT count(*) FROM t").fetchone()

    result = confined(
        {"insert": lambda: holder["conn"].execute("INSERT INTO t VALUES (1, NULL)")},
        layers=("landlock",),
        writable=_writable(path),
        before=before,
    )
    assert result["insert"] == "OperationalError: attempt to write a readonly database"


# --- what the machine offers, and the checks -------------------------------------------------


def test_unknown_layer_names_are_a_programming_error():
    with pytest.raises(ValueError, match="unknown OS layers"):
        install_os_layers(writable_paths=[], user=None, layers=("no_new_privs", "selinux"))


def test_available_layers_and_the_log_line_describe_this_machine():
    offer = available_layers(SANDBOX_USER)
    line = describe_layers(SANDBOX_USER)
    assert line.startswith("sandbox OS layers: ")
    assert ("seccomp" in line) == bool(offer["seccomp"])
    assert (f"landlock {offer['landlock']}" in line) == bool(offer["landlock"])
    assert (f"uid {SANDBOX_USER}" in line) == bool(offer["root"] and offer["sandbox_user"])
    assert available_layers("ticketproo-no-such-user")["sandbox_user"] is False
    assert available_layers("root")["sandbox_user"] is False


def test_the_log_line_names_every_layer_on_a_fully_equipped_machine():
    need_root()
    need_landlock()
    need_seccomp()
    abi = oslayer.landlock_abi()
    assert describe_layers(SANDBOX_USER) == (
        f"sandbox OS layers: no_new_privs, uid {SANDBOX_USER}, landlock abi {abi}, seccomp"
    )


FULL = {
    "no_new_privs": True,
    "seccomp": True,
    "landlock": "abi 7",
    "root": True,
    "sandbox_user": "nobody",
}


@pytest.mark.parametrize(
    ("offer", "sandbox_user", "expected"),
    [
        (FULL, "nobody", []),
        ({**FULL, "seccomp": False, "seccomp_error": "no libseccomp"}, "nobody", ["W101"]),
        ({**FULL, "landlock": False}, "nobody", ["W102"]),
        ({**FULL, "sandbox_user": False}, None, ["W103"]),
        ({**FULL, "sandbox_user": False}, "ghost", ["W104"]),
        ({**FULL, "root": False, "sandbox_user": False}, "ghost", []),  # no drop without root
        ({**FULL, "seccomp": False, "landlock": False}, "nobody", ["W101", "W102"]),
    ],
)
def test_check_warns_about_each_missing_layer(settings, monkeypatch, offer, sandbox_user, expected):
    settings.SCHEDULED_TASKS = {**settings.SCHEDULED_TASKS, "SANDBOX_USER": sandbox_user}
    monkeypatch.setattr(oslayer, "available_layers", lambda user: dict(offer))
    monkeypatch.setattr(oslayer, "python_unreadable_by", lambda user: [])
    assert [w.id for w in check_sandbox_os_layers()] == [
        f"scheduled_tasks.{code}" for code in expected
    ]


def test_check_warns_when_the_sandbox_user_cannot_read_python(settings, monkeypatch):
    settings.SCHEDULED_TASKS = {**settings.SCHEDULED_TASKS, "SANDBOX_USER": "nobody"}
    monkeypatch.setattr(oslayer, "available_layers", lambda user: dict(FULL))
    monkeypatch.setattr(oslayer, "python_unreadable_by", lambda user: ["/root/.pyenv/lib"])
    warnings = check_sandbox_os_layers()
    assert [w.id for w in warnings] == ["scheduled_tasks.W105"]
    assert "/root/.pyenv/lib" in warnings[0].msg


def test_this_machine_passes_the_os_layer_checks():
    need_landlock()
    need_seccomp()
    # Every layer is offered; the one warning possible here is about where Python lives.
    expected = []
    if os.geteuid() == 0 and oslayer.python_unreadable_by(SANDBOX_USER):
        expected = ["scheduled_tasks.W105"]
    assert [w.id for w in check_sandbox_os_layers()] == expected
