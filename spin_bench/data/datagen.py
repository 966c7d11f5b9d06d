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

Determinism: episode k of source s (random 0, medium 1, expert 2) under seed S starts from
``episode_seed(hash(S, s), k)`` and draws its noise from ``default_rng([S, s, k])``, so an
episode's content does not depend on how episodes are spread over environments or
processes; same seed, same machine -> identical arrays.

Generated datasets live in the store ``<data_dir>/generated`` (a DatasetStore of its own, so
they never shadow imported published files that share the id); non-default sizes or seeds
in ``<data_dir>/generated/n<T>-s<seed>``.
"""
from __future__ import annotations

import csv
import math
import multiprocessing as mp
import os
import time
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from spin_bench.atomic import atomic_output
from spin_bench.data.checksum import sha256_file
from spin_bench.envs.registry import GENERATED_REFERENCE_CSV
from spin_bench import envs as _envs  # the simulator is imported on first use
from spin_bench.envs.spaces import normalise_bins
from spin_bench.vocab import LEVELS

POLICY_ROOT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "policies")
DEFAULT_SIZES = {"medium": 1_000_000, "expert": 1_000_000, "medium-expert": 2_000_000,
                 "random-medium-expert": 200_000}
SOURCES = {"random": 0, "medium": 1, "expert": 2}
COLLECT_EPSILON = 0.1
REFERENCE_EPISODES = 50
REFERENCE_SEED = 1_000_003  # reference returns use their own episode streams
MEDIUM_FRACTION = (0.40, 0.50)  # medium return / expert return, as the protocol collects


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


def policy_dir(task: str, bins=3) -> str:
    """Where the shipped behaviour policies of (task, bins) live: spin_bench/policies/<task>
    for 3 bins, <task>-b<bins> otherwise ($SPIN_BENCH_POLICY_DIR replaces the root)."""
    root = os.environ.get("SPIN_BENCH_POLICY_DIR") or POLICY_ROOT
    b = list(np.atleast_1d(bins))
    suffix = "" if len(set(int(x) for x in b)) == 1 and int(b[0]) == 3 else \
        "-b" + "x".join(str(int(x)) for x in (b if len(set(b)) > 1 else b[:1]))
    return os.path.join(root, task + suffix)


def policy_path(task: str, source: str, bins=3) -> str:
    path = os.path.join(policy_dir(task, bins), f"{source}.pt")
    if not os.path.exists(path):
        raise FileNotFoundError(
            f"no shipped {source} behaviour policy for {task} (bins {bins}) at {path}; train one "
            f"with `python -m spin_bench.datagen train --task={task}` and cut the levels with "
            f"`python -m spin_bench.datagen export --task={task}`")
    return path


# ----------------------------------------------------------------------------- collection
def _stream_seed(seed: int, source_id: int) -> int:
    return int(np.random.SeedSequence([int(seed), int(source_id), 7]).generate_state(1)[0])


class _SnapshotPolicy:
    def __init__(self, path: str):
        from spin_bench.data.behaviour import load_snapshot

        self.net = load_snapshot(path)

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        return self.net.greedy(obs)


def collect_episodes(task: str, bins, policy, episode_ids: Sequence[int], seed: int,
                     epsilon: float = COLLECT_EPSILON, num_envs: int = 10,
                     source_id: int = 0, store: bool = True, progress=None) -> Dict:
    """Roll episodes `episode_ids` of the stream (seed, source_id), `num_envs` in lockstep.

    `policy`: (E, obs) -> (E, N) bin indices (batched greedy), a snapshot path, or None for
    uniform-random actions. Returns {'episode_ids', 'episode_returns', 'episode_lengths'}
    and, when `store`, per-episode 'obs' (L+1, obs_dim), 'actions' (L, N), 'rewards' (L,),
    'terminal' (bool, the episode terminated rather than being truncated).
    """
    import torch

    torch.set_num_threads(1)
    if isinstance(policy, (str, os.PathLike)):
        policy = _SnapshotPolicy(os.fspath(policy))
    episode_ids = list(episode_ids)
    E = max(1, min(int(num_envs), len(episode_ids)))
    envs = [_envs.DiscretizedDMCEnv(task, bins) for _ in range(E)]
    bins_arr = envs[0].bins
    N, obs_dim = envs[0].num_actions, envs[0].obs_dim
    T_max = int(round(envs[0].dm_env._step_limit)) if hasattr(envs[0].dm_env, "_step_limit") else 1000
    stream = _stream_seed(seed, source_id)
    from spin_bench.data.behaviour import episode_seed

    results: Dict[int, Dict] = {}
    queue = list(episode_ids)
    cur = [None] * E  # per env: dict of the running episode
    obs = np.zeros((E, obs_dim), np.float32)

    def start(i):
        k = queue.pop(0)
        rng = np.random.default_rng([int(seed), int(source_id), int(k)])
        if policy is None:
            noise_mask = None
            rand = rng.integers(0, bins_arr, (T_max, N))
        else:
            noise_mask = rng.random((T_max, N)) < epsilon
            rand = rng.integers(0, bins_arr, (T_max, N))
        o = envs[i].reset(seed=episode_seed(stream, k))[0]
        obs[i] = o
        ep = dict(k=k, t=0, ret=0.0, mask=noise_mask, rand=rand)
        if store:
            ep.update(obs=np.zeros((T_max + 1, obs_dim), np.float32),
                      act=np.zeros((T_max, N), np.uint8 if bins_arr.max() <= 256 else np.int64),
                      rew=np.zeros(T_max, np.float32))
            ep["obs"][0] = o
        cur[i] = ep

    for i in range(E):
        if queue:
            start(i)
    while any(c is not None for c in cur):
        live = [i for i in range(E) if cur[i] is not None]
        greedy = policy(obs) if policy is not None else None
        for i in live:
            ep = cur[i]
            t = ep["t"]
            if greedy is None:
                a = ep["rand"][t]
            else:
                a = np.where(ep["mask"][t], ep["rand"][t], greedy[i])
            o, r, te, tr, _ = envs[i].step(a)
            obs[i] = o
            ep["ret"] += r
            if store:
                ep["act"][t] = a
                ep["rew"][t] = r
                ep["obs"][t + 1] = o
            ep["t"] = t + 1
            if te or tr:
                L = t + 1
                res = dict(ret=ep["ret"], len=L, terminal=bool(te))
                if store:
                    res.update(obs=ep["obs"][:L + 1].copy(), act=ep["act"][:L].copy(),
                               rew=ep["rew"][:L].copy())
                results[ep["k"]] = res
                cur[i] = None
                if progress is not None:
                    progress(L)
                if queue:
                    start(i)
    for e in envs:
        e.close()
    ks = sorted(results)
    out = dict(episode_ids=np.asarray(ks), episode_returns=np.asarray([results[k]["ret"] for k in ks]),
               episode_lengths=np.asarray([results[k]["len"] for k in ks]))
    if store:
        out["episodes"] = [results[k] for k in ks]
    return out


_COUNTER = None


def _init_worker(counter):
    global _COUNTER
    _COUNTER = counter


def _worker_collect(args):
    task, bins, policy, ids, seed, epsilon, num_envs, source_id = args
    counter = _COUNTER
    import torch

    torch.set_num_threads(1)

    def progress(n):
        if counter is not None:
            with counter.get_lock():
                counter.value += n

    return collect_episodes(task, bins, policy, ids, seed, epsilon, num_envs, source_id,
                            store=True, progress=progress)


def collect_transitions(task: str, bins, source: str, num_transitions: int, seed: int,
                        epsilon: float = COLLECT_EPSILON, num_envs: int = 10,
                        num_workers: int = 2, bar=None) -> Dict[str, np.ndarray]:
    """The first `num_transitions` transitions of source `source`'s episode stream.

    Episodes are spread over `num_workers` processes (episode k to worker k % P; the
    content of an episode does not depend on where it runs)."""
    policy = None if source == "random" else policy_path(task, source, bins)
    source_id = SOURCES[source]
    probe = _envs.DiscretizedDMCEnv(task, bins)
    T_max = int(getattr(probe.dm_env, "_step_limit", 1000))
    probe.close()
    episodes: List[Dict] = []
    have, next_k = 0, 0
    while have < num_transitions:
        k_needed = max(1, math.ceil((num_transitions - have) / T_max))
        ids = list(range(next_k, next_k + k_needed))
        next_k += k_needed
        P = max(1, min(int(num_workers), len(ids)))
        if P == 1:
            part = [collect_episodes(task, bins, policy, ids, seed, epsilon, num_envs, source_id,
                                     progress=(bar.update if bar is not None else None))]
        else:
            ctx = mp.get_context("spawn")
            counter = ctx.Value("q", 0)
            jobs = [(task, bins, policy, ids[p::P], seed, epsilon, num_envs, source_id)
                    for p in range(P)]
            with ctx.Pool(P, initializer=_init_worker, initargs=(counter,)) as pool:
                res = pool.map_async(_worker_collect, jobs)
                seen = 0
                while not res.ready():
                    res.wait(1.0)
                    if bar is not None:
                        v = counter.value
                        bar.update(v - seen)
                        seen = v
                part = res.get()
                if bar is not None:
                    bar.update(counter.value - seen)
        merged = sorted((ep_k, ep) for p in part for ep_k, ep in zip(p["episode_ids"], p["episodes"]))
        for _, ep in merged:
            episodes.append(ep)
            have += ep["len"]
    return _episodes_to_arrays(episodes, num_transitions)


def _episodes_to_arrays(episodes: List[Dict], limit: int) -> Dict[str, np.ndarray]:
    obs, nxt, act, rew, term, tout, rets = [], [], [], [], [], [], []
    total = 0
    for ep in episodes:
        L = min(ep["len"], limit - total)
        if L <= 0:
            break
        obs.append(ep["obs"][:L])
        nxt.append(ep["obs"][1:L + 1])
        act.append(ep["act"][:L])
        rew.append(ep["rew"][:L])
        te = np.zeros(L, bool)
        to = np.zeros(L, bool)
        if L == ep["len"]:
            (te if ep["terminal"] else to)[-1] = True
            rets.append(float(ep["ret"]))
        else:
            to[-1] = True  # the quota ends inside this episode: truncate it
        term.append(te)
        tout.append(to)
        total += L
    return dict(observations=np.concatenate(obs), next_observations=np.concatenate(nxt),
                actions=np.concatenate(act), rewards=np.concatenate(rew),
                terminals=np.concatenate(term), timeouts=np.concatenate(tout),
                episode_returns=np.asarray(rets))


def _prefix(arr: Dict[str, np.ndarray], n: int) -> Dict[str, np.ndarray]:
    """The first n transitions of a collected stream (cut inside an episode -> timeout)."""
    out = {k: arr[k][:n].copy() for k in ("observations", "next_observations", "actions",
                                          "rewards", "terminals", "timeouts")}
    ends = np.flatnonzero(arr["terminals"] | arr["timeouts"])
    complete = int(np.searchsorted(ends, n - 1, side="right"))  # episodes ending at < n
    if not (out["terminals"][-1] or out["timeouts"][-1]):
        out["timeouts"][-1] = True
    out["episode_returns"] = arr["episode_returns"][:complete].copy()
    return out


# ----------------------------------------------------------------------------- references
def read_generated_references() -> Dict[Tuple[str, int], Dict[str, float]]:
    from spin_bench.envs.registry import generated_references

    return {k: dict(expert=v.expert, random=v.random) for k, v in generated_references().items()}


def compute_references(task: str, bins: int = 3, episodes: int = REFERENCE_EPISODES,
                       epsilon: float = COLLECT_EPSILON, num_envs: int = 10,
                       write: bool = True) -> Dict[str, float]:
    """Expert reference = the expert policy's mean return under the collection protocol,
    random = the uniform-random policy's; `episodes` each, from their own seed streams."""
    exp = collect_episodes(task, bins, policy_path(task, "expert", bins), range(episodes),
                           REFERENCE_SEED, epsilon, num_envs, SOURCES["expert"], store=False)
    rnd = collect_episodes(task, bins, None, range(episodes), REFERENCE_SEED, epsilon, num_envs,
                           SOURCES["random"], store=False)
    ref = dict(expert=round(float(exp["episode_returns"].mean()), 3),
               random=round(float(rnd["episode_returns"].mean()), 3),
               expert_std=float(exp["episode_returns"].std()),
               random_std=float(rnd["episode_returns"].std()), episodes=episodes)
    if write:
        write_reference(task, int(bins), ref["expert"], ref["random"], path=_reference_csv())
    return ref


