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
from spin_bench.analysis.group_report import group_aggregate, group_sections
from spin_bench.analysis.labels import bins_sort_key, level_sort_key, method_sort_key
from spin_bench.analysis.loading import LoadResult, fold_references, load_runs
from spin_bench.analysis.notes import AnalysisError, Notes
from spin_bench.analysis.render import Table, Text, md_escape, tex_escape, to_markdown
from spin_bench.analysis.stats import AggregateResult, aggregate
from spin_bench.analysis.study import has_budget_axis
from spin_bench.analysis.study_report import budget_section
from spin_bench.analysis.tables import CellTable, per_cell_table
from spin_bench.analysis.ttt import TimeToTargetResult, nll_steps_to_target, time_to_target
from spin_bench.atomic import atomic_write_text
from spin_bench.vocab import method_label

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


class _Doc:
    """The leaderboard's markdown lines and LaTeX blocks, in order."""

    def __init__(self):
        self.md: List[str] = []
        self.tex: List[str] = []


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
            ga = group_aggregate(agg, scale, algo)
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
        md, tex = group_sections(scale, algo, table, agg, ttt, load.runs, settings,
                                 fig_index.get((scale, algo), {}), nll_table=nll,
                                 figure_notes={k[2]: v for k, v in fig_notes.items() if k[:2] == (scale, algo)})
        doc.md.extend(md)
        doc.tex.extend(tex)
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
