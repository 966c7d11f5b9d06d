"""Rolling policies in the discretised environments: episode streams with per-episode seeds,
the collection protocol (greedy + per-slot epsilon), several environments in lockstep and
several processes, and the conversion of episodes into transition arrays.

Determinism: episode k of source s (random 0, medium 1, expert 2) under seed S starts from
``episode_seed(hash(S, s), k)`` and draws its noise from ``default_rng([S, s, k])``, so an
episode's content does not depend on how episodes are spread over environments or
processes. The behaviour policies run in float64 (see datagen.policy.load_snapshot), so the
same seed gives identical arrays on every machine we checked (docs/data-identity.md).
"""
from __future__ import annotations

import math
import multiprocessing as mp
import os
from typing import Dict, List, Sequence

import numpy as np

from spin_bench import envs as _envs  # the simulator is imported on first use
from spin_bench.datagen.paths import policy_path

SOURCES = {"random": 0, "medium": 1, "expert": 2}
# The behaviour policies' forward pass during collection; each generated file records it per policy.
POLICY_PRECISION = "float64"
COLLECT_EPSILON = 0.1


def episode_seed(seed: int, k: int) -> int:
    """Seed of episode k of a stream seeded by `seed` (distinct, stable, < 2**31)."""
    return int(np.random.SeedSequence([int(seed), int(k)]).generate_state(1)[0] & 0x7FFFFFFF)


def _stream_seed(seed: int, source_id: int) -> int:
    return int(np.random.SeedSequence([int(seed), int(source_id), 7]).generate_state(1)[0])


class _SnapshotPolicy:
    def __init__(self, path: str):
        from spin_bench.datagen.policy import load_snapshot

        self.net = load_snapshot(path, precision=POLICY_PRECISION)

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
    results: Dict[int, Dict] = {}
    if episode_ids:
        with _envs.VectorEnv(task, bins, max(1, min(int(num_envs), len(episode_ids)))) as venv:
            _roll(venv, policy, episode_ids, seed, epsilon, source_id, store, progress, results)
    ks = sorted(results)
    out = dict(episode_ids=np.asarray(ks), episode_returns=np.asarray([results[k]["ret"] for k in ks]),
               episode_lengths=np.asarray([results[k]["len"] for k in ks]))
    if store:
        out["episodes"] = [results[k] for k in ks]
    return out


def _roll(venv: "_envs.VectorEnv", policy, episode_ids: List[int], seed: int, epsilon: float, source_id: int,
          store: bool, progress, results: Dict[int, Dict]) -> None:
    """The collection protocol on the slots of `venv`: the finished episodes into `results`."""
    E, bins_arr = venv.num_envs, venv.bins
    N, obs_dim = venv.num_actions, venv.obs_dim
    T_max = int(round(venv.step_limit)) if venv.step_limit is not None else 1000
    stream = _stream_seed(seed, source_id)
    loop = _envs.EpisodeLoop(venv, (episode_seed(stream, k) for k in episode_ids))
    running: Dict[int, Dict] = {}  # position in episode_ids -> the episode being rolled

    def start(j: int, first_obs: np.ndarray) -> Dict:
        k = episode_ids[j]
        rng = np.random.default_rng([int(seed), int(source_id), int(k)])
        noise_mask = None if policy is None else rng.random((T_max, N)) < epsilon
        ep = dict(k=k, ret=0.0, mask=noise_mask, rand=rng.integers(0, bins_arr, (T_max, N)))
        if store:
            ep.update(obs=np.zeros((T_max + 1, obs_dim), np.float32),
                      act=np.zeros((T_max, N), np.uint8 if bins_arr.max() <= 256 else np.int64),
                      rew=np.zeros(T_max, np.float32))
            ep["obs"][0] = first_obs
        return ep

    def act(obs: np.ndarray) -> np.ndarray:
        greedy = policy(obs) if policy is not None else None
        actions = np.zeros((E, N), np.int64)
        for i in np.flatnonzero(loop.active):
            j, t = int(loop.episode[i]), int(loop.t[i])
            if j not in running:
                running[j] = start(j, obs[i])
            ep = running[j]
            actions[i] = ep["rand"][t] if greedy is None else np.where(ep["mask"][t], ep["rand"][t], greedy[i])
        return actions

    for step in loop.run(act):
        for i in np.flatnonzero(step.stepped):
            ep, t = running[int(step.episode[i])], int(step.t[i])
            ep["ret"] += float(step.rewards[i])
            if store:
                ep["act"][t] = step.actions[i]
                ep["rew"][t] = step.rewards[i]
                ep["obs"][t + 1] = step.next_obs[i]
            if step.ended[i]:
                L = t + 1
                res = dict(ret=ep["ret"], len=L, terminal=bool(step.terminated[i]))
                if store:
                    res.update(obs=ep["obs"][:L + 1].copy(), act=ep["act"][:L].copy(),
                               rew=ep["rew"][:L].copy())
                results[ep["k"]] = res
                del running[int(step.episode[i])]
                if progress is not None:
                    progress(L)


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
                        num_workers: int = 2, bar=None, version: int = 1) -> Dict[str, np.ndarray]:
    """The first `num_transitions` transitions of source `source`'s episode stream (the medium
    and expert sources: version `version` of the shipped policies).

    Episodes are spread over `num_workers` processes (episode k to worker k % P; the
    content of an episode does not depend on where it runs)."""
    policy = None if source == "random" else policy_path(task, source, bins, version)
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


def prefix(arr: Dict[str, np.ndarray], n: int) -> Dict[str, np.ndarray]:
    """The first n transitions of a collected stream (cut inside an episode -> timeout)."""
    out = {k: arr[k][:n].copy() for k in ("observations", "next_observations", "actions",
                                          "rewards", "terminals", "timeouts")}
    ends = np.flatnonzero(arr["terminals"] | arr["timeouts"])
    complete = int(np.searchsorted(ends, n - 1, side="right"))  # episodes ending at < n
    if not (out["terminals"][-1] or out["timeouts"][-1]):
        out["timeouts"][-1] = True
    out["episode_returns"] = arr["episode_returns"][:complete].copy()
    return out


def evaluate_policy(task: str, bins, path_or_policy, episodes: int, seed: int = 2024,
                    epsilon: float = COLLECT_EPSILON, num_envs: int = 10) -> np.ndarray:
    """Returns of `episodes` episodes of a policy (or snapshot path) under the collection protocol."""
    out = collect_episodes(task, bins, path_or_policy, range(episodes), seed, epsilon,
                           num_envs, source_id=99, store=False)
    return out["episode_returns"]
