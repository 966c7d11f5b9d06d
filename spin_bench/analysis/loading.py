"""Load run directories into tidy pandas frames, excluding bad runs by rule.

A run directory (written by ``spin_bench.train``) holds ``summary.json``, ``metrics.csv``
(one row per evaluation) and, once finished, an empty ``COMPLETE`` marker. A sweep directory
holds run directories at any depth; they are found by their ``summary.json``.

Exclusion rules (each excluded run is listed with its reason, never silently mixed in):

1. unreadable ``summary.json`` or ``metrics.csv``, or missing required fields/columns;
2. failed runs (``status == "failed"``);
3. incomplete runs (``status != "complete"`` or no ``COMPLETE`` marker);
4. a data identity (``dataset_identity``: a digest of the data, not of the file's bytes)
   that differs from the majority identity of the runs that name the same ``dataset_id``
   (all runs of that dataset_id are excluded when there is no strict majority); runs that
   recorded only the file sha256 get their identity from the file at hand, or are kept
   and reported as unverifiable (:mod:`spin_bench.analysis.data_identities`);
5. duplicates (same scale, algo, task, bins, level, method, configuration and seed): the run
   with the most evaluations is kept (then the most steps, then the first path in sorted
   order). Runs of a method whose configurations differ (config.gin: ``pretrain_asm.epochs``,
   ``IQL.beta``, ...) are not duplicates but variants, rows of their own labelled by what
   differs (:mod:`spin_bench.analysis.variants`), e.g. ``SPIN [ASM 100 ep]``.
"""
from __future__ import annotations

import dataclasses
import glob
import math
import os
from typing import Dict, Iterable, List, Optional, Union

import numpy as np
import pandas as pd

from spin_bench.analysis.data_identities import check_identities
from spin_bench.analysis.labels import bins_label
from spin_bench.analysis.notes import AnalysisError, Notes
from spin_bench.analysis.variants import result_config, variant_labels, with_data_version
from spin_bench.rundir import COMPLETE, CONFIG, METRICS, SUMMARY, config_bindings, final_score
from spin_bench import vocab
from spin_bench.vocab import method_label, reference_algos, reference_method, variant_method

REQUIRED_SUMMARY_KEYS = ("status", "task", "bins", "level", "method", "algo", "scale", "seed",
                         "dataset_sha256")
REQUIRED_METRICS_COLUMNS = ("step", "train_time_s", "return_mean")
DEFAULT_FINAL_K = 5  # for runs whose summary.json records none (the runner always does)
# Identity of a configuration; with the seed, identity of a run.
CONFIG_KEYS = ("scale", "algo", "task", "bins", "level", "method")
RUN_KEYS = CONFIG_KEYS + ("seed",)

EVAL_COLUMNS = ["scale", "algo", "task", "bins", "level", "method", "label", "seed", "step",
                "train_time_s", "train_min", "eval_time_s", "return_mean", "return_std",
                "normalized_score", "behaviour_nll", "run_dir"]
RUN_COLUMNS = ["scale", "algo", "task", "bins", "level", "method", "label", "seed",
               "final_return", "best_return", "final_normalized_score", "best_normalized_score",
               "final_k", "num_evals", "num_steps", "total_train_min", "pretrain_min",
               "eval_min", "has_reference", "reference_expert", "reference_random",
               "reference_source", "dataset_id", "dataset_sha256", "dataset_identity", "device",
               "asm_epochs", "asm_fine_tuned", "asm_masked_accuracy", "asm_exact_match", "asm_structure",
               "machine", "run_dir"]
EXCLUDED_COLUMNS = ["run_dir", "reason"]


