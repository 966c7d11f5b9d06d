"""Actor interface: masking with non-uniform bins, log-probabilities, sampling, AR teacher forcing."""
import itertools
import math

import pytest
import torch
import torch.nn.functional as F

from spin_bench.baselines import AutoregressiveActor, FactorisedMLPActor
from spin_bench.models import TransformerActor, TransformerBlock, TransformerEncoder, bins_mask

BINS = [3, 5, 2]
OBS = 7


def _factored_actors():
    torch.manual_seed(0)
    return [TransformerActor(OBS, BINS, d_model=16, num_heads=2, num_blocks=2, head_hidden=8),
            FactorisedMLPActor(OBS, BINS, hidden=(32, 32))]


def _all_joint_actions(bins):
    return torch.tensor(list(itertools.product(*[range(b) for b in bins])))


@pytest.mark.parametrize("actor", _factored_actors(), ids=lambda a: type(a).__name__)
def test_factored_logits_shape_masking_and_log_prob(actor):
    actor.eval()
    assert actor.factored
    obs = torch.randn(6, OBS)
    logits = actor.logits(obs)
    assert logits.shape == (6, 3, 5)
    mask = bins_mask(BINS)
    assert (logits[:, ~mask] <= -1e8).all() and torch.isfinite(logits).all()
    actions = actor.sample(obs)
    assert actions.shape == (6, 3) and actions.dtype == torch.long
    assert (actions < torch.tensor(BINS)).all() and (actions >= 0).all()
    # naive: log of the product of per-slot softmax probabilities over each slot's valid bins only
    naive = torch.zeros(6)
    for b in range(6):
        p = 1.0
        for i, nb in enumerate(BINS):
            p = p * torch.softmax(logits[b, i, :nb], -1)[actions[b, i]]
        naive[b] = torch.log(p)
    torch.testing.assert_close(actor.log_prob(obs, actions), naive, rtol=1e-5, atol=1e-5)
    # the joint distribution sums to one over all 30 joint actions
    joint = _all_joint_actions(BINS)
    lp = actor.log_prob(obs[:1].expand(len(joint), -1), joint)
    torch.testing.assert_close(lp.exp().sum(), torch.tensor(1.0))
    # (B, k, N) candidates
    cands = actor.sample_k(obs, 4)
    assert cands.shape == (6, 4, 3)
    lpk = actor.log_prob(obs, cands)
    torch.testing.assert_close(lpk[:, 2], actor.log_prob(obs, cands[:, 2]))
    # mode and entropy
    assert torch.equal(actor.mode(obs), torch.stack([logits[:, i, :nb].argmax(-1) for i, nb in enumerate(BINS)], 1))
    p = [torch.softmax(logits[:, i, :nb], -1) for i, nb in enumerate(BINS)]
    naive_h = sum(-(q * q.log()).sum(-1) for q in p)
    torch.testing.assert_close(actor.entropy(obs), naive_h)


@pytest.mark.parametrize("actor", _factored_actors(), ids=lambda a: type(a).__name__)
def test_factored_sample_distribution(actor):
    actor.eval()
    obs = torch.randn(1, OBS)
    n = 20000
    gen = torch.Generator().manual_seed(0)
    samples = actor.sample(obs.expand(n, -1), generator=gen)
    probs = actor.logits(obs).softmax(-1)[0]
    for i, nb in enumerate(BINS):
        freq = torch.bincount(samples[:, i], minlength=5).float() / n
        assert freq[nb:].sum() == 0
        assert torch.allclose(freq, probs[i], atol=0.02), (i, freq, probs[i])
    # seeded generator => reproducible
    a1 = actor.sample(obs.expand(50, -1), generator=torch.Generator().manual_seed(5))
    a2 = actor.sample(obs.expand(50, -1), generator=torch.Generator().manual_seed(5))
    assert torch.equal(a1, a2)


