"""Synthetic run directories in the runner's format, for tests and for trying the report.

``write_run_dir`` writes exactly what ``spin_bench.train`` writes (summary.json,
metrics.csv, operative_config.gin, COMPLETE); ``make_synthetic_sweep`` writes a realistic
sweep (paper-like asymptotes, learning curves, clocks) with a few bad runs mixed in.
None of this is a result: it only exercises the analysis code.
"""
from __future__ import annotations

import hashlib
import json
import os
from typing import Dict, Optional, Sequence

import numpy as np
import pandas as pd

from spin_bench.analysis.cells import in_cell
from spin_bench.analysis.reference import paper_returns, published_reference_scores
from spin_bench.rundir import COMPLETE, METRICS, OPERATIVE_CONFIG, SUMMARY
from spin_bench.vocab import LEVEL_ORDER, actor_methods


def write_run_dir(run_dir: str, *, task: str = "cheetah-run", bins=3, level: str = "medium",
                  method: str = "f", algo: str = "iql", scale: str = "cpu", seed: int = 0,
                  returns: Sequence[float], steps: Optional[Sequence[int]] = None,
                  train_time_s: Optional[Sequence[float]] = None,
                  eval_time_s: Optional[Sequence[float]] = None,
                  reference: Optional[Dict[str, float]] = None,
                  write_normalized: bool = True, status: str = "complete",
                  complete: Optional[bool] = None, error: Optional[str] = None,
                  dataset_id: Optional[str] = None, dataset_sha256: Optional[str] = None,
                  dataset_identity: Optional[str] = None, dataset_path: Optional[str] = None,
                  pretrain_time_s: float = 0.0, final_k: int = 5) -> str:
    """Write one run directory; ``returns`` are the evaluation returns in order.

    ``dataset_identity`` defaults to one derived from the sha256 (same file, same data);
    ``""`` writes a run from before identities were recorded (the sha256 only)."""
    returns = np.asarray(returns, dtype=float)
    n = len(returns)
    steps = np.arange(1, n + 1) * 1000 if steps is None else np.asarray(steps)
    if train_time_s is None:
        train_time_s = pretrain_time_s + 0.06 * steps
    train_time_s = np.asarray(train_time_s, dtype=float)
    eval_time_s = (np.arange(1, n + 1) * 2.0 if eval_time_s is None
                   else np.asarray(eval_time_s, dtype=float))
    norm = ((returns - reference["random"]) / (reference["expert"] - reference["random"])
            if reference and write_normalized else np.full(n, np.nan))
    os.makedirs(run_dir, exist_ok=True)
    pd.DataFrame({"step": steps, "train_time_s": train_time_s, "eval_time_s": eval_time_s,
                  "return_mean": returns, "return_std": np.full(n, 10.0),
                  "normalized_score": norm, "critic_loss": np.linspace(1.0, 0.1, n),
                  "actor_loss": np.linspace(2.0, 0.5, n)}).to_csv(
        os.path.join(run_dir, METRICS), index=False)
    dataset_id = dataset_id or f"{task}-{level}-{bins}bins"
    dataset_sha256 = dataset_sha256 or ("0" * 63 + "1")
    if dataset_identity is None:
        dataset_identity = hashlib.sha256(f"identity of {dataset_sha256}".encode()).hexdigest()
    k = min(final_k, n)
    summary = {
        "status": status, "error": error, "task": task, "bins": bins, "level": level,
        "method": method, "algo": algo, "scale": scale, "seed": seed,
        "dataset_id": dataset_id, "dataset_sha256": dataset_sha256,
        "num_steps": int(steps[-1]) if n else 0, "final_k": final_k,
        "final_return": float(returns[-k:].mean()) if n else None,
        "best_return": float(returns.max()) if n else None,
        "final_normalized_score": float(norm[-k:].mean()) if (n and reference) else None,
        "reference": (dict(reference, source=reference.get("source", "published"))
                      if reference else None),
        "pretrain_time_s": float(pretrain_time_s),
        "train_time_s": float(train_time_s[-1]) if n else 0.0,
        "eval_time_s": float(eval_time_s[-1]) if n else 0.0,
        "device": "cpu", "versions": {"python": "3.11"}, "git_commit": None,
        "spin_bench_version": "0.1.0",
    }
    if dataset_identity:
        summary["dataset_identity"] = dataset_identity
    if dataset_path:
        summary["dataset_path"] = dataset_path
    with open(os.path.join(run_dir, SUMMARY), "w") as f:
        json.dump(summary, f, indent=1)
    with open(os.path.join(run_dir, OPERATIVE_CONFIG), "w") as f:
        f.write(f"# synthetic run\nExperiment.task = '{task}'\nExperiment.seed = {seed}\n")
    if complete is None:
        complete = status == "complete"
    if complete:
        open(os.path.join(run_dir, COMPLETE), "w").close()
    return run_dir


