"""The GPU check kit's dry run (what `make gpu-check GPU_CHECK_FLAGS=--dry_run` runs): every part
on the CPU at toy sizes with the simulator blocked, its files, the CPU evaluation of its
snapshots, and its refusals of bad input."""
import json
import os
import subprocess
import sys

import pytest

from spin_bench import vocab

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENV = dict(os.environ, PYTHONPATH=os.pathsep.join([ROOT, os.environ.get("PYTHONPATH", "")]))


def _kit(*args, timeout=600):
    return subprocess.run([sys.executable, "-m", "spin_bench.gpu", *args], cwd=ROOT, env=ENV,
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def dry_run(tmp_path_factory):
    """`make gpu-check` in its dry-run form, as CI runs it."""
    out = tmp_path_factory.mktemp("gpu_check")
    proc = subprocess.run(["make", "--no-print-directory", "gpu-check", "GPU_CHECK_FLAGS=--dry_run",
                           f"KIT_PYTHON={sys.executable}", f"GPU_OUT={out}"], cwd=ROOT, env=ENV,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    with open(out / "gpu_check.json") as f:
        return out, json.load(f)


def test_dry_run_runs_every_part_without_a_simulator(dry_run):
    out, res = dry_run
    assert res["failed_parts"] == [] and res["dry_run"] is True
    for part in ("tests", "equality", "bench", "precision", "train"):
        assert res[part]["ok"], res[part].get("error")
    assert res["equality"]["result"]["pass"] is True
    for method in vocab.actor_methods(builtin_only=True):
        assert res["equality"]["result"][method]["static_vs_eager"]["steps"] == 3
    rows = [json.loads(line) for line in open(out / "bench.jsonl")]
    cells = {(r["method"], r.get("update_mode")) for r in rows if r["kind"] == "train" and r["precision"] == "fp32"}
    assert cells == {(m, mode) for m in vocab.actor_methods(builtin_only=True) for mode in ("eager", "static")}
    assert all(r["ops_per_step"] > 100 for r in rows if r["kind"] == "train")
    assert any(r["kind"] == "asm" for r in rows)
    train = res["train"]["result"]
    assert train["steps"] == 40 and train["snapshot_steps"] == [20, 40] and train["update_mode"] == "static"
    assert train["cell"] == "gin/experiments/smoke/cheetah-run/medium-expert/spin_iql.gin"
    # what comes back from the device tool: at most 8 plain files with plain names
    names = sorted(os.listdir(out))
    assert names == ["bench.jsonl", "gpu_check.json", "log.txt", "pytest.txt", "snapshots.pt", "train_metrics.csv"]
    assert "passed" in open(out / "pytest.txt").read()


def test_bench_rows_render_as_tables(dry_run):
    out, _ = dry_run
    proc = subprocess.run([sys.executable, "-m", "spin_bench.bench", f"--render={out / 'bench.jsonl'}"], cwd=ROOT,
                          env=ENV, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "| smoke | cheetah-run | SAINT (static) |" in proc.stdout and "| smoke | cheetah-run | SAINT |" in proc.stdout


def test_snapshots_are_evaluated_on_the_cpu_with_the_simulator(dry_run, tmp_path):
    out, _ = dry_run
    proc = _kit(f"--evaluate={out}", f"--out={tmp_path}", "--episodes=2", "--eval_max_steps=5")
    assert proc.returncode == 0, proc.stderr[-3000:]
    with open(tmp_path / "evaluation.json") as f:
        ev = json.load(f)
    assert ev["method"] == "spin" and [r["step"] for r in ev["rows"]] == [20, 40]
    assert all(r["return_mean"] == r["return_mean"] for r in ev["rows"])  # finite, not the kit's NaN


@pytest.mark.parametrize("args, message", [
    (["--dry_run", "--parts=tests,nope"], "--parts: unknown ['nope']"),
    (["--dry_run", "--bench_modes=graph"], "the graph update mode captures a CUDA graph"),
    (["--dry_run", "--train_steps=0"], "--train_steps must be >= 1"),
    (["--evaluate=/nonexistent"], "holds no snapshots.pt"),
    (["--dry_run", "--dataset=/nonexistent.hdf5"], "--dataset: no such file"),
])
def test_bad_input_is_one_line_and_exit_2(args, message, tmp_path):
    proc = _kit(*args, f"--out={tmp_path / 'o'}", timeout=120)
    assert proc.returncode == 2 and message in proc.stderr
    assert not (tmp_path / "o").exists()  # refused before anything was written
