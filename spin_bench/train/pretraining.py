"""SPIN's first stage as a visible, recorded part of a run: the ASM's masked-action-modelling
pre-training (or its cached checkpoint) with a progress bar, its curve written to the run
directory (``asm_pretrain.csv`` beside metrics.csv, and TensorBoard under ``asm/``), and its
probe (accuracy, exact joint match, the structure measure) for summary.json."""
from __future__ import annotations

import csv
import io
import os
import sys
import time
from typing import Any, Dict, List, Optional, Sequence

import torch

from spin_bench.atomic import atomic_write_text
from spin_bench.models.asm import ASMCheckpoint, pretrain_asm
from spin_bench.rundir import ASM_CURVE

CURVE_COLUMNS = ["step", "mam_loss", "masked_accuracy", "wall_s", "steps_per_s"]
# a non-TTY progress line at most this often (seconds), and always at the end
LOG_INTERVAL_S = 30.0


class StageProgress:
    """tqdm on a TTY (postfix: MAM loss, masked accuracy), otherwise a log line at most every
    ``LOG_INTERVAL_S`` seconds and at the end; ``pretrain_asm``'s ``log_fn``."""

    def __init__(self, desc: str, stream=None):
        self.desc, self.stream = desc, stream if stream is not None else sys.stderr
        self.tty = hasattr(self.stream, "isatty") and self.stream.isatty()
        self.bar, self.last_print, self.done = None, 0.0, 0

    def __call__(self, step: int, total: int, rec: Optional[dict]) -> None:
        if rec is None:  # before the first step
            if self.tty:
                from tqdm import tqdm

                self.bar = tqdm(total=total, desc=self.desc, unit="step", dynamic_ncols=True, file=self.stream)
            else:
                print(f"{self.desc}: {total} steps", file=self.stream, flush=True)
            self.last_print = time.perf_counter()
            return
        text = f"loss {rec['mam_loss']:.3f}  masked acc {rec['masked_accuracy']:.3f}"
        if self.bar is not None:
            self.bar.update(step - self.done)
            self.bar.set_postfix_str(text)
            if step == total:
                self.bar.close()
        elif step == total or time.perf_counter() - self.last_print >= LOG_INTERVAL_S:
            print(f"{self.desc}: step {step}/{total} ({100 * step / total:.0f}%)  {text}  "
                  f"{rec['steps_per_s']:.1f} steps/s", file=self.stream, flush=True)
            self.last_print = time.perf_counter()
        self.done = step


def write_curve(run_dir: str, history: Sequence[Dict[str, float]]) -> str:
    """``<run_dir>/asm_pretrain.csv``: one row per log interval of the pre-training (atomic)."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=CURVE_COLUMNS, extrasaction="ignore")
    writer.writeheader()
    for rec in history:
        writer.writerow({k: rec.get(k, "") for k in CURVE_COLUMNS})
    path = os.path.join(run_dir, ASM_CURVE)
    atomic_write_text(path, buf.getvalue())
    return path


def write_tensorboard(run_dir: str, history: Sequence[Dict[str, float]]) -> None:
    """The curve as TensorBoard scalars ``asm/mam_loss``, ``asm/masked_accuracy``, ``asm/steps_per_s``."""
    from torch.utils.tensorboard import SummaryWriter

    writer = SummaryWriter(run_dir, filename_suffix=".asm")
    try:
        for rec in history:
            for k in ("mam_loss", "masked_accuracy", "steps_per_s"):
                if rec.get(k) is not None:
                    writer.add_scalar(f"asm/{k}", float(rec[k]), int(rec["step"]))
    finally:
        writer.close()


def summary_record(ckpt: ASMCheckpoint) -> Dict[str, Any]:
    """summary.json's ``asm``: the probe, the training budget and where the checkpoint came from."""
    tc = ckpt.train_config
    return {**ckpt.final_metrics, "steps": tc.get("steps"), "batch_size": tc.get("batch_size"),
            "pretrain_seconds": float(ckpt.pretrain_seconds), "from_cache": bool(ckpt.from_cache)}


def run_stage(data: Dict[str, torch.Tensor], bins: List[int], seed: int, device: torch.device, cache_dir: str,
              dataset_identity: Optional[str], dataset_sha256: Optional[str], run_dir: Optional[str] = None,
              desc: str = "ASM pre-training", tensorboard: bool = True) -> ASMCheckpoint:
    """Pre-train (or load from the cache) the run's ASM with a progress display; with ``run_dir``
    its curve goes to asm_pretrain.csv and TensorBoard, whether trained now or cached."""
    ckpt = pretrain_asm(data, bins=bins, seed=seed, device=device, cache_dir=cache_dir,
                        dataset_identity=dataset_identity, dataset_sha256=dataset_sha256, log_fn=StageProgress(desc))
    m = ckpt.final_metrics
    if ckpt.from_cache:
        print(f"{desc}: loaded from the cache {ckpt.path} (trained in {ckpt.pretrain_seconds / 60:.1f} min, "
              f"{ckpt.train_config.get('steps')} steps)", file=sys.stderr, flush=True)
    print(f"{desc}: masked acc {m.get('masked_accuracy', float('nan')):.3f}  exact match "
          f"{m.get('exact_match', float('nan')):.3f}  structure {m.get('mean_structure', float('nan')):.3f} "
          f"nats/slot", file=sys.stderr, flush=True)
    if run_dir is not None:
        write_curve(run_dir, ckpt.history)
        if tensorboard and not any(f.endswith(".asm") for f in os.listdir(run_dir)):  # once per run
            write_tensorboard(run_dir, ckpt.history)
    return ckpt
