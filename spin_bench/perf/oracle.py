"""The straightforward computations the fast ones are checked and timed against (oracles).

The IQL step: the plain computation of the fast one in ``spin_bench/algos/iql.py``.

Same losses, same order of updates, same modules and weights, written the way one first writes
them: a Python loop over the ensemble members and over the slots (per-slot decision heads one at
a time where the actor has them), per-parameter Adam (``foreach=False``), a Polyak loop over
parameters, and ``.item()`` on every loss every step (a host sync). It serves two purposes:

- the tests check that ``IQL.update`` gives the same losses and parameters as
  ``oracle_iql_update`` on the same batch (speed never changes the algorithm);
- ``python -m spin_bench.bench --parts=reference`` times it at the same sizes in the same run,
  the "straightforward" figure the fast step is compared with.

It is not a training path: ``IQL`` is.  The evaluation: :func:`evaluate_sequential`, one
episode at a time with batch-1 inference, against which the benchmark times the batched
evaluator (``spin_bench.train.evaluation.evaluate_batched``).

  value:   L_V  = E[ |e - 1(u < 0)| u^2 ],              u = min_k Q'_k(s, a) - V(s)   (e: the expectile)
  critic:  L_Q  = sum_k E[ (r + gamma (1 - d) V(s') - Q_k(s, a))^2 ]
  actor:   L_pi = -E[ min(exp(beta A), w_max) log pi(a | s) ],  A = u
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Dict, Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from spin_bench.algos.base import Batch
from spin_bench.models.common import mask_value
from spin_bench.train.evaluation import Policy, action_function

if TYPE_CHECKING:  # the simulator is imported by whoever makes the env
    from spin_bench.envs import DiscretizedDMCEnv

__all__ = ["loop_q", "loop_log_prob", "oracle_optimizers", "oracle_iql_update", "evaluate_sequential"]


def loop_q(critic: nn.Module, obs: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
    """Q_k(s, a) = sum_i U_k(s)[i, a_i], one ensemble member and one slot at a time: (K, B)."""
    rows = torch.arange(obs.shape[0], device=obs.device)
    out = []
    for k in range(critic.num_critics):
        h = obs
        for j, layer in enumerate(critic.layers):
            h = h @ layer.weight[k] + layer.bias[k, 0]
            if j < len(critic.layers) - 1:
                h = F.relu(h)
        u = h.view(obs.shape[0], critic.num_slots, critic.max_bins)
        q = torch.zeros(obs.shape[0], device=obs.device)
        for i in range(critic.num_slots):
            q = q + u[rows, i, actions[:, i]]
        out.append(q)
    return torch.stack(out)


def loop_log_prob(actor: nn.Module, obs: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
    """log pi(a | s) = sum_i log softmax(logits_i)[a_i], one slot at a time: (B,).

    A transformer actor's decision heads run one slot at a time (``SlotHeads.forward_slot``);
    a factorised actor's logits come from its one output layer; an actor that is not factored
    (the autoregressive LSTM) uses its own teacher-forced ``log_prob``."""
    if not getattr(actor, "factored", False):
        return actor.log_prob(obs, actions)
    rows = torch.arange(obs.shape[0], device=obs.device)
    if hasattr(actor, "slot_features"):
        feats = actor.slot_features(obs)
        per_slot = [actor.heads.forward_slot(feats[:, i], i) for i in range(actor.num_slots)]
    else:
        logits = actor.logits(obs)
        per_slot = [logits[:, i] for i in range(actor.num_slots)]
    total = torch.zeros(obs.shape[0], device=obs.device)
    for i, logit in enumerate(per_slot):
        logit = logit.masked_fill(~actor.bins_mask[i], mask_value(logit.dtype))
        total = total + F.log_softmax(logit, -1)[rows, actions[:, i]]
    return total


def oracle_optimizers(algo: nn.Module) -> Dict[str, torch.optim.Optimizer]:
    """Per-parameter (for-loop) Adam for the value, critic and actor, with the algorithm's rates."""
    def adam(module: nn.Module, lr: float) -> torch.optim.Optimizer:
        return torch.optim.Adam([p for p in module.parameters() if p.requires_grad], lr=lr,
                                foreach=False, fused=False)
    return {"value": adam(algo.value, algo.optimizers["value"].param_groups[0]["lr"]),
            "critic": adam(algo.critic, algo.optimizers["critic"].param_groups[0]["lr"]),
            "actor": adam(algo.actor, algo.optimizers["actor"].param_groups[0]["lr"])}


def _step(opt: torch.optim.Optimizer, loss: torch.Tensor) -> None:
    opt.zero_grad()
    loss.backward()
    opt.step()


def oracle_iql_update(algo: nn.Module, batch: Batch, optimizers: Dict[str, torch.optim.Optimizer]
                      ) -> Dict[str, float]:
    """One IQL step of ``algo`` (an ``IQL``) the straightforward way; returns the losses as floats."""
    obs, act = batch.observations, batch.actions
    with torch.no_grad():
        target_q = loop_q(algo.target_critic, obs, act).min(0).values
    u = target_q - algo.value(obs)
    weight = torch.where(u < 0, 1.0 - algo.expectile, algo.expectile)
    value_loss = (weight * u ** 2).mean()
    _step(optimizers["value"], value_loss)

    with torch.no_grad():
        y = batch.rewards + algo.gamma * (1 - batch.terminals) * algo.value(batch.next_observations)
    q = loop_q(algo.critic, obs, act)
    critic_loss = sum(((q[k] - y) ** 2).mean() for k in range(q.shape[0]))
    _step(optimizers["critic"], critic_loss)
    with torch.no_grad():
        for p_t, p in zip(algo.target_critic.parameters(), algo.critic.parameters()):
            p_t.mul_(1 - algo.tau).add_(algo.tau * p)

    weights = torch.exp(algo.beta * u.detach()).clamp(max=algo.max_weight)
    actor_loss = -(weights * loop_log_prob(algo.actor, obs, act)).mean()
    _step(optimizers["actor"], actor_loss)
    return {"value_loss": value_loss.item(), "critic_loss": critic_loss.item(), "actor_loss": actor_loss.item(),
            "q_mean": q.mean().item(), "adv_weight_mean": weights.mean().item()}


@torch.no_grad()
def evaluate_sequential(policy: Policy, env: "DiscretizedDMCEnv", seeds: Sequence[int],
                        device: torch.device, generator: Optional[torch.Generator] = None,
                        max_steps: Optional[int] = None) -> np.ndarray:
    """The straightforward way (one episode at a time, batch-1 inference), kept as the
    baseline the benchmark compares the batched evaluator against; rewards summed as floats."""
    from spin_bench.envs import EpisodeLoop, VectorEnv

    act = action_function(policy, device, generator)  # called with (1, obs_dim): batch 1
    single = VectorEnv.from_envs([env])
    returns = []
    for s in seeds:
        total = 0.0
        for step in EpisodeLoop(single, [s]).run(act, max_steps):
            total += float(step.rewards[0])
        returns.append(total)
    return np.asarray(returns)
