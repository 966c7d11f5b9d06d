"""An algorithm of your own: CRR's binary filter as an AWAC variant.

AWAC weights the actor's log-likelihood by w(A) = min(exp(A / lambda), w_max) in one hook,
``advantage_weights``; CRR (Wang et al. 2020, "binary" variant) keeps the actions whose
advantage is positive: w(A) = 1[A > 0]. Everything else (critic, policy value) is AWAC's."""
import os

import gin
import torch

from spin_bench.algos.awac import AWAC
from spin_bench.vocab import register_algo


@gin.configurable
class CRR(AWAC):
    name = "crr"

    def advantage_weights(self, advantage: torch.Tensor) -> torch.Tensor:
        """w(A) = 1[A > 0]."""
        return (advantage > 0).to(advantage.dtype)


register_algo("crr", CRR, label="CRR",
              gin_file=os.path.join(os.path.dirname(os.path.abspath(__file__)), "crr.gin"))
