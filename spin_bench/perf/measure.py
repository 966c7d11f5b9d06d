"""Measuring speed: one benchmark configuration (a dict: part, method, algo, scale, task,
device, steps, ...) run in this process, and the combination of its rounds.

Training steps/s after warm-up on synthetic data of the task's shape, FLOPs per step (torch's
FlopCounterMode), ATen calls per step, achieved GFLOP/s against the dense matmul peak measured
in the same process, peak memory; the fast IQL step against the straightforward one; ASM
pre-training steps/s; batched against one-episode-at-a-time evaluation.  The command line
(flags, one subprocess per configuration and round) is ``python -m spin_bench.bench``; the
tables are :mod:`spin_bench.perf.render`.
"""
from __future__ import annotations

import os
import resource
import time
from typing import List, Optional

from spin_bench import vocab


def peak_matmul_gflops(device, sizes=(256, 512, 1024), repeats: int = 5) -> float:
    """Best fp32 dense matmul rate 2 n^3 / t over a few square sizes, in GFLOP/s."""
    import torch

    from spin_bench.models.common import synchronize

    best = 0.0
    for n in sizes:
        a = torch.randn(n, n, device=device)
        b = torch.randn(n, n, device=device)
        for _ in range(2):
            a @ b
        synchronize(device)
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            a @ b
            synchronize(device)
            times.append(time.perf_counter() - t0)
        best = max(best, 2 * n ** 3 / min(times) / 1e9)
    return best


def layer_gflops(rows: int, width: int, device, repeats: int = 20) -> float:
    """GFLOP/s of one Linear(width, 2 width) forward + backward on (rows, width) inputs: what the
    machine's matmuls reach at a model's own width and token count (the realistic ceiling for
    a step made of such layers, below the square-matmul peak when the width is small)."""
    import torch

    from spin_bench.models.common import synchronize

    layer = torch.nn.Linear(width, 2 * width, device=device)
    x = torch.randn(rows, width, device=device, requires_grad=True)
    for _ in range(3):
        layer(x).sum().backward()
    synchronize(device)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        layer(x).sum().backward()
        synchronize(device)
        times.append(time.perf_counter() - t0)
    return 3 * 2 * rows * width * 2 * width / min(times) / 1e9


def parse_cell(scale: str, task: str, method: str, algo: str, bindings: List[str]):
    """Parse the grid cell's gin files (its medium-expert level) and `bindings`; returns the
    (Experiment, Schedule) they configure, which the rest of the measurement is given."""
    from spin_bench import configs
    from spin_bench.train.experiment import Experiment
    from spin_bench.train.trainer import Schedule
    from spin_bench.vocab import cell_parts

    parts = cell_parts(scale, task, "medium-expert", method, algo)
    configs.parse([os.path.join(configs.CONFIG_ROOT, p) for p in parts], bindings, finalize=False)
    return Experiment(), Schedule()


def synthetic_batch(task: str, bins, size: int, device):
    """Random tensors with the task's dimensions (speed does not depend on the values)."""
    import torch

    from spin_bench.envs import get_task_spec

    spec = get_task_spec(task)
    g = torch.Generator().manual_seed(0)
    n = spec.num_actions
    b = torch.as_tensor(bins)
    return {"observations": torch.randn(size, spec.obs_dim, generator=g).to(device),
            "next_observations": torch.randn(size, spec.obs_dim, generator=g).to(device),
            "actions": (torch.rand(size, n, generator=g) * b).long().to(device),
            "rewards": torch.rand(size, generator=g).to(device),
            "terminals": torch.zeros(size).to(device)}


def peak_memory_mb(device) -> float:
    import torch

    if torch.device(device).type == "cuda":
        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _lstm_layer_flops(input_shape, w_ih_shape, w_hh_shape, *args, **kwargs) -> int:
    """One fused (oneDNN) LSTM layer, forward: 2 * tokens * (|W_ih| + |W_hh|) (the gate matmuls)."""
    tokens = 1
    for n in input_shape[:-1]:
        tokens *= int(n)
    return 2 * tokens * (w_ih_shape[0] * w_ih_shape[1] + w_hh_shape[0] * w_hh_shape[1])


def _lstm_layer_backward_flops(input_shape, w_ih_shape, w_hh_shape, *args, **kwargs) -> int:
    """Its backward: gradients w.r.t. the inputs/hidden states and the weights, 2x the forward."""
    return 2 * _lstm_layer_flops(input_shape, w_ih_shape, w_hh_shape)


