"""Write the report: leaderboard.md, leaderboard.tex, scores.csv and the figures.

Nothing written depends on the clock or on the machine: the same inputs and seed give
byte-identical leaderboard files.
"""
from __future__ import annotations

import dataclasses
import logging
import os
from typing import Dict, List, Optional

import pandas as pd

from spin_bench.analysis import plots
from spin_bench.analysis.labels import (bins_sort_key, cell_sort_key, level_sort_key, method_sort_key,
                                        order_methods)
from spin_bench.analysis.loading import LoadResult, fold_references, load_runs
from spin_bench.analysis.notes import AnalysisError, Notes
from spin_bench.analysis.reference import PAPER, paper_time_to_target
from spin_bench.analysis.render import (Cell, Sym, Table, Text, bold, finite, fmt_num, fmt_steps,
                                        italic, md_escape, tex_escape, to_latex, to_markdown)
from spin_bench.analysis.stats import AGGREGATE_METRICS, AggregateResult, aggregate
from spin_bench.analysis.study import has_budget_axis
from spin_bench.analysis.study_report import budget_section
from spin_bench.analysis.tables import CellTable, per_cell_table
from spin_bench.analysis.ttt import NLL_REFERENCE, TimeToTargetResult, nll_steps_to_target, time_to_target
from spin_bench.atomic import atomic_write_text
from spin_bench.vocab import algo_label, method_label

logger = logging.getLogger("spin_bench.analysis")

SCORES_COLUMNS = ["scale", "algo", "task", "bins", "level", "method", "label", "seed",
                  "final_return", "best_return", "normalized_score", "best_normalized_score",
                  "final_k", "num_evals", "num_steps", "total_train_min", "pretrain_min",
                  "eval_min", "target", "ttt_status", "censored", "time_to_target_min",
                  "steps_to_target", "time_to_target_display", "dataset_id", "dataset_sha256",
                  "dataset_identity", "device", "run_dir"]


@dataclasses.dataclass
class Report:
    """Everything the report computed, and the files it wrote."""

    load: LoadResult
    table: CellTable
    aggregates: AggregateResult
    ttt: TimeToTargetResult
    scores: pd.DataFrame
    messages: Notes
    files: List[str]
    settings: Dict


# ----------------------------------------------------------------------------- formatting

# ----------------------------------------------------------------------------- sections

def _cell_cols(task, bins, level) -> List[Cell]:
    return [Text(task), Text(bins), Text(level)]


GENERATED = "generated"  # summary.json's reference source for the datasets the suite generates


def source_label(ref_sources) -> str:
    """The Source column of our rows: 'ours', or 'ours (generated data)' when every run of the
    cell ran on data the suite generated (not the published datasets the paper's rows used)."""
    sources = set(ref_sources)
    return "ours (generated data)" if sources and sources <= {GENERATED} else "ours"


def paper_source_label(src: str, ours: str) -> str:
    """The Source column of a paper row; says 'published data' beside our generated-data rows."""
    return f"paper ({src}, published data)" if ours != "ours" else f"paper ({src})"


def _cell_sources(runs: Optional[pd.DataFrame], c) -> str:
    if runs is None or "reference_source" not in runs.columns:
        return "ours"
    sub = runs[(runs.task == c[0]) & (runs.bins == c[1]) & (runs.level == c[2])]
    return source_label(sub["reference_source"])


def _return_rows(tab: pd.DataFrame, methods: List[str], prec: int, with_ci: bool,
                 runs: Optional[pd.DataFrame] = None):
    rows, firsts = [], []
    cells = sorted({(r.task, r.bins, r.level) for r in tab.itertuples()}, key=cell_sort_key)
    prev_task = None
    for c in cells:
        sub = tab[(tab.task == c[0]) & (tab.bins == c[1]) & (tab.level == c[2])].set_index("method")
        if prev_task is not None and c[0] != prev_task:
            firsts.append(len(rows))
        prev_task = c[0]
        ours = _cell_sources(runs, c)
        row = _cell_cols(*c) + [Text(ours)]
        for m in methods:
            if m not in sub.index:
                row.append("–")
                continue
            r = sub.loc[m]
            if r["n"] > 1:
                s = [fmt_num(r['mean'], prec), Sym("pm"), fmt_num(r['std'], prec)]
            else:
                s = [fmt_num(r["mean"], prec)]
            s = [bold(*s)] if r["best"] else s
            if with_ci:
                s.append(f" [{fmt_num(r['lo'], prec)}, {fmt_num(r['hi'], prec)}]" if r["n"] > 1 else "")
                s.append(f" n={int(r['n'])}" + (" (one seed: no std/CI)" if r["n"] == 1 else ""))
            elif r["n"] == 1:
                s.append(Sym("dagger"))
            row.append(s)
        rows.append(row)
        if sub["paper_source"].astype(bool).any():
            src = sub["paper_source"][sub["paper_source"].astype(bool)].iloc[0]
            prow = ["", "", "", italic(Text(paper_source_label(src, ours)))]
            for m in methods:
                if m in sub.index and finite(sub.loc[m, "paper_mean"]):
                    prow.append(italic(fmt_num(sub.loc[m, 'paper_mean'], prec), Sym("pm"),
                                           fmt_num(sub.loc[m, 'paper_std'], prec)))
                else:
                    prow.append("")
            rows.append(prow)
    return rows, firsts


