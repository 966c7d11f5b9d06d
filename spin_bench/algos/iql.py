"""Implicit Q-Learning (Kostrikov, Nair, Levine 2022) for factored discrete actions.

With a factored critic ensemble Q_k(s, a) = sum_i U_{k,i}(s, a_i), a target ensemble Q'_k
(Polyak-averaged), a value network V and any actor pi:

  value:   L_V  = E[ |e - 1(u < 0)| u^2 ],              u = min_k Q'_k(s, a) - V(s)
  critic:  L_Q  = sum_k E[ (r + gamma (1 - d) V(s') - Q_k(s, a))^2 ]
  actor:   L_pi = -E[ min(exp(beta A), w_max) log pi(a | s) ],  A = min_k Q'_k(s, a) - V(s)

(d = termination, never the time limit.)  e is the ``expectile`` (the IQL paper calls it tau);
the constructor's ``tau`` is the Polyak rate of the target ensemble, as in every algorithm here.
Paper defaults: expectile 0.8, beta 3.0, w_max 100, gamma 0.99, Polyak tau 0.005, Adam 3e-4.
"""
from __future__ import annotations

from typing import Dict, Sequence

import gin
import torch
from torch import nn

from spin_bench.algos.base import Batch, OfflineAlgorithm, make_optimizer, step
from spin_bench.models.critics import ValueNetwork, polyak_update


def expectile_loss(diff: torch.Tensor, expectile: float) -> torch.Tensor:
    """E[|e - 1(u < 0)| u^2] for u = diff and e = `expectile`."""
    weight = torch.where(diff < 0, 1.0 - expectile, expectile)
    return (weight * diff.square()).mean()


@gin.configurable
class IQL(OfflineAlgorithm):
    name = "iql"

    def __init__(self, actor: nn.Module, obs_dim: int, bins: Sequence[int], *,
                 expectile: float = 0.8, beta: float = 3.0, max_weight: float = 100.0,
                 gamma: float = 0.99, tau: float = 0.005, lr: float = 3e-4,
                 actor_lr: float = 3e-4, grad_clip=None):
        super().__init__()
        self.init_actor_critic(actor, obs_dim, bins, lr, actor_lr)
        self.value = ValueNetwork(obs_dim)
        self.expectile, self.beta, self.max_weight = expectile, beta, max_weight
        self.gamma, self.tau, self.grad_clip = gamma, tau, grad_clip
        self.optimizers["value"] = make_optimizer(self.value.parameters(), lr)

    def update(self, batch: Batch) -> Dict[str, torch.Tensor]:
        obs, act = batch.observations, batch.actions

        # Value: expectile regression towards the (target) critic's pessimistic Q.
        with torch.no_grad():
            target_q = self.target_critic.q_min(obs, act)
        v = self.value(obs)
        advantage = target_q - v
        value_loss = expectile_loss(advantage, self.expectile)
        step(self.optimizers["value"], value_loss, grad_clip=self.grad_clip)

        # Critic: one-step TD towards r + gamma * V(s'), every ensemble member.
        with torch.no_grad():
            td_target = batch.rewards + self.gamma * (1.0 - batch.terminals) * self.value(batch.next_observations)
        q = self.critic.q(obs, act)                                   # (K, B)
        critic_loss = (q - td_target).square().mean(dim=1).sum()
        step(self.optimizers["critic"], critic_loss, grad_clip=self.grad_clip)
        polyak_update(self.target_critic, self.critic, self.tau)

        # Actor: advantage-weighted log-likelihood of the data's joint actions.
        weights = torch.exp(self.beta * advantage.detach()).clamp(max=self.max_weight)
        actor_loss = -(weights * self.actor.log_prob(obs, act)).mean()
        step(self.optimizers["actor"], actor_loss, grad_clip=self.grad_clip)

        return {"value_loss": value_loss.detach(), "critic_loss": critic_loss.detach(),
                "actor_loss": actor_loss.detach(), "q_mean": q.detach().mean(),
                "adv_weight_mean": weights.mean()}
