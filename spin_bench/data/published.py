"""Importer for the published discretised DM Control datasets (Beeson, Ireland, Montana,
TMLR 2024; package ``dmc_datasets``).

Their layout: ``<source>/<bins>_bins/<domain>-<task>-<level>`` (no extension), each a pickle
of a list of 5-tuples ``(state, action bin indices, reward, next_state, done)`` with float64
states, 1,000-step episodes stored one after another, and ``done`` = the DM Control time
limit (a truncation). We read them with a restricted unpickler (nothing in the file can run
code), rebuild episode boundaries, and write our HDF5 format: float32 observations,
``timeouts`` = the episode ends, ``terminals`` all False.
"""
from __future__ import annotations

import dataclasses
import os
import pickle
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

from spin_bench.atomic import PathLike
from spin_bench.data.checksum import sha256_file
from spin_bench.data.dataset import write_dataset
from spin_bench.data.safe_pickle import RestrictedUnpickler, UnsafePickleError
from spin_bench.data.schema import DatasetError, action_dtype, dataset_id
from spin_bench.data.store import DatasetStore
from spin_bench.safe_load import MAX_PICKLE_BYTES, UnreadableFileError, open_regular
from spin_bench.envs.registry import get_task_spec
from spin_bench.vocab import LEVELS

PUBLISHED_EPISODE_LENGTH = 1000
GENERATOR = "spin_bench.data.published"
SOURCE_DESCRIPTION = ("dmc_datasets: Beeson, Ireland & Montana, 'An investigation of offline "
                      "reinforcement learning in factorisable action spaces', TMLR 2024")


@dataclasses.dataclass
class ImportResult:
    """What :func:`import_published` wrote."""

    path: Path
    dataset_id: str
    sha256: str
    num_transitions: int
    num_episodes: int
    warnings: List[str]


def published_path(source: PathLike, task: str, level: str, bins: int) -> Path:
    """``<source>/<bins>_bins/<domain>-<task>-<level>``."""
    return Path(source) / f"{int(bins)}_bins" / f"{task}-{level}"


def read_published_pickle(path: PathLike) -> Any:
    """Unpickle a published file with the restricted unpickler (DatasetError on failure)."""
    path = Path(path)
    try:
        with open_regular(path, "published dataset pickle", MAX_PICKLE_BYTES) as f:  # no FIFOs, devices
            return RestrictedUnpickler(f).load()
    except UnreadableFileError as e:
        raise DatasetError(str(e), path=path) from None
    except UnsafePickleError as e:
        raise DatasetError(f"{path}: unsafe pickle: {e}", path=path) from None
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError,
            KeyError, MemoryError, OverflowError, UnicodeError, RecursionError) as e:
        msg = "ran out of data" if isinstance(e, EOFError) else f"{type(e).__name__}: {e}"
        raise DatasetError(f"{path}: not a readable published dataset pickle ({msg}): truncated "
                           f"or corrupted", path=path) from None


def _as_vector(x: Any, t: int, what: str, path: Path, kinds: str) -> np.ndarray:
    arr = np.asarray(x)
    if arr.ndim != 1 or arr.dtype.kind not in kinds:
        raise DatasetError(
            f"{path}: transition {t}: {what}: expected a 1-D numeric array, got "
            f"{type(x).__name__} of shape {arr.shape} dtype {arr.dtype}", path=path, key=what)
    return arr


def transitions_to_arrays(transitions: Any, path: Path, obs_dim: int, num_actions: int
                          ) -> Dict[str, np.ndarray]:
    """List of (state, action, reward, next_state, done) -> float64/int64/bool arrays."""
    if not isinstance(transitions, (list, tuple)):
        raise DatasetError(f"{path}: expected a list of (state, action, reward, next_state, done) "
                           f"tuples, got {type(transitions).__name__}", path=path)
    n = len(transitions)
    if n == 0:
        raise DatasetError(f"{path}: expected transitions, got an empty list", path=path)
    obs = np.empty((n, obs_dim), np.float64)
    nxt = np.empty((n, obs_dim), np.float64)
    act = np.empty((n, num_actions), np.int64)
    rew = np.empty((n,), np.float64)
    done = np.empty((n,), np.bool_)
    for t, tr in enumerate(transitions):
        if not isinstance(tr, (tuple, list)) or len(tr) != 5:
            raise DatasetError(
                f"{path}: transition {t}: expected a 5-tuple (state, action, reward, next_state, "
                f"done), got {type(tr).__name__}"
                + (f" of length {len(tr)}" if isinstance(tr, (tuple, list)) else ""), path=path)
        s, a, r, s2, d = tr
        s = _as_vector(s, t, "state", path, "iuf")
        s2 = _as_vector(s2, t, "next_state", path, "iuf")
        a = _as_vector(a, t, "action", path, "iuf")
        if s.shape != (obs_dim,) or s2.shape != (obs_dim,):
            bad = s.shape if s.shape != (obs_dim,) else s2.shape
            raise DatasetError(
                f"{path}: transition {t}: state: expected {obs_dim} values (the task's "
                f"observation size), got shape {bad}", path=path, key="observations")
        if a.shape != (num_actions,):
            raise DatasetError(
                f"{path}: transition {t}: action: expected {num_actions} bin indices (the task's "
                f"sub-actions), got shape {a.shape}", path=path, key="actions")
        if a.dtype.kind == "f":
            if not (np.isfinite(a).all() and (a == np.round(a)).all()):
                raise DatasetError(f"{path}: transition {t}: action: expected integer bin "
                                   f"indices, got {a.tolist()}", path=path, key="actions")
        if isinstance(r, (bool, np.bool_)) or not isinstance(r, (int, float, np.integer, np.floating)):
            if not (isinstance(r, np.ndarray) and r.size == 1 and r.dtype.kind in "iuf"):
                raise DatasetError(f"{path}: transition {t}: reward: expected a number, got "
                                   f"{type(r).__name__}", path=path, key="rewards")
        if not isinstance(d, (bool, np.bool_, int, np.integer)) or int(d) not in (0, 1):
            raise DatasetError(f"{path}: transition {t}: done: expected a boolean, got {d!r}",
                               path=path, key="timeouts")
        obs[t] = s
        nxt[t] = s2
        act[t] = a
        rew[t] = float(np.asarray(r).reshape(()))
        done[t] = bool(d)
    return {"states": obs, "actions": act, "rewards": rew, "next_states": nxt, "dones": done}


