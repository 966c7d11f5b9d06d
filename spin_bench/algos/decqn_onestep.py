"""DecQN-OneStep: one-step policy improvement (Brandfonbrener et al. 2021) on the decomposed
critic. The critic evaluates the behaviour policy (SARSA-style expectation under the
factorised behaviour model beta, trained by L_beta, spin_bench.algos.decqn); the policy is
one improvement step on it, extracted as in DecQN-IQL:

  y      = r + gamma (1 - d) (1/N) sum_i sum_b beta_i(b | s') Ubar'_i(s', b)
  L_Q    = (1/K) sum_k E[ Huber(y - Q_k(s, a)) ]
  policy = a_i(s) = argmax_b [ Ubar_i(s, b) / lambda + log beta_i(b | s) ]

Published code's DM Control example: lambda 1; 2 critics and beta of 2x512, Adam 3e-4,
gamma 0.99, Polyak 0.005.
"""
from __future__ import annotations

from typing import Dict, Sequence

import gin
import torch

from spin_bench.algos.base import Batch, expected_factored_q
from spin_bench.algos.decqn import DecQNLearner
from spin_bench.algos.decqn_iql import behaviour_regularised_scores


@gin.configurable
class DecQNOneStep(DecQNLearner):
    name = "onestep"

    def __init__(self, obs_dim: int, bins: Sequence[int], *,
                 lam: float = 1.0, **kwargs):
        if lam <= 0:
            raise ValueError(f"DecQNOneStep.lam must be > 0, got {lam!r}")
        super().__init__(obs_dim, bins, **kwargs)
        self.lam = lam

    def update(self, batch: Batch) -> Dict[str, torch.Tensor]:
        out = self.behaviour_step(batch)
        with torch.no_grad():
            nxt = batch.next_observations
            beta = torch.softmax(self.behaviour.logits(nxt), dim=-1)      # exactly 0 on padded bins
            next_value = expected_factored_q(beta, self.target_critic.raw_utilities(nxt)).mean(dim=0)
            next_value = next_value / self.num_slots
        out.update(self.td_step(batch, next_value))
        return out

    def scores(self, obs: torch.Tensor) -> torch.Tensor:
        return behaviour_regularised_scores(self.mean_utilities(self.critic, obs),
                                            self.behaviour.log_probs(obs), self.lam)
