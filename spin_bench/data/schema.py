"""The spin_bench dataset schema: keys, dtypes, attributes, dataset ids and validation.

One dataset = six arrays over T transitions (D4RL style):

=====================  ==========  ====================================================
key                    shape       dtype
=====================  ==========  ====================================================
``observations``       (T, obs)    float32
``next_observations``  (T, obs)    float32
``actions``            (T, N)      smallest unsigned int holding ``max(bins) - 1``
                                   (uint8 up to 256 bins, then uint16, uint32)
``rewards``            (T,)        float32
``terminals``          (T,)        bool (the task ended: no bootstrapping)
``timeouts``           (T,)        bool (truncation: time limit or end of the data)
=====================  ==========  ====================================================

Every episode ends on a transition with ``terminals | timeouts``; the last transition of
the file must end one (mark it ``timeouts=True`` to truncate the data there).

Required attributes: ``format_version``, ``dataset_id``, ``task``, ``level``, ``bins`` (one
int per sub-action), ``obs_dim``, ``num_actions``, ``num_episodes``, ``generator``,
``generator_version``, ``created`` (ISO 8601, UTC). Written by the writer: ``data_identity``
(:mod:`spin_bench.data.identity`). Optional, by convention:
``behaviour_policy`` (str), ``behaviour_returns`` (1-D floats: returns of the behaviour
policy's episodes as its generator measured them), ``seed`` (int), ``source_path`` and
``source_sha256`` (imports). Any other attribute is kept as is; dicts and lists of strings
are stored as JSON.
"""
from __future__ import annotations

import math
import re
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np

from spin_bench.envs.registry import known_dims
from spin_bench.vocab import split_task_name

FORMAT_VERSION = 1

ARRAY_KEYS: Tuple[str, ...] = (
    "observations", "actions", "rewards", "next_observations", "terminals", "timeouts")
FLOAT_KEYS: Tuple[str, ...] = ("observations", "next_observations", "rewards")
FLAG_KEYS: Tuple[str, ...] = ("terminals", "timeouts")
REQUIRED_ATTRS: Tuple[str, ...] = (
    "format_version", "dataset_id", "task", "level", "bins", "obs_dim", "num_actions",
    "num_episodes", "generator", "generator_version", "created")

# behaviour_returns is stored as an HDF5 attribute: keep it well below the 64 KiB limit.
MAX_BEHAVIOUR_RETURNS = 4096

BinsLike = Union[int, Sequence[int], np.ndarray]

_NAME_RE = re.compile(r"^[a-z0-9_]+$")
_LEVEL_TOKEN_RE = re.compile(r"^[a-z][a-z0-9_]*$")
_RESERVED_LEVEL_TOKEN_RE = re.compile(r"^[bv][0-9]+(x[0-9]+)*$")
_ID_RE = re.compile(
    r"^(?P<domain>[a-z0-9_]+)-(?P<name>[a-z0-9_]+)-(?P<level>[a-z0-9_-]+?)"
    r"-b(?P<bins>[0-9]+(?:x[0-9]+)*)-v(?P<version>[0-9]+)$")


class DatasetError(ValueError):
    """A dataset file (or the arrays about to be written) does not follow the format.

    The message names the file, the key (array or attribute) and what was expected.
    ``path`` and ``key`` are kept as attributes (None where they do not apply).
    """

    def __init__(self, message: str, *, path: Any = None, key: Optional[str] = None):
        super().__init__(message)
        self.path = path
        self.key = key


def fail(path: Any, key: Optional[str], expected: str, got: Any) -> "DatasetError":
    """Build the standard error: '<path>: <key>: expected <expected>, got <got>'."""
    where = f"{path}: {key}" if key else f"{path}"
    return DatasetError(f"{where}: expected {expected}, got {got}", path=path, key=key)


# ----------------------------------------------------------------------------- ids

def _bins_list(bins: BinsLike) -> List[int]:
    """bins (int or per-dimension sequence) -> list of ints >= 2 (no N check)."""
    if isinstance(bins, (bool, np.bool_)):
        raise ValueError(f"bins must be an integer >= 2 or a list of integers >= 2, got {bins!r}")
    if isinstance(bins, (int, np.integer)):
        values = [int(bins)]
    else:
        try:
            arr = np.asarray(list(bins))
        except TypeError:
            raise ValueError(
                f"bins must be an integer >= 2 or a list of integers >= 2, got {bins!r}") from None
        if arr.ndim != 1 or arr.size == 0 or not np.issubdtype(arr.dtype, np.integer):
            raise ValueError(f"bins must be an integer >= 2 or a list of integers >= 2, got {bins!r}")
        values = [int(b) for b in arr]
    if min(values) < 2:
        raise ValueError(f"bins must be an integer >= 2 or a list of integers >= 2, got {bins!r}")
    return values