@dataclasses.dataclass
class LoadResult:
    """What :func:`load_runs` found.

    evals:    one row per evaluation of every included run (``EVAL_COLUMNS``).
    runs:     one row per included run (``RUN_COLUMNS``): final score = mean of the last
              ``final_k`` evaluations, best = max over evaluations.
    excluded: ``run_dir``, ``reason`` for every run left out by rule.
    messages: warnings/infos for the report.
    """

    evals: pd.DataFrame
    runs: pd.DataFrame
    excluded: pd.DataFrame
    messages: Notes
    final_k: Optional[int]  # None: each run's own (summary.json's final_k)
    inputs: List[str]

    @property
    def empty(self) -> bool:
        return self.runs.empty

    @property
    def final_k_text(self) -> str:
        """How final scores were taken, for the report: 'K', or each run's own and which."""
        if self.final_k is not None:
            return str(self.final_k)
        used = sorted({int(k) for k in self.runs["final_k"]}) if len(self.runs) else []
        return f"K (each run's own final_k: {', '.join(map(str, used)) or '-'})"


_GLOB_CHARS = set("*?[")
MAX_DEPTH = 64  # folders below an input searched for run directories (a run is 1-6 deep)
# Bounds of what a run's summary.json and metrics.csv may hold (beyond: a damaged record).
MAX_NUMBER = 1e15
MAX_STEPS = 10**12


def find_run_dirs(paths_or_globs: Union[str, os.PathLike, Iterable]) -> List[str]:
    """Every directory holding a ``summary.json`` under the given paths/globs (sorted, unique).

    The walk is iterative (no recursion limit, however deep the folders nest), stops
    MAX_DEPTH folders below each input, never follows a link to a folder, and skips folders
    it cannot list; what a found directory holds is :func:`load_runs`'s business."""
    if isinstance(paths_or_globs, (str, os.PathLike)):
        paths_or_globs = [paths_or_globs]
    found = set()
    for entry in paths_or_globs:
        entry = os.fspath(entry)
        if _GLOB_CHARS & set(entry):
            try:
                matches = sorted(glob.glob(entry, recursive=True))
            except (RecursionError, OSError) as e:
                raise AnalysisError(f"{entry}: cannot expand this pattern ({type(e).__name__})") from None
        else:
            if not os.path.exists(entry):
                raise AnalysisError(f"{entry}: no such file or directory")
            matches = [entry]
        for m in matches:
            if not os.path.isdir(m):
                if os.path.basename(m) == SUMMARY:
                    found.add(os.path.normpath(os.path.dirname(m) or "."))
                continue
            found.update(_walk_for_runs(m))
    return sorted(found)


def _walk_for_runs(top: str) -> List[str]:
    """Directories under `top` (itself included) holding an entry named summary.json."""
    out = []
    stack = [(top, 0)]
    while stack:
        root, depth = stack.pop()
        try:
            with os.scandir(root) as it:
                entries = list(it)
        except OSError:  # unlistable, vanished, or a path too long for the system
            continue
        names = {e.name for e in entries}
        if SUMMARY in names:
            out.append(os.path.normpath(root))
        if depth >= MAX_DEPTH:
            continue
        for e in entries:
            try:
                if e.is_dir(follow_symlinks=False):
                    stack.append((e.path, depth + 1))
            except OSError:
                continue
    return out


def _num(x) -> float:
    try:
        v = float(x)
    except (TypeError, ValueError, OverflowError):
        return float("nan")
    return v


class _Excluded(Exception):
    pass


def _run_final_k(summary: dict, run_dir: str, notes: Notes) -> int:
    """The run's own final_k (summary.json), DEFAULT_FINAL_K with a note when it has none."""
    k = summary.get("final_k")
    if isinstance(k, int) and not isinstance(k, bool) and 1 <= k <= MAX_STEPS:
        return k
    notes.info("final score", f"{run_dir}: summary.json records no valid final_k ({repr(k)[:60]}); "
                              f"using {DEFAULT_FINAL_K}")
    return DEFAULT_FINAL_K


def _reason(e: Exception, path: str) -> str:
    """An error of the reading layer as a reason, without the path the report shows anyway."""
    text = " ".join(str(e).split())
    return text[len(path) + 2:] if text.startswith(path + ": ") else text


