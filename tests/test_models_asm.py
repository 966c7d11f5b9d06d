"""Action Structure Model: masked action modelling, probe, pre-training and its cache."""
import gin
import pytest
import numpy as np
import torch
import torch.nn.functional as F

import spin_bench.models.asm as asm_mod
from spin_bench.models import (ActionStructureModel, ASMCheckpoint, exact_match_rate, mam_corrupt,
                               masked_action_modelling_loss, pretrain_asm)

BINS = [3, 5, 2]
TINY = dict(d_model=16, num_heads=2, num_blocks=1, head_hidden=16)


def _actions(b, bins, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.stack([torch.randint(0, nb, (b,), generator=g) for nb in bins], 1)


def test_mam_corruption_proportions():
    bins = torch.tensor([3, 5, 2, 7] * 5)
    actions = _actions(20000, bins.tolist())
    inputs, sel, masked, rnd = mam_corrupt(actions, bins, torch.Generator().manual_seed(0))
    n_sel = sel.sum().item()
    assert abs(n_sel / sel.numel() - 0.15) < 0.005
    assert abs(masked.sum().item() / n_sel - 0.8) < 0.01
    assert abs(rnd.sum().item() / n_sel - 0.1) < 0.01
    assert not (masked & rnd).any() and not (masked & ~sel).any() and not (rnd & ~sel).any()
    assert torch.equal(inputs[~sel], actions[~sel])  # unselected tokens untouched
    kept = sel & ~masked & ~rnd
    assert torch.equal(inputs[kept], actions[kept])
    assert (inputs == bins)[masked].all()  # [MASK] id of slot i is bins_i
    r = inputs[rnd]
    assert (r < bins.expand_as(inputs)[rnd]).all() and (r >= 0).all()
    # the random replacement is uniform over the slot's bins (slot with 7 bins)
    col = 3
    vals = inputs[:, col][rnd[:, col]]
    assert torch.bincount(vals, minlength=7).min() > 0


def test_at_least_one_token_selected():
    actions = _actions(4, BINS)
    for seed in range(20):
        _, sel, _, _ = mam_corrupt(actions, torch.tensor(BINS), torch.Generator().manual_seed(seed), mask_prob=0.0)
        assert sel.sum() == 1


def test_loss_counts_only_selected_tokens():
    torch.manual_seed(0)
    asm = ActionStructureModel(6, BINS, **TINY).eval()
    obs, actions = torch.randn(64, 6), _actions(64, BINS, 1)
    loss, metrics = masked_action_modelling_loss(asm, obs, actions, torch.Generator().manual_seed(3))
    inputs, sel, _, _ = mam_corrupt(actions, torch.tensor(BINS), torch.Generator().manual_seed(3))
    logits = asm(obs, inputs)
    ce = torch.stack([F.cross_entropy(logits[b, i:i + 1, :BINS[i]], actions[b, i:i + 1])
                      for b in range(64) for i in range(3) if sel[b, i]])
    torch.testing.assert_close(loss, ce.mean())
    acc = torch.stack([(logits[b, i].argmax() == actions[b, i]).float() for b in range(64) for i in range(3) if sel[b, i]])
    torch.testing.assert_close(metrics["masked_accuracy"], acc.mean())
    assert not metrics["masked_accuracy"].requires_grad
    # gradient reaches the logits of selected tokens only
    logits_leaf = logits.detach().requires_grad_(True)
    ce_all = F.cross_entropy(logits_leaf.reshape(-1, 5), actions.reshape(-1), reduction="none").view(64, 3)
    ((ce_all * sel).sum() / sel.sum()).backward()
    assert (logits_leaf.grad[~sel] == 0).all()


def test_asm_has_no_positional_encoding_permuting_slots_permutes_outputs():
    """Permute the slots (tables, heads, bins) of an ASM: outputs permute the same way."""
    torch.manual_seed(1)
    asm = ActionStructureModel(6, BINS, **TINY).eval()
    assert not any("pos" in n for n, _ in asm.named_parameters())
    perm = [2, 0, 1]
    pbins = [BINS[p] for p in perm]
    asm2 = ActionStructureModel(6, pbins, **TINY).eval()
    asm2.state_encoder.load_state_dict(asm.state_encoder.state_dict())
    asm2.encoder.load_state_dict(asm.encoder.state_dict())
    with torch.no_grad():
        offs = asm.token_offsets.tolist()
        rows = torch.cat([asm.action_embedding.weight[offs[p]:offs[p] + BINS[p] + 1] for p in perm])
        asm2.action_embedding.weight.copy_(rows)
        for w2, w in zip(list(asm2.heads.parameters()), list(asm.heads.parameters())):
            w2.copy_(w[perm])
    obs, actions = torch.randn(8, 6), _actions(8, BINS, 2)
    tokens = actions.clone()
    tokens[:, 1] = BINS[1]  # one [MASK]
    out = asm(obs, tokens)
    out2 = asm2(obs, tokens[:, perm])
    torch.testing.assert_close(out2, out[:, perm], rtol=1e-5, atol=1e-5)


@pytest.fixture
def tiny_asm_binding():
    gin.clear_config()
    gin.parse_config(["ActionStructureModel.d_model = 32", "ActionStructureModel.num_heads = 2",
                      "ActionStructureModel.num_blocks = 1", "ActionStructureModel.head_hidden = 32"])
    yield
    gin.clear_config()


def _structured_dataset(n=4096, seed=0):
    """slot 1 = slot 0, slot 2 uniform random: masked accuracy ~ (1 + 1 + 1/3) / 3 is reachable."""
    g = torch.Generator().manual_seed(seed)
    a0 = torch.randint(0, 3, (n,), generator=g)
    a2 = torch.randint(0, 3, (n,), generator=g)
    return {"observations": torch.randn(n, 4, generator=g), "actions": torch.stack([a0, a0, a2], 1)}


def test_asm_learns_action_structure(tiny_asm_binding):
    data = _structured_dataset()
    ckpt = pretrain_asm(data, bins=[3, 3, 3], steps=150, batch_size=128, lr=3e-3, seed=0, log_every=50)
    assert ckpt.history[-1]["step"] == 150 and len(ckpt.history) == 3
    assert ckpt.final_metrics["masked_accuracy"] > 0.6  # chance is 1/3
    acc = ckpt.final_metrics["slot_accuracy"]
    assert acc[0] > 0.95 and acc[1] > 0.95 and acc[2] < 0.6
    assert ckpt.pretrain_seconds > 0
    asm = ckpt.build()
    probe = exact_match_rate(asm, data["observations"][:512], data["actions"][:512])
    assert probe["slot_accuracy"].shape == (3,)
    assert 0.2 < probe["exact_match"] < 0.6  # only slot 2 is unpredictable


def test_structure_measure_separates_joint_structure_from_noise(tiny_asm_binding):
    """structure_i = NLL(a_i | s) - NLL(a_i | s, a_-i): ~log 3 nats for the two copied slots (the
    state says nothing, the other slot everything), ~0 for the independent random slot."""
    from spin_bench.models.asm import asm_probe

    data = _structured_dataset()
    ckpt = pretrain_asm(data, bins=[3, 3, 3], steps=150, batch_size=128, lr=3e-3, seed=0, log_every=50)
    m = ckpt.final_metrics
    for k in ("nll_state", "nll_loo", "structure"):
        assert len(m[k]) == 3, k
    assert m["structure"][0] > 0.7 and m["structure"][1] > 0.7, m["structure"]
    assert abs(m["structure"][2]) < 0.1, m["structure"]
    assert abs(m["nll_state"][2] - np.log(3)) < 0.1  # a uniform slot: log 3 however it is conditioned
    assert m["mean_structure"] == pytest.approx(np.mean(m["structure"]))
    # the probe's rows come from their own generator: the same numbers again from the weights
    again = asm_probe(ckpt.build(), data["observations"], data["actions"], seed=2, probe_samples=4096)
    assert again["structure"] == pytest.approx(m["structure"], abs=1e-5)


def test_log_fn_sees_the_start_and_every_interval(tiny_asm_binding):
    data = _structured_dataset(512)
    calls = []
    pretrain_asm(data, bins=[3, 3, 3], steps=25, batch_size=64, seed=0, log_every=10,
                 log_fn=lambda step, total, rec: calls.append((step, total, rec is None)))
    assert calls == [(0, 25, True), (10, 25, False), (20, 25, False), (25, 25, False)]


def test_pretrain_cache_hit_loads_identical_weights_without_training(tmp_path, monkeypatch, tiny_asm_binding):
    data = _structured_dataset(512)
    kw = dict(bins=[3, 3, 3], steps=20, batch_size=64, seed=3, cache_dir=tmp_path, dataset_sha256="abc")
    first = pretrain_asm(data, **kw)
    assert first.config["d_model"] == 32  # gin binding applied
    assert not first.from_cache and first.path and len(list(tmp_path.glob("asm-*.pt"))) == 1
    assert not list(tmp_path.glob(".tmp-*"))  # atomic write left no temp file

    def boom(*a, **k):
        raise AssertionError("retrained on a cache hit")

    monkeypatch.setattr(asm_mod, "masked_action_modelling_loss", boom)
    second = pretrain_asm(data, **kw)
    assert second.from_cache and second.cache_key == first.cache_key
    assert second.pretrain_seconds == first.pretrain_seconds
    assert second.state_dict.keys() == first.state_dict.keys()
    assert all(torch.equal(second.state_dict[k], first.state_dict[k]) for k in first.state_dict)
    assert second.history == first.history
    with pytest.raises(AssertionError, match="retrained"):  # another seed is another key
        pretrain_asm(data, **dict(kw, seed=4))
    monkeypatch.undo()
    loaded = ASMCheckpoint.load(first.path)
    assert loaded.config == first.config
    with open(first.path, "wb") as f:  # a corrupt cache file is retrained and replaced
        f.write(b"not a checkpoint")
    third = pretrain_asm(data, **kw)
    assert not third.from_cache and ASMCheckpoint.load(first.path).cache_key == first.cache_key
    assert all(torch.equal(third.state_dict[k], first.state_dict[k]) for k in first.state_dict)  # seeded


def test_cache_keyed_by_identity_and_pre_identity_checkpoints_re_keyed(tmp_path, monkeypatch,
                                                                      tiny_asm_binding):
    data = _structured_dataset(512)
    kw = dict(bins=[3, 3, 3], steps=20, batch_size=64, seed=3, cache_dir=tmp_path)
    old = pretrain_asm(data, **kw, dataset_sha256="a" * 64)  # a cache made before identities
    assert old.dataset_identity is None and len(list(tmp_path.glob("asm-*.pt"))) == 1

    def boom(*a, **k):
        raise AssertionError("retrained")

    monkeypatch.setattr(asm_mod, "masked_action_modelling_loss", boom)
    # the same file, now with its identity: found under the file sha256, copied under the identity
    rekeyed = pretrain_asm(data, **kw, dataset_sha256="a" * 64, dataset_identity="1" * 64)
    assert rekeyed.from_cache and rekeyed.cache_key != old.cache_key
    assert rekeyed.dataset_identity == "1" * 64 and len(list(tmp_path.glob("asm-*.pt"))) == 2
    assert all(torch.equal(rekeyed.state_dict[k], old.state_dict[k]) for k in old.state_dict)
    # a regeneration elsewhere (another file sha256, the same identity) hits the re-keyed entry
    other = pretrain_asm(data, **kw, dataset_sha256="b" * 64, dataset_identity="1" * 64)
    assert other.from_cache and other.cache_key == rekeyed.cache_key
    assert other.pretrain_seconds == old.pretrain_seconds
    with pytest.raises(AssertionError, match="retrained"):  # another identity is other data
        pretrain_asm(data, **kw, dataset_sha256="c" * 64, dataset_identity="2" * 64)


def test_pretrain_is_seeded_and_leaves_global_rng_alone(tiny_asm_binding):
    data = _structured_dataset(256)
    torch.manual_seed(123)
    before = torch.rand(1)
    torch.manual_seed(123)
    a = pretrain_asm(data, bins=[3, 3, 3], steps=5, batch_size=32, seed=7)
    after = torch.rand(1)
    assert torch.equal(before, after)
    b = pretrain_asm(data, bins=[3, 3, 3], epochs=0.625, batch_size=32, seed=7)  # 0.625 * 8 = 5 steps
    assert b.train_config["steps"] == 5
    assert all(torch.equal(a.state_dict[k], b.state_dict[k]) for k in a.state_dict)
    with pytest.raises(ValueError):
        pretrain_asm(data, bins=[3, 3, 3], steps=5, epochs=1)
