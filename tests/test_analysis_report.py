"""Per-cell table, messages, and the report CLI end to end."""
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from spin_bench import report as report_cli
from spin_bench.analysis import (load_runs, method_colors, method_label, methods, per_cell_table,
                                 write_report)
from spin_bench.analysis.synthetic import write_run_dir
from spin_bench.analysis.render import tex_escape

REF = {"expert": 700.0, "random": 5.0}


def _sweep(root, seeds=3, cells=(("cheetah-run", "medium-expert"), ("finger-spin", "medium"))):
    rng = np.random.default_rng(0)
    steps = np.arange(1, 11) * 1000
    for task, level in cells:
        for mi, m in enumerate(("f", "ar", "saint", "spin")):
            for s in range(seeds):
                final = 300 + 40 * mi + 10 * rng.standard_normal()
                returns = final * (1 - np.exp(-steps / (2500 - 400 * mi)))
                write_run_dir(os.path.join(root, task, level, m, f"seed{s}"), task=task,
                              level=level, method=m, seed=s, returns=returns, steps=steps,
                              train_time_s=(120.0 if m == "spin" else 0.0) + 0.05 * steps,
                              pretrain_time_s=120.0 if m == "spin" else 0.0, reference=REF,
                              scale="cpu")
    return root


def test_labels_and_colours():
    assert [method_label(m, "iql") for m in ("f", "ar", "saint", "spin")] == \
        ["F-IQL", "AR-IQL", "SAINT", "SPIN"]
    assert [method_label(m, "awac") for m in ("f", "ar", "saint", "spin")] == \
        ["F-AWAC", "AR-AWAC", "SAINT-AWAC", "SPIN-AWAC"]
    assert method_label("decqn", "onestep") == "DecQN-OneStep"
    colours = method_colors()
    assert len(set(colours.values())) == len(colours) == len(methods())  # one distinct colour each


def test_per_cell_table_ties_one_seed_missing_method(tmp_path):
    root = str(tmp_path)
    # A tie between F-IQL and SAINT (same final score), one-seed SPIN, no AR-IQL.
    for m, seeds, score in (("f", 2, 500.0), ("saint", 2, 500.0), ("spin", 1, 400.0)):
        for s in range(seeds):
            write_run_dir(os.path.join(root, m, str(s)), method=m, seed=s, returns=[score] * 5,
                          level="medium")
    write_run_dir(os.path.join(root, "other", "ar"), method="ar", seed=0, returns=[1.0] * 5,
                  task="finger-spin", level="medium")
    tab = per_cell_table(load_runs(root), reps=200, seed=0)
    f = tab.frame[tab.frame.task == "cheetah-run"].set_index("method")
    assert f.loc["f", "best"] and f.loc["saint", "best"] and not f.loc["spin", "best"]
    assert np.isnan(f.loc["spin", "std"]) and np.isnan(f.loc["spin", "lo"])
    assert f.loc["spin", "n"] == 1 and f.loc["f", "n"] == 2
    texts = tab.messages.texts()
    assert any("tie" in t and "F-IQL" in t and "SAINT" in t for t in texts)
    assert any("one seed" in t and "SPIN" in t for t in texts)
    assert any("cheetah-run" in t and "no runs for AR-IQL" in t for t in texts)
    # Paper comparison: Table 1 has cheetah-run medium (IQL, 3 bins).
    assert f.loc["f", "paper_mean"] == pytest.approx(293.0)
    assert f.loc["f", "paper_source"] == "Table 1"


def test_cli_writes_everything(tmp_path):
    root = _sweep(str(tmp_path / "runs"))
    write_run_dir(str(tmp_path / "runs" / "broken"), seed=9, returns=[1.0, 2.0], status="failed",
                  error="RuntimeError: boom")
    out1 = str(tmp_path / "r1")
    args = ["--results_dir=" + root, "--seed=3", "--reps=200", "--final_k=3"]
    assert report_cli.main(args + ["--out=" + out1, "--quiet"]) == 0
    files = set(os.listdir(out1))
    assert {"leaderboard.md", "leaderboard.tex", "scores.csv"} <= files
    for stem in ("interval_estimates", "performance_profile", "probability_of_improvement",
                 "sample_efficiency_steps", "sample_efficiency_minutes"):
        for ext in ("png", "pdf"):
            assert f"{stem}_cpu_iql.{ext}" in files
    md = open(os.path.join(out1, "leaderboard.md")).read()
    for needle in ("Final return per cell", "IQM", "Optimality Gap", "P(SPIN > F-IQL)",
                   "Time to target", "Excluded runs", "boom", "paper (Table 1)",
                   "paper (Table 5, A40)"):
        assert needle in md, needle
    tex = open(os.path.join(out1, "leaderboard.tex")).read()
    assert "\\toprule" in tex and "\\bottomrule" in tex and "$\\pm$" in tex
    assert "±" not in tex and "–" not in tex.split("\n", 2)[2]
    scores = pd.read_csv(os.path.join(out1, "scores.csv"))
    assert len(scores) == 2 * 4 * 3
    for col in ("task", "level", "method", "algo", "scale", "seed", "final_return",
                "normalized_score", "time_to_target_min", "steps_to_target", "censored",
                "best_return"):
        assert col in scores.columns
    assert scores["final_return"].notna().all()


