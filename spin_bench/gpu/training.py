"""The kit's training part: a short real training of one paper-scale cell through the suite's
trainer, its actor snapshots at every evaluation point (no simulator on the image), and
``--evaluate``, which evaluates those snapshots on a machine with the simulator."""
from __future__ import annotations

import glob
import json
import os
import time
from typing import Optional

from spin_bench import vocab
from spin_bench.gpu.kit import KIT_DIR, Kit


# ----------------------------------------------------------------------------------- (d) training
def synthetic_dataset(path: str, task: str = "cheetah-run", episodes: int = 2, length: int = 1000) -> str:
    """A small valid HDF5 dataset of the task's shapes with random content (the dry run's)."""
    import numpy as np

    from spin_bench.data import write_dataset
    from spin_bench.envs import get_task_spec

    spec = get_task_spec(task)
    rng = np.random.default_rng(0)
    n = episodes * length
    timeouts = np.zeros(n, bool)
    timeouts[length - 1::length] = True
    arrays = {"observations": rng.standard_normal((n, spec.obs_dim)).astype(np.float32),
              "next_observations": rng.standard_normal((n, spec.obs_dim)).astype(np.float32),
              "actions": rng.integers(0, 3, (n, spec.num_actions)).astype(np.uint8),
              "rewards": rng.random(n).astype(np.float32), "terminals": np.zeros(n, bool), "timeouts": timeouts}
    write_dataset(path, arrays, {"task": task, "level": "medium-expert", "bins": 3, "seed": 0})
    return path


class SnapshotEvaluator:
    """Stands in for the simulator-backed Evaluator: keeps the actor's weights at every
    evaluation point (returns NaN) for ``--evaluate`` on a machine with the simulator."""

    def __init__(self, actor):
        self.actor, self.snapshots = actor, {}
        trainable = {n for n, p in actor.named_parameters() if p.requires_grad}
        self.keys = [k for k in actor.state_dict() if k in trainable]  # frozen weights once, in `base`
        self.base = {k: v.detach().cpu().clone() for k, v in actor.state_dict().items()}

    def __call__(self, policy, step: int):
        import numpy as np

        state = self.actor.state_dict()
        self.snapshots[int(step)] = {k: state[k].detach().cpu().clone() for k in self.keys}
        return np.full(1, np.nan), 0.0


def train_cell(kit: Kit, device, args) -> dict:
    """A few thousand steps of one paper-scale cell on the carried dataset, via the trainer."""
    import warnings

    import gin
    import torch

    from spin_bench import configs
    from spin_bench.atomic import atomic_torch_save
    from spin_bench.data import load_dataset
    from spin_bench.envs import normalise_bins
    from spin_bench.models.asm import pretrain_asm
    from spin_bench.train.experiment import build_actor
    from spin_bench.rundir import METRICS
    from spin_bench.train.trainer import Schedule, train

    task, method = args.train_task, args.train_method
    dataset_path = args.dataset or _find_dataset(task)
    if kit.dry_run and dataset_path is None:
        dataset_path = synthetic_dataset(os.path.join(kit.scratch, "synthetic.hdf5"), task)
    if dataset_path is None:
        raise FileNotFoundError(f"no {task} dataset in {os.path.join(KIT_DIR, 'data')} (make gpu-kit makes one)")
    cell = os.path.join(configs.CONFIG_ROOT, "gin", "experiments", args.scale, task, "medium-expert", f"{method}_iql.gin")
    bindings = [f"Schedule.num_steps = {args.train_steps}", f"Schedule.eval_every = {args.train_eval_every}",
                f"pretrain_asm.steps = {args.asm_steps}", "pretrain_asm.epochs = None",
                f"UpdateStep.mode = '{args.train_mode}'"]
    configs.parse([cell], bindings)
    dataset = load_dataset(dataset_path, task=task)
    data = dataset.to_torch(device)
    bins = [int(b) for b in normalise_bins(dataset.attrs["bins"], dataset.actions.shape[1])]
    obs_dim = dataset.observations.shape[1]
    run_dir = os.path.join(kit.scratch, "run")
    out = {"cell": os.path.relpath(cell, configs.CONFIG_ROOT), "bindings": bindings, "dataset": dataset_path,
           "dataset_sha256": dataset.sha256, "transitions": int(dataset.num_transitions)}
    torch.manual_seed(0)
    asm = None
    if vocab.needs_asm(method):
        asm = pretrain_asm(data, bins=bins, seed=0, device=device, probe_samples=1024,
                           dataset_sha256=dataset.sha256)
        out["asm"] = {"steps": asm.train_config["steps"], "seconds": asm.pretrain_seconds,
                      "steps_per_s": asm.train_config["steps"] / asm.pretrain_seconds, **asm.final_metrics}
        kit.log(f"train: ASM {asm.train_config['steps']} steps in {asm.pretrain_seconds:.1f}s")
    torch.manual_seed(0)
    actor = build_actor(method, obs_dim, bins, asm).to(device)
    algo = vocab.algo_class(method, "iql")(actor, obs_dim, bins).to(device)
    schedule = Schedule()
    snap = SnapshotEvaluator(actor)
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # NaN returns: no simulator here
        rows = train(algo, data, snap, run_dir, schedule, 0, device,
                     pretrain_time_s=float(asm.pretrain_seconds) if asm else 0.0, tensorboard=False)
    wall = time.perf_counter() - t0
    with open(os.path.join(run_dir, METRICS)) as f:
        metrics = f.read()
    with open(os.path.join(kit.out, "train_metrics.csv"), "w") as f:
        f.write(metrics)
    pure = rows[-1]["train_time_s"] - (float(asm.pretrain_seconds) if asm else 0.0)
    atomic_torch_save({"format": "spin_bench.gpu_check snapshots v1", "task": task, "method": method,
                       "scale": args.scale, "bins": bins, "obs_dim": obs_dim, "cell": out["cell"],
                       "operative_config": gin.operative_config_str(), "base": snap.base,
                       "snapshots": snap.snapshots, "dataset_sha256": dataset.sha256},
                      os.path.join(kit.out, "snapshots.pt"))
    out.update({"steps": rows[-1]["step"], "update_mode": args.train_mode, "wall_s": wall,
                "train_steps_per_s": rows[-1]["step"] / pure if pure > 0 else None,
                "final_losses": {k: v for k, v in rows[-1].items() if k.endswith("_loss") or k == "q_mean"},
                "behaviour_nll": [r["behaviour_nll"] for r in rows],
                "snapshot_steps": sorted(snap.snapshots),
                "snapshots_mb": os.path.getsize(os.path.join(kit.out, "snapshots.pt")) / 2**20})
    kit.log(f"train: {out['steps']} steps, {out['train_steps_per_s']:.1f} steps/s ({args.train_mode})")
    if out["snapshots_mb"] > 15:
        kit.log(f"train: snapshots.pt is {out['snapshots_mb']:.0f} MiB, over the device tool's 16 MiB per file")
    return out


