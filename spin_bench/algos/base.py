"""What every offline algorithm shares: the batch, optimiser construction, the factored
helpers (bin masks, expectations under a factored policy), and the update/act interface
the single training loop drives."""
from __future__ import annotations

import copy

from typing import Dict, Iterable, NamedTuple, Optional

import gin
import torch
from torch import nn

from spin_bench.models.common import adam_kwargs
from spin_bench.models.critics import FactoredCriticEnsemble


class Batch(NamedTuple):
    """A minibatch of transitions on the training device."""

    observations: torch.Tensor       # (B, D) float32
    actions: torch.Tensor            # (B, N) int64 bin indices
    rewards: torch.Tensor            # (B,) float32
    next_observations: torch.Tensor  # (B, D) float32
    terminals: torch.Tensor          # (B,) float32, 1.0 where the episode terminated (not truncated)


@gin.configurable
def make_optimizer(params: Iterable[nn.Parameter], lr: float, weight_decay: float = 0.0,
                   implementation: str = "auto") -> torch.optim.Optimizer:
    """Adam over `params` (only parameters that require grad: frozen ones get no state).

    implementation: 'fused' | 'foreach' | 'auto' (the suite's Adam policy, ``adam_kwargs``: fused
    where torch supports it on the parameters' device, CUDA and CPU).
    """
    params = [p for p in params if p.requires_grad]
    if implementation not in ("auto", "fused", "foreach"):
        raise ValueError(f"make_optimizer.implementation must be 'auto', 'fused' or 'foreach', got {implementation!r}")
    if implementation == "auto":
        kwargs = adam_kwargs(params[0].device if params else "cpu")
    else:
        kwargs = {"fused": True} if implementation == "fused" else {"foreach": True}
    if weight_decay:
        return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay, **kwargs)
    return torch.optim.Adam(params, lr=lr, **kwargs)


def expected_factored_q(probs: torch.Tensor, utilities: torch.Tensor) -> torch.Tensor:
    """E_{a~pi}[Q_k(s,a)] = sum_i sum_b pi_i(b|s) U_{k,i}(s,b), exact for a factored policy.

    probs: (B, N, M) per-slot probabilities (exactly 0 on padded bins); utilities: (K, B, N, M)
    finite (unmasked) -> (K, B).
    """
    return torch.einsum("bnm,kbnm->kb", probs, utilities)


# Optimiser param-group fields that describe how Adam runs on this process's device, not the
# run's hyperparameters: a checkpoint never overrides them.
_IMPLEMENTATION_FLAGS = ("fused", "foreach", "capturable", "differentiable")


class OfflineAlgorithm(nn.Module):
    """Interface of an algorithm: `update(batch)` does one gradient step of every loss and
    returns the losses as (unsynchronised) scalar tensors; `act(obs, generator)` is the
    evaluation policy. Modules are attributes (so state_dict covers them); optimisers are in
    `self.optimizers` and checkpointed by the trainer."""

    name: str = "base"

    def __init__(self) -> None:
        super().__init__()
        self.optimizers: Dict[str, torch.optim.Optimizer] = {}

    def init_actor_critic(self, actor: nn.Module, obs_dim: int, bins, lr: float, actor_lr: float) -> None:
        """The actor, a factored critic ensemble with its frozen Polyak target, and their Adams."""
        self.actor = actor
        self.critic = FactoredCriticEnsemble(obs_dim, bins)
        self.target_critic = copy.deepcopy(self.critic).requires_grad_(False)
        self.optimizers = {"actor": make_optimizer(actor.parameters(), actor_lr),
                           "critic": make_optimizer(self.critic.parameters(), lr)}

    def update(self, batch: Batch) -> Dict[str, torch.Tensor]:  # pragma: no cover - interface
        raise NotImplementedError

    @torch.no_grad()
    def act(self, observations: torch.Tensor, generator: Optional[torch.Tensor] = None,
            deterministic: bool = False) -> torch.Tensor:
        """Evaluation action (B, N): sampled from the actor unless `deterministic`."""
        if deterministic:
            return self.actor.mode(observations)
        return self.actor.sample(observations, generator=generator)

    # -- checkpointing -------------------------------------------------------------------------
    def full_state_dict(self) -> dict:
        return {"modules": self.state_dict(),
                "optimizers": {k: o.state_dict() for k, o in self.optimizers.items()}}

    def load_full_state_dict(self, state: dict) -> None:
        """Load a checkpoint written on any device (tensors are copied to where the modules
        live) and by any update mode: the optimisers keep their own implementation
        (fused/foreach/capturable), not the writer's."""
        self.load_state_dict(state["modules"])
        for k, o in self.optimizers.items():
            keep = [{f: g[f] for f in _IMPLEMENTATION_FLAGS if f in g} for g in o.param_groups]
            o.load_state_dict(state["optimizers"][k])
            for group, flags in zip(o.param_groups, keep):
                group.update(flags)
                if not (group.get("capturable") or group.get("fused")):
                    continue  # these keep `step` on the parameters' device as float32
                for p in group["params"]:
                    step = o.state.get(p, {}).get("step")
                    if torch.is_tensor(step):
                        o.state[p]["step"] = step.to(device=p.device, dtype=torch.float32)


def step(optimizer: torch.optim.Optimizer, loss: torch.Tensor,
         grad_clip: Optional[float] = None) -> None:
    """zero_grad(set_to_none) -> backward -> optional global-norm clip -> step."""
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    if grad_clip is not None:
        torch.nn.utils.clip_grad_norm_(
            [p for g in optimizer.param_groups for p in g["params"]], grad_clip, foreach=True)
    optimizer.step()
