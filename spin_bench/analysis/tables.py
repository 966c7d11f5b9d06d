"""The per-cell results table (the paper's presentation) and its paper comparison."""
from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd

from spin_bench.analysis.cells import cells_of, in_cell
from spin_bench.analysis.labels import cell_name, method_sort_key, order_methods
from spin_bench.analysis.loading import as_runs
from spin_bench.analysis.notes import Notes
from spin_bench.analysis.reference import paper_returns
from spin_bench.analysis.stats import bootstrap_ci
from spin_bench.vocab import method_label

CELL = ["scale", "algo", "task", "bins", "level"]
TABLE_COLUMNS = CELL + ["method", "label", "n", "mean", "std", "lo", "hi", "best",
                        "best_return_mean", "paper_mean", "paper_std", "paper_source"]


@dataclasses.dataclass
class CellTable:
    """Long format: one row per (scale, algo, task, bins, level, method).

    mean/std: final return over seeds (std: sample standard deviation, ddof=1); lo/hi: 95%
    percentile bootstrap CI of the mean; best: the highest mean of its row at the displayed
    precision (ties are all marked); paper_*: the paper's number for the cell if it has one.
    """

    frame: pd.DataFrame
    messages: Notes
    precision: int

    def wide(self, stat: str = "mean") -> pd.DataFrame:
        """Rows: cells; columns: method labels in the fixed order."""
        f = self.frame
        order = sorted(f["label"].unique(),
                       key=lambda lab: method_sort_key(f.loc[f.label == lab, "method"].iloc[0]))
        return f.pivot_table(index=CELL, columns="label", values=stat, sort=False)[order]


def per_cell_table(obj, reps: int = 2000, seed: int = 0, precision: int = 1,
                   value: str = "final_return") -> CellTable:
    """Final return per (task, bins, level, algo) cell and method: mean ± std, CI, seeds, best."""
    runs = as_runs(obj)
    notes = Notes()
    paper = paper_returns().set_index(["task", "bins", "level", "algo", "method"])
    rows = []
    for (scale, algo), grp in runs.groupby(["scale", "algo"], sort=True):
        methods = order_methods(grp["method"])
        cells = cells_of(grp)
        for c in cells:
            cell_runs = in_cell(grp, c)
            name = f"{cell_name(*c)} ({scale})"
            present = order_methods(cell_runs["method"])
            missing = [m for m in methods if m not in present]
            if missing:
                notes.warn("missing method", f"{name}: no runs for "
                           f"{', '.join(method_label(m, algo) for m in missing)}")
            cell_rows = []
            for m in present:
                v = cell_runs[cell_runs.method == m].sort_values("seed")
                vals = v[value].to_numpy(float)
                n = len(vals)
                if n == 1:
                    notes.warn("seeds", f"{name}: {method_label(m, algo)} has one seed: no std "
                                        f"or CI")
                lo, hi = bootstrap_ci(vals, np.mean, reps, seed)
                key = (c[0], c[1], c[2], algo, m)
                pm = paper.loc[key] if key in paper.index else None
                cell_rows.append({
                    "scale": scale, "algo": algo, "task": c[0], "bins": c[1], "level": c[2],
                    "method": m, "label": method_label(m, algo), "n": n,
                    "mean": float(np.mean(vals)),
                    "std": float(np.std(vals, ddof=1)) if n > 1 else float("nan"),
                    "lo": lo, "hi": hi, "best": False,
                    "best_return_mean": float(v["best_return"].mean()),
                    "paper_mean": float(pm["mean"]) if pm is not None else float("nan"),
                    "paper_std": float(pm["std"]) if pm is not None else float("nan"),
                    "paper_source": str(pm["source"]) if pm is not None else "",
                })
            shown = [round(r["mean"], precision) for r in cell_rows]
            top = max(shown)
            winners = [r for r, s in zip(cell_rows, shown) if s == top]
            for r in winners:
                r["best"] = True
            if len(winners) > 1:
                notes.warn("tie", f"{name}: tie for the best final return "
                           f"({top:.{precision}f}) between "
                           f"{', '.join(r['label'] for r in winners)}; all are marked")
            rows.extend(cell_rows)
    return CellTable(frame=pd.DataFrame(rows, columns=TABLE_COLUMNS), messages=notes,
                     precision=precision)
