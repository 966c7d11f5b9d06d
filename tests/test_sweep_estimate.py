"""The sweep-time estimate, on the committed calibration runs and bench output (real files)."""
import json
import os
import subprocess
import sys

import pytest

from spin_bench.sweeps.estimate import EstimateError, estimate

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CALIB = os.path.join(ROOT, "results", "cpu_calibration_20k", "runs")
BENCH = os.path.join(ROOT, "results", "bench", "cpu_scale_train.jsonl")
SWEEP = os.path.join(ROOT, "gin", "sweeps", "cpu.gin")


def _calib_dirs():
    return sorted(os.path.join(CALIB, d) for d in os.listdir(CALIB))


def _summary(method):
    for d in _calib_dirs():
        with open(os.path.join(d, "summary.json")) as f:
            s = json.load(f)
        if s["method"] == method:
            return s


def test_estimate_follows_the_stated_formula():
    rows = estimate([SWEEP], _calib_dirs(), [BENCH], ["Sweep.levels=['medium-expert']", "Sweep.seeds=1"])
    assert len(rows) == 12  # 3 tasks x 4 methods
    bench = {}
    with open(BENCH) as f:
        for line in f:
            r = json.loads(line)
            bench[(r["task"], r["method"])] = r["steps_per_s"]
    f = _summary("f")
    rate = f["num_steps"] / f["train_time_s"]
    expected = 50000 / (rate * bench[("quadruped-walk", "f")] / bench[("cheetah-run", "f")])
    row = next(r for r in rows if r["task"] == "quadruped-walk" and r["method"] == "f")
    assert row["train_s"] == pytest.approx(expected)
    assert row["asm_s"] == 0 and row["eval_s"] == pytest.approx(expected * f["eval_time_s"] / f["train_time_s"])
    spin = _summary("spin")
    spin_row = next(r for r in rows if r["task"] == "cheetah-run" and r["method"] == "spin")
    # same task and dataset size as the calibration, 10 epochs of batch 1024 on 200k: its own ASM time
    assert spin_row["asm_s"] == pytest.approx(spin["pretrain_time_s"])


def test_estimate_names_what_is_missing(tmp_path):
    empty = tmp_path / "bench.jsonl"
    empty.write_text("")
    with pytest.raises(EstimateError, match="no bench rate for task"):
        estimate([SWEEP], _calib_dirs(), [str(empty)])
    proc = subprocess.run([sys.executable, "-m", "spin_bench.sweeps.estimate", f"--gin_file={SWEEP}",
                           f"--calibration={tmp_path}", f"--bench={BENCH}"], capture_output=True, text=True,
                          cwd=ROOT, timeout=120)
    assert proc.returncode == 2 and "no run directories" in proc.stderr and str(tmp_path) in proc.stderr