def test_ar_teacher_forcing_equals_step_by_step():
    torch.manual_seed(1)
    actor = AutoregressiveActor(OBS, BINS, state_embed_dim=16, action_embed_dim=8, lstm_hidden=32)
    assert not actor.factored
    obs = torch.randn(9, OBS)
    actions = torch.stack([torch.randint(0, b, (9,)) for b in BINS], 1)
    tf = actor.log_prob(obs, actions)
    _, stepwise, _ = actor.decode(obs, actions=actions)
    torch.testing.assert_close(tf, stepwise, rtol=1e-5, atol=1e-5)
    # gradients agree too
    g1 = torch.autograd.grad(tf.sum(), list(actor.parameters()), allow_unused=True)
    g2 = torch.autograd.grad(actor.decode(obs, actions=actions)[1].sum(), list(actor.parameters()), allow_unused=True)
    for a, b in zip(g1, g2):
        if a is not None or b is not None:
            torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)
    # teacher-forced logits are masked; log_prob on (B, k, N) candidates
    cl = actor.conditional_logits(obs, actions)
    assert cl.shape == (9, 3, 5) and (cl[:, ~bins_mask(BINS)] <= -1e8).all()
    cands = actor.sample_k(obs, 3)
    assert cands.shape == (9, 3, 3) and (cands < torch.tensor(BINS)).all()
    torch.testing.assert_close(actor.log_prob(obs, cands)[:, 1], actor.log_prob(obs, cands[:, 1]))
    a, lp = actor.sample_k_with_log_prob(obs, 2)
    torch.testing.assert_close(lp, actor.log_prob(obs, a), rtol=1e-5, atol=1e-5)
    with pytest.raises(NotImplementedError):
        actor.logits(obs)


def test_ar_distribution_normalised_sampling_and_entropy():
    torch.manual_seed(2)
    bins = [2, 3]
    actor = AutoregressiveActor(4, bins, state_embed_dim=8, action_embed_dim=4, lstm_hidden=16, lstm_layers=2)
    with torch.no_grad():  # sharpen the policy a bit so the check is informative
        for w in actor.heads.weights:
            w.mul_(6)
    obs = torch.randn(1, 4)
    joint = _all_joint_actions(bins)
    p = actor.log_prob(obs.expand(len(joint), -1), joint).exp().detach()
    torch.testing.assert_close(p.sum(), torch.tensor(1.0))
    n = 20000
    s = actor.sample(obs.expand(n, -1), generator=torch.Generator().manual_seed(0))
    freq = torch.bincount(s[:, 0] * 3 + s[:, 1], minlength=6).float() / n
    assert torch.allclose(freq, p, atol=0.02), (freq, p)
    exact_h = -(p * p.log()).sum()
    est_h = actor.entropy(obs.expand(n, -1), generator=torch.Generator().manual_seed(1)).mean()
    assert abs(est_h.item() - exact_h.item()) < 0.03
    greedy = actor.mode(obs)
    first = actor.conditional_logits(obs, greedy)[0, 0, :2].argmax()
    assert greedy[0, 0] == first


def test_transformer_block_matches_naive_attention():
    torch.manual_seed(3)
    block = TransformerBlock(d_model=8, num_heads=2, dropout=0.1).eval()
    x = torch.randn(3, 5, 8)
    h = block.ln1(x)
    q, k, v = block.qkv(h).split(8, -1)
    heads = lambda t: t.view(3, 5, 2, 4).transpose(1, 2)
    att = torch.softmax(heads(q) @ heads(k).transpose(-1, -2) / math.sqrt(4), -1) @ heads(v)
    x1 = x + block.proj(att.transpose(1, 2).reshape(3, 5, 8))
    ref = x1 + block.ffn_out(F.gelu(block.ffn_in(block.ln2(x1))))
    torch.testing.assert_close(block(x), ref, rtol=1e-5, atol=1e-5)


def test_encoder_is_permutation_equivariant_and_has_no_positional_parameters():
    torch.manual_seed(4)
    enc = TransformerEncoder(d_model=16, num_heads=2, num_blocks=2).eval()
    x = torch.randn(2, 6, 16)
    perm = torch.randperm(6)
    torch.testing.assert_close(enc(x[:, perm]), enc(x)[:, perm], rtol=1e-5, atol=1e-5)
    actor = TransformerActor(OBS, BINS, d_model=16, num_heads=2, num_blocks=1)
    assert not any("pos" in name for name, _ in actor.named_parameters())


