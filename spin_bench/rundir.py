"""A run directory, written down once: the names of its files, where a run lands by default,
and its final score.  The trainer writes these files, the sweeps archive them and the
analysis reads them; all three take the names from here.

    <results_dir>/<task>-b<bins>/<level>/<method>_<algo>/<scale>/seed_<seed>/
        config.gin            every binding the run parsed
        operative_config.gin  the values the run used, defaults included
        run_identity.json     what a --resume must match
        metrics.csv           one row per evaluation
        asm_pretrain.csv      SPIN: the ASM pre-training curve, one row per log interval
        summary.json          the run's record (status, dataset, versions, final score)
        checkpoint.pt         the last training checkpoint
        COMPLETE              written last, when the run finished
"""
from __future__ import annotations

import os
from typing import Dict, Optional, Sequence, Union

import numpy as np

CONFIG = "config.gin"
OPERATIVE_CONFIG = "operative_config.gin"
IDENTITY = "run_identity.json"
METRICS = "metrics.csv"
ASM_CURVE = "asm_pretrain.csv"
SUMMARY = "summary.json"
CHECKPOINT = "checkpoint.pt"
COMPLETE = "COMPLETE"
# Every file the suite writes into a run directory (the trainer's, the sweep's): the only
# names whose temp files (``.<name>.XXXXXXXX.tmp``) a fresh start or resume removes.
RUN_FILES = (CONFIG, OPERATIVE_CONFIG, IDENTITY, METRICS, SUMMARY, CHECKPOINT, COMPLETE,
             "sweep_run.json", "run.log", "error.log")

# Bindings that say where things are or how fast they run, not what is computed: they do not
# make two runs different configurations (the data is identified by its data identity).
NON_RESULT_BINDINGS = ("Experiment.data_dir", "Experiment.asm_cache_dir", "Experiment.dataset_path",
                       "Experiment.num_threads", "Experiment.eval_workers", "Schedule.log_every",
                       "pretrain_asm.log_every", "UpdateStep.mode", "UpdateStep.warmup",
                       "Experiment.expected_identities")


class RunDirError(ValueError):
    """The run directory cannot take this run (it holds another, is not a directory, or its
    checkpoint is past the schedule's end)."""


def default_run_dir(results_dir: str, task: str, bins: Union[int, Sequence[int]], level: str, method: str,
                    algo: str, scale: str, seed: int) -> str:
    """``<results_dir>/<task>-b<bins>/<level>/<method>_<algo>/<scale>/seed_<seed>``; per-dimension
    bins are joined with 'x' (``cheetah-run-b3x3x5x3x3x3``)."""
    bins = bins if isinstance(bins, int) else "x".join(str(b) for b in bins)
    return os.path.join(results_dir, f"{task}-b{bins}", level, f"{method}_{algo}", scale, f"seed_{seed}")


def final_score(returns: Sequence[float], k: int) -> float:
    """Final score of a run: the mean of its last ``k`` evaluation returns (NaN without any)."""
    values = np.asarray(returns, dtype=float)
    if values.size == 0:
        return float("nan")
    return float(np.mean(values[-int(k):]))


def config_bindings(config_text: str) -> Dict[str, str]:
    """``{'Selector.param' or 'MACRO': value}`` of a gin ``config_str`` text (config.gin), read
    as plain text: nothing in it is parsed by gin, imported or executed. Whitespace in a value
    (gin wraps long values over several lines) is normalised."""
    out: Dict[str, str] = {}
    key: Optional[str] = None
    for line in config_text.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            key = None
            continue
        if line[0] in " \t" and key is not None:
            out[key] += " " + line.strip()
            continue
        lhs, sep, rhs = line.partition("=")
        if not sep:
            key = None
            continue
        key = lhs.strip()
        out[key] = rhs.strip()
    return {k: " ".join(v.replace("\\", " ").split()) for k, v in out.items()}