def test_same_seed_identical_files(tmp_path):
    root = _sweep(str(tmp_path / "runs"), seeds=2,
                  cells=(("cheetah-run", "medium"), ("finger-spin", "expert")))
    outs = [str(tmp_path / f"r{i}") for i in range(3)]
    for out, seed in zip(outs, (5, 5, 6)):
        assert report_cli.main([f"--results_dir={root}", f"--out={out}", f"--seed={seed}",
                                "--reps=100", "--no_figures", "--quiet"]) == 0
    for name in ("leaderboard.md", "leaderboard.tex", "scores.csv"):
        with open(os.path.join(outs[0], name), "rb") as a, \
                open(os.path.join(outs[1], name), "rb") as b:
            assert a.read() == b.read(), name
    # Another seed moves the bootstrap CIs (and only those).
    assert open(os.path.join(outs[0], "leaderboard.md")).read() != \
        open(os.path.join(outs[2], "leaderboard.md")).read()


def test_censored_runs_are_shown_not_dropped(tmp_path):
    root = str(tmp_path)
    clock = [60, 120, 180]
    for s, r in enumerate(([100, 100, 100], [100, 100, 100])):
        write_run_dir(os.path.join(root, f"f{s}"), method="f", seed=s, returns=r,
                      steps=[1, 2, 3], train_time_s=clock)
    write_run_dir(os.path.join(root, "spin0"), method="spin", seed=0, returns=[10, 20, 30],
                  steps=[1, 2, 3], train_time_s=clock)
    rep = write_report(root, str(tmp_path / "out"), reps=100, figures=False, final_k=1)
    s = rep.scores.set_index("method")
    assert bool(s.loc["spin", "censored"]) and s.loc["spin", "time_to_target_display"] == ">3.0"
    assert pd.isna(s.loc["spin", "steps_to_target"])
    md = open(tmp_path / "out" / "leaderboard.md").read()
    assert ">3.0" in md


def test_tex_escape():
    assert tex_escape("a_b & 50% #1 $x ~ {y}^") == \
        r"a\_b \& 50\% \#1 \$x \textasciitilde{} \{y\}\textasciicircum{}"


def test_cli_bad_input_one_line(tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    # A real process: exit status, one line, no traceback.
    p = subprocess.run([sys.executable, "-m", "spin_bench.report", f"--results_dir={empty}",
                        f"--out={tmp_path / 'o'}"], capture_output=True, text=True, timeout=120)
    assert p.returncode == 2
    assert p.stderr.count("\n") == 1 and str(empty) in p.stderr and "Traceback" not in p.stderr
    for argv, code, needle in (
            ([f"--results_dir={tmp_path / 'nope'}", f"--out={tmp_path / 'o'}"], 2, "nope"),
            ([f"--results_dir={empty}", f"--out={tmp_path / 'o'}", "--final_k=0"], 2, "final_k"),
            ([f"--out={tmp_path / 'o'}"], 2, "results_dir")):
        try:
            rc = report_cli.main(argv)
        except SystemExit as e:   # argparse usage errors
            rc = e.code
        err = capsys.readouterr().err
        assert rc == code, (argv, err)
        lines = [ln for ln in err.splitlines() if ln.strip()]
        assert len(lines) == 1 and needle in lines[0], err


def test_all_runs_excluded_is_an_error(tmp_path):
    write_run_dir(str(tmp_path / "r"), seed=0, returns=[1.0], status="running")
    rc = report_cli.main([f"--results_dir={tmp_path}", f"--out={tmp_path / 'o'}", "--quiet"])
    assert rc == 2
