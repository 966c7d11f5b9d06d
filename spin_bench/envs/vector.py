"""E copies of a discretised task stepped in lockstep, in-process or across worker processes,
and the one loop that steps them through seeded episodes.

One batched policy call per step: ``obs = venv.reset(seeds)``, then
``obs, rew, terminated, truncated = venv.step(actions)`` with actions of shape (E, N).
An episode that has ended is frozen (not stepped; reward 0; its last observation kept)
until its copy is reset; ``venv.active`` says which copies still run.

:class:`EpisodeLoop` is the stepping loop that evaluation, data collection and behaviour
training share: each copy (slot) runs episodes taken in order from one stream of seeds (a
slot whose episode ends starts the next one of the stream at once, lower slots first; with
the stream used up it stays idle), one batched action call per step, and every step comes
back as a :class:`Step` of per-slot arrays. What a caller records and how it sums returns
is its own: the rewards come as the environment's float64 values, unrounded.
"""
from __future__ import annotations

import multiprocessing as mp
from dataclasses import dataclass
from typing import Callable, Iterable, Iterator, List, Optional, Sequence, Tuple

import numpy as np

from spin_bench.envs.dmc import DiscretizedDMCEnv
from spin_bench.envs.spaces import BinsLike, validate_action


class _EnvChunk:
    """A list of envs with batched reset/step; the unit a worker process owns."""

    def __init__(self, envs: List[DiscretizedDMCEnv]):
        self.envs = envs
        self.active = np.zeros(len(envs), dtype=bool)
        self.last_obs = np.zeros((len(envs), envs[0].obs_dim), np.float32)

    def reset(self, seeds: Sequence[Optional[int]], idx: Optional[Sequence[int]] = None) -> np.ndarray:
        """Reset the envs `idx` (default: all) with `seeds`; their first observations."""
        idx = list(range(len(self.envs))) if idx is None else list(idx)
        for i, s in zip(idx, seeds):
            self.last_obs[i] = self.envs[i].reset(seed=s)[0]
            self.active[i] = True
        return self.last_obs[idx]

    def step(self, actions: np.ndarray) -> Tuple[np.ndarray, ...]:
        """Step active envs with a validated (n, N) int64 batch; rewards as float64."""
        n = len(self.envs)
        rew = np.zeros(n, dtype=np.float64)
        term = np.zeros(n, dtype=bool)
        trunc = np.zeros(n, dtype=bool)
        for i, env in enumerate(self.envs):
            if not self.active[i]:
                continue
            o, r, te, tr, _ = env.step_indices(actions[i])
            self.last_obs[i] = o
            rew[i], term[i], trunc[i] = r, te, tr
            if te or tr:
                self.active[i] = False
        return self.last_obs.copy(), rew, term, trunc

    def close(self) -> None:
        for env in self.envs:
            env.close()


def _worker(conn, task, bins, n):  # pragma: no cover - runs in a child process
    try:
        chunk = _EnvChunk([DiscretizedDMCEnv(task, bins) for _ in range(n)])
        conn.send(("ok", None))
    except Exception as e:  # report construction errors to the parent
        conn.send(("error", repr(e)))
        return
    while True:
        cmd, arg = conn.recv()
        try:
            if cmd == "reset":
                conn.send(("ok", chunk.reset(*arg)))
            elif cmd == "step":
                conn.send(("ok", chunk.step(arg)))
            elif cmd == "close":
                chunk.close()
                conn.send(("ok", None))
                return
        except Exception as e:
            conn.send(("error", repr(e)))