def write_reference(task: str, bins: int, expert: float, random: float,
                    path: Optional[str] = None) -> None:
    path = path or _reference_csv()
    rows: Dict[Tuple[str, int], Tuple[float, float]] = {}
    if os.path.exists(path):
        with open(path, newline="") as f:
            for r in csv.DictReader(line for line in f if not line.startswith("#")):
                rows[(r["task"], int(r["bins"]))] = (float(r["expert"]), float(r["random"]))
    rows[(task, int(bins))] = (float(expert), float(random))
    with atomic_output(path) as tmp, open(tmp, "w", newline="") as f:
        f.write(f"# Reference returns of the datasets spin_bench generates (python -m "
                f"spin_bench.datagen references): expert = the shipped expert policy under the "
                f"collection protocol (per-slot epsilon {COLLECT_EPSILON}), random = uniform "
                f"random; mean over {REFERENCE_EPISODES} episodes each\n")
        f.write("task,bins,expert,random\n")
        for (t, b) in sorted(rows):
            f.write(f"{t},{b},{rows[(t, b)][0]},{rows[(t, b)][1]}\n")


def _reference_csv() -> str:
    """The package CSV for the shipped policies; with $SPIN_BENCH_POLICY_DIR (other
    policies) a reference_scores.csv in that directory instead."""
    root = os.environ.get("SPIN_BENCH_POLICY_DIR")
    return os.path.join(root, "reference_scores.csv") if root else GENERATED_REFERENCE_CSV


