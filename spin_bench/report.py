"""python -m spin_bench.report --results_dir=DIR --out=DIR: leaderboard tables and plots.

Reads every run directory under --results_dir (found by summary.json, at any depth), excludes
incomplete/failed/unreadable runs, dataset-checksum mismatches and duplicates by rule (listed
in the report), and writes into --out:

  leaderboard.md    GitHub tables: returns per cell (with the paper's numbers), rliable
                    aggregates, probability of improvement, time to target, excluded runs
  leaderboard.tex   the same tables for a paper (booktabs; \\input it)
  scores.csv        one row per run: final/best return, normalised score, time/steps to target
  *.png, *.pdf      interval estimates, performance profiles, probability of improvement,
                    sample-efficiency curves (vs gradient steps and vs training minutes)

Bad input (a missing --results_dir, no usable run in it, a bad flag) exits with status 2 and a
one-line reason; an unexpected error exits 1.
"""
from __future__ import annotations

import argparse
import logging
import math
import sys
from typing import List, Optional

from spin_bench.cli import OneLineArgumentParser, check_seed, directory_problem, path_problem  # noqa: E402

PROG = "spin_bench.report"


def build_parser() -> argparse.ArgumentParser:
    p = OneLineArgumentParser(prog=f"python -m {PROG}", error_name=PROG, description=__doc__.split("\n\n")[0],
                epilog=__doc__.split("\n\n", 1)[1],
                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--results_dir", required=True, action="append",
                   help="directory (or glob) holding run directories; may be repeated")
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--seed", type=int, default=0, help="bootstrap seed (default 0)")
    p.add_argument("--final_k", type=int, default=None,
                   help="final score = mean of the last K evaluations (default: each run's own "
                        "Schedule.final_k, from its summary.json)")
    p.add_argument("--target_fraction", type=float, default=0.95,
                   help="time-to-target target as a fraction of F's asymptote (default 0.95)")
    p.add_argument("--smoothing_window", type=int, default=1,
                   help="trailing window (evaluations) for time to target (default 1: none)")
    p.add_argument("--reps", type=int, default=2000, help="bootstrap replicates (default 2000)")
    p.add_argument("--no_figures", action="store_true", help="write the tables only")
    p.add_argument("--quiet", action="store_true", help="log warnings only")
    p.add_argument("--debug", action="store_true", help="show tracebacks of unexpected errors")
    return p


def main(argv: Optional[List[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    problems = []
    if args.final_k is not None and args.final_k < 1:
        problems.append(f"--final_k must be >= 1 (got {args.final_k})")
    if not args.target_fraction > 0:
        problems.append(f"--target_fraction must be > 0 (got {args.target_fraction})")
    if args.smoothing_window < 1:
        problems.append(f"--smoothing_window must be >= 1 (got {args.smoothing_window})")
    if not 1 <= args.reps <= 10**6:
        problems.append(f"--reps must be in [1, 1000000] (got {args.reps})")
    if args.final_k is not None and args.final_k > 10**9:
        problems.append(f"--final_k must be at most 10^9 (got {args.final_k})")
    if args.smoothing_window > 10**6:
        problems.append(f"--smoothing_window must be at most 10^6 (got {args.smoothing_window})")
    if not math.isfinite(args.target_fraction):
        problems.append(f"--target_fraction must be finite (got {args.target_fraction})")
    try:
        check_seed("--seed", args.seed)
    except ValueError as e:
        problems.append(str(e))
    for path in args.results_dir:
        problem = path_problem(path, "--results_dir")
        if problem:
            problems.append(problem)
    problem = directory_problem(args.out, "--out")
    if problem:
        problems.append(problem)
    if problems:
        sys.stderr.write(f"{PROG}: error: {'; '.join(problems)}\n")
        return 2
    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO,
                        format=f"{PROG}: %(levelname)s: %(message)s", stream=sys.stderr)
    logging.getLogger("absl").setLevel(logging.WARNING)  # rliable's per-method progress lines
    logging.getLogger("fontTools").setLevel(logging.WARNING)  # matplotlib's PDF font subsetting
    import matplotlib

    matplotlib.use("Agg")  # headless, whatever MPLBACKEND says
    from spin_bench.analysis import AnalysisError, write_report  # after argument checks: fast --help

    try:
        report = write_report(args.results_dir, args.out, seed=args.seed, final_k=args.final_k,
                              target_fraction=args.target_fraction,
                              smoothing_window=args.smoothing_window, reps=args.reps,
                              figures=not args.no_figures)
    except AnalysisError as e:  # nothing to report in the input: bad input
        sys.stderr.write(f"{PROG}: error: {e}\n")
        return 2
    except Exception as e:  # noqa: BLE001 - one line for users, the traceback with --debug
        if args.debug:
            raise
        sys.stderr.write(f"{PROG}: error: {type(e).__name__}: {e} "
                         f"(rerun with --debug for the traceback)\n")
        return 1
    n_warn = len(report.messages.warnings())
    print(f"{PROG}: {len(report.load.runs)} runs, {len(report.load.excluded)} excluded, "
          f"{n_warn} warning(s); wrote {len(report.files)} files to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
