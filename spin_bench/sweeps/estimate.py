"""How long a sweep takes on a machine, from rates measured on it.

    python -m spin_bench.sweeps.estimate --gin_file=gin/sweeps/cpu.gin \
        --calibration=results/cpu_calibration_50k/runs --bench=results/bench/cpu_scale_train.jsonl --workers=2

Calibration runs (finished run directories on one task) carry the real cost of a run: the
training clock per gradient step, ASM pre-training, and evaluation. The bench
(``python -m spin_bench.bench --json``) gives each task's per-step cost relative to the
calibration task. For a run of method m on task t:

    rate(t, m)     = calibration steps/s of m  x  bench(t, m) / bench(calibration task, m)
    asm_rate(t)    = calibration ASM steps/s   x  bench_asm(t) / bench_asm(calibration task)
    seconds        = steps / rate(t, m)  +  [SPIN] asm_steps / asm_rate(t)
                     + evaluation, as the calibration's fraction of m's training seconds

The total divided by the number of workers is the wall-clock if the runs pack perfectly (a
lower bound); the longest single run is printed too.
"""
from __future__ import annotations

import ast
import math
import os
import tempfile
import sys
from collections import defaultdict
from typing import Dict, List, Optional, Sequence, Tuple

import gin

from spin_bench import configs
from spin_bench.cli import OneLineArgumentParser, path_problem
from spin_bench.rundir import OPERATIVE_CONFIG, SUMMARY


class EstimateError(ValueError):
    """Missing or unusable measurements; the message names the file or the missing rate."""


def _asm_steps(num_transitions: int) -> int:
    """ASM steps of the currently parsed configuration, for a dataset of ``num_transitions``."""
    from spin_bench.models.asm import asm_num_steps

    return asm_num_steps(num_transitions, configs.query("pretrain_asm.steps"), configs.query("pretrain_asm.epochs"),
                         configs.query("pretrain_asm.batch_size", 1024))


# Bounds of a calibration run's numbers (beyond them a record is damaged, not a measurement).
MAX_SECONDS = 10**9
MAX_STEPS = 10**12
ASM_BINDINGS = ("pretrain_asm.steps", "pretrain_asm.epochs", "pretrain_asm.batch_size")


def gin_values(text: str, names: Sequence[str], where: str) -> Dict[str, object]:
    """The values of `names` in a gin file's text, read as plain ``name = value`` lines: each
    value must be a Python literal (a number, None, a string...), evaluated with
    ``ast.literal_eval``. Nothing in the file is executed or imported (``import`` and
    ``include`` lines are plain text here). EstimateError for a value that is not a literal."""
    from spin_bench.rundir import config_bindings as bindings_of

    out: Dict[str, object] = {}
    found = bindings_of(text)
    for name in names:
        if name not in found:
            continue
        try:
            out[name] = ast.literal_eval(found[name])
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            raise EstimateError(f"{where}: {name} = {found[name][:40]!r}: expected a literal value") from None
    return out


def _asm_steps_of(values: Dict[str, object], num_transitions: int, where: str) -> int:
    """ASM steps of a calibration run from its operative config's pretrain_asm values."""
    from spin_bench.models.asm import asm_num_steps

    steps, epochs = values.get("pretrain_asm.steps"), values.get("pretrain_asm.epochs")
    batch = values.get("pretrain_asm.batch_size", 1024)
    for name, v, lo, hi in (("pretrain_asm.steps", steps, 1, MAX_STEPS), ("pretrain_asm.epochs", epochs, 1e-6, 1e6),
                            ("pretrain_asm.batch_size", batch, 1, 10**7)):
        if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v)
                              or not lo <= v <= hi or (name != "pretrain_asm.epochs" and v != int(v))):
            raise EstimateError(f"{where}: {name} = {v!r}: expected a number in [{lo}, {hi}]")
    try:
        return asm_num_steps(num_transitions, None if steps is None else int(steps), epochs, int(batch))
    except ValueError as e:
        raise EstimateError(f"{where}: {e}") from None


