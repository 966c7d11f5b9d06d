"""Training a behaviour policy: online DecQN on a discretised task.

Training: double Q (online argmax per slot, target network evaluates), n-step returns,
Huber loss on the joint (mean) value, Polyak-averaged target network, epsilon-greedy
exploration applied per slot (each sub-action is replaced by a uniform random bin with
probability epsilon), several environments stepped in lockstep with one batched forward
pass per step, and a replay buffer in preallocated numpy arrays.  The network and its
snapshot format: :mod:`spin_bench.datagen.policy`.

Outputs in ``out_dir``:
  * ``metrics.csv``   greedy evaluation every ``eval_every`` env steps (batched episodes);
  * ``snapshots/step_XXXXXXXX.pt``  Q-network weights only (float32), the levels are cut
    from these (see ``spin_bench.datagen.levels.export_policies``);
  * ``checkpoint.pt`` network, target, optimiser, counters and RNG states, written
    atomically (temp file + os.replace); ``replay.npz`` beside it (uncompressed, only the
    filled part) when ``save_buffer``. A resume without the replay file (for example from
    a committed checkpoint) refills the buffer with ``learning_starts`` steps of the
    current policy before updating again. A resumed run continues training; it is not
    bit-identical to an uninterrupted one (environments restart fresh episodes).
  * ``operative_config.gin``.
"""
from __future__ import annotations

import csv
import dataclasses
import itertools
import os
import time
from typing import Dict, List, Optional, Sequence

import gin
import numpy as np
import torch
from torch import nn

from spin_bench import envs as _envs  # the simulator is imported on first use
from spin_bench.atomic import atomic_output, atomic_torch_save, atomic_write_text
from spin_bench.datagen.policy import DecQNNetwork, save_snapshot
from spin_bench.datagen.rollouts import episode_seed
from spin_bench.envs.spaces import normalise_bins
from spin_bench.rundir import CHECKPOINT, METRICS, OPERATIVE_CONFIG
from spin_bench.safe_load import load_torch_file

CHECKPOINT_FORMAT = "spin_bench.decqn_checkpoint.v1"


# ----------------------------------------------------------------------------- replay
class ReplayBuffer:
    """n-step transitions (s, a, R, s', discount) in preallocated numpy ring arrays."""

    def __init__(self, capacity: int, obs_dim: int, num_slots: int):
        self.capacity = int(capacity)
        self.obs = np.zeros((self.capacity, obs_dim), np.float32)
        self.next_obs = np.zeros((self.capacity, obs_dim), np.float32)
        self.act = np.zeros((self.capacity, num_slots), np.uint8)
        self.ret = np.zeros((self.capacity,), np.float32)
        self.disc = np.zeros((self.capacity,), np.float32)
        self.ptr = 0
        self.size = 0

    def add(self, obs, act, ret, next_obs, disc) -> None:
        n = len(ret)
        if n == 0:
            return
        idx = (self.ptr + np.arange(n)) % self.capacity
        self.obs[idx], self.act[idx], self.ret[idx] = obs, act, ret
        self.next_obs[idx], self.disc[idx] = next_obs, disc
        self.ptr = int((self.ptr + n) % self.capacity)
        self.size = int(min(self.size + n, self.capacity))

    def sample(self, rng: np.random.Generator, batch: int):
        idx = rng.integers(0, self.size, batch)
        return (torch.from_numpy(self.obs[idx]), torch.from_numpy(self.act[idx].astype(np.int64)),
                torch.from_numpy(self.ret[idx]), torch.from_numpy(self.next_obs[idx]),
                torch.from_numpy(self.disc[idx]))

    def save(self, path: str, env_steps: int) -> None:
        """Uncompressed npz of the filled part (compression gains little on float data)."""
        n = self.size
        with atomic_output(path) as tmp, open(tmp, "wb") as f:
            np.savez(f, obs=self.obs[:n], next_obs=self.next_obs[:n], act=self.act[:n],
                     ret=self.ret[:n], disc=self.disc[:n], ptr=self.ptr, env_steps=env_steps)

    def load(self, path: str) -> int:
        with np.load(path) as z:
            n = len(z["ret"])
            if n > self.capacity:
                raise ValueError(f"{path}: replay holds {n} > capacity {self.capacity}")
            self.obs[:n], self.next_obs[:n], self.act[:n] = z["obs"], z["next_obs"], z["act"]
            self.ret[:n], self.disc[:n] = z["ret"], z["disc"]
            self.size, self.ptr = n, int(z["ptr"]) % self.capacity
            return int(z["env_steps"])


