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

    probe = _envs.DiscretizedDMCEnv(task, bins)
    bins_arr = normalise_bins(bins, probe.num_actions)
    obs_dim, N = probe.obs_dim, probe.num_actions
    probe.close()
    if int(bins_arr.max()) > 255:
        raise ValueError("DecQN replay stores bin indices as uint8: bins must be <= 255")

    torch.manual_seed(seed)
    net = DecQNNetwork(obs_dim, bins_arr, hidden, layer_norm)
    target = DecQNNetwork(obs_dim, bins_arr, hidden, layer_norm)
    target.load_state_dict(net.state_dict())
    for p in target.parameters():
        p.requires_grad_(False)
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    rng = np.random.default_rng([seed, 1])
    buffer = ReplayBuffer(buffer_size, obs_dim, N)

    env_steps = updates = episodes_started = 0
    metrics: List[Dict] = []
    wall_offset = 0.0
    warmup_until = learning_starts
    start_path = ckpt_path if os.path.exists(ckpt_path) else resume_from
    if resume and start_path and os.path.exists(start_path):
        ck = load_torch_file(start_path, "DecQN checkpoint")  # tensors and plain values only
        if not isinstance(ck, dict) or ck.get("format") != CHECKPOINT_FORMAT:
            raise ValueError(f"{start_path}: not a DecQN checkpoint")
        if ck["task"] != task or list(ck["bins"]) != [int(b) for b in bins_arr]:
            raise ValueError(f"{start_path}: checkpoint is for {ck['task']} bins {ck['bins']}, "
                             f"not {task} bins {list(bins_arr)}")
        net.load_state_dict(ck["net"])
        target.load_state_dict(ck["target"])
        opt.load_state_dict(ck["optim"])
        env_steps, updates = ck["env_steps"], ck["updates"]
        episodes_started, metrics = ck["episodes_started"], ck["metrics"]
        wall_offset = ck["wall_s"]
        rng.bit_generator.state = ck["rng_state"]
        torch.set_rng_state(ck["torch_rng_state"])
        loaded = False
        if os.path.exists(replay_path):
            try:
                if buffer.load(replay_path) == env_steps:
                    loaded = True
                else:
                    buffer = ReplayBuffer(buffer_size, obs_dim, N)
            except Exception:  # a damaged replay file: refill instead
                buffer = ReplayBuffer(buffer_size, obs_dim, N)
        warmup_until = env_steps + (0 if loaded else learning_starts)
        print(f"[decqn] resumed {task} at {env_steps} env steps from {start_path} "
              f"(replay {'loaded' if loaded else 'refilling for %d steps' % learning_starts})")
    elif resume:
        print(f"[decqn] no checkpoint in {out_dir}: starting fresh")
    os.makedirs(os.path.join(out_dir, "snapshots"), exist_ok=True)  # after the checkpoint was accepted
    _write_metrics(metrics_path, metrics)

    collector = NStepCollector(task, bins_arr, num_envs, n_step, gamma, seed,
                               first_episode=episodes_started)
    bins_t = bins_arr.astype(np.int64)
    online_params = list(net.parameters())
    target_params = list(target.parameters())
    loss_acc = torch.zeros(())
    q_acc = torch.zeros(())
    n_acc = 0
    update_credit = 0.0
    t0 = time.time()
    steps_at_start = env_steps
    bar = None
    if progress:
        from tqdm import tqdm
        bar = tqdm(total=total_env_steps, initial=env_steps, desc=f"decqn {task}",
                   unit="step", smoothing=0.05, mininterval=2.0)

    def do_update():
        o, a, R, o2, d = buffer.sample(rng, batch_size)
        q = net(o).gather(2, a.unsqueeze(-1)).squeeze(-1).mean(1)
        with torch.no_grad():
            a2 = net(o2).argmax(-1, keepdim=True)
            q2 = target(o2).gather(2, a2).squeeze(-1).mean(1)
            y = R + d * q2
        loss = nn.functional.huber_loss(q, y, delta=huber_delta)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if grad_clip:
            nn.utils.clip_grad_norm_(online_params, grad_clip)
        opt.step()
        with torch.no_grad():
            torch._foreach_lerp_(target_params, online_params, tau)
        return loss.detach(), q.detach().mean()

    def checkpoint():
        payload = dict(format=CHECKPOINT_FORMAT, task=task, bins=[int(b) for b in bins_arr],
                       net=net.state_dict(), target=target.state_dict(), optim=opt.state_dict(),
                       env_steps=env_steps, updates=updates,
                       episodes_started=collector.next_episode, metrics=metrics,
                       wall_s=wall_offset + time.time() - t0,
                       rng_state=rng.bit_generator.state, torch_rng_state=torch.get_rng_state(),
                       operative_config=gin.operative_config_str())
        if save_buffer:
            buffer.save(replay_path, env_steps)
        atomic_torch_save(payload, ckpt_path)

    def following(step, every):
        return (step // every + 1) * every

    def next_snapshot(step):
        nxt = following(step, snapshot_every)
        if dense_snapshot_every and step < dense_snapshots_until:
            nxt = min(nxt, following(step, dense_snapshot_every))
        return nxt

    next_eval = following(env_steps, eval_every)
    next_snap = next_snapshot(env_steps)
    next_ckpt = (env_steps // checkpoint_every + 1) * checkpoint_every
    atomic_write_text(os.path.join(out_dir, OPERATIVE_CONFIG), gin.operative_config_str())
    try:
        while env_steps < total_env_steps:
            obs_t = torch.from_numpy(collector.obs)
            with torch.no_grad():
                act = net(obs_t).argmax(-1).numpy()
            if epsilon > 0:
                explore = rng.random((num_envs, N)) < epsilon
                act = np.where(explore, rng.integers(0, bins_t, (num_envs, N)), act)
            collector.step(act.astype(np.uint8), buffer)
            env_steps += num_envs
            if bar is not None:
                bar.update(num_envs)
            if env_steps > warmup_until and buffer.size >= batch_size:
                update_credit += num_envs / update_every
                while update_credit >= 1.0:
                    l, q = do_update()
                    loss_acc += l
                    q_acc += q
                    n_acc += 1
                    updates += 1
                    update_credit -= 1.0
            if env_steps >= next_snap:
                save_snapshot(net, os.path.join(out_dir, "snapshots", f"step_{env_steps:08d}.pt"),
                              task=task, env_steps=env_steps)
                dense = env_steps < next_eval and env_steps <= dense_snapshots_until
                next_snap = next_snapshot(env_steps)
            else:
                dense = False
            if env_steps >= next_eval or dense:
                rets = evaluate_greedy(net, task, bins_arr, eval_episodes, eval_seed)
                recent = collector.completed_returns[-2 * num_envs:]
                wall = wall_offset + time.time() - t0
                row = dict(env_steps=env_steps, updates=updates,
                           episodes=collector.next_episode, wall_s=round(wall, 2),
                           env_steps_per_s=round((env_steps - steps_at_start) / max(time.time() - t0, 1e-9), 1),
                           eval_return_mean=round(float(rets.mean()), 3),
                           eval_return_std=round(float(rets.std()), 3),
                           train_return_recent=round(float(np.mean(recent)), 3) if recent else float("nan"),
                           loss=round(float(loss_acc) / max(n_acc, 1), 6),
                           q_mean=round(float(q_acc) / max(n_acc, 1), 4))
                metrics.append(row)
                _write_metrics(metrics_path, metrics)
                loss_acc.zero_(); q_acc.zero_(); n_acc = 0
                if bar is not None:
                    bar.set_postfix(eval=row["eval_return_mean"])
                else:
                    print(f"[decqn] {task} step {env_steps} eval {row['eval_return_mean']:.1f}", flush=True)
                if env_steps >= next_eval:
                    next_eval = following(env_steps, eval_every)
            if env_steps >= next_ckpt:
                checkpoint()
                next_ckpt += checkpoint_every
        checkpoint()
    finally:
        if bar is not None:
            bar.close()
        collector.close()
    atomic_write_text(os.path.join(out_dir, OPERATIVE_CONFIG), gin.operative_config_str())
    best = max(metrics, key=lambda r: r["eval_return_mean"]) if metrics else None
    return dict(env_steps=env_steps, updates=updates, best=best,
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