def references_for(task: str, bins: int = 3) -> Dict[str, float]:
    """Reference returns of (task, bins): from the CSV, measured (and recorded) if absent."""
    path = _reference_csv()
    from spin_bench.envs.registry import _read_reference_csv

    ref = _read_reference_csv(path, "generated").get((task, int(bins)))
    if ref is not None:
        return dict(expert=ref.expert, random=ref.random)
    return compute_references(task, bins)


# ----------------------------------------------------------------------------- datasets
def _data_api():
    try:
        from spin_bench.data import DatasetStore, dataset_id, write_dataset
    except ImportError:  # the package __init__ is not there (yet)
        from spin_bench.data.dataset import write_dataset
        from spin_bench.data.schema import dataset_id
        from spin_bench.data.store import DatasetStore
    return DatasetStore, dataset_id, write_dataset


def generated_store(data_dir=None, num_transitions: Optional[int] = None, seed: int = 0,
                    level: Optional[str] = None):
    """The DatasetStore generated datasets of this size and seed go to."""
    DatasetStore, _, _ = _data_api()
    base = DatasetStore(data_dir).root / "generated"
    default = num_transitions is None or (level is not None and int(num_transitions) == DEFAULT_SIZES[level])
    if default and int(seed) == 0:
        return DatasetStore(base)
    n = DEFAULT_SIZES[level] if num_transitions is None else int(num_transitions)
    return DatasetStore(base / f"n{n}-s{int(seed)}")


