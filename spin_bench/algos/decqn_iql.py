"""DecQN-IQL: implicit Q-learning (Kostrikov et al. 2022) on the decomposed critic.

A state-value network V (2x512) is fitted by expectile regression towards the target
critic's decomposed Q of the data's action; the critic bootstraps from V; the policy is the
per-slot argmax of utility / lambda plus the log of the factorised behaviour model beta
(trained by L_beta, spin_bench.algos.decqn), the published code's policy extraction:

  u      = Qbar'(s, a) - V(s),   Qbar'(s, a) = (1/N) sum_i Ubar'_i(s, a_i)
  w      = tau if u > 0 else 1 - tau
  L_V    = E[ w u^2 if |u| < 1 else |u| - w ]     (the published code's asymmetric Huber)
  y      = r + gamma (1 - d) V(s')
  L_Q    = (1/K) sum_k E[ Huber(y - Q_k(s, a)) ]
  policy = a_i(s) = argmax_b [ Ubar_i(s, b) / lambda + log beta_i(b | s) ]

Published code's DM Control example: expectile tau 0.5, lambda 1; 2 critics, V and beta of
2x512, Adam 3e-4, gamma 0.99, Polyak 0.005.
"""
from __future__ import annotations

from typing import Dict, Sequence

import gin
import torch

from spin_bench.algos.base import Batch, make_optimizer, step
from spin_bench.algos.decqn import DecQNLearner
from spin_bench.models.critics import ValueNetwork


def asymmetric_huber(u: torch.Tensor, expectile: float) -> torch.Tensor:
    """E[w u^2 if |u| < 1 else |u| - w], w = expectile where u > 0, else 1 - expectile."""
    w = torch.where(u > 0, expectile, 1.0 - expectile)
    return torch.where(u.abs() < 1.0, w * u.square(), u.abs() - w).mean()


def behaviour_regularised_scores(mean_utilities: torch.Tensor, log_beta: torch.Tensor,
                                 lam: float) -> torch.Tensor:
    """Ubar_i(s, b) / lambda + log beta_i(b | s): (B, N, max_bins) (padded bins stay very negative)."""
    return mean_utilities / lam + log_beta


@gin.configurable
class DecQNIQL(DecQNLearner):
    name = "iql"

    def __init__(self, obs_dim: int, bins: Sequence[int], *,
                 expectile: float = 0.5, lam: float = 1.0, hidden: Sequence[int] = (512, 512),
                 lr: float = 3e-4, **kwargs):
        if not 0.0 < expectile < 1.0 or lam <= 0:
            raise ValueError(f"DecQNIQL: expectile must be in (0, 1) and lam > 0, got {expectile!r}, {lam!r}")
        super().__init__(obs_dim, bins, hidden=hidden, lr=lr, **kwargs)
        self.value = ValueNetwork(obs_dim, hidden=hidden)
        self.optimizers["value"] = make_optimizer(self.value.parameters(), lr)
        self.expectile, self.lam = expectile, lam

    def update(self, batch: Batch) -> Dict[str, torch.Tensor]:
        obs = batch.observations
        out = self.behaviour_step(batch)
        with torch.no_grad():
            target_q = self.q(self.target_critic, obs, batch.actions).mean(dim=0)
        value_loss = asymmetric_huber(target_q - self.value(obs), self.expectile)
        step(self.optimizers["value"], value_loss, grad_clip=self.grad_clip)
        with torch.no_grad():
            next_value = self.value(batch.next_observations)
        out.update(self.td_step(batch, next_value))
        out["value_loss"] = value_loss.detach()
        return out

    def scores(self, obs: torch.Tensor) -> torch.Tensor:
        return behaviour_regularised_scores(self.mean_utilities(self.critic, obs),
                                            self.behaviour.log_probs(obs), self.lam)
