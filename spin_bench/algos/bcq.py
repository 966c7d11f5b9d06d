"""Batch-Constrained Q-learning for discrete actions (Fujimoto et al. 2019), factored.

The actor is BCQ's generative model G, trained by behaviour cloning.  The policy picks the
best action the data supports:

  factored G:  a*_i(s) = argmax_{b : G_i(b|s) / max_b' G_i(b'|s) > threshold}  mean_k U_{k,i}(s, b)
               (Q is a sum over slots, so the per-slot argmax is the joint argmax)
  AR G:        a*(s) = argmax over K candidates a^j ~ G(.|s) of mean_k Q_k(s, a^j)

  critic:  L_Q = sum_k E[ Huber(r + gamma (1 - d) min_k' Q'_k'(s', a*(s')) - Q_k(s, a)) ]
  G:       L_G = -E[ log G(a | s) ]

Paper defaults: threshold 0.3, K = 10.
"""
from __future__ import annotations

import math

from typing import Dict, Optional, Sequence

import gin
import torch
import torch.nn.functional as F
from torch import nn

from spin_bench.algos.base import Batch, OfflineAlgorithm, step
from spin_bench.models.critics import polyak_update


@gin.configurable
class BCQ(OfflineAlgorithm):
    name = "bcq"

    def __init__(self, actor: nn.Module, obs_dim: int, bins: Sequence[int], *,
                 threshold: float = 0.3, num_candidates: int = 10, gamma: float = 0.99,
                 tau: float = 0.005, lr: float = 3e-4, actor_lr: float = 3e-4, grad_clip=None):
        super().__init__()
        self.init_actor_critic(actor, obs_dim, bins, lr, actor_lr)
        self.threshold, self.num_candidates = threshold, num_candidates
        self.gamma, self.tau, self.grad_clip = gamma, tau, grad_clip

    @torch.no_grad()
    def select(self, obs: torch.Tensor, generator: Optional[torch.Generator] = None) -> torch.Tensor:
        """a*(s): the best data-supported action under the online critic (B, N)."""
        if getattr(self.actor, "factored", False):
            log_g = torch.log_softmax(self.actor.logits(obs), dim=-1)           # (B, N, M)
            # a Python float: a tensor made here would be a host-to-device copy every step on CUDA
            allowed = log_g - log_g.max(dim=-1, keepdim=True).values > math.log(self.threshold)
            # the mode always passes (ratio 1), so every slot has at least one allowed bin
            allowed |= log_g == log_g.max(dim=-1, keepdim=True).values
            util = self.critic.utilities(obs).mean(dim=0)                         # (B, N, M)
            return util.masked_fill(~allowed, float("-inf")).argmax(dim=-1)
        cands = self.actor.sample_k(obs, self.num_candidates, generator=generator)  # (B, K, N)
        best = self.critic.q(obs, cands).mean(dim=0).argmax(dim=1)                  # (E, B, K) -> (B,)
        return cands[torch.arange(obs.shape[0], device=obs.device), best]

    def update(self, batch: Batch) -> Dict[str, torch.Tensor]:
        obs, act = batch.observations, batch.actions

        with torch.no_grad():
            next_a = self.select(batch.next_observations)
            next_q = self.target_critic.q_min(batch.next_observations, next_a)
            td_target = batch.rewards + self.gamma * (1.0 - batch.terminals) * next_q
        q = self.critic.q(obs, act)
        critic_loss = F.smooth_l1_loss(q, td_target.expand_as(q), reduction="none").mean(dim=1).sum()
        step(self.optimizers["critic"], critic_loss, grad_clip=self.grad_clip)
        polyak_update(self.target_critic, self.critic, self.tau)

        actor_loss = -self.actor.log_prob(obs, act).mean()
        step(self.optimizers["actor"], actor_loss, grad_clip=self.grad_clip)
        return {"critic_loss": critic_loss.detach(), "actor_loss": actor_loss.detach(),
                "q_mean": q.detach().mean()}

    @torch.no_grad()
    def act(self, observations, generator=None, deterministic: bool = False) -> torch.Tensor:
        """BCQ's policy is the constrained argmax (deterministic for factored actors)."""
        return self.select(observations, generator=generator)