def count_ops(fn) -> int:
    """Number of ATen operator calls (on a GPU, roughly the kernel launches) that ``fn()`` makes."""
    from torch.utils._python_dispatch import TorchDispatchMode

    class _Counter(TorchDispatchMode):
        calls = 0

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            _Counter.calls += 1
            return func(*args, **(kwargs or {}))

    with _Counter():
        fn()
    return _Counter.calls


def count_flops(fn) -> int:
    """FLOPs of ``fn()`` by torch's FlopCounterMode, plus the fused CPU LSTM kernels it does not know."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    custom = {torch.ops.aten.mkldnn_rnn_layer: _lstm_layer_flops,
              torch.ops.aten.mkldnn_rnn_layer_backward: _lstm_layer_backward_flops}
    with FlopCounterMode(display=False, custom_mapping=custom) as counter:
        fn()
    return int(counter.get_total_flops())


def build(exp, method, algo, device):
    """The algorithm (and actor) of `exp` for synthetic data: (algorithm, bins, task spec)."""
    from spin_bench.envs import get_task_spec, normalise_bins
    from spin_bench.train.experiment import build_algorithm

    spec = get_task_spec(exp.task)
    bins = [int(b) for b in normalise_bins(exp.bins, spec.num_actions)]
    asm = None
    if vocab.needs_asm(method):
        from spin_bench.models.asm import ActionStructureModel
        asm = ActionStructureModel(spec.obs_dim, bins)
    return build_algorithm(method, algo, spec.obs_dim, bins, asm).to(device), bins, spec


def train_setup(cfg: dict):
    """The algorithm of one bench cell and a sampler of synthetic batches."""
    import torch

    from spin_bench.train.trainer import DatasetSampler

    device = torch.device(cfg["device"])
    exp, schedule = parse_cell(cfg["scale"], cfg["task"], cfg["method"], cfg["algo"], cfg["bindings"])
    algo, bins, spec = build(exp, cfg["method"], cfg["algo"], device)
    sampler = DatasetSampler(synthetic_batch(cfg["task"], bins, 20_000, device), schedule.batch_size, 0)
    algo.train()
    return algo, bins, schedule, sampler, device


def bench_train(cfg: dict) -> dict:
    """Training steps/s of one update (``UpdateStep`` in ``cfg['update_mode']``, default eager)
    after warm-up, FLOPs and ATen calls per step (eager steps only: a replayed graph makes no
    ATen calls)."""
    import torch

    from spin_bench.models.common import synchronize
    from spin_bench.train.graph_step import UpdateStep

    algo, bins, schedule, sampler, device = train_setup(cfg)
    mode = cfg.get("update_mode", "eager")
    update = UpdateStep(algo, device, mode=mode, precision=cfg.get("precision", "fp32"))
    static = cfg.get("static", True)  # FLOPs and op counts: once per configuration (round 0)
    # FLOPs of the eager step (the same arithmetic in every mode), before any graph is captured
    flops = count_flops(lambda: algo.update(sampler.sample())) if static else None
    for _ in range(max(cfg["warmup"], update.warmup + 1 if mode == "graph" else 0)):
        update(sampler.sample())
    synchronize(device)
    ops = count_ops(lambda: update(sampler.sample())) if static else None  # a replay: the batch copies only
    losses = {}

    def timed_steps():
        for _ in range(cfg["steps"]):
            losses.update(update(sampler.sample()))
    dt, samples = _median_seconds(timed_steps, cfg["steps"], cfg["repeats"], device)
    assert all(torch.isfinite(v) for v in losses.values())
    d_model = getattr(getattr(algo, "actor", None), "config", {}).get("d_model")
    rows = schedule.batch_size * (len(bins) + algo.actor.config["num_state_tokens"]) if d_model else schedule.batch_size
    return {"kind": "train", "update_mode": mode, "precision": update.precision,
            "steps_per_s": 1.0 / dt, "steps_per_s_samples": samples, "flops_per_step": flops,
            "gflops_per_s": flops / dt / 1e9 if static else None, "d_model": d_model,
            "batch_size": schedule.batch_size,
            "layer_gflops": layer_gflops(rows, d_model or 256, device) if static else None, "ops_per_step": ops,
            "trainable_params": sum(p.numel() for p in algo.parameters() if p.requires_grad),
            "peak_memory_mb": peak_memory_mb(device)}


def bench_reference(cfg: dict) -> dict:
    """The fast IQL step against the straightforward one (``spin_bench.perf.oracle``: loops
    over critics and slots, per-parameter Adam, ``.item()`` every step) on copies of the same
    modules, timed in alternating rounds in one process so machine noise hits both alike;
    ``speedup`` = median fast rate / median straightforward rate."""
    import copy

    from spin_bench.perf.oracle import oracle_iql_update, oracle_optimizers

    if cfg["algo"] != "iql":
        raise ValueError(f"the straightforward reference step is IQL's, not {cfg['algo']!r}")
    algo, bins, schedule, sampler, device = train_setup(cfg)
    ref = copy.deepcopy(algo)
    optimizers = oracle_optimizers(ref)
    steps = {"fast": algo.update, "straightforward": lambda batch: oracle_iql_update(ref, batch, optimizers)}
    for update in steps.values():
        for _ in range(cfg["warmup"]):
            update(sampler.sample())
    rates = {name: [] for name in steps}
    for _ in range(cfg["repeats"]):
        for name, update in steps.items():
            rates[name].append(_rate(lambda: [update(sampler.sample()) for _ in range(cfg["steps"])],
                                     cfg["steps"], device))
    fast, straight = (median(sorted(rates[k])) for k in ("fast", "straightforward"))
    return {"kind": "reference", "steps_per_s": straight, "fast_steps_per_s": fast, "speedup": fast / straight,
            "samples": rates, "d_model": getattr(getattr(algo, "actor", None), "config", {}).get("d_model"),
            "batch_size": schedule.batch_size}


def bench_asm(cfg: dict) -> dict:
    import torch

    from spin_bench.models.asm import ActionStructureModel, masked_action_modelling_loss, pretrain_asm

    device = torch.device(cfg["device"])
    asm_method = next(m for m in vocab.methods(builtin_only=True) if vocab.needs_asm(m))  # SPIN: its ASM's config
    parse_cell(cfg["scale"], cfg["task"], asm_method, "iql", cfg["bindings"])
    from spin_bench import configs
    from spin_bench.envs import get_task_spec
    batch = configs.query("pretrain_asm.batch_size", 1024)
    spec = get_task_spec(cfg["task"])
    bins = [3] * spec.num_actions
    data = synthetic_batch(cfg["task"], bins, 20_000, device)
    model = ActionStructureModel(spec.obs_dim, bins).to(device)
    g = torch.Generator(device=device).manual_seed(0)
    idx = torch.randint(20_000, (batch,), generator=g, device=device)

    def one_step():
        loss, _ = masked_action_modelling_loss(model, data["observations"][idx], data["actions"][idx], g)
        loss.backward()
    flops = count_flops(one_step) if cfg.get("static", True) else None
    steps = max(cfg["steps"] // 3, 5)
    # The exact-match probe after pre-training is not timed; a small one keeps wide tasks
    # (38 slots: 38 masked passes) from dominating the bench's wall-clock.
    probe = dict(epochs=None, batch_size=batch, device=device, probe_samples=256)
    pretrain_asm(data, bins=bins, steps=cfg["warmup"], **probe)
    rates = sorted(steps / pretrain_asm(data, bins=bins, steps=steps, log_every=10**9, **probe).pretrain_seconds
                   for _ in range(cfg["repeats"]))
    dt = 1.0 / median(rates)
    return {"kind": "asm", "method": "asm", "algo": "mam", "steps_per_s": 1.0 / dt, "steps_per_s_samples": rates,
            "flops_per_step": flops,
            "gflops_per_s": flops / dt / 1e9 if flops else None, "d_model": model.config["d_model"],
            "batch_size": batch,
            "peak_memory_mb": peak_memory_mb(device)}


def _rate(fn, steps: int, device) -> float:
    """Steps/s of one timing of ``fn()``, which runs ``steps`` steps (device synchronised)."""
    from spin_bench.models.common import synchronize

    synchronize(device)
    t0 = time.perf_counter()
    fn()
    synchronize(device)
    return steps / (time.perf_counter() - t0)


def _median_seconds(fn, steps: int, repeats: int, device) -> tuple:
    """Median seconds per step over ``repeats`` timings of ``fn`` (``steps`` steps each), and the rates."""
    rates = sorted(_rate(fn, steps, device) for _ in range(repeats))
    return 1.0 / median(rates), rates


def median(sorted_rates: List[float]) -> float:
    """The median of the repeated rates (the upper one of an even count), as every bench row reports."""
    return sorted_rates[len(sorted_rates) // 2]


def bench_eval(cfg: dict) -> dict:
    import torch

    from spin_bench.envs import VectorEnv, make_env
    from spin_bench.perf.oracle import evaluate_sequential
    from spin_bench.train.evaluation import evaluate_batched, evaluation_seeds

    device = torch.device(cfg["device"])
    exp, _ = parse_cell(cfg["scale"], cfg["task"], cfg["method"], cfg["algo"], cfg["bindings"])
    algo, bins, spec = build(exp, cfg["method"], cfg["algo"], device)
    algo.eval()
    policy = lambda obs, gen: algo.act(obs, generator=gen)
    seeds = evaluation_seeds(0, 0, cfg["eval_episodes"])
    venv = VectorEnv(cfg["task"], bins, len(seeds))
    t0 = time.perf_counter()
    batched = evaluate_batched(policy, venv, seeds, device, torch.Generator(device=device).manual_seed(0),
                               max_steps=cfg["eval_steps"])
    t_batched = time.perf_counter() - t0
    venv.close()
    env = make_env(cfg["task"], bins)
    t0 = time.perf_counter()
    evaluate_sequential(policy, env, seeds, device, torch.Generator(device=device).manual_seed(0),
                        max_steps=cfg["eval_steps"])
    t_seq = time.perf_counter() - t0
    return {"kind": "eval", "episodes": len(seeds), "episode_steps": cfg["eval_steps"],
            "batched_s": t_batched, "sequential_s": t_seq, "speedup": t_seq / t_batched,
            "mean_return": float(batched.mean())}


def run_single(cfg: dict, peak_gflops: Optional[float] = None) -> dict:
    """One configuration's result; ``peak_gflops`` reuses a peak measured earlier in this process."""
    import torch

    torch.set_num_threads(cfg["threads"])
    if cfg["device"] == "auto":
        cfg["device"] = "cuda" if torch.cuda.is_available() else "cpu"
    result = {"bench": cfg["part"]}
    result.update({k: cfg[k] for k in ("method", "algo", "scale", "task", "device", "threads")})
    result.update({"train": bench_train, "reference": bench_reference, "asm": bench_asm,
                   "eval": bench_eval}[cfg["part"]](cfg))
    result["peak_gflops"] = peak_gflops if peak_gflops is not None else peak_matmul_gflops(cfg["device"])
    if result.get("gflops_per_s"):
        result["efficiency"] = result["gflops_per_s"] / result["peak_gflops"]
    return result


