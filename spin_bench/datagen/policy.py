"""The behaviour policy: a DecQN Q-network (one utility per (slot, bin), greedy per slot) and
its snapshot file, what the shipped ``spin_bench/policies/<task>/{medium,expert}.pt`` are.

DecQN (Seyde et al., 2023) decomposes the joint Q-value over sub-actions:
``Q(s, a) = mean_i U_i(s, a_i)``. A snapshot holds the network's weights (float32), the spec
to rebuild it and free-form metadata; it loads with ``torch.load(weights_only=True)``.
"""
from __future__ import annotations

from typing import Dict, List, Sequence

import numpy as np
import torch
from torch import nn

from spin_bench.atomic import atomic_torch_save
from spin_bench.safe_load import load_torch_file

SNAPSHOT_FORMAT = "spin_bench.decqn_snapshot.v1"
_NEG = -1e9


class DecQNNetwork(nn.Module):
    """MLP (optionally LayerNorm after each hidden Linear) -> one utility per (slot, bin)."""

    def __init__(self, obs_dim: int, bins: Sequence[int], hidden: Sequence[int] = (512, 512),
                 layer_norm: bool = True):
        super().__init__()
        self.obs_dim = int(obs_dim)
        self.bins = [int(b) for b in bins]
        self.hidden = [int(h) for h in hidden]
        self.layer_norm = bool(layer_norm)
        self.num_slots, self.max_bins = len(self.bins), max(self.bins)
        layers: List[nn.Module] = []
        d = self.obs_dim
        for h in self.hidden:
            layers.append(nn.Linear(d, h))
            if self.layer_norm:
                layers.append(nn.LayerNorm(h))
            layers.append(nn.ReLU())
            d = h
        layers.append(nn.Linear(d, self.num_slots * self.max_bins))
        self.mlp = nn.Sequential(*layers)
        pad = torch.zeros(self.num_slots, self.max_bins, dtype=torch.bool)
        for i, b in enumerate(self.bins):
            pad[i, b:] = True
        self.register_buffer("pad", pad, persistent=False)
        self._any_pad = bool(pad.any())

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        """(B, obs_dim) -> utilities (B, N, max_bins); padded bins hold -1e9."""
        u = self.mlp(obs).view(-1, self.num_slots, self.max_bins)
        if self._any_pad:
            u = u.masked_fill(self.pad, _NEG)
        return u

    @torch.no_grad()
    def greedy(self, obs: np.ndarray) -> np.ndarray:
        """Batched greedy action ``a_i = argmax_b U_i(s, b)``: (E, obs_dim) numpy -> (E, N) int64
        bin indices, computed in the network's own dtype (float64 for data collection, see
        ``load_snapshot(precision=...)``)."""
        dtype = self.mlp[0].weight.dtype
        return self(torch.as_tensor(obs, dtype=dtype)).argmax(-1).numpy()

    def spec(self) -> Dict:
        return dict(obs_dim=self.obs_dim, bins=self.bins, hidden=self.hidden,
                    layer_norm=self.layer_norm)


def save_snapshot(net: DecQNNetwork, path: str, **meta) -> None:
    """Q-network weights only (float32) plus what is needed to rebuild it; atomic."""
    payload = dict(format=SNAPSHOT_FORMAT, spec=net.spec(),
                   state_dict={k: v.detach().float().cpu().clone() for k, v in net.state_dict().items()},
                   meta=meta)
    atomic_torch_save(payload, path)


def load_snapshot(path: str, precision: str = "float32") -> DecQNNetwork:
    """Rebuild a DecQNNetwork from a snapshot file (weights only: weights_only=True).

    ``precision``: the dtype the network evaluates in ("float32" as stored, or "float64",
    what data collection uses). A float32 forward pass rounds differently on different CPU
    instruction sets (AVX2 / AVX-512 kernels sum in different orders, ~1e-7 relative), which
    flips an argmax between near-equal utilities a few times in 10^6 decisions; one flipped
    action changes the rest of the episode, so float32 datasets of 200k transitions differed
    between machines. In float64 the rounding differences (~1e-16) almost never reach a
    decision, and the datasets are the same on every machine we checked (docs/data-identity.md).
    """
    payload = load_torch_file(path, "DecQN snapshot")
    if not isinstance(payload, dict) or payload.get("format") != SNAPSHOT_FORMAT:
        raise ValueError(f"{path}: not a DecQN snapshot (format {payload.get('format')!r})")
    net = DecQNNetwork(**payload["spec"])
    net.load_state_dict(payload["state_dict"])
    net.to(getattr(torch, precision))
    net.eval()
    net.meta = payload.get("meta", {})
    return net
