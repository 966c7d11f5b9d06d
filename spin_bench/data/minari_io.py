"""Minari export and import of our datasets (``minari`` is an optional extra: ``pip install
spin_bench[minari]``).

Export (``python -m spin_bench.data export-minari DATASET_OR_ID``): one Minari episode per
episode of ours, with

- the id ``dmc-discrete/<task>/<level>-b<bins>-v<version>`` (from our dataset id, e.g.
  ``cheetah-run-medium-expert-b3-v1`` -> ``dmc-discrete/cheetah-run/medium-expert-b3-v1``);
- observations ``Box(-inf, inf, (obs_dim,), float32)``: an episode of T steps holds T + 1
  observations (ours: observations[start..end] and the last next_observation), so our
  next_observations must chain (next_observations[t] == observations[t + 1] inside an
  episode; export fails naming the transition otherwise);
- actions ``MultiDiscrete(bins)`` (int64 bin indices), rewards, terminations (our
  ``terminals``) and truncations (our ``timeouts``);
- the environment spec (``DiscretizedDMCEnv`` with the task and bins, so
  ``dataset.recover_environment()`` builds our environment where spin_bench is installed);
- provenance in the metadata under ``spin_bench`` (JSON): every attribute of our file, its
  sha256, and one sha256 per array (dtype, shape and bytes), which import checks.

Import (``import-minari MINARI_ID_OR_DIR``) rebuilds the six arrays, checks them against
those checksums when present, and writes our HDF5 format (validated, with its sha256 sidecar,
registered in the store unless ``--out``). The Minari storage is HDF5 (``data_format='hdf5'``,
no JPEG encoding: lossless).
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
import warnings
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Tuple, Union

import numpy as np

from spin_bench.data.dataset import Dataset, load_dataset, write_dataset
from spin_bench.data.schema import ARRAY_KEYS, DatasetError, action_dtype, parse_dataset_id
from spin_bench.data.store import DatasetStore

NAMESPACE = "dmc-discrete"
PROVENANCE_KEY = "spin_bench"
ENV_ENTRY_POINT = "spin_bench.envs.dmc:DiscretizedDMCEnv"
ROOT_ENV_VAR = "MINARI_DATASETS_PATH"

PathLike = Union[str, os.PathLike]

__all__ = ["NAMESPACE", "array_sha256", "export_minari", "import_minari", "minari_id", "minari_root"]


def _minari():
    try:
        import minari
    except ImportError:
        raise RuntimeError("the Minari export/import needs the optional 'minari' package: "
                           "pip install 'spin_bench[minari]'") from None
    return minari


def minari_root(root: Optional[PathLike] = None) -> Path:
    """Where Minari keeps local datasets: `root`, else ``$MINARI_DATASETS_PATH``, else
    ``~/.minari/datasets`` (Minari's own default)."""
    if root is not None and os.fspath(root) != "":
        return Path(root)
    env = os.environ.get(ROOT_ENV_VAR)
    return Path(env) if env else Path.home() / ".minari" / "datasets"


def minari_id(ds_id: str) -> str:
    """Our dataset id -> its Minari id: 'cheetah-run-medium-expert-b3-v1' ->
    'dmc-discrete/cheetah-run/medium-expert-b3-v1'."""
    task = parse_dataset_id(ds_id)["task"]
    return f"{NAMESPACE}/{task}/{ds_id[len(task) + 1:]}"


def array_sha256(arr: np.ndarray) -> str:
    """sha256 of an array's dtype, shape and C-order bytes."""
    arr = np.ascontiguousarray(arr)
    h = hashlib.sha256(f"{arr.dtype.str}{tuple(arr.shape)}".encode())
    h.update(arr.tobytes())
    return h.hexdigest()


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


@contextlib.contextmanager
def _datasets_path(root: Path) -> Iterator[None]:
    """Point Minari at `root` (it reads ``$MINARI_DATASETS_PATH`` on every call)."""
    old = os.environ.get(ROOT_ENV_VAR)
    os.environ[ROOT_ENV_VAR] = os.fspath(root)
    try:
        yield
    finally:
        if old is None:
            os.environ.pop(ROOT_ENV_VAR, None)
        else:
            os.environ[ROOT_ENV_VAR] = old


def _episode_bounds(ds: Dataset) -> List[Tuple[int, int]]:
    """[(start, end)] inclusive, checking that next_observations chain inside each episode."""
    ends = ds.episode_ends()
    starts = np.concatenate([[0], ends[:-1] + 1])
    inner = np.ones(ds.num_transitions, bool)
    inner[ends] = False
    idx = np.flatnonzero(inner[:-1])
    if idx.size:
        bad = idx[np.any(ds.next_observations[idx] != ds.observations[idx + 1], axis=1)]
        if bad.size:
            raise DatasetError(
                f"{ds.path}: next_observations: expected next_observations[t] == observations[t + 1] "
                f"inside an episode (a Minari episode stores its T + 1 observations once), got a "
                f"difference at transition {int(bad[0])} ({bad.size} in all)", path=ds.path,
                key="next_observations")
    return list(zip(starts.tolist(), ends.tolist()))


def export_minari(dataset: PathLike, *, root: Optional[PathLike] = None,
                  data_dir: Optional[PathLike] = None, dataset_id: Optional[str] = None,
                  overwrite: bool = False) -> Tuple[str, Path]:
    """Write our dataset (a file or a store id) as a Minari dataset under `root`; return
    (Minari id, its directory). Nothing appears under `root` until the dataset is complete."""
    minari = _minari()
    import gymnasium as gym
    from minari.data_collector import EpisodeBuffer

    ds = load_dataset(dataset, data_dir=data_dir)
    mid = dataset_id or minari_id(ds.dataset_id)
    root = minari_root(root)
    final = root / mid
    if final.exists() and not overwrite:
        raise FileExistsError(f"{final}: a Minari dataset {mid} exists already (pass --overwrite "
                              f"to replace it, or --id to choose another id)")
    buffers = []
    for i, (s, e) in enumerate(_episode_bounds(ds)):
        buffers.append(EpisodeBuffer(
            id=i, observations=np.concatenate([ds.observations[s:e + 1], ds.next_observations[e:e + 1]]),
            actions=ds.actions[s:e + 1].astype(np.int64), rewards=ds.rewards[s:e + 1],
            terminations=ds.terminals[s:e + 1], truncations=ds.timeouts[s:e + 1], infos={}))
    bins = [int(b) for b in ds.bins]
    token = "x".join(str(b) for b in bins) if len(set(bins)) > 1 else str(bins[0])
    spec = gym.envs.registration.EnvSpec(
        id=f"spin_bench/{ds.task}-b{token}-v0", entry_point=ENV_ENTRY_POINT,
        kwargs={"task": ds.task, "bins": bins}, disable_env_checker=True)
    provenance = {"dataset_id": ds.dataset_id, "sha256": ds.sha256, "attrs": _jsonable(ds.attrs),
                  "array_sha256": {k: array_sha256(getattr(ds, k)) for k in ARRAY_KEYS}}
    ref = {}
    if "reference_expert" in ds.attrs and "reference_random" in ds.attrs:
        ref = {"ref_max_score": float(ds.attrs["reference_expert"]),
               "ref_min_score": float(ds.attrs["reference_random"])}
    root.mkdir(parents=True, exist_ok=True)
    tmp_root = Path(tempfile.mkdtemp(prefix=".spin_bench-export-", dir=root))
    try:
        with _datasets_path(tmp_root), warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*author_email.*")
            out = minari.create_dataset_from_buffers(
                dataset_id=mid, buffer=buffers, env=spec, eval_env=spec, author="spin_bench",
                observation_space=gym.spaces.Box(-np.inf, np.inf, (ds.obs_dim,), np.float32),
                action_space=gym.spaces.MultiDiscrete(np.asarray(bins, np.int64)),
                algorithm_name=str(ds.attrs.get("behaviour_policy", ds.attrs.get("generator", ""))),
                code_permalink="https://pypi.org/project/spin-bench/",
                description=(f"{ds.dataset_id}: discretised DM Control {ds.task} ({bins} bins per "
                             f"sub-action), level {ds.level}, exported by spin_bench; provenance "
                             f"in metadata['{PROVENANCE_KEY}']"),
                requirements=["spin_bench", "dm_control"], data_format="hdf5", jpeg_encoding=False,
                **ref)
            out.storage.update_metadata({PROVENANCE_KEY: json.dumps(provenance, sort_keys=True)})
        final.parent.mkdir(parents=True, exist_ok=True)
        old = None
        if final.exists():  # --overwrite: move the old one aside, rename the new one in
            old = Path(tempfile.mkdtemp(prefix=".spin_bench-old-", dir=root))
            os.replace(final, old / "dataset")
        os.replace(tmp_root / mid, final)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
        ns_meta = tmp_root / NAMESPACE / "namespace_metadata.json"
        if ns_meta.exists() and not (root / NAMESPACE / ns_meta.name).exists():
            os.replace(ns_meta, root / NAMESPACE / ns_meta.name)
    finally:
        shutil.rmtree(tmp_root, ignore_errors=True)
    return mid, final


def _open_minari(source: PathLike, root: Optional[PathLike]):
    """A MinariDataset from a directory (the dataset's or its data/ folder) or an id in `root`."""
    minari = _minari()
    p = Path(source)
    if not p.exists():
        p = minari_root(root) / os.fspath(source)
    data = p / "data" if (p / "data").is_dir() else p
    if not (data / "metadata.json").is_file():
        raise FileNotFoundError(f"{source}: no Minari dataset there (expected a dataset directory "
                                f"or a Minari id under {minari_root(root)})")
    return minari.MinariDataset(data), data


def _provenance(raw: Any, data_path: Path) -> Dict[str, Any]:
    """Our provenance record in a Minari dataset's metadata, every field of its type, else
    DatasetError naming the file and the field (never a bare KeyError)."""
    where = f"{data_path / 'metadata.json'}: {PROVENANCE_KEY}"

    def bad(what: str) -> DatasetError:
        return DatasetError(f"{where}: malformed provenance: {what} (re-export the dataset, or remove "
                            f"{PROVENANCE_KEY} and pass --task and --level)", path=data_path, key=PROVENANCE_KEY)

    try:
        prov = json.loads(raw) if isinstance(raw, (str, bytes)) else raw
    except (ValueError, RecursionError):
        raise bad("not valid JSON") from None
    if not isinstance(prov, dict):
        raise bad(f"expected a JSON object, got {type(prov).__name__}")
    attrs, sums = prov.get("attrs"), prov.get("array_sha256")
    if not isinstance(attrs, dict):
        raise bad("'attrs' must be an object")
    if not isinstance(sums, dict) or not all(isinstance(sums.get(k), str) for k in ARRAY_KEYS):
        raise bad(f"'array_sha256' must map each of {', '.join(ARRAY_KEYS)} to a sha256 string")
    if not isinstance(prov.get("sha256"), str):
        raise bad("'sha256' must be a string")
    for key in ("task", "level"):
        if not isinstance(attrs.get(key), str):
            raise bad(f"attrs.{key} must be a string")
    if attrs.get("dataset_id") is not None and not isinstance(attrs["dataset_id"], str):
        raise bad("attrs.dataset_id must be a string")
    if "behaviour_returns" in attrs and not (isinstance(attrs["behaviour_returns"], list) and all(
            isinstance(x, (int, float)) and not isinstance(x, bool) for x in attrs["behaviour_returns"])):
        raise bad("attrs.behaviour_returns must be a list of numbers")
    return prov


def import_minari(source: PathLike, *, root: Optional[PathLike] = None, out: Optional[PathLike] = None,
                  data_dir: Optional[PathLike] = None, overwrite: bool = False,
                  task: Optional[str] = None, level: Optional[str] = None) -> Tuple[Path, str]:
    """Read a Minari dataset (a directory or an id under `root`) into our HDF5 format; return
    (path, sha256). Arrays are checked against the export's per-array checksums when the
    dataset carries our provenance; other Minari datasets need `task` and `level`."""
    import gymnasium as gym

    mds, data_path = _open_minari(source, root)
    meta = mds.storage.metadata
    prov = _provenance(meta[PROVENANCE_KEY], data_path) if PROVENANCE_KEY in meta else None
    if not isinstance(mds.action_space, gym.spaces.MultiDiscrete) or mds.action_space.nvec.ndim != 1:
        raise DatasetError(f"{data_path}: action_space: expected MultiDiscrete over one axis, got "
                           f"{mds.action_space}", path=data_path, key="action_space")
    obs_space = mds.observation_space
    if not isinstance(obs_space, gym.spaces.Box) or len(obs_space.shape) != 1:
        raise DatasetError(f"{data_path}: observation_space: expected a 1-D Box, got {obs_space}",
                           path=data_path, key="observation_space")
    bins = [int(b) for b in mds.action_space.nvec]
    parts: Dict[str, List[np.ndarray]] = {k: [] for k in ARRAY_KEYS}
    for ep in mds.iterate_episodes():
        obs = np.asarray(ep.observations)
        parts["observations"].append(obs[:-1])
        parts["next_observations"].append(obs[1:])
        parts["actions"].append(np.asarray(ep.actions))
        parts["rewards"].append(np.asarray(ep.rewards))
        parts["terminals"].append(np.asarray(ep.terminations, bool))
        timeouts = np.asarray(ep.truncations, bool).copy()
        if not (timeouts[-1] or parts["terminals"][-1][-1]):
            timeouts[-1] = True  # an episode cut without a flag: a truncation in our format
        parts["timeouts"].append(timeouts)
    if not parts["rewards"]:
        raise DatasetError(f"{data_path}: expected at least one episode, got none", path=data_path)
    arrays = {k: np.concatenate(v) for k, v in parts.items()}
    arrays["actions"] = arrays["actions"].astype(action_dtype(bins))
    for k in ("observations", "next_observations", "rewards"):
        arrays[k] = arrays[k].astype(np.float32)
    if prov is not None:
        attrs = dict(prov["attrs"])
        if "behaviour_returns" in attrs:
            attrs["behaviour_returns"] = np.asarray(attrs["behaviour_returns"], np.float64)
        for k in ARRAY_KEYS:
            got = array_sha256(arrays[k])
            if got != prov["array_sha256"][k]:
                raise DatasetError(
                    f"{data_path}: {k}: checksum mismatch: expected sha256 {prov['array_sha256'][k]} "
                    f"(recorded at export), got {got}; the Minari dataset was modified or corrupted",
                    path=data_path, key=k)
    else:
        if not task or not level:
            raise DatasetError(f"{data_path}: this Minari dataset was not exported by spin_bench: "
                               f"pass --task and --level", path=data_path)
        attrs = {"task": task, "level": level, "bins": bins}
    attrs["minari_id"] = str(meta.get("dataset_id", ""))
    if prov is not None:
        attrs["minari_source_sha256"] = prov["sha256"]
    store = DatasetStore(data_dir)
    ds_id = attrs.get("dataset_id")
    if ds_id is None:
        from spin_bench.data.schema import dataset_id as make_id
        ds_id = attrs["dataset_id"] = make_id(attrs["task"], attrs["level"], bins)
    path = Path(out) if out else store.path_for(ds_id)
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path}: exists already (pass --overwrite to replace it)")
    digest = write_dataset(path, arrays, attrs)
    if out is None:
        store.register(path)
    return path, digest
