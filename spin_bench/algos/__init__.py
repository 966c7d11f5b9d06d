"""Offline RL algorithms. The registry (spin_bench.vocab: register_algo) names them: the actor
algorithms (IQL, AWAC, BCQ, BC) work with every actor (transformer, SPIN, factorised, AR); the
value-based ones (DecQN-CQL, -BCQ, -IQL, -OneStep) are method "decqn"'s."""
from spin_bench.algos.awac import AWAC
from spin_bench.algos.base import Batch, OfflineAlgorithm, make_optimizer
from spin_bench.algos.bc import BC
from spin_bench.algos.bcq import BCQ
from spin_bench.algos.decqn import DecQNLearner
from spin_bench.algos.decqn_bcq import DecQNBCQ
from spin_bench.algos.decqn_cql import DecQNCQL
from spin_bench.algos.decqn_iql import DecQNIQL
from spin_bench.algos.decqn_onestep import DecQNOneStep
from spin_bench.algos.iql import IQL

__all__ = ["AWAC", "BC", "BCQ", "Batch", "DecQNBCQ", "DecQNCQL", "DecQNIQL",
           "DecQNLearner", "DecQNOneStep", "IQL", "OfflineAlgorithm", "make_optimizer"]
