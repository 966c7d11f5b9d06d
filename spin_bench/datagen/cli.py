"""Behaviour policies, datasets and reference returns for the data we generate ourselves.

  python -m spin_bench.datagen train --task=cheetah-run [--gin_bindings=...] [--out_dir=...] [--resume]
  python -m spin_bench.datagen export --task=cheetah-run [--run_dir=...] [--version=K]
  python -m spin_bench.datagen generate --task=cheetah-run --level=medium-expert|all [--num_transitions=N]
        [--out=FILE] [--seed=S] [--data_dir=DIR] [--version=K]
  python -m spin_bench.datagen references --task=cheetah-run [--episodes=50] [--version=K]

--version: the dataset version, i.e. which version of the task's shipped behaviour policies
(version 1 in spin_bench/policies/<task>/, version k in its v<k>/); generate and references
default to the newest shipped, export to a new one (docs/data.md, dataset versions).
"""
from __future__ import annotations

import argparse
import json
import os
import sys



PROG = "spin_bench.datagen"


class _BadInput(ValueError):
    """A flag value the command refuses before any work."""


def _parse_gin(task, gin_files, gin_bindings):
    from spin_bench import configs
    from spin_bench.datagen import decqn  # noqa: F401  (registers train_decqn)

    files = list(gin_files or []) or [default_recipe(task)]
    configs.parse(files, gin_bindings or [])


def default_recipe(task: str) -> str:
    """The task's DecQN recipe: its registered ``datagen_gin_file``, else gin/datagen/<task>.gin;
    a task with neither trains with the base recipe, and a notice says so."""
    from spin_bench import configs
    from spin_bench.vocab import task_spec

    spec = task_spec(task)
    own = spec.datagen_gin_file or os.path.join(configs.GIN_DIR, "datagen", f"{task}.gin")
    if os.path.exists(own):
        return own
    base = os.path.join(configs.GIN_DIR, "datagen", "base.gin")
    print(f"spin_bench.datagen: no DecQN recipe for {task} ({own}); training with the base recipe {base} "
          f"(register datagen_gin_file or pass --gin_file to tune it)", file=sys.stderr)
    return base


MAX_TRANSITIONS = 10**8  # a dataset larger than this is not a benchmark dataset (memory: see docs/scales.md)


