"""Reading the torch files the suite loads (training checkpoints, DecQN checkpoints and
snapshots, the ASM cache) without running code.

A torch file is a pickle: ``torch.load(weights_only=False)`` calls whatever the file names.
Run directories, caches and sweep directories are shared (clusters, downloads), so every
such file is read with ``weights_only=True``: tensors, numbers, strings, bools, None and
plain lists, tuples and dicts only. A file that needs anything else is refused with
:class:`UnsafeFileError` naming it; nothing in it is executed.
"""
from __future__ import annotations

import io
import os
import pickle
import pickletools
import warnings
import zipfile
from typing import Any

from spin_bench.atomic import PathLike


class UnsafeFileError(ValueError):
    """The file holds objects other than tensors and plain containers (nothing was executed)."""


class UnreadableFileError(ValueError):
    """The file is not a readable torch file (truncated, corrupted, or something else)."""


def load_torch_file(path: PathLike, what: str, map_location: Any = "cpu") -> Any:
    """``torch.load(path, weights_only=True)`` with one-line errors naming `path` and `what`
    (e.g. "training checkpoint"): UnsafeFileError for a file that would need code to load,
    UnreadableFileError for a damaged one."""
    import torch

    path = os.fspath(path)
    try:
        with warnings.catch_warnings():  # torch warns about the protocol of foreign pickles: noise here
            warnings.simplefilter("ignore", UserWarning)
            return torch.load(path, map_location=map_location, weights_only=True)
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
                streams = [z.read(n) for n in z.namelist() if n.endswith(".pkl")]
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
