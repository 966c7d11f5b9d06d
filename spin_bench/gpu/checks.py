"""The one-command CUDA check: python -m spin_bench.gpu_check [--out=DIR] [--dry_run] [--parts=...]

Made for a bare GPU image with a short time window (docs/gpu.md): torch, numpy, h5py,
absl-py, tqdm, tensorboard and pytest installed; gin-config carried as a wheel in
``gpu_kit/wheels`` (``make gpu-kit``) and put on ``sys.path`` here; no simulator. The kit never
imports gymnasium, dm_control or mujoco (it blocks them, also where they are installed, so the
dry run in CI proves it), so nothing it exercises needs one: the training run's actor snapshots
are evaluated afterwards on a machine with the simulator (``--evaluate``).

Parts (``--parts``, all by default), each writing into ``--out`` as soon as it is done:

- ``tests``: the model and algorithm tests that need no simulator (CPU, under the image's torch)
  and ``tests/test_cuda.py`` on the device: device boundaries, one IQL step per actor against
  the CPU's, the captured graph against eager steps.
- ``equality``: one IQL step of every actor (F, AR, SAINT, SPIN) at the paper's sizes on the
  device against the CPU (same weights and batch, dropout off, TF32 off): loss differences and
  relative gradient errors; and N steps replayed from a CUDA graph against N eager steps.
- ``bench``: the paper-scale bench (``spin_bench.perf.measure``, in this process) for every
  method x IQL on cheetah-run, quadruped-walk, humanoid-stand and dog-trot, eager against
  graph (and bf16/TF32 on one task): steps/s, ms/step, FLOPs and ATen calls per step, peak
  memory; and ASM pre-training steps/s per task.
- ``precision``: the losses of fp32, TF32 and bf16 steps from the same weights and batches.
- ``train``: a short real training of one paper-scale cell (SPIN-IQL on cheetah-run by
  default; ASM pre-training included) on the carried HDF5 dataset, through the suite's
  trainer with the graph step, checkpointing as a run does; actor snapshots at every
  evaluation point go to ``snapshots.pt``.

Files written to ``--out`` (at most 8): ``gpu_check.json`` (everything, rewritten after each
part), ``bench.jsonl`` (``python -m spin_bench.bench --render`` reads it), ``pytest.txt``,
``train_metrics.csv``, ``snapshots.pt``, ``log.txt``; ``--evaluate`` adds ``evaluation.json``.

``--dry_run``: the same code paths on the CPU at toy sizes (a synthetic HDF5 dataset, a few
steps, the static-buffer step in place of the graph) in well under a minute; CI runs it.
"""
from __future__ import annotations

import argparse
import glob
import json
import os
import platform
import shutil
import sys
import tempfile
import time
import traceback
from typing import Callable, Dict, List, Optional

from spin_bench.vocab import ACTOR_METHOD_ORDER

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
KIT_DIR = os.path.join(REPO_ROOT, "gpu_kit")
# Not on the bare GPU image (the simulator, and the report's statistics): blocked here too.
SIMULATOR_MODULES = ("gymnasium", "dm_control", "mujoco", "rliable", "arch")
PARTS = ("tests", "equality", "bench", "precision", "train")
METHODS = ACTOR_METHOD_ORDER
BENCH_TASKS = ("cheetah-run", "quadruped-walk", "humanoid-stand", "dog-trot")
# Model and algorithm tests that need no simulator (tests/test_cuda.py runs on the device).
TEST_FILES = ("tests/test_models_actors.py", "tests/test_models_asm.py", "tests/test_models_critics.py",
              "tests/test_models_spin.py", "tests/test_algos.py", "tests/test_graph_step.py", "tests/test_cuda.py")
NO_DROPOUT = ["TransformerActor.dropout = 0.0", "TransformerActor.head_dropout = 0.0",
              "ActionStructureModel.dropout = 0.0", "make_spin_actor.head_dropout = 0.0"]


def block_simulator() -> None:
    """Make importing the simulator (and rliable, arch) fail with ImportError, as on the bare GPU image."""
    for name in SIMULATOR_MODULES:
        sys.modules[name] = None  # type: ignore[assignment]


