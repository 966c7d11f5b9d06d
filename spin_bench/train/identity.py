"""The run identity: what defines a run, recorded in its directory so that ``--resume``
continues only that run.

One of three identities (docs/data-identity.md): the run identity names a dataset by the
*data identity* (:mod:`spin_bench.data.identity`) and the file sha256;
:mod:`spin_bench.analysis.data_identities` is the report's side (which data each run used).

``run_identity.json`` holds the run's configuration (every gin binding in effect, as
``configs.config_str()`` writes it, one entry per binding) minus what may legitimately change
between a run's launches (:data:`MAY_CHANGE_ON_RESUME`: where things are, thread counts,
logging, and ``Schedule.num_steps``, which the runner checks itself), the seed and the
dataset's sha256 and data identity (compared when both launches recorded it, so a regenerated
file with the same data resumes; else the sha256).  A resume whose identity differs in anything else is refused with a one-line
diff before anything in the directory is touched.

Run directories written before this record existed are recognised by their ``config.gin``
and ``summary.json`` (what the runner always wrote first): their identity is rebuilt from
those on the first resume and then recorded.
"""
from __future__ import annotations

import os
from typing import List, Optional

from spin_bench.atomic import atomic_write_json
from spin_bench.cli import MAX_SEED
from spin_bench.rundir import CONFIG, IDENTITY, NON_RESULT_BINDINGS, SUMMARY, config_bindings as bindings_of
from spin_bench.safe_load import FieldError, json_int, json_str, read_json, read_text

IDENTITY_FORMAT = 1
# Bindings a resumed run may change: locations (the data is identified by its sha256), how the
# update step is executed (UpdateStep.mode: eager or CUDA graph, same numbers),
# performance knobs and logging; Schedule.num_steps is checked by the runner (a larger one
# extends the run, a smaller one than the run reached is refused).
MAY_CHANGE_ON_RESUME = NON_RESULT_BINDINGS + ("Schedule.num_steps",)


class RunMismatchError(ValueError):
    """--resume of a run directory with a different run (nothing was touched)."""


def identity(config_text: str, seed: int, dataset_sha256: Optional[str] = None,
             dataset_identity: Optional[str] = None) -> dict:
    """The record of a run: configuration (minus MAY_CHANGE_ON_RESUME), seed, the dataset's
    sha256 and its data identity (spin_bench.data.identity)."""
    config = {k: v for k, v in bindings_of(config_text).items() if k not in MAY_CHANGE_ON_RESUME}
    return {"format": IDENTITY_FORMAT, "seed": int(seed), "dataset_sha256": dataset_sha256,
            "dataset_identity": dataset_identity, "config": config}


def recorded(run_dir: str) -> Optional[dict]:
    """The identity recorded in `run_dir`: run_identity.json, else rebuilt from the config.gin
    and summary.json an earlier version wrote; None when the directory records no run.
    RunMismatchError when the record cannot be read or holds values of the wrong type (refuse
    rather than guess): files are read only if regular (no links, FIFOs or devices)."""
    path = os.path.join(run_dir, IDENTITY)
    if os.path.lexists(path):
        try:
            doc = read_json(path, "run record", follow_symlinks=False)
            return _checked(doc, path)
        except ValueError as e:  # UnreadableFileError, FieldError
            raise RunMismatchError(f"{_one_line(e)}; refusing to resume a run that cannot be identified, "
                                   f"nothing was changed (start a new run directory)") from None
    config_path, summary_path = os.path.join(run_dir, CONFIG), os.path.join(run_dir, SUMMARY)
    if not os.path.lexists(config_path):
        return None
    try:
        text = read_text(config_path, "run configuration (config.gin)", follow_symlinks=False)
        summary = {}
        if os.path.lexists(summary_path):
            summary = read_json(summary_path, "run summary (summary.json)", follow_symlinks=False)
        seed = json_int(summary, "seed", summary_path, lo=0, hi=MAX_SEED, required=False, default=-1)
        return identity(text, seed, json_str(summary, "dataset_sha256", summary_path, required=False),
                        json_str(summary, "dataset_identity", summary_path, required=False))
    except ValueError as e:
        raise RunMismatchError(f"{run_dir}: unreadable config.gin/summary.json ({_one_line(e)}); refusing to "
                               f"resume a run that cannot be identified, nothing was changed (start a new "
                               f"run directory)") from None


def _checked(doc: dict, path: str) -> dict:
    """A run_identity.json record whose every field has its type: FieldError otherwise."""
    json_int(doc, "format", path, lo=1, hi=IDENTITY_FORMAT, required=False)
    json_int(doc, "seed", path, lo=-1, hi=MAX_SEED)
    for key in ("dataset_sha256", "dataset_identity"):
        json_str(doc, key, path, required=False, max_len=256)
    config = doc.get("config")
    if not isinstance(config, dict):
        raise FieldError(f"{path}: config must be a JSON object of binding -> value strings, got "
                         f"{type(config).__name__}")
    for k, v in config.items():
        if not isinstance(v, str):
            raise FieldError(f"{path}: config[{k!r}] must be a string (the binding's value as gin "
                             f"writes it), got {type(v).__name__} {v!r:.40}")
    return doc


def _one_line(e: BaseException) -> str:
    return " ".join(str(e).split())


def differences(old: dict, new: dict) -> List[str]:
    """What differs between two identities, one short phrase each ('X: a -> b')."""
    out = []
    if old.get("seed") not in (None, -1) and old.get("seed") != new.get("seed"):
        out.append(f"seed: {old.get('seed')} -> {new.get('seed')}")
    a, b = old.get("dataset_identity"), new.get("dataset_identity")
    if a and b:  # the same data, whatever its file bytes (a regenerated or re-encoded file)
        if a != b:
            out.append(f"dataset identity: {a[:12]} -> {b[:12]}")
    else:
        a, b = old.get("dataset_sha256"), new.get("dataset_sha256")
        if a and b and a != b:
            out.append(f"dataset sha256: {a[:12]} -> {b[:12]}")
    oc, nc = old.get("config", {}), new.get("config", {})
    for k in sorted(set(oc) | set(nc)):
        if oc.get(k) != nc.get(k):
            out.append(f"{k}: {_short(oc.get(k))} -> {_short(nc.get(k))}")
    return out


def check(run_dir: str, old: Optional[dict], new: dict) -> None:
    """RunMismatchError with a one-line diff when `new` is not the run recorded as `old`."""
    if old is None:
        return
    diff = differences(old, new)
    if diff:
        raise RunMismatchError(f"refusing to resume {run_dir}: it holds a different run ({'; '.join(diff)}); "
                               f"nothing was changed (use another --run_dir for this configuration)")


def write(run_dir: str, record: dict) -> None:
    """Record `record` as the run directory's run_identity.json (atomically)."""
    atomic_write_json(os.path.join(run_dir, IDENTITY), record)


def _short(v: Optional[str]) -> str:
    """A binding's value for a diff line: at most 60 characters, '(unbound)' for None."""
    if v is None:
        return "(unbound)"
    return v if len(v) <= 60 else v[:57] + "..."
