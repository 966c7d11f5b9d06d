"""The one safe-reading layer: every file the suite did not just write is read through it.

Plain files (:func:`open_regular`, :func:`read_bytes`, :func:`read_text`, :func:`read_json`):
regular files only (a FIFO never blocks a read, a device such as /dev/zero is never read),
a size cap per kind of file, and no symbolic links where the folder is shared
(``follow_symlinks=False``).  JSON fields are read with strict types (:func:`json_int`,
:func:`json_float`, :func:`json_str`: finite numbers in range, strings that are strings).

Torch files (training checkpoints, DecQN checkpoints and
snapshots, the ASM cache) are read without running code.

A torch file is a pickle: ``torch.load(weights_only=False)`` calls whatever the file names.
Run directories, caches and sweep directories are shared (clusters, downloads), so every
such file is read with ``weights_only=True``: tensors, numbers, strings, bools, None and
plain lists, tuples and dicts only. A file that needs anything else is refused with
:class:`UnsafeFileError` naming it; nothing in it is executed.
"""
from __future__ import annotations

import errno
import io
import json
import math
import os
import pickle
import pickletools
import stat
import warnings
import zipfile
from typing import Any, BinaryIO, Optional

from spin_bench.atomic import PathLike


# Size caps per kind of file the suite reads from folders it does not own (bytes).
MAX_JSON_BYTES = 64 * 2**20  # summary.json, run_identity.json, sweep_run.json, status files
MAX_TEXT_BYTES = 64 * 2**20  # config.gin, operative_config.gin, logs
MAX_CSV_BYTES = 512 * 2**20  # metrics.csv
MAX_TORCH_BYTES = 16 * 2**30  # checkpoints and the ASM cache
MAX_PICKLE_BYTES = 64 * 2**30  # the published dataset pickles
MAX_JSON_DEPTH = 64  # nesting of a JSON document (a record of ours nests 4 deep)


class UnsafeFileError(ValueError):
    """The file holds objects other than tensors and plain containers (nothing was executed)."""


class UnreadableFileError(ValueError):
    """The file is not a readable torch file (truncated, corrupted, or something else)."""


def load_torch_file(path: PathLike, what: str, map_location: Any = "cpu", follow_symlinks: bool = True,
                    max_bytes: int = MAX_TORCH_BYTES) -> Any:
    """``torch.load(path, weights_only=True)`` with one-line errors naming `path` and `what`
    (e.g. "training checkpoint"): UnsafeFileError for a file that would need code to load,
    UnreadableFileError for a damaged one, or for anything but a regular file of at most
    `max_bytes` (a FIFO, a device; a symbolic link without `follow_symlinks`)."""
    import torch

    path = os.fspath(path)
    try:
        with open_regular(path, what, max_bytes, follow_symlinks) as f, warnings.catch_warnings():
            # torch warns about the protocol of foreign pickles: noise here
            warnings.simplefilter("ignore", UserWarning)
            return torch.load(f, map_location=map_location, weights_only=True)
    except UnreadableFileError:
        raise
    except pickle.UnpicklingError as e:
        msg = str(e)
        if _names_code(msg, path):
            culprit = next((line.strip() for line in msg.splitlines()
                            if "unsupported" in line.lower() and "weights_only" not in line), "")
            raise UnsafeFileError(
                f"{path}: refusing to load this {what}: it holds objects other than tensors and "
                f"plain containers, which only a pickle that runs code needs"
                + (f" ({culprit.rstrip('.')})" if culprit else "")
                + "; nothing in it was executed. Delete it if you did not write it") from None
        raise UnreadableFileError(f"{path}: not a readable {what}: truncated, corrupted or not a torch file") from None
    except FileNotFoundError:
        raise UnreadableFileError(f"{path}: no such {what}") from None
    except IsADirectoryError:
        raise UnreadableFileError(f"{path}: expected a {what} file, got a directory") from None
    except (RuntimeError, EOFError, OSError, ValueError, KeyError, TypeError, AttributeError,
            IndexError, MemoryError) as e:
        raise UnreadableFileError(f"{path}: not a readable {what} ({type(e).__name__}: "
                                  f"{_one_line(str(e))[:300]}): truncated or corrupted") from None


