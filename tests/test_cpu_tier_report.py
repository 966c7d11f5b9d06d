"""The CPU tier's report features, against hand-computed values: F-BC runs as a reference row
beside the IQL methods, a degenerate time-to-target target detected and kept out of the
speed-ups, and behaviour-NLL steps to target."""
import os

import pandas as pd
import pytest

from spin_bench.analysis import load_runs, time_to_target
from spin_bench.analysis.labels import order_methods
from spin_bench.analysis.loading import fold_references
from spin_bench.analysis.synthetic import write_run_dir
from spin_bench.analysis.ttt import nll_steps_to_target
from spin_bench.analysis.writer import write_report
from spin_bench.vocab import method_label

STEPS = [1000, 2000, 3000, 4000, 5000]
CLOCK = [60, 120, 180, 240, 300]


def _write(root, name, method, seed, returns, algo="iql", nll=None):
    d = os.path.join(root, name)
    write_run_dir(d, task="cheetah-run", level="medium", method=method, algo=algo, seed=seed,
                  returns=returns, steps=STEPS, train_time_s=CLOCK, final_k=2)
    if nll is not None:
        m = pd.read_csv(os.path.join(d, "metrics.csv"))
        m["behaviour_nll"] = nll
        m.to_csv(os.path.join(d, "metrics.csv"), index=False)
    return d


def test_reference_runs_join_the_iql_group_as_f_bc(tmp_path):
    root = str(tmp_path)
    for s in (0, 1):
        _write(root, f"f{s}", "f", s, [10, 50, 90, 100, 100])
        _write(root, f"spin{s}", "spin", s, [10, 20, 60, 95, 99])
        _write(root, f"bc{s}", "f", s, [30, 60, 120, 150, 150], algo="bc")
    load = fold_references(load_runs(root, final_k=2))
    assert set(load.runs["algo"]) == {"iql"}
    assert order_methods(load.runs["method"]) == ["f", "spin", "f_bc"]
    assert method_label("f_bc", "iql") == "F-BC" and method_label("f", "iql") == "F-IQL"
    bc = load.runs[load.runs.method == "f_bc"]
    assert len(bc) == 2 and set(bc["label"]) == {"F-BC"} and bc["final_return"].tolist() == [150, 150]
    assert len(load.evals[load.evals.method == "f_bc"]) == 10
    # the target stays F-IQL's: 0.95 x 100
    ttt = time_to_target(load, reps=50)
    assert set(ttt.cells["target"].round(6)) == {95.0}
    out = tmp_path / "report"
    write_report(root, str(out), reps=50, figures=False, final_k=2)
    md = (out / "leaderboard.md").read_text()
    assert "F-BC" in md and "algorithm BC" not in md
    scores = pd.read_csv(out / "scores.csv")
    assert len(scores) == 6 and (scores["algo"] == "iql").all()


def test_reference_runs_alone_keep_their_own_group(tmp_path):
    _write(str(tmp_path), "bc0", "f", 0, [30, 60, 120, 150, 150], algo="bc")
    load = fold_references(load_runs(str(tmp_path), final_k=2))
    assert load.runs["algo"].tolist() == ["bc"] and load.runs["method"].tolist() == ["f"]


def test_a_target_reached_at_the_first_evaluation_is_degenerate(tmp_path):
    root = str(tmp_path)
    # F-IQL flat from its first evaluation: the target 0.95 x 100 is reached at once by most runs
    for s in (0, 1, 2):
        _write(root, f"f{s}", "f", s, [100, 98, 101, 99, 100])
        _write(root, f"spin{s}", "spin", s, [96, 97, 99, 100, 100] if s < 2 else [50, 60, 96, 97, 99])
    load = load_runs(root, final_k=2)
    ttt = time_to_target(load, reps=50)
    assert ttt.cells["degenerate"].all() and ttt.cells["first_eval_share"].iloc[0] == pytest.approx(5 / 6)
    assert (ttt.speedups["bound"] == "degenerate").all() and ttt.totals.empty
    assert any(n.topic == "degenerate target" for n in ttt.messages.warnings())
    out = tmp_path / "report"
    write_report(root, str(out), reps=50, figures=False, final_k=2)
    md = (out / "leaderboard.md").read_text()
    assert "Degenerate target" in md and "n/a‡" in md