def episode_ends(dones: np.ndarray, episode_length: Optional[int], path: Path
                 ) -> Tuple[np.ndarray, List[str]]:
    """Boolean episode-end flags rebuilt from `dones` (and the fixed episode length).

    With `episode_length` (the published data: 1,000), every episode must be exactly that
    long: the ``done`` flags must mark exactly every `episode_length`-th transition, or be
    absent altogether (then the boundaries come from the length alone). With None, the
    ``done`` flags are taken as they are, and the last transition closes the data.
    """
    n = len(dones)
    notes: List[str] = []
    if episode_length is None:
        ends = dones.copy()
        if not ends[-1]:
            ends[-1] = True
            notes.append("the data ends mid-episode: its last transition is marked as a timeout")
        return ends, notes
    if episode_length < 1:
        raise ValueError(f"episode_length must be a positive integer or None, got {episode_length}")
    if n % episode_length:
        raise DatasetError(
            f"{path}: expected a whole number of {episode_length}-step episodes, got {n} "
            f"transitions", path=path)
    expected = np.zeros(n, np.bool_)
    expected[episode_length - 1::episode_length] = True
    if not dones.any():
        notes.append(f"no done flags in the source: episode ends placed every "
                     f"{episode_length} transitions")
        return expected, notes
    if not np.array_equal(dones, expected):
        t = int(np.flatnonzero(dones != expected)[0])
        what = "done=True" if dones[t] else "done=False"
        raise DatasetError(
            f"{path}: expected done flags exactly at the end of each {episode_length}-step "
            f"episode, got {what} at transition {t}", path=path)
    return expected, notes


def count_discontinuities(states: np.ndarray, next_states: np.ndarray, ends: np.ndarray) -> int:
    """Transitions t inside an episode whose next_state differs from state[t+1]."""
    if len(states) < 2:
        return 0
    inside = ~ends[:-1]
    differ = np.any(next_states[:-1] != states[1:], axis=1)
    return int(np.count_nonzero(differ & inside))


def convert_published(transitions: Any, *, task: str, level: str, bins: int,
                      source_path: PathLike, source_sha256: str, version: int = 1,
                      episode_length: Optional[int] = PUBLISHED_EPISODE_LENGTH
                      ) -> Tuple[Dict[str, np.ndarray], Dict[str, Any], List[str]]:
    """Published transitions -> (arrays, attrs, warnings) in our schema (not yet written)."""
    path = Path(source_path)
    spec = get_task_spec(task)
    raw = transitions_to_arrays(transitions, path, spec.obs_dim, spec.num_actions)
    ends, notes = episode_ends(raw["dones"], episode_length, path)
    bad = np.flatnonzero((raw["actions"] < 0) | (raw["actions"] >= bins))
    if bad.size:
        t, d = divmod(int(bad[0]), spec.num_actions)
        raise DatasetError(
            f"{path}: transition {t}: action: expected bin indices 0 <= a < {bins} "
            f"(bins={bins}), got {int(raw['actions'][t, d])} for sub-action {d}",
            path=path, key="actions")
    jumps = count_discontinuities(raw["states"], raw["next_states"], ends)
    if jumps:
        notes.append(f"{jumps} transitions inside episodes have next_state != the following "
                     f"state")
    arrays = {
        "observations": raw["states"].astype(np.float32),
        "next_observations": raw["next_states"].astype(np.float32),
        "actions": raw["actions"].astype(action_dtype(bins)),
        "rewards": raw["rewards"].astype(np.float32),
        "terminals": np.zeros(len(ends), np.bool_),
        "timeouts": ends,
    }
    from spin_bench import __version__

    ep_starts = np.concatenate([[0], np.flatnonzero(ends)[:-1] + 1])
    returns = np.add.reduceat(raw["rewards"], ep_starts)
    attrs: Dict[str, Any] = {
        "dataset_id": dataset_id(task, level, bins, version),
        "task": task, "level": level, "bins": [int(bins)] * spec.num_actions,
        "behaviour_policy": f"published dmc_datasets '{level}' data ({SOURCE_DESCRIPTION})",
        "behaviour_returns": returns.astype(np.float64),
        "generator": GENERATOR, "generator_version": __version__,
        "source": SOURCE_DESCRIPTION,
        # within the published layout, not where this machine keeps it: the same source
        # gives the same file (and identity: the source's sha256 is part of it) anywhere
        "source_path": f"{path.parent.name}/{path.name}", "source_sha256": source_sha256,
        "source_discontinuities": jumps,
        "episode_length": int(episode_length) if episode_length else 0,
    }
    return arrays, attrs, notes