def _find_dataset(task: str) -> Optional[str]:
    found = sorted(glob.glob(os.path.join(KIT_DIR, "data", f"{task}-*.hdf5")))
    return found[0] if found else None


# ----------------------------------------------------------------------------------- --evaluate
def evaluate_snapshots(results_dir: str, out_dir: str, episodes: int, max_steps: Optional[int] = None) -> dict:
    """On a machine with the simulator: every snapshot of the training part, evaluated on the
    CPU with the suite's Evaluator (the run's protocol: sampled actions, seeded per step)."""
    import gin
    import numpy as np
    import torch

    from spin_bench import configs
    from spin_bench.atomic import atomic_write_json
    from spin_bench.envs import reference_returns
    from spin_bench.models.asm import ActionStructureModel
    from spin_bench.train.evaluation import Evaluator
    from spin_bench.train.experiment import build_actor

    snaps = torch.load(os.path.join(results_dir, "snapshots.pt"), map_location="cpu", weights_only=True)
    configs.import_configurables()
    gin.clear_config()
    gin.parse_config(snaps["operative_config"], skip_unknown=True)
    asm = ActionStructureModel(snaps["obs_dim"], snaps["bins"]) if vocab.needs_asm(snaps["method"]) else None
    actor = build_actor(snaps["method"], snaps["obs_dim"], snaps["bins"], asm)
    actor.load_state_dict(snaps["base"])
    evaluator = Evaluator(snaps["task"], snaps["bins"], episodes, 0, torch.device("cpu"), max_steps=max_steps)
    ref = reference_returns(snaps["task"], int(snaps["bins"][0]), "generated")
    rows = []
    try:
        for step in sorted(snaps["snapshots"]):
            actor.load_state_dict(dict(snaps["base"], **snaps["snapshots"][step]))
            actor.eval()
            returns, seconds = evaluator(lambda obs, gen: actor.sample(obs, generator=gen), step)
            rows.append({"step": step, "return_mean": float(np.mean(returns)), "return_std": float(np.std(returns)),
                         "normalized_score": ref.normalise(float(np.mean(returns))) if ref else None,
                         "eval_time_s": seconds})
            print(json.dumps(rows[-1]), flush=True)
    finally:
        evaluator.close()
    result = {"task": snaps["task"], "method": snaps["method"], "episodes": episodes, "rows": rows}
    atomic_write_json(os.path.join(out_dir, "evaluation.json"), result)
    return result