def _ttt_cell(r, with_ci: bool, steps: bool = False) -> List[Cell]:
    val, lo, hi = ((r["median_steps"], r["lo_steps"], r["hi_steps"]) if steps
                   else (r["median_min"], r["lo_min"], r["hi_min"]))
    fmt = fmt_steps if steps else (lambda v: fmt_num(v, 1))
    if r["all_censored"]:
        return [Sym("gt"), fmt(val), f" (all {int(r['n'])} censored)" if with_ci else ""]
    s = ([Sym("ge")] if r["bound"] else []) + [fmt(val)]
    if with_ci and r["n"] > 1:
        s.append(f" [{fmt(lo)}, {fmt(hi)}]")
    if r["flagged"]:
        s += [Sym("dagger"), f"{int(r['n_censored'])}/{int(r['n'])}"]
    return s


def shown_value(v, steps: bool) -> float:
    """A time or step count at the precision the table prints it (fmt_num(v, 1), fmt_steps)."""
    if not finite(v):
        return float("nan")
    v = float(v)
    if not steps:
        return round(v, 1)
    if abs(v) >= 1e6:
        return round(v / 1e6, 2) * 1e6
    if abs(v) >= 1e4:
        return round(v / 1e3) * 1e3
    if abs(v) >= 1e3:
        return round(v / 1e3, 1) * 1e3
    return float(round(v))


def fastest(sub: pd.DataFrame, steps: bool) -> List[str]:
    """The methods marked fastest in a time-to-target row, at the shown precision: every exact
    (not lower-bound) median that ties the smallest shown exact median, provided each lower-bound
    median shows larger; none when a bound might be faster."""
    col = "median_steps" if steps else "median_min"
    shown = sub[col].map(lambda v: shown_value(v, steps))
    exact = shown[~sub["bound"].astype(bool)].dropna()
    if exact.empty:
        return []
    top = exact.min()
    if not (shown[sub["bound"].astype(bool)] > top).all():
        return []
    return exact.index[exact == top].tolist()


def _ttt_rows(cells: pd.DataFrame, methods: List[str], with_ci: bool,
              steps: bool = False, paper: Optional[pd.DataFrame] = None,
              runs: Optional[pd.DataFrame] = None):
    rows, firsts = [], []
    keys = sorted({(r.task, r.bins, r.level) for r in cells.itertuples()}, key=cell_sort_key)
    prev = None
    for c in keys:
        sub = cells[(cells.task == c[0]) & (cells.bins == c[1]) &
                    (cells.level == c[2])].set_index("method")
        if prev is not None and c[0] != prev:
            firsts.append(len(rows))
        prev = c[0]
        target = sub["target"].iloc[0]
        degenerate = bool(sub["degenerate"].iloc[0]) if "degenerate" in sub.columns else False
        ours = _cell_sources(runs, c)
        row = _cell_cols(*c) + [Text(ours), [fmt_num(target, 1)] + ([Sym("ddagger")] if degenerate else [])]
        best = fastest(sub, steps)  # ties at the shown precision: all bold
        for m in methods:
            if m not in sub.index:
                row.append("–")
                continue
            s = _ttt_cell(sub.loc[m], with_ci, steps)
            row.append(bold(*s) if best and m in best else s)
        rows.append(row)
        if paper is not None and not steps:
            p = paper[(paper.task == c[0]) & (paper.bins == c[1]) & (paper.level == c[2])]
            if not p.empty:
                p = p.set_index("method")
                prow = ["", "", "", italic(Text(paper_source_label(f"{p['source'].iloc[0]}, A40", ours))), ""]
                prow += [italic(fmt_num(p.loc[m, "minutes"], 1)) if m in p.index else ""
                         for m in methods]
                rows.append(prow)
    return rows, firsts


def _run_ttt_str(r) -> str:
    """One run's time to target: '12.3', or '>45.0' when censored."""
    if r.censored is True or r.censored == 1:
        return f">{r.time_to_target_min:.1f}"
    return f"{r.time_to_target_min:.1f}"


