"""What a sweep is: a gin-configured `Sweep` naming the axes; its runs are the product
scale x tasks x levels x methods x algos x variants x seeds.

Each run is one experiment file, ``gin/experiments/<scale>/<task>/<level>/<method>_<algo>.gin``,
plus the sweep's bindings, the variant's bindings and the command line's bindings (in that
order), plus a seed.  Its id is the sha256 of every binding in effect (``configs.config_str()``
after parsing exactly what the run will parse) and the seed, so the same configuration always
lands in the same run directory, ``<sweep_dir>/runs/<task>-<level>-<method>_<algo>[-<variant>]
-s<seed>-<id8>``, and a changed configuration never reuses a stale one.  Pure locations
(``RUN_ID_EXCLUDED``: the dataset store and the ASM cache directory) are left out of the id, so
moving the store does not orphan finished runs; the data itself is identified by its data
identity (and the file by its sha256) in each run's summary.json.
"""
from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
import os
import re
from typing import Dict, Iterable, List, Mapping, Optional, Sequence, Tuple, Union

import gin

from spin_bench import configs
from spin_bench.cli import MAX_NAME_BYTES, check_seed, path_problem
from spin_bench.rundir import ASM_CURVE, CHECKPOINT, COMPLETE, CONFIG, METRICS, OPERATIVE_CONFIG, SUMMARY

RUNS_SUBDIR = "runs"
RUN_INFO = "sweep_run.json"  # the run's place in the sweep, written by the sweep runner
# What an archive keeps of a finished run (never checkpoints or datasets): with its COMPLETE
# marker, so the report reads the archive as it reads the sweep directory; summary.json last.
ARCHIVE_FILES = (RUN_INFO, CONFIG, OPERATIVE_CONFIG, METRICS, ASM_CURVE, COMPLETE, SUMMARY)
# Parameters that name where things are, not what is computed: not part of a run's id.
RUN_ID_EXCLUDED = ("Experiment.data_dir", "Experiment.asm_cache_dir")

# Names are matched whole (re.fullmatch): '$' would accept a trailing newline.
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.]{0,99}")
_AXIS_VALUE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}")
_VARIANT = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+=]{0,99}")
MAX_SEEDS = 1000


class SweepError(ValueError):
    """A sweep file, axis value or run configuration is invalid (raised before any work)."""


def _strings(name: str, value, allow_empty: bool = False, sep_ok: str = "") -> Tuple[str, ...]:
    if isinstance(value, str):
        value = (value,)
    try:
        out = tuple(value)
    except TypeError:
        raise SweepError(f"Sweep.{name} must be a list of names, got {value!r}") from None
    if not out and not allow_empty:
        raise SweepError(f"Sweep.{name} is empty")
    for v in out:
        parts = v.split(sep_ok) if sep_ok and isinstance(v, str) else [v]
        if not isinstance(v, str) or not all(isinstance(p, str) and _AXIS_VALUE.fullmatch(p) for p in parts):
            raise SweepError(f"Sweep.{name}: invalid entry {v!r}")
    if len(set(out)) != len(out):
        raise SweepError(f"Sweep.{name} lists a value twice: {list(out)}")
    return out


def _bindings(where: str, value) -> Tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        value = (value,)
    out = tuple(value)
    for b in out:
        if not isinstance(b, str) or "=" not in b:
            raise SweepError(f"{where}: a binding must be a string like \"pretrain_asm.epochs = 20\", got {b!r}")
    return out


def _cells(value) -> Tuple[Tuple[str, str], ...]:
    """Sweep.cells: ['task/level', ...] -> ((task, level), ...), in the given (priority) order."""
    out = []
    for c in _strings("cells", value, sep_ok="/"):
        task, _, level = c.partition("/")
        if c.count("/") != 1:
            raise SweepError(f"Sweep.cells: {c!r} is not 'task/level' (e.g. 'cheetah-run/medium-expert')")
        out.append((task, level))
    return tuple(out)


def _references(value, methods: Sequence[str], algos: Sequence[str]) -> Tuple[Tuple[str, str], ...]:
    """Sweep.references: ['f_bc', ...] -> ((method, algo), ...): pairs run in every cell beside the
    grid (e.g. F-BC as a reference row of an IQL grid)."""
    out = []
    for r in _strings("references", value, allow_empty=True):
        method, _, algo = r.rpartition("_")
        if not method or not algo:
            raise SweepError(f"Sweep.references: {r!r} is not 'method_algo' (e.g. 'f_bc')")
        if method in methods and algo in algos:
            raise SweepError(f"Sweep.references: {r!r} is already in the grid (methods x algos)")
        out.append((method, algo))
    return tuple(out)