def generate_dataset(task: str, level: str, bins: int = 3, num_transitions: Optional[int] = None,
                     seed: int = 0, out: Optional[str] = None, data_dir=None,
                     num_workers: int = 2, num_envs: int = 10, epsilon: float = COLLECT_EPSILON,
                     progress: bool = True, register: bool = True,
                     cache: Optional[Dict] = None) -> Path:
    """Collect a level and write it (validated HDF5 + sha256 sidecar); return the path.

    `cache` (a dict shared between calls, as ``--level=all`` does) keeps each source's
    collected stream so that other levels take prefixes of it instead of re-collecting: the
    result is the same as collecting again (episode k of a stream is fixed by the seed)."""
    DatasetStore, dataset_id, write_dataset = _data_api()
    plan = level_plan(level, num_transitions)
    total = sum(n for _, n in plan)
    ds_id = dataset_id(task, level, bins)
    store = generated_store(data_dir, num_transitions, seed, level)
    path = Path(out) if out else store.path_for(ds_id)
    ref = references_for(task, bins)
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
        cached = None if cache is None else cache.get((task, str(bins), source, int(seed), float(epsilon)))
        if cached is not None and len(cached["rewards"]) >= n:
            arr = _prefix(cached, n)
            if bar is not None:
                bar.update(n)
        else:
            arr = collect_transitions(task, bins, source, n, seed, epsilon, num_envs, num_workers, bar)
            if cache is not None:
                cache[(task, str(bins), source, int(seed), float(epsilon))] = arr
            arr = dict(arr)
        behaviour_returns.extend(arr.pop("episode_returns").tolist())
        parts.append(arr)
        mixture[source] = n
        if source != "random":
            from spin_bench.data.behaviour import load_snapshot

            meta = load_snapshot(policy_path(task, source, bins)).meta
            policies[source] = dict(env_steps=meta.get("env_steps"),
                                    protocol_return=meta.get("protocol_return"),
                                    greedy_return=meta.get("greedy_return"),
                                    sha256=sha256_file(policy_path(task, source, bins)))
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
    from spin_bench.data.checksum import read_sidecar_identity

    print(f"[datagen] wrote {path} ({total} transitions, identity "
          f"{read_sidecar_identity(path)[:12]}..., sha256 {digest[:12]}..., "
          f"collect {collect_s:.1f}s, total {time.time() - t0:.1f}s)", flush=True)
    return path


