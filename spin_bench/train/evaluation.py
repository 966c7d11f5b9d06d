"""Evaluation: episodes run in lockstep in a vectorised env with one batched policy call
per control step; seeded env starts and seeded action sampling."""
from __future__ import annotations

import time
from typing import TYPE_CHECKING, Callable, Optional, Sequence

import numpy as np
import torch

from spin_bench import envs

if TYPE_CHECKING:  # the simulator is imported when an Evaluator is made, not with this module
    from spin_bench.envs import VectorEnv

Policy = Callable[[torch.Tensor, Optional[torch.Generator]], torch.Tensor]


def evaluation_seeds(seed: int, step: int, num_episodes: int) -> list:
    """Env seeds of the evaluation at `step` of run `seed`: distinct, deterministic."""
    return [int(s) for s in np.random.SeedSequence([int(seed), int(step)]).generate_state(num_episodes)]


def sampling_generator(seed: int, step: int, device: torch.device) -> torch.Generator:
    """Generator for action sampling of the evaluation at `step` (independent of training RNG)."""
    g = torch.Generator(device=device)
    g.manual_seed(int(np.random.SeedSequence([int(seed), int(step), 1]).generate_state(1, np.uint64)[0] >> 1))
    return g


@torch.no_grad()
def evaluate_batched(policy: Policy, venv: "VectorEnv", seeds: Sequence[int], device: torch.device,
                     generator: Optional[torch.Generator] = None,
                     max_steps: Optional[int] = None) -> np.ndarray:
    """Undiscounted return of len(seeds) episodes stepped together: (E,) float64."""
    obs = venv.reset(seeds)
    returns = np.zeros(venv.num_envs)
    t = 0
    while venv.active.any() and (max_steps is None or t < max_steps):
        actions = policy(torch.as_tensor(obs, device=device), generator).cpu().numpy()
        obs, rew, _, _ = venv.step(actions)
        returns += rew
        t += 1
    return returns


class Evaluator:
    """Holds one VectorEnv of `num_episodes` copies for the whole run."""

    def __init__(self, task: str, bins, num_episodes: int, seed: int, device: torch.device,
                 max_steps: Optional[int] = None, num_workers: int = 0):
        self.venv = envs.VectorEnv(task, bins, num_episodes, num_workers=num_workers)
        self.seed, self.device, self.max_steps = seed, device, max_steps

    def __call__(self, policy: Policy, step: int):
        """(returns (E,), wall-clock seconds) for the evaluation at gradient step `step`."""
        start = time.perf_counter()
        returns = evaluate_batched(policy, self.venv, evaluation_seeds(self.seed, step, self.venv.num_envs),
                                   self.device, sampling_generator(self.seed, step, self.device),
                                   self.max_steps)
        return returns, time.perf_counter() - start

    def close(self):
        self.venv.close()