def _variants(value) -> Tuple[Tuple[str, Tuple[str, ...]], ...]:
    """None -> one unnamed variant; {name: bindings} or [bindings, ...] (named v0, v1, ...)."""
    if value is None:
        return (("", ()),)
    if isinstance(value, Mapping):
        items = [(str(k), v) for k, v in value.items()]
    elif isinstance(value, (list, tuple)):
        items = [(f"v{i}", v) for i, v in enumerate(value)]
    else:
        raise SweepError(f"Sweep.variants must be a dict {{name: bindings}} or a list of binding lists, got {value!r}")
    if not items:
        raise SweepError("Sweep.variants is empty (leave it unbound for a single variant)")
    out = []
    for name, bindings in items:
        if not _VARIANT.fullmatch(name):
            raise SweepError(f"Sweep.variants: invalid name {name!r} (letters, digits, _ . + = ; no '-' or '/')")
        out.append((name, _bindings(f"Sweep.variants[{name!r}]", bindings)))
    return tuple(out)


@gin.configurable
class Sweep:
    """A grid of runs, the product of its axes (see the module docstring).

    seeds: an int n (seeds 0..n-1) or a list of seeds.  bindings: gin bindings added to every
    run.  variants: an axis of alternative binding sets, e.g. ``{'e1': 'pretrain_asm.epochs = 1',
    'e20': 'pretrain_asm.epochs = 20'}``; each variant's name becomes part of the run name.
    """

    def __init__(self, name: str = gin.REQUIRED, scale: str = gin.REQUIRED,
                 tasks: Sequence[str] = (), levels: Sequence[str] = (),
                 methods: Sequence[str] = gin.REQUIRED, algos: Sequence[str] = ("iql",),
                 seeds: Union[int, Sequence[int]] = 5, bindings: Sequence[str] = (),
                 variants: Union[None, Mapping[str, Union[str, Sequence[str]]], Sequence] = None,
                 description: str = "", cells: Optional[Sequence[str]] = None,
                 references: Sequence[str] = ()):
        if not isinstance(name, str) or not _NAME.fullmatch(name):
            raise SweepError(f"Sweep.name must be a simple name (letters, digits, _ .), got {name!r}")
        if not isinstance(scale, str) or not _AXIS_VALUE.fullmatch(scale):
            raise SweepError(f"Sweep.scale: invalid value {scale!r}")
        self.name, self.scale, self.description = name, scale, str(description)
        if cells is None:
            self.tasks = _strings("tasks", tasks)
            self.levels = _strings("levels", levels)
            self.task_levels = tuple(itertools.product(self.tasks, self.levels))
        else:
            if tasks or levels:
                raise SweepError("bind either Sweep.cells or Sweep.tasks and Sweep.levels, not both")
            self.task_levels = _cells(cells)
            self.tasks = tuple(dict.fromkeys(t for t, _ in self.task_levels))
            self.levels = tuple(dict.fromkeys(lv for _, lv in self.task_levels))
        self.methods = _strings("methods", methods)
        self.algos = _strings("algos", algos)
        self.references = _references(references, self.methods, self.algos)
        if isinstance(seeds, bool):
            raise SweepError(f"Sweep.seeds must be an int or a list of ints, got {seeds!r}")
        if isinstance(seeds, int):
            if seeds < 1:
                raise SweepError(f"Sweep.seeds must be >= 1, got {seeds}")
            if seeds > MAX_SEEDS:
                raise SweepError(f"Sweep.seeds must be at most {MAX_SEEDS} seeds, got {str(seeds)[:40]}")
            seeds = range(seeds)
        if isinstance(seeds, (str, bytes)) or not isinstance(seeds, (list, tuple, range)) or len(seeds) > MAX_SEEDS:
            raise SweepError(f"Sweep.seeds must be an int or a list of at most {MAX_SEEDS} ints, got {str(seeds)[:60]}")
        for s in seeds:
            try:
                check_seed("Sweep.seeds", s)
            except ValueError as e:
                raise SweepError(str(e)) from None
        self.seeds = tuple(int(s) for s in seeds)
        if not self.seeds or len(set(self.seeds)) != len(self.seeds):
            raise SweepError(f"Sweep.seeds must be distinct non-negative ints, got {list(self.seeds)}")
        self.bindings = _bindings("Sweep.bindings", bindings)
        self.variants = _variants(variants)

    @property
    def method_algos(self) -> Tuple[Tuple[str, str], ...]:
        """The grid's (method, algo) pairs, then the reference pairs."""
        return tuple(itertools.product(self.methods, self.algos)) + self.references

    @property
    def num_runs(self) -> int:
        return len(self.task_levels) * len(self.method_algos) * len(self.variants) * len(self.seeds)

    def cells(self):
        """(task, level, method, algo, (variant_name, variant_bindings)) in a stable order: cell
        by cell (the order of Sweep.cells, or tasks x levels), then method x algo, references last."""
        return ((t, lv, m, a, v) for (t, lv), (m, a), v in
                itertools.product(self.task_levels, self.method_algos, self.variants))

    def describe(self) -> str:
        if len(self.task_levels) == len(self.tasks) * len(self.levels):
            parts = [f"{len(self.tasks)} task(s)", f"{len(self.levels)} level(s)"]
        else:
            parts = [f"{len(self.task_levels)} (task, level) cell(s)"]
        parts += [f"{len(self.methods)} method(s)", f"{len(self.algos)} algo(s)"]
        if self.references:
            parts[-1] = f"({parts[-1]} + {len(self.references)} reference(s))"
        if len(self.variants) > 1:
            parts.append(f"{len(self.variants)} variants")
        parts.append(f"{len(self.seeds)} seed(s)")
        return f"{self.num_runs} runs ({' x '.join(parts)}) at the {self.scale} scale"

    def to_dict(self) -> dict:
        return {"name": self.name, "scale": self.scale, "tasks": list(self.tasks), "levels": list(self.levels),
                "methods": list(self.methods), "algos": list(self.algos), "seeds": list(self.seeds),
                "bindings": list(self.bindings), "variants": {n: list(b) for n, b in self.variants},
                "description": self.description, "cells": [f"{t}/{lv}" for t, lv in self.task_levels],
                "references": [f"{m}_{a}" for m, a in self.references]}