class NStepCollector:
    """E environments in lockstep with auto-reset; emits n-step transitions into a buffer.

    Episode k (counted over the whole run) starts from seed ``episode_seed(seed, k)``.
    A time-limit truncation bootstraps (discount gamma^k); a termination does not.
    """

    def __init__(self, task: str, bins, num_envs: int, n_step: int, gamma: float, seed: int,
                 first_episode: int = 0):
        self.venv = _envs.VectorEnv(task, bins, num_envs)
        self.E, self.n, self.gamma, self.seed = num_envs, n_step, gamma, seed
        self.N, self.obs_dim = self.venv.num_actions, self.venv.obs_dim
        self.win_obs = np.zeros((n_step, num_envs, self.obs_dim), np.float32)
        self.win_act = np.zeros((n_step, num_envs, self.N), np.uint8)
        self.win_rew = np.zeros((n_step, num_envs), np.float32)
        self.gammas = (gamma ** np.arange(n_step)).astype(np.float32)
        self.ep_ret = np.zeros(num_envs, np.float64)
        self.vt = 0
        self.first_episode = first_episode
        self.completed_returns: List[float] = []
        self.loop = _envs.EpisodeLoop(self.venv, (episode_seed(seed, k) for k in itertools.count(first_episode)))

    @property
    def obs(self) -> np.ndarray:
        """(E, obs_dim): what the next actions are chosen from."""
        return self.loop.obs

    @property
    def next_episode(self) -> int:
        """Index (over the whole run) of the next episode to start."""
        return self.first_episode + self.loop.started

    def step(self, actions: np.ndarray, buffer: ReplayBuffer) -> None:
        n, vt = self.n, self.vt
        slot = vt % n
        self.win_obs[slot] = self.obs
        self.win_act[slot] = actions
        step = self.loop.step(actions)
        next_obs, term = step.next_obs, step.terminated
        rew = step.rewards.astype(np.float32)
        self.win_rew[slot] = rew
        ep_len = step.t + 1
        self.ep_ret += rew
        full = ep_len >= n
        if full.any():
            order = (vt - n + 1 + np.arange(n)) % n
            R = (self.gammas[:, None] * self.win_rew[order]).sum(0)
            s0 = order[0]
            buffer.add(self.win_obs[s0, full], self.win_act[s0, full], R[full], next_obs[full],
                       (self.gamma ** n) * (~term[full]).astype(np.float32))
        for i in np.flatnonzero(step.ended):
            L = int(ep_len[i])
            starts = range(max(0, L - n + 1), L)  # in-episode start indices still pending
            o_l, a_l, r_l, d_l = [], [], [], []
            for j in starts:
                k = L - j
                g0 = vt - (L - 1 - j)
                sl = (g0 + np.arange(k)) % n
                o_l.append(self.win_obs[sl[0], i])
                a_l.append(self.win_act[sl[0], i])
                r_l.append(float((self.gammas[:k] * self.win_rew[sl, i]).sum()))
                d_l.append(0.0 if term[i] else self.gamma ** k)
            if o_l:
                buffer.add(np.stack(o_l), np.stack(a_l), np.asarray(r_l, np.float32),
                           np.repeat(next_obs[i:i + 1], len(o_l), 0), np.asarray(d_l, np.float32))
            self.completed_returns.append(float(self.ep_ret[i]))
            self.ep_ret[i] = 0.0
        self.vt += 1

    def close(self) -> None:
        self.venv.close()