# Per-step training cost (seconds per gradient step) and ASM pre-training, paper-like on a GPU.
_STEP_COST = {"f": 0.0040, "ar": 0.0075, "saint": 0.0065, "spin": 0.0035}
_RISE = {"f": 60_000, "ar": 70_000, "saint": 55_000, "spin": 18_000}


def make_synthetic_sweep(root: str, seed: int = 0, seeds: int = 5, num_steps: int = 300_000,
                         eval_every: int = 10_000, include_bad_runs: bool = True,
                         cells: Optional[Sequence] = None) -> str:
    """A realistic-looking IQL sweep under ``root`` (paper-like asymptotes from Tables 1/2)."""
    rng = np.random.default_rng(seed)
    paper = paper_returns()
    refs = published_reference_scores().set_index(["task", "bins"])
    if cells is None:
        cells = [(t, "3", lv) for t in ("cheetah-run", "finger-spin", "quadruped-walk",
                                         "humanoid-stand")
                 for lv in LEVEL_ORDER]
        cells += [("dog-trot", b, "medium-expert") for b in ("3", "10", "30")]
    steps = np.arange(eval_every, num_steps + 1, eval_every)
    for task, bins, level in cells:
        ref = refs.loc[(task, bins)]
        reference = {"expert": float(ref["expert"]), "random": float(ref["random"])}
        cell = in_cell(paper, (task, bins, level))
        start = 0.5 * reference["random"] + 0.15 * reference["expert"]
        for method in actor_methods(builtin_only=True):
            row = cell[cell.method == method].iloc[0]
            pretrain = 240.0 * (1 + len(bins)) if method == "spin" else 0.0
            for s in range(seeds):
                asym = row["mean"] + row["std"] * rng.standard_normal()
                rise = _RISE[method] * rng.uniform(0.7, 1.4)
                curve = asym - (asym - start) * np.exp(-steps / rise)
                noise = rng.normal(0, 0.03 * abs(asym) + 3.0, size=len(steps))
                returns = np.clip(curve + noise, 0, 1000)
                cost = _STEP_COST[method] * (1 + 0.02 * int(bins.split(",")[0]) ** 0.5)
                dt = cost * eval_every * rng.uniform(0.95, 1.05, size=len(steps))
                train = pretrain + np.cumsum(dt)
                write_run_dir(
                    os.path.join(root, f"{task}_{level}_{bins}bins", f"{method}_iql", f"seed{s}"),
                    task=task, bins=int(bins), level=level, method=method, algo="iql",
                    scale="paper", seed=s, returns=returns, steps=steps, train_time_s=train,
                    eval_time_s=np.cumsum(np.full(len(steps), 20.0)), reference=reference,
                    pretrain_time_s=pretrain, dataset_sha256=hashlib.sha256(f"{task}-{level}-{bins}".encode()).hexdigest())
    if include_bad_runs:
        t, b, lv = cells[0]
        r = np.linspace(100, 300, len(steps))
        write_run_dir(os.path.join(root, "bad", "running"), task=t, bins=int(b), level=lv,
                      method="spin", scale="paper", seed=99, returns=r[:5], steps=steps[:5],
                      status="running")
        write_run_dir(os.path.join(root, "bad", "failed"), task=t, bins=int(b), level=lv,
                      method="ar", scale="paper", seed=98, returns=r[:3], steps=steps[:3],
                      status="failed", error="RuntimeError: CUDA out of memory")
        write_run_dir(os.path.join(root, "bad", "other_data"), task=t, bins=int(b), level=lv,
                      method="f", scale="paper", seed=97, returns=r, steps=steps,
                      dataset_sha256="f" * 64,
                      dataset_id=f"{t}-{lv}-{b}bins")
    return root
