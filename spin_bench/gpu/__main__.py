"""The command line of the CUDA check: ``python -m spin_bench.gpu`` (docs/gpu.md)."""
from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from typing import List, Optional

from spin_bench.gpu.checks import BENCH_TASKS, METHODS, bench, equality, precision, run_tests
from spin_bench.gpu.kit import Kit, block_simulator, bootstrap_path, environment
from spin_bench.gpu.training import evaluate_snapshots, train_cell

PARTS = ("tests", "equality", "bench", "precision", "train")
DESCRIPTION = "The one-command CUDA check (docs/gpu.md)."


def parse_args(argv: Optional[List[str]]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m spin_bench.gpu", description=DESCRIPTION)
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
