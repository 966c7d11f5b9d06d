"""How the trainer runs one gradient update: eagerly, or captured once as a CUDA graph and replayed.

At the paper's sizes an IQL step is a few hundred small kernels (the bench counts ~250-720
ATen calls per step), so on a GPU it is bound by kernel launches and Python dispatch, not
arithmetic. ``UpdateStep(mode='graph')`` records the *whole* update — value, critic and actor
losses, their backward passes, the three (capturable, fused) Adam steps and the Polyak update
— as one CUDA graph on static batch buffers, and replays it: one launch per step.

Modes (gin: ``UpdateStep.mode``):

- ``eager``: ``algo.update(batch)``, the reference.
- ``static``: the structure the capture uses, run eagerly on any device: each batch is copied
  into the same preallocated buffers and the update reads only those. On the CPU it is
  bit-for-bit the eager step (tested), which is what can be checked without a GPU.
- ``graph`` (CUDA only): ``static`` plus capture. The first ``warmup`` calls are eager
  updates on a side stream (they are real steps on their own batches; warm-up lets cuDNN,
  cuBLAS and the allocator settle before recording), the next call records the update into a
  graph and replays it, and every later call copies its batch in and replays. Each call is
  exactly one training step on its batch, as in eager mode.
- ``auto``: ``eager`` on every device until a GPU measurement shows the graph is faster
  (``make gpu-check`` measures eager against graph per method; see docs/gpu.md). No GPU has
  been at hand yet, so the graph is opt-in.

Precision (gin: ``UpdateStep.precision``): ``fp32`` (torch's defaults left as they are); ``tf32`` (CUDA: TF32 tensor-core
matmuls and convolutions, set process-wide); ``bf16`` (the update runs under
``torch.autocast(dtype=bfloat16)``: matmuls in bf16, reductions and losses in fp32, weights
and Adam state stay fp32). ``make gpu-check`` and ``measure_precision`` measure what each does
to the losses against fp32.

What the capture requires of an algorithm's ``update``, and IQL meets: no host syncs (no
``.item()``, no data-dependent shapes), every tensor it creates on the device, the same
kernels every step, randomness only from the default CUDA generator (dropout), and losses
returned as tensors. Outputs of a replay are the graph's static tensors: read (or clone)
them before the next call, as the trainer does. Parameters and optimiser state must keep
their storage after capture: load checkpoints before the first call, never after (the
trainer resumes before training starts).
"""
from __future__ import annotations

import contextlib
from typing import Callable, Dict, Iterable, List, Optional

import gin
import torch

from spin_bench.algos.base import Batch, OfflineAlgorithm

MODES = ("auto", "eager", "static", "graph")
PRECISIONS = ("fp32", "tf32", "bf16")
# What mode='auto' picks per device type. CUDA stays eager until gpu-check has measured the
# graph on a GPU (docs/gpu.md); then this entry is the place to switch it.
AUTO_MODE = {"cpu": "eager", "cuda": "eager"}


def resolve_mode(mode: str, device: torch.device) -> str:
    """The concrete mode for ``device``; ValueError names the bad value."""
    if mode not in MODES:
        raise ValueError(f"UpdateStep.mode must be one of {list(MODES)}, got {mode!r}")
    if mode == "auto":
        return AUTO_MODE.get(device.type, "eager")
    if mode == "graph" and device.type != "cuda":
        raise ValueError(f"UpdateStep.mode='graph' captures a CUDA graph and needs a CUDA device, "
                         f"got device {device}")
    return mode


def precision_context(precision: str, device: torch.device) -> Callable[[], contextlib.AbstractContextManager]:
    """A factory of the context every update runs in; sets the process-wide TF32 flags for 'tf32'."""
    if precision not in PRECISIONS:
        raise ValueError(f"UpdateStep.precision must be one of {list(PRECISIONS)}, got {precision!r}")
    if precision == "tf32":
        if device.type != "cuda":
            raise ValueError(f"UpdateStep.precision='tf32' is a CUDA matmul mode, got device {device}")
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    if precision == "bf16":
        # cache_enabled=False: cached casts of the weights would be stale inside a replayed graph.
        return lambda: torch.autocast(device.type, dtype=torch.bfloat16, cache_enabled=False)
    return contextlib.nullcontext


