"""Discretised DM Control environments, vectorised envs and the task registry.

The registry and the action-space helpers import without a simulator; the environments
(``DiscretizedDMCEnv``, ``make_env``, ``VectorEnv``, ``EpisodeLoop``, ...) import gymnasium and dm_control
on first use, so training code runs where no simulator is installed (e.g. a bare GPU image).
"""
import importlib

from spin_bench.envs.registry import ReferenceReturns, get_task_spec, reference_returns
from spin_bench.envs.spaces import AtomicActionView, bin_values, normalise_bins, validate_action
from spin_bench.vocab import BENCHMARK_TASKS, LEVELS, TaskSpec

_LAZY = {"DiscretizedDMCEnv": "dmc", "available_tasks": "dmc", "flatten_observation": "dmc",
         "make_env": "dmc", "VectorEnv": "vector", "EpisodeLoop": "vector",
         "Step": "vector"}

__all__ = [
    "AtomicActionView", "BENCHMARK_TASKS", "DiscretizedDMCEnv", "EpisodeLoop", "LEVELS", "ReferenceReturns",
    "Step", "TaskSpec", "VectorEnv", "available_tasks", "bin_values", "flatten_observation",
    "get_task_spec", "make_env", "normalise_bins", "reference_returns", "validate_action",
]


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(f"spin_bench.envs.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'spin_bench.envs' has no attribute {name!r}")
