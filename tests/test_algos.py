"""Algorithms against plain reference computations: same losses and parameter updates as a
loop-over-critics-and-slots implementation, exact expectations and argmaxes by enumeration."""
import copy
import itertools

import numpy as np
import pytest
import torch

from spin_bench.baselines.autoregressive import AutoregressiveActor
from spin_bench.baselines.factorised import FactorisedMLPActor
from spin_bench.algos import AWAC, BCQ, IQL, Batch
from spin_bench.perf.oracle import loop_log_prob, loop_q
from spin_bench.perf.oracle import oracle_iql_update as reference_iql_update
from spin_bench.perf.oracle import oracle_optimizers as reference_optimizers
from spin_bench.models import TransformerActor
from spin_bench.train.trainer import NumericalError, Schedule, train

OBS, BINS = 5, [3, 2, 4]


def _batch(b=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    acts = torch.stack([torch.randint(n, (b,), generator=g) for n in BINS], dim=1)
    return Batch(torch.randn(b, OBS, generator=g), acts, torch.rand(b, generator=g),
                 torch.randn(b, OBS, generator=g), (torch.rand(b, generator=g) < 0.2).float())


@pytest.mark.parametrize("make_actor", [
    lambda: FactorisedMLPActor(OBS, BINS),
    lambda: TransformerActor(OBS, BINS, d_model=16, num_heads=2, num_blocks=1, head_hidden=8,
                             dropout=0.0, head_dropout=0.0),
    lambda: AutoregressiveActor(OBS, BINS, state_embed_dim=8, action_embed_dim=4, lstm_hidden=8),
], ids=["factorised", "transformer", "autoregressive"])
def test_iql_update_equals_reference_computation(make_actor):
    """The fast IQL step (batched ensemble, batched slot heads, fused Adam, fused Polyak) gives the
    same losses and parameters as the straightforward loop-over-critics-and-slots step."""
    torch.manual_seed(0)
    algo = IQL(make_actor(), OBS, BINS)
    ref = copy.deepcopy(algo)
    opts = reference_optimizers(ref)
    for seed in range(2):  # two steps: Adam's second moments and the Polyak targets both matter
        batch = _batch(seed=seed)
        losses = algo.update(batch)
        ref_losses = reference_iql_update(ref, batch, opts)
        for key, value in ref_losses.items():
            assert losses[key].item() == pytest.approx(value, rel=1e-5, abs=1e-6), key
    for name in ("actor", "critic", "value", "target_critic"):
        for (pname, p), r in zip(getattr(algo, name).named_parameters(), getattr(ref, name).parameters()):
            if pname.endswith("qkv.bias"):
                # The key bias has an analytically zero gradient (softmax is shift-invariant), so
                # both steps see float noise there and Adam scales it up to ~lr: compare the rest.
                d = p.shape[0] // 3
                p, r = torch.cat([p[:d], p[2 * d:]]), torch.cat([r[:d], r[2 * d:]])
            torch.testing.assert_close(p, r, rtol=1e-5, atol=1e-6, msg=lambda m: f"{name}.{pname}: {m}")
    for p in algo.target_critic.parameters():
        assert p.requires_grad is False


def test_reference_loops_match_batched_q_and_log_prob():
    torch.manual_seed(1)
    algo = IQL(TransformerActor(OBS, BINS, d_model=16, num_heads=2, num_blocks=1, head_hidden=8), OBS, BINS).eval()
    batch = _batch()
    torch.testing.assert_close(loop_q(algo.critic, batch.observations, batch.actions),
                               algo.critic.q(batch.observations, batch.actions))
    torch.testing.assert_close(loop_log_prob(algo.actor, batch.observations, batch.actions),
                               algo.actor.log_prob(batch.observations, batch.actions))


def test_awac_policy_value_equals_enumeration():
    torch.manual_seed(1)
    algo = AWAC(FactorisedMLPActor(OBS, BINS), OBS, BINS)
    obs = torch.randn(4, OBS)
    with torch.no_grad():
        fast = algo.policy_value(algo.critic, obs)
        probs = torch.softmax(algo.actor.logits(obs), -1)
        joint = torch.tensor(list(itertools.product(*[range(b) for b in BINS])))
        total = torch.zeros(2, 4)
        for a in joint:
            p = probs[:, 0, a[0]] * probs[:, 1, a[1]] * probs[:, 2, a[2]]
            total += p * loop_q(algo.critic, obs, a.expand(4, -1))
    torch.testing.assert_close(fast, total.min(0).values, rtol=1e-5, atol=1e-5)


def test_bcq_factored_selection_is_the_constrained_joint_argmax():
    torch.manual_seed(2)
    algo = BCQ(FactorisedMLPActor(OBS, BINS), OBS, BINS, threshold=0.3)
    obs = torch.randn(6, OBS)
    chosen = algo.select(obs)
    with torch.no_grad():
        probs = torch.softmax(algo.actor.logits(obs), -1)
        joint = torch.tensor(list(itertools.product(*[range(b) for b in BINS])))
        for row in range(6):
            best, best_q = None, -np.inf
            for a in joint:
                ok = all(probs[row, i, a[i]] / probs[row, i, :BINS[i]].max() > 0.3 for i in range(3))
                if not ok:
                    continue
                q = loop_q(algo.critic, obs[row:row + 1], a[None]).mean().item()
                if q > best_q:
                    best, best_q = a, q
            assert torch.equal(chosen[row], best)


def test_bcq_autoregressive_picks_best_of_k_candidates():
    torch.manual_seed(3)
    algo = BCQ(AutoregressiveActor(OBS, BINS), OBS, BINS, num_candidates=10)
    obs = torch.randn(5, OBS)
    g1, g2 = torch.Generator().manual_seed(7), torch.Generator().manual_seed(7)
    chosen = algo.select(obs, generator=g1)
    cands = algo.actor.sample_k(obs, 10, generator=g2)
    with torch.no_grad():
        for row in range(5):
            qs = [loop_q(algo.critic, obs[row:row + 1], c[None]).mean().item() for c in cands[row]]
            assert torch.equal(chosen[row], cands[row, int(np.argmax(qs))])


class _Diverging(IQL):
    def update(self, batch):
        out = super().update(batch)
        out["critic_loss"] = out["critic_loss"] * float("nan")
        return out


def test_non_finite_loss_stops_the_run(tmp_path):
    torch.manual_seed(0)
    algo = _Diverging(FactorisedMLPActor(OBS, BINS), OBS, BINS)
    b = _batch(64)
    data = {"observations": b.observations, "actions": b.actions, "rewards": b.rewards,
            "next_observations": b.next_observations, "terminals": b.terminals}
    sched = Schedule(num_steps=20, batch_size=8, eval_every=10, eval_episodes=1, log_every=5)
    with pytest.raises(NumericalError, match=r"non-finite loss \(critic_loss\) by gradient step 5"):
        train(algo, data, lambda policy, step: (np.zeros(1), 0.0), str(tmp_path), sched, 0,
              torch.device("cpu"), tensorboard=False)