def ensure_dataset(task: str, level: str, bins: int = 3, num_transitions: Optional[int] = None,
                   data_dir=None, seed: int = 0, progress: bool = True) -> Path:
    """Path of the generated dataset (task, level, bins, size, seed); generates it from the
    shipped behaviour policies first if the store does not hold it."""
    DatasetStore, dataset_id, _ = _data_api()
    ds_id = dataset_id(task, level, bins)
    store = generated_store(data_dir, num_transitions, seed, level)
    found = store.find(ds_id)
    if found is not None and (missing_policies(task, level, bins) or _made_by_shipped_policies(found, task, level, bins)):
        return found  # without shipped policies to regenerate from, the generated file is the data
    if found is not None:
        print(f"[datagen] {found} was generated by other behaviour policies than the shipped "
              f"ones; regenerating it", flush=True)
    return generate_dataset(task, level, bins, num_transitions, seed, data_dir=data_dir,
                            progress=progress)


def missing_policies(task: str, level: str, bins=3) -> List[str]:
    """Paths of the shipped behaviour policies that generating (task, level, bins) needs and
    that are not there (empty: the level can be generated)."""
    paths = [os.path.join(policy_dir(task, bins), f"{source}.pt") for source, _ in level_plan(level, None)
             if source != "random"]
    return [p for p in paths if not os.path.exists(p)]


def _made_by_shipped_policies(path, task: str, level: str, bins) -> bool:
    """True when the file records the sha256 of every shipped policy it was collected with."""
    from spin_bench.data import read_header

    recorded = read_header(path)["attrs"].get("policies") or {}
    for source, _ in level_plan(level, None):
        if source == "random":
            continue
        if (recorded.get(source) or {}).get("sha256") != sha256_file(policy_path(task, source, bins)):
            return False
    return True


# ----------------------------------------------------------------------------- levels
def evaluate_policy(task: str, bins, path_or_policy, episodes: int, seed: int = 2024,
                    epsilon: float = COLLECT_EPSILON, num_envs: int = 10) -> np.ndarray:
    out = collect_episodes(task, bins, path_or_policy, range(episodes), seed, epsilon,
                           num_envs, source_id=99, store=False)
    return out["episode_returns"]