def _ttt_missing_cells(ttt: TimeToTargetResult, scale: str, algo: str) -> List[tuple]:
    r = ttt.runs
    r = r[(r.scale == scale) & (r.algo == algo) & r.status.str.startswith("not computable")]
    return sorted({(x.task, x.bins, x.level) for x in r.itertuples()}, key=cell_sort_key)


def _ci(p, lo, hi, prec) -> str:
    return f"{fmt_num(p, prec)} [{fmt_num(lo, prec)}, {fmt_num(hi, prec)}]"


def _speedup(r, key: str) -> List[Cell]:
    v = r[key]
    if r["bound"] == "degenerate":
        return ["n/a", Sym("ddagger")]
    if not finite(v):
        return ["–"]
    if r["bound"] == "?":
        return ["?"]
    bound = {"": [], ">=": [Sym("ge")], "<=": [Sym("le")]}[r["bound"]]
    return bound + [f"{v:.2f}", Sym("times")]


class _Doc:
    def __init__(self):
        self.md: List[str] = []
        self.tex: List[str] = []


def _group_sections(doc: _Doc, scale: str, algo: str, table: CellTable, agg: AggregateResult,
                    ttt: TimeToTargetResult, runs: pd.DataFrame, settings: Dict,
                    figures: Dict[str, List[str]], nll_table: Optional[pd.DataFrame] = None,
                    figure_notes: Optional[Dict[str, str]] = None):
    A = algo_label(algo)
    tA = tex_escape(A)  # every text that goes into a LaTeX caption is escaped
    g = f"{scale}-{algo}"
    md, tex = doc.md, doc.tex
    grp_runs = runs[(runs.scale == scale) & (runs.algo == algo)]
    methods = order_methods(grp_runs["method"])
    labels = [method_label(m, algo) for m in methods]
    K = settings["final_k_text"]
    tK = tex_escape(K)
    frac = settings["target_fraction"]
    win = settings["smoothing_window"]
    base_label = method_label("f", algo)
    md.append(f"## Scale `{scale}`, algorithm {A}\n")
    md.append(f"{len(grp_runs)} runs; methods: {', '.join(labels)}.\n")

    # --- returns per cell
    tab = table.frame[(table.frame.scale == scale) & (table.frame.algo == algo)]
    prec = table.precision
    md.append("### Final return per cell\n")
    md.append(f"Raw return. Final score of a run = mean of its last {K} evaluations. "
              f"Mean ± sample std over seeds, [95% bootstrap CI of the mean], n = seeds. "
              f"**Bold**: best mean in the row at the shown precision (ties: all bold). "
              f"Rows marked *paper* are the published numbers ({PAPER}; 1M steps, 5 seeds, "
              f"paper scale), shown for comparison only."
              + (" Rows marked *generated data* ran on datasets this suite generated from its own "
                 "behaviour policies, not the published datasets the paper's rows used: the two "
                 "are not comparable." if (grp_runs.get("reference_source") == GENERATED).any() else "")
              + "\n")
    header = ["Task", "Bins", "Level", "Source"] + [Text(lab) for lab in labels]
    align = ["l", "l", "l", "l"] + ["r"] * len(labels)
    rows, firsts = _return_rows(tab, methods, prec, with_ci=True, runs=grp_runs)
    md.append(to_markdown(Table(header, rows, align, firsts)) + "\n")
    best = tab.pivot_table(index=["task", "bins", "level"], columns="method",
                           values="best_return_mean", sort=False)
    md.append("Best evaluation return (reported beside the final score; mean over seeds of "
              "each run's best evaluation, optimistic by construction):\n")
    brows = []
    for c in sorted(best.index, key=cell_sort_key):
        brows.append(_cell_cols(*c) + [fmt_num(best.loc[c].get(m), prec) for m in methods])
    md.append(to_markdown(Table(["Task", "Bins", "Level"] + [Text(lab) for lab in labels], brows,
                                ["l", "l", "l"] + ["r"] * len(labels))) + "\n")
    trows, tfirsts = _return_rows(tab, methods, prec, with_ci=False, runs=grp_runs)
    generated = bool((grp_runs.get("reference_source") == GENERATED).any())
    one_seed = (tab["n"] == 1).any()
    tex.append(to_latex(
        Table(header, trows, align, tfirsts),
        f"Final return (mean of the last {tK} evaluations), mean $\\pm$ standard deviation over "
        f"seeds, {tex_escape(scale)} scale, {tA}. Bold: best in row. "
        f"\\textit{{paper}}: published numbers ({tex_escape(PAPER)})."
        + (" Our rows on generated data used datasets generated by this suite, not the published "
           "ones: they are not comparable with the paper's rows." if generated else "")
        + (r" $^\dagger$one seed (no standard deviation)." if one_seed else ""),
        f"tab:spin-bench-returns-{g}", wide=True))

    # --- aggregates
    ga = next((x for x in agg.groups if x.scale == scale and x.algo == algo), None)
    md.append("### Normalised score aggregates (rliable)\n")
    if ga is None:
        md.append("Not computed: see the warnings (no cell has normalised scores for every "
                  "method).\n")
    else:
        ncells = len(ga.cells)
        runs_per = ", ".join(f"{method_label(m, algo)} {ga.scores[m].shape[0]}" for m in ga.methods)
        md.append(f"Normalised final score (R - random) / (expert - random) over {ncells} cell(s) "
                  f"where every method has one; runs per cell: {runs_per}. Point estimate "
                  f"[95% stratified-bootstrap CI, {settings['reps']} replicates, seed "
                  f"{settings['seed']}]. Optimality gap: lower is better.\n")
        est = ga.estimates
        arows = []
        for m in ga.methods:
            e = est[est.method == m].set_index("metric")
            arows.append([Text(method_label(m, algo))] + [_ci(e.loc[k, "point"], e.loc[k, "lo"],
                                                              e.loc[k, "hi"], 3)
                                                          for k in AGGREGATE_METRICS])
        aggregates = Table(["Method"] + list(AGGREGATE_METRICS), arows, ["l"] + ["r"] * len(AGGREGATE_METRICS))
        md.append(to_markdown(aggregates) + "\n")
        md.append("Cells: " + "; ".join(f"{c[0]} {c[2]} ({c[1]} bins)" for c in ga.cells) + "\n")
        tex.append(to_latex(aggregates,
                             f"Normalised final scores across {ncells} cells "
                             f"({tex_escape(scale)} scale, {tA}): point estimate and 95\\% "
                             f"stratified-bootstrap confidence interval (rliable). "
                             f"Optimality gap: lower is better.",
                             f"tab:spin-bench-aggregates-{g}", wide=True))
        md.append("### Probability of improvement\n")
        if ga.improvement.empty:
            md.append("Not computed: " + ("no SPIN runs in this group" if "spin" not in ga.methods
                                          else "SPIN is the only method in this group, there is no "
                                               "baseline to compare it with") + ".\n")
        else:
            prows = [[[Text(f"P({r.label_x} "), Sym("gt"), Text(f" {r.label_y})")], _ci(r.point, r.lo, r.hi, 2)]
                     for r in ga.improvement.itertuples()]
            improvement = Table(["Comparison", "Probability [95% CI]"], prows, ["l", "r"])
            md.append("Probability that a SPIN run beats a baseline run on a random cell "
                      "(Mann-Whitney), averaged over cells; 0.5 = no difference.\n")
            md.append(to_markdown(improvement) + "\n")
            tex.append(to_latex(improvement,
                                 f"Probability of improvement of SPIN over each baseline "
                                       f"({tex_escape(scale)} scale, {tA}), 95\\% CIs.",
                                 f"tab:spin-bench-poi-{g}", header=["Comparison", "Probability"]))

    # --- time to target
    md.append("### Time to target\n")
    cells = ttt.cells[(ttt.cells.scale == scale) & (ttt.cells.algo == algo)]
    missing = _ttt_missing_cells(ttt, scale, algo)
    smooth = ("no smoothing" if win == 1 else
              f"return averaged over a trailing window of {win} evaluations")
    md.append(f"Target = {frac:g} × {base_label} asymptote (mean over seeds of its final "
              f"scores) in the same cell; {smooth}. Minutes of training clock at the first "
              f"evaluation that reaches the target (SPIN includes ASM pre-training; evaluation "
              f"time excluded): median over seeds [95% bootstrap CI]. "
              f"`†k/n`: k of n runs never reached the target and count at their total training "
              f"time; `≥`: the median is then a lower bound; `>x`: all runs censored. "
              f"**Bold**: fastest at the shown precision (ties: all bold; none when a lower bound "
              f"might be faster). Rows marked *paper*: {PAPER}, Tables 5/6, one NVIDIA A40; "
              f"minutes depend on the hardware, steps do not.\n")
    degenerate = cells[cells["degenerate"].astype(bool)] if "degenerate" in cells.columns else cells.iloc[:0]
    if not degenerate.empty:
        names = sorted({(r.task, r.bins, r.level, r.first_eval_share) for r in degenerate.itertuples()},
                       key=lambda c: cell_sort_key(c[:3]))
        md.append(f"**‡ Degenerate target** in {len(names)} cell(s): "
                  + "; ".join(f"{c[0]} {c[2]} ({c[3]:.0%} of runs reach it at their first evaluation)"
                              for c in names)
                  + f". {base_label}'s asymptote there is a plateau reached early, so these times "
                    f"measure the evaluation interval, not learning speed: no speed-ups are shown for "
                    f"them and the sums leave them out. The behaviour-NLL steps to target below are "
                    f"the more sensitive measure.\n")
    if missing:
        md.append("Not computable (no " + base_label + " runs): "
                  + "; ".join(f"{c[0]} {c[2]} ({c[1]} bins)" for c in missing) + ".\n")
    if cells.empty:
        md.append("No cell has a time to target.\n")
    else:
        paper = paper_time_to_target()
        paper = paper[paper.algo == algo]
        header = ["Task", "Bins", "Level", "Source", "Target"] + [Text(lab) for lab in labels]
        align = ["l"] * 4 + ["r"] * (1 + len(labels))
        rows, firsts = _ttt_rows(cells, methods, True, False, paper, runs=grp_runs)
        md.append(to_markdown(Table(header, rows, align, firsts)) + "\n")
        md.append("Gradient steps to target (median over seeds [95% CI]; censored runs count at "
                  "their total steps):\n")
        rows, firsts = _ttt_rows(cells, methods, True, True, runs=grp_runs)
        md.append(to_markdown(Table(header, rows, align, firsts)) + "\n")
        trows, tfirsts = _ttt_rows(cells, methods, False, False, paper, runs=grp_runs)
        tex.append(to_latex(
            Table(header, trows, align, tfirsts),
            f"Time to target in minutes ({tex_escape(scale)} scale, {tA}): median over seeds "
            f"of the training clock at which the return first reaches {frac:g} of "
            f"{tex_escape(base_label)}'s asymptote (SPIN includes ASM pre-training). "
            f"$>$: never reached (censored at the total training time); $^\\dagger k/n$: "
            f"$k$ of $n$ runs censored; $\\geq$: the median is a lower bound. "
            f"\\textit{{paper}}: {tex_escape(PAPER)}, one A40.",
            f"tab:spin-bench-ttt-{g}", wide=True))

        rr = ttt.runs[(ttt.runs.scale == scale) & (ttt.runs.algo == algo) &
                      ttt.runs.censored.notna()]
        md.append("<details><summary>Per-run time to target (minutes; censored runs as "
                  "'>' their total training minutes)</summary>\n")
        prows = []
        for c in sorted({(r.task, r.bins, r.level) for r in rr.itertuples()}, key=cell_sort_key):
            sub = rr[(rr.task == c[0]) & (rr.bins == c[1]) & (rr.level == c[2])]
            row = _cell_cols(*c)
            for m in methods:
                ms = sub[sub.method == m].sort_values("seed")
                row.append(", ".join(_run_ttt_str(r) for r in ms.itertuples()) or "–")
            prows.append(row)
        md.append(to_markdown(Table(["Task", "Bins", "Level"] + [Text(lab) for lab in labels], prows,
                                    ["l"] * 3 + ["r"] * len(labels))))
        md.append("\nSeeds in increasing order.\n\n</details>\n")
        tot = ttt.totals[(ttt.totals.scale == scale) & (ttt.totals.algo == algo)]
        sp = ttt.speedups[(ttt.speedups.scale == scale) & (ttt.speedups.algo == algo)]
        if not tot.empty:
            md.append("#### Totals over cells (the paper's way) and SPIN's speed-up\n")
            md.append(f"Sum over the {int(tot['cells'].iloc[0])} cell(s) where every method has "
                      f"a time of the per-cell medians; speed-up = baseline / SPIN. "
                      f"≥, ≤: bounds, because a median includes censored runs; ?: unknown "
                      f"(both are bounds).\n")
            sp_tot = sp[sp.task == "total"].set_index("baseline")
            # The paper's own sums over the same cells, where it has every one of them.
            common = [k for k, grp_ in cells.groupby(["task", "bins", "level"])
                      if set(grp_["method"]) >= set(methods)]
            pkeyed = paper.set_index(["task", "bins", "level", "method"])["minutes"]
            paper_sum = {}
            for m in methods:
                keys = [(*k, m) for k in common]
                if keys and all(k in pkeyed.index for k in keys):
                    paper_sum[m] = float(pkeyed.loc[keys].sum())
            trows = []
            for r in tot.itertuples():
                flag = [Sym("ge")] if r.bound else []
                row = [Text(r.label), flag + [fmt_num(r.sum_median_min, 1)], flag + [fmt_steps(r.sum_median_steps)]]
                if r.method in sp_tot.index:
                    row += [_speedup(sp_tot.loc[r.method], "speedup_min"),
                            _speedup(sp_tot.loc[r.method], "speedup_steps")]
                else:
                    row += ["–", "–"]
                if paper_sum:
                    row.append(italic(fmt_num(paper_sum[r.method], 1)) if r.method in paper_sum else "")
                trows.append(row)
            pcol = ["*paper* Σ minutes (A40)"] if paper_sum else []
            totals = Table(["Method", "Σ minutes", "Σ steps", "SPIN speed-up (minutes)", "SPIN speed-up (steps)"]
                           + pcol, trows, ["l", "r", "r", "r", "r"] + ["r"] * len(pcol))
            md.append(to_markdown(totals) + "\n")
            tex.append(to_latex(totals,
                                 f"Time to target summed over {int(tot['cells'].iloc[0])} cells "
                                 f"({tex_escape(scale)} scale, {tA}) and SPIN's speed-up "
                                 f"(baseline / SPIN). $\\geq$: lower bound (censored runs); "
                                 f"?: unknown (both are bounds).",
                                 f"tab:spin-bench-ttt-total-{g}",
                                 header=["Method", r"$\sum$ minutes", r"$\sum$ steps", "SPIN speed-up (min)",
                                         "SPIN speed-up (steps)"]
                                 + ([r"\textit{paper} $\sum$ min"] if paper_sum else [])))
        per = sp[sp.task != "total"]
        if not per.empty:
            bl = order_methods(per["baseline"])
            md.append("SPIN's speed-up per cell, minutes (steps):\n")
            prow = []
            for c in sorted({(r.task, r.bins, r.level) for r in per.itertuples()},
                            key=cell_sort_key):
                sub = per[(per.task == c[0]) & (per.bins == c[1]) &
                          (per.level == c[2])].set_index("baseline")
                row = _cell_cols(*c)
                for b in bl:
                    if b in sub.index:
                        row.append(_speedup(sub.loc[b], "speedup_min") + [" ("]
                                   + _speedup(sub.loc[b], "speedup_steps") + [")"])
                    else:
                        row.append("–")
                prow.append(row)
            md.append(to_markdown(Table(["Task", "Bins", "Level"] + [f"vs {method_label(b, algo)}" for b in bl],
                                        prow, ["l"] * 3 + ["r"] * len(bl))) + "\n")

    nll = nll_table[(nll_table.scale == scale) & (nll_table.algo == algo)] if nll_table is not None else None
    if nll is not None and not nll.empty:
        ref_label = method_label(NLL_REFERENCE, algo)
        md.append("### Behaviour-NLL steps to target\n")
        md.append(f"How fast each actor fits the data: gradient steps until a run's behaviour NLL has gone "
                  f"{settings['nll_fraction']:g} of the way from its first evaluated value to {ref_label}'s final "
                  f"NLL (mean over its seeds of the mean of the last K evaluations; shown as *ref. NLL*). Median "
                  f"over seeds [95% bootstrap CI]; `†k/n`: k runs never got there and count at their last step "
                  f"(`≥`: the median is then a lower bound).\n")
        nmethods = [m for m in methods if m in set(nll["method"])]
        nrows = []
        for c in sorted({(r.task, r.bins, r.level) for r in nll.itertuples()}, key=cell_sort_key):
            sub = nll[(nll.task == c[0]) & (nll.bins == c[1]) & (nll.level == c[2])].set_index("method")
            row = _cell_cols(*c) + [fmt_num(sub["reference_final_nll"].iloc[0], 3)]
            for m in nmethods:
                if m not in sub.index:
                    row.append("–")
                    continue
                r = sub.loc[m]
                txt = ([Sym("ge")] if r["bound"] else []) + [fmt_steps(r["median_steps"])]
                if r["n"] > 1:
                    txt.append(f" [{fmt_steps(r['lo_steps'])}, {fmt_steps(r['hi_steps'])}]")
                if r["n_censored"]:
                    txt += [Sym("dagger"), f"{int(r['n_censored'])}/{int(r['n'])}"]
                row.append(txt)
            nrows.append(row)
        md.append(to_markdown(Table(["Task", "Bins", "Level", "ref. NLL"] + [method_label(m, algo) for m in nmethods],
                                    nrows, ["l"] * 3 + ["r"] * (1 + len(nmethods)))) + "\n")

    if figures:
        md.append("### Figures\n")
        for name, paths in figures.items():
            png = [p for p in paths if p.endswith(".png")]
            if png:
                rel = os.path.basename(png[0])
                md.append(f"**{name}** (`{rel}`, PDF beside it)\n\n![{name}]({rel})\n")
                if figure_notes and name in figure_notes:
                    md.append(figure_notes[name] + "\n")


