"""Time to target (the paper's "time to convergence"), defined precisely (docs/report.md).

- Asymptote of the baseline (F-<ALGO>, i.e. method "f" under the same algorithm) on a cell
  (scale, algo, task, bins, level): the mean over seeds of its final scores.
- Target: ``target_fraction`` (0.95) times that asymptote.
- Time to target of a run: the first evaluation at which its return, averaged over a
  trailing window of ``smoothing_window`` evaluations (full windows only; 1 = no smoothing),
  reaches the target. Reported: the training clock there (``train_time_s``, SPIN's ASM
  pre-training included, evaluation time excluded) in minutes, and the gradient steps.
- A run that never reaches it is censored: its time is its total training time, shown as
  ">" that value, and it is never dropped. Steps to target are empty for it.
- Per cell and method: the median over seeds with a percentile bootstrap CI (censored runs
  count at their censoring time, and the cell is flagged). The median is exact when it does
  not change with the censored runs pushed to infinity, otherwise it is a lower bound
  (``bound``), shown with ">=".
- Across cells: the paper's way, the sum over cells of the per-cell (median) minutes, over
  the cells where every method has a time.
- Speed-up of SPIN over each baseline: baseline time / SPIN time, per cell and of the sums.
  A ratio is a bound when a median is: ">=" when only the baseline's median is a lower bound,
  "<=" when only SPIN's is, unknown ("?") when both are.
- Degenerate target: when at least ``DEGENERATE_SHARE`` (half) of a cell's runs, all methods
  together, reach the target at their first evaluation (a baseline whose asymptote is a
  plateau reached early puts the target there), times to target measure the evaluation
  interval, not learning speed. Such a cell is flagged, its speed-ups are not shown, and it is
  left out of the sums.
- Behaviour-NLL steps to target (``nll_steps_to_target``), a second, more sensitive measure of
  how fast an actor fits the data: per run, the target NLL lies ``fraction`` (0.8) of the way
  from the run's first evaluated NLL to the reference's final NLL (F-BC: the same actor trained
  purely to fit the data; final = mean over its seeds of the mean of each run's last
  ``final_k`` evaluations); the gradient steps at the first evaluation at or below it, censored
  at the run's last step when never reached.
"""
from __future__ import annotations

import dataclasses
from typing import Dict, Sequence

import numpy as np
import pandas as pd

from spin_bench.analysis.cells import CELL, cells_of, in_cell
from spin_bench.analysis.labels import BASELINE_METHOD, SPIN_METHOD, cell_name, cell_sort_key, order_methods
from spin_bench.analysis.loading import LoadResult
from spin_bench.analysis.notes import AnalysisError, Notes
from spin_bench.analysis.stats import bootstrap_ci
from spin_bench.vocab import algo_label, method_label

DEGENERATE_SHARE = 0.5  # of a cell's runs reaching the target at their first evaluation
NLL_REFERENCE = "f_bc"  # the reference method of nll_steps_to_target (labels.reference_method)


def smooth_trailing(returns: Sequence[float], window: int) -> np.ndarray:
    """Trailing mean over ``window`` evaluations; NaN where the window is not full yet."""
    r = np.asarray(returns, dtype=float)
    window = int(window)
    if window <= 1:
        return r.copy()
    out = np.full(r.shape, np.nan)
    if r.size >= window:
        c = np.cumsum(np.concatenate([[0.0], r]))
        out[window - 1:] = (c[window:] - c[:-window]) / window
    return out


def run_time_to_target(steps: Sequence[int], train_time_s: Sequence[float],
                       returns: Sequence[float], target: float, window: int = 1) -> Dict:
    """Time to target of one run (see module docstring). Minutes, steps and a censored flag."""
    steps = np.asarray(steps)
    times = np.asarray(train_time_s, dtype=float)
    sm = smooth_trailing(returns, window)
    hit = np.flatnonzero(np.nan_to_num(sm, nan=-np.inf) >= target)
    if hit.size:
        i = int(hit[0])
        return {"censored": False, "eval_index": i, "minutes": float(times[i]) / 60.0,
                "steps": int(steps[i]), "censor_steps": float("nan")}
    return {"censored": True, "eval_index": -1, "minutes": float(times[-1]) / 60.0,
            "steps": float("nan"), "censor_steps": int(steps[-1])}