# Pickle operations that import or call something (what a data-only file never needs beyond
# torch's own rebuild functions, which the weights-only unpickler admits by itself).
_CODE_OPS = {"GLOBAL", "STACK_GLOBAL", "INST", "OBJ", "REDUCE", "NEWOBJ", "NEWOBJ_EX", "EXT1", "EXT2", "EXT4"}
_SCAN_BYTES = 64 * 2**20


def _names_code(msg: str, path: str) -> bool:
    """Whether a file the weights-only unpickler refused is a pickle that asks for more than
    data (names a global, or calls something), judged by reading its opcodes with pickletools
    (nothing is executed); garbage and truncated files are merely unreadable."""
    if "global" in msg.lower():
        return True
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as z:
                streams = [z.read(n) for n in z.namelist()
                           if n.endswith(".pkl") and z.getinfo(n).file_size <= _SCAN_BYTES]
        else:
            with open(path, "rb") as f:
                streams = [f.read(_SCAN_BYTES)]
    except (OSError, zipfile.BadZipFile, RuntimeError):
        return False
    for data in streams:
        try:
            for op, _, _ in pickletools.genops(io.BytesIO(data)):
                if op.name in _CODE_OPS:
                    return True
        except Exception:  # noqa: BLE001 - not (or no longer) a parsable pickle
            continue
    return False


def _one_line(text: str) -> str:
    return " ".join(text.split())


# ----------------------------------------------------------------------------- plain files


def _kind_of(mode: int) -> str:
    for test, name in ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO (named pipe)"),
                       (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
                       (stat.S_ISSOCK, "a socket"), (stat.S_ISLNK, "a symbolic link")):
        if test(mode):
            return name
    return "not a regular file"


def open_regular(path: PathLike, what: str, max_bytes: int, follow_symlinks: bool = True) -> BinaryIO:
    """Open `path` for reading as a binary file object, only if it is a regular file of at most
    `max_bytes` bytes; never blocks on a FIFO and never opens a device. Without
    `follow_symlinks` a symbolic link is refused (for files in shared folders).
    UnreadableFileError (one line naming `path` and `what`) otherwise."""
    path = os.fspath(path)
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    if not follow_symlinks:
        flags |= getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise UnreadableFileError(f"{path}: no such {what}") from None
    except OSError as e:
        if e.errno == errno.ELOOP and not follow_symlinks:
            raise UnreadableFileError(f"{path}: refusing to read this {what}: it is a symbolic link "
                                      f"(links are not followed in shared folders)") from None
        raise UnreadableFileError(f"{path}: cannot read this {what} ({_one_line(e.strerror or str(e))})") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise UnreadableFileError(f"{path}: expected a {what} (a regular file), got {_kind_of(st.st_mode)}")
        if st.st_size > max_bytes:
            raise UnreadableFileError(f"{path}: expected a {what} of at most {_size(max_bytes)}, got "
                                      f"{_size(st.st_size)}")
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def read_bytes(path: PathLike, what: str, max_bytes: int, follow_symlinks: bool = True) -> bytes:
    """The bytes of a regular file of at most `max_bytes` (see :func:`open_regular`)."""
    with open_regular(path, what, max_bytes, follow_symlinks) as f:
        try:
            data = f.read(max_bytes + 1)
        except OSError as e:
            raise UnreadableFileError(f"{os.fspath(path)}: cannot read this {what} ({_one_line(str(e))})") from None
    if len(data) > max_bytes:  # it grew while being read
        raise UnreadableFileError(f"{os.fspath(path)}: expected a {what} of at most {_size(max_bytes)}")
    return data


def read_text(path: PathLike, what: str, max_bytes: int = MAX_TEXT_BYTES, follow_symlinks: bool = True) -> str:
    """A UTF-8 text file (see :func:`open_regular`); UnreadableFileError if it is not UTF-8."""
    data = read_bytes(path, what, max_bytes, follow_symlinks)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise UnreadableFileError(f"{os.fspath(path)}: expected a {what} in UTF-8, got invalid bytes at "
                                  f"offset {e.start}") from None


