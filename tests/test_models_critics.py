"""Critic ensemble, value network, Polyak averaging and the masking helpers."""
import copy

import pytest
import torch
import torch.nn.functional as F

from spin_bench.perf.oracle import loop_q
from spin_bench.models import FactoredCriticEnsemble, ValueNetwork, apply_bins_mask, bins_mask, polyak_update
from spin_bench.models.common import SlotHeads, mask_value

BINS = [3, 5, 2]


def test_bins_mask_and_masking_is_finite():
    m = bins_mask(BINS)
    assert m.tolist() == [[True, True, True, False, False], [True] * 5, [True, True, False, False, False]]
    logits = apply_bins_mask(torch.randn(4, 3, 5), m)
    assert torch.isfinite(logits).all()
    p = logits.softmax(-1)
    assert (p[:, ~m] == 0).all() and torch.allclose(p.sum(-1), torch.ones(4, 3))
    assert torch.isfinite(F.log_softmax(logits, -1)).all()
    assert mask_value(torch.float16) > -65504 and mask_value(torch.float32) == -1e9


@pytest.mark.parametrize("num_critics", [1, 2, 3])
def test_batched_ensemble_matches_python_loop_values_and_gradients(num_critics):
    torch.manual_seed(0)
    critic = FactoredCriticEnsemble(7, BINS, num_critics=num_critics, hidden=(16, 8))
    obs = torch.randn(11, 7)
    actions = torch.stack([torch.randint(0, b, (11,)) for b in BINS], 1)
    q = critic.q(obs, actions)
    ref = loop_q(critic, obs, actions)  # one member, one slot at a time
    assert q.shape == (num_critics, 11)
    torch.testing.assert_close(q, ref)
    w = torch.randn_like(q)
    g1 = torch.autograd.grad((q * w).sum(), list(critic.parameters()))
    g2 = torch.autograd.grad((ref * w).sum(), list(critic.parameters()))
    for a, b in zip(g1, g2):
        torch.testing.assert_close(a, b)
    torch.testing.assert_close(critic.q_min(obs, actions), ref.min(0).values)


def test_ensemble_members_are_independently_initialised():
    critic = FactoredCriticEnsemble(5, BINS, num_critics=2)
    assert not torch.equal(critic.layers[0].weight[0], critic.layers[0].weight[1])


def test_utilities_masked_and_k_candidates():
    torch.manual_seed(1)
    critic = FactoredCriticEnsemble(7, BINS, hidden=(16,))
    obs = torch.randn(4, 7)
    u = critic.utilities(obs)
    assert u.shape == (2, 4, 3, 5)
    assert (u[:, :, ~bins_mask(BINS)] == -1e9).all()
    cands = torch.stack([torch.randint(0, b, (4, 6)) for b in BINS], -1)  # (B, k, N)
    qk = critic.q(obs, cands)
    assert qk.shape == (2, 4, 6)
    for j in range(6):
        torch.testing.assert_close(qk[:, :, j], critic.q(obs, cands[:, j]))
    assert critic.q_min(obs, cands).shape == (4, 6)


def test_value_network_shape():
    v = ValueNetwork(7)
    assert v(torch.randn(5, 7)).shape == (5,)


def test_polyak_update():
    torch.manual_seed(2)
    src = FactoredCriticEnsemble(4, BINS, hidden=(8,))
    tgt = FactoredCriticEnsemble(4, BINS, hidden=(8,))
    before = [p.detach().clone() for p in tgt.parameters()]
    polyak_update(tgt, src, 0.25)
    for t, b, s in zip(tgt.parameters(), before, src.parameters()):
        torch.testing.assert_close(t, 0.75 * b + 0.25 * s)
    polyak_update(tgt, src, 1.0)
    for t, s in zip(tgt.parameters(), src.parameters()):
        assert torch.equal(t, s)
    tgt2 = copy.deepcopy(tgt)
    polyak_update(list(tgt2.parameters()), list(src.parameters()), 0.5)  # parameter lists work too


def test_slot_heads_match_per_slot_linear_layers():
    torch.manual_seed(3)
    heads = SlotHeads(3, 6, 4, 5, activation="gelu")
    x = torch.randn(2, 3, 6)
    y = heads(x)
    for i in range(3):
        ref = F.linear(F.gelu(F.linear(x[:, i], heads.weights[0][i].T, heads.biases[0][i, 0])),
                       heads.weights[1][i].T, heads.biases[1][i, 0])
        torch.testing.assert_close(y[:, i], ref)
        torch.testing.assert_close(heads.forward_slot(x[:, i], i), ref)
