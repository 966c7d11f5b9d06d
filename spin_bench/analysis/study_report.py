"""The report's section on SPIN's pre-training budget (:mod:`spin_bench.analysis.study`): its
table (markdown and LaTeX), ``spin_budget.csv``, and two figures: final return against ASM
epochs with the baselines' CIs as bands, and the ASM probe against epochs."""
from __future__ import annotations

import os
from typing import Dict, List, Tuple

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from spin_bench.analysis.labels import SPIN_METHOD, cell_name, method_color
from spin_bench.analysis.plots import FULL_WIDTH, save_figure
from spin_bench.analysis.render import Table, Text, fmt_num, tex_escape, to_latex, to_markdown
from spin_bench.analysis.cells import CELL, in_cell
from spin_bench.analysis.study import baselines, spin_budget, spin_rows

FROZEN_STYLE = dict(color=method_color(SPIN_METHOD), marker="D", linestyle="-")
TUNED_STYLE = dict(color="#CC79A7", marker="o", linestyle="--")


def _cells(budget: pd.DataFrame) -> List[tuple]:
    return list(dict.fromkeys(tuple(r) for r in budget[CELL].itertuples(index=False)))


def _title(cell: tuple) -> str:
    """Task over level, so three panels side by side keep their titles apart."""
    return cell_name(cell[2], cell[3], cell[4], show_bins=False).replace(" / ", "\n")


def _grid(n: int, rows: int = 1, height: float = 2.6):
    cols = min(3, n)
    fig = Figure(figsize=(FULL_WIDTH, height * rows * (1 if n <= 3 else 2)), constrained_layout=True)
    axes = fig.subplots(rows * (1 if n <= 3 else 2), cols, squeeze=False)
    return fig, axes, cols


def _epoch_axis(ax, epochs) -> None:
    ticks = sorted({float(e) for e in epochs if np.isfinite(e)})
    ax.set_xscale("log")
    ax.set_xticks(ticks)
    ax.set_xticklabels([f"{t:g}" for t in ticks])
    ax.minorticks_off()
    ax.set_xlabel("ASM pre-training epochs")


def _figure_legend(fig, axes, ncol: int) -> None:
    """One legend below the panels with every label any panel drew, in first-drawn order (a
    variant missing from the first cell still gets its entry)."""
    seen: Dict[str, object] = {}
    for ax in axes.flat:
        for handle, label in zip(*ax.get_legend_handles_labels()):
            seen.setdefault(label, handle)
    if seen:
        fig.legend(list(seen.values()), list(seen), loc="outside lower center",
                   ncol=min(ncol, len(seen)), frameon=False)


