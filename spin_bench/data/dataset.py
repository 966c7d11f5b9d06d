"""Writing, reading and validating dataset files (HDF5; schema in spin_bench.data.schema)."""
from __future__ import annotations

import dataclasses
import datetime
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Dict, List, Mapping, Optional, Tuple

import h5py
import numpy as np

from spin_bench.atomic import PathLike, atomic_output
from spin_bench.data.checksum import (read_sidecar, read_sidecar_identity, sha256_file,
                                      sidecar_path, write_sidecar)
from spin_bench.data.identity import IDENTITY_ATTR, data_identity
from spin_bench.data.schema import (ARRAY_KEYS, FLOAT_KEYS, FORMAT_VERSION, BinsLike, DatasetError,
                                    check_header, check_values, coerce_arrays, count_episodes,
                                    dataset_id)
from spin_bench.data.header import JSON_ATTRS, check_storage, header_of, one_line, open_file
from spin_bench.data.store import registered_checksums, resolve_path
from spin_bench.envs.registry import known_dims

if TYPE_CHECKING:  # pragma: no cover
    import torch

COMPRESSIONS = ("gzip", "lzf")
DEFAULT_GENERATOR = "spin_bench"
_CHUNK_BYTES = 1 << 20      # ~1 MiB (uncompressed) per chunk
# `created` of a file made without SOURCE_DATE_EPOCH: fixed, so that the same data written
# twice gives the same bytes (when a file was made is not a property of its data).
FIXED_CREATED = "1970-01-01T00:00:00Z"


# ----------------------------------------------------------------------------- attributes

def _created() -> str:
    """ISO 8601 UTC: $SOURCE_DATE_EPOCH when set, else FIXED_CREATED (never the clock, so
    that files are byte-reproducible)."""
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    if not epoch:
        return FIXED_CREATED
    try:
        when = datetime.datetime.fromtimestamp(int(epoch), datetime.timezone.utc)
    except (ValueError, OverflowError, OSError):
        raise DatasetError(f"SOURCE_DATE_EPOCH: expected seconds since 1970 (an integer), got "
                           f"{epoch!r}", key="SOURCE_DATE_EPOCH") from None
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


def _complete_attrs(arrays: Mapping[str, np.ndarray], attrs: Mapping[str, Any],
                    path: Any) -> Dict[str, Any]:
    """Fill the derived attributes (and defaults) the caller may leave out."""
    out = {k: v for k, v in attrs.items() if v is not None}
    for key in ("task", "level", "bins"):
        if key not in out:
            raise DatasetError(f"{path}: {key}: expected a dataset attribute, got none (missing)",
                               path=path, key=key)
    if JSON_ATTRS in out:
        raise DatasetError(f"{path}: {JSON_ATTRS}: expected no such attribute (reserved), got "
                           f"{out[JSON_ATTRS]!r}", path=path, key=JSON_ATTRS)
    obs = arrays.get("observations")
    act = arrays.get("actions")
    dims = known_dims(out["task"])
    if dims is not None:  # a registered task's sizes, so a wrong array is reported as such
        out.setdefault("num_actions", dims[0])
        out.setdefault("obs_dim", dims[1])
    if "obs_dim" not in out and obs is not None and np.ndim(obs) == 2:
        out["obs_dim"] = int(np.shape(obs)[1])
    if "obs_dim" not in out:
        raise DatasetError(
            f"{path}: observations: expected a (T, obs_dim) array (or an obs_dim attribute), "
            f"got {'none' if obs is None else f'shape {np.shape(obs)}'}", path=path,
            key="observations")
    if "num_actions" not in out:
        if act is not None and np.ndim(act) == 2:
            out["num_actions"] = int(np.shape(act)[1])
        elif not isinstance(out["bins"], (int, np.integer)):
            out["num_actions"] = len(out["bins"])
    n = out.get("num_actions")
    if isinstance(out["bins"], (int, np.integer)) and not isinstance(out["bins"], bool) \
            and isinstance(n, (int, np.integer)):
        out["bins"] = [int(out["bins"])] * int(n)
    if "num_episodes" not in out and "terminals" in arrays and "timeouts" in arrays:
        out["num_episodes"] = count_episodes(arrays["terminals"], arrays["timeouts"])
    if "dataset_id" not in out:
        try:
            out["dataset_id"] = dataset_id(out["task"], out["level"], out["bins"])
        except ValueError as e:
            raise DatasetError(f"{path}: dataset_id: cannot derive it ({e})", path=path,
                               key="dataset_id") from None
    out.setdefault("format_version", FORMAT_VERSION)
    if out["format_version"] != FORMAT_VERSION:
        raise DatasetError(f"{path}: format_version: expected {FORMAT_VERSION} (this writer's), "
                           f"got {out['format_version']!r}", path=path, key="format_version")
    if "generator" not in out:
        from spin_bench import __version__

        out["generator"] = DEFAULT_GENERATOR
        out.setdefault("generator_version", __version__)
    out.setdefault("created", _created())
    out.pop(IDENTITY_ATTR, None)  # computed from what is written, never taken from the caller
    return out


