"""A DM Control suite task with each actuator discretised into bins.

Conventions (parity with the published discretised datasets, docs/data.md):
  * sub-action d with bins_d choices: index j -> np.linspace(-1, 1, bins_d)[j]
    (whatever the actuator's ctrlrange; MuJoCo clamps);
  * observation = the observation dict flattened in its own key order, float32;
  * episodes end by truncation at the DM Control time limit (1,000 steps), a
    termination only when the task itself terminates (discount 0).
"""
from __future__ import annotations

import functools
import logging
from typing import Any, Dict, Optional, Tuple

import gymnasium as gym
import numpy as np

from spin_bench.envs.spaces import BinsLike, bin_values, normalise_bins, validate_action
from spin_bench.vocab import split_task_name


class _DropKnownMujocoDeprecation(logging.Filter):
    """dm_control 1.0.50 models trip a harmless MuJoCo 3.17 deprecation warning on every load."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "settotalmass" not in record.getMessage()


logging.getLogger("absl").addFilter(_DropKnownMujocoDeprecation())

# Domains whose *model* (not only the initial state) depends on the task seed: for these a
# seeded reset reloads the environment so that it matches suite.load(..., {'random': s}).
_SEED_DEPENDENT_MODEL_DOMAINS = frozenset({"lqr"})


@functools.lru_cache(maxsize=1)
def available_tasks() -> Tuple[str, ...]:
    """Every dm_control.suite task with a continuous action spec, spelled 'domain-task'."""
    from dm_control import suite

    return tuple(f"{d}-{t}" for d, t in suite.ALL_TASKS)


def flatten_observation(obs: Dict[str, Any]) -> np.ndarray:
    """Concatenate the observation dict's values, in its own key order, as float32."""
    return np.concatenate([np.asarray(v, dtype=np.float32).ravel() for v in obs.values()])


def _load(domain: str, task: str, seed: Optional[int]):
    from dm_control import suite

    return suite.load(domain, task, task_kwargs={"random": seed})


class DiscretizedDMCEnv(gym.Env):
    """Gymnasium-style env over a dm_control task with a MultiDiscrete action space."""

    metadata = {"render_modes": []}

    def __init__(self, task: str, bins: BinsLike = 3):
        domain, name = split_task_name(task)
        if task not in available_tasks():
            raise ValueError(f"unknown task {task!r}; valid tasks: {', '.join(available_tasks())}")
        self.task_name = task
        self._domain, self._task = domain, name
        self._env = _load(domain, name, None)
        spec = self._env.action_spec()
        if not np.issubdtype(spec.dtype, np.floating):
            raise ValueError(f"task {task!r} has a non-continuous action spec ({spec.dtype})")
        self.num_actions = int(spec.shape[0])
        self.bins = normalise_bins(bins, self.num_actions)
        self._values = bin_values(self.bins)
        self._rows = np.arange(self.num_actions)
        self.obs_dim = int(sum(int(np.prod(s.shape)) for s in self._env.observation_spec().values()))
        self.action_space = gym.spaces.MultiDiscrete(self.bins.copy())
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, (self.obs_dim,), np.float32)
        self._needs_reset = True

    # -- helpers ---------------------------------------------------------------------------
    def action_to_continuous(self, action: np.ndarray) -> np.ndarray:
        """Bin indices (N,) -> continuous control linspace(-1, 1, bins_d)[index_d]."""
        return self._values[self._rows, action]

    @property
    def physics(self):
        return self._env.physics

    @property
    def dm_env(self):
        return self._env

    # -- gymnasium API --------------------------------------------------------------------
    def reset(self, *, seed: Optional[int] = None, options: Optional[dict] = None):
        """Start an episode; with `seed`, from the state suite.load(..., {'random': seed}) starts in."""
        if seed is not None:
            seed = int(seed)
            if self._domain in _SEED_DEPENDENT_MODEL_DOMAINS:
                self._env = _load(self._domain, self._task, seed)
            else:
                self._env.task._random = np.random.RandomState(seed)
        ts = self._env.reset()
        self._needs_reset = False
        return flatten_observation(ts.observation), {}

    def step(self, action):
        """Gymnasium step with a factorised action of N bin indices (validated)."""
        return self.step_indices(validate_action(action, self.bins))

    def step_indices(self, action: np.ndarray):
        """step() for an already validated int64 index array (the vector env checks the batch once)."""
        if self._needs_reset:
            raise RuntimeError(f"{self.task_name}: call reset() before step() (episode over or not started)")
        ts = self._env.step(self.action_to_continuous(action))
        obs = flatten_observation(ts.observation)
        reward = float(ts.reward) if ts.reward is not None else 0.0
        terminated = truncated = False
        if ts.last():
            terminated = ts.discount == 0.0
            truncated = not terminated
            self._needs_reset = True
        return obs, reward, terminated, truncated, {}

    def close(self):
        self._env.close()


def make_env(task: str, bins: BinsLike = 3) -> DiscretizedDMCEnv:
    """A discretised DM Control task, e.g. make_env('cheetah-run', bins=3)."""
    return DiscretizedDMCEnv(task, bins)