def experiment_file(scale: str, task: str, level: str, method: str, algo: str) -> str:
    """Repository-relative path of a table cell's experiment file."""
    return "/".join(("gin", "experiments", scale, task, level, f"{method}_{algo}.gin"))


CELLS_SUBDIR = "cells"  # composed experiment files of cells outside the suite's grid


def check_names(sweep: Sweep) -> None:
    """SweepError (one line, naming the known ones) for an axis value no registry knows: tasks,
    methods and algorithms (a method or algorithm of your own is registered by an ``import``
    line of the sweep file, or an entry point), and pairs that do not go together."""
    from spin_bench import vocab

    try:
        grid = vocab.grid_tasks(sweep.scale)
        for task in sweep.tasks:
            if task not in grid and task not in vocab.tasks():
                raise vocab.UnknownNameError(f"unknown task {task!r}; known tasks: {', '.join(vocab.tasks())}")
        for level in sweep.levels:
            if level not in vocab.LEVELS:
                raise vocab.UnknownNameError(f"unknown level {level!r}; known levels: {', '.join(vocab.LEVELS)}")
        for method, algo in sweep.method_algos:
            vocab.check_pair(method, algo, where="Sweep")
    except vocab.UnknownNameError as e:
        raise SweepError(f"sweep {sweep.name}: {e}") from None


def cell_file(scale: str, task: str, level: str, method: str, algo: str, sweep_dir: str) -> str:
    """The experiment file of one cell: the suite's own (repository-relative, in the package's
    grid), or, for a cell with a task, method or algorithm of your own, one composed of its
    fragments' include lines and written (atomically, only when it changes) under
    ``<sweep_dir>/cells/``; its absolute path. Nothing inside the package is written."""
    from spin_bench import vocab
    from spin_bench.atomic import atomic_write_text

    rel = experiment_file(scale, task, level, method, algo)
    if vocab.is_builtin_cell(task, method, algo):
        return rel
    parts = []
    for part in vocab.cell_parts(scale, task, level, method, algo):
        try:
            parts.append(os.path.abspath(configs.resolve(part)))
        except configs.ConfigError as e:
            raise SweepError(f"cell {task}/{level} {method}_{algo}: {e}") from None
    text = "# Composed by spin_bench.sweep from the cell's fragments (a cell outside the suite's grid).\n" + \
        "".join(f"include '{p}'\n" for p in parts)
    path = os.path.join(sweep_dir, CELLS_SUBDIR, scale, task, level, f"{method}_{algo}.gin")
    try:
        with open(path) as fh:
            same = fh.read() == text
    except OSError:
        same = False
    if not same:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        atomic_write_text(path, text)
    return path