def _summary_fields(summary: dict) -> dict:
    """The fields of a complete run's summary.json the report uses, type-checked: _Excluded
    naming the first field that is missing or has the wrong type or an impossible value."""
    from spin_bench.cli import MAX_SEED, PATH_COMPONENT
    from spin_bench.safe_load import json_int, json_str

    where = "summary.json"
    missing = [k for k in REQUIRED_SUMMARY_KEYS if summary.get(k) in (None, "")]
    if missing:
        raise _Excluded(f"summary.json lacks {', '.join(missing)}")
    try:
        out = {k: json_str(summary, k, where, max_len=100) for k in ("scale", "algo", "task", "level", "method")}
        out["seed"] = json_int(summary, "seed", where, lo=0, hi=MAX_SEED)
        out["dataset_sha256"] = json_str(summary, "dataset_sha256", where, max_len=128)
        for k in ("dataset_id", "dataset_identity", "dataset_path", "device"):
            out[k] = json_str(summary, k, where, required=False, default="", max_len=4096)
    except ValueError as e:
        raise _Excluded(str(e)) from None
    for k in ("scale", "algo", "task", "level", "method"):
        if not PATH_COMPONENT.fullmatch(out[k]):
            raise _Excluded(f"summary.json: {k} must be a simple name, got {out[k][:60]!r}")
    bins = summary["bins"]
    values = bins if isinstance(bins, list) else [bins]
    if (not values or len(values) > 1024
            or not all(isinstance(b, int) and not isinstance(b, bool) and 2 <= b <= 10**6 for b in values)):
        raise _Excluded(f"summary.json: bins must be an integer >= 2 or a list of them, got {str(bins)[:60]}")
    out["bins"] = bins
    return out


def _read_metrics(run_dir: str) -> pd.DataFrame:
    """metrics.csv (a regular file, not a link, at most MAX_CSV_BYTES) as a frame; _Excluded."""
    import io

    from spin_bench.safe_load import MAX_CSV_BYTES, UnreadableFileError, read_text

    mpath = os.path.join(run_dir, METRICS)
    if not os.path.lexists(mpath):
        raise _Excluded("no metrics.csv")
    try:
        text = read_text(mpath, "metrics.csv", MAX_CSV_BYTES, follow_symlinks=False)
        return pd.read_csv(io.StringIO(text))
    except UnreadableFileError as e:
        raise _Excluded(f"unreadable metrics.csv ({_reason(e, mpath)})") from None
    except (ValueError, pd.errors.ParserError, RecursionError) as e:
        raise _Excluded(f"unreadable metrics.csv ({type(e).__name__}: {' '.join(str(e).split())[:200]})") from None


