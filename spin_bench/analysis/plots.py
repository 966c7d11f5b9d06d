"""Paper-ready figures (matplotlib), PNG and PDF.

Figures are ``matplotlib.figure.Figure`` objects rendered by the Agg (PNG) and PDF canvases,
never through pyplot, so importing this module leaves the user's backend alone and nothing
opens a window.

Every figure uses the fixed method order and one colour (Okabe-Ito), marker and line style per
method. Sizes are in inches at the size they are printed (a 7-inch full-width figure, a
3.4-inch column figure), so the 8-9 pt fonts stay readable in the paper.
"""
from __future__ import annotations

import dataclasses
import math
from typing import List, Optional, Sequence

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import FuncFormatter, MaxNLocator

from spin_bench.analysis.cells import cells_of, in_cell, in_group
from spin_bench.analysis.labels import figure_styles, order_methods
from spin_bench.analysis.stats import AGGREGATE_METRICS, GroupAggregate
from spin_bench.atomic import atomic_output
from spin_bench.vocab import method_label

FULL_WIDTH = 7.0
COLUMN_WIDTH = 3.4

STYLE = {
    "font.size": 8.5, "axes.titlesize": 8.5, "axes.labelsize": 8.5, "xtick.labelsize": 7.5,
    "ytick.labelsize": 7.5, "legend.fontsize": 8, "figure.titlesize": 9.5,
    "axes.spines.top": False, "axes.spines.right": False, "axes.linewidth": 0.8,
    "lines.linewidth": 1.5, "grid.linewidth": 0.5, "grid.alpha": 0.35,
    "pdf.fonttype": 42, "ps.fonttype": 42, "savefig.dpi": 200, "figure.dpi": 100,
    "svg.hashsalt": "spin_bench",
}


def save_figure(fig, path_stem: str) -> List[str]:
    """Write ``<stem>.png`` and ``<stem>.pdf`` (no timestamps, so reruns are identical)."""
    paths = []
    with matplotlib.rc_context(STYLE):
        for ext, meta in (("png", {"Software": None}), ("pdf", {"CreationDate": None,
                                                                 "Producer": None})):
            p = f"{path_stem}.{ext}"
            with atomic_output(p) as tmp:  # write-and-rename: never through a planted link
                fig.savefig(tmp, format=ext, bbox_inches="tight", pad_inches=0.03, metadata=meta,
                            dpi=STYLE["savefig.dpi"])
            paths.append(p)
    return paths


def _steps_fmt(x, _pos=None) -> str:
    if x == 0:
        return "0"
    if abs(x) >= 1e6:
        v = x / 1e6
        return f"{v:.1f}M".replace(".0M", "M")
    if abs(x) >= 1e3:
        v = x / 1e3
        return f"{v:.0f}k" if v == int(v) else f"{v:.1f}k"
    return f"{x:.0f}"


def _legend_handles(methods: Sequence[str], algo: str, extra: Sequence = ()) -> List:
    styles = figure_styles(methods)
    hs = [Line2D([], [], color=styles[m][0], marker=styles[m][1], markersize=4.5,
                 linestyle=styles[m][2], label=method_label(m, algo)) for m in methods]
    return hs + list(extra)


