"""One (scale, algo) group of the leaderboard: its sections in markdown and LaTeX.

Each section is a small function of the computed results (:mod:`tables`, :mod:`stats`,
:mod:`ttt`) that returns its markdown lines and LaTeX blocks; the tables are built as neutral
:class:`~spin_bench.analysis.render.Table` objects and printed by :mod:`render`.
:func:`group_sections` puts the six sections together: final returns, normalised aggregates,
probability of improvement, time to target, behaviour-NLL steps to target, figures.
"""
from __future__ import annotations

import dataclasses
import os
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

import pandas as pd

from spin_bench.analysis.cells import cells_of, in_cell, in_group
from spin_bench.analysis.labels import SPIN_METHOD, cell_sort_key, order_methods
from spin_bench.analysis.reference import PAPER, paper_time_to_target
from spin_bench.analysis.render import (Cell, Sym, Table, Text, bold, finite, fmt_num, fmt_steps,
                                        italic, tex_escape, to_latex, to_markdown)
from spin_bench.analysis.stats import AGGREGATE_METRICS, AggregateResult, GroupAggregate
from spin_bench.analysis.tables import CellTable
from spin_bench.analysis.ttt import NLL_REFERENCE, TimeToTargetResult
from spin_bench import vocab
from spin_bench.vocab import algo_label, method_label

Section = Tuple[List[str], List[str]]  # (markdown lines, LaTeX blocks)

GENERATED = "generated"  # summary.json's reference source for the datasets the suite generates
CELL_HEADER = ["Task", "Bins", "Level"]


# ----------------------------------------------------------------------------- shared formatting

def _cell_cols(task, bins, level) -> List[Cell]:
    return [Text(task), Text(bins), Text(level)]


def _cell_table(left: Sequence, right: Sequence, rows: List[List], firsts: Optional[List[int]] = None) -> Table:
    """A per-cell table: Task, Bins, Level, then the ``left``-aligned and ``right``-aligned
    columns; ``firsts`` are the rows that open a new task."""
    header = CELL_HEADER + list(left) + list(right)
    align = ["l"] * (len(CELL_HEADER) + len(left)) + ["r"] * len(right)
    return Table(header, rows, align, firsts) if firsts is not None else Table(header, rows, align)


def _md_block(table: Table) -> str:
    return to_markdown(table) + "\n"


def _per_cell(frame: pd.DataFrame, index: Optional[str] = None) -> Iterator[Tuple[tuple, pd.DataFrame]]:
    """(cell, its rows) for each (task, bins, level) cell of a group's frame, in report order;
    the rows indexed by ``index`` when given."""
    for c in cells_of(frame):
        sub = in_cell(frame, c)
        yield c, (sub.set_index(index) if index else sub)


def _per_cell_opening(frame: pd.DataFrame, index: str) -> Iterator[Tuple[tuple, pd.DataFrame, bool]]:
    """:func:`_per_cell`, with whether the cell opens a new task (after the first: a rule)."""
    prev_task = None
    for c, sub in _per_cell(frame, index):
        yield c, sub, prev_task is not None and c[0] != prev_task
        prev_task = c[0]


def _ci(p, lo, hi, prec) -> str:
    return f"{fmt_num(p, prec)} [{fmt_num(lo, prec)}, {fmt_num(hi, prec)}]"


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
    return source_label(in_cell(runs, c)["reference_source"])


@dataclasses.dataclass
class Group:
    """What every section of one (scale, algo) group shares."""

    scale: str
    algo: str
    runs: pd.DataFrame  # the group's runs
    settings: Dict

    def __post_init__(self):
        self.methods: List[str] = order_methods(self.runs["method"])
        self.labels: List[str] = [method_label(m, self.algo) for m in self.methods]
        self.label = algo_label(self.algo)
        self.tex_label = tex_escape(self.label)  # every text that goes into a LaTeX caption is escaped
        self.tag = f"{self.scale}-{self.algo}"
        self.base_label = method_label("f", self.algo)

    @property
    def generated(self) -> bool:
        """Whether some run of the group ran on data the suite generated."""
        return bool((self.runs.get("reference_source") == GENERATED).any())

    def label_cols(self) -> List[Cell]:
        return [Text(lab) for lab in self.labels]


# ----------------------------------------------------------------------------- final returns

