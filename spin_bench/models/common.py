"""Shared building blocks: per-slot bins layout and masking, batched per-slot heads and
stacked (ensemble) linear layers.

Layout convention used by every model: a factorised action has N slots (sub-actions),
slot i has ``bins[i]`` choices; per-slot tensors are padded to ``max_bins = max(bins)``
and ``bins_mask[i, j] = j < bins[i]`` marks the valid entries. Invalid logits are filled
with a large *finite* negative number (``mask_value``) so softmax gives them exactly 0
probability and log-softmax stays finite (no ``-inf - -inf = NaN``).
"""
from __future__ import annotations

import math
from typing import Optional, Sequence

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "as_bins", "bins_mask", "mask_value", "apply_bins_mask", "masked_entropy",
    "SlotHeads", "StackedLinear", "init_uniform_fan_in", "adam_kwargs", "dropout", "synchronize",
]


def as_bins(bins: Sequence[int] | int, num_slots: Optional[int] = None) -> tuple[int, ...]:
    """Normalise ``bins`` (an int with ``num_slots``, or a sequence) to a tuple of ints >= 2."""
    if isinstance(bins, int) or (torch.is_tensor(bins) and bins.dim() == 0):
        if num_slots is None:
            raise ValueError("an integer `bins` needs `num_slots`")
        bins = [int(bins)] * int(num_slots)
    out = tuple(int(b) for b in (bins.tolist() if torch.is_tensor(bins) else bins))
    if len(out) == 0 or min(out) < 2:
        raise ValueError(f"bins must be a non-empty list of integers >= 2, got {list(out)}")
    return out


def bins_mask(bins: Sequence[int]) -> torch.Tensor:
    """Boolean (N, max_bins) with ``mask[i, j] = j < bins[i]``."""
    bins = [int(x) for x in bins]
    b = torch.as_tensor(bins, dtype=torch.long)
    return torch.arange(max(bins))[None, :] < b[:, None]  # no .item(): works on the meta device too


def mask_value(dtype: torch.dtype) -> float:
    """Finite fill value for invalid logits: -1e9 where representable, else finfo.min / 2."""
    info = torch.finfo(dtype)
    return -1e9 if info.max > 1e10 else info.min / 2