def read_json(path: PathLike, what: str, max_bytes: int = MAX_JSON_BYTES, follow_symlinks: bool = True,
              expect_object: bool = True) -> Any:
    """A JSON document from a regular UTF-8 file: nesting at most MAX_JSON_DEPTH, a JSON object
    unless not `expect_object`. UnreadableFileError otherwise. NaN, Infinity and numbers that
    overflow (1e400) come back as floats: read fields with the ``json_*`` helpers."""
    text = read_text(path, what, max_bytes, follow_symlinks)
    depth = _max_depth(text)
    if depth > MAX_JSON_DEPTH:
        raise UnreadableFileError(f"{os.fspath(path)}: expected a {what}, got JSON nested {depth} deep "
                                  f"(at most {MAX_JSON_DEPTH})")
    try:
        doc = json.loads(text)
    except (ValueError, RecursionError) as e:
        raise UnreadableFileError(f"{os.fspath(path)}: not a readable {what} (invalid JSON: "
                                  f"{_one_line(str(e))[:200]})") from None
    if expect_object and not isinstance(doc, dict):
        raise UnreadableFileError(f"{os.fspath(path)}: expected a {what} holding a JSON object, got "
                                  f"{type(doc).__name__}")
    return doc


def _max_depth(text: str) -> int:
    """Bracket nesting depth of a JSON text (strings skipped), without parsing it."""
    depth = best = 0
    in_str = esc = False
    for ch in text:
        if in_str:
            if esc:
                esc = False
            elif ch == "\\":
                esc = True
            elif ch == '"':
                in_str = False
        elif ch == '"':
            in_str = True
        elif ch in "[{":
            depth += 1
            best = max(best, depth)
        elif ch in "]}":
            depth -= 1
    return best


# ----------------------------------------------------------------------------- typed JSON fields
class FieldError(ValueError):
    """A field of a JSON record has the wrong type or an out-of-range value."""


def _field(doc: Any, key: str, where: str, required: bool) -> Any:
    """``doc[key]``; None when absent or null and not `required` (FieldError when required)."""
    if not isinstance(doc, dict):
        raise FieldError(f"{where}: expected a JSON object, got {type(doc).__name__}")
    value = doc.get(key)
    if value is None and required:
        raise FieldError(f"{where}: lacks {key!r}" if key not in doc else f"{where}: {key} is null")
    return value


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _range(lo: Any, hi: Any) -> str:
    return f"[{'-inf' if lo is None else lo}, {'inf' if hi is None else hi}]"


def json_int(doc: Any, key: str, where: str, *, lo: Optional[int] = None, hi: Optional[int] = None,
             required: bool = True, default: Any = None) -> Any:
    """``doc[key]`` as an int in [lo, hi] (bools, strings and non-integral numbers refused; an
    integral float such as 3.0 is taken as 3); `default` when absent or null and not
    `required`. FieldError (one line naming `where` and `key`) otherwise."""
    value = _field(doc, key, where, required)
    if value is None:
        return default
    if isinstance(value, float) and math.isfinite(value) and value.is_integer() and abs(value) < 2**53:
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise FieldError(f"{where}: {key} must be an integer, got {_shown(value)}")
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        raise FieldError(f"{where}: {key} must be an integer in {_range(lo, hi)}, got {_shown(value)}")
    return value


def json_float(doc: Any, key: str, where: str, *, lo: Optional[float] = None, hi: Optional[float] = None,
               required: bool = True, default: Any = None) -> Any:
    """``doc[key]`` as a finite float in [lo, hi] (bools and strings refused); see :func:`json_int`."""
    value = _field(doc, key, where, required)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise FieldError(f"{where}: {key} must be a number, got {_shown(value)}")
    try:
        value = float(value)
    except OverflowError:
        value = math.inf
    if not math.isfinite(value):
        raise FieldError(f"{where}: {key} must be a finite number, got {_shown(value)}")
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        raise FieldError(f"{where}: {key} must be a number in {_range(lo, hi)}, got {_shown(value)}")
    return value


def json_str(doc: Any, key: str, where: str, *, required: bool = True, default: Any = None,
             max_len: int = 4096) -> Any:
    """``doc[key]`` as a string of at most `max_len` characters (non-empty when `required`);
    see :func:`json_int`."""
    value = _field(doc, key, where, required)
    if value is None:
        return default
    if not isinstance(value, str):
        raise FieldError(f"{where}: {key} must be a string, got {_shown(value)}")
    if required and not value:
        raise FieldError(f"{where}: {key} must be a non-empty string")
    if len(value) > max_len:
        raise FieldError(f"{where}: {key} must be a string of at most {max_len} characters, got {len(value)}")
    return value


def _size(n: int) -> str:
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} bytes"