def export_policies(task: str, run_dir: str, out_dir: Optional[str] = None, bins=None,
                    episodes: int = 20, top_k: int = 4, epsilon: float = COLLECT_EPSILON,
                    medium_fraction: Tuple[float, float] = MEDIUM_FRACTION) -> Dict:
    """Cut the levels from one training run's snapshots and ship them.

    expert: among the `top_k` snapshots by greedy evaluation, the best by mean return under
    the collection protocol over `episodes` episodes; medium: the snapshot whose protocol
    return is closest to the middle of `medium_fraction` x expert (candidates screened by
    their greedy evaluation). Copies expert.pt, medium.pt, learning_curve.csv,
    operative_config.gin and policies.json to `out_dir` (default the shipped location).
    """
    import json
    import shutil

    import torch

    from spin_bench.data.behaviour import load_snapshot, read_metrics, save_snapshot

    torch.set_num_threads(1)
    metrics = read_metrics(os.path.join(run_dir, "metrics.csv"))
    snaps = {int(p[5:13]): os.path.join(run_dir, "snapshots", p)
             for p in os.listdir(os.path.join(run_dir, "snapshots"))
             if p.startswith("step_") and p.endswith(".pt")}
    greedy = {int(r["env_steps"]): r["eval_return_mean"] for r in metrics if int(r["env_steps"]) in snaps}
    if not snaps:
        raise ValueError(f"{run_dir}: no snapshots")
    net0 = load_snapshot(next(iter(snaps.values())))
    bins = net0.bins if bins is None else bins
    out_dir = out_dir or policy_dir(task, bins)
    # policies shipped earlier (e.g. before a resumed run whose old snapshots are gone)
    # stay candidates
    for name in ("expert", "medium"):
        old = os.path.join(out_dir, f"{name}.pt")
        if os.path.exists(old):
            meta = load_snapshot(old).meta
            step = int(meta.get("env_steps", -1))
            if step >= 0 and step not in snaps and meta.get("greedy_return") is not None:
                keep = os.path.join(run_dir, "snapshots", f"shipped_{name}_{step:08d}.pt")
                shutil.copyfile(old, keep)
                snaps[step] = keep
                greedy[step] = float(meta["greedy_return"])
    if not greedy:
        raise ValueError(f"{run_dir}: no snapshot with an evaluation in metrics.csv")
    ranked = sorted(greedy, key=lambda s: -greedy[s])
    evals: Dict[int, float] = {}

    def proto(step):
        if step not in evals:
            evals[step] = float(evaluate_policy(task, bins, snaps[step], episodes, epsilon=epsilon).mean())
            print(f"[export] {task} step {step}: greedy {greedy[step]:.1f}, protocol {evals[step]:.1f}", flush=True)
        return evals[step]

    expert_step = max(ranked[:top_k], key=proto)
    expert_ret = evals[expert_step]
    lo, hi = medium_fraction
    mid = 0.5 * (lo + hi) * expert_ret
    # screen by greedy return (protocol returns run a little lower), then measure
    cands = sorted(greedy, key=lambda s: abs(greedy[s] - mid * 1.05))[:4]
    medium_step = min(cands, key=lambda s: abs(proto(s) - mid))
    os.makedirs(out_dir, exist_ok=True)
    summary = dict(task=task, bins=list(map(int, np.atleast_1d(bins))), run_dir=os.path.abspath(run_dir),
                   protocol=f"greedy + per-slot epsilon {epsilon}", episodes=episodes)
    for name, step in (("expert", expert_step), ("medium", medium_step)):
        net = load_snapshot(snaps[step])
        save_snapshot(net, os.path.join(out_dir, f"{name}.pt"), task=task, level=name,
                      env_steps=step, greedy_return=greedy[step], protocol_return=evals[step],
                      protocol_episodes=episodes, epsilon=epsilon)
        summary[name] = dict(env_steps=step, greedy_return=greedy[step], protocol_return=evals[step],
                             fraction_of_expert=evals[step] / expert_ret)
    shutil.copyfile(os.path.join(run_dir, "metrics.csv"), os.path.join(out_dir, "learning_curve.csv"))
    oc = os.path.join(run_dir, "operative_config.gin")
    if os.path.exists(oc):
        shutil.copyfile(oc, os.path.join(out_dir, "operative_config.gin"))
    summary["evaluated"] = {str(k): v for k, v in sorted(evals.items())}
    with open(os.path.join(out_dir, "policies.json"), "w") as f:
        json.dump(summary, f, indent=1)
    return summary