def _return_rows(tab: pd.DataFrame, methods: List[str], prec: int, with_ci: bool,
                 runs: Optional[pd.DataFrame] = None):
    rows, firsts = [], []
    for c, sub, opens_task in _per_cell_opening(tab, "method"):
        if opens_task:
            firsts.append(len(rows))
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


def returns_section(g: Group, table: CellTable) -> Section:
    """Final return per cell (mean ± std over seeds, bootstrap CI), best evaluation return."""
    tab = in_group(table.frame, g.scale, g.algo)
    prec = table.precision
    K = g.settings["final_k_text"]
    md = ["### Final return per cell\n",
          f"Raw return. Final score of a run = mean of its last {K} evaluations. "
          f"Mean ± sample std over seeds, [95% bootstrap CI of the mean], n = seeds. "
          f"**Bold**: best mean in the row at the shown precision (ties: all bold). "
          f"Rows marked *paper* are the published numbers ({PAPER}; 1M steps, 5 seeds, "
          f"paper scale), shown for comparison only."
          + (" Rows marked *generated data* ran on datasets this suite generated from its own "
             "behaviour policies, not the published datasets the paper's rows used: the two "
             "are not comparable." if g.generated else "")
          + "\n"]
    rows, firsts = _return_rows(tab, g.methods, prec, with_ci=True, runs=g.runs)
    md.append(_md_block(_cell_table(["Source"], g.label_cols(), rows, firsts)))
    best = tab.pivot_table(index=["task", "bins", "level"], columns="method",
                           values="best_return_mean", sort=False)
    md.append("Best evaluation return (reported beside the final score; mean over seeds of "
              "each run's best evaluation, optimistic by construction):\n")
    brows = [_cell_cols(*c) + [fmt_num(best.loc[c].get(m), prec) for m in g.methods]
             for c in sorted(best.index, key=cell_sort_key)]
    md.append(_md_block(_cell_table([], g.label_cols(), brows)))
    trows, tfirsts = _return_rows(tab, g.methods, prec, with_ci=False, runs=g.runs)
    one_seed = (tab["n"] == 1).any()
    tex = [to_latex(
        _cell_table(["Source"], g.label_cols(), trows, tfirsts),
        f"Final return (mean of the last {tex_escape(K)} evaluations), mean $\\pm$ standard deviation over "
        f"seeds, {tex_escape(g.scale)} scale, {g.tex_label}. Bold: best in row. "
        f"\\textit{{paper}}: published numbers ({tex_escape(PAPER)})."
        + (" Our rows on generated data used datasets generated by this suite, not the published "
           "ones: they are not comparable with the paper's rows." if g.generated else "")
        + (r" $^\dagger$one seed (no standard deviation)." if one_seed else ""),
        f"tab:spin-bench-returns-{g.tag}", wide=True)]
    return md, tex


# ----------------------------------------------------------------------------- aggregates

def group_aggregate(agg: AggregateResult, scale: str, algo: str) -> Optional[GroupAggregate]:
    """The aggregates of one (scale, algo) group, or None when they were not computed."""
    return next((x for x in agg.groups if x.scale == scale and x.algo == algo), None)


def aggregates_section(g: Group, ga: Optional[GroupAggregate]) -> Section:
    """Normalised score aggregates (rliable): point estimate and stratified-bootstrap CI, where
    the normalised score is (R - random) / (expert - random)."""
    md = ["### Normalised score aggregates (rliable)\n"]
    if ga is None:
        md.append("Not computed: see the warnings (no cell has normalised scores for every "
                  "method).\n")
        return md, []
    ncells = len(ga.cells)
    runs_per = ", ".join(f"{method_label(m, g.algo)} {ga.scores[m].shape[0]}" for m in ga.methods)
    md.append(f"Normalised final score (R - random) / (expert - random) over {ncells} cell(s) "
              f"where every method has one; runs per cell: {runs_per}. Point estimate "
              f"[95% stratified-bootstrap CI, {g.settings['reps']} replicates, seed "
              f"{g.settings['seed']}]. Optimality gap: lower is better.\n")
    est = ga.estimates
    arows = []
    for m in ga.methods:
        e = est[est.method == m].set_index("metric")
        arows.append([Text(method_label(m, g.algo))]
                     + [_ci(e.loc[k, "point"], e.loc[k, "lo"], e.loc[k, "hi"], 3) for k in AGGREGATE_METRICS])
    aggregates = Table(["Method"] + list(AGGREGATE_METRICS), arows, ["l"] + ["r"] * len(AGGREGATE_METRICS))
    md.append(_md_block(aggregates))
    md.append("Cells: " + "; ".join(f"{c[0]} {c[2]} ({c[1]} bins)" for c in ga.cells) + "\n")
    tex = [to_latex(aggregates,
                    f"Normalised final scores across {ncells} cells "
                    f"({tex_escape(g.scale)} scale, {g.tex_label}): point estimate and 95\\% "
                    f"stratified-bootstrap confidence interval (rliable). "
                    f"Optimality gap: lower is better.",
                    f"tab:spin-bench-aggregates-{g.tag}", wide=True)]
    return md, tex


