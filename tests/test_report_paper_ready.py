"""The report goes into a paper as it is: every LaTeX table it writes compiles with pdflatex and
booktabs (the committed ones too), the figures show what they claim (no zero-width interval,
no empty panel, a visible colour per method, seeds on different clocks drawn honestly), and the
tables' labels and marks follow their own rules."""
import glob
import os
import shutil
import subprocess
import sys

import matplotlib
import numpy as np
import pandas as pd
import pytest

from spin_bench.analysis import load_runs
from spin_bench.analysis.labels import OTHER_COLORS, method_color, method_colors
from spin_bench.analysis.loading import fold_references
from spin_bench.analysis.plots import (common_range, grid_shape, probability_of_improvement_figure,
                                       sample_efficiency_figure)
from spin_bench.analysis.stats import aggregate
from spin_bench.analysis.synthetic import write_run_dir
from spin_bench.analysis.group_report import fastest, shown_value, source_label
from spin_bench.analysis.writer import write_report

matplotlib.use("Agg")

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PDFLATEX = shutil.which("pdflatex")
# `make test` installs TeX first and sets this, so there the compile tests cannot be skipped
REQUIRE_LATEX = os.environ.get("SPIN_BENCH_REQUIRE_LATEX") == "1"
needs_latex = pytest.mark.skipif(PDFLATEX is None and not REQUIRE_LATEX,
                                 reason="pdflatex not installed (make test installs it)")
REF = {"expert": 200.0, "random": 0.0, "source": "generated"}
COMMITTED_TEX = sorted(glob.glob(os.path.join(REPO, "results", "*", "report", "*.tex")))


def compile_tex(tex_path: str, workdir) -> None:
    """pdflatex on a one-page document that loads booktabs and inputs ``tex_path``; fails with
    LaTeX's error lines unless a PDF comes out."""
    doc = os.path.join(workdir, "doc.tex")
    with open(doc, "w") as f:
        f.write("\\documentclass{article}\n\\usepackage{booktabs}\n\\begin{document}\n"
                f"\\input{{{tex_path}}}\n\\end{{document}}\n")
    proc = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "doc.tex"],
                          cwd=workdir, capture_output=True, text=True, timeout=120)
    errors = [line for line in proc.stdout.splitlines() if line.startswith("!")]
    assert proc.returncode == 0 and os.path.exists(os.path.join(workdir, "doc.pdf")), \
        f"{tex_path} does not compile: {errors or proc.stdout[-1500:]}"
    with open(os.path.join(workdir, "doc.log"), errors="replace") as f:
        assert "Missing character" not in f.read(), f"{tex_path}: characters the font lacks"


def _grid(root, methods=("f", "spin", "f_bc"), seeds=(0, 1), clocks=None, task="cheetah-run",
          levels=("medium",)):
    for level in levels:
        for m in methods:
            for s in seeds:
                method, algo = ("f", "bc") if m == "f_bc" else (m, "iql")
                rets = np.linspace(20, 150 + 10 * s + (30 if m == "f" else 0), 5)
                clock = None if clocks is None else clocks.get((m, s))
                write_run_dir(os.path.join(root, f"{task}-{level}-{m}-{s}"), task=task, level=level, method=method,
                              algo=algo, seed=s, returns=rets, reference=REF, train_time_s=clock)
    return root


@needs_latex
def test_the_tables_the_report_writes_compile(tmp_path):
    # final_k from the runs ("each run's own final_k"), one seed (a dagger), F-BC and SPIN: every
    # caption and cell kind the writer has
    _grid(str(tmp_path / "runs"), seeds=(0, 1))
    write_run_dir(str(tmp_path / "runs" / "one-seed"), level="expert", method="spin", seed=0,
                  returns=[10, 20, 30], reference=REF)
    out = tmp_path / "report"
    write_report(str(tmp_path / "runs"), str(out), reps=50, figures=False)
    tex = (out / "leaderboard.tex").read_text()
    assert "final\\_k" in tex and "final_k" not in tex.replace("final\\_k", "")
    assert all(ord(ch) < 128 for ch in tex), "non-ASCII characters need a font package in the paper"
    compile_tex(str(out / "leaderboard.tex"), tmp_path)