def plot_spin_budget(budget: pd.DataFrame, bands: pd.DataFrame, path_stem: str) -> List[str]:
    """Final return (mean, 95% CI over seeds) against ASM epochs, frozen and fine-tuned SPIN,
    one panel per cell; the baselines' means and CIs as horizontal bands."""
    cells = _cells(budget)
    fig, axes, cols = _grid(len(cells))
    for k, cell in enumerate(cells):
        ax = axes[k // cols][k % cols]
        b = in_cell(budget, cell)
        for _, r in in_cell(bands, cell).iterrows():
            c = method_color(r["method"])
            if np.isfinite(r["lo"]):
                ax.axhspan(r["lo"], r["hi"], color=c, alpha=0.15, lw=0)
            ax.axhline(r["mean"], color=c, lw=1.0, label=f"{r['label']} (95% CI)")
        for tuned, style, name in ((False, FROZEN_STYLE, "SPIN, frozen ASM"),
                                   (True, TUNED_STYLE, "SPIN, fine-tuned")):
            s = b[b["fine_tuned"] == tuned].sort_values("asm_epochs")
            if s.empty:
                continue
            err = np.vstack([s["mean"] - s["lo"], s["hi"] - s["mean"]])
            err = np.where(np.isfinite(err), err, 0.0)
            ax.errorbar(s["asm_epochs"], s["mean"], yerr=err, capsize=2.5, ms=4, label=name, **style)
        _epoch_axis(ax, b["asm_epochs"])
        ax.set_title(_title(cell))
        ax.set_ylabel("Final return")
        ax.grid(True)
    for k in range(len(cells), axes.size):
        axes[k // cols][k % cols].set_visible(False)
    _figure_legend(fig, axes, ncol=4)
    return save_figure(fig, path_stem)


def plot_asm_probe(runs: pd.DataFrame, budget: pd.DataFrame, path_stem: str) -> List[str]:
    """The pre-trained ASM's probe against its epochs, per cell: masked accuracy and exact joint
    match (top), the structure measure in nats per slot (bottom); each seed a point, the mean a line."""
    cells = _cells(budget)
    spin = spin_rows(runs)
    cols = min(3, len(cells))
    fig = Figure(figsize=(FULL_WIDTH, 4.2), constrained_layout=True)
    axes = fig.subplots(2, cols, squeeze=False, sharex="col")
    for k, cell in enumerate(cells[:cols]):
        s = in_cell(spin, cell).dropna(subset=["asm_epochs"])
        top, bottom = axes[0][k], axes[1][k]
        for ax, metrics in ((top, (("asm_masked_accuracy", "masked accuracy", "-"),
                                   ("asm_exact_match", "exact joint match", ":"))),
                            (bottom, (("asm_structure", "structure (nats/slot)", "-"),))):
            for col, name, ls in metrics:
                v = s.dropna(subset=[col])
                if v.empty:
                    continue
                ax.scatter(v["asm_epochs"], v[col], s=10, color=FROZEN_STYLE["color"], alpha=0.6)
                mean = v.groupby("asm_epochs")[col].mean()
                ax.plot(mean.index, mean.to_numpy(), ls, color=FROZEN_STYLE["color"], label=name)
            ax.grid(True)
        top.set_title(_title(cell))
        top.set_ylabel("ASM probe")
        bottom.set_ylabel("Structure (nats/slot)")
        _epoch_axis(bottom, s["asm_epochs"])
    _figure_legend(fig, axes, ncol=3)
    return save_figure(fig, path_stem)


def budget_section(runs: pd.DataFrame, out_dir: str, reps: int, seed: int, figures: bool
                   ) -> Tuple[List[str], List[str], List[str]]:
    """(markdown lines, LaTeX lines, files written) of the section."""
    budget = spin_budget(runs, reps=reps, seed=seed)
    bands = baselines(runs, budget, reps=reps, seed=seed)
    files = [os.path.join(out_dir, "spin_budget.csv")]
    budget.to_csv(files[0], index=False, float_format="%.6g")
    rows = []
    for cell in _cells(budget):
        base = "; ".join(f"{r.label} {fmt_num(r.mean, 1)} [{fmt_num(r.lo, 1)}, {fmt_num(r.hi, 1)}]"
                         for r in in_cell(bands, cell).itertuples())
        for r in in_cell(budget, cell).itertuples():
            rows.append([Text(f"{cell[2]} / {cell[4]}"), Text(r.label), fmt_num(r.asm_epochs, 0),
                         "fine-tuned" if r.fine_tuned else "frozen", str(r.n),
                         f"{fmt_num(r.mean, 1)} [{fmt_num(r.lo, 1)}, {fmt_num(r.hi, 1)}]",
                         fmt_num(r.pretrain_min, 1), fmt_num(r.masked_accuracy, 3), fmt_num(r.exact_match, 3),
                         fmt_num(r.structure, 3), Text(base)])
    table = Table([Text(h) for h in ("Cell", "SPIN", "ASM epochs", "Encoder", "n", "Final return [95% CI]",
                                     "Pre-training min", "Masked acc.", "Exact match", "Structure (nats/slot)",
                                     "Baselines [95% CI]")], rows,
                  ["l", "l", "r", "l", "r", "r", "r", "r", "r", "r", "l"])
    md = ["## SPIN's pre-training budget\n",
          "SPIN's configurations side by side: ASM pre-training epochs, and whether the ASM-initialised "
          "encoder stayed frozen or was fine-tuned with the policy. Final return: mean over seeds "
          "[95% bootstrap CI]. The probe is the pre-trained ASM's, on 4096 dataset rows (mean over seeds): "
          "masked accuracy while training, leave-one-out exact joint match, and the structure measure "
          "NLL(a_i | s) - NLL(a_i | s, a_-i) in nats per slot (docs/report.md). Pre-training minutes are "
          "part of each run's training clock (its time to target in minutes includes them).\n",
          to_markdown(table) + "\n"]
    tex = [to_latex(table, tex_escape("SPIN's pre-training budget: final return [95% CI] and the ASM probe"),
                    "tab:spin-budget", wide=True)]
    if figures and not budget.empty:
        for name, fn, args in (("spin_budget", plot_spin_budget, (budget, bands)),
                               ("asm_probe", plot_asm_probe, (runs, budget))):
            paths = fn(*args, os.path.join(out_dir, name))
            files.extend(paths)
            png = os.path.basename(paths[0])
            md.append(f"![{name}]({png})\n")
    return md, tex, files
