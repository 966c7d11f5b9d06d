"""``python -m spin_bench.data {import,inspect,table,list,register,export-minari,import-minari}``.

Every failure exits non-zero with one line on stderr (``error: ...``), no traceback: status 2
for bad input (flags, files, values), 1 for anything else; set ``SPIN_BENCH_DEBUG=1`` to get
the traceback instead.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any, List, Optional, Sequence, Tuple

EXIT_FAILURE = 1
EXIT_USAGE = 2


class _Usage(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    """argparse that reports usage errors as one line."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise _Usage(f"{self.prog}: {message} (see --help)")


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def _add_data_dir(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data_dir", "--data-dir", default=None,
                   help="dataset store (default: $SPIN_BENCH_DATA_DIR or ~/.spin_bench/datasets)")


def _add_minari_args(p: argparse.ArgumentParser) -> None:
    """--data_dir, --minari_root and --overwrite (of the output) for the Minari commands."""
    _add_data_dir(p)
    p.add_argument("--minari_root", "--minari-root", default=None,
                   help="Minari datasets folder (default: $MINARI_DATASETS_PATH or ~/.minari/datasets)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m spin_bench.data",
                     description="spin_bench datasets: import, inspect, tabulate and list.")
    sub = parser.add_subparsers(dest="command", metavar="{import,inspect,table,list,register,export-minari,import-minari}",
                                parser_class=_Parser)
    sub.required = True

    imp = sub.add_parser("import", help="import a published dmc_datasets file")
    imp.add_argument("--source", required=True,
                     help="directory holding <bins>_bins/<domain>-<task>-<level>")
    imp.add_argument("--task", required=True, help="e.g. cheetah-run")
    imp.add_argument("--level", required=True,
                     help="medium, expert, medium-expert or random-medium-expert")
    imp.add_argument("--bins", required=True, type=int, help="bins per sub-action, e.g. 3")
    imp.add_argument("--out", default=None,
                     help="output file (default: the store, under the dataset id)")
    _add_data_dir(imp)
    imp.add_argument("--version", type=int, default=1, help="dataset version in the id (v1)")
    imp.add_argument("--episode_length", "--episode-length", type=int, default=1000,
                     help="fixed episode length of the source; 0 trusts its done flags")
    imp.add_argument("--overwrite", action="store_true", help="replace an existing output")
    imp.add_argument("--compression", choices=("gzip", "lzf"), default="gzip")

    ins = sub.add_parser("inspect", help="validate a dataset file and print a summary")
    ins.add_argument("file", metavar="FILE_OR_ID",
                     help="a dataset file, or a dataset id in the store or among its generated datasets")
    _add_data_dir(ins)
    ins.add_argument("--no_verify", "--no-verify", action="store_true",
                     help="do not fail on a checksum mismatch (report it)")
    ins.add_argument("--json", action="store_true", help="print the summary as JSON")

    tab = sub.add_parser("table", help="one table (a row per dataset) of sizes, returns, sha256")
    tab.add_argument("files", nargs="+", metavar="FILE_OR_ID",
                     help="dataset files or dataset ids in the store, one row each, in order")
    _add_data_dir(tab)
    tab.add_argument("--format", choices=("md", "csv"), default="md",
                     help="a GitHub markdown table (default) or CSV, with a header row")
    tab.add_argument("--no_verify", "--no-verify", action="store_true",
                     help="do not fail on a checksum mismatch")

    lst = sub.add_parser("list", help="list the datasets registered in the store")
    _add_data_dir(lst)
    lst.add_argument("--json", action="store_true", help="print the registry entries as JSON")

    reg = sub.add_parser("register", help="add a dataset file to the store's registry")
    reg.add_argument("file")
    _add_data_dir(reg)

    exm = sub.add_parser("export-minari", help="write a dataset as a Minari dataset (needs minari)")
    exm.add_argument("file", metavar="DATASET_OR_ID", help="a dataset file, or a dataset id in the store")
    _add_minari_args(exm)
    exm.add_argument("--id", default=None, help="Minari id (default: dmc-discrete/<task>/<level>-b<bins>-v<version>)")

    imm = sub.add_parser("import-minari", help="read a Minari dataset into our format (needs minari)")
    imm.add_argument("source", metavar="MINARI_ID_OR_DIR", help="a Minari id under --minari_root, or its directory")
    _add_minari_args(imm)
    imm.add_argument("--out", default=None, help="output file (default: the store, under the dataset id)")
    imm.add_argument("--task", default=None, help="task, for Minari datasets not exported by spin_bench")
    imm.add_argument("--level", default=None, help="level, for Minari datasets not exported by spin_bench")
    return parser


