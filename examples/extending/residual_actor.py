"""A method of your own: F-IQL's factorised actor with a residual trunk ("ResF").

The suite's factorised actor builds its trunk in one hook, ``make_trunk``; this subclass
replaces only that. ``register_method`` makes ``resf`` a method of the suite: ``run``,
``sweep`` and ``report`` treat it like the built-in ones."""
import os
from typing import Sequence, Tuple

import gin
import torch
from torch import nn

from spin_bench.baselines.factorised import FactorisedMLPActor
from spin_bench.vocab import register_method


class ResidualMLP(nn.Module):
    """h = W0 s, then h <- h + W2 ReLU(W1 LayerNorm(h)) per block, and a final ReLU."""

    def __init__(self, obs_dim: int, width: int, blocks: int):
        super().__init__()
        self.inp = nn.Linear(obs_dim, width)
        self.blocks = nn.ModuleList(
            nn.Sequential(nn.LayerNorm(width), nn.Linear(width, width), nn.ReLU(), nn.Linear(width, width))
            for _ in range(blocks))

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        h = self.inp(obs)
        for block in self.blocks:
            h = h + block(h)
        return torch.relu(h)


@gin.configurable
class ResidualFactorisedActor(FactorisedMLPActor):
    """The factorised actor (independent heads) on a residual trunk of len(hidden) blocks."""

    def make_trunk(self, obs_dim: int, hidden: Sequence[int]) -> Tuple[nn.Module, int]:
        return ResidualMLP(obs_dim, int(hidden[0]), len(hidden)), int(hidden[0])


register_method("resf", ResidualFactorisedActor, label="ResF", color="#56B4E9", marker="X", linestyle="-",
                gin_file=os.path.join(os.path.dirname(os.path.abspath(__file__)), "resf.gin"))
