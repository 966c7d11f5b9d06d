"""SPIN = the transformer actor initialised from a pre-trained ASM (SPIN stage 2).

The ASM's state encoder and transformer encoder (blocks + final norm) are copied into a
``TransformerActor`` and frozen; only the slot queries and the decision heads train.

Frozen modules are kept in **eval mode** (dropout off) by default: they are a fixed feature
extractor, so their output is deterministic and ``actor.train()`` does not re-enable their
dropout. (The paper's public code sets requires_grad False but leaves the modules in train
mode, i.e. dropout stays active inside the frozen blocks; ``eval_frozen=False`` reproduces
that.) ``freeze=()`` fine-tunes everything from the ASM initialisation instead.
"""
from __future__ import annotations

import os
from typing import Optional, Sequence, Union

import gin
import torch

from spin_bench.models.actors import TransformerActor
from spin_bench.models.asm import ActionStructureModel, ASMCheckpoint
from spin_bench.models.common import as_bins

__all__ = ["load_asm_into_actor", "make_spin_actor", "ARCH_KEYS", "DEFAULT_FREEZE"]

ASMSource = Union[ASMCheckpoint, ActionStructureModel, str, os.PathLike]
DEFAULT_FREEZE = ("state_encoder", "encoder")
# Architecture fields that must agree between the ASM and the actor for the copy to be valid.
ARCH_KEYS = ("obs_dim", "bins", "d_model", "num_heads", "num_blocks", "num_state_tokens", "ffn_mult",
             "state_hidden_mult", "final_norm")


def _as_state_and_config(asm_checkpoint: ASMSource) -> tuple[dict[str, torch.Tensor], dict]:
    if isinstance(asm_checkpoint, (str, os.PathLike)):
        asm_checkpoint = ASMCheckpoint.load(asm_checkpoint)
    if isinstance(asm_checkpoint, ASMCheckpoint):
        return asm_checkpoint.state_dict, asm_checkpoint.config
    if isinstance(asm_checkpoint, ActionStructureModel):
        return asm_checkpoint.state_dict(), asm_checkpoint.config
    raise TypeError(f"expected an ASMCheckpoint, ActionStructureModel or path, got {type(asm_checkpoint)!r}")


def load_asm_into_actor(actor: TransformerActor, asm_checkpoint: ASMSource,
                        freeze: Sequence[str] = DEFAULT_FREEZE, eval_frozen: bool = True) -> TransformerActor:
    """Copy the ASM's ``state_encoder.*`` and ``encoder.*`` weights into ``actor`` (strict), then
    freeze the named submodules (dotted names, e.g. ("state_encoder", "encoder.blocks.0"))."""
    state, config = _as_state_and_config(asm_checkpoint)
    mismatch = {k: (config.get(k), actor.config.get(k)) for k in ARCH_KEYS if config.get(k) != actor.config.get(k)}
    if mismatch:
        raise ValueError(f"ASM and actor architectures differ (asm, actor): {mismatch}")
    for prefix in ("state_encoder", "encoder"):
        sub = {k[len(prefix) + 1:]: v for k, v in state.items() if k.startswith(prefix + ".")}
        getattr(actor, prefix).load_state_dict(sub, strict=True)
    actor.freeze(tuple(freeze), eval_frozen=eval_frozen)
    return actor


@gin.configurable(denylist=["asm_checkpoint"])
def make_spin_actor(obs_dim: int, bins: Sequence[int], asm_checkpoint: ASMSource,
                    freeze: Sequence[str] = DEFAULT_FREEZE, eval_frozen: bool = True,
                    head_hidden: Optional[int] = None, head_dropout: Optional[float] = None,
                    slot_init_std: Optional[float] = None,
                    device: Optional[torch.device | str] = None) -> TransformerActor:
    """SPIN actor: a ``TransformerActor`` with the ASM's architecture (d_model, heads, blocks, M,
    dropout... taken from the checkpoint) whose state encoder and encoder are the ASM's, frozen.
    Head settings left as None come from the ``TransformerActor`` gin bindings/defaults."""
    if isinstance(asm_checkpoint, (str, os.PathLike)):
        asm_checkpoint = ASMCheckpoint.load(asm_checkpoint)  # read the file once
    _, config = _as_state_and_config(asm_checkpoint)
    bins = as_bins(bins, len(config["bins"]))
    extra = {k: v for k, v in dict(head_hidden=head_hidden, head_dropout=head_dropout,
                                   slot_init_std=slot_init_std).items() if v is not None}
    actor = TransformerActor(obs_dim, bins, d_model=config["d_model"], num_heads=config["num_heads"],
                             num_blocks=config["num_blocks"], num_state_tokens=config["num_state_tokens"],
                             dropout=config["dropout"], ffn_mult=config["ffn_mult"],
                             state_hidden_mult=config["state_hidden_mult"], final_norm=config["final_norm"],
                             **extra)
    load_asm_into_actor(actor, asm_checkpoint, freeze=freeze, eval_frozen=eval_frozen)
    return actor.to(device) if device is not None else actor
