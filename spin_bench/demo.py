"""`make demo` / python -m spin_bench.demo: the quick start.

Generates the cheetah-run medium-expert dataset from the shipped behaviour policies on first
use, then trains SPIN (ASM pre-training included) and F-IQL side by side, one process each
(both cores), and prints a small comparison table.  Run directories land in --results_dir.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

from spin_bench.layout import GIN_DIR
from spin_bench.rundir import SUMMARY
from spin_bench.vocab import method_label

DEMO_GIN = os.path.join(GIN_DIR, "demo.gin")
METHODS = {method_label(method, "iql"): method for method in ("spin", "f")}  # SPIN, F-IQL


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--results_dir", default=os.path.join("runs", "demo"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--gin_bindings", action="append", default=[], help="extra bindings for both runs")
    args = parser.parse_args(argv)

    base = [sys.executable, "-m", "spin_bench.run", f"--gin_file={DEMO_GIN}", f"--seed={args.seed}",
            "--resume", *[f"--gin_bindings={b}" for b in args.gin_bindings]]
    # one dataset for both runs: make it first so the two processes do not race to generate it
    print("demo: preparing the dataset (generated from the shipped policies on first use) ...", flush=True)
    subprocess.run(base + ["--prepare_only", "--gin_bindings=Experiment.method = 'f'"], check=True)
    t0 = time.time()
    procs = {}
    os.makedirs(args.results_dir, exist_ok=True)
    for label, method in METHODS.items():
        run_dir = os.path.join(args.results_dir, method)
        log = open(os.path.join(args.results_dir, f"{method}.log"), "w")
        procs[label] = (run_dir, log, subprocess.Popen(
            base + [f"--run_dir={run_dir}", f"--gin_bindings=Experiment.method = '{method}'"],
            stdout=log, stderr=subprocess.STDOUT))
        print(f"demo: training {label} -> {run_dir} (log: {log.name})", flush=True)
    failed = False
    for label, (run_dir, log, proc) in procs.items():
        failed |= proc.wait() != 0
        log.close()
    if failed:
        print("demo: a run failed; see the logs above", file=sys.stderr)
        return 1
    print(f"\ncheetah-run medium-expert, {time.time() - t0:.0f} s wall-clock for both runs in parallel\n")
    print(f"| {'method':6} | {'final return':>12} | {'best return':>11} | {'normalised':>10} | "
          f"{'train min (incl. ASM)':>21} | {'ASM min':>7} |")
    print(f"|{'-' * 8}|{'-' * 14}|{'-' * 13}|{'-' * 12}|{'-' * 23}|{'-' * 9}|")
    for label, (run_dir, _, _) in procs.items():
        with open(os.path.join(run_dir, SUMMARY)) as f:
            s = json.load(f)
        norm = s.get("final_normalized_score")
        print(f"| {label:6} | {s['final_return']:12.1f} | {s['best_return']:11.1f} | "
              f"{'n/a' if norm is None else f'{norm:.3f}':>10} | {s['train_time_s'] / 60:21.1f} | "
              f"{s.get('pretrain_time_s', 0) / 60:7.1f} |")
    print("\nfull benchmark cells: python -m spin_bench.run --gin_file=gin/experiments/cpu/cheetah-run/medium-expert/spin_iql.gin")
    return 0


if __name__ == "__main__":
    sys.exit(main())