def _ratio(num: float, den: float, num_flag: bool, den_flag: bool):
    """Ratio num/den of two times and its bound sign given censoring flags."""
    if not (np.isfinite(num) and np.isfinite(den)) or den <= 0:
        return float("nan"), ""
    r = num / den
    if num_flag and den_flag:
        return r, "?"
    if num_flag:
        return r, ">="
    if den_flag:
        return r, "<="
    return r, ""


@dataclasses.dataclass
class TimeToTargetResult:
    runs: pd.DataFrame       # one row per run
    cells: pd.DataFrame      # one row per (cell, method): medians and CIs
    totals: pd.DataFrame     # one row per (scale, algo, method): sums over common cells
    speedups: pd.DataFrame   # SPIN over each baseline, per cell and "total"
    messages: Notes
    target_fraction: float
    smoothing_window: int


def time_to_target(result: LoadResult, target_fraction: float = 0.95, smoothing_window: int = 1,
                   reps: int = 2000, seed: int = 0, baseline: str = BASELINE_METHOD
                   ) -> TimeToTargetResult:
    """Time (minutes) and gradient steps to ``target_fraction`` of the baseline's asymptote."""
    if not isinstance(result, LoadResult):
        raise TypeError("time_to_target needs the LoadResult of load_runs (evaluations and runs)")
    if not 0 < float(target_fraction):
        raise AnalysisError(f"target_fraction must be > 0, got {target_fraction}")
    if int(smoothing_window) < 1:
        raise AnalysisError(f"smoothing_window must be >= 1, got {smoothing_window}")
    notes = Notes()
    runs, evals = result.runs, result.evals
    ev_by_run = {d: g for d, g in evals.groupby("run_dir", sort=False)}
    run_rows, cell_rows = [], []
    cells = sorted({tuple(r) for r in runs[CELL].itertuples(index=False)},
                   key=lambda c: (c[0], c[1], cell_sort_key(c[2:])))
    for cell in cells:
        scale, algo, task, bins, level = cell
        first_cell_row = len(cell_rows)
        first_run_row = len(run_rows)
        cell_runs = in_cell(runs, cell)
        methods = order_methods(cell_runs["method"])
        name = f"{cell_name(task, bins, level)} ({scale})"
        base_label = method_label(baseline, algo)
        base = cell_runs[cell_runs.method == baseline]
        if base.empty:
            notes.warn("missing method", f"{name}: no {base_label} runs, so time to target is "
                       f"not computable (the target is {target_fraction:g} x {base_label}'s "
                       f"asymptote)")
            for r in cell_runs.itertuples():
                run_rows.append(dict(zip(CELL, cell), method=r.method, label=r.label, seed=r.seed,
                                     run_dir=r.run_dir, asymptote=np.nan, target=np.nan,
                                     status=f"not computable: no {base_label} runs",
                                     censored=np.nan, time_to_target_min=np.nan,
                                     steps_to_target=np.nan, censor_steps=np.nan,
                                     total_train_min=r.total_train_min))
            continue
        if SPIN_METHOD not in methods:
            notes.warn("missing method", f"{name}: no {method_label(SPIN_METHOD, algo)} runs, so "
                                         f"SPIN's speed-up is not computable in this cell")
        if len(base) == 1:
            notes.warn("seeds", f"{name}: the {base_label} asymptote comes from a single seed")
        asymptote = float(base["final_return"].mean())
        target = float(target_fraction) * asymptote
        if asymptote <= 0:
            notes.warn("target", f"{name}: {base_label}'s asymptote is {asymptote:.1f} <= 0; "
                                 f"the target {target:.1f} is not meaningful")
        for m in methods:
            mruns = cell_runs[cell_runs.method == m].sort_values("seed")
            times, steps, flags = [], [], []
            for r in mruns.itertuples():
                ev = ev_by_run[r.run_dir]
                t = run_time_to_target(ev["step"].to_numpy(), ev["train_time_s"].to_numpy(),
                                       ev["return_mean"].to_numpy(), target, smoothing_window)
                run_rows.append(dict(zip(CELL, cell), method=m, label=r.label, seed=r.seed,
                                     run_dir=r.run_dir, asymptote=asymptote, target=target,
                                     status="censored" if t["censored"] else "reached",
                                     censored=t["censored"], time_to_target_min=t["minutes"],
                                     steps_to_target=t["steps"], censor_steps=t["censor_steps"],
                                     total_train_min=r.total_train_min,
                                     first_eval=t["eval_index"] == 0))
                times.append(t["minutes"])
                steps.append(t["censor_steps"] if t["censored"] else t["steps"])
                flags.append(t["censored"])
            label = method_label(m, algo)
            n_c = int(np.sum(flags))
            if n_c:
                notes.info("censored", f"{name}: {n_c} of {len(flags)} {label} run(s) never "
                           f"reached the target {target:.1f}; counted at their total training "
                           f"time (marked †; '>' in the per-run list)")
            if len(times) == 1:
                notes.warn("seeds", f"{name}: {label} has one seed: no CI for its time to target")
            # The median counts censored runs at their censoring time; it is exact when
            # pushing every censored run to infinity leaves it unchanged, else a lower bound.
            inf_times = np.where(flags, np.inf, times)
            bound = bool(n_c) and not np.median(inf_times) == np.median(times)
            lo, hi = bootstrap_ci(times, np.median, reps, seed)
            slo, shi = bootstrap_ci(steps, np.median, reps, seed)
            cell_rows.append(dict(zip(CELL, cell), method=m, label=label, n=len(times),
                                  n_censored=n_c, flagged=n_c > 0, bound=bound,
                                  asymptote=asymptote,
                                  target=target, median_min=float(np.median(times)),
                                  lo_min=lo, hi_min=hi, median_steps=float(np.median(steps)),
                                  lo_steps=slo, hi_steps=shi,
                                  all_censored=n_c == len(times)))
        hits = [bool(r["first_eval"]) for r in run_rows[first_run_row:]]
        share = float(np.mean(hits)) if hits else float("nan")
        degenerate = bool(hits) and share >= DEGENERATE_SHARE
        for row in cell_rows[first_cell_row:]:
            row.update(first_eval_share=share, degenerate=degenerate)
        if degenerate:
            notes.warn("degenerate target", f"{name}: {sum(hits)} of {len(hits)} runs reach the target "
                       f"{target:.1f} ({target_fraction:g} x {base_label}'s asymptote {asymptote:.1f}) at their "
                       f"first evaluation: the target sits on an early plateau, so times to target there "
                       f"measure the evaluation interval, not learning speed; no speed-ups are shown for "
                       f"this cell and it is left out of the sums")
    run_cols = CELL + ["method", "label", "seed", "asymptote", "target", "status", "censored",
                       "time_to_target_min", "steps_to_target", "censor_steps",
                       "total_train_min", "first_eval", "run_dir"]
    cell_cols = CELL + ["method", "label", "n", "n_censored", "flagged", "bound", "all_censored",
                        "asymptote", "target", "median_min", "lo_min", "hi_min", "median_steps",
                        "lo_steps", "hi_steps", "first_eval_share", "degenerate"]
    runs_df = pd.DataFrame(run_rows, columns=run_cols)
    cells_df = pd.DataFrame(cell_rows, columns=cell_cols)
    totals_df, speed_df = _totals_and_speedups(cells_df, notes)
    return TimeToTargetResult(runs=runs_df, cells=cells_df, totals=totals_df,
                              speedups=speed_df, messages=notes,
                              target_fraction=float(target_fraction),
                              smoothing_window=int(smoothing_window))


