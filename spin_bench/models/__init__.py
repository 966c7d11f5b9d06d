"""Models: the ASM and its pre-training, the transformer actor (SAINT; SPIN = initialised from a
frozen ASM), the factored critic ensemble and the value network. Baseline actors live in
``baselines/`` (factorised MLP, autoregressive LSTM)."""
from spin_bench.models.actors import Actor, FactoredActor, TransformerActor, gumbel_argmax
from spin_bench.models.asm import (ActionStructureModel, ASMCheckpoint, exact_match_rate, mam_corrupt,
                                   masked_action_modelling_loss, pretrain_asm)
from spin_bench.models.common import apply_bins_mask, bins_mask, mask_value
from spin_bench.models.critics import FactoredCriticEnsemble, ValueNetwork, polyak_update
from spin_bench.models.spin import load_asm_into_actor, make_spin_actor
from spin_bench.models.transformer import StateEncoder, TransformerBlock, TransformerEncoder

__all__ = [
    "Actor", "FactoredActor", "TransformerActor", "gumbel_argmax", "ActionStructureModel", "ASMCheckpoint",
    "exact_match_rate", "mam_corrupt", "masked_action_modelling_loss", "pretrain_asm", "apply_bins_mask",
    "bins_mask", "mask_value", "FactoredCriticEnsemble", "ValueNetwork", "polyak_update",
    "load_asm_into_actor", "make_spin_actor", "StateEncoder", "TransformerBlock", "TransformerEncoder",
]