def _read_run(run_dir: str, final_k: Optional[int], notes: Notes):
    """Parse one run directory -> (run record dict, evals frame); raises _Excluded(reason).

    Files are read through the safe-reading layer (regular files, size caps, no links) and
    every field is type-checked, so whatever a run folder holds it is excluded with its reason."""
    from spin_bench.cli import path_problem
    from spin_bench.safe_load import UnreadableFileError, read_json

    if path_problem(run_dir, "the run folder"):
        raise _Excluded("the run folder's name is not valid UTF-8 or too long")
    path = os.path.join(run_dir, SUMMARY)
    try:
        summary = read_json(path, "summary.json", follow_symlinks=False)
    except UnreadableFileError as e:
        raise _Excluded(f"unreadable summary.json ({_reason(e, path)})")
    status = summary.get("status")
    if status == "failed":
        err = summary.get("error") or "no error message"
        raise _Excluded(f"failed run: {str(err)[:2000]}")
    if status != "complete":
        raise _Excluded(f"incomplete run (status={repr(status)[:60]})")
    if not os.path.isfile(os.path.join(run_dir, COMPLETE)):
        raise _Excluded("incomplete run (no COMPLETE marker)")
    fields = _summary_fields(summary)
    seed = fields["seed"]

    metrics = _read_metrics(run_dir)
    lacking = [c for c in REQUIRED_METRICS_COLUMNS if c not in metrics.columns]
    if lacking:
        raise _Excluded(f"metrics.csv lacks column(s) {', '.join(lacking)}")
    if metrics.empty:
        raise _Excluded("metrics.csv has no evaluations")
    m = pd.DataFrame({c: pd.to_numeric(metrics[c], errors="coerce")
                      for c in REQUIRED_METRICS_COLUMNS})
    bad = m.isna().any(axis=1)
    if bad.any():
        raise _Excluded(f"metrics.csv has {int(bad.sum())} row(s) with missing or non-numeric "
                        f"step/train_time_s/return_mean")
    finite = np.isfinite(m.to_numpy(float)) & (np.abs(m.to_numpy(float)) <= MAX_NUMBER)
    if not finite.all():
        n_bad = int((~finite.all(axis=1)).sum())
        raise _Excluded(f"metrics.csv has {n_bad} row(s) with infinite or out-of-range "
                        f"step/train_time_s/return_mean")
    if (m["step"] < 0).any() or (m["step"] != np.round(m["step"])).any():
        raise _Excluded("metrics.csv has a step that is not a non-negative integer")
    for c in ("eval_time_s", "return_std", "normalized_score", "behaviour_nll"):
        m[c] = (pd.to_numeric(metrics[c], errors="coerce") if c in metrics.columns
                else np.nan)
        m[c] = m[c].where(np.isfinite(m[c].to_numpy(float)))  # inf -> missing, never a poisoned mean
    m["step"] = m["step"].astype(np.int64)
    m = m.sort_values("step", kind="stable")
    if m["step"].duplicated().any():
        n_dup = int(m["step"].duplicated().sum())
        notes.warn("metrics", f"{run_dir}: {n_dup} repeated evaluation step(s) in metrics.csv "
                              f"(a resumed run?); kept the last row of each step")
        m = m.drop_duplicates("step", keep="last")
    m = m.reset_index(drop=True)

    ref = summary.get("reference")
    expert = random_ = float("nan")
    ref_source = ""
    if isinstance(ref, dict):
        expert, random_ = _num(ref.get("expert")), _num(ref.get("random"))
        ref_source = str(ref.get("source") or "")[:500]
    has_ref = (math.isfinite(expert) and math.isfinite(random_) and expert != random_
               and max(abs(expert), abs(random_)) <= MAX_NUMBER)
    if m["normalized_score"].isna().any() and has_ref:
        fill = (m["return_mean"] - random_) / (expert - random_)
        m["normalized_score"] = m["normalized_score"].fillna(fill)
    has_norm = bool(m["normalized_score"].notna().all())
    if not has_norm:
        m["normalized_score"] = np.nan

    cfg = {
        "scale": fields["scale"], "algo": fields["algo"].lower(),
        "task": fields["task"], "bins": bins_label(fields["bins"]),
        "level": fields["level"], "method": fields["method"].lower(),
    }
    if isinstance(summary.get("method_display"), dict):  # a method of a researcher's own: shown as it recorded
        vocab.register_display(cfg["method"], summary["method_display"])
    cfg["label"] = method_label(cfg["method"], cfg["algo"])
    dataset_id = fields["dataset_id"]
    if dataset_id in (None, ""):
        dataset_id = f"{cfg['task']}-{cfg['level']}-{cfg['bins']}bins"
        notes.info("dataset", f"{run_dir}: summary.json has no dataset_id; the checksum rule "
                              f"groups it as {dataset_id!r}")
    n = len(m)
    final_k = int(final_k) if final_k is not None else _run_final_k(summary, run_dir, notes)
    k = min(final_k, n)
    if n < final_k:
        notes.warn("final score", f"{run_dir}: only {n} evaluation(s), final score is the mean "
                                  f"of {k} instead of {final_k}")
    ret = m["return_mean"].to_numpy(float)
    norm = m["normalized_score"].to_numpy(float)
    pretrain = _num(summary.get("pretrain_time_s"))
    eval_s = _num(summary.get("eval_time_s"))
    record = dict(
        cfg, seed=seed,
        final_return=final_score(ret, k), best_return=float(np.max(ret)),
        final_normalized_score=final_score(norm, k) if has_norm else float("nan"),
        best_normalized_score=float(np.max(norm)) if has_norm else float("nan"),
        final_k=k, num_evals=n, num_steps=int(m["step"].iloc[-1]),
        total_train_min=float(m["train_time_s"].iloc[-1]) / 60.0,
        pretrain_min=(pretrain / 60.0) if math.isfinite(pretrain) else 0.0,
        eval_min=(float(m["eval_time_s"].iloc[-1]) / 60.0
                  if m["eval_time_s"].notna().any() else
                  (eval_s / 60.0 if math.isfinite(eval_s) else float("nan"))),
        has_reference=has_norm, reference_expert=expert if has_ref else float("nan"),
        reference_random=random_ if has_ref else float("nan"), reference_source=ref_source,
        dataset_id=str(dataset_id), dataset_sha256=fields["dataset_sha256"],
        dataset_identity=fields["dataset_identity"],
        dataset_path=fields["dataset_path"],
        device=fields["device"], machine=_machine(summary), run_dir=run_dir,
    )
    bindings = _read_config(run_dir, notes)
    record.update(_asm_fields(cfg["method"], summary, bindings))
    record["config"] = with_data_version(result_config(bindings), dataset_id)
    ev = m.assign(**cfg, seed=seed, run_dir=run_dir)
    ev["train_min"] = ev["train_time_s"] / 60.0
    return record, ev[EVAL_COLUMNS]