def _check_values(a: argparse.Namespace) -> None:
    """The numeric flags, and every path's name, before any file is read (one line naming the flag)."""
    from spin_bench.cli import path_problem

    for flag, lo, hi in (("bins", 2, 10**4), ("version", 1, 10**6), ("episode_length", 0, 10**7)):
        value = getattr(a, flag, None)
        if value is not None and not lo <= value <= hi:
            extra = " (0 trusts the source's done flags)" if flag == "episode_length" else ""
            raise _Usage(f"--{flag} must be an integer >= {lo} and at most {hi}{extra}, got {value}")
    for flag in ("source", "out", "data_dir", "minari_root", "file", "id"):
        value = getattr(a, flag, None)
        problem = path_problem(value, f"--{flag}") if isinstance(value, str) else None
        if problem:
            raise _Usage(problem)
    for value in getattr(a, "files", None) or ():
        problem = path_problem(value, "FILE_OR_ID")
        if problem:
            raise _Usage(problem)


def _check_dirs(a: argparse.Namespace) -> None:
    """--data_dir, and the directory --out is written into, must be (or become) directories."""
    from spin_bench.cli import directory_problem

    _check_values(a)
    checks = [(getattr(a, "data_dir", None), "--data_dir")]
    if getattr(a, "out", None):
        if os.path.isdir(a.out):
            raise _Usage(f"--out {a.out} is a directory; --out names the dataset file to write")
        checks.append((os.path.dirname(os.path.abspath(a.out)), f"--out {a.out}: its directory"))
    for path, what in checks:
        problem = directory_problem(path, what) if path else None
        if problem:
            raise _Usage(problem)


def _cmd_import(a: argparse.Namespace) -> int:
    from spin_bench.data.published import import_published

    res = import_published(a.source, a.task, a.level, a.bins, out=a.out, data_dir=a.data_dir,
                           version=a.version, episode_length=a.episode_length or None,
                           overwrite=a.overwrite, compression=a.compression)
    for w in res.warnings:
        print(f"warning: {_one_line(w)}", file=sys.stderr)
    print(f"imported {res.dataset_id}: {res.num_transitions} transitions, {res.num_episodes} "
          f"episodes, sha256 {res.sha256}", file=sys.stderr)
    print(res.path)
    return 0


def _load(file: str, data_dir: Optional[str], no_verify: bool) -> Tuple[Any, str]:
    """(dataset, checksum status) of a file or store id, as ``inspect`` and ``table`` load it:
    the id resolved in the store, the sha256 verified unless `no_verify`."""
    from spin_bench.data.dataset import load_dataset
    from spin_bench.data.schema import DatasetError
    from spin_bench.data.store import DatasetStore, registered_checksums, resolve_path

    path, store = resolve_path(file, data_dir)
    if store is None and data_dir is not None:
        store = DatasetStore(data_dir)
    sources = registered_checksums(path, store) if path.is_file() else []
    try:
        ds = load_dataset(path, verify_checksum=not no_verify, data_dir=data_dir)
    except DatasetError as e:  # the library's advice names its argument; here the flag is --no_verify
        msg = str(e).replace("pass verify_checksum=False", "pass --no_verify")
        raise DatasetError(msg, path=e.path, key=e.key) from None
    if not sources:
        status = "no checksum registered (no .sha256 sidecar or registry entry)"
    else:
        bad = [w for w, h in sources if h != ds.sha256]
        if bad:
            status = f"MISMATCH with {', '.join(bad)} (loaded anyway: --no_verify)"
        else:
            status = "verified against " + ", ".join(w for w, _ in sources)
    return ds, status


def _cmd_inspect(a: argparse.Namespace) -> int:
    from spin_bench.data.inspection import format_summary, summarize

    ds, status = _load(a.file, a.data_dir, a.no_verify)
    summary = summarize(ds, checksum=status)
    print(json.dumps(summary, indent=2) if a.json else format_summary(summary))
    return 0


