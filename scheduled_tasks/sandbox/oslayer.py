"""OS layers in the snippet's process: no_new_privs, a uid drop, Landlock and seccomp.

The Python layers (RestrictedPython, guards, vetted namespace) decide what a snippet may *say*;
these layers decide what the process may *do* if one of them is ever bypassed. They are
installed by :func:`install_os_layers` in the forked child, after its database connection is
open and before the snippet runs, in this order:

1. ``no_new_privs`` - no setuid/file-capability gains through exec; lets unprivileged
   processes load Landlock and seccomp.
2. uid drop - when the runner is root, become ``SANDBOX_USER`` (``nobody``): no access to the
   runner's files, to ``/proc/<runner>/environ`` or to signals against it; the interpreter
   and the project must be readable by that user (lazy imports). Changing
   credentials clears ``PR_SET_PDEATHSIG``, so it is re-armed here. The process also becomes
   non-dumpable: it can no longer read its own ``/proc/self/{environ,fd,maps,mem...}``.
   A configured user that does not exist fails the run (never runs as root by accident).
3. Landlock - the filesystem read-only (read files, list directories; no execute) except
   ``/proc``, which is not readable at all; writes only beneath ``writable_paths`` (the
   SQLite database and its -wal/-shm/-journal files that exist: the database must be in WAL
   mode, a rollback journal cannot be created); no TCP bind/connect (ABI >= 4); no abstract
   unix sockets or signals out of the domain (ABI >= 6). Landlock itself refuses ptrace,
   ``/proc/<pid>/mem`` and process_vm_readv against processes outside the domain, but not
   READ-mode ``/proc`` access (``/proc/<runner>/environ`` to the same uid): hence no /proc.
   Files opened *before* this point (the database, the output pipe) keep working.
4. seccomp (libseccomp via ``pyseccomp``), loaded last: default allow, EPERM for exec, new
   processes (``clone`` without ``CLONE_THREAD``: threads still work), new sockets, ptrace
   and cross-process memory access, namespaces and mounts, kernel keyrings/modules/bpf/perf,
   io_uring, credential changes. ``clone3`` gets ENOSYS so glibc falls back to ``clone``.
   prctl may not clear the death signal or make the process dumpable again. A syscall from
   a foreign architecture (int 0x80, x32) kills the process.

The seccomp filter is built and compiled to BPF once, when this module is imported (import it
in the runner, not per run); the child only loads the ready program. Installing all layers
costs about half a millisecond per run (most of it copy-on-write page faults of the fresh
fork touching Python objects for the first time).
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import logging
import os
import signal
import sys
from collections.abc import Callable, Collection, Sequence
from stat import S_ISDIR
from typing import Any

try:
    import pwd
except ImportError:  # not POSIX: sandbox/platform.py refuses to run snippets here
    pwd = None  # type: ignore[assignment]

log = logging.getLogger("scheduled_tasks.sandbox")

LAYERS = ("no_new_privs", "uid", "landlock", "seccomp")


class OSLayerError(RuntimeError):
    """A layer that must not be skipped could not be installed: the run fails."""


# --- libc -------------------------------------------------------------------------------------

try:
    _libc: Any = ctypes.CDLL(None, use_errno=True)
    # syscall(2) is variadic; six long arguments is how every Linux ABI passes integers and
    # pointers to it, and fixed argtypes spare ctypes the per-call guessing.
    _syscall = _libc.syscall
    _syscall.restype = ctypes.c_long
    _syscall.argtypes = [ctypes.c_long] * 6
    _prctl = _libc.prctl
    _prctl.restype = ctypes.c_int
    _prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
except (OSError, AttributeError):  # not Linux/glibc: no layer is available
    _libc = None

_PR_SET_PDEATHSIG = 1
_PR_SET_DUMPABLE = 4
_PR_SET_SECCOMP = 22
_PR_SET_NO_NEW_PRIVS = 38
_SECCOMP_MODE_FILTER = 2


def _check(result: int, what: str) -> int:
    if result < 0:
        code = ctypes.get_errno()
        raise OSError(code, f"{what}: {os.strerror(code)}")
    return result


# --- Landlock ---------------------------------------------------------------------------------

# Same numbers on every architecture that has them (asm-generic numbering since 5.13).
_SYS_LANDLOCK_CREATE_RULESET = 444
_SYS_LANDLOCK_ADD_RULE = 445
_SYS_LANDLOCK_RESTRICT_SELF = 446
_LANDLOCK_CREATE_RULESET_VERSION = 1
_LANDLOCK_RULE_PATH_BENEATH = 1

FS_EXECUTE = 1 << 0
FS_WRITE_FILE = 1 << 1
FS_READ_FILE = 1 << 2
FS_READ_DIR = 1 << 3
FS_REMOVE_DIR = 1 << 4
FS_REMOVE_FILE = 1 << 5
FS_MAKE_CHAR = 1 << 6
FS_MAKE_DIR = 1 << 7
FS_MAKE_REG = 1 << 8
FS_MAKE_SOCK = 1 << 9
FS_MAKE_FIFO = 1 << 10
FS_MAKE_BLOCK = 1 << 11
FS_MAKE_SYM = 1 << 12
FS_REFER = 1 << 13  # ABI 2
FS_TRUNCATE = 1 << 14  # ABI 3
FS_IOCTL_DEV = 1 << 15  # ABI 5
NET_BIND_TCP = 1 << 0  # ABI 4
NET_CONNECT_TCP = 1 << 1  # ABI 4
SCOPE_ABSTRACT_UNIX_SOCKET = 1 << 0  # ABI 6
SCOPE_SIGNAL = 1 << 1  # ABI 6
# ABI 7 adds audit-logging flags to landlock_restrict_self, no new access rights.

_O_PATH = getattr(os, "O_PATH", 0o10000000)


def _fs_rights(abi: int) -> int:
    """Every filesystem right the kernel's ABI knows: all of them are handled (denied unless
    a rule grants them)."""
    rights = (1 << 13) - 1  # EXECUTE .. MAKE_SYM (ABI 1)
    if abi >= 2:
        rights |= FS_REFER
    if abi >= 3:
        rights |= FS_TRUNCATE
    if abi >= 5:
        rights |= FS_IOCTL_DEV
    return rights


_READ_ONLY = FS_READ_FILE | FS_READ_DIR  # no EXECUTE: exec is closed here too
_WRITABLE_DIR = (
    FS_READ_FILE
    | FS_READ_DIR
    | FS_WRITE_FILE
    | FS_TRUNCATE
    | FS_REMOVE_FILE
    | FS_REMOVE_DIR
    | FS_MAKE_REG
    | FS_MAKE_DIR
    | FS_REFER
)
# A regular file takes file rights only (the kernel refuses directory rights there).
_WRITABLE_FILE = FS_READ_FILE | FS_WRITE_FILE | FS_TRUNCATE


def _query_landlock_abi() -> int:
    if _libc is None or not sys.platform.startswith("linux"):
        return 0
    result = _syscall(_SYS_LANDLOCK_CREATE_RULESET, 0, 0, _LANDLOCK_CREATE_RULESET_VERSION, 0, 0)
    return max(int(result), 0)


_LANDLOCK_ABI = _query_landlock_abi()


def landlock_abi() -> int:
    """The Landlock ABI version of the running kernel; 0 when Landlock is unavailable."""
    return _LANDLOCK_ABI


class _RulesetAttr(ctypes.Structure):
    _fields_ = [
        ("handled_access_fs", ctypes.c_uint64),
        ("handled_access_net", ctypes.c_uint64),  # ABI 4
        ("scoped", ctypes.c_uint64),  # ABI 6
    ]


class _PathBeneathAttr(ctypes.Structure):
    _pack_ = 1
    _fields_ = [("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]


# Built once in the parent; the child only fills in and passes addresses.
_HANDLED_FS = _fs_rights(_LANDLOCK_ABI)
_RULESET = _RulesetAttr(
    _HANDLED_FS,
    NET_BIND_TCP | NET_CONNECT_TCP if _LANDLOCK_ABI >= 4 else 0,
    SCOPE_ABSTRACT_UNIX_SOCKET | SCOPE_SIGNAL if _LANDLOCK_ABI >= 6 else 0,
)
# The struct grew with the ABI; pass only the fields this kernel knows.
_RULESET_SIZE = 24 if _LANDLOCK_ABI >= 6 else 16 if _LANDLOCK_ABI >= 4 else 8
_RULESET_ADDRESS = ctypes.addressof(_RULESET)
_PATH_RULE = _PathBeneathAttr(0, -1)
_PATH_RULE_ADDRESS = ctypes.addressof(_PATH_RULE)


def _add_path_rule(ruleset_fd: int, path: str, allowed: int) -> None:
    fd = os.open(path, _O_PATH | os.O_CLOEXEC)
    try:
        _PATH_RULE.allowed_access = allowed & _HANDLED_FS
        _PATH_RULE.parent_fd = fd
        _check(
            _syscall(
                _SYS_LANDLOCK_ADD_RULE,
                ruleset_fd,
                _LANDLOCK_RULE_PATH_BENEATH,
                _PATH_RULE_ADDRESS,
                0,
                0,
            ),
            f"landlock_add_rule({path})",
        )
    finally:
        os.close(fd)


# What a confined snippet's process may read: the interpreter, its libraries and the project's
# code, nothing else. Not /proc (Landlock's ptrace scoping stops ATTACH-mode access to other
# processes, but on current kernels — seen on 6.18 — not READ-mode access: /proc/<runner>/environ
# stays readable to the same uid), not the project directory itself (the SQLite database file,
# .env files, logs), not /etc beyond what the C library needs, not /tmp, /home or /root.
SYSTEM_READABLE = (
    "/usr", "/lib", "/lib32", "/lib64", "/libx32", "/etc/localtime", "/etc/ld.so.cache",
    "/dev/null", "/dev/zero", "/dev/urandom",
)  # fmt: skip


def _code_roots() -> set[str]:
    """The interpreter's prefixes and every sys.path entry; a sys.path entry that is a project
    directory (it holds more than code) is replaced by its Python package directories."""
    roots = {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix}
    for entry in sys.path:
        path = os.path.abspath(entry or os.curdir)
        if not os.path.isdir(path):
            continue
        if "site-packages" in path or "dist-packages" in path or path.startswith(sys.base_prefix):
            roots.add(path)
            continue
        # A project root: only its packages (a directory with __init__.py) are code.
        with contextlib.suppress(OSError):
            for name in os.listdir(path):
                package = os.path.join(path, name)
                if os.path.isfile(os.path.join(package, "__init__.py")):
                    roots.add(package)
    return roots


def _readable_roots() -> list[tuple[str, int]]:
    """``(path, rights)`` for every readable hierarchy; computed once, in the parent."""
    roots = []
    for path in sorted(_code_roots() | set(SYSTEM_READABLE)):
        try:
            is_dir = S_ISDIR(os.stat(path).st_mode)
        except OSError:  # absent here, or a dangling symlink
            continue
        roots.append((path, _READ_ONLY if is_dir else FS_READ_FILE))
    return roots


_READABLE_ROOTS = _readable_roots() if sys.platform.startswith("linux") else []


def _landlock_ruleset(writable_paths: Sequence[str], report: Callable[[str, str], object]) -> int:
    """A ruleset fd: everything but /proc readable, ``writable_paths`` writable. Built before
    the uid drop, so paths only root can reach (a 0700 directory) still get their rule."""
    ruleset_fd = _check(
        _syscall(_SYS_LANDLOCK_CREATE_RULESET, _RULESET_ADDRESS, _RULESET_SIZE, 0, 0, 0),
        "landlock_create_ruleset",
    )
    try:
        for path, rights in _READABLE_ROOTS:
            with contextlib.suppress(FileNotFoundError):
                _add_path_rule(ruleset_fd, path, rights)
        for path in writable_paths:
            try:
                mode = os.stat(path).st_mode
                _add_path_rule(ruleset_fd, path, _WRITABLE_DIR if S_ISDIR(mode) else _WRITABLE_FILE)
            except FileNotFoundError:
                continue  # not created yet: nothing to allow
            except OSError as exc:  # stays read-only; the rest of the layer still applies
                report("landlock", f"{path} stays read-only: {exc}")
    except BaseException:
        os.close(ruleset_fd)
        raise
    return ruleset_fd


def _enforce_landlock(ruleset_fd: int) -> None:
    try:
        _check(
            _syscall(_SYS_LANDLOCK_RESTRICT_SELF, ruleset_fd, 0, 0, 0, 0),
            "landlock_restrict_self",
        )
    finally:
        os.close(ruleset_fd)


# --- seccomp ----------------------------------------------------------------------------------

try:
    import pyseccomp as _seccomp
except Exception as exc:
    _seccomp = None
    _SECCOMP_IMPORT_ERROR = f"{type(exc).__name__}: {exc}"
else:
    _SECCOMP_IMPORT_ERROR = ""

_CLONE_THREAD = 0x00010000
_CLONE_NAMESPACES = (
    0x00020000,  # CLONE_NEWNS
    0x02000000,  # CLONE_NEWCGROUP
    0x04000000,  # CLONE_NEWUTS
    0x08000000,  # CLONE_NEWIPC
    0x10000000,  # CLONE_NEWUSER
    0x20000000,  # CLONE_NEWPID
    0x40000000,  # CLONE_NEWNET
)

# Syscalls answered with EPERM. Names unknown to this libseccomp/architecture are skipped.
DENIED_SYSCALLS: tuple[str, ...] = (
    # programs and processes (clone is filtered by its flags below)
    "execve",
    "execveat",
    "fork",
    "vfork",
    # other processes' memory
    "ptrace",
    "process_vm_readv",
    "process_vm_writev",
    "pidfd_getfd",
    "kcmp",
    # new sockets (an already-open database socket keeps read/write/sendto/recvfrom/poll)
    "socket",
    "socketpair",
    "connect",
    "bind",
    "listen",
    "accept",
    "accept4",
    # mounts, namespaces, chroot
    "mount",
    "umount2",
    "pivot_root",
    "chroot",
    "unshare",
    "setns",
    "fsopen",
    "fsconfig",
    "fsmount",
    "fspick",
    "move_mount",
    "open_tree",
    "mount_setattr",
    "open_by_handle_at",
    # kernel keyrings, modules, kexec, bpf, perf, userfaultfd, io_uring, personality
    "keyctl",
    "add_key",
    "request_key",
    "init_module",
    "finit_module",
    "delete_module",
    "kexec_load",
    "kexec_file_load",
    "bpf",
    "perf_event_open",
    "userfaultfd",
    "io_uring_setup",
    "io_uring_enter",
    "io_uring_register",
    "personality",
    # credentials (after the uid drop there is nothing left to change)
    "setuid",
    "setgid",
    "setreuid",
    "setregid",
    "setresuid",
    "setresgid",
    "setfsuid",
    "setfsgid",
    "setgroups",
    "capset",
    # machine administration (root-only anyway; closed for a runner that stays root)
    "reboot",
    "swapon",
    "swapoff",
    "syslog",
    "acct",
    "quotactl",
    "settimeofday",
    "clock_settime",
    "clock_adjtime",
    "adjtimex",
    "sethostname",
    "setdomainname",
    "iopl",
    "ioperm",
)


def _build_seccomp_program() -> bytes:
    """The filter compiled to classic BPF (a ``struct sock_filter`` array)."""
    assert _seccomp is not None
    flt = _seccomp.SyscallFilter(_seccomp.ALLOW)
    # Foreign architectures (i386 via int 0x80; x32 is rejected by libseccomp's x86_64
    # program) must not slip past the rules: kill the process.
    flt.set_attr(_seccomp.Attr.ACT_BADARCH, _seccomp.KILL_PROCESS)
    eperm = _seccomp.ERRNO(errno.EPERM)
    for name in DENIED_SYSCALLS:
        number = _seccomp.resolve_syscall(_seccomp.Arch.NATIVE, name)
        if number < 0:  # unknown here (e.g. iopl on arm64)
            continue
        flt.add_rule(eperm, number)
    # clone: threads (CLONE_THREAD) are fine, anything else is a new process...
    flt.add_rule(eperm, "clone", _seccomp.Arg(0, _seccomp.MASKED_EQ, _CLONE_THREAD, 0))
    # ... and a thread must not enter new namespaces either.
    for flag in _CLONE_NAMESPACES:
        flt.add_rule(eperm, "clone", _seccomp.Arg(0, _seccomp.MASKED_EQ, flag, flag))
    # prctl: the death signal (a child that outlives a killed runner goes on unseen) and
    # dumpability (back to readable /proc/self after the drop) stay as they were set.
    for option in (_PR_SET_PDEATHSIG, _PR_SET_DUMPABLE):
        flt.add_rule(eperm, "prctl", _seccomp.Arg(0, _seccomp.EQ, option))
    # clone3 passes its flags in memory a filter cannot read: ENOSYS makes glibc use clone.
    if _seccomp.resolve_syscall(_seccomp.Arch.NATIVE, "clone3") >= 0:
        flt.add_rule(_seccomp.ERRNO(errno.ENOSYS), "clone3")
    read_fd, write_fd = os.pipe()
    try:
        flt.export_bpf(_PipeFile(write_fd))
        os.close(write_fd)
        write_fd = -1
        chunks = []
        while chunk := os.read(read_fd, 65536):
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(read_fd)
        if write_fd >= 0:
            os.close(write_fd)


class _PipeFile:
    def __init__(self, fd: int) -> None:
        self._fd = fd

    def fileno(self) -> int:
        return self._fd


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


_SECCOMP_PROGRAM: bytes = b""
_SECCOMP_BUILD_ERROR = _SECCOMP_IMPORT_ERROR
if _seccomp is not None and _libc is not None:
    try:
        _SECCOMP_PROGRAM = _build_seccomp_program()
    except Exception as exc:
        _SECCOMP_BUILD_ERROR = f"{type(exc).__name__}: {exc}"
# Kept alive for the child: a fork shares it, nothing is rebuilt per run.
_SECCOMP_BUFFER = ctypes.create_string_buffer(_SECCOMP_PROGRAM, max(len(_SECCOMP_PROGRAM), 1))
_SECCOMP_FPROG = _SockFprog(len(_SECCOMP_PROGRAM) // 8, ctypes.addressof(_SECCOMP_BUFFER))
_SECCOMP_FPROG_ADDRESS = ctypes.addressof(_SECCOMP_FPROG)


def _install_seccomp() -> None:
    if not _SECCOMP_PROGRAM:
        raise OSError(errno.ENOSYS, f"no seccomp filter: {_SECCOMP_BUILD_ERROR or 'unknown'}")
    # The same as seccomp_load(), with the program libseccomp compiled at import time.
    _check(
        _prctl(_PR_SET_SECCOMP, _SECCOMP_MODE_FILTER, _SECCOMP_FPROG_ADDRESS, 0, 0),
        "prctl(PR_SET_SECCOMP)",
    )


# --- uid drop ---------------------------------------------------------------------------------

# Standard-library modules imported lazily, on first use, by what snippets commonly call
# (datetime.strptime, IDNA host names): imported here, in the parent, so a child that can no
# longer read the interpreter's files (a sandbox user without access to /root/.pyenv, say)
# still has them. Check W105 reports that situation; this only spares the common cases.
for _module in ("_strptime", "encodings.idna"):
    with contextlib.suppress(ImportError):
        __import__(_module)

_USERS: dict[str, tuple[int, int]] = {}


def lookup_user(name: str) -> tuple[int, int]:
    """``(uid, gid)`` of ``name``; cached, so a lookup in the parent spares each child the NSS
    work. Raises KeyError when the user does not exist (not cached)."""
    cached = _USERS.get(name)
    if cached is None:
        entry = pwd.getpwnam(name)
        cached = _USERS[name] = (entry.pw_uid, entry.pw_gid)
    return cached


def _drop_to(user: str) -> None:
    try:
        uid, gid = lookup_user(user)
    except KeyError:
        raise OSLayerError(
            f"sandbox user {user!r} does not exist; refusing to run the snippet as root"
        ) from None
    if uid == 0:
        raise OSLayerError(f"sandbox user {user!r} is root; refusing to run the snippet as root")
    parent = os.getppid()
    os.setgroups([])
    os.setresgid(gid, gid, gid)
    os.setresuid(uid, uid, uid)
    if os.getresuid() != (uid, uid, uid) or os.getresgid() != (gid, gid, gid):
        raise OSLayerError(f"could not drop to {user!r}")
    # A credential change clears the parent-death signal: arm it again, and leave at once if
    # the parent died in between (we would never be killed with it).
    _check(_prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0), "prctl(PR_SET_PDEATHSIG)")
    if os.getppid() != parent:
        os._exit(1)


# --- the entry point --------------------------------------------------------------------------


def _warn(layer: str, message: str) -> None:
    log.warning("sandbox OS layer %s not active: %s", layer, message)


def install_os_layers(
    *,
    writable_paths: Sequence[str],
    user: str | None,
    layers: Collection[str] = LAYERS,
    on_failure: Callable[[str, str], object] | None = None,
) -> list[str]:
    """Confine the current process (the sandbox child); return the names of the active layers.

    Call it after the child's database connection is open and before the snippet runs. A
    layer that cannot be installed (old kernel, no libseccomp) is reported through
    ``on_failure(layer, message)`` (default: a warning on the ``scheduled_tasks.sandbox``
    logger - note that a log *file* opened lazily after confinement cannot be opened) and
    skipped; a uid drop that was asked for and cannot happen raises :class:`OSLayerError`.

    ``layers`` selects a subset (tests prove each layer on its own); Landlock and seccomp
    always bring ``no_new_privs`` with them.
    """
    unknown = set(layers) - set(LAYERS)
    if unknown:
        raise ValueError(f"unknown OS layers: {sorted(unknown)}")
    report = on_failure or _warn
    active: list[str] = []
    if _libc is None or not sys.platform.startswith("linux"):
        report("all", "not Linux")
        return active

    if {"no_new_privs", "landlock", "seccomp"} & set(layers):
        try:
            _check(_prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "prctl(PR_SET_NO_NEW_PRIVS)")
            active.append("no_new_privs")
        except OSError as exc:
            report("no_new_privs", str(exc))

    ruleset_fd = -1
    if "landlock" in layers:
        abi = landlock_abi()
        if abi <= 0:
            report("landlock", "the kernel has no Landlock (or it is disabled)")
        else:
            try:
                ruleset_fd = _landlock_ruleset(writable_paths, report)
            except OSError as exc:
                report("landlock", str(exc))

    if "uid" in layers and user is not None:
        if os.geteuid() == 0:
            try:
                _drop_to(user)
            except OSError as exc:  # fail closed: never go on as root by accident
                if ruleset_fd >= 0:
                    os.close(ruleset_fd)
                raise OSLayerError(f"could not drop to sandbox user {user!r}: {exc}") from exc
            except BaseException:
                if ruleset_fd >= 0:
                    os.close(ruleset_fd)
                raise
            active.append(f"uid {user}")
        else:
            report("uid", f"not root (euid {os.geteuid()}): the runner's user is kept")

    if ruleset_fd >= 0:
        try:
            _enforce_landlock(ruleset_fd)
            active.append(f"landlock abi {landlock_abi()}")
        except OSError as exc:
            report("landlock", str(exc))

    if "seccomp" in layers:
        try:
            _install_seccomp()
            active.append("seccomp")
        except OSError as exc:
            report("seccomp", str(exc))
    return active


# --- what this machine offers -----------------------------------------------------------------

_FROM_SETTINGS: Any = object()


def _configured_user() -> str | None:
    from scheduled_tasks import conf

    return conf.get("SANDBOX_USER")


def available_layers(user: str | None = _FROM_SETTINGS) -> dict[str, bool | str]:
    """What this machine and process can offer. Values are False when a layer is missing,
    else True or a short description.

    ``seccomp``: libseccomp and pyseccomp usable (``seccomp_error`` says why not);
    ``landlock``: ``"abi N"``; ``root``: the runner runs as root (a uid drop is possible);
    ``sandbox_user``: the configured SANDBOX_USER, when it exists.
    """
    if user is _FROM_SETTINGS:
        user = _configured_user()
    linux = _libc is not None and sys.platform.startswith("linux")
    abi = landlock_abi() if linux else 0
    result: dict[str, bool | str] = {
        "no_new_privs": linux,
        "seccomp": bool(linux and _SECCOMP_PROGRAM),
        "landlock": f"abi {abi}" if abi > 0 else False,
        "root": linux and os.geteuid() == 0,
        "sandbox_user": False,
    }
    if not result["seccomp"]:
        result["seccomp_error"] = _SECCOMP_BUILD_ERROR or "not Linux"
    if user is not None:
        with contextlib.suppress(KeyError):
            uid, _ = lookup_user(user)
            result["sandbox_user"] = user if uid != 0 else False
    return result


def _reachable_by(path: str, uid: int, gid: int) -> bool:
    """Whether ``uid``/``gid`` (no supplementary groups, as after the drop) can list ``path``
    and every directory above it, judged by mode bits."""
    if uid == 0:
        return True
    current = os.path.abspath(path)
    parts = [current]
    while (parent := os.path.dirname(current)) != current:
        parts.append(parent)
        current = parent
    for index, part in enumerate(parts):
        try:
            st = os.stat(part)
        except OSError:
            return False
        need = 0o5 if index == 0 else 0o1  # r-x on the directory itself, --x above it
        if st.st_uid == uid:
            bits = st.st_mode >> 6
        elif st.st_gid == gid:
            bits = st.st_mode >> 3
        else:
            bits = st.st_mode
        if bits & need != need:
            return False
    return True


def python_unreadable_by(user: str) -> list[str]:
    """Directories of this interpreter (standard library, site-packages) that ``user`` cannot
    read: after the uid drop, a lazy import from there (``datetime.strptime`` imports
    ``_strptime``) fails with ModuleNotFoundError. Empty when all is readable."""
    import sysconfig

    try:
        uid, gid = lookup_user(user)
    except KeyError:
        return []
    paths = {os.path.dirname(os.__file__), sysconfig.get_paths()["purelib"]}
    return sorted(path for path in paths if not _reachable_by(path, uid, gid))


def describe_layers(user: str | None = _FROM_SETTINGS) -> str:
    """One line for the log: the layers a snippet's process gets on this machine."""
    offer = available_layers(user)
    names = []
    if offer["no_new_privs"]:
        names.append("no_new_privs")
    if offer["root"] and offer["sandbox_user"]:
        names.append(f"uid {offer['sandbox_user']}")
    if offer["landlock"]:
        names.append(f"landlock {offer['landlock']}")
    if offer["seccomp"]:
        names.append("seccomp")
    return "sandbox OS layers: " + (", ".join(names) or "none")