def improvement_section(g: Group, ga: GroupAggregate) -> Section:
    """Probability of improvement P(SPIN > baseline) (Mann-Whitney, averaged over cells)."""
    md = ["### Probability of improvement\n"]
    if ga.improvement.empty:
        subject = vocab.METHOD_SPECS[SPIN_METHOD].label  # the registry's subject method: SPIN
        md.append("Not computed: " + (f"no {subject} runs in this group" if SPIN_METHOD not in ga.methods
                                      else f"{subject} is the only method in this group, there is no "
                                           "baseline to compare it with") + ".\n")
        return md, []
    prows = [[[Text(f"P({r.label_x} "), Sym("gt"), Text(f" {r.label_y})")], _ci(r.point, r.lo, r.hi, 2)]
             for r in ga.improvement.itertuples()]
    improvement = Table(["Comparison", "Probability [95% CI]"], prows, ["l", "r"])
    md.append("Probability that a SPIN run beats a baseline run on a random cell "
              "(Mann-Whitney), averaged over cells; 0.5 = no difference.\n")
    md.append(_md_block(improvement))
    tex = [to_latex(improvement,
                    f"Probability of improvement of SPIN over each baseline "
                    f"({tex_escape(g.scale)} scale, {g.tex_label}), 95\\% CIs.",
                    f"tab:spin-bench-poi-{g.tag}", header=["Comparison", "Probability"])]
    return md, tex


# ----------------------------------------------------------------------------- time to target

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
    for c, sub, opens_task in _per_cell_opening(cells, "method"):
        if opens_task:
            firsts.append(len(rows))
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
            p = in_cell(paper, c)
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
    r = in_group(ttt.runs, scale, algo)
    return cells_of(r[r.status.str.startswith("not computable")])


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


def _ttt_intro(g: Group, ttt: TimeToTargetResult, cells: pd.DataFrame) -> List[str]:
    """The time-to-target section's explanation, degenerate targets and missing cells."""
    frac, win, base_label = g.settings["target_fraction"], g.settings["smoothing_window"], g.base_label
    smooth = ("no smoothing" if win == 1 else
              f"return averaged over a trailing window of {win} evaluations")
    md = ["### Time to target\n",
          f"Target = {frac:g} × {base_label} asymptote (mean over seeds of its final "
          f"scores) in the same cell; {smooth}. Minutes of training clock at the first "
          f"evaluation that reaches the target (SPIN includes ASM pre-training; evaluation "
          f"time excluded): median over seeds [95% bootstrap CI]. "
          f"`†k/n`: k of n runs never reached the target and count at their total training "
          f"time; `≥`: the median is then a lower bound; `>x`: all runs censored. "
          f"**Bold**: fastest at the shown precision (ties: all bold; none when a lower bound "
          f"might be faster). Rows marked *paper*: {PAPER}, Tables 5/6, one NVIDIA A40; "
          f"minutes depend on the hardware, steps do not.\n"]
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
    missing = _ttt_missing_cells(ttt, g.scale, g.algo)
    if missing:
        md.append("Not computable (no " + base_label + " runs): "
                  + "; ".join(f"{c[0]} {c[2]} ({c[1]} bins)" for c in missing) + ".\n")
    return md