def load_calibration(run_dirs: Sequence[str]) -> Tuple[str, Dict[str, dict]]:
    """Per method: steps/s of the training clock (ASM excluded), ASM steps/s, evaluation fraction.

    Each run is read from its summary.json (regular file, no links, every field type-checked)
    and, for SPIN, the pretrain_asm lines of its operative_config.gin read as plain text:
    nothing in a calibration folder is executed or imported."""
    from spin_bench.safe_load import json_float, json_int, json_str, read_json, read_text

    out: Dict[str, dict] = {}
    tasks = set()
    for d in run_dirs:
        path = os.path.join(d, SUMMARY)
        try:
            s = read_json(path, "calibration summary.json", follow_symlinks=False)
            if s.get("status") != "complete":
                raise EstimateError(f"{path}: the run is not complete (status {repr(s.get('status'))[:40]})")
            method, task = json_str(s, "method", path, max_len=100), json_str(s, "task", path, max_len=100)
            steps = json_int(s, "num_steps", path, lo=1, hi=MAX_STEPS)
            train = json_float(s, "train_time_s", path, lo=0, hi=MAX_SECONDS)
            pre = json_float(s, "pretrain_time_s", path, lo=0, hi=MAX_SECONDS, required=False, default=0.0)
            ev = json_float(s, "eval_time_s", path, lo=0, hi=MAX_SECONDS)
        except EstimateError:
            raise
        except ValueError as e:  # UnreadableFileError, FieldError
            raise EstimateError(f"{configs.error_line(e)} (expected a finished run's summary.json with method, "
                                f"num_steps, train_time_s and eval_time_s)") from None
        if not train - pre > 0:
            raise EstimateError(f"{path}: train_time_s ({train:g}) must exceed pretrain_time_s ({pre:g}): "
                                f"no training time to measure a rate from")
        tasks.add(task)
        entry = {"rate": steps / (train - pre), "eval_fraction": ev / (train - pre)}
        if pre > 0:
            gin_path = os.path.join(d, OPERATIVE_CONFIG)
            try:
                text = read_text(gin_path, "calibration operative_config.gin", follow_symlinks=False)
                n = json_int(s, "num_transitions", path, lo=1, hi=10**10)
            except ValueError as e:
                raise EstimateError(configs.error_line(e)) from None
            entry["asm_rate"] = _asm_steps_of(gin_values(text, ASM_BINDINGS, gin_path), n, gin_path) / pre
        out[method] = entry
    if len(tasks) != 1:
        raise EstimateError(f"calibration runs must share one task, got {sorted(tasks)}")
    return tasks.pop(), out


def load_bench(paths: Sequence[str]) -> Dict[Tuple[str, str], float]:
    """(task, method) -> bench steps/s; ASM rows under method 'asm'."""
    from spin_bench.perf.render import read_results

    try:
        rows = read_results(paths)
    except ValueError as e:
        raise EstimateError(str(e)) from None
    out: Dict[Tuple[str, str], float] = {}
    for r in rows:
        if not isinstance(r, dict) or r.get("kind") not in ("train", "asm"):
            continue
        task, method, rate = r.get("task"), r.get("method"), r.get("steps_per_s")
        if not isinstance(task, str) or not isinstance(method, str):
            raise EstimateError(f"{', '.join(paths)}: a bench line lacks its task or method")
        if (isinstance(rate, bool) or not isinstance(rate, (int, float)) or not math.isfinite(rate)
                or not 0 < rate < 1e12):
            raise EstimateError(f"{', '.join(paths)}: bench rate of {task} {method}: expected a positive "
                                f"finite steps_per_s, got {repr(rate)[:40]}")
        out[(task, method)] = float(rate)
    return out


def estimate(gin_files: Sequence[str], calibration_dirs: Sequence[str], bench_files: Sequence[str],
             bindings: Sequence[str] = ()) -> List[dict]:
    """Seconds per run of the sweep (one dict per run: task, level, method, seed, train/asm/eval seconds)."""
    from spin_bench.sweeps.spec import load_sweep, plan_runs, split_bindings

    calib_task, calib = load_calibration(calibration_dirs)
    bench = load_bench(bench_files)
    sweep_bindings, run_bindings = split_bindings(bindings)
    sweep = load_sweep(list(gin_files), sweep_bindings)
    with tempfile.TemporaryDirectory(prefix="spin_bench_estimate_") as scratch:  # composed cells only
        runs = plan_runs(sweep, scratch, run_bindings)
        return _estimate_runs(runs, calib_task, calib, bench, bench_files, calibration_dirs)