# ----------------------------------------------------------------------------- training
METRIC_FIELDS = ["env_steps", "updates", "episodes", "wall_s", "env_steps_per_s",
                 "eval_return_mean", "eval_return_std", "train_return_recent", "loss", "q_mean"]


class _Learner:
    """The Q-network, its Polyak-averaged target, the optimiser, the numpy RNG (exploration and
    replay sampling) and the replay buffer. Built in this order from ``seed``: torch's RNG
    initialises the network and the target; ``rng`` is ``default_rng([seed, 1])``."""

    def __init__(self, obs_dim: int, bins_arr: np.ndarray, hidden: Sequence[int], layer_norm: bool,
                 lr: float, seed: int, buffer_size: int):
        torch.manual_seed(seed)
        self.net = DecQNNetwork(obs_dim, bins_arr, hidden, layer_norm)
        self.target = DecQNNetwork(obs_dim, bins_arr, hidden, layer_norm)
        self.target.load_state_dict(self.net.state_dict())
        for p in self.target.parameters():
            p.requires_grad_(False)
        self.opt = torch.optim.Adam(self.net.parameters(), lr=lr)
        self.rng = np.random.default_rng([seed, 1])
        self.buffer_size, self.obs_dim, self.num_slots = buffer_size, obs_dim, len(bins_arr)
        self.buffer = ReplayBuffer(buffer_size, obs_dim, self.num_slots)

    def empty_buffer(self) -> None:
        self.buffer = ReplayBuffer(self.buffer_size, self.obs_dim, self.num_slots)

    def act(self, obs: np.ndarray, epsilon: float, bins_t: np.ndarray) -> np.ndarray:
        """Greedy joint action per environment; with probability epsilon per slot a uniform bin."""
        with torch.no_grad():
            act = self.net(torch.from_numpy(obs)).argmax(-1).numpy()
        if epsilon > 0:
            explore = self.rng.random(act.shape) < epsilon
            act = np.where(explore, self.rng.integers(0, bins_t, act.shape), act)
        return act.astype(np.uint8)

    def update(self, batch_size: int, huber_delta: float, grad_clip: Optional[float], tau: float):
        """One double-Q step: y = R + d * mean_i Q_target(s', argmax_a Q(s', .)_i), Huber loss on the
        mean over slots of Q(s, a_i), then target <- target + tau (online - target).
        Returns (loss, mean Q) as detached tensors."""
        net, target = self.net, self.target
        o, a, R, o2, d = self.buffer.sample(self.rng, batch_size)
        q = net(o).gather(2, a.unsqueeze(-1)).squeeze(-1).mean(1)
        with torch.no_grad():
            a2 = net(o2).argmax(-1, keepdim=True)
            q2 = target(o2).gather(2, a2).squeeze(-1).mean(1)
            y = R + d * q2
        loss = nn.functional.huber_loss(q, y, delta=huber_delta)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        online_params = list(net.parameters())
        if grad_clip:
            nn.utils.clip_grad_norm_(online_params, grad_clip)
        self.opt.step()
        with torch.no_grad():
            torch._foreach_lerp_(list(target.parameters()), online_params, tau)
        return loss.detach(), q.detach().mean()


@dataclasses.dataclass
class _Counters:
    """Where a run stands (what a checkpoint carries besides the weights and RNG states)."""

    env_steps: int = 0
    updates: int = 0
    episodes_started: int = 0
    metrics: List[Dict] = dataclasses.field(default_factory=list)
    wall_offset: float = 0.0
    warmup_until: int = 0  # no updates before this many env steps (learning_starts, or a refill)


def _task_shape(task: str, bins):
    """(bins per slot, obs_dim, slots) of the discretised task; bins must fit the uint8 replay."""
    probe = _envs.DiscretizedDMCEnv(task, bins)
    bins_arr = normalise_bins(bins, probe.num_actions)
    obs_dim, N = probe.obs_dim, probe.num_actions
    probe.close()
    if int(bins_arr.max()) > 255:
        raise ValueError("DecQN replay stores bin indices as uint8: bins must be <= 255")
    return bins_arr, obs_dim, N


