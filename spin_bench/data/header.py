"""Reading a dataset file's header: open the HDF5 file, decode its attributes and check its
keys, dtypes and shapes against the schema, without reading the data.  The store registers
files by their header; :mod:`spin_bench.data.dataset` reads and validates the data itself.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Dict, Optional, Tuple

import h5py
import numpy as np

from spin_bench.atomic import PathLike
from spin_bench.data.schema import ARRAY_KEYS, BinsLike, DatasetError, check_header

JSON_ATTRS = "json_attrs"  # names of attributes stored as JSON strings


def one_line(err: BaseException) -> str:
    return " ".join(str(err).split()) or type(err).__name__


def _from_h5_attr(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value


def _read_attrs(f: h5py.File) -> Dict[str, Any]:
    raw = {k: _from_h5_attr(f.attrs[k]) for k in f.attrs.keys()}
    json_names = raw.pop(JSON_ATTRS, [])
    if isinstance(json_names, str):
        json_names = [json_names]
    for name in json_names:
        if isinstance(raw.get(name), str):
            try:
                raw[name] = json.loads(raw[name])
            except ValueError:
                pass
    return raw


def open_file(path: Path) -> h5py.File:
    if not path.exists():
        raise DatasetError(f"{path}: no such dataset file", path=path)
    if not path.is_file():
        raise DatasetError(f"{path}: expected a dataset file, got a directory or special file",
                           path=path)
    try:
        return h5py.File(path, "r")
    except OSError as e:
        raise DatasetError(
            f"{path}: expected an HDF5 dataset file, got one HDF5 cannot open "
            f"({one_line(e)}): truncated, corrupted or not a spin_bench dataset",
            path=path) from None


def header_of(f: h5py.File, path: Path, **expect: Any) -> Tuple[Dict[str, Any], np.ndarray]:
    try:
        attrs = _read_attrs(f)
        members = {k: f[k] for k in f.keys()}
    except (OSError, KeyError, RuntimeError, ValueError) as e:
        raise DatasetError(f"{path}: cannot read the file's metadata ({one_line(e)}): "
                           f"truncated or corrupted", path=path) from None
    for k, v in members.items():
        if not isinstance(v, h5py.Dataset):
            raise DatasetError(f"{path}: {k}: expected an array, got an HDF5 group",
                               path=path, key=k)
    bins = check_header(members, attrs, path=path, **expect)
    return attrs, bins


def read_header(path: PathLike, *, task: Optional[str] = None, bins: Optional[BinsLike] = None,
                obs_dim: Optional[int] = None) -> Dict[str, Any]:
    """Attributes and array shapes/dtypes of a dataset file, checked, without reading the data.

    Returns {'attrs', 'shapes', 'dtypes', 'num_transitions', 'compression'}.
    """
    path = Path(path)
    with open_file(path) as f:
        attrs, file_bins = header_of(f, path, task=task, bins=bins, obs_dim=obs_dim)
        attrs["bins"] = [int(b) for b in file_bins]
        return {"attrs": attrs,
                "shapes": {k: tuple(f[k].shape) for k in ARRAY_KEYS},
                "dtypes": {k: np.dtype(f[k].dtype).name for k in ARRAY_KEYS},
                "num_transitions": int(f["observations"].shape[0]),
                "compression": f["observations"].compression}


# The largest ratio of a chunked array's declared bytes to its stored bytes a real file has
# (deflate caps at about 1032:1, which constant arrays such as `terminals` reach).
MAX_COMPRESSION_RATIO = 2000


def available_memory() -> Optional[int]:
    """Bytes of memory available to a new allocation (Linux: MemAvailable), None if unknown."""
    try:
        with open("/proc/meminfo", "rb") as f:
            for line in f.read(65536).splitlines():
                if line.startswith(b"MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return None


def check_storage(f: h5py.File, path: Path) -> int:
    """DatasetError unless every array's declared size is backed by the file's real storage
    (contiguous: all its bytes stored; chunked: every chunk written, and at most
    MAX_COMPRESSION_RATIO times the stored bytes) and all of them fit in available memory,
    checked before anything is read (a 10 KB file declaring 200 million rows is refused, not
    loaded). Returns the declared bytes."""
    total = 0
    for key in ARRAY_KEYS:
        d = f[key]
        declared = int(np.prod(d.shape, dtype=object)) * int(d.dtype.itemsize)
        total += declared
        if declared == 0:
            continue
        try:
            stored = int(d.id.get_storage_size())
            chunks = d.chunks
            if chunks is None:
                complete = stored >= declared or d.compression is not None
            else:
                per_dim = [-(-int(n) // int(c)) for n, c in zip(d.shape, chunks)]
                expected = int(np.prod(per_dim, dtype=object))
                complete = int(d.id.get_num_chunks()) >= expected
        except (AttributeError, RuntimeError, ValueError, OSError):  # an old h5py: storage size only
            stored, complete = int(d.id.get_storage_size()), True
        if not complete or declared > max(stored, 1) * MAX_COMPRESSION_RATIO:
            raise DatasetError(
                f"{path}: {key}: expected stored data for its declared shape {tuple(d.shape)} "
                f"({declared / 2**20:.1f} MiB), got {stored} stored bytes"
                + ("" if complete else " and unwritten chunks")
                + ": the file is truncated or crafted; not loaded", path=path, key=key)
    avail = available_memory()
    if avail is not None and total > avail:
        raise DatasetError(f"{path}: its arrays need {total / 2**30:.1f} GiB, more than the "
                           f"{avail / 2**30:.1f} GiB of memory available; not loaded", path=path)
    return total