@needs_latex
@pytest.mark.parametrize("tex_path", COMMITTED_TEX, ids=lambda p: os.path.relpath(p, REPO))
def test_the_committed_tables_compile(tmp_path, tex_path):
    compile_tex(tex_path, tmp_path)


def test_committed_tables_are_found():
    assert os.path.join(REPO, "results", "cpu_tier", "report", "leaderboard.tex") in COMMITTED_TEX


def test_probability_of_improvement_says_why_it_is_missing(tmp_path):
    root = _grid(str(tmp_path / "runs"), methods=("spin",))
    write_report(root, str(tmp_path / "o"), reps=50, figures=False)
    md = (tmp_path / "o" / "leaderboard.md").read_text()
    assert "no SPIN runs" not in md
    assert "SPIN is the only method in this group, there is no baseline to compare it with" in md


def test_time_to_target_bold_marks_ties_at_the_shown_precision():
    sub = pd.DataFrame({"median_min": [2.04, 1.96, 5.0], "median_steps": [3000, 3040, 9000],
                        "bound": [False, False, False]}, index=["f", "spin", "ar"])
    assert fastest(sub, steps=False) == ["f", "spin"]          # 2.0 and 2.0 as printed
    assert fastest(sub, steps=True) == ["f", "spin"]           # 3.0k and 3.0k
    assert fastest(sub.assign(median_min=[2.2, 1.96, 5.0]), steps=False) == ["spin"]
    # a lower bound that prints no larger might be faster: nobody is marked
    assert fastest(sub.assign(bound=[False, False, True], median_min=[2.2, 2.1, 2.1]), steps=False) == []
    assert shown_value(12345, steps=True) == 12000 and shown_value(1_234_567, steps=True) == 1_230_000


def _contrast_on_white(hex_colour: str) -> float:
    rgb = [int(hex_colour[i:i + 2], 16) / 255 for i in (1, 3, 5)]
    lin = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in rgb]
    lum = 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2]
    return 1.05 / (lum + 0.05)


def test_every_method_colour_is_visible_on_white():
    assert _contrast_on_white("#F0E442") < 2  # the yellow that F-BC had
    for colour in list(method_colors().values()) + list(OTHER_COLORS) + [method_color("f_bc")]:
        assert _contrast_on_white(colour) >= 2, colour


def test_a_probability_of_improvement_of_zero_is_drawn(tmp_path):
    # SPIN below F in every run: P(SPIN > F) = 0 with CI [0, 0]
    root = _grid(str(tmp_path / "runs"), methods=("f", "spin"), seeds=(0, 1, 2))
    (ga,) = aggregate(load_runs(root), reps=50).groups
    r = ga.improvement.iloc[0]
    assert (r.point, r.lo, r.hi) == (0.0, 0.0, 0.0)
    ax = probability_of_improvement_figure(ga).axes[0]
    assert ax.get_xlim()[0] < 0  # the point at 0 is inside the axes, not on their edge
    markers = [line for line in ax.lines if line.get_marker() == "o"]
    assert len(markers) == 1 and list(markers[0].get_xdata()) == [0.0]
    assert any(t.get_text() == "0.00 [0.00, 0.00]" for t in ax.texts)


def test_sample_efficiency_panels_fill_the_grid_and_say_normalised_score(tmp_path):
    assert grid_shape(5) == (2, 3) and grid_shape(4) == (1, 4) and grid_shape(8) == (2, 4)
    assert grid_shape(7) == (2, 4) and grid_shape(1) == (1, 1)
    levels = ("medium", "expert", "medium-expert", "random-medium-expert")
    root = _grid(str(tmp_path / "runs"), methods=("f", "spin"), levels=levels)
    _grid(root, methods=("f", "spin"), task="finger-spin", levels=("medium",))
    load = fold_references(load_runs(root))
    se = sample_efficiency_figure(load.evals, load.runs, "cpu", "iql", x="step")
    axes = se.figure.axes
    assert len(axes) == 6
    panels = [ax for ax in axes if ax.lines]
    assert len(panels) == 5 and all(ax.axison for ax in panels)
    (spare,) = [ax for ax in axes if not ax.lines]
    assert spare.get_legend() is not None  # the free slot holds the legend: no empty panel
    assert {ax.get_ylabel() for ax in panels} - {""} == {"Normalised score"}
    assert se.per_seed == []


