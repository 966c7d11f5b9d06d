"""Device boundaries, on the device under test (`--device`, CPU by default; `make gpu-check`
runs this file with --device=cuda): data and samplers on the device, a resumed run, the ASM
cache, the evaluation policy, checkpoints moved to the CPU, attention and dropout paths, and
(CUDA only) one IQL step against the CPU's and the captured graph against the eager step."""
import os

import gin
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from spin_bench.baselines.autoregressive import AutoregressiveActor
from spin_bench.baselines.factorised import FactorisedMLPActor
from spin_bench.algos import IQL, Batch
from spin_bench import vocab
from spin_bench.atomic import atomic_torch_save
from spin_bench.models import ActionStructureModel, TransformerActor, TransformerBlock, make_spin_actor
from spin_bench.models.asm import pretrain_asm
from spin_bench.models.common import dropout
from spin_bench.train.evaluation import sampling_generator
from spin_bench.train.graph_step import UpdateStep, max_abs_diff, parameters_and_state
from spin_bench.train.trainer import DatasetSampler, Schedule, train

OBS, BINS = 6, [3, 2, 4]
CPU = torch.device("cpu")


def _actor(method, p=0.0):
    if method == "f":
        return FactorisedMLPActor(OBS, BINS, hidden=(32, 32))
    if method == "ar":
        return AutoregressiveActor(OBS, BINS, state_embed_dim=8, action_embed_dim=4, lstm_hidden=16)
    if method == "saint":
        return TransformerActor(OBS, BINS, d_model=16, num_heads=2, num_blocks=1, head_hidden=8, dropout=p,
                                head_dropout=p)
    asm = ActionStructureModel(OBS, BINS, d_model=16, num_heads=2, num_blocks=1, head_hidden=8, dropout=p)
    return make_spin_actor(OBS, BINS, asm, head_dropout=p)


def _algo(method, device, p=0.0):
    torch.manual_seed(0)  # built on the CPU, then moved: the same initial weights on every device
    return IQL(_actor(method, p), OBS, BINS).to(device).train()


def _data(device, n=512, seed=5):
    g = torch.Generator().manual_seed(seed)
    acts = torch.stack([torch.randint(k, (n,), generator=g) for k in BINS], dim=1)
    data = {"observations": torch.randn(n, OBS, generator=g), "actions": acts.to(torch.uint8),
            "rewards": torch.rand(n, generator=g), "next_observations": torch.randn(n, OBS, generator=g),
            "terminals": (torch.rand(n, generator=g) < 0.1).float()}
    return {k: v.to(device) for k, v in data.items()}


def _needs_cuda(device):
    if device.type != "cuda":
        pytest.skip("compares a CUDA device against the CPU: run with --device=cuda")


def test_sampler_draws_on_the_data_device(device):
    sampler = DatasetSampler(_data(device), batch_size=16, seed=0)
    assert sampler.generator.device.type == device.type
    batch = sampler.sample()
    assert all(t.device.type == device.type for t in batch)
    assert batch.actions.dtype == torch.long and batch.terminals.dtype == torch.float32
    again = DatasetSampler(_data(device), batch_size=16, seed=0).sample()
    assert all(torch.equal(a, b) for a, b in zip(batch, again))


def _rows(device, run_dir, num_steps, mode):
    gin.clear_config()
    gin.bind_parameter("UpdateStep.mode", mode)
    try:
        algo = _algo("saint", device, p=0.1)  # dropout on: its RNG state must survive the resume
        sched = Schedule(num_steps=num_steps, batch_size=16, eval_every=5, eval_episodes=1, log_every=5)
        rows = train(algo, _data(device), lambda policy, step: (np.zeros(1), 0.0), str(run_dir), sched, 0, device,
                     tensorboard=False)
    finally:
        gin.clear_config()
    return [{k: v for k, v in r.items() if not k.endswith("_time_s")} for r in rows]


def test_resumed_run_on_the_device_ends_like_an_uninterrupted_one(device, tmp_path):
    """Checkpoint written on the device (CUDA RNG state included), loaded on the CPU and moved
    back; on CUDA the steps run as a captured graph (capture after the resume)."""
    mode = "graph" if device.type == "cuda" else "static"
    full = _rows(device, tmp_path / "full", 15, mode)
    _rows(device, tmp_path / "run", 10, mode)
    resumed = _rows(device, tmp_path / "run", 15, mode)
    assert [r["step"] for r in resumed] == [5, 10, 15]
    for a, b in zip(full, resumed):
        for k in a:
            if isinstance(a[k], float):  # CUDA backward kernels may use atomics: not bit-exact
                assert b[k] == pytest.approx(a[k], rel=1e-4, abs=1e-6), k


def test_checkpoint_written_on_the_device_loads_on_the_cpu(device, tmp_path):
    algo = _algo("saint", device)
    step = UpdateStep(algo, device, mode="graph" if device.type == "cuda" else "static")
    sampler = DatasetSampler(_data(device), batch_size=16, seed=0)
    for _ in range(5):
        step(sampler.sample())
    path = os.path.join(tmp_path, "ckpt.pt")
    atomic_torch_save(algo.full_state_dict(), path)
    cpu_algo = _algo("saint", CPU)
    cpu_algo.load_full_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    assert max_abs_diff(parameters_and_state(algo), parameters_and_state(cpu_algo)) == 0
    assert all(not g["capturable"] for o in cpu_algo.optimizers.values() for g in o.param_groups)
    losses = cpu_algo.update(DatasetSampler(_data(CPU), batch_size=16, seed=1).sample())
    assert all(torch.isfinite(v) for v in losses.values())


