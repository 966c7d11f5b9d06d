"""Benchmark datasets we generate ourselves, from the shipped DecQN behaviour policies.

Levels (sizes default to the published datasets'):

=======================  ==========  =====================================================
level                    default T   content
=======================  ==========  =====================================================
``medium``               1,000,000   the *medium* policy (a snapshot at ~40-50% of the
                                     expert's return)
``expert``               1,000,000   the *expert* policy (the best snapshot)
``medium-expert``        2,000,000   first half ``medium`` then half ``expert``; with the
                                     same seed exactly the ``medium`` and ``expert`` data
``random-medium-expert``   200,000   thirds: uniform-random, medium, expert (in blocks)
=======================  ==========  =====================================================

Collection protocol: the medium and expert policies act greedily on their Q-network
(``argmax`` per slot) and each sub-action is then, independently with probability
``epsilon`` (0.1), replaced by a uniform random bin ("per-slot epsilon"); the random
source draws every sub-action uniformly. Episodes run to the DM Control time limit (1,000
steps); when a level's quota ends inside an episode the data is cut there and the last
transition is marked ``timeouts=True``.

Determinism: see :mod:`spin_bench.datagen.rollouts` (same seed -> identical arrays; the policies run in float64).

Generated datasets live in the store ``<data_dir>/generated`` (a DatasetStore of its own, so
they never shadow imported published files that share the id); non-default sizes or seeds
in ``<data_dir>/generated/n<T>-s<seed>``.
"""
from __future__ import annotations

import csv
import os
import time
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import numpy as np

from spin_bench.atomic import atomic_output
from spin_bench.data.checksum import read_sidecar_identity, sha256_file
from spin_bench.data.dataset import write_dataset
from spin_bench.data.header import read_header
from spin_bench.data.schema import dataset_id
from spin_bench.data.store import DatasetStore
from spin_bench.datagen.paths import policy_dir, policy_path, resolve_version
from spin_bench.datagen.rollouts import (COLLECT_EPSILON, POLICY_PRECISION, SOURCES, collect_episodes,
                                         collect_transitions, prefix)
from spin_bench.envs.registry import GENERATED_REFERENCE_CSV
from spin_bench.vocab import LEVELS

# Transitions per level (the published datasets' sizes), keyed and ordered by vocab.LEVELS, the
# one list of levels: a level added there without a size here fails at import.
DEFAULT_SIZES = {level: {"medium": 1_000_000, "expert": 1_000_000, "medium-expert": 2_000_000,
                         "random-medium-expert": 200_000}[level] for level in LEVELS}
REFERENCE_EPISODES = 50
REFERENCE_SEED = 1_000_003  # reference returns use their own episode streams


