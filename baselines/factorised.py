"""F-IQL's actor: a factorised MLP policy (independent categorical heads on a shared trunk)."""
from __future__ import annotations

from typing import Sequence, Tuple

import gin
import torch
from torch import nn

from spin_bench.models.actors import FactoredActor
from spin_bench.models.common import apply_bins_mask

__all__ = ["FactorisedMLPActor"]


@gin.configurable
class FactorisedMLPActor(FactoredActor):
    """logits(s) = reshape(W h(s) + b, (N, max_bins)) masked, h = ReLU MLP trunk (2x256);
    pi(a | s) = prod_i softmax(logits_i(s))[a_i]. The N heads are one Linear to N * max_bins."""

    def __init__(self, obs_dim: int, bins: Sequence[int], hidden: Sequence[int] = (256, 256)):
        super().__init__(obs_dim, bins)
        self.trunk, width = self.make_trunk(self.obs_dim, [int(h) for h in hidden])
        self.head = nn.Linear(width, self.num_slots * self.max_bins)

    def make_trunk(self, obs_dim: int, hidden: Sequence[int]) -> Tuple[nn.Module, int]:
        """h(s): the shared trunk and its output width; here a ReLU MLP. The hook a variant
        overrides (a residual trunk, a normalised one) without touching the heads."""
        dims = [obs_dim, *hidden]
        layers: list[nn.Module] = []
        for i, o in zip(dims[:-1], dims[1:]):
            layers += [nn.Linear(i, o), nn.ReLU()]
        return nn.Sequential(*layers), dims[-1]

    def logits(self, obs: torch.Tensor) -> torch.Tensor:
        """Masked logits (B, N, max_bins)."""
        out = self.head(self.trunk(obs)).view(obs.shape[0], self.num_slots, self.max_bins)
        return apply_bins_mask(out, self.bins_mask)