def combine_rounds(rounds: List[dict]) -> dict:
    """One configuration's result from its rounds (round 0 first, the one with FLOP and op
    counts): rates are the median over every timing of every round, the peak is the median of
    the rounds' peaks, ratios (speed-ups) the median of the rounds' own ratios."""
    out = dict(rounds[0])
    out["rounds"] = len(rounds)
    if len(rounds) == 1:
        return out
    med = lambda values: median(sorted(values))  # noqa: E731
    out["peak_gflops"] = med([r["peak_gflops"] for r in rounds])
    if out["kind"] in ("train", "asm"):
        samples = sorted(x for r in rounds for x in r["steps_per_s_samples"])
        out["steps_per_s"], out["steps_per_s_samples"] = med(samples), samples
        if out.get("flops_per_step"):
            out["gflops_per_s"] = out["flops_per_step"] * out["steps_per_s"] / 1e9
            out["efficiency"] = out["gflops_per_s"] / out["peak_gflops"]
        out["peak_memory_mb"] = max(r["peak_memory_mb"] for r in rounds)
    elif out["kind"] == "reference":
        out["samples"] = {k: [x for r in rounds for x in r["samples"][k]] for k in out["samples"]}
        out["fast_steps_per_s"] = med(out["samples"]["fast"])
        out["steps_per_s"] = med(out["samples"]["straightforward"])
        out["speedup"] = med([r["speedup"] for r in rounds])
    elif out["kind"] == "eval":
        out["batched_s"] = med([r["batched_s"] for r in rounds])
        out["sequential_s"] = med([r["sequential_s"] for r in rounds])
        out["speedup"] = med([r["speedup"] for r in rounds])
    return out
