"""DecQN-CQL: DecQN with the conservative penalty of CQL (Kumar et al. 2020) per sub-action.

With Ubar the ensemble-mean utilities (spin_bench.algos.decqn) and Ubar' the target's:

  y       = r + gamma (1 - d) (1/N) sum_i max_b Ubar'_i(s', b)
  penalty = E[ (1/N) sum_i ( log sum_b exp Ubar_i(s, b)  -  Ubar_i(s, a_i) ) ]
  L       = (1/K) sum_k E[ Huber(y - Q_k(s, a)) ]  +  alpha * penalty

(logsumexp over the slot's own bins only.) Policy: a_i = argmax_b Ubar_i(s, b).
Published code's defaults: alpha 0.25 (its DM Control example), 2 critics of 2x512,
Adam 3e-4, gamma 0.99, Polyak 0.005, batch 256.
"""
from __future__ import annotations

from typing import Dict, Sequence

import gin
import torch
import torch.nn.functional as F

from spin_bench.algos.base import Batch
from spin_bench.algos.decqn import DecQNLearner


def cql_penalty(mean_utilities: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
    """E[(1/N) sum_i (logsumexp_b Ubar_i(s, b) - Ubar_i(s, a_i))]; Ubar (B, N, max_bins) with
    padded bins very negative (they add exp(-1e9) = 0), actions (B, N)."""
    data = mean_utilities.gather(-1, actions.unsqueeze(-1)).squeeze(-1)
    return (torch.logsumexp(mean_utilities, dim=-1) - data).mean()


@gin.configurable
class DecQNCQL(DecQNLearner):
    name = "cql"
    uses_behaviour = False

    def __init__(self, obs_dim: int, bins: Sequence[int], *,
                 alpha: float = 0.25, **kwargs):
        super().__init__(obs_dim, bins, **kwargs)
        self.alpha = alpha

    def update(self, batch: Batch) -> Dict[str, torch.Tensor]:
        obs, act = batch.observations, batch.actions
        with torch.no_grad():
            next_u = self.mean_utilities(self.target_critic, batch.next_observations)
            y = batch.rewards + self.gamma * (1.0 - batch.terminals) * next_u.amax(dim=-1).mean(dim=-1)
        utilities = self.critic.utilities(obs)                                     # (K, B, N, M)
        q = self.critic.gather_q(utilities, act) / self.num_slots                  # (K, B)
        td_loss = F.smooth_l1_loss(q, y.expand_as(q))
        penalty = cql_penalty(utilities.mean(dim=0), act)
        out = self.critic_step(td_loss + self.alpha * penalty, q)
        out.update({"td_loss": td_loss.detach(), "cql_penalty": penalty.detach()})
        return out
