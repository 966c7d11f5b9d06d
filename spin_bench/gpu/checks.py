"""The kit's checks on the device: the tests, one step per actor against the CPU and the
captured graph against eager steps (equality), the paper-scale bench, and fp32 against TF32
and bf16 losses (precision)."""
from __future__ import annotations

import json
import os
import time
from typing import Dict, List, Optional

from spin_bench.gpu.kit import REPO_ROOT, Kit
from spin_bench import vocab

METHODS = vocab.actor_methods(builtin_only=True)
BENCH_TASKS = ("cheetah-run", "quadruped-walk", "humanoid-stand", "dog-trot")
# Model and algorithm tests that need no simulator (tests/test_cuda.py runs on the device).
TEST_FILES = ("tests/test_models_actors.py", "tests/test_models_asm.py", "tests/test_models_critics.py",
              "tests/test_models_spin.py", "tests/test_algos.py", "tests/test_graph_step.py", "tests/test_cuda.py")
NO_DROPOUT = ["TransformerActor.dropout = 0.0", "TransformerActor.head_dropout = 0.0",
              "ActionStructureModel.dropout = 0.0", "make_spin_actor.head_dropout = 0.0"]


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
