"""Where a cell's data comes from, decided in one place.

A cell (task x level x bins at a size) gets its dataset from, in this order:

  1. an explicit file or store id (``Experiment.dataset_path``);
  2. the published dataset the user imported into the store (``dataset_source='published'``);
  3. ours, generated on first use from the shipped behaviour policies (the default), or the
     generated file already in the store where no shipped policies are there to remake it.

The dataset version (the id's ``-v<k>``): ``version`` when bound, else for ours the newest
version of the task's shipped policies (:func:`spin_bench.datagen.paths.resolve_version`)
and for the published data 1, the only one there is.

Two entry points: :func:`check` (no work: reads only file names and the store's registry;
raises :class:`DataUnavailableError`, one line naming what is missing and how to get it) and
:func:`obtain` (the path of the dataset to load, generating it on first use). The runner
(``spin_bench.train.experiment``) calls each once; the data layer below (the store, the
schema) and the generator (:mod:`spin_bench.datagen.generate`) hold no part of the rule.
"""
from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Optional, Sequence, Union

from spin_bench import vocab
from spin_bench.data.schema import dataset_id, is_dataset_id
from spin_bench.data.store import DatasetStore
from spin_bench.datagen.paths import policy_versions, resolve_version

BinsLike = Union[int, Sequence[int]]


class DataUnavailableError(ValueError):
    """The cell's data is neither there nor obtainable here; the message says how to get it."""


@dataclasses.dataclass(frozen=True)
class DataRequest:
    """The data bindings of one cell (``Experiment``'s): what to load and where to look."""

    task: str
    level: str
    bins: BinsLike = 3
    num_transitions: Optional[int] = None
    source: str = "generated"      # 'generated' or 'published'
    path: Optional[str] = None     # an explicit file or store id: wins over `source`
    data_dir: Optional[str] = None  # the store's root (None: $SPIN_BENCH_DATA_DIR or its default)
    version: Optional[int] = None  # the dataset version (None: the newest shipped; published: 1)

    @property
    def store(self) -> DatasetStore:
        """The dataset store the cell's data is looked up in."""
        return DatasetStore(self.data_dir)

    @property
    def data_version(self) -> int:
        """The dataset version the request means (see the module docstring)."""
        if self.source == "published":
            return 1 if self.version is None else int(self.version)
        return resolve_version(self.task, self.bins, self.version)

    @property
    def dataset_id(self) -> str:
        return dataset_id(self.task, self.level, self.bins, self.data_version)

    @property
    def cell(self) -> str:
        """How messages name the cell: 'cheetah-run medium-expert (bins 3)'."""
        return f"{self.task} {self.level} (bins {self.bins})"


def check(req: DataRequest) -> None:
    """DataUnavailableError unless `req`'s data can be obtained here (see the module docstring).
    Reads file names and the store's registry only; writes nothing."""
    if req.path:
        _explicit(req)
    elif req.source == "published":
        _published(req)
    else:
        _generated_check(req)


def obtain(req: DataRequest) -> Path:
    """The path of `req`'s dataset file: the explicit one, the imported published one, or ours,
    generated first when the store does not hold it (or holds a stale one). Raises
    DataUnavailableError, the message :func:`check` gives, when there is none to be had."""
    if req.path:
        return _explicit(req)
    if req.source == "published":
        return _published(req)
    _generated_check(req)
    from spin_bench.datagen.generate import ensure_dataset

    return ensure_dataset(req.task, req.level, bins=req.bins, num_transitions=req.num_transitions,
                          data_dir=req.data_dir, version=req.data_version)


def has_published(task: str, bins: BinsLike) -> bool:
    """Whether (task, bins) has a published dataset to import (a task outside the benchmark's
    table, or bins it was not published with, has none)."""
    spec = vocab.BENCHMARK_TASKS.get(task)
    uniform = _uniform_bins(bins)
    return spec is not None and uniform is not None and uniform in tuple(spec.published_bins)


def how_to_get(task: str, level: str, bins: BinsLike, data_dir: Optional[str] = None) -> str:
    """What makes (task, level, bins)'s data obtainable when no shipped behaviour policies can
    generate it: importing the published dataset where there is one (then the binding that
    reads it), else training behaviour policies or passing a dataset file."""
    if has_published(task, bins):
        return (f"use the published datasets: {import_command(task, level, bins, data_dir)}, then run with "
                f"--gin_bindings=\"Experiment.dataset_source='published'\" (or train behaviour "
                f"policies: python -m spin_bench.datagen train --task={task}, then datagen export)")
    return (f"{task} has no published dataset at bins {bins}: train behaviour policies "
            f"({train_commands(task, bins)}), or pass a dataset file: "
            f"--gin_bindings=\"Experiment.dataset_path='FILE'\"")