def _check_task(task: str) -> Tuple[str, str]:
    domain, name = split_task_name(task)
    if not (_NAME_RE.match(domain) and _NAME_RE.match(name)):
        raise ValueError(f"task {task!r} must be lower-case 'domain-task' (letters, digits, '_')")
    return domain, name


def _check_level(level: str) -> None:
    tokens = level.split("-") if isinstance(level, str) else [None]
    if not all(isinstance(t, str) and _LEVEL_TOKEN_RE.match(t)
               and not _RESERVED_LEVEL_TOKEN_RE.match(t) for t in tokens):
        raise ValueError(
            f"level {level!r} must be lower-case words joined by '-' (e.g. 'medium-expert'), "
            f"none of them of the form b<digits> or v<digits>")


def dataset_id(task: str, level: str, bins: BinsLike, version: int = 1) -> str:
    """The id of a dataset: ``<domain>-<task>-<level>-b<bins>-v<version>``.

    ``dataset_id("cheetah-run", "medium-expert", 3)`` -> ``"cheetah-run-medium-expert-b3-v1"``;
    a uniform per-dimension list gives the same ``b3``, a non-uniform one ``b3x5x3``.
    """
    _check_task(task)
    _check_level(level)
    values = _bins_list(bins)
    if isinstance(version, bool) or not isinstance(version, (int, np.integer)) or version < 1:
        raise ValueError(f"dataset version must be an integer >= 1, got {version!r}")
    btxt = str(values[0]) if len(set(values)) == 1 else "x".join(str(b) for b in values)
    return f"{task}-{level}-b{btxt}-v{int(version)}"


def parse_dataset_id(ds_id: str) -> Dict[str, Any]:
    """Inverse of :func:`dataset_id`: {'task', 'level', 'bins' (list; one entry if uniform),
    'version'}. Raises ValueError on a malformed id."""
    m = _ID_RE.match(ds_id) if isinstance(ds_id, str) else None
    if not m:
        raise ValueError(
            f"{ds_id!r} is not a dataset id; expected '<domain>-<task>-<level>-b<bins>-v<version>', "
            f"e.g. 'cheetah-run-medium-expert-b3-v1'")
    level = m.group("level")
    _check_level(level)
    return {"task": f"{m.group('domain')}-{m.group('name')}", "level": level,
            "bins": [int(b) for b in m.group("bins").split("x")],
            "version": int(m.group("version"))}


def is_dataset_id(text: str) -> bool:
    """Whether `text` is spelled like a dataset id."""
    try:
        parse_dataset_id(text)
    except ValueError:
        return False
    return True


def action_dtype(bins: BinsLike) -> np.dtype:
    """Smallest unsigned integer dtype that holds every bin index (max(bins) - 1)."""
    top = max(_bins_list(bins)) - 1
    for dt in (np.uint8, np.uint16, np.uint32, np.uint64):
        if top <= np.iinfo(dt).max:
            return np.dtype(dt)
    raise ValueError(f"bins {bins!r} too large")  # pragma: no cover


# ----------------------------------------------------------------------------- validation

def _describe(shape: Tuple[int, ...], dtype: Any) -> str:
    return f"shape {tuple(shape)} {np.dtype(dtype).name}"


def check_header(arrays: Mapping[str, Any], attrs: Mapping[str, Any], *, path: Any,
                 task: Optional[str] = None, bins: Optional[BinsLike] = None,
                 obs_dim: Optional[int] = None) -> np.ndarray:
    """Check keys, attributes, dtypes and shapes (metadata only, no data is read).

    `arrays` maps keys to anything with ``.shape`` and ``.dtype`` (numpy arrays or h5py
    datasets). Expected sizes come from the task registry for benchmark tasks, from the
    attributes otherwise, and must also agree with `task`, `bins`, `obs_dim` when given.
    Returns the per-dimension bins (int64, shape (N,)).
    """
    for key in REQUIRED_ATTRS:
        if key not in attrs:
            raise fail(path, key, "a dataset attribute", "none (missing)")
    _check_version(attrs, path)
    file_task = _check_names(attrs, path, task)
    exp_obs, exp_n = _check_sizes(attrs, path, file_task, obs_dim)
    file_bins = _check_bins(attrs, path, exp_n, bins)
    _check_dataset_id(attrs, path, file_task, file_bins, exp_n)
    _check_provenance(attrs, path)
    _check_arrays(arrays, path, file_bins, exp_obs, exp_n)
    return file_bins


