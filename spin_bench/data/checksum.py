"""sha256 of files and ``<file>.sha256`` sidecars (``sha256sum`` format).

A sidecar is the line ``sha256sum`` prints, optionally followed by a comment line that
records the data identity (``sha256sum -c`` ignores ``#`` lines)::

    <64 hex digits>  <file name>
    # data identity <64 hex digits>
"""
from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path
from typing import Optional

from spin_bench.atomic import PathLike, atomic_write_text
from spin_bench.data.schema import DatasetError

SIDECAR_SUFFIX = ".sha256"
_HEX_RE = re.compile(r"^[0-9a-f]{64}$")
_IDENTITY_PREFIX = "# data identity "


def sha256_file(path: PathLike, chunk_size: int = 1 << 20) -> str:
    """Hex sha256 of a file's bytes (read in 1 MiB blocks)."""
    from spin_bench.safe_load import open_regular

    h = hashlib.sha256()
    try:
        f = open_regular(path, "file", 2**62)  # never blocks on a FIFO, never hashes a device
    except ValueError as e:  # UnreadableFileError: as an OSError, what callers of a hash expect
        raise OSError(str(e)) from None
    with f:
        while True:
            block = f.read(chunk_size)
            if not block:
                break
            h.update(block)
    return h.hexdigest()


def is_sha256(text: object) -> bool:
    """Whether `text` is a lower-case hex sha256 digest."""
    return isinstance(text, str) and bool(_HEX_RE.match(text))


def sidecar_path(path: PathLike) -> Path:
    """``<file>.sha256`` beside `path`."""
    return Path(os.fspath(path) + SIDECAR_SUFFIX)


def write_sidecar(path: PathLike, digest: str, identity: Optional[str] = None) -> Path:
    """Write ``<file>.sha256`` atomically ('<hex>  <basename>', as sha256sum prints it),
    with the data identity on a comment line when given."""
    for value in (digest, identity):
        if value is not None and not is_sha256(value):
            raise ValueError(f"not a sha256 hex digest: {value!r}")
    side = sidecar_path(path)
    text = f"{digest}  {Path(path).name}\n"
    if identity is not None:
        text += f"{_IDENTITY_PREFIX}{identity}\n"
    atomic_write_text(side, text)
    return side


def _sidecar_text(path: PathLike) -> Optional[str]:
    from spin_bench.safe_load import UnreadableFileError, read_bytes

    side = sidecar_path(path)
    if not os.path.lexists(side):
        return None
    try:  # a regular file of at most 64 KiB: a FIFO or a device is refused, never read
        return read_bytes(side, "checksum sidecar", 65536).decode("utf-8", errors="replace")
    except UnreadableFileError as e:
        raise DatasetError(str(e), path=side) from None


def read_sidecar(path: PathLike) -> Optional[str]:
    """The sha256 recorded in ``<file>.sha256``, or None when there is no sidecar."""
    side = sidecar_path(path)
    text = _sidecar_text(path)
    if text is None:
        return None
    fields = text.split()
    if not fields or not is_sha256(fields[0].lower()):
        raise DatasetError(
            f"{side}: expected '<64 hex digits>  <file name>' (a sha256sum line), "
            f"got {text[:80]!r}", path=side)
    return fields[0].lower()


def read_sidecar_identity(path: PathLike) -> Optional[str]:
    """The data identity recorded in ``<file>.sha256``, or None (no sidecar, or one written
    before identities were recorded)."""
    text = _sidecar_text(path)
    for line in (text or "").splitlines():
        if line.startswith(_IDENTITY_PREFIX):
            value = line[len(_IDENTITY_PREFIX):].strip().lower()
            if not is_sha256(value):
                raise DatasetError(f"{sidecar_path(path)}: expected '{_IDENTITY_PREFIX}<64 hex "
                                   f"digits>', got {line[:100]!r}", path=sidecar_path(path))
            return value
    return None