def _ttt_tables(g: Group, cells: pd.DataFrame, paper: pd.DataFrame) -> Section:
    """Minutes and gradient steps to target per cell, beside the paper's minutes."""
    left, right = ["Source"], ["Target"] + g.label_cols()
    rows, firsts = _ttt_rows(cells, g.methods, True, False, paper, runs=g.runs)
    md = [_md_block(_cell_table(left, right, rows, firsts)),
          "Gradient steps to target (median over seeds [95% CI]; censored runs count at "
          "their total steps):\n"]
    rows, firsts = _ttt_rows(cells, g.methods, True, True, runs=g.runs)
    md.append(_md_block(_cell_table(left, right, rows, firsts)))
    trows, tfirsts = _ttt_rows(cells, g.methods, False, False, paper, runs=g.runs)
    frac = g.settings["target_fraction"]
    tex = [to_latex(
        _cell_table(left, right, trows, tfirsts),
        f"Time to target in minutes ({tex_escape(g.scale)} scale, {g.tex_label}): median over seeds "
        f"of the training clock at which the return first reaches {frac:g} of "
        f"{tex_escape(g.base_label)}'s asymptote (SPIN includes ASM pre-training). "
        f"$>$: never reached (censored at the total training time); $^\\dagger k/n$: "
        f"$k$ of $n$ runs censored; $\\geq$: the median is a lower bound. "
        f"\\textit{{paper}}: {tex_escape(PAPER)}, one A40.",
        f"tab:spin-bench-ttt-{g.tag}", wide=True)]
    return md, tex


def _ttt_per_run(g: Group, ttt: TimeToTargetResult) -> List[str]:
    """Every run's time to target, folded away."""
    rr = in_group(ttt.runs, g.scale, g.algo)
    rr = rr[rr.censored.notna()]
    md = ["<details><summary>Per-run time to target (minutes; censored runs as "
          "'>' their total training minutes)</summary>\n"]
    prows = []
    for c, sub in _per_cell(rr):
        row = _cell_cols(*c)
        for m in g.methods:
            ms = sub[sub.method == m].sort_values("seed")
            row.append(", ".join(_run_ttt_str(r) for r in ms.itertuples()) or "–")
        prows.append(row)
    md.append(to_markdown(_cell_table([], g.label_cols(), prows)))
    md.append("\nSeeds in increasing order.\n\n</details>\n")
    return md


def _paper_sums(cells: pd.DataFrame, methods: List[str], paper: pd.DataFrame) -> Dict[str, float]:
    """The paper's own sums of minutes over the cells where every method has a time, for the
    methods the paper has in every one of them."""
    common = [k for k, grp_ in cells.groupby(["task", "bins", "level"])
              if set(grp_["method"]) >= set(methods)]
    pkeyed = paper.set_index(["task", "bins", "level", "method"])["minutes"]
    paper_sum = {}
    for m in methods:
        keys = [(*k, m) for k in common]
        if keys and all(k in pkeyed.index for k in keys):
            paper_sum[m] = float(pkeyed.loc[keys].sum())
    return paper_sum


def _ttt_totals(g: Group, cells: pd.DataFrame, paper: pd.DataFrame, tot: pd.DataFrame,
                sp: pd.DataFrame) -> Section:
    """Sums of the per-cell medians over the common cells (the paper's way) and SPIN's speed-up
    = baseline / SPIN."""
    md = ["#### Totals over cells (the paper's way) and SPIN's speed-up\n",
          f"Sum over the {int(tot['cells'].iloc[0])} cell(s) where every method has "
          f"a time of the per-cell medians; speed-up = baseline / SPIN. "
          f"≥, ≤: bounds, because a median includes censored runs; ?: unknown "
          f"(both are bounds).\n"]
    sp_tot = sp[sp.task == "total"].set_index("baseline")
    paper_sum = _paper_sums(cells, g.methods, paper)
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
    md.append(_md_block(totals))
    tex = [to_latex(totals,
                    f"Time to target summed over {int(tot['cells'].iloc[0])} cells "
                    f"({tex_escape(g.scale)} scale, {g.tex_label}) and SPIN's speed-up "
                    f"(baseline / SPIN). $\\geq$: lower bound (censored runs); "
                    f"?: unknown (both are bounds).",
                    f"tab:spin-bench-ttt-total-{g.tag}",
                    header=["Method", r"$\sum$ minutes", r"$\sum$ steps", "SPIN speed-up (min)",
                            "SPIN speed-up (steps)"]
                    + ([r"\textit{paper} $\sum$ min"] if paper_sum else []))]
    return md, tex


def _speedups_per_cell(g: Group, per: pd.DataFrame) -> List[str]:
    """SPIN's speed-up over each baseline per cell, minutes (steps)."""
    bl = order_methods(per["baseline"])
    prow = []
    for c, sub in _per_cell(per, "baseline"):
        row = _cell_cols(*c)
        for b in bl:
            if b in sub.index:
                row.append(_speedup(sub.loc[b], "speedup_min") + [" ("]
                           + _speedup(sub.loc[b], "speedup_steps") + [")"])
            else:
                row.append("–")
        prow.append(row)
    return ["SPIN's speed-up per cell, minutes (steps):\n",
            _md_block(_cell_table([], [f"vs {method_label(b, g.algo)}" for b in bl], prow))]