def import_published(source: PathLike, task: str, level: str, bins: int, *,
                     out: Optional[PathLike] = None, data_dir: Optional[PathLike] = None,
                     version: int = 1, episode_length: Optional[int] = PUBLISHED_EPISODE_LENGTH,
                     overwrite: bool = False, compression: str = "gzip") -> ImportResult:
    """Import ``<source>/<bins>_bins/<task>-<level>`` into our format.

    Writes `out` if given (with its ``.sha256`` sidecar), else the store (`data_dir`, else
    ``$SPIN_BENCH_DATA_DIR`` or ``~/.spin_bench/datasets``) under the dataset id, registered.
    Refuses to replace an existing output unless `overwrite`.
    """
    spec = get_task_spec(task)
    if level not in LEVELS:
        raise ValueError(f"level {level!r} is not a published level; expected one of {list(LEVELS)}")
    if isinstance(bins, bool) or not isinstance(bins, (int, np.integer)) or bins < 2:
        raise ValueError(f"bins must be an integer >= 2 (the published '<bins>_bins' folder), "
                         f"got {bins!r}")
    bins = int(bins)
    if episode_length is not None and (isinstance(episode_length, bool) or not isinstance(episode_length, int)
                                       or not 1 <= episode_length <= 10**7):
        raise ValueError(f"episode_length must be a positive integer (at most 10^7) or None, got {episode_length!r}")
    src = published_path(source, task, level, bins)
    if os.path.lexists(src) and not src.is_dir():
        try:  # a FIFO, a device or an oversized file is named as such, never read
            with open_regular(src, "published dataset pickle", MAX_PICKLE_BYTES):
                pass
        except UnreadableFileError as e:
            raise DatasetError(str(e), path=src) from None
    if not src.is_file():
        hint = f"; {spec.name} was published with bins {list(spec.published_bins)}" \
            if bins not in spec.published_bins else ""
        raise DatasetError(f"{src}: no such file (expected the published layout "
                           f"<source>/<bins>_bins/<domain>-<task>-<level>{hint})", path=src)
    ds_id = dataset_id(task, level, bins, version)
    store = None if out is not None else DatasetStore(data_dir)
    target = Path(out) if out is not None else store.path_for(ds_id)
    if target.exists() and not overwrite:
        raise DatasetError(f"{target}: already exists; pass overwrite=True (--overwrite) to "
                           f"replace it", path=target)
    source_sha = sha256_file(src)
    transitions = read_published_pickle(src)
    arrays, attrs, notes = convert_published(
        transitions, task=task, level=level, bins=bins, source_path=src,
        source_sha256=source_sha, version=version, episode_length=episode_length)
    del transitions
    digest = write_dataset(target, arrays, attrs, compression=compression, coerce=False)
    if store is not None:
        store.register(target)
    n_eps = int(np.count_nonzero(arrays["timeouts"] | arrays["terminals"]))
    return ImportResult(path=target, dataset_id=ds_id, sha256=digest,
                        num_transitions=len(arrays["rewards"]), num_episodes=n_eps,
                        warnings=notes)


def find_published(source: PathLike) -> List[Tuple[str, str, int]]:
    """(task, level, bins) of every published file found under `source`."""
    found = []
    root = Path(source)
    if not root.is_dir():
        return found
    for sub in sorted(root.iterdir()):
        if not (sub.is_dir() and sub.name.endswith("_bins") and sub.name[:-5].isdigit()):
            continue
        for f in sorted(sub.iterdir()):
            for level in sorted(LEVELS, key=len, reverse=True):
                if f.is_file() and f.name.endswith("-" + level):
                    task = f.name[: -len(level) - 1]
                    if task.count("-") == 1:
                        found.append((task, level, int(sub.name[:-5])))
                    break
    return found