def split_bindings(bindings: Iterable[str]) -> Tuple[List[str], List[str]]:
    """Command-line bindings: (those for the Sweep itself, those for every run)."""
    sweep, runs = [], []
    for b in bindings:
        (sweep if b.strip().startswith("Sweep.") else runs).append(b)
    return sweep, runs


def load_sweep(gin_files: Sequence[str], bindings: Sequence[str] = ()) -> Sweep:
    """Parse sweep gin file(s) (+ ``Sweep.*`` bindings) into a Sweep; SweepError if invalid."""
    try:
        configs.parse(list(gin_files), list(bindings), finalize=False)
        others = sorted({m.group(1) for m in re.finditer(r"^# Parameters for (\S+):$", configs.config_str(), re.M)}
                        - {"Sweep"})
        if others:
            raise SweepError(f"sweep file(s) {', '.join(gin_files)} bind {', '.join(others)}: a sweep file binds only "
                             f"Sweep (put run bindings in Sweep.bindings or Sweep.variants)")
        return Sweep()
    except SweepError:
        raise
    except (configs.ConfigError, ValueError, TypeError, RuntimeError) as e:
        raise SweepError(f"invalid sweep ({', '.join(gin_files)}): {e}") from None
    finally:
        gin.clear_config()


@dataclasses.dataclass(frozen=True)
class RunSpec:
    """One run of a sweep: what the runner is given, and where it writes."""

    name: str
    run_id: str  # sha256 hex of the run's config and seed
    run_dir: str  # absolute
    scale: str
    task: str  # the task axis value (a gin/tasks file name, e.g. dog-trot-b10)
    level: str
    method: str
    algo: str
    variant: str
    seed: int
    gin_file: str  # repository-relative experiment file (absolute: a composed one, see cell_file)
    bindings: Tuple[str, ...]
    dataset_key: str  # equal for runs that read the same dataset
    dataset_path: Optional[str]  # Experiment.dataset_path (None: generated/found in the store)
    asm_key: Optional[str]  # SPIN only: equal for runs sharing one cached ASM pre-training

    def state(self, archive_dir: Optional[str] = None) -> str:
        """'complete' (COMPLETE marker, or its small files in ``archive_dir``: see
        ``archived``), 'partial' (a checkpoint to resume) or 'new'."""
        if os.path.exists(os.path.join(self.run_dir, COMPLETE)) or (archive_dir and self.archived(archive_dir)):
            return "complete"
        if os.path.exists(os.path.join(self.run_dir, CHECKPOINT)):
            return "partial"
        return "new"

    def archived(self, archive_dir: str) -> bool:
        """Whether ``archive_dir/<name>/`` holds this run's small files from a finished run: its
        summary.json says complete and its sweep_run.json has this run's id."""
        from spin_bench.safe_load import read_json

        where = os.path.join(archive_dir, self.name)
        try:  # regular files only, no links: the archive is a shared folder
            complete = read_json(os.path.join(where, SUMMARY), "archived summary.json",
                                 follow_symlinks=False).get("status") == "complete"
            same = read_json(os.path.join(where, RUN_INFO), "archived sweep_run.json",
                             follow_symlinks=False).get("run_id") == self.run_id
        except ValueError:  # UnreadableFileError: missing, damaged, a link, a FIFO...
            return False
        return complete and same

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def _key(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=repr).encode()).hexdigest()[:16]


def run_id(config: str, seed: int) -> str:
    """sha256 over the run's bindings in effect and its seed."""
    return hashlib.sha256(f"{config}\n# seed\n{int(seed)}\n".encode()).hexdigest()


def identity_config() -> str:
    """The parsed configuration as it enters a run id (locations excluded); mutates gin's
    config, so call it after everything else is read from the parse."""
    for param in RUN_ID_EXCLUDED:
        gin.bind_parameter(param, None)
    return configs.config_str()