def _totals_and_speedups(cells: pd.DataFrame, notes: Notes):
    tot_rows, sp_rows = [], []
    for (scale, algo), grp in cells.groupby(["scale", "algo"], sort=True):
        methods = order_methods(grp["method"])
        keyed = grp.set_index(["task", "bins", "level", "method"])
        all_cells = cells_of(grp)
        degenerate = {(r.task, r.bins, r.level) for r in grp.itertuples() if bool(r.degenerate)}
        common = [c for c in all_cells if c not in degenerate and all((*c, m) in keyed.index for m in methods)]
        dropped = [c for c in all_cells if c not in common and c not in degenerate]
        if dropped:
            notes.warn("time to target", f"time to target ({scale}, {algo_label(algo)}): the sums over cells leave "
                       f"out {len(dropped)} cell(s) where not every method has a time: "
                       + "; ".join(cell_name(*c) for c in dropped))
        sums = {}
        for m in methods:
            if not common:
                break
            sel = keyed.loc[[(*c, m) for c in common]]
            sums[m] = (float(sel["median_min"].sum()), float(sel["median_steps"].sum()),
                       bool(sel["bound"].any()))
            tot_rows.append({"scale": scale, "algo": algo, "method": m,
                             "label": method_label(m, algo), "cells": len(common),
                             "sum_median_min": sums[m][0], "sum_median_steps": sums[m][1],
                             "bound": sums[m][2]})
        if SPIN_METHOD not in methods:
            continue
        for m in methods:
            if m == SPIN_METHOD:
                continue
            for c in all_cells:
                if (*c, m) not in keyed.index or (*c, SPIN_METHOD) not in keyed.index:
                    continue
                b, s = keyed.loc[(*c, m)], keyed.loc[(*c, SPIN_METHOD)]
                r_min, sign = _ratio(b["median_min"], s["median_min"], b["bound"], s["bound"])
                r_steps, _ = _ratio(b["median_steps"], s["median_steps"], b["bound"], s["bound"])
                if c in degenerate:
                    r_min, r_steps, sign = float("nan"), float("nan"), "degenerate"
                sp_rows.append({"scale": scale, "algo": algo, "task": c[0], "bins": c[1],
                                "level": c[2], "baseline": m,
                                "label": method_label(m, algo), "speedup_min": r_min,
                                "speedup_steps": r_steps, "bound": sign})
            if m in sums and SPIN_METHOD in sums:
                r_min, sign = _ratio(sums[m][0], sums[SPIN_METHOD][0], sums[m][2],
                                     sums[SPIN_METHOD][2])
                r_steps, _ = _ratio(sums[m][1], sums[SPIN_METHOD][1], sums[m][2],
                                    sums[SPIN_METHOD][2])
                sp_rows.append({"scale": scale, "algo": algo, "task": "total", "bins": "",
                                "level": "", "baseline": m, "label": method_label(m, algo),
                                "speedup_min": r_min, "speedup_steps": r_steps, "bound": sign})
    totals = pd.DataFrame(tot_rows, columns=["scale", "algo", "method", "label", "cells",
                                             "sum_median_min", "sum_median_steps", "bound"])
    speedups = pd.DataFrame(sp_rows, columns=["scale", "algo", "task", "bins", "level",
                                              "baseline", "label", "speedup_min",
                                              "speedup_steps", "bound"])
    return totals, speedups


