"""The paper's published numbers (package data under ``reference/``), as tidy frames.

- Table 1: raw return, mean and std over 5 seeds, IQL, 3 bins, 4 tasks x 4 levels.
- Table 2: dog-trot medium-expert, IQL, by bins (3, 10, 30); its last column is Table 6,
  the time to target in minutes for the same cells.
- Table 5: minutes to reach 95% of F-IQL's asymptote (one NVIDIA A40), IQL, 3 bins.
- the expert/random returns of the published datasets (the task registry's own table,
  ``spin_bench/envs/published_reference_scores.csv``).

Everything returned here is labelled with its source so that reports can show it as
"paper", never as ours.
"""
from __future__ import annotations

import functools
import os

import pandas as pd

from spin_bench.envs.registry import PUBLISHED_REFERENCE_CSV
from spin_bench.vocab import actor_methods, method_label

REFERENCE_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "reference")
PAPER = "Landers et al., ICLR 2026"

_LABEL_TO_METHOD = {method_label(m, "iql"): m for m in actor_methods(builtin_only=True)}  # the paper's names: F-IQL -> f, ...


def _read(name: str) -> pd.DataFrame:
    path = name if os.path.isabs(name) else os.path.join(REFERENCE_DIR, name)
    return pd.read_csv(path, comment="#")


@functools.lru_cache(maxsize=None)
def _paper_returns() -> pd.DataFrame:
    t1 = _read("paper_table1_returns.csv")
    t1 = t1.assign(bins="3", source="Table 1")
    t2 = _read("paper_table2_dog_bins.csv")
    t2 = t2.assign(task="dog-trot", level="medium-expert", bins=t2["bins"].astype(int).astype(str),
                   source="Table 2")
    df = pd.concat([t1[["task", "bins", "level", "method", "mean", "std", "source"]],
                    t2[["task", "bins", "level", "method", "mean", "std", "source"]]],
                   ignore_index=True)
    df["method"] = df["method"].map(_LABEL_TO_METHOD)
    df["algo"] = "iql"
    return df[["task", "bins", "level", "algo", "method", "mean", "std", "source"]]


def paper_returns() -> pd.DataFrame:
    """Paper Tables 1 and 2: task, bins, level, algo, method, mean, std, source."""
    return _paper_returns().copy()


@functools.lru_cache(maxsize=None)
def _paper_time_to_target() -> pd.DataFrame:
    t5 = _read("paper_table5_time_to_target.csv")
    t5 = t5.melt(id_vars=["level", "task"], var_name="method", value_name="minutes")
    t5 = t5.assign(bins="3", source="Table 5")
    t6 = _read("paper_table2_dog_bins.csv")
    t6 = t6.assign(task="dog-trot", level="medium-expert", bins=t6["bins"].astype(int).astype(str),
                   minutes=t6["time_to_target_min"], source="Table 6")
    cols = ["task", "bins", "level", "method", "minutes", "source"]
    df = pd.concat([t5[cols], t6[cols]], ignore_index=True)
    df["method"] = df["method"].map(_LABEL_TO_METHOD)
    df["algo"] = "iql"
    return df[["task", "bins", "level", "algo", "method", "minutes", "source"]]


def paper_time_to_target() -> pd.DataFrame:
    """Paper Tables 5 and 6 (minutes, one A40): task, bins, level, algo, method, minutes, source."""
    return _paper_time_to_target().copy()


@functools.lru_cache(maxsize=None)
def _published_reference_scores() -> pd.DataFrame:
    df = _read(PUBLISHED_REFERENCE_CSV)
    df["bins"] = df["bins"].astype(int).astype(str)
    return df


def published_reference_scores() -> pd.DataFrame:
    """Expert/random returns of the published datasets: task, bins, expert, random."""
    return _published_reference_scores().copy()