def _check_version(attrs: Mapping[str, Any], path: Any) -> None:
    """format_version: an integer in 1..FORMAT_VERSION."""
    version = attrs["format_version"]
    if not isinstance(version, (int, np.integer)) or isinstance(version, bool):
        raise fail(path, "format_version", "an integer", repr(version))
    if int(version) > FORMAT_VERSION:
        raise fail(path, "format_version",
                   f"<= {FORMAT_VERSION} (written by a newer spin_bench: upgrade to read it)",
                   int(version))
    if int(version) < 1:
        raise fail(path, "format_version", f"1..{FORMAT_VERSION}", int(version))


def _check_names(attrs: Mapping[str, Any], path: Any, task: Optional[str]) -> str:
    """task ('domain-task', the requested one when given) and level; returns the file's task."""
    file_task = attrs["task"]
    try:
        _check_task(file_task)
    except ValueError:
        raise fail(path, "task", "'domain-task' (e.g. 'cheetah-run')", repr(file_task)) from None
    if task is not None and task != file_task:
        raise fail(path, "task", f"{task!r} (as requested)", repr(file_task))
    try:
        _check_level(attrs["level"])
    except ValueError:
        raise fail(path, "level", "lower-case words joined by '-'", repr(attrs["level"])) from None
    return file_task


def _check_sizes(attrs: Mapping[str, Any], path: Any, file_task: str,
                 obs_dim: Optional[int]) -> Tuple[int, int]:
    """obs_dim, num_actions, num_episodes: non-negative integers, the registry's sizes for a
    benchmark task and the requested obs_dim; returns (obs_dim, num_actions)."""
    for key in ("obs_dim", "num_actions", "num_episodes"):
        val = attrs[key]
        if isinstance(val, bool) or not isinstance(val, (int, np.integer)) or val < 0:
            raise fail(path, key, "a non-negative integer", repr(val))
    dims = known_dims(file_task)
    exp_obs, exp_n = int(attrs["obs_dim"]), int(attrs["num_actions"])
    if dims is not None:
        if exp_obs != dims[1]:
            raise fail(path, "obs_dim", f"{dims[1]} for {file_task} (task registry)", exp_obs)
        if exp_n != dims[0]:
            raise fail(path, "num_actions", f"{dims[0]} for {file_task} (task registry)",
                       exp_n)
    if obs_dim is not None and int(obs_dim) != exp_obs:
        raise fail(path, "obs_dim", f"{int(obs_dim)} (as requested)", exp_obs)
    return exp_obs, exp_n


def _check_bins(attrs: Mapping[str, Any], path: Any, exp_n: int, bins: Optional[BinsLike]) -> np.ndarray:
    """bins: one integer >= 2 per sub-action, the requested ones when given; returns them."""
    raw_bins = attrs["bins"]
    try:
        file_bins = np.asarray(_bins_list(raw_bins), dtype=np.int64)
    except ValueError:
        raise fail(path, "bins", f"{exp_n} integers >= 2", repr(raw_bins)) from None
    if file_bins.shape != (exp_n,):
        raise fail(path, "bins", f"{exp_n} integers >= 2 (one per sub-action)",
                   f"{len(file_bins)} values {file_bins.tolist()}")
    if bins is not None:
        try:
            want = np.broadcast_to(np.asarray(_bins_list(bins), dtype=np.int64), (exp_n,))
        except ValueError:
            raise fail(path, "bins", f"{exp_n} integers >= 2 (as requested)", repr(bins)) from None
        if not np.array_equal(want, file_bins):
            raise fail(path, "bins", f"{want.tolist()} (as requested)", file_bins.tolist())
    return file_bins


