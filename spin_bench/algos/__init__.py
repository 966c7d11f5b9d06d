"""Offline RL algorithms; each of ALGORITHMS works with every actor (transformer, SPIN, factorised,
AR); DECQN_ALGORITHMS are value-based (method "decqn")."""
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

ALGORITHMS = {"iql": IQL, "awac": AWAC, "bcq": BCQ, "bc": BC}
# The value-decomposition learners of the published discretised-DMC benchmark (method "decqn"):
# no actor, a greedy per-slot policy; constructed as cls(obs_dim, bins).
DECQN_ALGORITHMS = {"cql": DecQNCQL, "bcq": DecQNBCQ, "iql": DecQNIQL, "onestep": DecQNOneStep}

__all__ = ["ALGORITHMS", "AWAC", "BC", "BCQ", "Batch", "DECQN_ALGORITHMS", "DecQNBCQ", "DecQNCQL", "DecQNIQL",
           "DecQNLearner", "DecQNOneStep", "IQL", "OfflineAlgorithm", "make_optimizer"]