# ----------------------------------------------------------------------------- plans
def level_plan(level: str, num_transitions: Optional[int] = None) -> List[Tuple[str, int]]:
    """[(source, transitions)] in file order for `level`."""
    if level not in DEFAULT_SIZES:
        raise ValueError(f"level must be one of {list(DEFAULT_SIZES)} (or 'all'), got {level!r}")
    n = DEFAULT_SIZES[level] if num_transitions is None else int(num_transitions)
    if n < 1:
        raise ValueError(f"num_transitions must be >= 1, got {n}")
    if level in ("medium", "expert"):
        return [(level, n)]
    if level == "medium-expert":
        return [("medium", n // 2), ("expert", n - n // 2)]
    third = n // 3
    return [("random", third), ("medium", third), ("expert", n - 2 * third)]


# ----------------------------------------------------------------------------- references
def compute_references(task: str, bins: int = 3, episodes: int = REFERENCE_EPISODES,
                       epsilon: float = COLLECT_EPSILON, num_envs: int = 10,
                       write: bool = True, version: int = 1) -> Dict[str, float]:
    """Expert reference = version `version`'s expert policy's mean return under the collection
    protocol, random = the uniform-random policy's; `episodes` each, from their own seed streams."""
    exp = collect_episodes(task, bins, policy_path(task, "expert", bins, version), range(episodes),
                           REFERENCE_SEED, epsilon, num_envs, SOURCES["expert"], store=False)
    rnd = collect_episodes(task, bins, None, range(episodes), REFERENCE_SEED, epsilon, num_envs,
                           SOURCES["random"], store=False)
    ref = dict(expert=round(float(exp["episode_returns"].mean()), 3),
               random=round(float(rnd["episode_returns"].mean()), 3),
               expert_std=float(exp["episode_returns"].std()),
               random_std=float(rnd["episode_returns"].std()), episodes=episodes, version=int(version))
    if write:
        write_reference(task, int(bins), ref["expert"], ref["random"], path=_reference_csv(), episodes=episodes,
                        version=version)
    return ref


def write_reference(task: str, bins: int, expert: float, random: float,
                    path: Optional[str] = None, episodes: int = REFERENCE_EPISODES, version: int = 1) -> None:
    """Set (task, bins, version)'s row of the reference CSV, with the episodes it was measured over
    (rows of a CSV from before a column was written keep what it said: REFERENCE_EPISODES
    episodes, version 1)."""
    path = path or _reference_csv()
    rows: Dict[Tuple[str, int, int], Tuple[float, float, int]] = {}
    if os.path.exists(path):
        with open(path, newline="") as f:
            for r in csv.DictReader(line for line in f if not line.startswith("#")):
                rows[(r["task"], int(r["bins"]), int(r.get("version") or 1))] = (
                    float(r["expert"]), float(r["random"]), int(r.get("episodes") or REFERENCE_EPISODES))
    rows[(task, int(bins), int(version))] = (float(expert), float(random), int(episodes))
    with atomic_output(path) as tmp, open(tmp, "w", newline="") as f:
        f.write(f"# Reference returns of the datasets spin_bench generates (python -m "
                f"spin_bench.datagen references): expert = the shipped expert policy of the row's "
                f"dataset version under the collection protocol (per-slot epsilon {COLLECT_EPSILON}), "
                f"random = uniform random; each the mean over the row's `episodes` episodes\n")
        f.write("task,bins,version,expert,random,episodes\n")
        for (t, b, v) in sorted(rows):
            e, r, n = rows[(t, b, v)]
            f.write(f"{t},{b},{v},{e},{r},{n}\n")


def _reference_csv() -> str:
    """The package CSV for the shipped policies; with $SPIN_BENCH_POLICY_DIR (other
    policies) a reference_scores.csv in that directory instead."""
    root = os.environ.get("SPIN_BENCH_POLICY_DIR")
    return os.path.join(root, "reference_scores.csv") if root else GENERATED_REFERENCE_CSV


def references_for(task: str, bins: int = 3, version: int = 1) -> Dict[str, float]:
    """Reference returns of (task, bins, version): from the CSV, measured (and recorded) if absent."""
    path = _reference_csv()
    from spin_bench.envs.registry import _read_reference_csv

    ref = _read_reference_csv(path, "generated").get((task, int(bins), int(version)))
    if ref is not None:
        return dict(expert=ref.expert, random=ref.random)
    return compute_references(task, bins, version=version)


# ----------------------------------------------------------------------------- datasets
def generated_store(data_dir=None, num_transitions: Optional[int] = None, seed: int = 0,
                    level: Optional[str] = None):
    """The DatasetStore generated datasets of this size and seed go to."""
    base = DatasetStore(data_dir).root / "generated"
    default = num_transitions is None or (level is not None and int(num_transitions) == DEFAULT_SIZES[level])
    if default and int(seed) == 0:
        return DatasetStore(base)
    n = DEFAULT_SIZES[level] if num_transitions is None else int(num_transitions)
    return DatasetStore(base / f"n{n}-s{int(seed)}")


class CappedProgress:
    """A progress bar's ``update`` that counts at most ``cap`` in all: collection rolls whole
    episodes and keeps the first ``cap`` transitions, so the bar counts what the file holds and
    ends at its total (tqdm drops the percentage once a bar passes its total)."""

    def __init__(self, bar, cap: int):
        self.bar, self.left = bar, int(cap)

    def update(self, n: int = 1) -> None:
        n = min(int(n), self.left)
        if n > 0:
            self.left -= n
            self.bar.update(n)


def generate_dataset(task: str, level: str, bins: int = 3, num_transitions: Optional[int] = None,
                     seed: int = 0, out: Optional[str] = None, data_dir=None,
                     num_workers: int = 2, num_envs: int = 10, epsilon: float = COLLECT_EPSILON,
                     progress: bool = True, register: bool = True,
                     cache: Optional[Dict] = None, version: Optional[int] = None) -> Path:
    """Collect a level and write it (validated HDF5 + sha256 sidecar); return the path.
    `version`: which version of the shipped policies (and so the dataset id's ``-v<k>``); None
    takes the newest.

    `cache` (a dict shared between calls, as ``--level=all`` does) keeps each source's
    collected stream so that other levels take prefixes of it instead of re-collecting: the
    result is the same as collecting again (episode k of a stream is fixed by the seed)."""
    plan = level_plan(level, num_transitions)
    total = sum(n for _, n in plan)
    version = resolve_version(task, bins, version)
    ds_id = dataset_id(task, level, bins, version)
    store = generated_store(data_dir, num_transitions, seed, level)
    path = Path(out) if out else store.path_for(ds_id)
    ref = references_for(task, bins, version)
    t0 = time.time()
    bar = None
    if progress:
        from tqdm import tqdm
        bar = tqdm(total=total, desc=f"{ds_id}", unit="tr", smoothing=0.1, mininterval=1.0)
    parts, mixture, behaviour_returns = [], {}, []
    policies = {}
    for source, n in plan:
        if n == 0:
            continue
        key = (task, str(bins), version, source, int(seed), float(epsilon))
        cached = None if cache is None else cache.get(key)
        if cached is not None and len(cached["rewards"]) >= n:
            arr = prefix(cached, n)
            if bar is not None:
                bar.update(n)
        else:
            # whole episodes are collected and cut to n: the bar counts the n transitions kept
            arr = collect_transitions(task, bins, source, n, seed, epsilon, num_envs, num_workers,
                                      None if bar is None else CappedProgress(bar, n), version=version)
            if cache is not None:
                cache[key] = arr
            arr = dict(arr)
        behaviour_returns.extend(arr.pop("episode_returns").tolist())
        parts.append(arr)
        mixture[source] = n
        if source != "random":
            from spin_bench.datagen.policy import load_snapshot

            snapshot = policy_path(task, source, bins, version)
            meta = load_snapshot(snapshot).meta
            policies[source] = dict(env_steps=meta.get("env_steps"),
                                    protocol_return=meta.get("protocol_return"),
                                    greedy_return=meta.get("greedy_return"),
                                    sha256=sha256_file(snapshot),
                                    precision=POLICY_PRECISION)
    if bar is not None:
        bar.close()
    arrays = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    collect_s = time.time() - t0
    desc = {"random": "uniform-random sub-actions",
            "medium": f"DecQN medium snapshot, greedy + per-slot epsilon {epsilon}",
            "expert": f"DecQN expert snapshot, greedy + per-slot epsilon {epsilon}"}
    attrs = dict(task=task, level=level, bins=bins, dataset_id=ds_id, seed=int(seed),
                 behaviour_policy="; ".join(f"{s}: {desc[s]} ({n} transitions)" for s, n in mixture.items()),
                 behaviour_returns=np.asarray(behaviour_returns[:4096], np.float64),
                 mixture=mixture, collection_epsilon=float(epsilon),
                 collection_protocol="per-slot epsilon: each sub-action of the greedy action is "
                                     "replaced by a uniform random bin with probability epsilon",
                 policies=policies, reference_expert=float(ref["expert"]),
                 reference_random=float(ref["random"]), reference_source="generated",
                 num_transitions=int(total))
    digest = write_dataset(path, arrays, attrs)
    if register and not out:  # an explicit --out file gets its .sha256 sidecar only
        store.register(path)
    print(f"[datagen] wrote {path} ({total} transitions, identity "
          f"{read_sidecar_identity(path)[:12]}..., sha256 {digest[:12]}..., "
          f"collect {collect_s:.1f}s, total {time.time() - t0:.1f}s)", flush=True)
    return path


def ensure_dataset(task: str, level: str, bins: int = 3, num_transitions: Optional[int] = None,
                   data_dir=None, seed: int = 0, progress: bool = True, version: Optional[int] = None) -> Path:
    """Path of the generated dataset (task, level, bins, size, seed, version; None: the newest
    shipped); generates it from the shipped behaviour policies first if the store does not hold it."""
    version = resolve_version(task, bins, version)
    ds_id = dataset_id(task, level, bins, version)
    store = generated_store(data_dir, num_transitions, seed, level)
    found = store.find(ds_id)
    if found is not None and (missing_policies(task, level, bins, version)
                              or _made_by_shipped_policies(found, task, level, bins, version)):
        return found  # without shipped policies to regenerate from, the generated file is the data
    if found is not None:
        print(f"[datagen] {found} was generated by other behaviour policies than the shipped "
              f"ones, or by the float32 collector whose data differs between machines; "
              f"regenerating it", flush=True)
    return generate_dataset(task, level, bins, num_transitions, seed, data_dir=data_dir,
                            progress=progress, version=version)


def missing_policies(task: str, level: str, bins=3, version: Optional[int] = None) -> List[str]:
    """Paths of the shipped behaviour policies (of `version`; None: the newest) that generating
    (task, level, bins) needs and that are not there (empty: the level can be generated)."""
    version = resolve_version(task, bins, version)
    paths = [os.path.join(policy_dir(task, bins, version), f"{source}.pt")
             for source, _ in level_plan(level, None) if source != "random"]
    return [p for p in paths if not os.path.exists(p)]


def _made_by_shipped_policies(path, task: str, level: str, bins, version: int = 1) -> bool:
    """True when the file records the sha256 of every shipped policy (of `version`) it was
    collected with, and that each was evaluated at rollouts.POLICY_PRECISION (files from the
    float32 collector, which record none, are stale)."""
    recorded = read_header(path)["attrs"].get("policies") or {}
    for source, _ in level_plan(level, None):
        if source == "random":
            continue
        rec = recorded.get(source) or {}
        if (rec.get("sha256") != sha256_file(policy_path(task, source, bins, version))
                or rec.get("precision") != POLICY_PRECISION):
            return False
    return True
