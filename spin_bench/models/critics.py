"""Critics shared by every method: a factored Q ensemble, a state-value MLP and Polyak averaging.

Q_e(s, a) = sum_i U_e(s)[i, a_i], U_e an MLP (2x256 ReLU) with one utility per (slot, bin).
All E ensemble members run as one batched tensor program: stacked weights (E, d_in, d_out)
and ``torch.baddbmm``. Measured on the 2-core CPU machine (one thread, E=2, batch 256,
forward+backward, median of interleaved rounds; ``python -m spin_bench.perf.micro --what critics``):
obs 17/N 6: baddbmm 10.5 ms, first-layer concat matmul 11.2, einsum 11.8, stack_module_state+vmap
14.3, Python loop 10.7; obs 223/N 38: 17.9, 17.7, 20.3, 23.8, 19.9. baddbmm is the fastest or
within noise of it in both, and vmap the slowest, so baddbmm is the implementation. (The machine was shared with other jobs, load ~4 on 2
cores: absolute times are inflated, the ranking held across repeats.)
"""
from __future__ import annotations

from typing import Iterable, Sequence, Union

import gin
import torch
import torch.nn.functional as F
from torch import nn

from spin_bench.models.common import StackedLinear, apply_bins_mask, as_bins, bins_mask

__all__ = ["FactoredCriticEnsemble", "ValueNetwork", "polyak_update"]


@gin.configurable
class FactoredCriticEnsemble(nn.Module):
    """E factored critics. ``utilities`` (E, B, N, max_bins); ``q`` (E, B) = sum of chosen utilities."""

    def __init__(self, obs_dim: int, bins: Sequence[int], num_critics: int = 2,
                 hidden: Sequence[int] = (256, 256)):
        super().__init__()
        self.bins = as_bins(bins)
        self.num_slots, self.max_bins, self.num_critics = len(self.bins), max(self.bins), int(num_critics)
        dims = [int(obs_dim), *[int(h) for h in hidden], self.num_slots * self.max_bins]
        self.layers = nn.ModuleList(StackedLinear(self.num_critics, i, o) for i, o in zip(dims[:-1], dims[1:]))
        self.register_buffer("bins_mask", bins_mask(self.bins), persistent=False)

    def raw_utilities(self, obs: torch.Tensor) -> torch.Tensor:
        """Unmasked U (E, B, N, max_bins) (padding entries are arbitrary)."""
        h = obs
        for layer in self.layers[:-1]:
            h = F.relu(layer(h))
        return self.layers[-1](h).view(self.num_critics, obs.shape[0], self.num_slots, self.max_bins)

    def utilities(self, obs: torch.Tensor) -> torch.Tensor:
        """U (E, B, N, max_bins) with invalid bins set to a large negative value (-1e9), so a max
        or argmax over bins ignores them (do not average over the padded axis)."""
        return apply_bins_mask(self.raw_utilities(obs), self.bins_mask)

    @staticmethod
    def gather_q(utilities: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """sum_i U[e, b, i, a_i]: actions (B, N) -> (E, B); (B, k, N) -> (E, B, k)."""
        e = utilities.shape[0]
        if actions.dim() == 3:
            u = utilities.unsqueeze(2).expand(-1, -1, actions.shape[1], -1, -1)  # (E, B, k, N, max_bins)
        else:
            u = utilities
        idx = actions.unsqueeze(0).expand(e, *actions.shape).unsqueeze(-1)
        return u.gather(-1, idx).squeeze(-1).sum(-1)

    def q(self, obs: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """Q_e(s, a) = sum_i U_e(s)[i, a_i]: (E, B) (or (E, B, k) for actions (B, k, N))."""
        return self.gather_q(self.raw_utilities(obs), actions)

    def q_min(self, obs: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """min_e Q_e(s, a): (B,) (or (B, k))."""
        return self.q(obs, actions).amin(0)

    def forward(self, obs: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        return self.q(obs, actions)


@gin.configurable
class ValueNetwork(nn.Module):
    """V(s): MLP (2x256 ReLU) -> (B,)."""

    def __init__(self, obs_dim: int, hidden: Sequence[int] = (256, 256)):
        super().__init__()
        dims = [int(obs_dim), *[int(h) for h in hidden]]
        layers: list[nn.Module] = []
        for i, o in zip(dims[:-1], dims[1:]):
            layers += [nn.Linear(i, o), nn.ReLU()]
        layers.append(nn.Linear(dims[-1], 1))
        self.net = nn.Sequential(*layers)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.net(obs).squeeze(-1)


ParamSource = Union[nn.Module, Iterable[torch.Tensor]]


@torch.no_grad()
def polyak_update(target: ParamSource, source: ParamSource, tau: float) -> None:
    """theta_target <- (1 - tau) theta_target + tau theta_source (one fused ``_foreach_lerp_``).
    Floating-point buffers of modules (if any) are copied."""
    tp = list(target.parameters()) if isinstance(target, nn.Module) else list(target)
    sp = list(source.parameters()) if isinstance(source, nn.Module) else list(source)
    if len(tp) != len(sp):
        raise ValueError(f"target has {len(tp)} parameters, source {len(sp)}")
    if tp:
        torch._foreach_lerp_(tp, sp, float(tau))
    if isinstance(target, nn.Module) and isinstance(source, nn.Module):
        tb = [b for b in target.buffers() if b.is_floating_point()]
        if tb:
            torch._foreach_copy_(tb, [b for b in source.buffers() if b.is_floating_point()])
