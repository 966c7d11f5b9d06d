"""DecQN-BCQ: DecQN with the discrete BCQ constraint (Fujimoto et al. 2019) per sub-action.

A factorised behaviour model beta (trained by L_beta, spin_bench.algos.decqn) allows, in each
slot, the bins whose probability relative to the slot's most likely bin reaches the threshold:

  allowed_i(s) = { b : beta_i(b | s) / max_b' beta_i(b' | s) >= threshold }   (never empty)
  y            = r + gamma (1 - d) (1/N) sum_i max_{b in allowed_i(s')} Ubar'_i(s', b)
  L            = (1/K) sum_k E[ Huber(y - Q_k(s, a)) ]

Policy: a_i(s) = argmax_{b in allowed_i(s)} Ubar_i(s, b).  Published code's defaults:
threshold 0.5, 2 critics and a behaviour MLP of 2x512, Adam 3e-4, gamma 0.99, Polyak 0.005.
"""
from __future__ import annotations

import math
from typing import Dict, Sequence

import gin
import torch

from spin_bench.algos.base import Batch
from spin_bench.algos.decqn import DecQNLearner
from spin_bench.models.common import mask_value


@gin.configurable
class DecQNBCQ(DecQNLearner):
    name = "bcq"

    def __init__(self, obs_dim: int, bins: Sequence[int], *,
                 threshold: float = 0.5, **kwargs):
        if not 0.0 <= threshold <= 1.0:
            raise ValueError(f"DecQNBCQ.threshold must be in [0, 1], got {threshold!r}")
        super().__init__(obs_dim, bins, **kwargs)
        self.threshold = threshold

    def allowed(self, obs: torch.Tensor) -> torch.Tensor:
        """allowed_i(s) as a boolean (B, N, max_bins); the slot's most likely bin always passes."""
        log_beta = self.behaviour.log_probs(obs)
        ratio = log_beta - log_beta.amax(dim=-1, keepdim=True)
        keep = ratio >= (math.log(self.threshold) if self.threshold > 0 else -math.inf)
        return keep & self.critic.bins_mask

    def constrained(self, utilities: torch.Tensor, obs: torch.Tensor) -> torch.Tensor:
        """Ubar with the disallowed bins set very negative."""
        return utilities.masked_fill(~self.allowed(obs), mask_value(utilities.dtype))

    def update(self, batch: Batch) -> Dict[str, torch.Tensor]:
        out = self.behaviour_step(batch)
        with torch.no_grad():
            nxt = batch.next_observations
            next_u = self.constrained(self.mean_utilities(self.target_critic, nxt), nxt)
            next_value = next_u.amax(dim=-1).mean(dim=-1)
        out.update(self.td_step(batch, next_value))
        return out

    def scores(self, obs: torch.Tensor) -> torch.Tensor:
        return self.constrained(self.mean_utilities(self.critic, obs), obs)