CONFIG_MAX_BYTES = 1 << 20


def _machine(summary: dict) -> str:
    """The CPU the run's clocks were measured on ('' when its summary.json records none): its
    model name, with its family/model/stepping where recorded ('AMD EPYC (cpu family 25, model
    17, stepping 1)'), so two CPUs of one name are two machines."""
    m = summary.get("machine")
    cpu = m.get("cpu") if isinstance(m, dict) else None
    if not isinstance(cpu, str):
        return ""
    cpu_id = m.get("cpu_id")
    return f"{cpu} ({cpu_id})" if isinstance(cpu_id, str) and cpu_id else cpu
FINE_TUNED = ("()", "[]")  # make_spin_actor.freeze: nothing frozen


def _asm_fields(method: str, summary: dict, bindings: Dict[str, str]) -> dict:
    """SPIN's pre-training budget (ASM epochs from config.gin), whether the ASM-initialised
    encoder was fine-tuned, and the ASM probe from summary.json (NaN where not recorded)."""
    asm = summary.get("asm") if isinstance(summary.get("asm"), dict) else {}
    spec = vocab.METHOD_SPECS.get(method)
    spin = bool(spec and spec.needs_asm)  # a method that pre-trains an ASM (SPIN)
    return {"asm_epochs": _num(bindings.get("pretrain_asm.epochs")) if spin else float("nan"),
            "asm_fine_tuned": spin and bindings.get("make_spin_actor.freeze") in FINE_TUNED,
            "asm_masked_accuracy": _num(asm.get("masked_accuracy")),
            "asm_exact_match": _num(asm.get("exact_match")),
            "asm_structure": _num(asm.get("mean_structure"))}


def _read_config(run_dir: str, notes: Notes) -> Dict[str, str]:
    """The run's bindings from config.gin, read as text (never parsed by gin); {} when absent
    or unreadable (the run then has its method's default configuration, with a note)."""
    from spin_bench.safe_load import UnreadableFileError, read_text

    path = os.path.join(run_dir, CONFIG)
    if not os.path.lexists(path):
        return {}
    try:  # the one reading layer: a regular file, capped, not through a link
        return config_bindings(read_text(path, "config.gin", CONFIG_MAX_BYTES, follow_symlinks=False))
    except UnreadableFileError as e:
        notes.info("configuration", f"{e}; its configuration is not compared")
        return {}