def _estimate_runs(runs, calib_task: str, calib: dict, bench: dict, bench_files: Sequence[str],
                   calibration_dirs: Sequence[str]) -> List[dict]:
    """Seconds per planned run from the calibration rates and the bench ratios."""
    from spin_bench.train.experiment import Experiment
    from spin_bench.train.trainer import Schedule

    def bench_ratio(task: str, method: str) -> float:
        for key in ((task, method), (calib_task, method)):
            if key not in bench:
                raise EstimateError(f"no bench rate for task {key[0]}, method {key[1]} in {', '.join(bench_files)}")
        return bench[(task, method)] / bench[(calib_task, method)]

    cell_cache: Dict[Tuple[str, Tuple[str, ...]], Tuple[int, int]] = {}
    out = []
    for r in runs:
        if r.method not in calib:
            raise EstimateError(f"no calibration run for method {r.method} in {', '.join(calibration_dirs)}")
        key = (r.gin_file, r.bindings)
        if key not in cell_cache:
            configs.parse([os.path.join(configs.CONFIG_ROOT, r.gin_file)], list(r.bindings), finalize=False)
            try:
                num_transitions = Experiment().num_transitions
                if num_transitions is None:
                    raise EstimateError(f"{r.gin_file}: the dataset size is not set (published sizes); give "
                                        f"Experiment.num_transitions to estimate its ASM cost")
                cell_cache[key] = (int(Schedule().num_steps), _asm_steps(int(num_transitions)))
            finally:
                gin.clear_config()
        steps, asm_steps = cell_cache[key]
        c = calib[r.method]
        train = steps / (c["rate"] * bench_ratio(r.task, r.method))
        asm = 0.0
        if r.asm_key is not None:  # the run pre-trains an ASM (SPIN)
            if "asm_rate" not in c:
                raise EstimateError(f"the spin calibration run in {', '.join(calibration_dirs[:1])}... records no "
                                    f"ASM pre-training time (pretrain_time_s): no ASM rate to estimate from")
            asm = asm_steps / (c["asm_rate"] * bench_ratio(r.task, "asm"))
        out.append({"task": r.task, "level": r.level, "method": r.method, "seed": r.seed, "train_s": train,
                    "asm_s": asm, "eval_s": train * c["eval_fraction"]})
    return out


def summary(rows: List[dict], workers: int) -> str:
    """Minutes per run by (task, method), and the totals."""
    by: Dict[Tuple[str, str], List[float]] = defaultdict(list)
    for r in rows:
        by[(r["task"], r["method"])].append(r["train_s"] + r["asm_s"] + r["eval_s"])
    lines = ["| task | method | runs | minutes per run (training + ASM + evaluation) |", "|---|---|---|---|"]
    for (task, method), secs in sorted(by.items()):
        lines.append(f"| {task} | {method} | {len(secs)} | {sum(secs) / len(secs) / 60:.1f} |")
    total = sum(r["train_s"] + r["asm_s"] + r["eval_s"] for r in rows)
    longest = max((r["train_s"] + r["asm_s"] + r["eval_s"] for r in rows), default=0.0)
    lines += ["", f"{len(rows)} runs: {total / 3600:.1f} core-hours; with {workers} worker(s) at least "
                  f"{total / 3600 / workers:.1f} hours ({total / 86400 / workers:.2f} days); longest run "
                  f"{longest / 60:.0f} minutes"]
    return "\n".join(lines)


def main(argv: Optional[Sequence[str]] = None) -> int:
    p = OneLineArgumentParser(prog="python -m spin_bench.sweeps.estimate", error_name="estimate",
                              description=__doc__.split("\n\n")[0])
    p.add_argument("--gin_file", action="append", required=True, help="sweep gin file (repeatable)")
    p.add_argument("--gin_bindings", action="append", default=[], help="Sweep.* or run bindings (repeatable)")
    p.add_argument("--calibration", required=True,
                   help="directory of finished calibration runs on one task (one per method)")
    p.add_argument("--bench", action="append", required=True, help="bench --json output (repeatable)")
    p.add_argument("--workers", type=int, default=2, help="runs at a time (default 2)")
    a = p.parse_args(argv)
    if a.workers < 1:
        p.error(f"--workers must be >= 1, got {a.workers}")
    for flag, value in [("--calibration", a.calibration)] + [("--bench", b) for b in a.bench] + [
            ("--gin_file", g) for g in a.gin_file]:
        problem = path_problem(value, flag)
        if problem:
            p.error(problem)
    if a.workers > 10**6:
        p.error(f"--workers must be at most 1000000, got {a.workers}")
    if not os.path.isdir(a.calibration):
        p.error(f"--calibration {a.calibration}: not a directory")
    try:
        names = os.listdir(a.calibration)
    except OSError as e:
        p.error(f"--calibration {a.calibration}: cannot list it ({e.strerror})")
    dirs = sorted(os.path.join(a.calibration, d) for d in names
                  if not path_problem(d, "name") and not os.path.islink(os.path.join(a.calibration, d))
                  and os.path.isfile(os.path.join(a.calibration, d, SUMMARY)))
    if not dirs:
        p.error(f"--calibration {a.calibration}: no run directories with a summary.json")
    try:
        rows = estimate(a.gin_file, dirs, a.bench, a.gin_bindings)
    except (EstimateError, ValueError) as e:
        print(f"estimate: error: {e}", file=sys.stderr)
        return 2
    print(summary(rows, a.workers))
    return 0


if __name__ == "__main__":
    sys.exit(main())