def _check_dataset_id(attrs: Mapping[str, Any], path: Any, file_task: str, file_bins: np.ndarray,
                      exp_n: int) -> None:
    """dataset_id: well-formed and naming the file's task, level and bins."""
    ds_id = attrs["dataset_id"]
    try:
        parsed = parse_dataset_id(ds_id)
    except ValueError:
        raise fail(path, "dataset_id", "'<domain>-<task>-<level>-b<bins>-v<version>'",
                   repr(ds_id)) from None
    id_bins = np.broadcast_to(np.asarray(parsed["bins"], dtype=np.int64), (exp_n,)) \
        if len(parsed["bins"]) in (1, exp_n) else None
    if (parsed["task"] != file_task or parsed["level"] != attrs["level"]
            or id_bins is None or not np.array_equal(id_bins, file_bins)):
        expected = dataset_id(file_task, attrs["level"], file_bins.tolist(), parsed["version"])
        raise fail(path, "dataset_id", f"{expected!r} (from the task, level and bins attributes)",
                   repr(ds_id))


def _check_provenance(attrs: Mapping[str, Any], path: Any) -> None:
    """generator, generator_version, created: non-empty strings; behaviour_returns (optional):
    a short 1-D list of numbers."""
    for key in ("generator", "generator_version", "created"):
        if not isinstance(attrs[key], str) or not attrs[key]:
            raise fail(path, key, "a non-empty string", repr(attrs[key]))

    if "behaviour_returns" in attrs:
        br = np.asarray(attrs["behaviour_returns"])
        if br.ndim != 1 or br.dtype.kind not in "iuf" or len(br) > MAX_BEHAVIOUR_RETURNS:
            raise fail(path, "behaviour_returns",
                       f"a 1-D list of at most {MAX_BEHAVIOUR_RETURNS} numbers",
                       f"shape {br.shape} {br.dtype}")


def _check_arrays(arrays: Mapping[str, Any], path: Any, file_bins: np.ndarray, exp_obs: int,
                  exp_n: int) -> None:
    """Exactly ARRAY_KEYS, each of its dtype and shape, all with the same number (>= 1) of rows."""
    missing = [k for k in ARRAY_KEYS if k not in arrays]
    if missing:
        raise fail(path, missing[0], "an array (keys: " + ", ".join(ARRAY_KEYS) + ")",
                   "none (missing)")
    extra = sorted(k for k in arrays if k not in ARRAY_KEYS)
    if extra:
        raise fail(path, extra[0], "no such key (keys: " + ", ".join(ARRAY_KEYS) + ")",
                   "an unexpected key")
    act_dt = action_dtype(file_bins)
    n_rows = arrays["observations"].shape[0] if len(arrays["observations"].shape) else None
    expected = {
        "observations": ((n_rows, exp_obs), np.dtype(np.float32)),
        "next_observations": ((n_rows, exp_obs), np.dtype(np.float32)),
        "actions": ((n_rows, exp_n), act_dt),
        "rewards": ((n_rows,), np.dtype(np.float32)),
        "terminals": ((n_rows,), np.dtype(np.bool_)),
        "timeouts": ((n_rows,), np.dtype(np.bool_)),
    }
    for key in ARRAY_KEYS:
        shape, dtype = expected[key]
        arr = arrays[key]
        got_shape, got_dtype = tuple(arr.shape), np.dtype(arr.dtype)
        if got_dtype != dtype:
            extra_hint = (f" (smallest unsigned int for bins {file_bins.tolist()})"
                          if key == "actions" else "")
            raise fail(path, key, f"dtype {dtype.name}{extra_hint}", f"dtype {got_dtype.name}")
        rows = "T" if n_rows is None else str(n_rows)
        want_txt = "(" + ", ".join([rows] + [str(s) for s in shape[1:]]) + (",)" if len(shape) == 1 else ")")
        if len(got_shape) != len(shape) or (n_rows is not None and got_shape[0] != n_rows) \
                or got_shape[1:] != shape[1:]:
            why = ""
            if key != "observations" and len(got_shape) == len(shape) and got_shape[1:] == shape[1:]:
                why = " (all arrays must have the same number of transitions)"
            raise fail(path, key, f"shape {want_txt}{why}", f"shape {got_shape}")
    if n_rows == 0:
        raise fail(path, "observations", "at least one transition", "0 transitions")