def plan_runs(sweep: Sweep, sweep_dir: str, extra_bindings: Sequence[str] = (),
              unavailable: Optional[list] = None) -> List[RunSpec]:
    """Expand the sweep into runs; every run's configuration is parsed and validated (the same
    checks the runner does before any work, whether its data can be obtained included), so a
    bad cell fails the sweep before it starts. Cells without data raise SweepError naming them
    all, or, with `unavailable` (a list), are appended to it as (cell, run names, message) and
    planned (the runner refuses only those still to run)."""
    from spin_bench.train.experiment import DataUnavailableError, Experiment, check_inputs
    from spin_bench.train.trainer import Schedule

    problem = path_problem(sweep_dir, "--sweep_dir")
    if problem:
        raise SweepError(problem)
    sweep_dir = os.path.abspath(sweep_dir)
    check_names(sweep)
    cells = list(sweep.cells())
    files = {(t, lv, m, a): cell_file(sweep.scale, t, lv, m, a, sweep_dir) for t, lv, m, a, _ in cells}
    missing = sorted({f for f in files.values() if not os.path.isfile(os.path.join(configs.CONFIG_ROOT, f))})
    if missing:
        raise SweepError(f"sweep {sweep.name}: {len(missing)} experiment file(s) missing, e.g. {missing[0]} "
                         f"(scale {sweep.scale!r}; see python -m spin_bench.gin_experiments)")
    runs: List[RunSpec] = []
    no_data: Dict[str, Tuple[str, List[str]]] = {}  # cell -> (what is missing and how to get it, run names)
    lacking = None
    try:
        for task, level, method, algo, (vname, vbindings) in cells:
            rel = files[(task, level, method, algo)]
            bindings = tuple(sweep.bindings) + tuple(vbindings) + tuple(extra_bindings)
            where = f"{rel}" + (f" (variant {vname})" if vname else "")
            try:
                configs.parse([os.path.join(configs.CONFIG_ROOT, rel)], bindings, finalize=False)
                exp, schedule = Experiment(), Schedule()
                try:
                    check_inputs(exp, schedule)
                    lacking = None
                except DataUnavailableError as e:
                    lacking = f"{exp.task} {exp.level} (bins {exp.bins})"
                    no_data.setdefault(lacking, (configs.error_line(e), []))
                asm_cfg = None
                if exp.needs_asm:
                    asm_cfg = {"pretrain_asm": gin.get_bindings("pretrain_asm"),
                               "ActionStructureModel": gin.get_bindings("ActionStructureModel")}
                config = identity_config()
            except (configs.ConfigError, ValueError, TypeError, RuntimeError) as e:
                raise SweepError(f"sweep {sweep.name}: invalid run configuration {where}: {configs.error_line(e)}") from None
            bins = exp.bins if isinstance(exp.bins, int) else list(exp.bins)
            dataset = {"task": exp.task, "bins": bins, "level": exp.level, "num_transitions": exp.num_transitions,
                       "dataset_path": exp.dataset_path, "data_dir": exp.data_dir}
            dataset_key = _key(dataset)
            for seed in sweep.seeds:
                rid = run_id(config, seed)
                name = f"{task}-{level}-{method}_{algo}" + (f"-{vname}" if vname else "") + f"-s{seed}-{rid[:8]}"
                if len(name.encode()) > MAX_NAME_BYTES:
                    raise SweepError(f"sweep {sweep.name}: the run name {name[:40]}... is {len(name.encode())} "
                                     f"bytes long (at most {MAX_NAME_BYTES}); shorten the variant name {vname[:24]!r}")
                if lacking is not None:
                    no_data[lacking][1].append(name)
                runs.append(RunSpec(
                    name=name, run_id=rid, run_dir=os.path.join(sweep_dir, RUNS_SUBDIR, name), scale=sweep.scale,
                    task=task, level=level, method=method, algo=algo, variant=vname, seed=int(seed), gin_file=rel,
                    bindings=bindings, dataset_key=dataset_key, dataset_path=exp.dataset_path,
                    asm_key=None if asm_cfg is None else _key({"dataset": dataset, "seed": exp.pretrain_seed(int(seed)),
                                                               "asm": asm_cfg})))
    finally:
        gin.clear_config()
    if no_data:
        if unavailable is None:
            total = sum(len(names) for _, names in no_data.values())
            raise SweepError(f"sweep {sweep.name}: no data for {total} run(s) in {len(no_data)} cell(s) "
                             f"({', '.join(no_data)}); first: {next(iter(no_data.values()))[0]}")
        unavailable.extend((cell, names, msg) for cell, (msg, names) in no_data.items())
    dup = [n for n, c in _counts(r.run_id for r in runs).items() if c > 1]
    if dup:
        raise SweepError(f"sweep {sweep.name}: two runs have the same configuration and seed "
                         f"(variants that change nothing?): {dup[0][:8]}")
    return runs


def _counts(items: Iterable[str]) -> Dict[str, int]:
    out: Dict[str, int] = {}
    for x in items:
        out[x] = out.get(x, 0) + 1
    return out