def ttt_section(g: Group, ttt: TimeToTargetResult) -> Section:
    """Time to target: per cell (minutes and steps), per run, totals and SPIN's speed-ups."""
    cells = in_group(ttt.cells, g.scale, g.algo)
    md, tex = _ttt_intro(g, ttt, cells), []
    if cells.empty:
        md.append("No cell has a time to target.\n")
        return md, tex
    paper = paper_time_to_target()
    paper = paper[paper.algo == g.algo]
    for part_md, part_tex in (_ttt_tables(g, cells, paper), (_ttt_per_run(g, ttt), [])):
        md += part_md
        tex += part_tex
    tot = in_group(ttt.totals, g.scale, g.algo)
    sp = in_group(ttt.speedups, g.scale, g.algo)
    if not tot.empty:
        part_md, part_tex = _ttt_totals(g, cells, paper, tot, sp)
        md += part_md
        tex += part_tex
    per = sp[sp.task != "total"]
    if not per.empty:
        md += _speedups_per_cell(g, per)
    return md, tex


# ----------------------------------------------------------------------------- behaviour NLL

def nll_section(g: Group, nll_table: Optional[pd.DataFrame]) -> Section:
    """Behaviour-NLL steps to target: gradient steps until a run's NLL has gone a fraction of the
    way from its first evaluated value to the reference method's final NLL."""
    nll = in_group(nll_table, g.scale, g.algo) if nll_table is not None else None
    if nll is None or nll.empty:
        return [], []
    ref_label = method_label(NLL_REFERENCE, g.algo)
    md = ["### Behaviour-NLL steps to target\n",
          f"How fast each actor fits the data: gradient steps until a run's behaviour NLL has gone "
          f"{g.settings['nll_fraction']:g} of the way from its first evaluated value to {ref_label}'s final "
          f"NLL (mean over its seeds of the mean of the last K evaluations; shown as *ref. NLL*). Median "
          f"over seeds [95% bootstrap CI]; `†k/n`: k runs never got there and count at their last step "
          f"(`≥`: the median is then a lower bound).\n"]
    nmethods = [m for m in g.methods if m in set(nll["method"])]
    nrows = []
    for c, sub in _per_cell(nll, "method"):
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
    md.append(_md_block(_cell_table([], ["ref. NLL"] + [method_label(m, g.algo) for m in nmethods], nrows)))
    return md, []


# ----------------------------------------------------------------------------- figures

def figures_section(figures: Dict[str, List[str]], figure_notes: Optional[Dict[str, str]] = None) -> Section:
    """The group's figures (PNG shown, PDF beside it), each with its note."""
    if not figures:
        return [], []
    md = ["### Figures\n"]
    for name, paths in figures.items():
        png = [p for p in paths if p.endswith(".png")]
        if png:
            rel = os.path.basename(png[0])
            md.append(f"**{name}** (`{rel}`, PDF beside it)\n\n![{name}]({rel})\n")
            if figure_notes and name in figure_notes:
                md.append(figure_notes[name] + "\n")
    return md, []


# ----------------------------------------------------------------------------- the group

def group_sections(scale: str, algo: str, table: CellTable, agg: AggregateResult,
                   ttt: TimeToTargetResult, runs: pd.DataFrame, settings: Dict,
                   figures: Dict[str, List[str]], nll_table: Optional[pd.DataFrame] = None,
                   figure_notes: Optional[Dict[str, str]] = None) -> Section:
    """Every section of one (scale, algo) group, in the report's order."""
    g = Group(scale, algo, in_group(runs, scale, algo), settings)
    md = [f"## Scale `{scale}`, algorithm {g.label}\n",
          f"{len(g.runs)} runs; methods: {', '.join(g.labels)}.\n"]
    tex: List[str] = []
    ga = group_aggregate(agg, scale, algo)
    sections = [returns_section(g, table), aggregates_section(g, ga)]
    if ga is not None:
        sections.append(improvement_section(g, ga))
    sections += [ttt_section(g, ttt), nll_section(g, nll_table), figures_section(figures, figure_notes)]
    for part_md, part_tex in sections:
        md += part_md
        tex += part_tex
    return md, tex