def _check_args(args) -> None:
    """One validation pass over the flags, before any work (raises _BadInput naming the flag)."""
    from spin_bench.cli import directory_problem
    from spin_bench import configs
    from spin_bench.vocab import LEVELS, UnknownNameError, task_spec, tasks

    try:
        configs.import_extensions(getattr(args, "gin_file", None) or [])  # a task of your own registers
    except configs.ConfigError as e:
        raise _BadInput(f"--gin_file: {e}") from None
    try:
        task_spec(args.task)
    except UnknownNameError:
        raise _BadInput(f"--task must be one of {sorted(tasks())}, got {args.task!r} (a task of your own: "
                        f"docs/extending.md)") from None
    if getattr(args, "level", None) is not None and args.level not in (*LEVELS, "all"):
        raise _BadInput(f"--level must be one of {[*LEVELS, 'all']}, got {args.level!r}")
    from spin_bench.cli import MAX_SEED, path_problem

    for flag, low, high in (("version", 1, 10**6), ("bins", 2, 10**4), ("num_transitions", 1, MAX_TRANSITIONS), ("num_workers", 1, 1024),
                            ("num_envs", 1, 10**4), ("episodes", 1, 10**7), ("seed", 0, MAX_SEED)):
        value = getattr(args, flag, None)
        if value is not None and value < low:
            raise _BadInput(f"--{flag} must be >= {low}, got {value}")
        if value is not None and value > high:
            raise _BadInput(f"--{flag} must be at most {high}, got {value}")
    for flag in ("out", "resume_from", "gin_file"):
        values = getattr(args, flag, None)
        for value in (values if isinstance(values, list) else [values]):
            problem = path_problem(value, f"--{flag}") if isinstance(value, str) else None
            if problem:
                raise _BadInput(problem)
    for flag in ("data_dir", "out_dir", "run_dir"):
        value = getattr(args, flag, None)
        problem = directory_problem(value, f"--{flag}") if value else None
        if problem:
            raise _BadInput(problem)
    out = getattr(args, "out", None)
    if out and args.level == "all":
        raise _BadInput("--out names one file: use it with a single --level, not --level=all")
    if out:
        if os.path.isdir(out):
            raise _BadInput(f"--out {out} is a directory; --out names the dataset file to write")
        if os.path.lexists(out) and not getattr(args, "overwrite", False):
            raise _BadInput(f"--out {out}: already exists; pass --overwrite to replace it")
        problem = directory_problem(os.path.dirname(os.path.abspath(out)), f"--out {out}: its directory")
        if problem:
            raise _BadInput(problem)
    # an installed copy is never written to: the defaults of export and references write the
    # package's own policies folder and reference CSV, so they need a checkout
    if not os.environ.get("SPIN_BENCH_POLICY_DIR"):
        from spin_bench.layout import checkout_dir

        try:
            if args.command == "export" and args.out_dir is None:
                checkout_dir("--out_dir=DIR")
            if args.command == "references" and not args.dry_run:
                checkout_dir("--dry_run or $SPIN_BENCH_POLICY_DIR")
        except ValueError as e:
            raise _BadInput(str(e)) from None
    resume_from = getattr(args, "resume_from", None)
    if resume_from and not os.path.isfile(resume_from):
        raise _BadInput(f"--resume_from {resume_from}: no such checkpoint file")
    if args.command in ("generate", "references"):
        from spin_bench.datagen.paths import policy_versions

        shipped = policy_versions(args.task, args.bins)
        if args.version is not None and shipped and args.version not in shipped:
            raise _BadInput(f"--version {args.version}: {args.task} (bins {args.bins}) has shipped behaviour policies "
                            f"of version{'s' if len(shipped) > 1 else ''} {', '.join(str(v) for v in shipped)} only")
    if args.command == "references":
        from spin_bench.datagen.paths import policy_path, resolve_version

        try:
            policy_path(args.task, "expert", args.bins, resolve_version(args.task, args.bins, args.version))
        except FileNotFoundError as e:
            raise _BadInput(str(e)) from None
    if args.command == "export":
        from spin_bench.datagen.paths import POLICY_FILES, policy_dir

        args.version = args.version or next_version(args.task)
        target = args.out_dir or policy_dir(args.task, 3, args.version)
        there = [f for f in POLICY_FILES if os.path.exists(os.path.join(target, f))]
        if there and not args.overwrite:
            raise _BadInput(f"--version {args.version}: {os.path.join(target, there[0])} already exists (a shipped "
                            f"version never changes, or the data it generated would no longer regenerate; "
                            f"export a new version, or pass --overwrite to replace it)")
    if args.command == "generate":
        from spin_bench.datagen.generate import DEFAULT_SIZES, missing_policies
        from spin_bench.datagen.resolve import has_published, train_commands

        for level in (DEFAULT_SIZES if args.level == "all" else [args.level]):
            missing = missing_policies(args.task, level, args.bins, args.version)
            if missing:
                published = (", or import the published datasets (python -m spin_bench.data import --help)"
                             if has_published(args.task, args.bins) else
                             f" ({args.task} has no published dataset at bins {args.bins})")
                raise _BadInput(f"no shipped behaviour policy for {args.task} {level} (bins {args.bins}): "
                                f"{missing[0]} is missing; train one: {train_commands(args.task, args.bins)}"
                                f"{published}")
    if args.command == "export" and not os.path.isdir(args.run_dir or os.path.join("runs", "behaviour", args.task)):
        raise _BadInput(f"--run_dir {args.run_dir or os.path.join('runs', 'behaviour', args.task)}: no such "
                        f"behaviour-policy run directory (python -m spin_bench.datagen train makes one)")


def next_version(task: str, bins=3) -> int:
    """The version a new export ships: one past the newest shipped; for a task without policies
    of ours, 1, or 2 where it has published datasets (their ids end in -v1: our data of the
    task never shares an id with them)."""
    from spin_bench.datagen.paths import newest_policy_version
    from spin_bench.datagen.resolve import has_published

    newest = newest_policy_version(task, bins)
    if newest is not None:
        return newest + 1
    return 2 if has_published(task, bins) else 1


def cmd_train(args):
    import torch

    torch.set_num_threads(1)
    _parse_gin(args.task, args.gin_file, args.gin_bindings)
    from spin_bench.datagen.decqn import train_decqn

    out_dir = args.out_dir or os.path.join("runs", "behaviour", args.task)
    summary = train_decqn(task=args.task, out_dir=out_dir, resume=args.resume,
                          resume_from=args.resume_from, progress=not args.no_progress)
    print(json.dumps(summary, indent=1, default=str))


def cmd_export(args):
    from spin_bench.datagen.levels import export_policies

    run_dir = args.run_dir or os.path.join("runs", "behaviour", args.task)
    summary = export_policies(args.task, run_dir, out_dir=args.out_dir, episodes=args.episodes,
                              version=args.version)
    print(json.dumps(summary, indent=1, default=str))


def cmd_generate(args):
    from spin_bench.datagen.generate import DEFAULT_SIZES, generate_dataset

    levels = list(DEFAULT_SIZES) if args.level == "all" else [args.level]
    cache = {} if len(levels) > 1 else None  # levels share the medium/expert streams
    for level in levels:
        generate_dataset(args.task, level, bins=args.bins, num_transitions=args.num_transitions,
                         seed=args.seed, out=args.out, data_dir=args.data_dir,
                         num_workers=args.num_workers, num_envs=args.num_envs,
                         progress=not args.no_progress, cache=cache, version=args.version)