def make_capturable(optimizers: Iterable[torch.optim.Optimizer]) -> None:
    """Switch Adam(W) to its capturable form (step counters on the device, no host reads)."""
    for opt in optimizers:
        for group in opt.param_groups:
            group["capturable"] = True
        for state in opt.state.values():
            step = state.get("step")
            if torch.is_tensor(step):
                p_device = next(iter(opt.param_groups[0]["params"])).device
                state["step"] = step.to(device=p_device, dtype=torch.float32)
        opt._warned_capturable_if_run_uncaptured = True  # warm-up steps run uncaptured on purpose


@gin.configurable(denylist=["algo", "device"])
class UpdateStep:
    """``step(batch) -> losses``: one gradient update of ``algo`` in the configured mode."""

    def __init__(self, algo: OfflineAlgorithm, device: torch.device, mode: str = "auto",
                 precision: str = "fp32", warmup: int = 3):
        self.device = torch.device(device)
        self.mode = resolve_mode(mode, self.device)
        if warmup < 1:
            raise ValueError(f"UpdateStep.warmup must be >= 1, got {warmup}")
        self.precision = precision
        self._context = precision_context(precision, self.device)
        self.algo, self.warmup = algo, int(warmup)
        self.static: Optional[Batch] = None
        self.graph: Optional["torch.cuda.CUDAGraph"] = None
        self.outputs: Optional[Dict[str, torch.Tensor]] = None
        self.calls = 0
        if self.mode == "graph":
            make_capturable(algo.optimizers.values())

    def _update(self, batch: Batch) -> Dict[str, torch.Tensor]:
        with self._context():
            out = self.algo.update(batch)
        # fp32 losses whatever the autocast dtype: the trainer sums thousands of them.
        return {k: v.float() for k, v in out.items()} if self.precision == "bf16" else out

    def _fill(self, batch: Batch) -> Batch:
        """Copy ``batch`` into the static buffers (allocated on the first call)."""
        if self.static is None:
            self.static = Batch(*(t.detach().clone() for t in batch))
        else:
            for buf, t in zip(self.static, batch):
                if buf.shape != t.shape or buf.dtype != t.dtype:
                    raise ValueError(f"UpdateStep: static batch buffers hold {tuple(buf.shape)} {buf.dtype}, "
                                     f"got {tuple(t.shape)} {t.dtype} (the batch size must not change)")
                buf.copy_(t, non_blocking=True)
        return self.static

    def __call__(self, batch: Batch) -> Dict[str, torch.Tensor]:
        self.calls += 1
        if self.mode == "eager":
            return self._update(batch)
        static = self._fill(batch)
        if self.mode == "static":
            return self._update(static)
        if self.graph is not None:
            self.graph.replay()
            return self.outputs
        if self.calls <= self.warmup:
            side = torch.cuda.Stream(self.device)
            side.wait_stream(torch.cuda.current_stream(self.device))
            with torch.cuda.stream(side):
                out = self._update(static)
            torch.cuda.current_stream(self.device).wait_stream(side)
            return out
        self._capture()
        self.graph.replay()
        return self.outputs

    def _capture(self) -> None:
        for opt in self.algo.optimizers.values():
            opt.zero_grad(set_to_none=True)  # backward allocates .grad from the graph's pool
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            self.outputs = self._update(self.static)
        self.graph = graph


def parameters_and_state(algo: OfflineAlgorithm) -> List[torch.Tensor]:
    """Every parameter, buffer and optimiser-state tensor of ``algo`` (for equality checks)."""
    out = [t.detach() for t in algo.state_dict().values()]
    for name in sorted(algo.optimizers):
        for state in algo.optimizers[name].state.values():
            out += [v.detach() for _, v in sorted(state.items()) if torch.is_tensor(v)]
    return out


def max_abs_diff(a: Iterable[torch.Tensor], b: Iterable[torch.Tensor]) -> float:
    """Largest elementwise |a - b| over paired tensors (compared on the CPU, in float64)."""
    worst = 0.0
    for x, y in zip(a, b, strict=True):
        if x.numel():
            worst = max(worst, float((x.detach().cpu().double() - y.detach().cpu().double()).abs().max()))
    return worst