def legend_columns(handles: Sequence, width: float = FULL_WIDTH) -> int:
    """Columns for a legend above a figure `width` inches wide: as many entries per row as fit
    (about 17 characters of legend text per inch, with ~6 for each entry's line and marker)."""
    longest = max((len(h.get_label()) for h in handles), default=1)
    return max(1, min(len(handles), int(width * 17) // (longest + 6)))


def plot_interval_estimates(agg: GroupAggregate, path_stem: str) -> List[str]:
    """Median, IQM, mean and optimality gap with 95% stratified-bootstrap CIs."""
    methods = agg.methods
    styles = figure_styles(methods)
    with matplotlib.rc_context(STYLE):
        fig = Figure(figsize=(FULL_WIDTH, 0.75 + 0.3 * len(methods)), layout="constrained")
        axes = fig.subplots(1, len(AGGREGATE_METRICS))
        est = agg.estimates
        for j, (ax, metric) in enumerate(zip(axes, AGGREGATE_METRICS)):
            for i, m in enumerate(methods):
                r = est[(est.method == m) & (est.metric == metric)].iloc[0]
                y = len(methods) - 1 - i      # first method on top
                ax.barh(y, r.hi - r.lo, left=r.lo, height=0.6, color=styles[m][0], alpha=0.75)
                ax.vlines(r.point, y - 0.3, y + 0.3, color="black", linewidth=1.4)
            ax.set_yticks(range(len(methods)))
            ax.set_yticklabels([method_label(m, agg.algo) for m in reversed(methods)]
                               if j == 0 else [])
            ax.tick_params(axis="y", length=0)
            ax.set_title(metric)
            ax.xaxis.set_major_locator(MaxNLocator(nbins=4))
            ax.grid(axis="x")
            ax.spines["left"].set_visible(False)
            ax.set_ylim(-0.6, len(methods) - 0.4)
        fig.supxlabel("Normalised score (optimality gap: lower is better)", fontsize=8.5)
    return save_figure(fig, path_stem)


def plot_performance_profile(agg: GroupAggregate, path_stem: str) -> List[str]:
    """Fraction of runs with normalised score > tau, with 95% CI bands."""
    with matplotlib.rc_context(STYLE):
        fig = Figure(figsize=(COLUMN_WIDTH, 2.5), layout="constrained")
        ax = fig.subplots()
        styles = figure_styles(agg.methods)
        for m in agg.methods:
            prof, ci = agg.profiles[m], agg.profile_cis[m]
            colour, marker, linestyle = styles[m]
            ax.plot(agg.taus, prof, color=colour, linestyle=linestyle, marker=marker,
                    markevery=max(1, len(agg.taus) // 8), markersize=3.5, label=method_label(m, agg.algo))
            ax.fill_between(agg.taus, ci[0], ci[1], color=colour, alpha=0.18, linewidth=0)
        ax.set_xlabel(r"Normalised score $\tau$")
        ax.set_ylabel(r"Fraction of runs with score $>\tau$")
        ax.set_ylim(-0.02, 1.02)
        ax.set_xlim(agg.taus[0], agg.taus[-1])
        ax.grid(True)
        ax.legend(frameon=False, loc="lower left")
    return save_figure(fig, path_stem)


def plot_probability_of_improvement(agg: GroupAggregate, path_stem: str) -> Optional[List[str]]:
    """P(SPIN > baseline) with 95% CIs; 0.5 marks no difference."""
    fig = probability_of_improvement_figure(agg)
    return None if fig is None else save_figure(fig, path_stem)


def probability_of_improvement_figure(agg: GroupAggregate) -> Optional[Figure]:
    """The figure of plot_probability_of_improvement: per baseline the CI as a bar, the point as a
    marker and the numbers beside it, so a CI of [0, 0] (no run of SPIN beats any baseline run)
    still shows; None without comparisons."""
    poi = agg.improvement
    if poi.empty:
        return None
    labels = [f"P({r.label_x} > {r.label_y})" for r in poi.itertuples()]
    # a column figure unless the labels (variants: 'P(SPIN [ASM 100 ep, ...] > SAINT)') leave
    # the axes no room in it; then the full width
    width = COLUMN_WIDTH if max(map(len, labels)) <= 24 else FULL_WIDTH
    with matplotlib.rc_context(STYLE):
        fig = Figure(figsize=(width, 0.6 + 0.36 * len(poi)), layout="constrained")
        ax = fig.subplots()
        styles = figure_styles(list(poi.method_y))
        for i, r in enumerate(poi.itertuples()):
            y = len(poi) - 1 - i
            ax.barh(y, r.hi - r.lo, left=r.lo, height=0.55, color=styles[r.method_y][0],
                    alpha=0.75)
            ax.vlines(r.point, y - 0.28, y + 0.28, color="black", linewidth=1.4)
            ax.plot([r.point], [y], marker="o", markersize=4.5, markerfacecolor="white",
                    markeredgecolor="black", markeredgewidth=0.8, linestyle="none", clip_on=False)
            ax.text(1.06, y, f"{r.point:.2f} [{r.lo:.2f}, {r.hi:.2f}]", va="center", ha="left",
                    fontsize=7, transform=ax.get_yaxis_transform())
        ax.axvline(0.5, color="0.3", linestyle="--", linewidth=0.9)
        ax.set_yticks(range(len(poi)))
        ax.set_yticklabels(labels[::-1])
        ax.tick_params(axis="y", length=0)
        ax.spines["left"].set_visible(False)
        ax.set_xlim(-0.04, 1.04)  # a point or CI at 0 or 1 stays inside the axes
        ax.set_ylim(-0.6, len(poi) - 0.4)
        ax.set_xlabel("Probability of improvement")
        ax.grid(axis="x")
    return fig


def _interp_on_grid(xs: List[np.ndarray], ys: List[np.ndarray], grid: np.ndarray) -> np.ndarray:
    """runs x grid matrix; NaN outside each run's own x range (no extrapolation)."""
    out = np.full((len(xs), len(grid)), np.nan)
    for i, (x, y) in enumerate(zip(xs, ys)):
        inside = (grid >= x[0]) & (grid <= x[-1])
        out[i, inside] = np.interp(grid[inside], x, y)
    return out


def mean_and_ci(mat: np.ndarray, reps: int = 1000, seed: int = 0, size: float = 0.95):
    """Mean over runs (rows) per column with a percentile bootstrap CI over runs (NaN-aware)."""
    n = mat.shape[0]
    with np.errstate(invalid="ignore"):
        import warnings
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            mean = np.nanmean(mat, axis=0)
            if n < 2:
                return mean, np.full_like(mean, np.nan), np.full_like(mean, np.nan)
            rng = np.random.default_rng(seed)
            idx = rng.integers(0, n, size=(reps, n))
            boot = np.nanmean(mat[idx], axis=1)            # reps x grid
            lo = np.nanpercentile(boot, 100 * (1 - size) / 2, axis=0)
            hi = np.nanpercentile(boot, 100 * (1 + size) / 2, axis=0)
    count = np.sum(~np.isnan(mat), axis=0)
    lo[count < 2] = np.nan
    hi[count < 2] = np.nan
    return mean, lo, hi


def grid_shape(n: int, max_cols: int = 4) -> tuple:
    """(rows, columns) for n panels: one row up to max_cols, else the column count (3 or more)
    that leaves the fewest empty slots, then the fewest rows."""
    if n <= max_cols:
        return 1, max(n, 1)
    best = min(range(3, max_cols + 1), key=lambda c: (-n % c, math.ceil(n / c)))
    return math.ceil(n / best), best


def common_range(xs: Sequence[np.ndarray]) -> Optional[tuple]:
    """(start, end) of the x range every run covers, or None when the runs' ranges do not
    overlap (e.g. training clocks of seeds whose ASM pre-training took very different times)."""
    x0, x1 = max(float(v[0]) for v in xs), min(float(v[-1]) for v in xs)
    return (x0, x1) if x1 > x0 else None


@dataclasses.dataclass
class SampleEfficiency:
    """A sample-efficiency figure and the (cell, method) pairs drawn one line per seed."""

    figure: Figure
    per_seed: List[tuple]


def plot_sample_efficiency(evals: pd.DataFrame, runs: pd.DataFrame, scale: str, algo: str,
                           path_stem: str, x: str = "step", targets: Optional[pd.DataFrame] = None,
                           reps: int = 1000, seed: int = 0, ncols: int = 4) -> Optional[List[str]]:
    """Normalised score (raw return where a cell has no reference scores) vs gradient steps
    (x='step') or training minutes (x='train_min'), one panel per cell (sample_efficiency_figure)."""
    se = sample_efficiency_figure(evals, runs, scale, algo, x, targets, reps, seed, ncols)
    return None if se is None else save_figure(se.figure, path_stem)


def sample_efficiency_figure(evals: pd.DataFrame, runs: pd.DataFrame, scale: str, algo: str,
                             x: str = "step", targets: Optional[pd.DataFrame] = None,
                             reps: int = 1000, seed: int = 0, ncols: int = 4) -> Optional[SampleEfficiency]:
    """One panel per cell: the mean over seeds with a 95% bootstrap band, on the x range every
    seed covers; where the seeds' ranges do not overlap (training clocks), one thin line per
    seed instead, and the pair is listed in ``per_seed``. Normalised score where the cell has
    reference scores, raw return otherwise; the dashed line is the time-to-target target. A grid
    slot without a cell holds the legend, so no panel is left empty."""
    g_runs = in_group(runs, scale, algo)
    if g_runs.empty:
        return None
    g_ev = in_group(evals, scale, algo)
    by_run = {d: e for d, e in g_ev.groupby("run_dir", sort=False)}
    methods = order_methods(g_runs["method"])
    styles = figure_styles(methods)
    cells = cells_of(g_runs)
    show_bins = len({c[1] for c in cells}) > 1
    n = len(cells)
    nrows, ncols = grid_shape(n, ncols)
    width = FULL_WIDTH if ncols > 1 else COLUMN_WIDTH
    per_seed: List[tuple] = []
    with matplotlib.rc_context(STYLE):
        fig = Figure(figsize=(width, 0.6 + 1.55 * nrows), layout="constrained")
        axes = fig.subplots(nrows, ncols, squeeze=False)
        kinds = set()
        for k, c in enumerate(cells):
            ax = axes[k // ncols][k % ncols]
            cell_runs = in_cell(g_runs, c)
            refs = cell_runs[["reference_expert", "reference_random"]].drop_duplicates()
            normalised = bool(cell_runs["has_reference"].all()) and len(refs) == 1
            ycol = "normalized_score" if normalised else "return_mean"
            kinds.add(ycol)
            for m in methods:
                mr = cell_runs[cell_runs.method == m]
                if mr.empty:
                    continue
                xs, ys = [], []
                for d in mr["run_dir"]:
                    e = by_run[d]
                    xs.append(e[x].to_numpy(float))
                    ys.append(e[ycol].to_numpy(float))
                col, marker, linestyle = styles[m]
                # The mean only where every seed has data (a mean over a changing set of seeds
                # jumps); seeds with no common range are drawn one by one.
                span = common_range(xs)
                if span is None:
                    per_seed.append((c, m))
                    for xv, yv in zip(xs, ys):
                        ax.plot(xv, yv, color=col, linestyle=linestyle, linewidth=0.8,
                                marker=marker, markevery=max(1, len(xv) // 5),
                                markersize=2.4, alpha=0.85)
                    continue
                if x == "step":
                    grid = np.unique(np.concatenate(xs))
                    grid = grid[(grid >= span[0]) & (grid <= span[1])]
                else:
                    grid = np.linspace(span[0], span[1], 150)
                mat = _interp_on_grid(xs, ys, grid)
                mean, lo, hi = mean_and_ci(mat, reps=reps, seed=seed)
                ax.plot(grid, mean, color=col, linestyle=linestyle, linewidth=1.3,
                        marker=marker, markevery=max(1, len(grid) // 5),
                        markersize=3.2)
                ax.fill_between(grid, lo, hi, color=col, alpha=0.18, linewidth=0)
            if targets is not None and not targets.empty:
                t = in_cell(targets, (scale, algo, *c))
                if t.empty or not np.isfinite(t["target"].iloc[0]):
                    ax.text(0.97, 0.04, f"no target (no {method_label('f', algo)})",
                            transform=ax.transAxes, ha="right", va="bottom", fontsize=7,
                            color="0.35")
                else:
                    tv = float(t["target"].iloc[0])
                    if normalised:
                        e_, r_ = refs.iloc[0]
                        tv = (tv - r_) / (e_ - r_)
                    ax.axhline(tv, color="0.35", linestyle=(0, (3, 2)), linewidth=0.9, zorder=0)
            title = f"{c[0]}" + (f", {c[1]} bins" if show_bins else "") + f"\n{c[2]}"
            ax.set_title(title, pad=3, linespacing=1.1)
            ax.grid(True)
            ax.xaxis.set_major_locator(MaxNLocator(nbins=4))
            ax.yaxis.set_major_locator(MaxNLocator(nbins=4))
            if x == "step":
                ax.xaxis.set_major_formatter(FuncFormatter(_steps_fmt))
            if any(pc == c for pc, _ in per_seed):
                ax.text(0.03, 0.96, "thin lines: one per seed\n(seeds' clocks do not overlap)",
                        transform=ax.transAxes, ha="left", va="top", fontsize=6.5, color="0.35")
            if len(kinds) > 1 or k % ncols == 0:
                ax.set_ylabel("Normalised score" if normalised else "Return")
        xlabel = ("Gradient steps" if x == "step"
                  else "Training time (min; SPIN includes ASM pre-training)")
        fig.supxlabel(xlabel, fontsize=8.5)
        extra = [Line2D([], [], color="0.35", linestyle=(0, (3, 2)), linewidth=0.9,
                        label="target")] if targets is not None else []
        handles = _legend_handles(methods, algo, extra)
        if n < nrows * ncols:  # the first free slot holds the legend; the others (if any) stay hidden
            for k in range(n, nrows * ncols):
                axes[k // ncols][k % ncols].axis("off")
            axes[n // ncols][n % ncols].legend(handles=handles, loc="center", frameon=False)
        else:
            fig.legend(handles=handles, loc="outside upper center", ncol=legend_columns(handles, width),
                       frameon=False)
        fig.get_layout_engine().set(h_pad=0.03, w_pad=0.03, hspace=0.04, wspace=0.03)
    return SampleEfficiency(figure=fig, per_seed=per_seed)
