"""Statistics: per-cell bootstrap CIs and rliable aggregates across tasks.

rliable's bootstrap ignores its ``random_state`` argument and draws from numpy's global
generator, so every rliable call here is preceded by ``np.random.seed(seed)``: the same seed
gives the same confidence intervals, and calling rliable directly on the same arrays after
``np.random.seed(seed)`` gives identical numbers (the tests check this).
"""
from __future__ import annotations

import dataclasses
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import pandas as pd
from rliable import library as rly
from rliable import metrics as rlm

from spin_bench.analysis.cells import cells_of, in_cell
from spin_bench.analysis.labels import SPIN_METHOD, cell_name, order_methods
from spin_bench.analysis.loading import as_runs
from spin_bench.analysis.notes import Notes
from spin_bench.vocab import algo_label, method_label, split_variant

# The order rliable's own examples use.
AGGREGATE_METRICS: Tuple[str, ...] = ("Median", "IQM", "Mean", "Optimality Gap")


def aggregate_func(x: np.ndarray) -> np.ndarray:
    """rliable median, IQM, mean and optimality gap (gamma=1) of a runs x tasks matrix."""
    return np.array([rlm.aggregate_median(x), rlm.aggregate_iqm(x), rlm.aggregate_mean(x),
                     rlm.aggregate_optimality_gap(x)])


def probability_of_improvement_fast(scores_x: np.ndarray, scores_y: np.ndarray) -> float:
    """Exactly ``rliable.metrics.probability_of_improvement`` without scipy's per-task overhead.

    Per task, the Mann-Whitney U statistic of x over y divided by nx*ny is
    (#{x > y} + 0.5 #{x == y}) / (nx ny); averaged over tasks. (rliable's special case of
    identical columns, 0.5, is what this formula gives too.) Used inside the bootstrap,
    where rliable's version costs about a millisecond per task and replicate.
    """
    x = np.asarray(scores_x, dtype=float)
    y = np.asarray(scores_y, dtype=float)
    gt = (x[:, None, :] > y[None, :, :]).sum(axis=(0, 1))
    eq = (x[:, None, :] == y[None, :, :]).sum(axis=(0, 1))
    per_task = (gt + 0.5 * eq) / (x.shape[0] * y.shape[0])
    return np.mean(list(per_task))


def bootstrap_ci(values: Sequence[float], stat: Callable = np.mean, reps: int = 2000,
                 seed: int = 0, size: float = 0.95) -> Tuple[float, float]:
    """Percentile bootstrap CI of ``stat`` over ``values`` (NaN, NaN for fewer than 2 values)."""
    v = np.asarray(values, dtype=float)
    if v.size < 2:
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, v.size, size=(int(reps), v.size))
    boot = stat(v[idx], axis=1)
    lo, hi = np.percentile(boot, [100 * (1 - size) / 2, 100 * (1 + size) / 2])
    return float(lo), float(hi)


@dataclasses.dataclass
class GroupAggregate:
    """rliable aggregates of one (scale, algo) group of runs."""

    scale: str
    algo: str
    methods: List[str]
    cells: List[Tuple[str, str, str]]
    scores: Dict[str, np.ndarray]          # method -> (runs x cells) normalised final scores
    estimates: pd.DataFrame                # method, label, metric, point, lo, hi
    improvement: pd.DataFrame              # method_x, method_y, label_x, label_y, point, lo, hi
    taus: np.ndarray
    profiles: Dict[str, np.ndarray]        # method -> fraction of runs with score > tau
    profile_cis: Dict[str, np.ndarray]     # method -> (2 x len(taus))