def _resume(learner: _Learner, start_path: str, task: str, bins_arr: np.ndarray, replay_path: str,
            learning_starts: int) -> _Counters:
    """Restore the learner and the counters from a checkpoint (and the replay file when it
    matches the checkpoint's step; otherwise refill for ``learning_starts`` steps)."""
    ck = load_torch_file(start_path, "DecQN checkpoint")  # tensors and plain values only
    if not isinstance(ck, dict) or ck.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{start_path}: not a DecQN checkpoint")
    if ck["task"] != task or list(ck["bins"]) != [int(b) for b in bins_arr]:
        raise ValueError(f"{start_path}: checkpoint is for {ck['task']} bins {ck['bins']}, "
                         f"not {task} bins {list(bins_arr)}")
    learner.net.load_state_dict(ck["net"])
    learner.target.load_state_dict(ck["target"])
    learner.opt.load_state_dict(ck["optim"])
    counters = _Counters(env_steps=ck["env_steps"], updates=ck["updates"],
                         episodes_started=ck["episodes_started"], metrics=ck["metrics"],
                         wall_offset=ck["wall_s"])
    learner.rng.bit_generator.state = ck["rng_state"]
    torch.set_rng_state(ck["torch_rng_state"])
    loaded = False
    if os.path.exists(replay_path):
        try:
            if learner.buffer.load(replay_path) == counters.env_steps:
                loaded = True
            else:
                learner.empty_buffer()
        except Exception:  # a damaged replay file: refill instead
            learner.empty_buffer()
    counters.warmup_until = counters.env_steps + (0 if loaded else learning_starts)
    print(f"[decqn] resumed {task} at {counters.env_steps} env steps from {start_path} "
          f"(replay {'loaded' if loaded else 'refilling for %d steps' % learning_starts})")
    return counters