def test_a_target_reached_later_is_not_degenerate(tmp_path):
    root = str(tmp_path)
    for s in (0, 1):
        _write(root, f"f{s}", "f", s, [10, 50, 90, 100, 100])
        _write(root, f"spin{s}", "spin", s, [96 - 50 * s, 20, 60, 95, 99])  # one early hit of four runs
    ttt = time_to_target(load_runs(root, final_k=2), reps=50)
    assert not ttt.cells["degenerate"].any() and ttt.cells["first_eval_share"].iloc[0] == pytest.approx(1 / 4)
    assert "degenerate" not in set(ttt.speedups["bound"])


def test_behaviour_nll_steps_to_target_by_hand(tmp_path):
    root = str(tmp_path)
    # F-BC's final NLL (mean of its last 2 evaluations, over seeds) = 2.0
    _write(root, "bc0", "f", 0, [1, 1, 1, 1, 1], algo="bc", nll=[4.0, 3.0, 2.5, 2.0, 2.0])
    _write(root, "bc1", "f", 1, [1, 1, 1, 1, 1], algo="bc", nll=[4.0, 3.0, 2.5, 2.1, 1.9])
    # F-IQL: from 4.0, target 4.0 + 0.8 (2.0 - 4.0) = 2.4 -> reached at 4000 steps
    _write(root, "f0", "f", 0, [1, 2, 3, 4, 5], nll=[4.0, 3.5, 2.6, 2.4, 2.3])
    # SPIN: from 3.0, target 3.0 + 0.8 (2.0 - 3.0) = 2.2 -> never (censored at 5000)
    _write(root, "spin0", "spin", 0, [1, 2, 3, 4, 5], nll=[3.0, 2.9, 2.8, 2.7, 2.6])
    load = fold_references(load_runs(root, final_k=2))
    t = nll_steps_to_target(load, fraction=0.8, reps=50).set_index("method")
    assert t.loc["f_bc", "reference_final_nll"] == pytest.approx(2.0)
    assert t.loc["f", "median_steps"] == 4000 and t.loc["f", "n_censored"] == 0
    assert t.loc["spin", "median_steps"] == 5000 and t.loc["spin", "n_censored"] == 1 and t.loc["spin", "bound"]
    # F-BC's own runs: from 4.0, target 2.4 -> 4000 steps each
    assert t.loc["f_bc", "median_steps"] == 4000
    # without a reference there is nothing to compute
    assert nll_steps_to_target(load_runs(os.path.join(root, "f0"), final_k=2)).empty


# The committed reports and the runs they cover (each results/*/README.md has the command).
COMMITTED_REPORTS = [
    ("results/cpu_tier/report", "results/cpu_tier/runs", ()),
    ("results/decqn_cpu/report", "results/decqn_cpu/runs", ("--no_figures",)),
]


@pytest.mark.parametrize("report_dir,runs,flags", COMMITTED_REPORTS, ids=lambda v: v if isinstance(v, str) else "")
def test_committed_reports_reproduce_from_the_committed_runs(tmp_path, report_dir, runs, flags):
    """The report over the committed runs gives the committed tables byte for byte."""
    import subprocess
    import sys

    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    # paths relative to the repository, as scores.csv records them
    proc = subprocess.run([sys.executable, "-m", "spin_bench.report", f"--results_dir={runs}",
                           f"--out={tmp_path}", "--quiet", *flags], capture_output=True, text=True, cwd=repo,
                          env=dict(os.environ, PYTHONPATH=repo), timeout=600)
    report_dir = os.path.join(repo, report_dir)
    assert proc.returncode == 0, proc.stderr[-2000:]
    # the tables byte for byte; the figures by name (their pixels depend on the matplotlib version)
    assert sorted(os.listdir(report_dir)) == sorted(os.listdir(tmp_path))
    for name in ("leaderboard.md", "leaderboard.tex", "scores.csv"):
        with open(os.path.join(report_dir, name), "rb") as a, open(tmp_path / name, "rb") as b:
            assert a.read() == b.read(), f"{name} differs from the committed {report_dir}/{name}"
