"""Presenting benchmark results: a line of text per result, markdown tables of ``--json``
output, and reading that output back.  Measuring: :mod:`spin_bench.perf.measure`.
"""
from __future__ import annotations

import json
from typing import List, Sequence

from spin_bench.vocab import actor_methods, method_label


def read_results(paths: Sequence[str]) -> List[dict]:
    """The result objects of earlier ``--json`` runs (lines starting with '{'); ValueError names
    the file that cannot be read."""
    rows: List[dict] = []
    from spin_bench.safe_load import MAX_TEXT_BYTES, read_text

    for path in paths:
        try:  # a regular file within the cap (a FIFO or /dev/zero is refused, not read)
            text = read_text(path, "bench results file", MAX_TEXT_BYTES)
            rows += [json.loads(line) for line in text.splitlines() if line.strip().startswith("{")]
        except (OSError, ValueError, RecursionError) as e:
            raise ValueError(f"{path}: expected a file of python -m spin_bench.bench --json lines ({e})") from None
    return rows


def format_line(r: dict) -> str:
    """One result as a line of text (what the command prints without --json)."""
    if r["kind"] == "reference":
        return (f"{r['scale']:5} {r['task']:15} {r['method']:6} {r['algo']:5} fast {r['fast_steps_per_s']:8.1f} steps/s "
                f"straightforward {r['steps_per_s']:8.1f} steps/s  speed-up {r['speedup']:5.2f}x")
    if r["kind"] == "eval":
        return (f"{r['scale']:5} {r['task']:15} {r['method']:6} eval {r['episodes']}x{r['episode_steps']} steps: "
                f"batched {r['batched_s']:6.2f}s  sequential {r['sequential_s']:6.2f}s  speed-up {r['speedup']:5.1f}x")
    mode = "" if r.get("update_mode", "eager") == "eager" else f"[{r['update_mode']}] "
    return (f"{r['scale']:5} {r['task']:15} {r['method']:6} {r['algo']:5} {mode}d={str(r.get('d_model')):4} "
            f"B={r['batch_size']:5} {r['steps_per_s']:8.1f} steps/s {r['flops_per_step'] / 1e6:9.1f} MFLOP/step "
            f"{r['gflops_per_s']:6.1f} GFLOP/s / peak {r['peak_gflops']:6.1f} = {100 * r['efficiency']:5.1f}% "
            + (f"(layer ceiling {r['layer_gflops']:5.1f}) " if r.get("layer_gflops") else "") +
            f"mem {r['peak_memory_mb']:7.0f} MB")


METHOD_NAMES = {**{m: method_label(m, "iql") for m in actor_methods(builtin_only=True)}, "asm": "ASM (MAM)"}


def _table(header: List[str], rows: List[list]) -> List[str]:
    """A markdown table after a blank line, or nothing when there are no rows."""
    if not rows:
        return []
    return ["", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)] + [
        "| " + " | ".join(str(c) for c in row) + " |" for row in rows]


def render_markdown(rows: List[dict]) -> str:
    """Markdown tables (training/ASM rows, then evaluation rows) of ``--json`` results."""

    out = []
    names = [(method_label(r["method"], r["algo"]) if r["method"] == "decqn" else METHOD_NAMES.get(r["method"], r["method"]))
             + ("" if r.get("update_mode", "eager") == "eager" else f" ({r['update_mode']})") for r in rows]
    train = [(r, name.replace("IQL", r["algo"].upper()) if r["method"] in ("f", "ar") else name)
             for r, name in zip(rows, names) if r.get("kind") in ("train", "asm")]
    out += _table(["scale", "task", "method", "d_model", "batch", "steps/s (median)", "MFLOP/step", "GFLOP/s",
                   "peak GFLOP/s", "efficiency", "layer ceiling GFLOP/s", "peak RSS MB"],
                  [[r["scale"], r["task"], name, r.get("d_model") or "-", r["batch_size"], f"{r['steps_per_s']:.2f}",
                    f"{r['flops_per_step'] / 1e6:.0f}", f"{r['gflops_per_s']:.1f}", f"{r['peak_gflops']:.1f}",
                    f"{100 * r['efficiency']:.0f}%", f"{r['layer_gflops']:.1f}" if r.get("layer_gflops") else "-",
                    f"{r['peak_memory_mb']:.0f}"] for r, name in train])
    refs = [r for r in rows if r.get("kind") == "reference"]
    out += _table(["scale", "task", "method", "d_model", "fast steps/s", "straightforward steps/s", "speed-up"],
                  [[r["scale"], r["task"], METHOD_NAMES.get(r["method"], r["method"]), r.get("d_model") or "-",
                    f"{r['fast_steps_per_s']:.2f}", f"{r['steps_per_s']:.2f}", f"{r['speedup']:.2f}x"] for r in refs])
    evals = [r for r in rows if r.get("kind") == "eval"]
    out += _table(["scale", "task", "method", "batched (s)", "one episode at a time, batch-1 (s)", "speed-up"],
                  [[r["scale"], r["task"], METHOD_NAMES.get(r["method"], r["method"]), f"{r['batched_s']:.1f}",
                    f"{r['sequential_s']:.1f}", f"{r['speedup']:.1f}x"] for r in evals])
    return "\n".join(out).lstrip("\n")
