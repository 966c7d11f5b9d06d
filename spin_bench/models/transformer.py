"""The one transformer implementation shared by the ASM and the transformer actor.

Pre-LayerNorm blocks (Xiong et al., 2020):
    x <- x + Drop(W_o MHA(LN_1(x)))
    x <- x + Drop(W_2 Drop(GELU(W_1 LN_2(x))))          W_1: d -> ffn_mult * d
followed (in ``TransformerEncoder``) by a final LayerNorm. There is no positional encoding
anywhere: the encoder is permutation-equivariant over its tokens, which carry their
identity in their own embeddings (per-slot tables / per-slot queries).

Attention is ``F.scaled_dot_product_attention`` except for short sequences on the CPU (at most
``BLOCK_DIAGONAL_MAX`` head-tokens, num_heads x L: cheetah-run's 7 tokens and finger-spin's 3
with 4 heads). There the heads of a row are one (H L) x (H L) attention whose cross-head
scores are masked to -inf, i.e. a block-diagonal matrix of the H per-head attentions: one
batched matmul of B matrices instead of B H tiny ones, and q, k, v come straight from their
slices of the same ``qkv`` layer without a permute copy. Same function, same parameters.
Measured per block forward+backward (d_model 64, 4 heads, B 256): 14% faster in train mode
and 24% in eval mode (SPIN's frozen blocks) at L=7, even at L=9, 18% slower at L=13
(``python -m spin_bench.perf.micro --what attention``).
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from spin_bench.models.common import dropout

__all__ = ["TransformerBlock", "TransformerEncoder", "StateEncoder", "BLOCK_DIAGONAL_MAX"]

# Largest num_heads * L for which CPU attention uses the block-diagonal form (0 turns it off).
BLOCK_DIAGONAL_MAX = 32

_HEAD_MASKS: dict = {}


def _head_mask(num_heads: int, length: int, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """Additive (H L, H L) mask over tokens ordered (position, head): 0 where both tokens belong
    to the same head, -inf elsewhere (cached)."""
    key = (num_heads, length, device, dtype)
    if key not in _HEAD_MASKS:
        head = torch.arange(length * num_heads, device=device) % num_heads
        _HEAD_MASKS[key] = torch.zeros(length * num_heads, length * num_heads, device=device, dtype=dtype) \
            .masked_fill(head[:, None] != head[None, :], float("-inf"))
    return _HEAD_MASKS[key]


class TransformerBlock(nn.Module):
    """One pre-LN self-attention block (full bidirectional attention, no mask)."""

    def __init__(self, d_model: int = 256, num_heads: int = 4, dropout: float = 0.1, ffn_mult: int = 2):
        super().__init__()
        if d_model % num_heads:
            raise ValueError(f"d_model ({d_model}) must be divisible by num_heads ({num_heads})")
        self.d_model, self.num_heads, self.dropout = d_model, num_heads, float(dropout)
        self.ln1 = nn.LayerNorm(d_model)
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.proj = nn.Linear(d_model, d_model)
        self.ln2 = nn.LayerNorm(d_model)
        self.ffn_in = nn.Linear(d_model, ffn_mult * d_model)
        self.ffn_out = nn.Linear(ffn_mult * d_model, d_model)

    def attention(self, h: torch.Tensor, p: float) -> torch.Tensor:
        """Multi-head self-attention before the output projection: per head
        softmax(q k^T / sqrt(d_h)) v with dropout p on the attention weights; (B, L, d) -> (B, L, d)."""
        b, l, d = h.shape
        heads, dh = self.num_heads, d // self.num_heads
        if h.device.type == "cpu" and heads * l <= BLOCK_DIAGONAL_MAX:
            w, bias = self.qkv.weight, self.qkv.bias
            q, k, v = (F.linear(h, w[i * d:(i + 1) * d], bias[i * d:(i + 1) * d]).view(b, l * heads, dh)
                       for i in range(3))  # tokens ordered (position, head)
            scores = torch.baddbmm(_head_mask(heads, l, h.device, h.dtype), q, k.transpose(1, 2), alpha=dh ** -0.5)
            return torch.bmm(dropout(scores.softmax(-1), p, self.training), v).view(b, l, d)
        q, k, v = self.qkv(h).view(b, l, 3, heads, dh).permute(2, 0, 3, 1, 4)
        return F.scaled_dot_product_attention(q, k, v, dropout_p=p).transpose(1, 2).reshape(b, l, d)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, L, d) -> (B, L, d)."""
        p = self.dropout if self.training else 0.0
        x = x + dropout(self.proj(self.attention(self.ln1(x), p)), p, self.training)
        h = dropout(F.gelu(self.ffn_in(self.ln2(x))), p, self.training)
        return x + dropout(self.ffn_out(h), p, self.training)


class TransformerEncoder(nn.Module):
    """``num_blocks`` pre-LN blocks followed by a final LayerNorm (``final_norm``)."""

    def __init__(self, d_model: int = 256, num_heads: int = 4, num_blocks: int = 3,
                 dropout: float = 0.1, ffn_mult: int = 2, final_norm: bool = True):
        super().__init__()
        self.blocks = nn.ModuleList(TransformerBlock(d_model, num_heads, dropout, ffn_mult)
                                    for _ in range(num_blocks))
        self.norm = nn.LayerNorm(d_model) if final_norm else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, L, d) -> (B, L, d)."""
        for block in self.blocks:  # loop over layers (depth), not over tokens
            x = block(x)
        return self.norm(x)


class StateEncoder(nn.Module):
    """MLP state -> M tokens: z = W_2 GELU(W_1 s + b_1) + b_2 reshaped to (B, M, d); hidden = hidden_mult*d."""

    def __init__(self, obs_dim: int, d_model: int = 256, num_tokens: int = 1, hidden_mult: int = 2):
        super().__init__()
        self.num_tokens, self.d_model = num_tokens, d_model
        self.net = nn.Sequential(nn.Linear(obs_dim, hidden_mult * d_model), nn.GELU(),
                                 nn.Linear(hidden_mult * d_model, num_tokens * d_model))

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        """(B, obs_dim) -> (B, M, d)."""
        return self.net(obs).view(obs.shape[0], self.num_tokens, self.d_model)


def transformer_config(obs_dim: int, bins: Sequence[int], d_model: int, num_heads: int, num_blocks: int,
                       num_state_tokens: int, dropout: float, ffn_mult: int, state_hidden_mult: int,
                       final_norm: bool) -> dict:
    """The architecture fields shared by the ASM and the transformer actor (JSON-able)."""
    return dict(obs_dim=int(obs_dim), bins=[int(b) for b in bins], d_model=int(d_model),
                num_heads=int(num_heads), num_blocks=int(num_blocks), num_state_tokens=int(num_state_tokens),
                dropout=float(dropout), ffn_mult=int(ffn_mult), state_hidden_mult=int(state_hidden_mult),
                final_norm=bool(final_norm))