def test_dropout_active_only_in_train_mode():
    torch.manual_seed(5)
    actor = TransformerActor(OBS, BINS, d_model=16, num_heads=2, num_blocks=1, dropout=0.5)
    obs = torch.randn(4, OBS)
    actor.train()
    assert not torch.equal(actor.logits(obs), actor.logits(obs))
    actor.eval()
    assert torch.equal(actor.logits(obs), actor.logits(obs))


@pytest.mark.parametrize("p", [0.1, 0.5])
def test_cpu_dropout_mask_statistics_gradient_and_seeding(p):
    """common.dropout draws its own 16-bit mask on the CPU: Bernoulli(1 - p) keeps scaled by
    1 / (1 - p), the gradient is the same mask, and the global seed makes it reproducible."""
    from spin_bench.models.common import dropout
    x = torch.ones(400, 250, requires_grad=True)
    torch.manual_seed(7)
    y = dropout(x, p, True)
    kept = y != 0
    frac = 1.0 - kept.float().mean().item()
    n = x.numel()
    assert abs(frac - p) < 5 * (p * (1 - p) / n) ** 0.5  # 5 standard errors
    for lane in range(4):  # each of the four 16-bit lanes of a 64-bit draw on its own
        lane_frac = 1.0 - kept.flatten()[lane::4].float().mean().item()
        assert abs(lane_frac - p) < 5 * (p * (1 - p) / (n / 4)) ** 0.5, lane
    torch.testing.assert_close(y[kept], torch.full_like(y[kept], 1.0 / (1.0 - p)))
    y.sum().backward()
    torch.testing.assert_close(x.grad, y.detach())
    torch.manual_seed(7)
    assert torch.equal(dropout(x.detach(), p, True), y.detach())
    # neighbouring elements are not correlated (four share one 64-bit draw)
    k = kept.float().flatten()
    corr = torch.corrcoef(torch.stack([k[:-1], k[1:]]))[0, 1].item()
    assert abs(corr) < 0.02
    assert torch.equal(dropout(x, p, False), x) and torch.equal(dropout(x, 0.0, True), x)


@pytest.mark.parametrize("length", [3, 7, 12])
def test_block_diagonal_cpu_attention_equals_sdpa_values_and_gradients(length, monkeypatch):
    """The short-sequence CPU attention (heads as one block-diagonal attention) is the same
    function as scaled_dot_product_attention, forward and backward."""
    from spin_bench.models import transformer
    torch.manual_seed(8)
    block = TransformerBlock(d_model=16, num_heads=4, dropout=0.1).eval()
    x = torch.randn(5, length, 16, requires_grad=True)
    outs = {}
    for name, limit in (("block_diagonal", 10**9), ("sdpa", 0)):
        monkeypatch.setattr(transformer, "BLOCK_DIAGONAL_MAX", limit)
        y = block(x)
        grads = torch.autograd.grad((y * torch.linspace(-1, 1, y.numel()).view_as(y)).sum(),
                                    [x, *block.parameters()])
        outs[name] = (y, grads)
    torch.testing.assert_close(outs["block_diagonal"][0], outs["sdpa"][0], rtol=1e-5, atol=1e-5)
    for a, b in zip(outs["block_diagonal"][1], outs["sdpa"][1]):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)
    # training mode: attention weights are dropped (outputs vary with the mask) and inverted
    # dropout keeps the expectation: the mean over many masks is the eval-mode attention
    monkeypatch.setattr(transformer, "BLOCK_DIAGONAL_MAX", 10**9)
    with torch.no_grad():
        h = block.ln1(x)
        expected = block.eval().attention(h, 0.0)
        block.train()
        torch.manual_seed(0)
        samples = torch.stack([block.attention(h, 0.5) for _ in range(2000)])
    assert not torch.allclose(samples[0], samples[1])
    torch.testing.assert_close(samples.mean(0), expected, rtol=0, atol=5 * samples.std(0).max().item() / 2000 ** 0.5)
