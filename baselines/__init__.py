"""Baseline actors registered with gin: factorised MLP (F-IQL) and autoregressive LSTM (AR-IQL)."""
from spin_bench.baselines.autoregressive import AutoregressiveActor
from spin_bench.baselines.factorised import FactorisedMLPActor

__all__ = ["AutoregressiveActor", "FactorisedMLPActor"]