@dataclasses.dataclass
class AggregateResult:
    groups: List[GroupAggregate]
    messages: Notes

    @property
    def estimates(self) -> pd.DataFrame:
        frames = [g.estimates.assign(scale=g.scale, algo=g.algo) for g in self.groups]
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()

    @property
    def improvement(self) -> pd.DataFrame:
        frames = [g.improvement.assign(scale=g.scale, algo=g.algo) for g in self.groups]
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def score_matrices(runs: pd.DataFrame, notes: Optional[Notes] = None,
                   column: str = "final_normalized_score"):
    """Per (scale, algo) group: methods, cells, {method: runs x cells array}.

    rliable compares methods on the same tasks and needs a rectangular runs x tasks matrix
    per method, so:

    - a cell enters only when every method of the group has normalised scores in it;
    - with unequal seed counts, a threshold t keeps the cells where every method has at least
      t seeds, and each method uses its first n_m seeds (n_m = its smallest count over the
      kept cells). t is chosen to maximise the weakest method's data (min_m n_m x cells),
      then the total number of runs, then the number of cells.

    Everything left out is reported in ``notes``; nothing is dropped silently.
    """
    notes = notes if notes is not None else Notes()
    out = []
    for (scale, algo), grp in runs.groupby(["scale", "algo"], sort=True):
        tag = f"aggregates ({scale}, {algo_label(algo)})"
        methods = order_methods(grp["method"])
        lab = {m: method_label(m, algo) for m in methods}
        all_cells = cells_of(grp)
        cells, counts = [], {}
        for c in all_cells:
            cell_runs = in_cell(grp, c)
            absent = [m for m in methods if m not in set(cell_runs["method"])]
            no_ref = [m for m in methods if m not in absent and
                      cell_runs.loc[cell_runs.method == m, column].isna().any()]
            why = []
            if absent:
                why.append(f"no runs for {', '.join(lab[m] for m in absent)}")
            if no_ref:
                why.append(f"no reference score (no normalised score) for "
                           f"{', '.join(lab[m] for m in no_ref)}")
            if why:
                notes.warn("aggregates", f"{tag}: {cell_name(*c)} left out of the normalised "
                                         f"aggregates: {'; '.join(why)}")
                continue
            cells.append(c)
            for m in methods:
                counts[(c, m)] = int((cell_runs.method == m).sum())
        if not cells:
            notes.warn("aggregates", f"{tag}: no cell has normalised scores for every method "
                                     f"({', '.join(lab.values())}); aggregates not computed")
            continue
        best = None
        for t in sorted({counts[(c, m)] for c in cells for m in methods}):
            kept = [c for c in cells if all(counts[(c, m)] >= t for m in methods)]
            if not kept:  # no cell has t seeds for every method (t=1 always keeps every cell)
                continue
            n = {m: min(counts[(c, m)] for c in kept) for m in methods}
            key = (min(n.values()) * len(kept), sum(n.values()) * len(kept), len(kept))
            if best is None or key > best[0]:
                best = (key, kept, n)
        _, kept, n = best
        dropped = [c for c in cells if c not in kept]
        if dropped:
            notes.warn("aggregates", f"{tag}: left out for too few seeds (rliable needs the same "
                       f"number of runs in every cell): "
                       + "; ".join(f"{cell_name(*c)} (" + ", ".join(
                           f"{lab[m]} {counts[(c, m)]}" for m in methods) + ")" for c in dropped))
        if len(kept) == 1:
            notes.warn("aggregates", f"{tag}: only one cell ({cell_name(*kept[0])}): the "
                                     f"aggregates summarise a single task")
        mats = {}
        for m in methods:
            per_cell = []
            for c in kept:
                sel = in_cell(grp, c)
                sel = sel[sel.method == m].sort_values("seed")
                per_cell.append(sel[column].to_numpy(float))
            if any(len(v) != n[m] for v in per_cell):
                notes.warn("aggregates", f"{tag}: {lab[m]} has different seed counts across "
                           f"cells; the aggregates use its first {n[m]} seed(s) in each cell "
                           f"(rliable needs a rectangular runs x tasks matrix)")
            if n[m] == 1:
                notes.warn("seeds", f"{tag}: {lab[m]} has one seed per cell: bootstrap CIs "
                                    f"over runs are degenerate")
            mats[m] = np.stack([v[:n[m]] for v in per_cell], axis=1)
        out.append((scale, algo, methods, kept, mats))
    return out


def default_taus(scores: Dict[str, np.ndarray], num: int = 61) -> np.ndarray:
    allv = np.concatenate([v.ravel() for v in scores.values()])
    lo = min(0.0, float(np.floor(allv.min() * 10) / 10))
    hi = max(1.0, float(np.ceil(allv.max() * 10) / 10))
    return np.linspace(lo, hi, num)


def aggregate(obj, reps: int = 2000, seed: int = 0, profile_points: int = 61,
              confidence: float = 0.95) -> AggregateResult:
    """rliable aggregates of normalised final scores across cells, per (scale, algo) group.

    For each group: interval estimates (median, IQM, mean, optimality gap; stratified
    bootstrap, percentile CIs), probability of improvement of SPIN over each baseline, and
    performance profiles (score distributions). ``np.random.seed(seed)`` is called right
    before each rliable call.
    """
    runs = as_runs(obj)
    notes = Notes()
    groups = []
    for scale, algo, methods, cells, mats in score_matrices(runs, notes):
        labels = {m: method_label(m, algo) for m in methods}
        np.random.seed(seed)
        points, cis = rly.get_interval_estimates(mats, aggregate_func, reps=reps,
                                                 confidence_interval_size=confidence)
        rows = []
        for m in methods:
            for i, name in enumerate(AGGREGATE_METRICS):
                rows.append({"method": m, "label": labels[m], "metric": name,
                             "point": float(points[m][i]), "lo": float(cis[m][0, i]),
                             "hi": float(cis[m][1, i]), "runs": mats[m].shape[0],
                             "cells": len(cells)})
        estimates = pd.DataFrame(rows)

        poi_rows = []
        spins = [m for m in methods if split_variant(m)[0] == SPIN_METHOD]  # SPIN and its variants
        if spins:
            pairs = {(x, m): (mats[x], mats[m]) for x in spins for m in methods if m not in spins}
            if pairs:
                np.random.seed(seed)
                _, poi_cis = rly.get_interval_estimates(
                    pairs, lambda x, y: np.array([probability_of_improvement_fast(x, y)]),
                    reps=reps, confidence_interval_size=confidence)
                for (mx, my), (x, y) in pairs.items():
                    poi_rows.append({"method_x": mx, "method_y": my, "label_x": labels[mx],
                                     "label_y": labels[my],
                                     "point": float(rlm.probability_of_improvement(x, y)),
                                     "lo": float(poi_cis[(mx, my)][0, 0]),
                                     "hi": float(poi_cis[(mx, my)][1, 0])})
        else:
            notes.warn("missing method", f"aggregates ({scale}, {algo_label(algo)}): no SPIN runs, "
                                         f"probability of improvement not computed")
        improvement = pd.DataFrame(poi_rows, columns=["method_x", "method_y", "label_x",
                                                      "label_y", "point", "lo", "hi"])
        taus = default_taus(mats, profile_points)
        np.random.seed(seed)
        profiles, profile_cis = rly.create_performance_profile(
            mats, taus, reps=reps, confidence_interval_size=confidence)
        groups.append(GroupAggregate(scale=scale, algo=algo, methods=methods, cells=cells,
                                     scores=mats, estimates=estimates, improvement=improvement,
                                     taus=taus, profiles=profiles, profile_cis=profile_cis))
    return AggregateResult(groups=groups, messages=notes)