def test_asm_cache_written_on_the_device_is_read_back(device, tmp_path):
    data = _data(device)
    kw = dict(bins=BINS, steps=3, batch_size=32, seed=0, device=device, cache_dir=str(tmp_path),
              dataset_sha256="0" * 64, probe_samples=32)
    with gin.unlock_config():
        gin.clear_config()
    first = pretrain_asm(data, **kw)
    again = pretrain_asm(data, **kw)
    assert not first.from_cache and again.from_cache
    assert all(v.device.type == "cpu" for v in again.state_dict.values())  # stored on the CPU
    assert all(torch.equal(first.state_dict[k], again.state_dict[k]) for k in first.state_dict)
    actor = make_spin_actor(OBS, BINS, again).to(device)
    assert actor.log_prob(data["observations"][:4], data["actions"][:4].long()).device.type == device.type
    if device.type == "cuda":  # a CPU run does not reuse the CUDA pre-training (other RNG streams)
        assert not pretrain_asm(_data(CPU), **dict(kw, device=CPU)).from_cache


@pytest.mark.parametrize("method", ["f", "ar", "saint"])
def test_evaluation_policy_on_the_device(device, method):
    """Observations go to the device, actions come back to the CPU for the simulator; the
    seeded sampling generator lives on the device and makes evaluations reproducible."""
    algo = _algo(method, device).eval()
    obs = np.random.default_rng(0).standard_normal((5, OBS)).astype(np.float32)
    acts = [algo.act(torch.as_tensor(obs, device=device), generator=sampling_generator(0, 100, device))
            for _ in range(2)]
    assert acts[0].device.type == device.type and torch.equal(acts[0], acts[1])
    a = acts[0].cpu().numpy()
    assert a.shape == (5, 3) and (a >= 0).all() and (a < np.array(BINS)).all()


def test_attention_path_matches_naive_attention(device):
    """The CPU's block-diagonal attention and CUDA's SDPA both compute per-head softmax attention."""
    torch.manual_seed(0)
    block = TransformerBlock(d_model=16, num_heads=2, dropout=0.0).to(device).eval()
    x = torch.randn(4, 5, 16, device=device)
    h = block.ln1(x)
    q, k, v = block.qkv(h).view(4, 5, 3, 2, 8).permute(2, 0, 3, 1, 4)
    naive = (torch.softmax(q @ k.transpose(-1, -2) / 8 ** 0.5, -1) @ v).transpose(1, 2).reshape(4, 5, 16)
    torch.testing.assert_close(block.attention(h, 0.0), naive, rtol=1e-4, atol=1e-5)


def test_dropout_on_cuda_is_torch_dropout(device):
    """The CPU-only mask trick is off on CUDA: there dropout is F.dropout, same RNG, same mask."""
    _needs_cuda(device)
    x = torch.randn(64, 32, device=device)
    torch.cuda.manual_seed(3)
    ours = dropout(x, 0.1, True)
    torch.cuda.manual_seed(3)
    assert torch.equal(ours, F.dropout(x, 0.1, True))


def _batch(device, seed=0):
    return Batch(*(t.to(device) for t in DatasetSampler(_data(CPU, seed=seed), batch_size=32, seed=seed).sample()))


@pytest.mark.parametrize("method", vocab.actor_methods(builtin_only=True))
def test_one_iql_step_on_cuda_equals_the_cpu_step(device, method):
    """Same weights, same batch, no dropout: the losses agree to 1e-4 and every gradient of the
    step to 1e-3 of its norm (TF32 off)."""
    _needs_cuda(device)
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    cpu, gpu = _algo(method, CPU), _algo(method, device)
    batch = _batch(CPU)
    a, b = cpu.update(batch), gpu.update(Batch(*(t.to(device) for t in batch)))
    for k in a:
        assert float(b[k]) == pytest.approx(float(a[k]), rel=1e-4, abs=1e-6), k
    for (name, p), q in zip(cpu.named_parameters(), gpu.parameters()):
        if p.grad is not None:
            err = float((p.grad - q.grad.cpu()).norm() / p.grad.norm().clamp_min(1e-12))
            assert err < 1e-3, (name, err)


@pytest.mark.parametrize("method", vocab.actor_methods(builtin_only=True))
def test_captured_graph_equals_eager_steps_on_cuda(device, method):
    """Ten steps replayed from one CUDA graph against ten eager steps on the same batches:
    losses within 1e-4 relative, parameters and Adam state within 1e-5."""
    _needs_cuda(device)
    eager, graphed = _algo(method, device), _algo(method, device)
    run_e, run_g = UpdateStep(eager, device, mode="eager"), UpdateStep(graphed, device, mode="graph")
    for i in range(10):
        batch = _batch(device, seed=i)
        a, b = run_e(batch), run_g(batch)
        for k in a:
            assert float(b[k]) == pytest.approx(float(a[k]), rel=1e-4, abs=1e-6), (i, k)
    assert run_g.graph is not None
    assert max_abs_diff(parameters_and_state(eager), parameters_and_state(graphed)) < 1e-5