def test_seeds_whose_clocks_do_not_overlap_are_drawn_one_by_one(tmp_path):
    assert common_range([np.array([1.0, 5.0]), np.array([2.0, 9.0])]) == (2.0, 5.0)
    assert common_range([np.array([1.0, 5.0]), np.array([30.0, 60.0])]) is None
    # SPIN seed 1's pre-training took 30 minutes longer: its clock starts after seed 0's ends
    late = 1800 + 60.0 * np.arange(1, 6)
    root = _grid(str(tmp_path / "runs"), methods=("f", "spin"), clocks={("spin", 1): late})
    load = load_runs(root)
    se = sample_efficiency_figure(load.evals, load.runs, "cpu", "iql", x="train_min")
    assert se.per_seed == [(("cheetah-run", "3", "medium"), "spin")]
    (ax,) = se.figure.axes[:1]
    spin = [line for line in ax.lines if line.get_marker() == "D"]
    assert len(spin) == 2 and {len(line.get_xdata()) for line in spin} == {5}  # both seeds, whole
    write_report(root, str(tmp_path / "o"), reps=50, curve_reps=20)
    md = (tmp_path / "o" / "leaderboard.md").read_text()
    assert "Drawn one thin line per seed, without a mean: SPIN on cheetah-run medium" in md


def test_generated_data_rows_are_labelled_apart_from_the_papers():
    assert source_label(["generated", "generated"]) == "ours (generated data)"
    assert source_label(["published"]) == "ours" and source_label(["generated", "published"]) == "ours"


def test_report_rows_on_generated_data_say_so_beside_the_papers_rows(tmp_path):
    root = _grid(str(tmp_path / "runs"), methods=("f", "spin"), levels=("medium-expert",))
    write_report(root, str(tmp_path / "o"), reps=50, figures=False)
    md = (tmp_path / "o" / "leaderboard.md").read_text()
    assert "| ours (generated data) |" in md and "*paper (Table 1, published data)*" in md
    assert "not comparable" in md


def test_report_on_a_missing_directory_exits_2(tmp_path):
    p = subprocess.run([sys.executable, "-m", "spin_bench.report", f"--results_dir={tmp_path / 'nope'}",
                        f"--out={tmp_path / 'o'}"], capture_output=True, text=True, timeout=120)
    assert p.returncode == 2 and p.stderr.count("\n") == 1 and "nope" in p.stderr


def test_variants_in_one_figure_never_share_a_look():
    """Four SPIN variants and F-BC (none with a registry colour of its own): five distinct
    (colour, marker) pairs, each visible on white; registered methods keep their own style."""
    from spin_bench.analysis.labels import figure_styles

    methods = ["f", "spin", "spin[ASM 100 ep]", "spin[ASM 30 ep]", "spin[fine-tuned]",
               "spin[ASM 100 ep, fine-tuned]", "f_bc"]
    styles = figure_styles(methods)
    others = [styles[m][:2] for m in methods[2:]]
    assert len(set(others)) == len(others), others
    assert styles["f"][0] == method_color("f") and styles["spin"][0] == method_color("spin")
    assert all(_contrast_on_white(c) >= 2 for c, _ in others)
    assert figure_styles(list(reversed(methods))) == styles  # by the report's order, not the caller's


def test_long_variant_labels_leave_the_probability_figure_room(tmp_path):
    """P(SPIN [ASM 100 ep, ...] > SAINT) labels: the figure widens, so matplotlib's layout
    applies (it warned 'axes sizes collapsed to zero' on a column-wide figure)."""
    import warnings

    root = str(tmp_path / "runs")
    _grid(root, methods=("f", "spin"), seeds=(0, 1, 2))
    for s in (0, 1, 2):
        d = write_run_dir(os.path.join(root, f"v-{s}"), task="cheetah-run", level="medium", method="spin",
                          seed=s, returns=np.linspace(20, 160, 5), reference=REF)
        with open(os.path.join(d, "config.gin"), "w") as f:
            f.write("pretrain_asm.epochs = 100\nmake_spin_actor.freeze = ()\n")
    runs = load_runs(root)
    assert "SPIN [ASM 100 ep, fine-tuned]" in set(runs.runs["label"])
    (ga,) = aggregate(runs, reps=50).groups
    fig = probability_of_improvement_figure(ga)
    assert fig.get_figwidth() > 3.4
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fig.savefig(str(tmp_path / "poi.png"))