class VectorEnv:
    """E discretised envs in lockstep; `num_workers` > 0 spreads them over processes."""

    def __init__(self, task: str, bins: BinsLike, num_envs: int, num_workers: int = 0):
        if num_envs < 1:
            raise ValueError(f"num_envs must be >= 1, got {num_envs}")
        self.num_workers = max(0, min(int(num_workers), num_envs))
        if self.num_workers == 0:
            self._local([DiscretizedDMCEnv(task, bins) for _ in range(num_envs)], owned=True)
            return
        probe = DiscretizedDMCEnv(task, bins)
        self._describe(probe, num_envs)
        probe.close()
        self._chunks, self._owned = [], False
        self._sizes = [len(a) for a in np.array_split(np.arange(num_envs), self.num_workers)]
        ctx = mp.get_context("spawn")
        self._conns, self._procs = [], []
        for size in self._sizes:
            parent, child = ctx.Pipe()
            p = ctx.Process(target=_worker, args=(child, task, bins, size), daemon=True)
            p.start()
            child.close()
            self._conns.append(parent)
            self._procs.append(p)
        for c in self._conns:
            self._recv(c)

    @classmethod
    def from_envs(cls, envs: Sequence[DiscretizedDMCEnv]) -> "VectorEnv":
        """Step existing envs of one task in this process (closing the vector env leaves them open)."""
        venv = cls.__new__(cls)
        venv.num_workers = 0
        venv._local(list(envs), owned=False)
        return venv

    def _describe(self, env: DiscretizedDMCEnv, num_envs: int) -> None:
        self.task_name, self.bins = env.task_name, env.bins
        self.num_actions, self.obs_dim = env.num_actions, env.obs_dim
        self.action_space, self.observation_space = env.action_space, env.observation_space
        # the DM Control time limit in control steps (None where the env has none)
        self.step_limit: Optional[float] = getattr(env.dm_env, "_step_limit", None)
        self.num_envs = num_envs
        self.active = np.zeros(num_envs, dtype=bool)

    def _local(self, envs: List[DiscretizedDMCEnv], owned: bool) -> None:
        self._describe(envs[0], len(envs))
        self._chunks, self._owned = [_EnvChunk(envs)], owned
        self._sizes = [len(envs)]
        self._conns, self._procs = [], []

    @staticmethod
    def _recv(conn):
        status, payload = conn.recv()
        if status != "ok":
            raise RuntimeError(f"vector env worker failed: {payload}")
        return payload

    def _split(self, arr) -> List:
        out, start = [], 0
        for s in self._sizes:
            out.append(arr[start:start + s])
            start += s
        return out

    def reset(self, seeds: Optional[Sequence[Optional[int]]] = None) -> np.ndarray:
        """Reset every copy; copy i starts like suite.load(..., {'random': seeds[i]})."""
        seeds = [None] * self.num_envs if seeds is None else list(seeds)
        if len(seeds) != self.num_envs:
            raise ValueError(f"reset needs {self.num_envs} seeds, got {len(seeds)}")
        return self.reset_at(range(self.num_envs), seeds)

    def reset_at(self, indices: Sequence[int], seeds: Sequence[Optional[int]]) -> np.ndarray:
        """Reset copies `indices` (increasing) with `seeds`; their first observations (len(indices), obs_dim)."""
        indices = np.asarray(indices, dtype=np.int64)
        if not self._conns:
            obs = self._chunks[0].reset(seeds, indices)
        else:
            seeds, parts, start = list(seeds), [], 0
            for c, size in zip(self._conns, self._sizes):
                mine = (indices >= start) & (indices < start + size)
                if mine.any():
                    c.send(("reset", ([seeds[j] for j in np.flatnonzero(mine)], indices[mine] - start)))
                    parts.append(c)
                start += size
            obs = np.concatenate([self._recv(c) for c in parts])
        self.active[indices] = True
        return obs

    def step(self, actions) -> Tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Step the active copies with actions (E, N); returns obs, reward (float32), terminated, truncated."""
        obs, rew, term, trunc = self._step_valid(self._validate(actions))
        return obs, rew.astype(np.float32), term, trunc

    def _validate(self, actions) -> np.ndarray:
        acts = validate_action(actions, self.bins, batch=True)
        if acts.shape[0] != self.num_envs:
            raise ValueError(f"actions must have shape ({self.num_envs}, {self.num_actions}), got {acts.shape}")
        return acts

    def _step_valid(self, acts: np.ndarray) -> Tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Step with validated int64 actions; rewards as the envs' float64 values."""
        if not self._conns:
            out = self._chunks[0].step(acts)
        else:
            for c, a in zip(self._conns, self._split(acts)):
                c.send(("step", a))
            parts = [self._recv(c) for c in self._conns]
            out = tuple(np.concatenate([p[k] for p in parts]) for k in range(4))
        obs, rew, term, trunc = out
        self.active &= ~(term | trunc)
        return obs, rew, term, trunc

    def close(self) -> None:
        if self._owned:
            self._chunks[0].close()
            self._owned = False
        for c in self._conns:
            try:
                c.send(("close", None))
                c.recv()
            except (EOFError, OSError, BrokenPipeError):
                pass
        for p in self._procs:
            p.join(timeout=5)
            if p.is_alive():
                p.terminate()
        self._conns, self._procs = [], []

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass


@dataclass(slots=True)
class Step:
    """One lockstep step of an :class:`EpisodeLoop`, one row per slot (E rows).

    Rows of slots that did not step (idle, ``stepped`` False) hold reward 0, no episode end
    and their frozen observation."""

    obs: np.ndarray         # (E, obs_dim) float32: the observations the actions were chosen from
    actions: np.ndarray     # (E, N) int64: the validated actions
    rewards: np.ndarray     # (E,) float64: the environments' rewards, unrounded
    next_obs: np.ndarray    # (E, obs_dim) float32: after the step, before any reset
    terminated: np.ndarray  # (E,) bool: the episode ended by the task (discount 0)
    truncated: np.ndarray   # (E,) bool: the episode ended at the time limit
    stepped: np.ndarray     # (E,) bool: the slot ran an episode at this step
    episode: np.ndarray     # (E,) int64: position in the seed stream of the slot's episode (-1: idle)
    t: np.ndarray           # (E,) int64: index of this step within the slot's episode

    @property
    def ended(self) -> np.ndarray:
        """(E,) bool: the slot's episode ended at this step."""
        return self.terminated | self.truncated


_END = object()


class EpisodeLoop:
    """The slots of a VectorEnv stepped in lockstep through the episodes of one seed stream.

    Slot i starts episode i of ``seeds`` (there must be one for every slot); a slot whose
    episode ends starts the next episode of the stream before the following step (slots in
    increasing order), or stays idle when the stream is used up. ``obs`` is what the next
    actions are chosen from; ``started`` counts the episodes started so far.
    """

    def __init__(self, venv: VectorEnv, seeds: Iterable[Optional[int]]):
        self.venv = venv
        self._seeds = iter(seeds)
        E = venv.num_envs
        first = [next(self._seeds, _END) for _ in range(E)]
        if any(s is _END for s in first):
            raise ValueError(f"{E} environments need at least {E} episode seeds, "
                             f"got {sum(s is not _END for s in first)}")
        self.episode = np.arange(E, dtype=np.int64)
        self.t = np.zeros(E, np.int64)
        self.started = E
        self.obs = venv.reset(first)

    @property
    def active(self) -> np.ndarray:
        """(E,) bool: the slots running an episode."""
        return self.episode >= 0

    def step(self, actions) -> Step:
        """Step every running slot with `actions` (E, N); start the next episodes where one ended."""
        acts = self.venv._validate(actions)
        stepped = self.episode >= 0
        next_obs, rew, term, trunc = self.venv._step_valid(acts)
        step = Step(self.obs, acts, rew, next_obs, term, trunc, stepped, self.episode.copy(), self.t.copy())
        self.t += stepped
        self.obs = next_obs.copy()
        ended = term | trunc
        if ended.any():
            self._next_episodes(np.flatnonzero(ended))
        return step

    def _next_episodes(self, ended: np.ndarray) -> None:
        """Start the stream's next episodes in the slots `ended` (increasing); idle the rest."""
        self.episode[ended] = -1
        starting, seeds = [], []
        for i in ended:
            s = next(self._seeds, _END)
            if s is _END:
                break
            starting.append(i)
            seeds.append(s)
            self.episode[i], self.t[i] = self.started, 0
            self.started += 1
        if starting:
            self.obs[starting] = self.venv.reset_at(starting, seeds)

    def run(self, act: Callable[[np.ndarray], np.ndarray], max_steps: Optional[int] = None) -> Iterator[Step]:
        """Step with ``act(obs)`` -> (E, N) (one call per step, every slot's row) until every
        slot is idle, or for at most `max_steps` steps."""
        n = 0
        while self.active.any() and (max_steps is None or n < max_steps):
            yield self.step(act(self.obs))
            n += 1
