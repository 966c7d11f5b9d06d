"""Atomic file writes and file locks, the one implementation of each.

Writes: a temp file in the target's directory, fsync, os.replace; a reader (or a crash) never
sees a half-written file, only the old one or the new one, and a symbolic link planted at the
target is replaced, never written through.  Appends and locks open with ``O_NOFOLLOW`` and
refuse links and special files (:class:`UnsafePathError`).  Locks: an exclusive advisory lock
(POSIX ``flock``) on a lock file, blocking (:func:`file_lock`) or tried once (:func:`try_lock`).
Standard library only (the sweep's launcher takes a lock before it execs a run).
"""
from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import stat
import tempfile
from pathlib import Path
from typing import Any, BinaryIO, Iterable, Iterator, Optional, Union

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: locks are no-ops
    fcntl = None

PathLike = Union[str, "os.PathLike[str]"]

_UMASK = os.umask(0)
os.umask(_UMASK)

TEMP_SUFFIX = ".tmp"


def temp_prefix(path: PathLike) -> str:
    """Prefix of the temp files written on the way to `path` (hidden, same directory)."""
    return f".{Path(path).name}."


def fsync_file(path: PathLike) -> None:
    """Flush a file's data to disk."""
    fd = os.open(os.fspath(path), os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dir(path: PathLike) -> None:
    """Flush a directory entry (after a rename); a no-op where directories cannot be opened."""
    try:
        fd = os.open(os.fspath(path), os.O_RDONLY)
    except OSError:  # pragma: no cover - e.g. Windows
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)


# The random middle part of a temp name (tempfile.mkstemp: 8 characters of this alphabet;
# any short run of letters, digits and '_' is taken as one, never a name with dots or spaces).
_TEMP_RANDOM = re.compile(r"[A-Za-z0-9_]{1,32}")


def is_own_temp(name: str, targets: Iterable[str]) -> bool:
    """Whether `name` is a temp file this module writes on the way to one of `targets`
    (``.<target>.<random characters>.tmp``); a user's other hidden files are not."""
    if not (name.startswith(".") and name.endswith(TEMP_SUFFIX)):
        return False
    for target in targets:
        prefix = temp_prefix(target)
        if name.startswith(prefix) and _TEMP_RANDOM.fullmatch(name[len(prefix):-len(TEMP_SUFFIX)]):
            return True
    return False


def remove_stale_temps(directory: PathLike, targets: Optional[Iterable[str]] = None) -> list:
    """Delete the temp files that writers killed mid-write left in `directory` on the way to
    one of `targets` (file names; default the run directory's files, ``rundir.RUN_FILES``),
    and nothing else: other hidden ``*.tmp`` files are the user's. Returns their paths. Call
    only while no other process writes there."""
    if targets is None:
        from spin_bench.rundir import RUN_FILES

        targets = RUN_FILES
    targets = tuple(targets)
    removed = []
    for entry in os.scandir(os.fspath(directory)):
        if is_own_temp(entry.name, targets) and entry.is_file(follow_symlinks=False):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(entry.path)
                removed.append(entry.path)
    return removed


class UnsafePathError(ValueError):
    """A file the suite would write or lock in a shared folder is a symbolic link or not a
    regular file: refused, nothing was written through it."""


_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)


def open_nofollow(path: PathLike, flags: int, what: str, mode: int = 0o666) -> int:
    """``os.open(path, flags | O_NOFOLLOW)`` that refuses a symbolic link, a FIFO or a device
    at `path` (UnsafePathError naming it and `what`); the descriptor of a regular file."""
    path = os.fspath(path)
    try:
        fd = os.open(path, flags | _NOFOLLOW | _CLOEXEC | getattr(os, "O_NONBLOCK", 0), mode)
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise UnsafePathError(f"{path}: refusing to write this {what}: it is a symbolic link "
                                  f"(the suite never writes through links in shared folders); "
                                  f"remove it") from None
        if e.errno in (errno.ENXIO, errno.ENODEV, errno.EISDIR, errno.EOPNOTSUPP):  # a FIFO, device, folder
            raise UnsafePathError(f"{path}: refusing to write this {what}: it is not a regular file "
                                  f"(a FIFO, device or directory); remove it") from None
        raise
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise UnsafePathError(f"{path}: refusing to write this {what}: it is not a regular file "
                                  f"(a FIFO, device or directory); remove it")
        os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    return fd


def open_append(path: PathLike, what: str = "log") -> BinaryIO:
    """A binary file object appending to `path` (created if missing), never through a link."""
    fd = open_nofollow(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, what)
    return os.fdopen(fd, "ab")


@contextlib.contextmanager
def atomic_output(path: PathLike) -> Iterator[Path]:
    """Yield a temp path next to `path`; on a clean exit fsync it and rename it onto `path`.

    On any exception (KeyboardInterrupt included) the temp file is removed and `path` is
    left untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=temp_prefix(path), suffix=TEMP_SUFFIX, dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; give the usual permissions
        yield tmp
        fsync_file(tmp)
        os.replace(tmp, path)
        fsync_dir(path.parent)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def atomic_write_text(path: PathLike, text: str) -> None:
    """Write a small text file atomically."""
    with atomic_output(path) as tmp:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())


def atomic_write_bytes(path: PathLike, data: bytes) -> None:
    """Write bytes atomically (a copy that never writes through a link at `path`)."""
    with atomic_output(path) as tmp:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())


def atomic_write_json(path: PathLike, obj: Any) -> None:
    """Write `obj` as indented, key-sorted JSON atomically."""
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


def atomic_torch_save(obj: Any, path: PathLike) -> None:
    """torch.save to a temp file next to `path`, then rename it onto `path`."""
    import torch

    with atomic_output(path) as tmp:
        with open(tmp, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())


@contextlib.contextmanager
def file_lock(path: PathLike) -> Iterator[None]:
    """Hold an exclusive lock on `path` (created if missing, never through a symbolic link:
    UnsafePathError) for the ``with`` block, waiting for another holder to release it; a
    no-op where ``fcntl`` is unavailable."""
    if fcntl is None:  # pragma: no cover
        yield
        return
    fd = open_nofollow(path, os.O_RDWR | os.O_CREAT, "lock file", 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def try_lock(path: PathLike) -> Optional[int]:
    """Take an exclusive lock on `path` (created if missing, never through a symbolic link:
    UnsafePathError) without waiting: the open file descriptor holding it (closing it
    releases the lock), or None when another process holds it."""
    fd = open_nofollow(path, os.O_RDWR | os.O_CREAT, "lock file", 0o644)
    if fcntl is None:  # pragma: no cover
        return fd
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd
