"""Summaries of a dataset for ``python -m spin_bench.data inspect`` and ``table``."""
from __future__ import annotations

import csv
import io
import math
from typing import Any, Dict, List, Optional, Sequence

import numpy as np

from spin_bench.data.dataset import FIXED_CREATED, Dataset
from spin_bench.data.schema import joint_space_size

_SPARK = " ▁▂▃▄▅▆▇█"
_MAX_PERCENT_BINS = 16  # above this a histogram is drawn as a one-character-per-bin bar
RETURN_HISTOGRAM_BINS = 20


def _stats(x: np.ndarray) -> Dict[str, float]:
    if x.size == 0:
        return {"n": 0}
    return {"n": int(x.size), "min": float(np.min(x)), "median": float(np.median(x)),
            "mean": float(np.mean(x)), "max": float(np.max(x)), "std": float(np.std(x))}


def action_histograms(actions: np.ndarray, bins: np.ndarray) -> List[List[int]]:
    """Counts of each bin, per sub-action."""
    return [np.bincount(actions[:, d].astype(np.int64), minlength=int(b))[: int(b)].tolist()
            for d, b in enumerate(bins)]


def continuity_breaks(ds: Dataset) -> int:
    """Transitions inside an episode whose next_observation differs from the next observation."""
    if ds.num_transitions < 2:
        return 0
    inside = ~(ds.terminals | ds.timeouts)[:-1]
    breaks = 0
    step = 1 << 16
    for s in range(0, ds.num_transitions - 1, step):
        e = min(s + step, ds.num_transitions - 1)
        differ = np.any(ds.next_observations[s:e] != ds.observations[s + 1:e + 1], axis=1)
        breaks += int(np.count_nonzero(differ & inside[s:e]))
    return breaks


def references(attrs: Dict[str, Any]) -> Optional[Dict[str, Any]]:
    """{'expert', 'random', 'source'} from the dataset attributes ``reference_expert`` and
    ``reference_random`` (generated datasets record them); None when either is absent or is
    not a finite number."""
    if "reference_expert" not in attrs or "reference_random" not in attrs:
        return None
    try:
        expert, random = float(attrs["reference_expert"]), float(attrs["reference_random"])
    except (TypeError, ValueError):
        return None
    if not (math.isfinite(expert) and math.isfinite(random)):
        return None
    return {"expert": expert, "random": random, "source": attrs.get("reference_source")}


def normalise_returns(returns: np.ndarray, refs: Optional[Dict[str, Any]]
                      ) -> Optional[np.ndarray]:
    """(R - random) / (expert - random), 0 to 1 as in the report; None without references or
    when they coincide."""
    if refs is None or refs["expert"] == refs["random"]:
        return None
    span = refs["expert"] - refs["random"]
    return (np.asarray(returns, np.float64) - refs["random"]) / span


def return_histogram(returns: np.ndarray, bins: int = RETURN_HISTOGRAM_BINS
                     ) -> Optional[Dict[str, List[float]]]:
    """{'edges', 'counts'}: `bins` equal-width bins between the min and max episode return
    (numpy.histogram); None when there are no episodes."""
    returns = np.asarray(returns, np.float64)
    if returns.size == 0:
        return None
    counts, edges = np.histogram(returns, bins=bins,
                                 range=(float(returns.min()), float(returns.max())))
    return {"edges": edges.tolist(), "counts": counts.astype(np.int64).tolist()}


def summarize(ds: Dataset, checksum: Optional[str] = None) -> Dict[str, Any]:
    """A JSON-able summary: ids, sizes, return statistics (raw, normalised when the dataset
    records reference returns, histogram), action histograms, checksum."""
    attrs = ds.attrs
    returns = ds.episode_returns()
    refs = references(attrs)
    normalised = normalise_returns(returns, refs)
    size = ds.path.stat().st_size if ds.path is not None and ds.path.exists() else None
    return {
        "dataset_id": ds.dataset_id, "path": str(ds.path) if ds.path else None,
        "task": ds.task, "level": ds.level, "bins": ds.bins.tolist(),
        "file_size": size, "identity": ds.identity, "sha256": ds.sha256, "checksum": checksum,
        "format_version": attrs.get("format_version"),
        "generator": f"{attrs.get('generator')} {attrs.get('generator_version')}",
        "created": attrs.get("created"), "seed": attrs.get("seed"),
        "behaviour_policy": attrs.get("behaviour_policy"),
        "source_path": attrs.get("source_path"), "source_sha256": attrs.get("source_sha256"),
        "num_transitions": ds.num_transitions, "num_episodes": ds.num_episodes,
        "obs_dim": ds.obs_dim, "num_actions": ds.num_actions,
        "joint_actions": joint_space_size(ds.bins),
        "terminals": int(np.count_nonzero(ds.terminals)),
        "timeouts": int(np.count_nonzero(ds.timeouts)),
        "episode_returns": _stats(returns),
        "normalized_returns": _stats(normalised) if normalised is not None else None,
        "references": refs,
        "return_histogram": return_histogram(returns),
        "episode_lengths": _stats(ds.episode_lengths()),
        "rewards": _stats(ds.rewards),
        "continuity_breaks": continuity_breaks(ds),
        "action_histograms": action_histograms(ds.actions, ds.bins),
    }


def _fmt_hist(counts: List[int]) -> str:
    total = max(1, sum(counts))
    if len(counts) <= _MAX_PERCENT_BINS:
        return " ".join(f"{100.0 * c / total:5.1f}%" for c in counts)
    top = max(counts) or 1
    return f"|{_spark(counts)}| (bins 0..{len(counts) - 1}, tallest {100.0 * top / total:.1f}%)"


def _spark(counts: Sequence[int]) -> str:
    top = max(counts) if len(counts) else 0
    top = top or 1
    return "".join(_SPARK[0] if c == 0 else _SPARK[max(1, round(8 * c / top))] for c in counts)


def _fmt_return_hist(h: Dict[str, Any], lo: float, hi: float) -> str:
    """The return histogram as a spark bar with the min and max return at its ends."""
    counts = h["counts"]
    tallest = max(counts) if counts else 0
    width = (hi - lo) / len(counts) if counts else 0.0
    return (f"{lo:.2f} |{_spark(counts)}| {hi:.2f}   "
            f"({len(counts)} bins of {width:.3g}, tallest {tallest} episodes)")


def _created_note(created: Optional[str]) -> str:
    """Beside the fixed creation date: that it is deliberate (byte-reproducible files)."""
    if created != FIXED_CREATED:
        return ""
    return " (fixed on purpose: the same data gives the same bytes; set SOURCE_DATE_EPOCH for a real date)"


def format_summary(s: Dict[str, Any]) -> str:
    """Human-readable text of :func:`summarize`."""
    def st(d: Dict[str, Any], fmt: str = "{:.2f}") -> str:
        if not d.get("n"):
            return "none"
        return (f"min {fmt.format(d['min'])}  median {fmt.format(d['median'])}  "
                f"mean {fmt.format(d['mean'])}  max {fmt.format(d['max'])}  (n={d['n']})")

    bins = s["bins"]
    bins_txt = str(bins[0]) if len(set(bins)) == 1 else str(bins)
    lines = [
        f"id           {s['dataset_id']}",
        f"path         {s['path']}",
        f"task         {s['task']}   level {s['level']}   bins {bins_txt}",
        f"size         {s['num_transitions']} transitions, {s['num_episodes']} episodes, "
        f"obs {s['obs_dim']}, N {s['num_actions']} ({s['joint_actions']:.3g} joint actions), "
        f"{s['file_size']} bytes",
        f"generator    {s['generator']}   created {s['created']}{_created_note(s['created'])}   "
        f"format v{s['format_version']}" + (f"   seed {s['seed']}" if s.get("seed") is not None else ""),
    ]
    if s.get("behaviour_policy"):
        lines.append(f"behaviour    {s['behaviour_policy']}")
    if s.get("source_path"):
        lines.append(f"source       {s['source_path']} (sha256 {s['source_sha256']})")
    lines += [
        f"identity     {s['identity']}",
        f"sha256       {s['sha256']}",
        f"checksum     {s['checksum']}",
        f"episodes     ended by terminals {s['terminals']}, timeouts {s['timeouts']}; "
        f"lengths {st(s['episode_lengths'], '{:.0f}')}",
        f"returns      {st(s['episode_returns'])}",
    ]
    refs = s.get("references")
    if refs is not None:
        src = f", {refs['source']}" if refs.get("source") else ""
        ref_txt = f"(expert {refs['expert']:.2f}, random {refs['random']:.2f}{src})"
        norm = s.get("normalized_returns")
        lines.append(f"normalised   {st(norm, '{:.3f}') if norm is not None else 'undefined'}  {ref_txt}")
    if s.get("return_histogram"):
        ret = s["episode_returns"]
        bar = _fmt_return_hist(s["return_histogram"], ret["min"], ret["max"])
        lines.append(f"return hist  {bar}")
    lines += [
        f"rewards      {st(s['rewards'], '{:.3f}')}",
        f"continuity   {s['continuity_breaks']} transitions inside episodes with "
        f"next_observation != the next observation",
        "actions      bin histogram per sub-action:",
    ]
    for d, counts in enumerate(s["action_histograms"]):
        lines.append(f"  a{d:<3d} {_fmt_hist(counts)}")
    return "\n".join(lines)


# ----------------------------------------------------------------------------- table

TABLE_COLUMNS = ("task", "level", "transitions", "episodes", "return mean", "return min",
                 "return max", "normalised mean", "identity", "sha256")


def table_row(ds: Dataset) -> Dict[str, Any]:
    """One row of ``python -m spin_bench.data table`` (floats unformatted; None = blank)."""
    returns = ds.episode_returns()
    stats = _stats(returns)
    normalised = normalise_returns(returns, references(ds.attrs))
    return {
        "task": ds.task, "level": ds.level, "transitions": ds.num_transitions,
        "episodes": ds.num_episodes,
        "return mean": stats.get("mean"), "return min": stats.get("min"), "return max": stats.get("max"),
        "normalised mean": None if normalised is None else _stats(normalised).get("mean"),
        "identity": ds.identity, "sha256": ds.sha256,
    }


def format_table(rows: Sequence[Dict[str, Any]], fmt: str = "md") -> str:
    """`rows` of :func:`table_row` as a GitHub markdown table (floats to 2 decimals, the
    normalised mean to 4) or as
    CSV (floats at full precision), header first, rows in the given order."""
    def cell(v: Any, csv_cell: bool, digits: int = 2) -> str:
        if v is None:
            return ""
        if isinstance(v, float):
            return repr(v) if csv_cell else f"{v:.{digits}f}"
        return str(v)

    if fmt == "csv":
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(TABLE_COLUMNS)
        for r in rows:
            w.writerow([cell(r[c], True) for c in TABLE_COLUMNS])
        return buf.getvalue().rstrip("\n")
    if fmt != "md":
        raise ValueError(f"table format: expected 'md' or 'csv', got {fmt!r}")
    numeric = {"transitions", "episodes", "return mean", "return min", "return max",
               "normalised mean"}
    lines = ["| " + " | ".join(TABLE_COLUMNS) + " |",
             "|" + "|".join("---:" if c in numeric else "---" for c in TABLE_COLUMNS) + "|"]
    for r in rows:
        lines.append("| " + " | ".join(cell(r[c], False, 4 if c == "normalised mean" else 2).replace("|", "\\|")
                                        for c in TABLE_COLUMNS) + " |")
    return "\n".join(lines)
