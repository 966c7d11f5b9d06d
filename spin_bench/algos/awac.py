"""Advantage-Weighted Actor-Critic (Nair et al. 2020) for factored discrete actions.

  critic: L_Q  = sum_k E[ (r + gamma (1 - d) V'(s') - Q_k(s, a))^2 ],
          V'(s') = min_k E_{a'~pi}[Q'_k(s', a')]
  actor:  L_pi = -E[ min(exp(A / lambda), w_max) log pi(a | s) ],
          A = min_k Q_k(s, a) - min_k E_{a'~pi}[Q_k(s, a')]

For factored actors E_{a~pi} Q_k(s, a) = sum_i sum_b pi_i(b|s) U_{k,i}(s, b) is exact (the
critic is a sum over slots); for the autoregressive actor it is estimated with one sample.
Paper defaults: lambda 0.3, w_max 100.
"""
from __future__ import annotations

from typing import Dict, Sequence

import gin
import torch
from torch import nn

from spin_bench.algos.base import Batch, OfflineAlgorithm, expected_factored_q, step
from spin_bench.models.critics import FactoredCriticEnsemble, polyak_update


@gin.configurable
class AWAC(OfflineAlgorithm):
    name = "awac"

    def __init__(self, actor: nn.Module, obs_dim: int, bins: Sequence[int], *,
                 lam: float = 0.3, max_weight: float = 100.0, gamma: float = 0.99,
                 tau: float = 0.005, lr: float = 3e-4, actor_lr: float = 3e-4, grad_clip=None):
        super().__init__()
        self.init_actor_critic(actor, obs_dim, bins, lr, actor_lr)
        self.lam, self.max_weight, self.gamma, self.tau = lam, max_weight, gamma, tau
        self.grad_clip = grad_clip

    def policy_value(self, critic: FactoredCriticEnsemble, obs: torch.Tensor) -> torch.Tensor:
        """min_k E_{a~pi}[Q_k(s, a)] (exact for factored actors, one sample otherwise)."""
        if getattr(self.actor, "factored", False):
            probs = torch.softmax(self.actor.logits(obs), dim=-1)
            return expected_factored_q(probs, critic.raw_utilities(obs)).min(dim=0).values
        return critic.q_min(obs, self.actor.sample(obs))

    def advantage_weights(self, advantage: torch.Tensor) -> torch.Tensor:
        """w(A) = min(exp(A / lambda), w_max): the actor loss's per-sample weight. The hook a
        variant overrides (CRR's binary filter: w = 1[A > 0])."""
        return torch.exp(advantage / self.lam).clamp(max=self.max_weight)

    def update(self, batch: Batch) -> Dict[str, torch.Tensor]:
        obs, act = batch.observations, batch.actions

        with torch.no_grad():
            next_v = self.policy_value(self.target_critic, batch.next_observations)
            td_target = batch.rewards + self.gamma * (1.0 - batch.terminals) * next_v
        q = self.critic.q(obs, act)
        critic_loss = (q - td_target).square().mean(dim=1).sum()
        step(self.optimizers["critic"], critic_loss, grad_clip=self.grad_clip)
        polyak_update(self.target_critic, self.critic, self.tau)

        with torch.no_grad():
            advantage = self.critic.q_min(obs, act) - self.policy_value(self.critic, obs)
            weights = self.advantage_weights(advantage)
        actor_loss = -(weights * self.actor.log_prob(obs, act)).mean()
        step(self.optimizers["actor"], actor_loss, grad_clip=self.grad_clip)

        return {"critic_loss": critic_loss.detach(), "actor_loss": actor_loss.detach(),
                "q_mean": q.detach().mean(), "adv_weight_mean": weights.mean()}
