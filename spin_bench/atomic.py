"""Atomic file writes and file locks, the one implementation of each.

Writes: a temp file in the target's directory, fsync, os.replace; a reader (or a crash) never
sees a half-written file, only the old one or the new one.  Locks: an exclusive advisory lock
(POSIX ``flock``) on a lock file, blocking (:func:`file_lock`) or tried once (:func:`try_lock`).
Standard library only (the sweep's launcher takes a lock before it execs a run).
"""
from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Iterator, Optional, Union

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


def remove_stale_temps(directory: PathLike) -> list:
    """Delete the temp files (``.<name>.*.tmp``) that writers killed mid-write left in
    `directory`; returns their paths. Call only while no other process writes there."""
    removed = []
    for entry in os.scandir(os.fspath(directory)):
        if entry.name.startswith(".") and entry.name.endswith(TEMP_SUFFIX) and entry.is_file(follow_symlinks=False):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(entry.path)
                removed.append(entry.path)
    return removed


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
    """Hold an exclusive lock on `path` (created if missing) for the ``with`` block, waiting
    for another holder to release it; a no-op where ``fcntl`` is unavailable."""
    if fcntl is None:  # pragma: no cover
        yield
        return
    with open(os.fspath(path), "a+") as f:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)


def try_lock(path: PathLike) -> Optional[int]:
    """Take an exclusive lock on `path` (created if missing) without waiting: the open file
    descriptor holding it (closing it releases the lock), or None when another process holds it."""
    fd = os.open(os.fspath(path), os.O_RDWR | os.O_CREAT, 0o644)
    if fcntl is None:  # pragma: no cover
        return fd
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd
