"""The one training loop every algorithm and actor runs through.

Schedule: `num_steps` gradient steps on minibatches drawn uniformly (seeded generator) from
the in-memory dataset; every `eval_every` steps an evaluation, a metrics row, a checkpoint.
Clocks: the *training clock* counts only gradient steps (plus, for SPIN, the ASM
pre-training it starts from); evaluation wall-clock is kept separately.  A killed run
resumes from its last checkpoint (model, optimisers, sampler and dropout RNG states,
metrics so far) and ends with the same metrics it would have had.
"""
from __future__ import annotations

import csv
import dataclasses
import io
import os
import sys
import time
from typing import Callable, Dict, List, Optional

import gin
import numpy as np
import torch

from spin_bench.algos.base import Batch, OfflineAlgorithm
from spin_bench.atomic import atomic_torch_save, atomic_write_text
from spin_bench.models.common import synchronize
from spin_bench.rundir import CHECKPOINT, METRICS, RunDirError
from spin_bench.safe_load import UnreadableFileError, load_torch_file
from spin_bench.train.graph_step import UpdateStep

# What a training checkpoint holds (all tensors or plain Python values: it loads with
# torch.load(weights_only=True), see spin_bench.safe_load).
CHECKPOINT_KEYS = ("algo", "sampler_rng", "torch_rng", "cuda_rng", "step", "train_clock", "eval_clock", "rows")
BASE_COLUMNS = ["step", "train_time_s", "eval_time_s", "return_mean", "return_std",
                "normalized_score", "behaviour_nll"]


class NumericalError(RuntimeError):
    """A loss became NaN or infinite."""


