"""Task registry: the benchmark tasks (named in :mod:`spin_bench.vocab`) and their reference returns.

Reference returns feed the normalised score  (R - random) / (expert - random).
The published ones (Beeson, Ireland, Montana, TMLR 2024) are copied into the
package as ``published_reference_scores.csv``; the ones measured for datasets we
generate ourselves live in ``generated_reference_scores.csv`` (written by
``spin_bench.datagen``).
"""
from __future__ import annotations

import csv
import dataclasses
import functools
import os
from typing import Dict, Optional, Tuple

from spin_bench.vocab import BENCHMARK_TASKS, TaskSpec

_HERE = os.path.dirname(os.path.abspath(__file__))
PUBLISHED_REFERENCE_CSV = os.path.join(_HERE, "published_reference_scores.csv")
GENERATED_REFERENCE_CSV = os.path.join(_HERE, "generated_reference_scores.csv")


@dataclasses.dataclass(frozen=True)
class ReferenceReturns:
    expert: float
    random: float
    source: str  # "published" or "generated"

    def normalise(self, ret):
        """(R - random) / (expert - random)."""
        return (ret - self.random) / (self.expert - self.random)


def _read_reference_csv(path: str, source: str) -> Dict[Tuple[str, int], ReferenceReturns]:
    table: Dict[Tuple[str, int], ReferenceReturns] = {}
    if not os.path.exists(path):
        return table
    with open(path, newline="") as f:
        rows = [line for line in f if not line.startswith("#")]
    for row in csv.DictReader(rows):
        table[(row["task"], int(row["bins"]))] = ReferenceReturns(
            float(row["expert"]), float(row["random"]), source)
    return table


@functools.lru_cache(maxsize=None)
def published_references() -> Dict[Tuple[str, int], ReferenceReturns]:
    return _read_reference_csv(PUBLISHED_REFERENCE_CSV, "published")


def generated_references() -> Dict[Tuple[str, int], ReferenceReturns]:
    return _read_reference_csv(GENERATED_REFERENCE_CSV, "generated")


def reference_returns(task: str, bins: int, source: str = "published") -> Optional[ReferenceReturns]:
    """Expert/random reference returns for (task, bins) from `source`, or None."""
    if source == "published":
        return published_references().get((task, int(bins)))
    if source == "generated":
        return generated_references().get((task, int(bins)))
    raise ValueError(f"reference source must be 'published' or 'generated', got {source!r}")


def get_task_spec(task: str) -> TaskSpec:
    """The registry entry of a benchmark task (KeyError-free: a clear ValueError)."""
    try:
        return BENCHMARK_TASKS[task]
    except KeyError:
        raise ValueError(
            f"{task!r} is not a benchmark task; benchmark tasks are "
            f"{sorted(BENCHMARK_TASKS)} (any dm_control task works with make_env)") from None