def nll_steps_to_target(result: LoadResult, fraction: float = 0.8, reference: str = NLL_REFERENCE,
                        reps: int = 2000, seed: int = 0) -> pd.DataFrame:
    """Gradient steps for each run's behaviour NLL to go ``fraction`` of the way from its first
    evaluated value to the reference's final NLL (module docstring); one row per (cell, method):
    median steps over seeds [bootstrap CI], censored runs counted at their last step.  Cells
    without reference runs or without NLL columns are skipped (empty frame if none)."""
    cols = CELL + ["method", "label", "n", "n_censored", "reference_final_nll", "median_steps",
                   "lo_steps", "hi_steps", "bound"]
    runs, evals = result.runs, result.evals
    if runs.empty or "behaviour_nll" not in evals.columns or reference not in set(runs["method"]):
        return pd.DataFrame([], columns=cols)
    ev_by_run = {d: g.sort_values("step") for d, g in evals.groupby("run_dir", sort=False)}
    out = []
    for cell, cell_runs in runs.groupby(CELL, sort=False):
        ref = cell_runs[cell_runs.method == reference]
        finals = [float(ev_by_run[r.run_dir]["behaviour_nll"].to_numpy(float)[-int(r.final_k):].mean())
                  for r in ref.itertuples()]
        if not finals or not np.all(np.isfinite(finals)):
            continue
        ref_final = float(np.mean(finals))
        for m in order_methods(cell_runs["method"]):
            steps, flags = [], []
            for r in cell_runs[cell_runs.method == m].sort_values("seed").itertuples():
                ev = ev_by_run[r.run_dir]
                nll = ev["behaviour_nll"].to_numpy(float)
                if nll.size == 0 or not np.isfinite(nll[0]):
                    continue
                target = nll[0] + float(fraction) * (ref_final - nll[0])
                hit = np.flatnonzero(np.nan_to_num(nll, nan=np.inf) <= target)
                flags.append(not hit.size)
                steps.append(int(ev["step"].iloc[int(hit[0])]) if hit.size else int(ev["step"].iloc[-1]))
            if not steps:
                continue
            inf_steps = np.where(flags, np.inf, steps)
            lo, hi = bootstrap_ci(steps, np.median, reps, seed)
            out.append(dict(zip(CELL, cell), method=m, label=method_label(m, cell[1]), n=len(steps),
                            n_censored=int(np.sum(flags)), reference_final_nll=ref_final,
                            median_steps=float(np.median(steps)), lo_steps=lo, hi_steps=hi,
                            bound=bool(np.any(flags)) and not np.median(inf_steps) == np.median(steps)))
    return pd.DataFrame(out, columns=cols)
