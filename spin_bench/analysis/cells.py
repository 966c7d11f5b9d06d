"""The report's cells: which rows of a frame belong to one (scale, algo) group or one cell.

A cell is (scale, algo, task, bins, level); inside a frame already cut to one (scale, algo)
group it is named by its last three parts, (task, bins, level). Every analysis filter goes
through these helpers, so "the rows of a cell" is written once.
"""
from __future__ import annotations

from functools import reduce
from typing import List, Optional, Sequence

import pandas as pd

from spin_bench.analysis.labels import cell_sort_key

CELL = ["scale", "algo", "task", "bins", "level"]
GROUP = CELL[:2]       # (scale, algo): one section of the report
CELL_IN_GROUP = CELL[2:]  # (task, bins, level): one cell within a group


def _matching(df: pd.DataFrame, columns: Sequence[str], values: Sequence) -> pd.DataFrame:
    """The rows of ``df`` where every column equals its value (row order kept)."""
    return df[reduce(lambda a, b: a & b, (df[c] == v for c, v in zip(columns, values)))]


def in_cell(df: pd.DataFrame, cell: Sequence, columns: Optional[Sequence[str]] = None) -> pd.DataFrame:
    """The rows of one cell: ``cell`` is (scale, algo, task, bins, level), or (task, bins, level)
    in a frame of one group; ``columns`` names them otherwise (default: the last len(cell) of
    :data:`CELL`)."""
    cols = list(columns) if columns is not None else CELL[len(CELL) - len(cell):]
    if len(cols) != len(cell):
        raise ValueError(f"cell {tuple(cell)!r} does not match the columns {cols}")
    return _matching(df, cols, cell)


def in_group(df: pd.DataFrame, scale: str, algo: str) -> pd.DataFrame:
    """The rows of one (scale, algo) group."""
    return _matching(df, GROUP, (scale, algo))


def cells_of(df: pd.DataFrame) -> List[tuple]:
    """The (task, bins, level) cells present in ``df``, in the report's order."""
    return sorted({(r.task, r.bins, r.level) for r in df.itertuples()}, key=cell_sort_key)