def carried_wheels() -> List[str]:
    """Pure-Python wheels carried in gpu_kit/wheels (importable straight from the zip)."""
    return sorted(glob.glob(os.path.join(KIT_DIR, "wheels", "*-py3-none-any.whl")))


def bootstrap_path() -> None:
    """Put the repository and, where gin is missing, the carried wheels on sys.path."""
    entries = [REPO_ROOT]
    try:
        import gin  # noqa: F401
    except ImportError:
        entries += carried_wheels()
    for e in reversed(entries):
        if e not in sys.path:
            sys.path.insert(0, e)


class Kit:
    """Results of the parts, written to ``out`` after each one (a killed run keeps what it had)."""

    def __init__(self, out: str, dry_run: bool, device_name: str):
        self.out, self.dry_run = out, dry_run
        self.results: Dict[str, object] = {"dry_run": dry_run, "started": time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                                                                          time.gmtime())}
        self.t0 = time.perf_counter()
        self.device_name = device_name
        self.log_file = open(os.path.join(out, "log.txt"), "a")
        self.scratch = tempfile.mkdtemp(prefix="gpu_check_")  # run dir, dry-run dataset; removed at the end

    def log(self, msg: str) -> None:
        line = f"[gpu_check {time.perf_counter() - self.t0:7.1f}s] {msg}"
        print(line, flush=True)
        self.log_file.write(line + "\n")
        self.log_file.flush()

    def save(self) -> None:
        from spin_bench.atomic import atomic_write_json

        self.results["elapsed_s"] = time.perf_counter() - self.t0
        atomic_write_json(os.path.join(self.out, "gpu_check.json"), self.results)

    def part(self, name: str, fn: Callable[[], object]) -> None:
        self.log(f"part {name} ...")
        t = time.perf_counter()
        try:
            self.results[name] = {"ok": True, "result": fn()}
        except Exception as e:  # one broken part must not cost the others their window
            self.results[name] = {"ok": False, "error": f"{type(e).__name__}: {e}",
                                  "traceback": traceback.format_exc()}
            self.log(f"part {name} FAILED: {type(e).__name__}: {e}")
        self.results[name]["seconds"] = time.perf_counter() - t
        self.save()
        self.log(f"part {name} done in {time.perf_counter() - t:.1f}s")


# ----------------------------------------------------------------------------------- environment
def environment(device) -> dict:
    import torch

    from spin_bench.train import provenance

    commit = provenance.git_commit()
    stamp = os.path.join(KIT_DIR, "COMMIT")
    if commit is None and os.path.exists(stamp):
        with open(stamp) as f:
            commit = f.read().strip() + " (gpu_kit/COMMIT, written by make gpu-kit)"
    info = {"python": platform.python_version(), "torch": torch.__version__, "cuda": torch.version.cuda,
            "device": str(device), "git_commit": commit, "versions": provenance.package_versions(),
            "wheels": [os.path.basename(w) for w in carried_wheels()], "cpu_count": os.cpu_count()}
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        info.update(gpu=props.name, gpu_memory_gb=props.total_memory / 2**30, sm_count=props.multi_processor_count,
                    cudnn=torch.backends.cudnn.version())
    return info


# ----------------------------------------------------------------------------------- (a) tests
def run_tests(kit: Kit, device) -> dict:
    """pytest in this process (the simulator already blocked, no second torch start-up)."""
    import contextlib
    import io

    import pytest

    runs = []
    if kit.dry_run:  # the device file for real, the rest collected (imports without a simulator)
        plan = [["tests/test_cuda.py", f"--device={device.type}"], ["--collect-only", *TEST_FILES]]
    else:
        plan = [[*TEST_FILES, f"--device={device.type}"]]
    cwd = os.getcwd()
    os.chdir(REPO_ROOT)
    try:
        with open(os.path.join(kit.out, "pytest.txt"), "w") as log:
            for args in plan:
                buf = io.StringIO()
                t = time.perf_counter()
                with contextlib.redirect_stdout(buf):
                    code = int(pytest.main(["-q", "-p", "no:cacheprovider", "-rfEs", *args]))
                text = buf.getvalue()
                log.write(f"$ pytest {' '.join(args)}\n{text}\n")
                last = (text.strip().splitlines() or [""])[-1]
                runs.append({"args": args, "exit_code": code, "summary": last, "seconds": time.perf_counter() - t})
                kit.log(f"pytest {' '.join(args)}: {last}")
    finally:
        os.chdir(cwd)
    if any(r["exit_code"] != 0 for r in runs):
        raise RuntimeError("tests failed: " + "; ".join(r["summary"] for r in runs) + " (see pytest.txt)")
    return {"runs": runs}