def per_seed_note(per_seed: List[tuple], algo: str) -> str:
    """The report's note under a sample-efficiency figure that draws some seeds one by one."""
    where = "; ".join(f"{method_label(m, algo)} on {c[0]} {c[2]}" for c, m in per_seed)
    return (f"Drawn one thin line per seed, without a mean: {where}. Those seeds' training clocks "
            f"do not overlap (a seed's ASM pre-training took much longer, e.g. on a busy machine), "
            f"so there is no range where every seed has data to average over; the other curves are "
            f"the mean over seeds on the range every seed covers.")


def _scores_frame(load: LoadResult, ttt: TimeToTargetResult) -> pd.DataFrame:
    runs = load.runs.rename(columns={"final_normalized_score": "normalized_score"})
    t = ttt.runs[["run_dir", "algo", "target", "status", "censored", "time_to_target_min",
                  "steps_to_target"]].rename(columns={"status": "ttt_status"})
    df = runs.merge(t, on=["run_dir", "algo"], how="left")  # a reference run (F-BC) may sit in two groups
    df["steps_to_target"] = df["steps_to_target"].astype("Int64")
    df["time_to_target_display"] = [
        "" if pd.isna(c) else (f">{t:.1f}" if c else f"{t:.1f}")
        for c, t in zip(df["censored"], df["time_to_target_min"])]
    df["censored"] = df["censored"].astype("boolean")
    df = df.assign(_b=df["bins"].map(bins_sort_key), _l=df["level"].map(level_sort_key),
                   _m=df["method"].map(method_sort_key))
    df = df.sort_values(["scale", "algo", "task", "_b", "_l", "_m", "seed"], kind="stable")
    return df[SCORES_COLUMNS].reset_index(drop=True)


