"""`make demo` / python -m spin_bench.demo: the quick start.

Generates the cheetah-run medium-expert dataset from the shipped behaviour policies on first
use, then trains SPIN (ASM pre-training included) and F-IQL side by side, one process each
(both cores), and prints a small comparison table. Run directories land in --results_dir; both
runs' output is shown live, each line prefixed with its method (and kept in <method>.log), and
the table is also written to <results_dir>/demo_table.md (docs/usage.md quotes the committed
results/demo/demo_table.md; --table_only rewrites the table from existing run directories).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from typing import IO, Dict, List, Optional

from spin_bench.layout import GIN_DIR
from spin_bench.rundir import SUMMARY
from spin_bench.vocab import method_label

DEMO_GIN = os.path.join(GIN_DIR, "demo.gin")
METHODS = {method_label(method, "iql"): method for method in ("spin", "f")}  # SPIN, F-IQL
TABLE_FILE = "demo_table.md"
BAR_EVERY_S = 5.0  # a child's carriage-return progress bar is shown at most this often


def relay(stream: IO[bytes], prefix: str, log: IO[bytes], out: IO[str] = sys.stdout,
          bar_every_s: float = BAR_EVERY_S) -> None:
    """Copy a child's output to `log` as it is and to `out` line by line with `prefix`: every
    line that ends in a newline, and of the carriage-return updates of a progress bar (tqdm)
    one every `bar_every_s` seconds, so a bar shows how far it is without flooding."""
    pending, last_bar = b"", 0.0
    while True:
        chunk = stream.read1(65536) if hasattr(stream, "read1") else stream.read(65536)
        if not chunk:
            break
        log.write(chunk)
        log.flush()
        pending += chunk
        while True:
            cut = min((i for i in (pending.find(b"\n"), pending.find(b"\r")) if i >= 0), default=-1)
            if cut < 0:
                break
            line, sep, pending = pending[:cut], pending[cut:cut + 1], pending[cut + 1:]
            text = line.decode("utf-8", "replace").rstrip()
            if not text:
                continue
            if sep == b"\r":
                now = time.monotonic()
                if now - last_bar < bar_every_s:
                    continue
                last_bar = now
            print(f"{prefix} {text}", file=out, flush=True)
    if pending.strip():
        print(f"{prefix} {pending.decode('utf-8', 'replace').rstrip()}", file=out, flush=True)


def demo_table(summaries: Dict[str, dict], timing: Optional[Dict[str, float]] = None) -> str:
    """The comparison table (markdown) of the runs' summary.json contents, by method label;
    `timing` (seconds: total, prepare, train) adds the wall-clock line the demo measured."""
    steps = sorted({int(s.get("num_steps") or 0) for s in summaries.values()})
    lines = [f"cheetah-run medium-expert, {'/'.join(map(str, steps))} IQL steps (gin/demo.gin)"]
    if timing:
        lines.append(f"wall-clock: {timing['total']:.0f} s end to end, {timing['prepare']:.0f} s of it preparing "
                     f"the dataset, {timing['train']:.0f} s for both runs in parallel")
    lines += ["",
             f"| {'method':6} | {'final return':>12} | {'best return':>11} | {'normalised':>10} | "
             f"{'train min (incl. ASM)':>21} | {'ASM min':>7} |",
             f"|{'-' * 8}|{'-' * 13}:|{'-' * 12}:|{'-' * 11}:|{'-' * 22}:|{'-' * 8}:|"]
    for label, s in summaries.items():
        norm = s.get("final_normalized_score")
        lines.append(f"| {label:6} | {s['final_return']:12.1f} | {s['best_return']:11.1f} | "
                     f"{'n/a' if norm is None else f'{norm:.3f}':>10} | {s['train_time_s'] / 60:21.1f} | "
                     f"{(s.get('pretrain_time_s') or 0) / 60:7.1f} |")
    return "\n".join(lines)


def _summaries(results_dir: str) -> Dict[str, dict]:
    out = {}
    for label, method in METHODS.items():
        with open(os.path.join(results_dir, method, SUMMARY)) as f:
            out[label] = json.load(f)
    return out


def _write_table(results_dir: str, text: str) -> str:
    path = os.path.join(results_dir, TABLE_FILE)
    with open(path, "w") as f:
        f.write(text + "\n")
    return path


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--results_dir", default=os.path.join("runs", "demo"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--gin_bindings", action="append", default=[], help="extra bindings for both runs")
    parser.add_argument("--table_only", action="store_true",
                        help="no training: rewrite the table from the run directories in --results_dir")
    args = parser.parse_args(argv)

    if args.table_only:
        try:
            summaries = _summaries(args.results_dir)
        except (OSError, ValueError, KeyError) as e:
            print(f"spin_bench.demo: error: --results_dir {args.results_dir}: no finished demo runs ({e})",
                  file=sys.stderr)
            return 2
        print(demo_table(summaries))
        _write_table(args.results_dir, demo_table(summaries))
        return 0

    env = dict(os.environ, PYTHONUNBUFFERED="1")  # the children's lines arrive as they are printed
    base = [sys.executable, "-m", "spin_bench.run", f"--gin_file={DEMO_GIN}", f"--seed={args.seed}",
            "--resume", *[f"--gin_bindings={b}" for b in args.gin_bindings]]
    # one dataset for both runs: make it first so the two processes do not race to generate it
    print("demo: preparing the dataset (generated from the shipped policies on first use) ...", flush=True)
    t_start = time.time()
    subprocess.run(base + ["--prepare_only", "--gin_bindings=Experiment.method = 'f'"], check=True, env=env)
    t0 = time.time()
    procs = {}
    os.makedirs(args.results_dir, exist_ok=True)
    for label, method in METHODS.items():
        run_dir = os.path.join(args.results_dir, method)
        log = open(os.path.join(args.results_dir, f"{method}.log"), "wb")
        proc = subprocess.Popen(base + [f"--run_dir={run_dir}", f"--gin_bindings=Experiment.method = '{method}'"],
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env)
        thread = threading.Thread(target=relay, args=(proc.stdout, f"[{label}]", log), daemon=True)
        thread.start()
        procs[label] = (run_dir, log, proc, thread)
        print(f"demo: training {label} -> {run_dir} (log: {log.name})", flush=True)
    failed = False
    for label, (run_dir, log, proc, thread) in procs.items():
        failed |= proc.wait() != 0
        thread.join()
        log.close()
    if failed:
        print("demo: a run failed; see the lines above (and the logs)", file=sys.stderr)
        return 1
    now = time.time()
    text = demo_table(_summaries(args.results_dir), {"total": now - t_start, "prepare": t0 - t_start, "train": now - t0})
    print("\n" + text)
    print(f"\n(table written to {_write_table(args.results_dir, text)})")
    print("full benchmark cells: python -m spin_bench.run --gin_file=gin/experiments/cpu/cheetah-run/medium-expert/spin_iql.gin")
    return 0


if __name__ == "__main__":
    sys.exit(main())