# ----------------------------------------------------------------------------------- model builds
def _cell_algo(scale: str, task: str, method: str, bindings: List[str], device, seed: int = 0):
    """The IQL algorithm of a gin cell (synthetic shapes, as the bench builds it)."""
    import torch

    from spin_bench.perf.measure import build, parse_cell

    exp, _ = parse_cell(scale, task, method, "iql", bindings)
    torch.manual_seed(seed)
    algo, bins, spec = build(exp, method, "iql", torch.device("cpu"))
    return algo.to(device).train(), bins, spec


def _batches(task: str, bins, n: int, batch_size: int, device):
    from spin_bench.perf.measure import synthetic_batch
    from spin_bench.train.trainer import DatasetSampler

    sampler = DatasetSampler(synthetic_batch(task, bins, 4096, device), batch_size, 0)
    return [sampler.sample() for _ in range(n)]


def _grad_errors(a, b) -> Dict[str, float]:
    """Per module: ||g_a - g_b|| / ||g_a|| over the gradients left by the last step."""
    out = {}
    for name in ("value", "critic", "actor"):
        ga = [p.grad for p in getattr(a, name).parameters() if p.grad is not None]
        gb = [p.grad for p in getattr(b, name).parameters() if p.grad is not None]
        num = sum(float((x.cpu().double() - y.cpu().double()).square().sum()) for x, y in zip(ga, gb))
        den = sum(float(x.cpu().double().square().sum()) for x in ga)
        out[name] = (num / max(den, 1e-30)) ** 0.5
    return out


def equality(kit: Kit, device, scale: str, task: str, graph_steps: int) -> dict:
    """(b) one IQL step per actor on the device against the CPU; N graph steps against N eager."""
    import torch

    from spin_bench.algos import Batch
    from spin_bench.train.graph_step import UpdateStep, max_abs_diff, parameters_and_state

    _strict_fp32()
    cpu = torch.device("cpu")
    out = {}
    for method in METHODS:
        ref, bins, _ = _cell_algo(scale, task, method, NO_DROPOUT, cpu)
        dev, _, _ = _cell_algo(scale, task, method, NO_DROPOUT, device)
        batch = _batches(task, bins, 1, 256, cpu)[0]
        la = ref.update(batch)
        lb = dev.update(Batch(*(t.to(device) for t in batch)))
        loss_rel = {k: abs(float(la[k]) - float(lb[k])) / max(abs(float(la[k])), 1e-6) for k in la}
        grads = _grad_errors(ref, dev)
        row = {"loss_rel_diff": loss_rel, "grad_rel_error": grads,
               "param_max_abs_diff": max_abs_diff(ref.state_dict().values(), dev.state_dict().values()),
               "pass": max(loss_rel.values()) < 1e-4 and max(grads.values()) < 1e-3}
        mode = "graph" if device.type == "cuda" else "static"
        eager, _, _ = _cell_algo(scale, task, method, NO_DROPOUT, device)
        captured, _, _ = _cell_algo(scale, task, method, NO_DROPOUT, device)
        run_e, run_c = UpdateStep(eager, device, mode="eager"), UpdateStep(captured, device, mode=mode)
        worst = 0.0
        for b in _batches(task, bins, graph_steps, 256, device):
            le, lc = run_e(b), run_c(b)
            worst = max(worst, max(abs(float(le[k]) - float(lc[k])) / max(abs(float(le[k])), 1e-6) for k in le))
        diff = max_abs_diff(parameters_and_state(eager), parameters_and_state(captured))
        row[f"{mode}_vs_eager"] = {"steps": graph_steps, "loss_max_rel_diff": worst, "state_max_abs_diff": diff,
                                   "captured": run_c.graph is not None, "pass": worst < 1e-4 and diff < 1e-5}
        out[method] = row
        kit.log(f"equality {method}: loss rel {max(loss_rel.values()):.2e}, grad rel {max(grads.values()):.2e}, "
                f"{mode} vs eager after {graph_steps}: loss {worst:.2e}, state {diff:.2e}")
        del ref, dev, eager, captured, run_e, run_c
        _free(device)
    out["pass"] = all(r["pass"] and r[f"{'graph' if device.type == 'cuda' else 'static'}_vs_eager"]["pass"]
                      for r in out.values() if isinstance(r, dict))
    return out


