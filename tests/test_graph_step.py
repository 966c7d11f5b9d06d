"""The update-step modes (spin_bench/train/graph_step.py): the static-buffer structure the CUDA
graph captures equals the eager step bit for bit; bf16 autocast changes the losses by a small
measured amount; checkpoints cross update modes and devices; the trainer's hook."""
import gin
import numpy as np
import pytest
import torch

from spin_bench.baselines.autoregressive import AutoregressiveActor
from spin_bench.baselines.factorised import FactorisedMLPActor
from spin_bench.algos import IQL, Batch
from spin_bench.models import ActionStructureModel, TransformerActor, make_spin_actor
from spin_bench.train.graph_step import (UpdateStep, make_capturable, max_abs_diff, parameters_and_state,
                                         resolve_mode)
from spin_bench.train.trainer import Schedule, train

OBS, BINS = 6, [3, 2, 4]
CPU = torch.device("cpu")

ACTORS = {
    "f": lambda: FactorisedMLPActor(OBS, BINS, hidden=(32, 32)),
    "ar": lambda: AutoregressiveActor(OBS, BINS, state_embed_dim=8, action_embed_dim=4, lstm_hidden=16),
    "saint": lambda: TransformerActor(OBS, BINS, d_model=16, num_heads=2, num_blocks=1, head_hidden=8,
                                      dropout=0.1, head_dropout=0.1),
    "spin": lambda: make_spin_actor(OBS, BINS, ActionStructureModel(OBS, BINS, d_model=16, num_heads=2,
                                                                    num_blocks=1, head_hidden=8)),
}


def _batches(n, b=32, seed=0):
    g = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(n):
        acts = torch.stack([torch.randint(k, (b,), generator=g) for k in BINS], dim=1)
        out.append(Batch(torch.randn(b, OBS, generator=g), acts, torch.rand(b, generator=g),
                         torch.randn(b, OBS, generator=g), (torch.rand(b, generator=g) < 0.2).float()))
    return out


def _algo(method):
    torch.manual_seed(0)
    return IQL(ACTORS[method](), OBS, BINS).train()


@pytest.mark.parametrize("method", sorted(ACTORS))
def test_static_buffer_step_equals_eager_bit_for_bit(method):
    """The capture's structure (batches copied into fixed buffers, the update reading only
    those, dropout included) run eagerly gives identical losses, parameters and Adam state."""
    eager, static = _algo(method), _algo(method)
    run_eager, run_static = UpdateStep(eager, CPU, mode="eager"), UpdateStep(static, CPU, mode="static")
    buffers = None
    for batch in _batches(3):
        torch.manual_seed(7)  # dropout masks: the same draws for both
        a = run_eager(batch)
        torch.manual_seed(7)
        b = run_static(batch)
        assert a.keys() == b.keys()
        for k in a:
            assert torch.equal(a[k], b[k]), k
        buffers = buffers or [t.data_ptr() for t in run_static.static]
        assert [t.data_ptr() for t in run_static.static] == buffers  # the same storage every step
    sa, sb = parameters_and_state(eager), parameters_and_state(static)
    assert len(sa) == len(sb) and all(torch.equal(x, y) for x, y in zip(sa, sb))
    assert max_abs_diff(_algo(method).state_dict().values(), eager.state_dict().values()) > 0  # it trained


def test_static_buffers_refuse_a_new_batch_shape():
    step = UpdateStep(_algo("f"), CPU, mode="static")
    step(_batches(1, b=32)[0])
    with pytest.raises(ValueError, match="batch size must not change"):
        step(_batches(1, b=16)[0])


def test_modes_and_precisions_are_validated():
    assert resolve_mode("auto", CPU) == "eager"
    with pytest.raises(ValueError, match=r"mode='graph' .* needs a CUDA device"):
        UpdateStep(_algo("f"), CPU, mode="graph")
    with pytest.raises(ValueError, match="UpdateStep.mode must be one of"):
        UpdateStep(_algo("f"), CPU, mode="fast")
    with pytest.raises(ValueError, match="UpdateStep.precision must be one of"):
        UpdateStep(_algo("f"), CPU, precision="fp16")
    with pytest.raises(ValueError, match="tf32' is a CUDA matmul mode"):
        UpdateStep(_algo("f"), CPU, precision="tf32")
    with pytest.raises(ValueError, match="warmup must be >= 1"):
        UpdateStep(_algo("f"), CPU, warmup=0)