def write_report(source, out_dir: str, seed: int = 0, final_k: Optional[int] = None,
                 target_fraction: float = 0.95, smoothing_window: int = 1, reps: int = 2000,
                 figures: bool = True, curve_reps: int = 1000) -> Report:
    """Load (if ``source`` is a path, glob or list of them) and write the full report.

    Raises :class:`AnalysisError` with a one-line reason when there is nothing to report.
    """
    load = fold_references(source if isinstance(source, LoadResult) else load_runs(source, final_k=final_k))
    where = ", ".join(load.inputs)
    if load.empty:
        if len(load.excluded):
            reasons = load.excluded["reason"].str.split(r" \(|:", regex=True).str[0]
            counts = "; ".join(f"{n} {r}" for r, n in reasons.value_counts().sort_index().items())
            raise AnalysisError(f"no usable runs in {where}: all {len(load.excluded)} run "
                                f"directories were excluded ({counts})")
        raise AnalysisError(f"no run directories (with summary.json) in {where}")
    if reps < 1:
        raise AnalysisError(f"reps must be >= 1, got {reps}")
    os.makedirs(out_dir, exist_ok=True)
    settings = {"seed": int(seed), "final_k": load.final_k, "final_k_text": load.final_k_text,
                "target_fraction": float(target_fraction),
                "smoothing_window": int(smoothing_window), "reps": int(reps), "nll_fraction": 0.8}
    logger.info("report: %d runs (%d excluded) from %s", len(load.runs), len(load.excluded), where)
    table = per_cell_table(load, reps=reps, seed=seed)
    agg = aggregate(load, reps=reps, seed=seed)
    ttt = time_to_target(load, target_fraction=target_fraction,
                         smoothing_window=smoothing_window, reps=reps, seed=seed)
    nll = nll_steps_to_target(load, fraction=settings["nll_fraction"], reps=reps, seed=seed)
    notes = Notes()
    for n in (load.messages, table.messages, agg.messages, ttt.messages):
        notes.extend(n)
    scores = _scores_frame(load, ttt)
    files = []
    p = os.path.join(out_dir, "scores.csv")
    atomic_write_text(p, _printable(scores.to_csv(index=False, float_format="%.6g")))
    files.append(p)

    groups = sorted({(r.scale, r.algo) for r in load.runs.itertuples()})
    fig_index: Dict[tuple, Dict[str, List[str]]] = {}
    fig_notes: Dict[tuple, str] = {}
    if figures:
        for scale, algo in groups:
            figs: Dict[str, List[str]] = {}
            tag = f"{scale}_{algo}"
            ga = next((x for x in agg.groups if x.scale == scale and x.algo == algo), None)
            if ga is not None:
                figs["Aggregate normalised scores (95% CIs)"] = plots.plot_interval_estimates(
                    ga, os.path.join(out_dir, f"interval_estimates_{tag}"))
                figs["Performance profiles"] = plots.plot_performance_profile(
                    ga, os.path.join(out_dir, f"performance_profile_{tag}"))
                poi = plots.plot_probability_of_improvement(
                    ga, os.path.join(out_dir, f"probability_of_improvement_{tag}"))
                if poi:
                    figs["Probability of improvement"] = poi
            for x, name in (("step", "steps"), ("train_min", "minutes")):
                se = plots.sample_efficiency_figure(load.evals, load.runs, scale, algo, x=x,
                                                    targets=ttt.cells, reps=curve_reps, seed=seed)
                if se is None:
                    continue
                title = f"Sample efficiency vs {'gradient steps' if x == 'step' else 'training minutes'}"
                figs[title] = plots.save_figure(se.figure, os.path.join(out_dir, f"sample_efficiency_{name}_{tag}"))
                if se.per_seed:
                    fig_notes[(scale, algo, title)] = per_seed_note(se.per_seed, algo)
            fig_index[(scale, algo)] = figs
            for v in figs.values():
                files.extend(v)

    doc = _Doc()
    n_cells = len({(r.scale, r.algo, r.task, r.bins, r.level) for r in load.runs.itertuples()})
    smooth = ("no smoothing" if smoothing_window == 1
              else f"trailing mean over {smoothing_window} evaluations")
    header = (f"{len(load.runs)} runs in {n_cells} cell(s), {len(load.excluded)} excluded. "
              f"Final score = mean of the last {load.final_k_text} evaluations; target = "
              f"{target_fraction:g} × F asymptote, {smooth}; bootstrap: {reps} replicates, "
              f"seed {seed}, 95% percentile CIs.")
    doc.md.append("# spin_bench leaderboard\n")
    doc.md.append(f"Generated by `python -m spin_bench.report`. {header}\n")
    doc.tex.append("% spin_bench leaderboard, generated by python -m spin_bench.report.\n"
                   "% Requires \\usepackage{booktabs}. "
                   + tex_escape(header).replace("×", "x").replace("\n", " ")
                   + "\n")
    warn = [n for n in notes.warnings() if n.topic != "excluded"]
    if warn:
        doc.md.append("## Warnings\n")
        doc.md.extend(f"- {md_escape(n.text)}" for n in warn)
        doc.md.append("")
    info = [n for n in notes if n.level != "warning"]
    if info:
        doc.md.append(f"<details><summary>Notes ({len(info)})</summary>\n")
        doc.md.extend(f"- {md_escape(n.text)}" for n in info)
        doc.md.append("\n</details>\n")
    for scale, algo in groups:
        _group_sections(doc, scale, algo, table, agg, ttt, load.runs, settings,
                        fig_index.get((scale, algo), {}), nll_table=nll,
                        figure_notes={k[2]: v for k, v in fig_notes.items() if k[:2] == (scale, algo)})
    if has_budget_axis(load.runs):  # SPIN with more than one pre-training budget in a cell
        md, tex, written = budget_section(load.runs, out_dir, reps, seed, figures)
        doc.md.extend(md)
        doc.tex.extend(tex)
        files.extend(written)
    doc.md.append("## Excluded runs\n")
    if load.excluded.empty:
        doc.md.append("None.\n")
    else:
        doc.md.append(to_markdown(Table(["Run directory", "Reason"],
                                        [[["`", Text(r.run_dir), "`"], Text(r.reason)]
                                         for r in load.excluded.itertuples()], ["l", "l"])) + "\n")
        doc.tex.append("% Excluded runs:\n" + "".join(
            f"%   {r.run_dir}: {' '.join(str(r.reason).split())}\n"
            for r in load.excluded.itertuples()))
    for name, text in (("leaderboard.md", "\n".join(doc.md)), ("leaderboard.tex", "\n".join(doc.tex))):
        p = os.path.join(out_dir, name)
        # write-and-rename: a link planted in a shared report folder is replaced, not written
        # through; names that are not UTF-8 (excluded runs) are shown escaped
        atomic_write_text(p, _printable(text.rstrip("\n") + "\n"))
        files.insert(0, p)
    logger.info("report: wrote %d files to %s", len(files), out_dir)
    return Report(load=load, table=table, aggregates=agg, ttt=ttt, scores=scores,
                  messages=notes, files=files, settings=settings)


def _printable(text: str) -> str:
    """`text` as valid UTF-8: stray surrogates (from file names that are not UTF-8) escaped."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")