def _free(device) -> None:
    import gc

    import torch

    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)


# ----------------------------------------------------------------------------------- (c) bench
def bench(kit: Kit, device, scale: str, tasks, modes, steps: int, warmup: int, repeats: int,
          precision_task: Optional[str]) -> dict:
    """The bench's train and ASM measurements in this process, one configuration at a time."""
    from spin_bench.perf import measure as bench_mod

    base = {"steps": steps, "warmup": warmup, "repeats": repeats, "threads": 1, "device": device.type,
            "bindings": [], "scale": scale, "algo": "iql", "static": True}
    cfgs = [dict(base, part="train", task=t, method=m, update_mode=mode, precision="fp32")
            for t in tasks for m in METHODS for mode in modes]
    if precision_task:
        extra = ["bf16"] + (["tf32"] if device.type == "cuda" else [])
        cfgs += [dict(base, part="train", task=precision_task, method=m, update_mode=modes[-1], precision=p)
                 for m in METHODS for p in extra]
    cfgs += [dict(base, part="asm", task=t, method="asm", algo="mam") for t in tasks]
    rows, failures = [], []
    _strict_fp32()
    path = os.path.join(kit.out, "bench.jsonl")
    peak = bench_mod.peak_matmul_gflops(device)  # once: the same device for every row
    for cfg in cfgs:
        label = f"{cfg['part']} {cfg['task']} {cfg['method']} {cfg.get('update_mode', '')} {cfg.get('precision', '')}"
        try:
            row = bench_mod.run_single(dict(cfg), peak_gflops=peak)
            row["ms_per_step"] = 1000.0 / row["steps_per_s"]
            rows.append(row)
            kit.log(f"bench {label}: {row['steps_per_s']:.1f} steps/s, ops/step {row.get('ops_per_step')}, "
                    f"{row['peak_memory_mb']:.0f} MB")
        except Exception as e:
            failures.append({"config": label, "error": f"{type(e).__name__}: {e}"})
            kit.log(f"bench {label} FAILED: {type(e).__name__}: {e}")
        finally:
            _strict_fp32()
            _free(device)
        with open(path, "w") as f:  # rewritten after each configuration
            f.writelines(json.dumps(r) + "\n" for r in rows)
    return {"rows": len(rows), "failures": failures, "speedups": _speedups(rows)}


def _strict_fp32() -> None:
    """fp32 rows mean fp32: no TF32 in matmuls or cuDNN (whose torch default is TF32 on, for AR's LSTM)."""
    import torch

    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False


def _speedups(rows: List[dict]) -> Dict[str, float]:
    """steps/s of every non-eager fp32 mode over eager, per task and method."""
    eager = {(r["task"], r["method"]): r["steps_per_s"] for r in rows
             if r.get("kind") == "train" and r.get("update_mode") == "eager" and r.get("precision") == "fp32"}
    return {f"{r['task']} {r['method']} {r['update_mode']} {r['precision']}": r["steps_per_s"] / eager[(r["task"], r["method"])]
            for r in rows if r.get("kind") == "train" and (r["update_mode"], r["precision"]) != ("eager", "fp32")
            and (r["task"], r["method"]) in eager}