def _label_variants(records: List[dict], evals: List[pd.DataFrame], notes: Notes) -> None:
    """Give runs whose configuration differs from their method's default in their cell a
    method key and label of their own (``spin[ASM 100 ep]``, 'SPIN [ASM 100 ep]'), in place."""
    labels, legends = variant_labels([(tuple(r[k] for k in ("scale", "algo", "task", "bins", "level")),
                                       r["method"], r.pop("config")) for r in records])
    for rec, ev, variant in zip(records, evals, labels):
        if variant:
            rec["method"] = ev["method"] = variant_method(rec["method"], variant)
            rec["label"] = ev["label"] = method_label(rec["method"], rec["algo"])
    for ((scale, algo, task, bins, level), method), legend in sorted(legends.items()):
        for variant, bindings in sorted(legend.items()):
            notes.info("variants", f"{task}/{level}/{bins} bins ({scale}): "
                                   f"{method_label(variant_method(method, variant), algo)}: {bindings}")


def load_runs(paths_or_globs, final_k: Optional[int] = None) -> LoadResult:
    """Load every run directory under ``paths_or_globs`` (directories, globs or summary files).

    Final scores: the mean of the last ``final_k`` evaluations; ``None`` (default) takes each
    run's own ``final_k`` from its summary.json, so the report agrees with the runs.

    Raises :class:`AnalysisError` for a path that does not exist; an input without any run
    directory gives an empty result (``result.empty``) with a message.
    """
    if final_k is not None:
        if int(final_k) < 1:
            raise AnalysisError(f"final_k must be >= 1, got {final_k}")
        final_k = int(final_k)
    inputs = ([os.fspath(paths_or_globs)] if isinstance(paths_or_globs, (str, os.PathLike))
              else [os.fspath(p) for p in paths_or_globs])
    notes = Notes()
    run_dirs = find_run_dirs(inputs)
    excluded: List[Dict[str, str]] = []
    records, evals = [], []
    for run_dir in run_dirs:
        try:
            rec, ev = _read_run(run_dir, final_k, notes)
        except _Excluded as e:
            excluded.append({"run_dir": run_dir, "reason": str(e)})
            continue
        records.append(rec)
        evals.append(ev)
    _label_variants(records, evals, notes)
    runs = pd.DataFrame(records, columns=RUN_COLUMNS)

    # Rule 4: one data identity per dataset_id (the majority's).
    runs, dropped = check_identities(runs, {r["run_dir"]: r["dataset_path"] for r in records},
                                     notes)
    excluded += dropped

    # Rule 5: duplicates of (config, seed): keep one.
    runs = runs.sort_values(["num_evals", "num_steps", "run_dir"],
                            ascending=[False, False, True], kind="stable")
    dup = runs.duplicated(list(RUN_KEYS), keep="first")
    if dup.any():
        kept = runs[~dup].set_index(list(RUN_KEYS))["run_dir"]
        for _, r in runs[dup].iterrows():
            keep = kept.loc[tuple(r[k] for k in RUN_KEYS)]
            excluded.append({"run_dir": r["run_dir"],
                             "reason": f"duplicate of {keep} (same configuration and seed)"})
        runs = runs[~dup]
    runs = runs.sort_values(list(RUN_KEYS), kind="stable").reset_index(drop=True)

    keep_dirs = set(runs["run_dir"])
    evals_df = (pd.concat([e for e in evals if e["run_dir"].iloc[0] in keep_dirs],
                          ignore_index=True)
                if any(e["run_dir"].iloc[0] in keep_dirs for e in evals)
                else pd.DataFrame(columns=EVAL_COLUMNS))
    evals_df = evals_df.sort_values(list(RUN_KEYS) + ["step"], kind="stable").reset_index(drop=True)
    excluded_df = pd.DataFrame(excluded, columns=EXCLUDED_COLUMNS).sort_values(
        "run_dir", kind="stable").reset_index(drop=True)

    for _, r in excluded_df.iterrows():
        notes.warn("excluded", f"{r['run_dir']}: {r['reason']}")
    if not run_dirs:
        notes.warn("input", f"no run directories (with {SUMMARY}) under {', '.join(inputs)}",
                   log=False)  # callers decide: the CLI turns it into its one-line error
    # The same cell should not mix datasets.
    for key, grp in runs.groupby(["scale", "task", "bins", "level"], sort=True):
        ids = sorted(set(grp["dataset_id"]))
        if len(ids) > 1:
            notes.warn("dataset", f"{'/'.join(key)}: runs use different datasets ({', '.join(ids)})")
        refs = grp.loc[grp["has_reference"], ["reference_expert", "reference_random"]]
        if len(refs.drop_duplicates()) > 1:
            notes.warn("reference", f"{'/'.join(key)}: runs normalise with different "
                                    f"reference scores")
        machines = sorted(set(grp["machine"]))
        if len(machines) > 1:
            names = ", ".join(m or "not recorded" for m in machines)
            notes.warn("machines", f"{'/'.join(key)}: runs were timed on different machines ({names}): their "
                                   f"minutes (training clock, time to target in minutes) are not comparable; "
                                   f"their steps are")
        if (~grp["has_reference"]).any() and grp["has_reference"].any():
            notes.warn("reference", f"{'/'.join(key)}: some runs have no reference score "
                                    f"(no normalised score)")
    return LoadResult(evals=evals_df, runs=runs[RUN_COLUMNS], excluded=excluded_df,
                      messages=notes, final_k=final_k, inputs=inputs)


