"""Reading a dataset file's header: open the HDF5 file, decode its attributes and check its
keys, dtypes and shapes against the schema, without reading the data.  The store registers
files by their header; :mod:`spin_bench.data.dataset` reads and validates the data itself.
"""
from __future__ import annotations

import json
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