# ----------------------------------------------------------------------------------- precision
def precision(kit: Kit, device, scale: str, task: str, steps: int) -> dict:
    """Losses of TF32 (CUDA) and bf16 steps against fp32 from the same weights and batches."""
    from spin_bench.train.graph_step import UpdateStep

    precisions = ["bf16"] + (["tf32"] if device.type == "cuda" else [])
    out = {}
    for method in METHODS:
        _strict_fp32()
        ref, bins, _ = _cell_algo(scale, task, method, NO_DROPOUT, device)
        batches = _batches(task, bins, steps, 256, device)
        run = UpdateStep(ref, device, precision="fp32")
        base = [{k: float(v) for k, v in run(b).items()} for b in batches]
        out[method] = {}
        for p in precisions:
            try:
                algo, _, _ = _cell_algo(scale, task, method, NO_DROPOUT, device)
                step = UpdateStep(algo, device, precision=p)
                rel = {}
                for b, ref_losses in zip(batches, base):
                    for k, v in step(b).items():
                        if k.endswith("_loss"):
                            rel[k] = max(rel.get(k, 0.0), abs(float(v) - ref_losses[k]) / max(abs(ref_losses[k]), 1e-6))
                out[method][p] = {"steps": steps, "max_rel_loss_diff": rel}
                kit.log(f"precision {method} {p}: " + ", ".join(f"{k} {v:.2e}" for k, v in rel.items()))
            except Exception as e:  # e.g. a kernel without bf16 support on this device
                out[method][p] = {"error": f"{type(e).__name__}: {e}"}
                kit.log(f"precision {method} {p} FAILED: {type(e).__name__}: {e}")
            finally:
                _strict_fp32()
        _free(device)
    return out


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
    from spin_bench.algos import ALGORITHMS
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
    if method == "spin":
        asm = pretrain_asm(data, bins=bins, seed=0, device=device, probe_samples=1024,
                           dataset_sha256=dataset.sha256)
        out["asm"] = {"steps": asm.train_config["steps"], "seconds": asm.pretrain_seconds,
                      "steps_per_s": asm.train_config["steps"] / asm.pretrain_seconds, **asm.final_metrics}
        kit.log(f"train: ASM {asm.train_config['steps']} steps in {asm.pretrain_seconds:.1f}s")
    torch.manual_seed(0)
    actor = build_actor(method, obs_dim, bins, asm).to(device)
    algo = ALGORITHMS["iql"](actor, obs_dim, bins).to(device)
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
    asm = ActionStructureModel(snaps["obs_dim"], snaps["bins"]) if snaps["method"] == "spin" else None
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