@pytest.mark.parametrize("method", ["f", "saint"])
def test_bf16_autocast_changes_losses_a_little(method):
    """bf16 autocast really runs in bf16 (the losses differ from fp32) and stays close: the
    first step's losses within 3% (the measured effect is about 0.1-1%), returned as fp32."""
    fp32, bf16 = _algo(method).eval(), _algo(method).eval()  # no dropout: only precision differs
    batch = _batches(1)[0]
    a = UpdateStep(fp32, CPU, precision="fp32")(batch)
    b = UpdateStep(bf16, CPU, precision="bf16")(batch)
    assert all(v.dtype == torch.float32 for v in b.values())
    rel = {k: abs(float(a[k]) - float(b[k])) / max(abs(float(a[k])), 1e-6) for k in ("value_loss", "critic_loss",
                                                                                    "actor_loss")}
    assert max(rel.values()) > 0, rel
    assert max(rel.values()) < 0.03, rel


def test_checkpoint_from_a_captured_run_loads_into_an_eager_one(tmp_path):
    """A graph run's optimisers are capturable (step counters on the GPU); its checkpoint,
    loaded with map_location='cpu' into a CPU run, keeps the CPU run's Adam implementation and
    continues exactly like the run that wrote it."""
    writer = _algo("saint")
    for batch in _batches(2):
        writer.update(batch)
    make_capturable(writer.optimizers.values())  # what a graph run saves
    path = tmp_path / "ckpt.pt"
    torch.save(writer.full_state_dict(), path)
    reader = _algo("saint")
    flags = [dict(g) for o in reader.optimizers.values() for g in o.param_groups]
    reader.load_full_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    after = [dict(g) for o in reader.optimizers.values() for g in o.param_groups]
    assert [f["capturable"] for f in after] == [False] * len(after)
    assert [f["fused"] for f in after] == [f["fused"] for f in flags]
    for o in writer.optimizers.values():  # the writer, back on its own (CPU) implementation
        for g in o.param_groups:
            g["capturable"] = False
    batch = _batches(3)[2]
    torch.manual_seed(3)
    a = writer.update(batch)
    torch.manual_seed(3)
    b = reader.update(batch)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert max_abs_diff(parameters_and_state(writer), parameters_and_state(reader)) == 0


def _data(n=256):
    b = _batches(1, b=n, seed=5)[0]
    return {"observations": b.observations, "actions": b.actions, "rewards": b.rewards,
            "next_observations": b.next_observations, "terminals": b.terminals}


def _train(tmp_path, name, mode):
    gin.clear_config()
    gin.bind_parameter("UpdateStep.mode", mode)
    try:
        torch.manual_seed(0)
        algo = IQL(ACTORS["saint"](), OBS, BINS)
        sched = Schedule(num_steps=12, batch_size=16, eval_every=6, eval_episodes=1, log_every=6)
        rows = train(algo, _data(), lambda policy, step: (np.zeros(1), 0.0), str(tmp_path / name), sched, 0, CPU,
                     tensorboard=False)
    finally:
        gin.clear_config()
    return rows, algo


def test_trainer_runs_the_configured_update_mode(tmp_path):
    """UpdateStep.mode bound through gin reaches the trainer; the static mode trains exactly
    like the eager one (same metrics rows, same parameters)."""
    rows_e, algo_e = _train(tmp_path, "eager", "eager")
    rows_s, algo_s = _train(tmp_path, "static", "static")
    strip = lambda rows: [{k: v for k, v in r.items() if not k.endswith("_time_s")} for r in rows]  # noqa: E731
    assert strip(rows_e) == strip(rows_s)
    assert max_abs_diff(parameters_and_state(algo_e), parameters_and_state(algo_s)) == 0
    with pytest.raises(ValueError, match="needs a CUDA device"):
        _train(tmp_path, "graph", "graph")


def test_resume_loads_checkpoints_on_the_cpu_then_moves_them(tmp_path, monkeypatch):
    """The trainer loads a checkpoint with map_location='cpu' (RNG states must be CPU tensors,
    whatever device wrote them) and the loaders copy the rest onto the modules' device; the
    resumed run ends with the rows of an uninterrupted one."""
    full, _ = _train(tmp_path, "full", "eager")

    def run(num_steps):
        torch.manual_seed(0)
        algo = IQL(ACTORS["saint"](), OBS, BINS)
        sched = Schedule(num_steps=num_steps, batch_size=16, eval_every=6, eval_episodes=1, log_every=6)
        return train(algo, _data(), lambda policy, step: (np.zeros(1), 0.0), str(tmp_path / "run"), sched, 0, CPU,
                     tensorboard=False)

    run(6)
    seen, real_load = [], torch.load
    monkeypatch.setattr(torch, "load", lambda *a, **k: seen.append(k.get("map_location")) or real_load(*a, **k))
    rows = run(12)
    assert seen == ["cpu"]
    strip = lambda rows: [{k: v for k, v in r.items() if not k.endswith("_time_s")} for r in rows]  # noqa: E731
    assert strip(rows) == strip(full)