def _cmd_table(a: argparse.Namespace) -> int:
    from spin_bench.data.inspection import format_table, table_row
    from spin_bench.data.schema import DatasetError

    rows = []
    for file in a.files:  # every row first: a failure prints no partial table
        try:
            ds, _ = _load(file, a.data_dir, a.no_verify)
            rows.append(table_row(ds))
        except Exception as e:  # noqa: BLE001 - name the dataset in the one error line
            msg = _one_line(str(e)) or type(e).__name__
            if not isinstance(e, (DatasetError, ValueError, OSError)):
                msg = f"{type(e).__name__}: {msg}"
            if file not in msg and str(Path(file)) not in msg:
                msg = f"{file}: {msg}"
            raise DatasetError(msg, path=file) from e
        del ds
    print(format_table(rows, a.format))
    return 0


def _cmd_list(a: argparse.Namespace) -> int:
    from spin_bench.data.store import GENERATED_SUBDIR, DatasetStore, generated_stores

    store = DatasetStore(a.data_dir)
    entries = store.entries()
    # generated datasets (datagen generate, or a run on first use): <root>/generated (default
    # sizes, seed 0) and <root>/generated/n<T>-s<seed>, each a store with its own registry
    generated = {name: sub.entries() for name, sub in generated_stores(store) if sub.entries()}
    gen_root = store.root / GENERATED_SUBDIR
    if a.json:
        print(json.dumps({"root": str(store.root), "datasets": entries, "generated": generated}, indent=2))
        return 0
    if not entries and not generated:
        print(f"no datasets registered in {store.root} (nor generated datasets in {gen_root})")
        return 0
    sections = [(f"store {store.root}", entries)] if entries else []
    sections += [(f"generated from the shipped behaviour policies (datagen generate, or a run on first use): "
                  f"{store.root / name}", e) for name, e in generated.items()]
    width = max(len(k) for _, e in sections for k in e)
    for title, group in sections:
        print(title)
        for ds_id, e in group.items():
            state = "ok" if Path(e["path"]).is_file() else "MISSING"
            print(f"{ds_id:<{width}}  {e.get('num_transitions', '?'):>9} transitions  "
                  f"{e.get('size', 0) / 2**20:9.1f} MiB  sha256 {e.get('sha256', '?')[:12]}  "
                  f"{state}  {e['path']}")
    return 0


def _cmd_register(a: argparse.Namespace) -> int:
    from spin_bench.data.store import DatasetStore

    store = DatasetStore(a.data_dir)
    entry = store.register(a.file)
    print(f"registered {entry['path']} (sha256 {entry['sha256']}) in {store.registry_path}")
    return 0


def _cmd_export_minari(a: argparse.Namespace) -> int:
    from spin_bench.data.minari_io import export_minari

    mid, path = export_minari(a.file, root=a.minari_root, data_dir=a.data_dir, dataset_id=a.id,
                              overwrite=a.overwrite)
    print(f"exported Minari dataset {mid}", file=sys.stderr)
    print(path)
    return 0


def _cmd_import_minari(a: argparse.Namespace) -> int:
    from spin_bench.data.minari_io import import_minari

    path, digest = import_minari(a.source, root=a.minari_root, out=a.out, data_dir=a.data_dir,
                                 overwrite=a.overwrite, task=a.task, level=a.level)
    print(f"imported {a.source}: sha256 {digest}", file=sys.stderr)
    print(path)
    return 0


_COMMANDS = {"import": _cmd_import, "inspect": _cmd_inspect, "table": _cmd_table,
             "list": _cmd_list, "register": _cmd_register, "export-minari": _cmd_export_minari,
             "import-minari": _cmd_import_minari}


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the command line; return the exit status."""
    debug = bool(os.environ.get("SPIN_BENCH_DEBUG"))
    try:
        args = build_parser().parse_args(list(argv) if argv is not None else None)
        _check_dirs(args)
        return _COMMANDS[args.command](args)
    except _Usage as e:
        print(f"error: {_one_line(str(e))}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except Exception as e:  # noqa: BLE001 - one line for any failure is the contract
        if debug:
            raise
        from spin_bench.data.schema import DatasetError

        bad_input = isinstance(e, (DatasetError, ValueError, OSError))  # a file or value we were given
        prefix = "" if bad_input else f"{type(e).__name__}: "
        print(f"error: {prefix}{_one_line(str(e)) or type(e).__name__}", file=sys.stderr)
        return EXIT_USAGE if bad_input else EXIT_FAILURE


def run(argv: Optional[List[str]] = None) -> None:
    """Entry point: exit with :func:`main`'s status."""
    sys.exit(main(argv))