# ----------------------------------------------------------------------------------- main
def parse_args(argv: Optional[List[str]]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m spin_bench.gpu_check", description=__doc__.splitlines()[0])
    p.add_argument("--out", default=os.environ.get("OUT") or "gpu_check_out", help="results folder (default $OUT)")
    p.add_argument("--dry_run", action="store_true", help="CPU, toy sizes, seconds: what CI runs")
    p.add_argument("--device", default=None, help="cuda (default) or cpu (the default with --dry_run)")
    p.add_argument("--parts", default=",".join(PARTS), help=f"comma-separated subset of {','.join(PARTS)}")
    p.add_argument("--scale", default=None, help="gin scale of the bench and training (paper; smoke in a dry run)")
    p.add_argument("--bench_tasks", default=None, help="comma-separated tasks (default: the four paper tasks)")
    p.add_argument("--bench_modes", default=None, help="comma-separated update modes (default eager,graph)")
    p.add_argument("--bench_steps", type=int, default=None, help="timed steps per repeat (default 30)")
    p.add_argument("--graph_steps", type=int, default=None, help="graph-vs-eager steps in the equality part (20)")
    p.add_argument("--dataset", default=None, help="HDF5 dataset for the training part (default gpu_kit/data)")
    p.add_argument("--train_task", default="cheetah-run")
    p.add_argument("--train_method", default="spin", choices=list(METHODS))
    p.add_argument("--train_steps", type=int, default=None, help="IQL steps of the training part (3000)")
    p.add_argument("--train_eval_every", type=int, default=None, help="snapshot every N steps (1000)")
    p.add_argument("--asm_steps", type=int, default=None, help="ASM pre-training steps of the training part (2000)")
    p.add_argument("--train_mode", default=None, help="UpdateStep.mode of the training part (graph on CUDA)")
    p.add_argument("--evaluate", default=None, metavar="DIR",
                   help="evaluate DIR/snapshots.pt with the simulator (CPU) into --out/evaluation.json, then exit")
    p.add_argument("--episodes", type=int, default=10, help="evaluation episodes per snapshot (--evaluate)")
    p.add_argument("--eval_max_steps", type=int, default=None, help="control steps per episode (--evaluate; default all)")
    args = p.parse_args(argv)
    parts = [x for x in args.parts.split(",") if x]
    bad = [x for x in parts if x not in PARTS]
    if bad:
        p.error(f"--parts: unknown {bad}; expected a subset of {list(PARTS)}")
    args.parts = parts
    dry = args.dry_run
    if args.device is None:
        args.device = "cpu" if dry else "cuda"
    cuda = args.device == "cuda"
    defaults = dict(scale="smoke" if dry else "paper",
                    bench_tasks="cheetah-run" if dry else ",".join(BENCH_TASKS),
                    bench_modes="eager,graph" if cuda else "eager,static", bench_steps=2 if dry else 30,
                    graph_steps=3 if dry else 20, train_steps=40 if dry else 3000,
                    train_eval_every=20 if dry else 1000, asm_steps=5 if dry else 2000,
                    train_mode="graph" if cuda else "static")
    for k, v in defaults.items():
        if getattr(args, k) is None:
            setattr(args, k, v)
    if args.device not in ("cpu", "cuda"):
        p.error(f"--device must be cpu or cuda, got {args.device!r}")
    for k in ("bench_steps", "graph_steps", "train_steps", "train_eval_every", "asm_steps", "episodes"):
        if getattr(args, k) < 1:
            p.error(f"--{k} must be >= 1, got {getattr(args, k)}")
    args.bench_tasks = args.bench_tasks.split(",")
    args.bench_modes = args.bench_modes.split(",")
    if args.dataset is not None and not os.path.isfile(args.dataset):
        p.error(f"--dataset: no such file {args.dataset}")
    if args.device == "cpu" and ("graph" in args.bench_modes or args.train_mode == "graph"):
        p.error("the graph update mode captures a CUDA graph: on --device=cpu use static (the dry run's)")
    if args.evaluate is not None and not os.path.isfile(os.path.join(args.evaluate, "snapshots.pt")):
        p.error(f"--evaluate: {args.evaluate} holds no snapshots.pt")
    return args


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    bootstrap_path()
    if args.evaluate is not None:  # the one mode that needs the simulator
        os.makedirs(args.out, exist_ok=True)
        evaluate_snapshots(args.evaluate, args.out, args.episodes, args.eval_max_steps)
        return 0
    block_simulator()
    import torch

    from spin_bench.train.graph_step import MODES

    bad = [m for m in args.bench_modes if m not in MODES]
    if bad:
        print(f"error: --bench_modes: unknown {bad}; expected some of {list(MODES)}", file=sys.stderr)
        return 2
    if args.device == "cuda" and not torch.cuda.is_available():
        print("error: --device=cuda but torch sees no CUDA device (use --dry_run on a CPU)", file=sys.stderr)
        return 2
    device = torch.device(args.device)
    torch.set_num_threads(1)
    os.makedirs(args.out, exist_ok=True)
    kit = Kit(args.out, args.dry_run, str(device))
    try:
        return _run_parts(kit, args, device)
    finally:
        shutil.rmtree(kit.scratch, ignore_errors=True)
        kit.log_file.close()


def _run_parts(kit: Kit, args: argparse.Namespace, device) -> int:
    import torch

    kit.results["environment"] = environment(device)
    kit.results["args"] = {k: v for k, v in vars(args).items()}
    kit.save()
    kit.log(f"device {device}, torch {torch.__version__}, parts {args.parts}")
    if "tests" in args.parts:
        kit.part("tests", lambda: run_tests(kit, device))
    if "equality" in args.parts:
        kit.part("equality", lambda: equality(kit, device, args.scale, "cheetah-run", args.graph_steps))
    if "bench" in args.parts:
        kit.part("bench", lambda: bench(kit, device, args.scale, args.bench_tasks, args.bench_modes,
                                        args.bench_steps, 1 if args.dry_run else 5, 1 if args.dry_run else 3,
                                        args.bench_tasks[0]))
    if "precision" in args.parts:
        kit.part("precision", lambda: precision(kit, device, args.scale, "cheetah-run", 2 if args.dry_run else 20))
    if "train" in args.parts:
        kit.part("train", lambda: train_cell(kit, device, args))
    failed = [p for p in args.parts if not kit.results[p]["ok"]]
    kit.results["failed_parts"] = failed
    kit.save()
    kit.log(f"finished in {time.perf_counter() - kit.t0:.0f}s; failed parts: {failed or 'none'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