def import_command(task: str, level: str, bins: BinsLike, data_dir: Optional[str] = None) -> str:
    """The command that imports (task, level, bins)'s published dataset into the store."""
    return (f"python -m spin_bench.data import --source=DIR --task={task} --level={level} "
            f"--bins={_bins_flag(bins)} --data_dir={DatasetStore(data_dir).root} "
            f"(DIR: the published dmc_datasets files)")


def train_commands(task: str, bins: BinsLike) -> str:
    """The commands that train (task, bins)'s behaviour policies and ship their levels."""
    bins_binding = "" if _uniform_bins(bins) == 3 else f" --gin_bindings=\"train_decqn.bins = {bins!r}\""
    return (f"python -m spin_bench.datagen train --task={task}{bins_binding}, then "
            f"python -m spin_bench.datagen export --task={task}")


# ----------------------------------------------------------------------------- the sources
def _explicit(req: DataRequest) -> Path:
    """`req.path` as a file, else as a dataset id in the store."""
    store = req.store
    if os.path.isfile(req.path):
        return Path(req.path)
    found = store.find(req.path) if is_dataset_id(req.path) else None
    if found is None:
        raise DataUnavailableError(
            f"Experiment.dataset_path {req.path!r}: no such file (nor a dataset id in the store {store.root}; "
            f"see python -m spin_bench.data list --data_dir={store.root})")
    return found


def _published(req: DataRequest) -> Path:
    """The imported published dataset of the cell."""
    store = req.store
    if req.data_version != 1:
        raise DataUnavailableError(
            f"no data for {req.cell}: Experiment.data_version = {req.version} but the published datasets "
            f"have version 1 only (versions 2 and up are ours: Experiment.dataset_source='generated')")
    found = store.find(req.dataset_id)
    if found is not None:
        return found
    if not has_published(req.task, req.bins):
        from spin_bench.datagen.generate import missing_policies

        hint = (f"{req.task} has no published dataset at bins {req.bins}; the shipped behaviour policies "
                f"generate it: run with --gin_bindings=\"Experiment.dataset_source='generated'\""
                if not missing_policies(req.task, req.level, req.bins) else
                how_to_get(req.task, req.level, req.bins, req.data_dir))
        raise DataUnavailableError(f"no data for {req.cell}: Experiment.dataset_source='published' but {hint}")
    raise DataUnavailableError(
        f"no data for {req.cell}: the published dataset {req.dataset_id} is not in the store {store.root}; "
        f"import it first: {import_command(req.task, req.level, req.bins, req.data_dir)}")


def _generated_check(req: DataRequest) -> None:
    """Ours can be had: the shipped policies are there to generate it, or the store holds it."""
    from spin_bench.datagen.generate import generated_store, missing_policies

    version = req.data_version
    missing = missing_policies(req.task, req.level, req.bins, version)
    if missing and generated_store(req.data_dir, req.num_transitions, 0, req.level).find(req.dataset_id) is None:
        shipped = policy_versions(req.task, req.bins)
        if req.version is not None and shipped:
            raise DataUnavailableError(
                f"no data for {req.cell}: Experiment.data_version = {req.version}, but {req.task}'s shipped "
                f"behaviour policies have version{'s' if len(shipped) > 1 else ''} "
                f"{', '.join(str(v) for v in shipped)} ({missing[0]} is missing), and the store "
                f"{req.store.root / 'generated'} holds no {req.dataset_id}")
        raise DataUnavailableError(
            f"no data for {req.cell}: no shipped behaviour policies ({missing[0]} is missing) to generate it from, "
            f"and no generated file in {req.store.root / 'generated'}; "
            f"{how_to_get(req.task, req.level, req.bins, req.data_dir)}")


def _uniform_bins(bins: BinsLike) -> Optional[int]:
    """The bins of every sub-action when they are all the same, else None."""
    values = {int(b) for b in bins} if isinstance(bins, (list, tuple)) else {int(bins)}
    return values.pop() if len(values) == 1 else None


def _bins_flag(bins: BinsLike) -> str:
    return str(bins) if isinstance(bins, int) else ",".join(str(b) for b in bins)