def as_runs(obj) -> pd.DataFrame:
    """A runs frame from a LoadResult or a frame."""
    if isinstance(obj, LoadResult):
        return obj.runs
    if isinstance(obj, pd.DataFrame):
        return obj
    raise TypeError(f"expected a LoadResult or a pandas DataFrame, got {type(obj).__name__}")


def fold_references(result: LoadResult) -> LoadResult:
    """Reference runs (algorithms in ``vocab.reference_algos()``, e.g. F-BC) join every other
    algorithm's group of their scale as one more method (``f_bc``, labelled F-BC), so the
    tables, aggregates and time to target show them beside that algorithm's methods.  A scale
    with no other algorithm keeps them as a group of their own."""
    runs, evals = result.runs, result.evals
    if runs.empty or not runs["algo"].isin(reference_algos()).any():
        return result
    run_parts, eval_parts = [runs[~runs["algo"].isin(reference_algos())]], [evals[~evals["algo"].isin(reference_algos())]]
    notes = Notes()
    notes.extend(result.messages)
    for scale, ref in runs[runs["algo"].isin(reference_algos())].groupby("scale", sort=True):
        hosts = sorted(set(runs.loc[(runs.scale == scale) & ~runs["algo"].isin(reference_algos()), "algo"]))
        ref_evals = evals[evals["run_dir"].isin(ref["run_dir"])]
        if not hosts:
            run_parts.append(ref)
            eval_parts.append(ref_evals)
            continue
        for host in hosts:
            for frame, parts in ((ref, run_parts), (ref_evals, eval_parts)):
                moved = frame.copy()
                moved["method"] = [reference_method(m, a) for m, a in zip(frame["method"], frame["algo"])]
                moved["label"] = [method_label(m, host) for m in moved["method"]]
                moved["algo"] = host
                parts.append(moved)
        labels = sorted({method_label(reference_method(m, a), "") for m, a in zip(ref["method"], ref["algo"])})
        notes.info("reference", f"{', '.join(labels)} ({scale} scale, {len(ref)} run(s)) shown as reference "
                                f"row(s) beside {', '.join(h.upper() for h in hosts)}")
    return dataclasses.replace(result, runs=pd.concat(run_parts, ignore_index=True),
                               evals=pd.concat(eval_parts, ignore_index=True), messages=notes)
