"""The benchmark tasks (registered in :mod:`spin_bench.vocab`) with their dimensions, read from
the environment, and their reference returns.

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

from spin_bench.vocab import BENCHMARK_TASKS, TaskSpec, UnknownNameError, task_spec

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


def _read_reference_csv(path: str, source: str) -> Dict[Tuple[str, int, int], ReferenceReturns]:
    """{(task, bins, dataset version): returns}; a CSV without a version column is version 1
    (the published datasets have only that one)."""
    table: Dict[Tuple[str, int, int], ReferenceReturns] = {}
    if not os.path.exists(path):
        return table
    with open(path, newline="") as f:
        rows = [line for line in f if not line.startswith("#")]
    for row in csv.DictReader(rows):
        table[(row["task"], int(row["bins"]), int(row.get("version") or 1))] = ReferenceReturns(
            float(row["expert"]), float(row["random"]), source)
    return table


@functools.lru_cache(maxsize=None)
def published_references() -> Dict[Tuple[str, int, int], ReferenceReturns]:
    return _read_reference_csv(PUBLISHED_REFERENCE_CSV, "published")


def generated_references() -> Dict[Tuple[str, int, int], ReferenceReturns]:
    return _read_reference_csv(GENERATED_REFERENCE_CSV, "generated")


def reference_returns(task: str, bins: int, source: str = "published",
                      version: int = 1) -> Optional[ReferenceReturns]:
    """Expert/random reference returns for (task, bins) from `source` (of dataset version
    `version`: generated data has one per version of the shipped policies), or None."""
    if source == "published":
        return published_references().get((task, int(bins), int(version)))
    if source == "generated":
        return generated_references().get((task, int(bins), int(version)))
    raise ValueError(f"reference source must be 'published' or 'generated', got {source!r}")


@dataclasses.dataclass(frozen=True)
class TaskInfo:
    """A registered task with its dimensions: N sub-actions and the flattened observation size."""

    spec: TaskSpec
    num_actions: int
    obs_dim: int

    def __getattr__(self, name: str):  # name, tier, published_bins, domain, task, ...
        return getattr(self.spec, name)


@functools.lru_cache(maxsize=None)
def task_dims(task: str) -> Tuple[int, int]:
    """(num_actions, obs_dim) of a task: the registry's record for a built-in task (checked
    against its environment by the tests, and usable without a simulator, e.g. on a bare GPU
    image); read from the environment (built once per process, its import logging quiet) for
    any other, so a task of your own never types them."""
    spec = BENCHMARK_TASKS.get(task)
    if spec is not None and spec.dims is not None:
        return spec.dims
    return environment_dims(task)


def environment_dims(task: str) -> Tuple[int, int]:
    """(num_actions, obs_dim) as the task's environment has them."""
    try:
        from absl import logging as absl_logging

        from spin_bench.envs.dmc import make_env
    except ImportError:
        raise ValueError(f"{task}: its dimensions come from its environment, and no simulator "
                         f"(dm_control) is installed here") from None
    verbosity = absl_logging.get_verbosity()
    absl_logging.set_verbosity(absl_logging.WARNING)  # MuJoCo's import lines: not for a name check
    try:
        env = make_env(task, 3)
    finally:
        absl_logging.set_verbosity(verbosity)
    try:
        return int(env.num_actions), int(env.obs_dim)
    finally:
        env.close()


def known_dims(task) -> Optional[Tuple[int, int]]:
    """(num_actions, obs_dim) of a registered task, None for any other name (no environment is
    built for a name the registry does not know)."""
    if not isinstance(task, str) or task not in BENCHMARK_TASKS:
        return None
    return task_dims(task)


def get_task_spec(task: str) -> TaskInfo:
    """A registered task with its dimensions (ValueError naming the known tasks otherwise)."""
    try:
        spec = task_spec(task)
    except UnknownNameError:
        raise ValueError(
            f"{task!r} is not a benchmark task; benchmark tasks are "
            f"{sorted(BENCHMARK_TASKS)} (any dm_control task works with make_env; register one of your own "
            f"with spin_bench.vocab.register_task, docs/extending.md)") from None
    num_actions, obs_dim = task_dims(task)
    return TaskInfo(spec, num_actions, obs_dim)
