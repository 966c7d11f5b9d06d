"""python -m spin_bench.sweep --gin_file=gin/sweeps/<name>.gin --sweep_dir=DIR: every run of a
paper table (or any grid) as one command, safe to re-launch at any time.

A sweep file binds ``Sweep`` (spin_bench.sweeps.spec): the scale and the axes tasks x levels x
methods x algos (x variants: alternative binding sets) x seeds.  Each run is the experiment file
gin/experiments/<scale>/<task>/<level>/<method>_<algo>.gin + the sweep's bindings + this
command's --gin_bindings, and gets a stable id from its configuration and seed:
DIR/runs/<task>-<level>-<method>_<algo>[-<variant>]-s<seed>-<id8>.

Finished runs (COMPLETE, or archived in --archive_dir) are skipped and interrupted ones resumed, so re-running the same
command continues a killed sweep.  Shared inputs (datasets, SPIN's cached ASM pre-training) are
prepared first, once each.  A failing run is recorded in its error.log and DIR/sweep_status.json
and does not stop the others.  At the end the report is written to DIR/report (--noreport to skip).

Examples:
  python -m spin_bench.sweep --gin_file=gin/sweeps/cpu.gin --sweep_dir=sweeps/cpu --dry_run
  python -m spin_bench.sweep --gin_file=gin/sweeps/cpu.gin --sweep_dir=sweeps/cpu --workers=2
  python -m spin_bench.sweep --gin_file=gin/sweeps/table1.gin --sweep_dir=/shared/table1 \\
      --executor=ray --ray_address=auto --gpus_per_run=0.25 --cpus_per_run=2
  python -m spin_bench.sweep --gin_file=gin/sweeps/smoke.gin --sweep_dir=/tmp/s \\
      --gin_bindings="Experiment.data_dir='/data'" --gin_bindings="Sweep.seeds=1"

--gin_bindings starting with "Sweep." change the sweep itself; all others go to every run.
Exit status: 0 all runs complete, 1 some run failed, 2 invalid sweep or flags, 130 interrupted.
"""
from __future__ import annotations

import argparse
import os
import shlex
import sys
from typing import List, Optional

os.environ.setdefault("MUJOCO_GL", "egl")

from spin_bench.cli import OneLineArgumentParser  # noqa: E402

PROG = "spin_bench.sweep"


def build_parser() -> argparse.ArgumentParser:
    p = OneLineArgumentParser(prog=f"python -m {PROG}", error_name=PROG, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--gin_file", action="append", required=True, help="sweep gin file (repeatable)")
    p.add_argument("--gin_bindings", action="append", default=[],
                   help="extra binding for every run (or for the Sweep when it starts with 'Sweep.'); repeatable")
    p.add_argument("--sweep_dir", required=True, help="output directory (runs in DIR/runs, status, report)")
    p.add_argument("--executor", choices=("local", "ray"), default="local",
                   help="local process pool (default) or Ray")
    p.add_argument("--workers", type=int, default=None,
                   help="local: concurrent runs (default os.cpu_count()); ray: CPUs of a local Ray instance")
    p.add_argument("--ray_address", default=None, help="Ray cluster address (default: start a local instance)")
    p.add_argument("--cpus_per_run", type=float, default=1.0, help="ray: CPUs reserved per run (default 1)")
    p.add_argument("--gpus_per_run", type=float, default=0.0, help="ray: GPUs reserved per run, may be fractional")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto", help="passed to every run")
    p.add_argument("--prepare", choices=("auto", "always", "never"), default="auto",
                   help="shared-input jobs (dataset, SPIN's ASM pre-training): auto = only inputs shared by "
                        "two or more pending runs; always = one per distinct input; never")
    p.add_argument("--archive_dir", default=None,
                   help="keep each finished run's small files (summary.json, metrics.csv, configs; no checkpoints) "
                        "in DIR/<run name>/, e.g. a folder committed to git; runs found there count as complete, "
                        "so a fresh machine without the sweep directory continues where the archive ends")
    p.add_argument("--dry_run", action="store_true", help="list the runs and their directories; do nothing")
    p.add_argument("--report", dest="report", action="store_true", default=True,
                   help="write the report to DIR/report at the end (default)")
    p.add_argument("--noreport", "--no_report", dest="report", action="store_false", help="do not write the report")
    p.add_argument("--report_args", default="--quiet",
                   help="extra arguments for python -m spin_bench.report, one string (default \"--quiet\"), "
                        "e.g. \"--quiet --no_figures\"")
    return p


def main(argv: Optional[List[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        report_args = shlex.split(args.report_args)
    except ValueError as e:
        sys.stderr.write(f"{PROG}: error: --report_args {args.report_args!r}: {e}\n")
        return 2
    from spin_bench.sweeps import SweepError, run_sweep

    try:
        result = run_sweep(args.gin_file, args.sweep_dir, bindings=args.gin_bindings, executor=args.executor,
                           workers=args.workers, ray_address=args.ray_address, cpus_per_run=args.cpus_per_run,
                           gpus_per_run=args.gpus_per_run, device=args.device, dry_run=args.dry_run,
                           report=args.report, report_args=report_args, prepare=args.prepare,
                           log=lambda m: print(m, flush=True), archive_dir=args.archive_dir)
    except SweepError as e:
        from spin_bench.configs import error_line

        sys.stderr.write(f"{PROG}: error: {error_line(e)}\n")
        return 2
    except KeyboardInterrupt:
        sys.stderr.write(f"{PROG}: interrupted\n")
        return 130
    return result.exit_code


if __name__ == "__main__":
    sys.exit(main())
