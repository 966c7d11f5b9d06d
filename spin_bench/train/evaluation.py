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


def action_function(policy: Policy, device: torch.device, generator: Optional[torch.Generator]
                    ) -> Callable[[np.ndarray], np.ndarray]:
    """The policy as the stepping loop calls it: observations (E, obs_dim) -> bin indices (E, N)."""
    def act(obs: np.ndarray) -> np.ndarray:
        return policy(torch.as_tensor(obs, device=device), generator).cpu().numpy()
    return act


@torch.no_grad()
def evaluate_batched(policy: Policy, venv: "VectorEnv", seeds: Sequence[int], device: torch.device,
                     generator: Optional[torch.Generator] = None,
                     max_steps: Optional[int] = None) -> np.ndarray:
    """Undiscounted return of len(seeds) episodes stepped together: (E,) float64.

    The rewards are summed as float32 values (the vector env's reward type), as every
    evaluation so far."""
    seeds = list(seeds)
    if len(seeds) != venv.num_envs:
        raise ValueError(f"evaluate_batched needs one seed per env ({venv.num_envs}), got {len(seeds)}")
    loop = envs.EpisodeLoop(venv, seeds)
    returns = np.zeros(venv.num_envs)
    for step in loop.run(action_function(policy, device, generator), max_steps):
        returns += step.rewards.astype(np.float32)
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
