"""Cutting the levels from a behaviour-policy training run: the expert (the best snapshot
under the collection protocol) and the medium policy (the snapshot closest to ~45% of the
expert's return), shipped with their learning curve and configuration.
"""
from __future__ import annotations

import os
from typing import Dict, Optional, Tuple

import numpy as np

from spin_bench.atomic import atomic_write_text
from spin_bench.datagen.paths import policy_dir
from spin_bench.datagen.rollouts import COLLECT_EPSILON, evaluate_policy
from spin_bench.rundir import METRICS, OPERATIVE_CONFIG

MEDIUM_FRACTION = (0.40, 0.50)  # medium return / expert return, as the protocol collects


def export_policies(task: str, run_dir: str, out_dir: Optional[str] = None, bins=None,
                    episodes: int = 20, top_k: int = 4, epsilon: float = COLLECT_EPSILON,
                    medium_fraction: Tuple[float, float] = MEDIUM_FRACTION, version: int = 1) -> Dict:
    """Cut the levels from one training run's snapshots and ship them.

    expert: among the `top_k` snapshots by greedy evaluation, the best by mean return under
    the collection protocol over `episodes` episodes; medium: the snapshot whose protocol
    return is closest to the middle of `medium_fraction` x expert (candidates screened by
    their greedy evaluation). Copies expert.pt, medium.pt, learning_curve.csv,
    operative_config.gin and policies.json to `out_dir` (default the shipped location of
    dataset version `version`, spin_bench.datagen.paths.policy_dir).
    """
    import json
    import shutil

    import torch

    from spin_bench.datagen.decqn import read_metrics
    from spin_bench.datagen.policy import load_snapshot, save_snapshot

    torch.set_num_threads(1)
    metrics = read_metrics(os.path.join(run_dir, METRICS))
    snaps = {int(p[5:13]): os.path.join(run_dir, "snapshots", p)
             for p in os.listdir(os.path.join(run_dir, "snapshots"))
             if p.startswith("step_") and p.endswith(".pt")}
    greedy = {int(r["env_steps"]): r["eval_return_mean"] for r in metrics if int(r["env_steps"]) in snaps}
    if not snaps:
        raise ValueError(f"{run_dir}: no snapshots")
    net0 = load_snapshot(next(iter(snaps.values())))
    bins = net0.bins if bins is None else bins
    out_dir = out_dir or policy_dir(task, bins, version)
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
    # the run by its folder's name only: an absolute path names a machine no user has
    summary = dict(task=task, bins=list(map(int, np.atleast_1d(bins))), version=int(version),
                   run=os.path.basename(os.path.normpath(os.path.abspath(run_dir))),
                   protocol=f"greedy + per-slot epsilon {epsilon}", episodes=episodes)
    for name, step in (("expert", expert_step), ("medium", medium_step)):
        net = load_snapshot(snaps[step])
        save_snapshot(net, os.path.join(out_dir, f"{name}.pt"), task=task, level=name,
                      env_steps=step, greedy_return=greedy[step], protocol_return=evals[step],
                      protocol_episodes=episodes, epsilon=epsilon)
        summary[name] = dict(env_steps=step, greedy_return=greedy[step], protocol_return=evals[step],
                             fraction_of_expert=evals[step] / expert_ret)
    shutil.copyfile(os.path.join(run_dir, METRICS), os.path.join(out_dir, "learning_curve.csv"))
    oc = os.path.join(run_dir, OPERATIVE_CONFIG)
    if os.path.exists(oc):
        shutil.copyfile(oc, os.path.join(out_dir, OPERATIVE_CONFIG))
    summary["evaluated"] = {str(k): v for k, v in sorted(evals.items())}
    atomic_write_text(os.path.join(out_dir, "policies.json"), json.dumps(summary, indent=1))
    return summary