def _following(step: int, every: int) -> int:
    """The first multiple of ``every`` after ``step``."""
    return (step // every + 1) * every


class _Cadence:
    """When the next snapshot, evaluation and checkpoint fall due (in env steps)."""

    def __init__(self, env_steps: int, eval_every: int, snapshot_every: int,
                 dense_snapshot_every: Optional[int], dense_snapshots_until: int, checkpoint_every: int):
        self.eval_every, self.snapshot_every = eval_every, snapshot_every
        self.dense_every, self.dense_until = dense_snapshot_every, dense_snapshots_until
        self.next_eval = _following(env_steps, eval_every)
        self.next_snap = self.next_snapshot(env_steps)
        self.next_ckpt = (env_steps // checkpoint_every + 1) * checkpoint_every

    def next_snapshot(self, step: int) -> int:
        nxt = _following(step, self.snapshot_every)
        if self.dense_every and step < self.dense_until:
            nxt = min(nxt, _following(step, self.dense_every))
        return nxt


class _LossMeans:
    """Loss and mean Q summed over the updates since the last evaluation."""

    def __init__(self):
        self.loss, self.q, self.n = torch.zeros(()), torch.zeros(()), 0

    def add(self, loss: torch.Tensor, q: torch.Tensor) -> None:
        self.loss += loss
        self.q += q
        self.n += 1

    def reset(self) -> None:
        self.loss.zero_()
        self.q.zero_()
        self.n = 0


def _metrics_row(counters: _Counters, collector: NStepCollector, rets: np.ndarray, losses: _LossMeans,
                 num_envs: int, t0: float, steps_at_start: int) -> Dict:
    """One metrics.csv row (METRIC_FIELDS) after a greedy evaluation."""
    recent = collector.completed_returns[-2 * num_envs:]
    wall = counters.wall_offset + time.time() - t0
    return dict(env_steps=counters.env_steps, updates=counters.updates,
                episodes=collector.next_episode, wall_s=round(wall, 2),
                env_steps_per_s=round((counters.env_steps - steps_at_start) / max(time.time() - t0, 1e-9), 1),
                eval_return_mean=round(float(rets.mean()), 3),
                eval_return_std=round(float(rets.std()), 3),
                train_return_recent=round(float(np.mean(recent)), 3) if recent else float("nan"),
                loss=round(float(losses.loss) / max(losses.n, 1), 6),
                q_mean=round(float(losses.q) / max(losses.n, 1), 4))


def _save_checkpoint(learner: _Learner, counters: _Counters, collector: NStepCollector, task: str,
                     bins_arr: np.ndarray, t0: float, ckpt_path: str, replay_path: str,
                     save_buffer: bool) -> None:
    """checkpoint.pt (CHECKPOINT_FORMAT), and replay.npz first when ``save_buffer``."""
    payload = dict(format=CHECKPOINT_FORMAT, task=task, bins=[int(b) for b in bins_arr],
                   net=learner.net.state_dict(), target=learner.target.state_dict(),
                   optim=learner.opt.state_dict(),
                   env_steps=counters.env_steps, updates=counters.updates,
                   episodes_started=collector.next_episode, metrics=counters.metrics,
                   wall_s=counters.wall_offset + time.time() - t0,
                   rng_state=learner.rng.bit_generator.state, torch_rng_state=torch.get_rng_state(),
                   operative_config=gin.operative_config_str())
    if save_buffer:
        learner.buffer.save(replay_path, counters.env_steps)
    atomic_torch_save(payload, ckpt_path)


@gin.configurable
def train_decqn(task: str = gin.REQUIRED, out_dir: str = gin.REQUIRED, bins=3, seed: int = 0,
                total_env_steps: int = 500_000, num_envs: int = 8,
                hidden: Sequence[int] = (512, 512), layer_norm: bool = True,
                n_step: int = 3, gamma: float = 0.99, tau: float = 0.005, lr: float = 1e-4,
                epsilon: float = 0.1, update_every: int = 2, batch_size: int = 256,
                buffer_size: int = 1_000_000, learning_starts: int = 10_000,
                huber_delta: float = 1.0, grad_clip: Optional[float] = None,
                eval_every: int = 25_000, eval_episodes: int = 10, eval_seed: int = 10_000,
                snapshot_every: int = 25_000, dense_snapshot_every: Optional[int] = None,
                dense_snapshots_until: int = 0, checkpoint_every: int = 25_000,
                save_buffer: bool = True, resume: bool = False,
                resume_from: Optional[str] = None, progress: bool = True,
                num_threads: int = 1) -> Dict:
    """Train a DecQN behaviour policy; returns a summary dict (best eval, last metrics).

    Snapshots every ``snapshot_every`` env steps, and every ``dense_snapshot_every`` before
    ``dense_snapshots_until`` (the fast-rising early phase, where the medium policy is cut;
    those are evaluated too). Every ``update_every`` env steps (counted over all lockstep envs) one gradient update of
    batch ``batch_size``. ``resume``: continue from ``out_dir/checkpoint.pt`` (or, when that
    does not exist, from ``resume_from``), with ``replay.npz`` if present.
    """
    torch.set_num_threads(num_threads)
    ckpt_path = os.path.join(out_dir, CHECKPOINT)
    replay_path = os.path.join(out_dir, "replay.npz")
    metrics_path = os.path.join(out_dir, METRICS)

    bins_arr, obs_dim, N = _task_shape(task, bins)
    learner = _Learner(obs_dim, bins_arr, hidden, layer_norm, lr, seed, buffer_size)
    counters = _Counters(warmup_until=learning_starts)
    start_path = ckpt_path if os.path.exists(ckpt_path) else resume_from
    if resume and start_path and os.path.exists(start_path):
        counters = _resume(learner, start_path, task, bins_arr, replay_path, learning_starts)
    elif resume:
        print(f"[decqn] no checkpoint in {out_dir}: starting fresh")
    os.makedirs(os.path.join(out_dir, "snapshots"), exist_ok=True)  # after the checkpoint was accepted
    _write_metrics(metrics_path, counters.metrics)

    collector = NStepCollector(task, bins_arr, num_envs, n_step, gamma, seed,
                               first_episode=counters.episodes_started)
    bins_t = bins_arr.astype(np.int64)
    losses = _LossMeans()
    update_credit = 0.0
    t0 = time.time()
    steps_at_start = counters.env_steps
    bar = None
    if progress:
        from tqdm import tqdm
        bar = tqdm(total=total_env_steps, initial=counters.env_steps, desc=f"decqn {task}",
                   unit="step", smoothing=0.05, mininterval=2.0)

    def checkpoint():
        _save_checkpoint(learner, counters, collector, task, bins_arr, t0, ckpt_path, replay_path, save_buffer)

    due = _Cadence(counters.env_steps, eval_every, snapshot_every, dense_snapshot_every,
                   dense_snapshots_until, checkpoint_every)
    atomic_write_text(os.path.join(out_dir, OPERATIVE_CONFIG), gin.operative_config_str())
    try:
        while counters.env_steps < total_env_steps:
            # collect one lockstep step, then the updates it has earned (update_every env steps each)
            collector.step(learner.act(collector.obs, epsilon, bins_t), learner.buffer)
            counters.env_steps += num_envs
            env_steps = counters.env_steps
            if bar is not None:
                bar.update(num_envs)
            if env_steps > counters.warmup_until and learner.buffer.size >= batch_size:
                update_credit += num_envs / update_every
                while update_credit >= 1.0:
                    losses.add(*learner.update(batch_size, huber_delta, grad_clip, tau))
                    counters.updates += 1
                    update_credit -= 1.0
            # snapshots; evaluations (also of the dense snapshots); checkpoints
            if env_steps >= due.next_snap:
                save_snapshot(learner.net, os.path.join(out_dir, "snapshots", f"step_{env_steps:08d}.pt"),
                              task=task, env_steps=env_steps)
                dense = env_steps < due.next_eval and env_steps <= dense_snapshots_until
                due.next_snap = due.next_snapshot(env_steps)
            else:
                dense = False
            if env_steps >= due.next_eval or dense:
                rets = evaluate_greedy(learner.net, task, bins_arr, eval_episodes, eval_seed)
                row = _metrics_row(counters, collector, rets, losses, num_envs, t0, steps_at_start)
                counters.metrics.append(row)
                _write_metrics(metrics_path, counters.metrics)
                losses.reset()
                if bar is not None:
                    bar.set_postfix(eval=row["eval_return_mean"])
                else:
                    print(f"[decqn] {task} step {env_steps} eval {row['eval_return_mean']:.1f}", flush=True)
                if env_steps >= due.next_eval:
                    due.next_eval = _following(env_steps, eval_every)
            if env_steps >= due.next_ckpt:
                checkpoint()
                due.next_ckpt += checkpoint_every
        checkpoint()
    finally:
        if bar is not None:
            bar.close()
        collector.close()
    atomic_write_text(os.path.join(out_dir, OPERATIVE_CONFIG), gin.operative_config_str())
    metrics = counters.metrics
    best = max(metrics, key=lambda r: r["eval_return_mean"]) if metrics else None
    return dict(env_steps=counters.env_steps, updates=counters.updates, best=best,
                last=metrics[-1] if metrics else None, out_dir=out_dir)


def evaluate_greedy(net: DecQNNetwork, task: str, bins, num_episodes: int, seed: int) -> np.ndarray:
    """Greedy returns over `num_episodes` episodes stepped in lockstep (one batch)."""
    rets = np.zeros(num_episodes)
    with _envs.VectorEnv(task, bins, num_episodes) as venv:
        for step in _envs.EpisodeLoop(venv, [episode_seed(seed, k) for k in range(num_episodes)]).run(net.greedy):
            rets += step.rewards
    return rets


def _write_metrics(path: str, rows: List[Dict]) -> None:
    with atomic_output(path) as tmp, open(tmp, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=METRIC_FIELDS)
        w.writeheader()
        for r in rows:
            w.writerow(r)


def read_metrics(path: str) -> List[Dict]:
    with open(path, newline="") as f:
        return [{k: float(v) for k, v in r.items()} for r in csv.DictReader(f)]