def _to_h5_attr(value: Any) -> Tuple[Any, bool]:
    """(HDF5-storable value, stored_as_json)."""
    if isinstance(value, (str, bool, int, float, np.generic)):
        return value, False
    if isinstance(value, (list, tuple, np.ndarray)):
        arr = np.asarray(value)
        if arr.ndim == 1 and arr.dtype.kind in "biuf":
            return arr, False
    return json.dumps(value, sort_keys=True, default=lambda o: o.tolist()
                      if isinstance(o, (np.ndarray, np.generic)) else str(o)), True


# ----------------------------------------------------------------------------- writing

def _chunks(shape: Tuple[int, ...], itemsize: int) -> Tuple[int, ...]:
    row = max(1, itemsize * int(np.prod(shape[1:], dtype=np.int64)))
    rows = int(max(1, min(shape[0], _CHUNK_BYTES // row)))
    return (rows,) + tuple(shape[1:])


def write_dataset(path: PathLike, arrays: Mapping[str, Any], attrs: Mapping[str, Any], *,
                  compression: str = "gzip", compression_level: int = 4,
                  coerce: bool = True) -> str:
    """Validate and write a dataset atomically, with its ``.sha256`` sidecar; return the sha256.

    `attrs` needs ``task``, ``level`` and ``bins``; ``obs_dim``, ``num_actions``,
    ``num_episodes``, ``dataset_id`` (version 1), ``format_version``, ``created`` and
    ``generator``/``generator_version`` (spin_bench) are filled in when absent (and checked
    when given). With ``coerce`` (default) lossless-in-spirit casts are applied first
    (float64 -> float32, int64 actions -> the unsigned action dtype after a range check,
    0/1 -> bool); with ``coerce=False`` the arrays must already have the schema's dtypes.
    Chunked, shuffled, ``compression`` ('gzip' or 'lzf') and Fletcher-32 checksummed, so a
    corrupted chunk is detected on read. The file appears under `path` only once complete.
    The data identity (:mod:`spin_bench.data.identity`) is recorded in the file
    (``data_identity``) and in the sidecar. The bytes are reproducible: attributes in sorted
    order, no timestamps (``created`` is fixed unless $SOURCE_DATE_EPOCH is set), so the
    same data and attributes give the same file with the same h5py/HDF5/zlib.
    """
    path = Path(path)
    if compression not in COMPRESSIONS:
        raise ValueError(f"compression must be one of {COMPRESSIONS}, got {compression!r}")
    if not isinstance(arrays, Mapping):
        raise TypeError(f"arrays must be a mapping of key -> array, got {type(arrays).__name__}")
    arrays = {k: np.asarray(v) for k, v in arrays.items()}
    full_attrs = _complete_attrs(arrays, attrs, path)
    if coerce:
        arrays = coerce_arrays(arrays, full_attrs["bins"], path=path)
    bins = check_header(arrays, full_attrs, path=path)
    check_values(arrays, full_attrs, bins, path=path)
    full_attrs["bins"] = [int(b) for b in bins]
    identity = data_identity(arrays, full_attrs)
    full_attrs[IDENTITY_ATTR] = identity

    with atomic_output(path) as tmp:
        with h5py.File(tmp, "w", track_order=True) as f:
            json_names: List[str] = []
            for key in sorted(full_attrs):
                value, as_json = _to_h5_attr(full_attrs[key])
                f.attrs[key] = value
                if as_json:
                    json_names.append(key)
            if json_names:
                f.attrs[JSON_ATTRS] = np.array(json_names, dtype=h5py.string_dtype())
            for key in ARRAY_KEYS:
                arr = np.ascontiguousarray(arrays[key])
                opts: Dict[str, Any] = {"compression": compression}
                if compression == "gzip":
                    opts["compression_opts"] = int(compression_level)
                f.create_dataset(key, data=arr, chunks=_chunks(arr.shape, arr.dtype.itemsize),
                                 shuffle=key in FLOAT_KEYS, fletcher32=True, track_times=False,
                                 **opts)
        digest = sha256_file(tmp)
        # A stale sidecar must never describe the new file: drop it before the rename.
        try:
            os.unlink(sidecar_path(path))
        except FileNotFoundError:
            pass
    write_sidecar(path, digest, identity)
    return digest


# ----------------------------------------------------------------------------- reading

@dataclasses.dataclass(eq=False)
class Dataset:
    """An offline dataset in memory: numpy arrays (schema dtypes) plus attributes.

    ``tensors`` holds :meth:`to_torch` output when the dataset was loaded with a device.
    """

    observations: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray
    next_observations: np.ndarray
    terminals: np.ndarray
    timeouts: np.ndarray
    attrs: Dict[str, Any]
    sha256: str
    path: Optional[Path] = None
    tensors: Optional[Dict[str, "torch.Tensor"]] = None
    identity: str = ""  # data identity (spin_bench.data.identity), computed on load

    def __repr__(self) -> str:
        return (f"Dataset({self.dataset_id!r}, transitions={self.num_transitions}, "
                f"episodes={self.num_episodes}, path={str(self.path)!r})")

    # --- facts
    @property
    def num_transitions(self) -> int:
        return int(self.observations.shape[0])

    @property
    def num_episodes(self) -> int:
        return count_episodes(self.terminals, self.timeouts)

    @property
    def obs_dim(self) -> int:
        return int(self.observations.shape[1])

    @property
    def num_actions(self) -> int:
        return int(self.actions.shape[1])

    @property
    def bins(self) -> np.ndarray:
        """Bins per sub-action, int64 (N,)."""
        return np.asarray(self.attrs["bins"], dtype=np.int64)

    @property
    def task(self) -> str:
        return self.attrs["task"]

    @property
    def level(self) -> str:
        return self.attrs["level"]

    @property
    def dataset_id(self) -> str:
        return self.attrs["dataset_id"]

    def arrays(self) -> Dict[str, np.ndarray]:
        """The six arrays by key."""
        return {k: getattr(self, k) for k in ARRAY_KEYS}

    # --- episodes
    def episode_ends(self) -> np.ndarray:
        """Indices of the transitions that end an episode (terminals | timeouts)."""
        return np.flatnonzero(self.terminals | self.timeouts)

    def episode_lengths(self) -> np.ndarray:
        ends = self.episode_ends()
        return np.diff(np.concatenate([[-1], ends])).astype(np.int64)

    def episode_returns(self) -> np.ndarray:
        """Undiscounted return of each episode (float64, in file order)."""
        ends = self.episode_ends()
        if ends.size == 0:
            return np.zeros((0,), np.float64)
        starts = np.concatenate([[0], ends[:-1] + 1])
        return np.add.reduceat(self.rewards.astype(np.float64), starts)

    # --- torch
    def to_torch(self, device: Any = None) -> Dict[str, "torch.Tensor"]:
        """Tensors on `device` (default CPU, sharing memory with the numpy arrays there).

        observations/next_observations/rewards float32; actions int64 (converted on the
        device, after a compact uint transfer); terminals/timeouts **float32** 0./1., ready
        for TD targets such as ``r + gamma * (1 - terminals) * v``.
        """
        import torch

        dev = torch.device(device) if device is not None else torch.device("cpu")
        out: Dict[str, torch.Tensor] = {}
        for key in ARRAY_KEYS:
            arr = getattr(self, key)
            if key == "actions" and arr.dtype not in (np.uint8,):
                arr = arr.astype(np.int64)  # torch lacks uint16/uint32 arithmetic
            t = torch.from_numpy(np.ascontiguousarray(arr)).to(dev)
            if key == "actions":
                t = t.long()
            elif key in ("terminals", "timeouts"):
                t = t.float()
            out[key] = t
        return out


def load_dataset(path: PathLike, *, task: Optional[str] = None, bins: Optional[BinsLike] = None,
                 obs_dim: Optional[int] = None, verify_checksum: bool = True, device: Any = None,
                 data_dir: Optional[PathLike] = None) -> Dataset:
    """Read, validate and (by default) checksum-verify a dataset file.

    `path` is a file, or a dataset id looked up in the store (`data_dir`, else the default
    store). Checks every key, dtype and shape against the task (the registry for benchmark
    tasks, the file's attributes otherwise, and `task`/`bins`/`obs_dim` when given), finite
    floats, action indices in range, episode ends. A sha256 recorded in the ``.sha256``
    sidecar or a store registry must match the file unless ``verify_checksum=False``, and so
    must the data identity the file and its sidecar record (files written before identities
    were recorded have none; ``Dataset.identity`` is computed either way).
    With `device`, ``Dataset.tensors`` holds :meth:`Dataset.to_torch` (device) as well.
    Raises :class:`DatasetError` naming the file, the key and what was expected.
    """
    p, store = resolve_path(path, data_dir)
    if not p.is_file():
        open_file(p)  # raises the right DatasetError
    try:
        digest = sha256_file(p)
    except OSError as e:
        raise DatasetError(f"{p}: cannot read the file ({one_line(e)})", path=p) from None
    if verify_checksum:
        for where, recorded in registered_checksums(p, store):
            if recorded != digest:
                raise DatasetError(
                    f"{p}: checksum mismatch: expected sha256 {recorded} (recorded in {where}), "
                    f"got {digest}; the file is corrupted or was modified: re-create or "
                    f"re-import it, or pass verify_checksum=False to load it anyway", path=p)
    with open_file(p) as f:
        attrs, file_bins = header_of(f, p, task=task, bins=bins, obs_dim=obs_dim)
        check_storage(f, p)  # declared sizes backed by real storage and memory, before reading
        arrays: Dict[str, np.ndarray] = {}
        for key in ARRAY_KEYS:
            try:
                arrays[key] = f[key][()]
            except (OSError, RuntimeError, ValueError) as e:
                raise DatasetError(f"{p}: {key}: expected readable data, got a read error "
                                   f"({one_line(e)}): the file is corrupted", path=p,
                                   key=key) from None
    check_values(arrays, attrs, file_bins, path=p)
    attrs["bins"] = [int(b) for b in file_bins]
    identity = data_identity(arrays, attrs)
    if verify_checksum:
        _check_identity(p, identity, attrs)
    ds = Dataset(attrs=attrs, sha256=digest, path=p, identity=identity, **arrays)
    if device is not None:
        ds.tensors = ds.to_torch(device)
    return ds


def _check_identity(path: Path, identity: str, attrs: Mapping[str, Any]) -> None:
    """The identity computed from the data must be the one the file and its sidecar record."""
    for where, recorded in ((f"the file's {IDENTITY_ATTR} attribute", attrs.get(IDENTITY_ATTR)),
                            (str(sidecar_path(path)), read_sidecar_identity(path))):
        if recorded is not None and recorded != identity:
            raise DatasetError(
                f"{path}: data identity mismatch: expected {recorded} (recorded in {where}), "
                f"got {identity} from the arrays and defining attributes; the data was "
                f"modified: re-create or re-import it", path=path, key=IDENTITY_ATTR)


def identity_of_file(path: PathLike, sha256: Optional[str] = None) -> Tuple[str, str]:
    """(file sha256, data identity) of a dataset file.

    With `sha256` (the checksum a run recorded) the file must have it, else DatasetError; a
    sidecar that records that sha256 and an identity answers without reading the data.
    Otherwise the file is loaded, verified and its identity computed (this is how files
    written before identities were recorded get theirs)."""
    path = Path(path)
    if sha256 is not None and path.is_file() and read_sidecar(path) == sha256:
        recorded = read_sidecar_identity(path)
        if recorded is not None:
            return sha256, recorded
    ds = load_dataset(path)
    if sha256 is not None and ds.sha256 != sha256:
        raise DatasetError(f"{path}: expected sha256 {sha256} (as recorded), got {ds.sha256}: "
                           f"not the file that was used", path=path)
    return ds.sha256, ds.identity