def apply_bins_mask(logits: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """``logits[..., i, j]`` if ``mask[i, j]`` else ``mask_value`` (mask broadcasts, (N, max_bins))."""
    return logits.masked_fill(~mask, mask_value(logits.dtype))


def masked_entropy(logits: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Per-slot entropy H_i = -sum_j p_ij log p_ij over valid bins; (..., N, max_bins) -> (..., N)."""
    logp = F.log_softmax(logits, dim=-1)
    plogp = torch.where(mask, logp.exp() * logp, torch.zeros((), dtype=logp.dtype, device=logp.device))
    return -plogp.sum(-1)


def dropout(x: torch.Tensor, p: float, training: bool = True) -> torch.Tensor:
    """Inverted dropout: y = x * m / (1 - p), m_j ~ Bernoulli(1 - p) i.i.d.

    On CUDA (and whenever p is 0 or 1 or not training) this is ``F.dropout``. On the CPU the
    mask is drawn 16 bits per element, four elements per 64-bit draw of the global generator
    (``random_`` over the whole int64 range, viewed as int16): m_j = 1(r_j >= -32768 + round(65536 p)), so the
    drop probability is round(65536 p) / 65536 (0.1 -> 0.100006). ``F.dropout``'s CPU kernel
    draws one double per element (``bernoulli_``), which cost ~20% of a transformer step at
    the cpu scale; this mask makes dropout's forward+backward ~2x cheaper (``python -m
    spin_bench.perf.micro --what dropout``). Seeded like ``F.dropout``: ``torch.manual_seed``
    and the saved CPU RNG state make it reproducible.
    """
    if not training or p <= 0.0 or p >= 1.0 or x.device.type != "cpu":
        return F.dropout(x, p, training)
    n = x.numel()
    # random_() with no bounds would draw from [0, 2^63) (every fourth lane's sign bit 0, never
    # dropped): ask for the whole int64 range explicitly.
    bits = torch.empty((n + 3) // 4, dtype=torch.int64).random_(-2**63, 2**63 - 1)
    bits = bits.view(torch.int16)[:n].view(x.shape)
    keep = (bits >= -32768 + round(65536 * p)).to(x.dtype).mul_(1.0 / (1.0 - p))
    return x * keep


_FUSED_OK: dict[str, bool] = {}


def adam_kwargs(device: torch.device | str) -> dict[str, bool]:
    """The suite's one Adam policy: the fastest implementation for ``device``, ``{"fused": True}``
    where supported (CUDA, and CPU in recent PyTorch: ~3x faster than foreach here for the ASM),
    else ``{"foreach": True}``. Usage: ``torch.optim.Adam(params, lr=lr, **adam_kwargs(device))``."""
    dev = torch.device(device)
    if dev.type not in _FUSED_OK:
        try:
            torch.optim.Adam([torch.zeros(1, device=dev, requires_grad=True)], fused=True)
            _FUSED_OK[dev.type] = True
        except (RuntimeError, TypeError, ValueError):
            _FUSED_OK[dev.type] = False
    return {"fused": True} if _FUSED_OK[dev.type] else {"foreach": True}


def init_uniform_fan_in(tensor: torch.Tensor, fan_in: int) -> None:
    """PyTorch's nn.Linear default init: U(-1/sqrt(fan_in), 1/sqrt(fan_in))."""
    bound = 1.0 / math.sqrt(fan_in) if fan_in > 0 else 0.0
    with torch.no_grad():
        tensor.uniform_(-bound, bound)


def _activation(name: str):
    if name == "gelu":
        return F.gelu
    if name == "relu":
        return F.relu
    raise ValueError(f"unknown activation {name!r} (use 'gelu' or 'relu')")


class SlotHeads(nn.Module):
    """N independent per-slot MLP heads evaluated as ONE batched op (no loop over slots).

    y[b, i] = W2_i drop(act(W1_i x[b, i] + b1_i)) + b2_i   with W1: (N, d_in, h), W2: (N, h, d_out);
    with ``hidden=None`` a per-slot linear map y[b, i] = W_i x[b, i] + b_i.
    Implemented as ``torch.baddbmm`` over the slot dimension (slot-major layout), which was
    faster than ``einsum`` on CPU in our measurements (see spin_bench/perf/micro.py).
    Each slot's weights are initialised exactly like an ``nn.Linear`` of the same shape.
    """

    def __init__(self, num_slots: int, in_dim: int, hidden: Optional[int], out_dim: int,
                 activation: str = "gelu", dropout: float = 0.0):
        super().__init__()
        self.num_slots, self.in_dim, self.hidden, self.out_dim = num_slots, in_dim, hidden, out_dim
        self.dropout = float(dropout)
        self._act = _activation(activation)
        dims = [in_dim] + ([hidden] if hidden else []) + [out_dim]
        self.weights = nn.ParameterList()
        self.biases = nn.ParameterList()
        for d_in, d_out in zip(dims[:-1], dims[1:]):
            w = nn.Parameter(torch.empty(num_slots, d_in, d_out))
            b = nn.Parameter(torch.empty(num_slots, 1, d_out))
            init_uniform_fan_in(w, d_in)
            init_uniform_fan_in(b, d_in)
            self.weights.append(w)
            self.biases.append(b)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, N, d_in) -> (B, N, d_out)."""
        h = x.transpose(0, 1)  # (N, B, d_in)
        last = len(self.weights) - 1
        for layer, (w, b) in enumerate(zip(self.weights, self.biases)):
            h = torch.baddbmm(b, h, w)
            if layer < last:
                h = self._act(h)
                if self.dropout > 0:
                    h = dropout(h, self.dropout, self.training)
        return h.transpose(0, 1)

    def forward_slot(self, x: torch.Tensor, slot: int) -> torch.Tensor:
        """Head of one slot only: (B, d_in) -> (B, d_out) (for step-by-step decoding)."""
        h = x
        last = len(self.weights) - 1
        for layer, (w, b) in enumerate(zip(self.weights, self.biases)):
            h = torch.addmm(b[slot], h, w[slot])
            if layer < last:
                h = self._act(h)
                if self.dropout > 0:
                    h = dropout(h, self.dropout, self.training)
        return h


class StackedLinear(nn.Module):
    """E independent linear layers as one batched op: y_e = x_e W_e + b_e, W: (E, d_in, d_out).

    Input (E, B, d_in) -> (E, B, d_out) via ``torch.baddbmm``; or a shared input (B, d_in)
    (the first layer of an ensemble) -> (E, B, d_out) via one (B, d_in) x (d_in, E*d_out) matmul.
    """

    def __init__(self, ensemble_size: int, in_dim: int, out_dim: int):
        super().__init__()
        self.ensemble_size, self.in_dim, self.out_dim = ensemble_size, in_dim, out_dim
        self.weight = nn.Parameter(torch.empty(ensemble_size, in_dim, out_dim))
        self.bias = nn.Parameter(torch.empty(ensemble_size, 1, out_dim))
        init_uniform_fan_in(self.weight, in_dim)
        init_uniform_fan_in(self.bias, in_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 2:  # shared input: broadcast over the ensemble without copying x
            x = x.unsqueeze(0).expand(self.ensemble_size, -1, -1)
        return torch.baddbmm(self.bias, x, self.weight)


def synchronize(device: torch.device | str) -> None:
    """Wait for the device's queued work (CUDA); a no-op on the CPU. For timing, never in a loop."""
    device = torch.device(device)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
