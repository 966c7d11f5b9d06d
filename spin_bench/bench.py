"""Speed benchmark: python -m spin_bench.bench [--tasks=...] [--methods=...] [--scales=...] [--json]

For each method x algorithm x scale x task (on synthetic data of the task's dimensions):
gradient steps/s after warm-up, FLOPs per step (torch's FlopCounterMode), achieved GFLOP/s
and the dense fp32 matmul peak GFLOP/s measured in the same process (so each line carries
its efficiency ratio), and peak memory. Also ASM pre-training steps/s, and the seconds for
10 evaluation episodes of 1,000 steps, batched vs one episode at a time.

Each configuration runs in its own subprocess with one torch thread (the machine's fastest
setting for these sizes), so peak RSS is that configuration's own.
"""
# This module is the command line (flags, configurations, rounds of subprocesses); the
# measurements are spin_bench.perf.measure, the tables spin_bench.perf.render.
from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import List

os.environ.setdefault("MUJOCO_GL", "egl")

from absl import app, flags  # noqa: E402

from spin_bench.perf.measure import combine_rounds, run_single  # noqa: E402
from spin_bench.perf.render import format_line, read_results, render_markdown  # noqa: E402
from spin_bench import vocab  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_list("tasks", ["cheetah-run", "quadruped-walk", "dog-trot"], "task dimensions to benchmark")
flags.DEFINE_list("methods", list(vocab.actor_methods(builtin_only=True)), "methods (also decqn: the value-based learners)")
flags.DEFINE_list("algos", ["iql"], "algorithms (decqn's: cql, bcq, iql, onestep); only the grid's "
                  "method x algorithm pairs run")
flags.DEFINE_list("scales", ["cpu", "paper"], "model scales (gin/scales/<scale>.gin)")
flags.DEFINE_list("parts", ["train", "asm", "eval"],
                  "what to measure: train, reference (the straightforward IQL step on the same models), asm, eval")
flags.DEFINE_list("eval_tasks", ["cheetah-run"], "tasks for the evaluation timing")
flags.DEFINE_integer("steps", 30, "timed gradient steps per configuration")
flags.DEFINE_integer("warmup", 5, "untimed warm-up steps")
flags.DEFINE_integer("repeats", 3, "timings per configuration and round; steps/s is the median of all timings")
flags.DEFINE_integer("rounds", 1, "rounds over all configurations, each configuration in a fresh process per round "
                     "(round-robin, so slow drifts in machine load hit every configuration alike)")
flags.DEFINE_integer("eval_episodes", 10, "episodes per evaluation timing")
flags.DEFINE_integer("eval_steps", 1000, "control steps per evaluation episode")
flags.DEFINE_integer("threads", 1, "torch threads per configuration")
flags.DEFINE_enum("device", "cpu", ["auto", "cpu", "cuda"], "device")
flags.DEFINE_list("update_modes", ["eager"], "training-step modes to time (spin_bench.train.graph_step: eager, static, "
                  "graph = one CUDA graph per step)")
flags.DEFINE_enum("precision", "fp32", ["fp32", "tf32", "bf16"], "training-step precision (UpdateStep.precision)")
flags.DEFINE_multi_string("gin_bindings", [], "extra gin bindings for every configuration")
flags.DEFINE_bool("json", False, "one JSON object per line instead of a table")
flags.DEFINE_list("render", [], "print markdown tables of earlier --json output files and exit")
flags.DEFINE_string("_single", None, "internal: run one configuration (JSON) and print its result")


def _pair_exists(method: str, algo: str) -> bool:
    """Whether (method, algo) is a cell of the grid (DecQN pairs with its own algorithms only)."""
    return (method, algo) in vocab.grid_pairs()


def configurations() -> List[dict]:
    base = {"steps": FLAGS.steps, "warmup": FLAGS.warmup, "repeats": FLAGS.repeats, "threads": FLAGS.threads, "device": FLAGS.device,
            "bindings": list(FLAGS.gin_bindings), "eval_episodes": FLAGS.eval_episodes,
            "eval_steps": FLAGS.eval_steps, "precision": FLAGS.precision}
    out = []
    for scale in FLAGS.scales:
        for task in FLAGS.tasks:
            if "train" in FLAGS.parts:
                for method in FLAGS.methods:
                    for algo in FLAGS.algos:
                        if not _pair_exists(method, algo):
                            continue
                        for mode in FLAGS.update_modes:
                            out.append(dict(base, part="train", scale=scale, task=task, method=method, algo=algo,
                                            update_mode=mode))
            if "reference" in FLAGS.parts:
                # the reference step is actor IQL's: methods with an actor only
                for method in (m for m in FLAGS.methods if m in vocab.actor_methods()):
                    out.append(dict(base, part="reference", scale=scale, task=task, method=method, algo="iql"))
            if "asm" in FLAGS.parts:
                out.append(dict(base, part="asm", scale=scale, task=task, method="asm", algo="mam"))
        if "eval" in FLAGS.parts:
            for task in FLAGS.eval_tasks:
                for method in FLAGS.methods:
                    out.append(dict(base, part="eval", scale=scale, task=task, method=method, algo="iql"))
    return out


def main(argv):
    del argv
    if FLAGS.render:
        try:
            rows = read_results(FLAGS.render)
        except ValueError as e:
            print(f"error: --render {e}", file=sys.stderr)
            return 2
        print(render_markdown(rows))
        return 0
    if FLAGS._single:
        print(json.dumps(run_single(json.loads(FLAGS._single))))
        return 0
    failures = 0
    cfgs = configurations()
    results: List[List[dict]] = [[] for _ in cfgs]
    rounds = max(1, FLAGS.rounds)
    for rnd in range(rounds):
        for i, cfg in enumerate(cfgs):
            if rnd and not results[i]:
                continue  # failed in round 0
            single = dict(cfg, static=rnd == 0)
            proc = subprocess.run([sys.executable, "-m", "spin_bench.bench", f"--_single={json.dumps(single)}"],
                                  capture_output=True, text=True)
            lines = [l for l in proc.stdout.splitlines() if l.startswith("{")]
            if proc.returncode != 0 or not lines:
                failures += 1
                err = (proc.stderr.strip().splitlines() or ["no output"])[-1]
                print(f"FAILED {cfg['part']} {cfg['scale']} {cfg['task']} {cfg['method']} (round {rnd}): {err}",
                      file=sys.stderr)
                results[i] = []
                continue
            results[i].append(json.loads(lines[-1]))
            if rnd == rounds - 1:  # its last round: print it now
                result = combine_rounds(results[i])
                print(json.dumps(result) if FLAGS.json else format_line(result), flush=True)
    return 1 if failures else 0


if __name__ == "__main__":
    app.run(main)
