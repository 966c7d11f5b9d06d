"""The report on ragged grids: unequal seed counts, failed and excluded runs, a method missing
from a cell -- warnings and tables over what is there, never a crash; final scores from each
run's own final_k unless overridden."""
import os
import subprocess
import sys

import pandas as pd
import pytest

from spin_bench import report as report_cli
from spin_bench.analysis import load_runs, write_report
from spin_bench.analysis.stats import aggregate, score_matrices
from spin_bench.analysis.synthetic import write_run_dir

REF = {"expert": 500.0, "random": 0.0}


def _run(root, name, **kw):
    kw.setdefault("reference", REF)
    kw.setdefault("returns", [100.0, 200.0, 300.0, 400.0, 500.0])
    return write_run_dir(os.path.join(root, name), **kw)


def _ragged(root):
    """cheetah-run: SPIN 3 seeds, F 2 seeds, SAINT 1 seed (one more failed, one still running);
    finger-spin: SPIN 1 seed and F 3 seeds; fish-swim: F only (a method missing from the cell)."""
    for s in range(3):
        _run(root, f"c-spin-{s}", method="spin", seed=s)
    for s in range(2):
        _run(root, f"c-f-{s}", method="f", seed=s, returns=[50.0, 60.0, 70.0, 80.0, 90.0 + s])
    _run(root, "c-saint-0", method="saint", seed=0)
    _run(root, "c-saint-1", method="saint", seed=1, status="failed", error="RuntimeError: boom")
    _run(root, "c-saint-2", method="saint", seed=2, status="running")
    _run(root, "f-spin-0", task="finger-spin", method="spin", seed=0)
    for s in range(3):
        _run(root, f"f-f-{s}", task="finger-spin", method="f", seed=s)
    _run(root, "fish-f-0", task="fish-swim", method="f", seed=0)
    return root


def test_unequal_seed_counts_in_one_cell_do_not_crash(tmp_path):
    # the case the issue reproduced: min() of an empty sequence in the seed stratification
    for s in range(3):
        _run(str(tmp_path), f"spin{s}", method="spin", seed=s)
    for s in range(2):
        _run(str(tmp_path), f"f{s}", method="f", seed=s)
    res = load_runs(str(tmp_path))
    (scale, algo, methods, cells, mats), = score_matrices(res.runs)
    assert mats["spin"].shape == (3, 1) and mats["f"].shape == (2, 1)
    assert len(aggregate(res, reps=50).groups) == 1


def test_thresholds_that_keep_no_cell_are_skipped(tmp_path):
    # cell A: SPIN 3, F 1; cell B: SPIN 1, F 3 -> t=3 keeps no cell (the crash), t=1 keeps both
    for s in range(3):
        _run(str(tmp_path), f"a-spin{s}", method="spin", seed=s)
        _run(str(tmp_path), f"b-f{s}", task="finger-spin", method="f", seed=s)
    _run(str(tmp_path), "a-f0", method="f", seed=0)
    _run(str(tmp_path), "b-spin0", task="finger-spin", method="spin", seed=0)
    (_, _, _, cells, mats), = score_matrices(load_runs(str(tmp_path)).runs)
    assert len(cells) == 2 and mats["spin"].shape == (1, 2) and mats["f"].shape == (1, 2)


def test_report_on_a_ragged_grid_warns_and_tabulates_what_is_there(tmp_path):
    root = _ragged(str(tmp_path / "runs"))
    out = str(tmp_path / "out")
    rep = write_report(root, out, reps=50, figures=False)
    md = open(os.path.join(out, "leaderboard.md")).read()
    warnings = " ".join(n.text for n in rep.messages.warnings())
    assert "failed run: RuntimeError: boom" in warnings
    assert "incomplete run (status='running')" in warnings
    assert "finger-spin / medium / 3 bins (cpu): no runs for SAINT" in warnings  # a method missing from a cell
    assert "fish-swim / medium / 3 bins (cpu): no runs for SAINT, SPIN" in warnings
    scores = pd.read_csv(os.path.join(out, "scores.csv"))
    assert len(scores) == 11  # every usable run, in every cell that has one
    assert set(scores.task) == {"cheetah-run", "finger-spin", "fish-swim"}
    assert "fish-swim" in md and "Warnings" in md


def test_report_cli_and_sweep_report_succeed_on_a_ragged_grid(tmp_path):
    root = _ragged(str(tmp_path / "runs"))
    proc = subprocess.run([sys.executable, "-m", "spin_bench.report", f"--results_dir={root}",
                           f"--out={tmp_path / 'o'}", "--quiet", "--no_figures", "--reps=50"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr and "8 runs, 2 excluded" not in proc.stdout
    assert "11 runs, 2 excluded" in proc.stdout


def test_final_scores_use_each_runs_own_final_k(tmp_path):
    _run(str(tmp_path), "k2", method="f", seed=0, final_k=2)   # last 2 of 100..500 -> 450
    _run(str(tmp_path), "k4", method="f", seed=1, final_k=4)   # last 4 -> 350
    runs = load_runs(str(tmp_path)).runs.set_index("seed")
    assert runs.loc[0, "final_return"] == pytest.approx(450.0) and runs.loc[0, "final_k"] == 2
    assert runs.loc[1, "final_return"] == pytest.approx(350.0) and runs.loc[1, "final_k"] == 4
    # ... and the summary.json's own final_return agrees with the report
    import json
    for name in ("k2", "k4"):
        summary = json.load(open(tmp_path / name / "summary.json"))
        assert runs.loc[summary["seed"], "final_return"] == pytest.approx(summary["final_return"])
    over = load_runs(str(tmp_path), final_k=1).runs
    assert set(over["final_return"]) == {500.0} and set(over["final_k"]) == {1}
    out = tmp_path / "o"
    assert report_cli.main([f"--results_dir={tmp_path}", f"--out={out}", "--quiet", "--no_figures",
                            "--reps=20"]) == 0
    assert "each run's own final_k: 2, 4" in (out / "leaderboard.md").read_text()