def _first_nonfinite(arr: np.ndarray, block: int = 1 << 16) -> Optional[Tuple[int, ...]]:
    """Index of the first non-finite value, or None (fast path: one float64 sum)."""
    if np.isfinite(arr.sum(dtype=np.float64)):
        return None
    for start in range(0, arr.shape[0], block):
        bad = ~np.isfinite(arr[start:start + block])
        if bad.any():
            idx = np.argwhere(bad)[0]
            idx[0] += start
            return tuple(int(i) for i in idx)
    return None  # pragma: no cover - the sum was not finite only by overflow


def check_values(arrays: Mapping[str, np.ndarray], attrs: Mapping[str, Any], bins: np.ndarray,
                 *, path: Any) -> None:
    """Check the array contents: finite floats, action indices in range, episode ends."""
    for key in FLOAT_KEYS:
        bad = _first_nonfinite(arrays[key])
        if bad is not None:
            value = arrays[key][bad]
            raise fail(path, key, "finite values",
                       f"{value} at index {bad if len(bad) > 1 else bad[0]}")
    actions = arrays["actions"]
    if actions.size:
        col_max = actions.max(axis=0).astype(np.int64)
        over = np.nonzero(col_max >= bins)[0]
        if over.size:
            d = int(over[0])
            t = int(np.argmax(actions[:, d] >= bins[d]))
            raise fail(path, "actions",
                       f"bin indices 0 <= a < {int(bins[d])} for sub-action {d}",
                       f"{int(actions[t, d])} at transition {t}")
    ends = arrays["terminals"] | arrays["timeouts"]
    if not ends[-1]:
        raise fail(path, "timeouts",
                   "the last transition to end an episode (terminals[-1] or timeouts[-1]; "
                   "set timeouts[-1]=True to truncate the data there)", "False")
    n_episodes = int(np.count_nonzero(ends))
    if int(attrs["num_episodes"]) != n_episodes:
        raise fail(path, "num_episodes",
                   f"{n_episodes} (transitions with terminals or timeouts set)",
                   int(attrs["num_episodes"]))


def count_episodes(terminals: np.ndarray, timeouts: np.ndarray) -> int:
    """Number of episodes: transitions that end one (terminals | timeouts)."""
    return int(np.count_nonzero(np.asarray(terminals, bool) | np.asarray(timeouts, bool)))


def coerce_arrays(arrays: Mapping[str, Any], bins: BinsLike, *, path: Any) -> Dict[str, np.ndarray]:
    """Safe conversions to the schema's dtypes before validation.

    Floats (and integers) -> float32 for observations/rewards; integer actions, checked to
    be in range *before* the cast (no wrap-around), -> the schema's unsigned dtype;
    0/1 flags -> bool; a trailing singleton dimension of rewards/flags is dropped. Anything
    else is left for the validator to reject.
    """
    out: Dict[str, np.ndarray] = {}
    for key, value in arrays.items():
        arr = np.asarray(value)
        if key in ("rewards",) + FLAG_KEYS and arr.ndim == 2 and arr.shape[1] == 1:
            arr = arr[:, 0]
        if key in FLOAT_KEYS and arr.dtype != np.float32 and arr.dtype.kind in "iuf":
            arr = arr.astype(np.float32)
        elif key in FLAG_KEYS and arr.dtype != np.bool_ and arr.dtype.kind in "iuf":
            if arr.size and not np.isin(arr, (0, 1)).all():
                raise fail(path, key, "booleans (or 0/1)", f"values other than 0/1 ({arr.dtype})")
            arr = arr.astype(np.bool_)
        elif key == "actions" and arr.dtype.kind in "iu":
            target = action_dtype(bins)
            if arr.dtype != target:
                if arr.size and arr.min() < 0:
                    t, d = (int(i) for i in np.argwhere(arr < 0)[0]) if arr.ndim == 2 else (0, 0)
                    raise fail(path, "actions", "bin indices >= 0",
                               f"{int(arr.min())} (first negative at transition {t}, sub-action {d})")
                if arr.size and arr.max() > np.iinfo(target).max:
                    raise fail(path, "actions", f"bin indices < {max(_bins_list(bins))}",
                               int(arr.max()))
                arr = arr.astype(target)
        out[key] = arr
    return out


def joint_space_size(bins: Sequence[int]) -> float:
    """bins_1 * ... * bins_N (a float: it overflows int64 for dog-trot at 100 bins)."""
    return float(math.prod(int(b) for b in bins))
