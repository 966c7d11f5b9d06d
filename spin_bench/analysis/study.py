"""SPIN's pre-training budget: final return, ASM probe and structure measure against ASM
epochs, frozen or fine-tuned, beside the cell's baselines (the SPIN study's tables).

Pure functions over the runs frame of :func:`spin_bench.analysis.loading.load_runs`; the
figures are in :mod:`spin_bench.analysis.study_plots`."""
from __future__ import annotations

import math
from typing import List

import numpy as np
import pandas as pd

from spin_bench.analysis.cells import CELL
from spin_bench.analysis.labels import SPIN_METHOD, cell_sort_key, method_sort_key
from spin_bench.analysis.stats import bootstrap_ci
from spin_bench.vocab import split_variant

BUDGET_COLUMNS = CELL + ["method", "label", "asm_epochs", "fine_tuned", "n", "mean", "lo", "hi",
                         "pretrain_min", "total_min", "masked_accuracy", "exact_match", "structure"]
BASELINE_COLUMNS = CELL + ["method", "label", "n", "mean", "lo", "hi"]
BAND_METHODS = ("f", "saint")  # the baselines drawn as bands: F-IQL and SAINT


def spin_rows(df: pd.DataFrame) -> pd.DataFrame:
    """The rows of SPIN and of its configuration variants."""
    return df[[split_variant(m)[0] == SPIN_METHOD for m in df["method"]]]


def has_budget_axis(runs: pd.DataFrame) -> bool:
    """Whether some cell holds SPIN runs of more than one (ASM epochs, fine-tuned) setting."""
    spin = spin_rows(runs)
    if spin.empty:
        return False
    keys = spin.assign(e=spin["asm_epochs"].fillna(-1.0))
    return bool((keys.groupby(CELL)[["e", "asm_fine_tuned"]].apply(
        lambda g: len(g.drop_duplicates())) > 1).any())


def spin_budget(runs: pd.DataFrame, reps: int = 2000, seed: int = 0) -> pd.DataFrame:
    """One row per (cell, SPIN configuration): final return mean and 95% bootstrap CI over seeds,
    minutes (pre-training and the whole training clock), and the mean ASM probe (masked
    accuracy, exact joint match, structure = NLL(a_i|s) - NLL(a_i|s,a_-i) in nats per slot)."""
    rows: List[dict] = []
    spin = spin_rows(runs)
    for cell, grp in spin.groupby(CELL, sort=False):
        for method, g in grp.groupby("method", sort=False):
            vals = g.sort_values("seed")["final_return"].to_numpy(float)
            lo, hi = bootstrap_ci(vals, np.mean, reps, seed)
            epochs = g["asm_epochs"].dropna().unique()
            rows.append(dict(zip(CELL, cell), method=method, label=g["label"].iloc[0],
                             asm_epochs=float(epochs[0]) if len(epochs) == 1 else math.nan,
                             fine_tuned=bool(g["asm_fine_tuned"].iloc[0]), n=len(vals),
                             mean=float(vals.mean()), lo=lo, hi=hi,
                             pretrain_min=float(g["pretrain_min"].mean()),
                             total_min=float(g["total_train_min"].mean()),
                             masked_accuracy=float(g["asm_masked_accuracy"].mean()),
                             exact_match=float(g["asm_exact_match"].mean()),
                             structure=float(g["asm_structure"].mean())))
    return _sorted(pd.DataFrame(rows, columns=BUDGET_COLUMNS), ["fine_tuned", "asm_epochs"])


def baselines(runs: pd.DataFrame, cells: pd.DataFrame, reps: int = 2000, seed: int = 0,
              methods=BAND_METHODS) -> pd.DataFrame:
    """The final return (mean, 95% bootstrap CI) of each baseline method in the given cells."""
    rows: List[dict] = []
    keys = {tuple(r) for r in cells[CELL].itertuples(index=False)}
    for key, g in runs.groupby(CELL + ["method"], sort=False):
        cell, method = tuple(key[:-1]), key[-1]
        if cell not in keys or method not in methods:
            continue
        vals = g.sort_values("seed")["final_return"].to_numpy(float)
        lo, hi = bootstrap_ci(vals, np.mean, reps, seed)
        rows.append(dict(zip(CELL, cell), method=method, label=g["label"].iloc[0], n=len(vals),
                         mean=float(vals.mean()), lo=lo, hi=hi))
    return _sorted(pd.DataFrame(rows, columns=BASELINE_COLUMNS), [])


def _sorted(df: pd.DataFrame, extra: List[str]) -> pd.DataFrame:
    if df.empty:
        return df.reset_index(drop=True)
    df = df.assign(_c=[cell_sort_key((t, b, lv)) for t, b, lv in zip(df["task"], df["bins"], df["level"])],
                   _m=df["method"].map(method_sort_key))
    return df.sort_values(["scale", "algo", "_c"] + extra + ["_m"], kind="stable").drop(
        columns=["_c", "_m"]).reset_index(drop=True)
