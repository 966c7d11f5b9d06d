"""What the value-decomposition learners of the discretised DM Control benchmark share
(Beeson, Ireland & Montana, "An investigation of offline reinforcement learning in
factorisable action spaces", TMLR 2024): DecQN-CQL, DecQN-BCQ, DecQN-IQL, DecQN-OneStep.

DecQN (Seyde et al. 2023) decomposes the joint Q-value as the *mean* of per-slot utilities,
on the shared factored critic ensemble (k = 1..K members, Polyak target U'):

  Q_k(s, a)  = (1/N) sum_i U_{k,i}(s, a_i)          Ubar_i(s, b) = (1/K) sum_k U_{k,i}(s, b)
  L_TD       = (1/K) sum_k E[ Huber(y - Q_k(s, a)) ]  (Huber with delta 1; each learner has its y)
  L_beta     = -E[ (1/N) sum_i log beta_i(a_i | s) ]  (the factorised behaviour model, if any)

There is no actor. The evaluation policy is greedy per slot over the allowed bins,
a_i(s) = argmax_b score_i(s, b), which is the joint argmax of a score that is a sum over slots
(each learner defines its score). As in the published code: the ensemble is averaged (not
minimised) in targets and scores, and the behaviour model is updated before the critic.
"""
from __future__ import annotations

import copy
from typing import Dict, Optional, Sequence

import torch
import torch.nn.functional as F

from spin_bench.baselines.factorised import FactorisedMLPActor
from spin_bench.algos.base import Batch, OfflineAlgorithm, make_optimizer, step
from spin_bench.models.critics import FactoredCriticEnsemble, polyak_update


class DecQNLearner(OfflineAlgorithm):
    """The critic ensemble (hidden 2x512 as published), its target, the behaviour model beta
    (the F actor, ``FactorisedMLPActor``, of the same width) if the learner uses one, the TD
    step and the greedy policy. Constructed as ``cls(obs_dim, bins)``; there is no actor."""

    uses_behaviour: bool = True

    def __init__(self, obs_dim: int, bins: Sequence[int], *, hidden: Sequence[int] = (512, 512),
                 num_critics: int = 2, gamma: float = 0.99, tau: float = 0.005, lr: float = 3e-4,
                 grad_clip: Optional[float] = None):
        super().__init__()
        self.critic = FactoredCriticEnsemble(obs_dim, bins, num_critics=num_critics, hidden=hidden)
        self.target_critic = copy.deepcopy(self.critic).requires_grad_(False)
        self.optimizers = {"critic": make_optimizer(self.critic.parameters(), lr)}
        if self.uses_behaviour:
            self.behaviour = FactorisedMLPActor(obs_dim, bins, hidden=hidden)
            self.optimizers["behaviour"] = make_optimizer(self.behaviour.parameters(), lr)
        self.num_slots = self.critic.num_slots
        self.gamma, self.tau, self.grad_clip = gamma, tau, grad_clip

    # -- the decomposition ------------------------------------------------------------------
    def q(self, critic: FactoredCriticEnsemble, obs: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """Q_k(s, a) = (1/N) sum_i U_{k,i}(s, a_i): (K, B)."""
        return critic.q(obs, actions) / self.num_slots

    @staticmethod
    def mean_utilities(critic: FactoredCriticEnsemble, obs: torch.Tensor) -> torch.Tensor:
        """Ubar (B, N, max_bins), padded bins at -1e9 (so a max or argmax ignores them)."""
        return critic.utilities(obs).mean(dim=0)

    def td_step(self, batch: Batch, next_value: torch.Tensor) -> Dict[str, torch.Tensor]:
        """One critic step towards y = r + gamma (1 - d) next_value, then the Polyak update."""
        y = batch.rewards + self.gamma * (1.0 - batch.terminals) * next_value
        q = self.q(self.critic, batch.observations, batch.actions)
        loss = F.smooth_l1_loss(q, y.expand_as(q))
        return self.critic_step(loss, q)

    def critic_step(self, loss: torch.Tensor, q: torch.Tensor) -> Dict[str, torch.Tensor]:
        step(self.optimizers["critic"], loss, grad_clip=self.grad_clip)
        polyak_update(self.target_critic, self.critic, self.tau)
        return {"critic_loss": loss.detach(), "q_mean": q.detach().mean()}

    # -- the behaviour model ----------------------------------------------------------------
    def behaviour_step(self, batch: Batch) -> Dict[str, torch.Tensor]:
        """L_beta = -E[(1/N) sum_i log beta_i(a_i | s)] (per-slot mean, as published)."""
        loss = -self.behaviour.log_prob(batch.observations, batch.actions).mean() / self.num_slots
        step(self.optimizers["behaviour"], loss, grad_clip=self.grad_clip)
        return {"behaviour_loss": loss.detach()}

    # -- the policy -------------------------------------------------------------------------
    def scores(self, obs: torch.Tensor) -> torch.Tensor:
        """score_i(s, b) (B, N, max_bins), padded or disallowed bins very negative."""
        return self.mean_utilities(self.critic, obs)

    @torch.no_grad()
    def act(self, observations: torch.Tensor, generator: Optional[torch.Generator] = None,
            deterministic: bool = False) -> torch.Tensor:
        """a_i = argmax_b score_i(s, b) (deterministic: there is no actor to sample)."""
        return self.scores(observations).argmax(dim=-1)
