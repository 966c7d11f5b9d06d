"""python -m spin_bench.identities --results_dir=DIR [--data=PATH] [--write]

Records the data identity of every run directory under --results_dir that has only the file
sha256 (runs made before identities were recorded): found from the file the run recorded, a
file under --data (files or directories, searched for *.hdf5) with that sha256, or another run
with the same sha256. Prints one line per such run (run directory, sha256, identity or '-',
where it came from); --write records the identities in summary.json (atomically). Runs with no
file at hand stay as they are (the report keeps them and calls them unverifiable). See
docs/data-identity.md.

The command line of spin_bench.analysis.data_identities (the data identities run directories
recorded); the data identity itself is spin_bench.data.identity, the run identity
spin_bench.train.identity.
"""
from __future__ import annotations

import argparse
import os
import sys
from typing import List, Optional

from spin_bench.cli import OneLineArgumentParser, path_problem

PROG = "spin_bench.identities"


def build_parser() -> argparse.ArgumentParser:
    p = OneLineArgumentParser(prog=f"python -m {PROG}", error_name=PROG,
                              description=__doc__.split("\n\n")[0],
                              epilog=__doc__.split("\n\n", 1)[1],
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--results_dir", required=True, action="append",
                   help="directory (or glob) holding run directories; may be repeated")
    p.add_argument("--data", action="append", default=[],
                   help="dataset file or directory (searched for *.hdf5); may be repeated")
    p.add_argument("--write", action="store_true",
                   help="record the identities in summary.json (default: only print them)")
    return p


def main(argv: Optional[List[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    for flag, values in (("--results_dir", args.results_dir), ("--data", args.data)):
        for value in values:
            problem = path_problem(value, flag)
            if problem:
                sys.stderr.write(f"{PROG}: error: {problem}\n")
                return 2
    missing = [d for d in args.data if not os.path.exists(os.path.expanduser(d))]
    if missing:
        sys.stderr.write(f"{PROG}: error: --data {missing[0]}: no such file or directory\n")
        return 2
    from spin_bench.analysis.data_identities import backfill
    from spin_bench.analysis.loading import find_run_dirs
    from spin_bench.analysis.notes import AnalysisError

    try:
        run_dirs = find_run_dirs(args.results_dir)
    except AnalysisError as e:
        sys.stderr.write(f"{PROG}: error: --results_dir {e}\n")
        return 2
    rows = backfill(run_dirs, args.data, write=args.write)
    for r in rows:
        print(f"{r['run_dir']}\t{r['dataset_sha256'][:12]}\t"
              f"{r['dataset_identity'] or '-'}\t{r['source']}")
    found = sum(bool(r["dataset_identity"]) for r in rows)
    print(f"{len(run_dirs)} run directories, {len(rows)} without an identity: {found} "
          f"{'recorded' if args.write else 'found (pass --write to record them)'}, "
          f"{len(rows) - found} unverifiable", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