@gin.configurable
class Schedule:
    """How long to train and how often to evaluate (bound per scale in gin/scales/)."""

    def __init__(self, num_steps: int = 1_000_000, batch_size: int = 256, eval_every: int = 5_000,
                 eval_episodes: int = 10, eval_max_steps: Optional[int] = None,
                 deterministic_eval: bool = False, final_k: int = 5, log_every: int = 1_000):
        for name, value in (("num_steps", num_steps), ("batch_size", batch_size), ("eval_every", eval_every),
                            ("eval_episodes", eval_episodes), ("final_k", final_k), ("log_every", log_every)):
            _positive_int(f"Schedule.{name}", value)
        if eval_max_steps is not None:
            _positive_int("Schedule.eval_max_steps", eval_max_steps, "a positive integer or None")
        if not isinstance(deterministic_eval, bool):
            raise ValueError(f"Schedule.deterministic_eval must be True or False, got {deterministic_eval!r}")
        self.num_steps, self.batch_size, self.eval_every = num_steps, batch_size, eval_every
        self.eval_episodes, self.eval_max_steps = eval_episodes, eval_max_steps
        self.deterministic_eval, self.final_k, self.log_every = deterministic_eval, final_k, log_every

    @property
    def num_evaluations(self) -> int:
        """Evaluations of the schedule: every `eval_every` steps and at the last step."""
        return -(-self.num_steps // self.eval_every)

    def check_final_k(self) -> None:
        """ValueError unless 1 <= final_k <= the number of evaluations (the runner's check)."""
        if self.final_k > self.num_evaluations:
            raise ValueError(f"Schedule.final_k must be between 1 and the number of evaluations "
                             f"({self.num_evaluations}: num_steps {self.num_steps}, eval_every "
                             f"{self.eval_every}), got {self.final_k}")


def _positive_int(name: str, value, expected: str = "a positive integer") -> None:
    """ValueError naming the gin parameter unless `value` is an int >= 1 (bools are not ints)."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be {expected}, got {value!r}")


class DatasetSampler:
    """Uniform minibatches from dataset tensors resident on the training device."""

    def __init__(self, data: Dict[str, torch.Tensor], batch_size: int, seed: int):
        self.obs = data["observations"]
        self.act = data["actions"].long()
        self.rew = data["rewards"].float()
        self.next_obs = data["next_observations"]
        self.term = data["terminals"].float()
        self.size, self.batch_size = self.obs.shape[0], batch_size
        self.generator = torch.Generator(device=self.obs.device)
        self.generator.manual_seed(seed)

    def sample(self) -> Batch:
        idx = torch.randint(self.size, (self.batch_size,), generator=self.generator, device=self.obs.device)
        return self.gather(idx)

    def gather(self, idx: torch.Tensor) -> Batch:
        return Batch(self.obs[idx], self.act[idx], self.rew[idx], self.next_obs[idx], self.term[idx])

    def probe(self, size: int = 1024, seed: int = 12345) -> Batch:
        """A fixed batch (same for every evaluation of every run on this dataset)."""
        g = torch.Generator(device=self.obs.device)
        g.manual_seed(seed)
        return self.gather(torch.randint(self.size, (min(size, self.size),), generator=g, device=self.obs.device))


def _write_metrics(path: str, rows: List[dict]) -> None:
    columns = list(BASE_COLUMNS)
    for row in rows:
        columns += [k for k in row if k not in columns]
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns)
    writer.writeheader()
    for row in rows:
        writer.writerow({k: ("" if row.get(k) is None else row.get(k)) for k in columns})
    atomic_write_text(path, buf.getvalue())


class _Progress:
    """tqdm on a TTY, otherwise one log line every `every` steps and one per evaluation. A line
    only ever shows an evaluation it names by its step, so what it says is metrics.csv's row."""

    def __init__(self, total: int, initial: int, every: int, desc: str):
        self.tty = sys.stderr.isatty()
        self.every, self.last_eval = every, ""
        self.t0, self.s0 = time.perf_counter(), initial
        self.bar = None
        if self.tty:
            from tqdm import tqdm

            self.bar = tqdm(total=total, initial=initial, desc=desc, unit="step", dynamic_ncols=True)

    def _rate(self, step: int) -> str:
        return f"{(step - self.s0) / max(time.perf_counter() - self.t0, 1e-9):.1f} steps/s"

    def update(self, step: int, n: int = 1, evaluating: bool = False):
        """After gradient step `step`; `evaluating`: an evaluation follows (its line is logged then)."""
        if self.bar is not None:
            self.bar.update(n)
        elif step % self.every == 0 and not evaluating:
            last = f"  (last evaluation {self.last_eval})" if self.last_eval else ""
            print(f"step {step}  {self._rate(step)}{last}", file=sys.stderr, flush=True)

    def evaluated(self, step: int, mean: float, normalised: Optional[float]):
        """The evaluation at `step` is done: its return (and normalised score) as metrics.csv has them."""
        text = f"return {mean:.1f}" + ("" if normalised is None else f", normalised {normalised:.3f}")
        self.last_eval = f"step {step}: {text}"
        if self.bar is not None:
            self.bar.set_postfix_str(text)
        else:
            print(f"step {step}  {self._rate(step)}  evaluation: {text}", file=sys.stderr, flush=True)

    def close(self):
        if self.bar is not None:
            self.bar.close()


@dataclasses.dataclass
class _Progression:
    """Where a run stands: gradient steps done, the two clocks (seconds) and the metrics rows."""

    step: int
    train_clock: float
    eval_clock: float
    rows: List[dict]


class _LossMeans:
    """Per-loss sums over the gradient steps since the last evaluation (device tensors, no sync)."""

    def __init__(self):
        self.sums: Dict[str, torch.Tensor] = {}
        self.count = 0

    def add(self, losses: Dict[str, torch.Tensor]) -> None:
        for k, v in losses.items():
            self.sums[k] = self.sums[k] + v if k in self.sums else v.clone()
        self.count += 1

    def means(self) -> Dict[str, float]:
        """mean_k = sum_k / max(count, 1) per loss, as Python floats."""
        return {k: float(v) / max(self.count, 1) for k, v in self.sums.items()}


def _resume(algo: OfflineAlgorithm, sampler: DatasetSampler, schedule: Schedule, device: torch.device,
            ckpt_path: str, checkpoint: Optional[dict], pretrain_time_s: float, resume: bool) -> _Progression:
    """A fresh start, or the checkpoint's state restored into `algo`, the sampler and the RNGs."""
    if resume and (checkpoint is not None or os.path.exists(ckpt_path)):
        # CPU first: the loaders copy onto the live modules' devices; RNG states must stay on the CPU.
        state = checkpoint if checkpoint is not None else load_checkpoint(ckpt_path)
        check_resume_step(os.path.dirname(ckpt_path), state["step"], schedule)
        algo.load_full_state_dict(state["algo"])
        sampler.generator.set_state(state["sampler_rng"].cpu())  # generator states live on the CPU
        torch.set_rng_state(state["torch_rng"])
        if device.type == "cuda" and state.get("cuda_rng") is not None:
            torch.cuda.set_rng_state(state["cuda_rng"], device)
        return _Progression(state["step"], state["train_clock"], state["eval_clock"], state["rows"])
    return _Progression(0, float(pretrain_time_s), 0.0, [])


def _train_until_evaluation(update: UpdateStep, sampler: DatasetSampler, schedule: Schedule,
                            device: torch.device, run: _Progression, losses: _LossMeans,
                            progress: _Progress) -> None:
    """Gradient steps up to the next evaluation (or the last step); their time joins the
    training clock. Losses are checked every `log_every` steps and at the end."""
    synchronize(device)
    t0 = time.perf_counter()
    chunk = min(schedule.eval_every - run.step % schedule.eval_every, schedule.num_steps - run.step)
    for _ in range(chunk):
        losses.add(update(sampler.sample()))
        run.step += 1
        progress.update(run.step, evaluating=run.step % schedule.eval_every == 0 or run.step == schedule.num_steps)
        if run.step % schedule.log_every == 0:
            _check_finite(losses.sums, run.step)
    synchronize(device)
    run.train_clock += time.perf_counter() - t0
    _check_finite(losses.sums, run.step)


def _evaluate(algo: OfflineAlgorithm, evaluator: Callable, policy: Callable, probe: Batch, step: int):
    """(returns, evaluation seconds, behaviour NLL) with the algorithm in eval mode; the NLL is
    -mean log pi(a|s) on the fixed probe batch (None without an actor)."""
    algo.eval()
    returns, eval_seconds = evaluator(policy, step)
    behaviour_nll = None  # how well the actor explains the data's actions (none: no actor)
    if getattr(algo, "actor", None) is not None:
        with torch.no_grad():
            behaviour_nll = float(-algo.actor.log_prob(probe.observations, probe.actions).mean())
    algo.train()
    return returns, eval_seconds, behaviour_nll


def _metrics_row(run: _Progression, returns, behaviour_nll: Optional[float],
                 normalise: Optional[Callable[[float], float]], losses: _LossMeans) -> dict:
    """One metrics.csv row: the evaluation's return mean/std, normalised score, behaviour NLL and
    the mean of each loss since the last evaluation."""
    mean = float(np.mean(returns))
    row = {"step": run.step, "train_time_s": run.train_clock, "eval_time_s": run.eval_clock,
           "return_mean": mean, "return_std": float(np.std(returns)),
           "normalized_score": normalise(mean) if normalise else None,
           "behaviour_nll": behaviour_nll}
    row.update(losses.means())
    return row


def _log_tensorboard(writer, row: dict) -> None:
    """The row's values as scalars at its step (eval/ for returns and scores, train/ otherwise)."""
    step = row["step"]
    for k, v in row.items():
        if k != "step" and v is not None:
            writer.add_scalar(f"eval/{k}" if k.startswith(("return", "normalized")) else f"train/{k}", v, step)
    writer.flush()


def _save_checkpoint(path: str, algo: OfflineAlgorithm, sampler: DatasetSampler, device: torch.device,
                     run: _Progression) -> None:
    """The checkpoint (CHECKPOINT_KEYS), written atomically."""
    atomic_torch_save({
        "algo": algo.full_state_dict(), "sampler_rng": sampler.generator.get_state(),
        "torch_rng": torch.get_rng_state(),
        "cuda_rng": torch.cuda.get_rng_state(device) if device.type == "cuda" else None,
        "step": run.step, "train_clock": run.train_clock, "eval_clock": run.eval_clock, "rows": _plain(run.rows),
    }, path)


def train(algo: OfflineAlgorithm, data: Dict[str, torch.Tensor], evaluator: Callable,
          run_dir: str, schedule: Schedule, seed: int, device: torch.device,
          normalise: Optional[Callable[[float], float]] = None, pretrain_time_s: float = 0.0,
          resume: bool = True, tensorboard: bool = True, checkpoint: Optional[dict] = None) -> List[dict]:
    """Run (or resume) the schedule; returns the metrics rows (one per evaluation). `checkpoint`:
    the run directory's checkpoint when the caller loaded it already (load_checkpoint)."""
    os.makedirs(run_dir, exist_ok=True)
    sampler = DatasetSampler(data, schedule.batch_size, seed)
    ckpt_path = os.path.join(run_dir, CHECKPOINT)
    run = _resume(algo, sampler, schedule, device, ckpt_path, checkpoint, pretrain_time_s, resume)

    writer = None
    if tensorboard:
        from torch.utils.tensorboard import SummaryWriter

        writer = SummaryWriter(run_dir, purge_step=run.step if run.step else None)

    probe = sampler.probe()
    policy = lambda obs, gen: algo.act(obs, generator=gen, deterministic=schedule.deterministic_eval)
    progress = _Progress(schedule.num_steps, run.step, schedule.log_every, desc=os.path.basename(run_dir))
    losses = _LossMeans()
    algo.train()
    update = UpdateStep(algo, device)  # after resume: a captured graph holds the loaded tensors
    try:
        while run.step < schedule.num_steps:
            _train_until_evaluation(update, sampler, schedule, device, run, losses, progress)
            returns, eval_seconds, behaviour_nll = _evaluate(algo, evaluator, policy, probe, run.step)
            run.eval_clock += eval_seconds
            row = _metrics_row(run, returns, behaviour_nll, normalise, losses)
            run.rows.append(row)
            losses = _LossMeans()
            progress.evaluated(run.step, row["return_mean"], row["normalized_score"])
            if writer is not None:
                _log_tensorboard(writer, row)
            _write_metrics(os.path.join(run_dir, METRICS), run.rows)
            _save_checkpoint(ckpt_path, algo, sampler, device, run)
    finally:
        progress.close()
        if writer is not None:
            writer.close()
    return run.rows


def _plain(rows: List[dict]) -> List[dict]:
    """Metrics rows as plain Python values (numpy scalars -> float), loadable with weights_only."""
    return [{k: v if v is None or isinstance(v, (bool, int, str)) and not isinstance(v, np.generic) else float(v)
             for k, v in row.items()} for row in rows]


def load_checkpoint(path: str) -> dict:
    """A training checkpoint, loaded onto the CPU without running code (spin_bench.safe_load);
    a file that is not one raises UnreadableFileError naming it."""
    # a regular file, not a link: run directories are shared
    state = load_torch_file(path, "training checkpoint", map_location="cpu", follow_symlinks=False)
    missing = [k for k in CHECKPOINT_KEYS if k not in state] if isinstance(state, dict) else list(CHECKPOINT_KEYS)
    if (missing or not isinstance(state["rows"], list) or not all(isinstance(r, dict) for r in state["rows"])
            or isinstance(state["step"], bool) or not isinstance(state["step"], int) or state["step"] < 0):
        raise UnreadableFileError(f"{path}: not a spin_bench training checkpoint "
                                  f"(lacks {', '.join(missing) or 'well-formed step/rows'})")
    return state


def check_resume_step(run_dir: str, step: int, schedule: Schedule) -> None:
    """RunDirError (a ValueError) when a checkpoint at `step` is past Schedule.num_steps: its
    evaluations past the new end would make the final score. Nothing is changed."""
    if step > schedule.num_steps:
        raise RunDirError(f"refusing to resume {run_dir}: its checkpoint is at step {step}, past "
                          f"Schedule.num_steps = {schedule.num_steps}; nothing was changed (resume with "
                          f"num_steps >= {step} or use another --run_dir)")


def _check_finite(loss_sums: Dict[str, torch.Tensor], step: int) -> None:
    """One host sync per call: raise NumericalError naming the first non-finite loss."""
    if not loss_sums:
        return
    names = list(loss_sums)
    finite = torch.isfinite(torch.stack([loss_sums[k].float() for k in names])).cpu()
    if not bool(finite.all()):
        bad = [n for n, ok in zip(names, finite.tolist()) if not ok]
        raise NumericalError(f"non-finite loss ({', '.join(bad)}) by gradient step {step}; "
                             f"the run was stopped (check learning rates, reward scale, data)")