def cmd_references(args):
    from spin_bench.datagen.generate import compute_references

    from spin_bench.datagen.paths import resolve_version

    ref = compute_references(args.task, args.bins, episodes=args.episodes, write=not args.dry_run,
                             version=resolve_version(args.task, args.bins, args.version))
    print(json.dumps(ref, indent=1))


def main(argv=None):
    from spin_bench.cli import OneLineArgumentParser

    p = OneLineArgumentParser(prog="python -m spin_bench.datagen", error_name=PROG, description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True, parser_class=OneLineArgumentParser)
    t = sub.add_parser("train", error_name=PROG, help="train a DecQN behaviour policy (online)")
    t.add_argument("--task", required=True, help="the DM Control task to train on, e.g. cheetah-run")
    t.add_argument("--gin_file", action="append",
                   help="DecQN configuration, repeatable (default gin/datagen/<task>.gin)")
    t.add_argument("--gin_bindings", action="append", default=[],
                   help="extra gin bindings, repeatable, e.g. \"train_decqn.total_env_steps = 100000\"")
    t.add_argument("--out_dir", default=None,
                   help="run directory: metrics, snapshots, checkpoint (default runs/behaviour/<task>)")
    t.add_argument("--resume", action="store_true", help="continue the run in --out_dir from its checkpoint")
    t.add_argument("--resume_from", default=None,
                   help="checkpoint to start from when out_dir has none (e.g. a committed one)")
    t.add_argument("--no_progress", action="store_true", help="no progress bar (log lines only)")
    t.set_defaults(fn=cmd_train)

    e = sub.add_parser("export", error_name=PROG, help="cut the levels (expert, medium) from a run's snapshots")
    e.add_argument("--task", required=True, help="the task whose behaviour-policy run to cut, e.g. cheetah-run")
    e.add_argument("--run_dir", default=None, help="the behaviour-policy run directory (default runs/behaviour/<task>)")
    e.add_argument("--out_dir", default=None,
                   help="where the policies go (default spin_bench/policies/<task>; needs a checkout)")
    e.add_argument("--episodes", type=int, default=20,
                   help="episodes per candidate snapshot under the collection protocol when choosing the levels (default 20)")
    e.add_argument("--version", type=int, default=None,
                   help="the dataset version the policies ship as (default: a new one, one past the newest shipped)")
    e.add_argument("--overwrite", action="store_true", help="replace the policies of an existing version")
    e.set_defaults(fn=cmd_export)

    g = sub.add_parser("generate", error_name=PROG, help="roll the shipped policies into an HDF5 dataset")
    g.add_argument("--task", required=True,
                   help="a task with shipped behaviour policies: cheetah-run, finger-spin, quadruped-walk")
    g.add_argument("--level", required=True,
                   help="medium | expert | medium-expert | random-medium-expert | all")
    g.add_argument("--bins", type=int, default=3, help="bins per action dimension (default 3, the shipped policies')")
    g.add_argument("--num_transitions", type=int, default=None,
                   help="default: the published size of the level")
    g.add_argument("--out", default=None, help="write this file instead of the store's path")
    g.add_argument("--overwrite", action="store_true", help="replace an existing --out file")
    g.add_argument("--seed", type=int, default=0,
                   help="collection seed (episodes' env and action-noise streams; default 0)")
    g.add_argument("--data_dir", default=None,
                   help="dataset store root (default $SPIN_BENCH_DATA_DIR or ~/.spin_bench/datasets)")
    g.add_argument("--num_workers", type=int, default=2, help="collection processes (default 2)")
    g.add_argument("--num_envs", type=int, default=10,
                   help="environments stepped in lockstep per process (default 10)")
    g.add_argument("--no_progress", action="store_true", help="no progress bar")
    g.add_argument("--version", type=int, default=None,
                   help="dataset version: which version of the shipped policies (default the newest)")
    g.set_defaults(fn=cmd_generate)

    r = sub.add_parser("references", error_name=PROG, help="measure expert/random reference returns")
    r.add_argument("--task", required=True, help="a task with shipped behaviour policies, e.g. cheetah-run")
    r.add_argument("--bins", type=int, default=3, help="bins per action dimension (default 3)")
    r.add_argument("--episodes", type=int, default=50,
                   help="episodes of each policy (expert, random) to average; written beside the returns (default 50)")
    r.add_argument("--dry_run", action="store_true", help="print, do not write the CSV")
    r.add_argument("--version", type=int, default=None,
                   help="dataset version: whose expert (default the newest shipped)")
    r.set_defaults(fn=cmd_references)
    args = p.parse_args(argv)
    from spin_bench.configs import ConfigError, error_line
    from spin_bench.safe_load import UnreadableFileError, UnsafeFileError

    try:
        _check_args(args)
        args.fn(args)
    except (_BadInput, ConfigError, UnsafeFileError, UnreadableFileError) as e:
        sys.stderr.write(f"{PROG}: error: {error_line(e)}\n")
        return 2
    except KeyboardInterrupt:
        sys.stderr.write(f"{PROG}: interrupted\n")
        return 130
    return 0
