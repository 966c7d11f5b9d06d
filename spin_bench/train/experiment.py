"""One run end to end: dataset -> (ASM pre-training) -> actor + algorithm -> training loop
-> run directory.  What to run is gin configuration (gin/experiments/...)."""
from __future__ import annotations

import dataclasses
import os
import re
import time
from typing import Mapping, Optional, Sequence, Union

import gin
import numpy as np
import torch

from spin_bench import configs, vocab
from spin_bench.atomic import atomic_write_json, atomic_write_text, remove_stale_temps
from spin_bench.cli import MAX_SEED, check_path_component, directory_problem, path_problem
from spin_bench.data.schema import is_dataset_id, parse_dataset_id
from spin_bench.datagen.resolve import DataRequest, DataUnavailableError  # noqa: F401  (re-exported)
from spin_bench.datagen import resolve
from spin_bench.envs import get_task_spec, normalise_bins, reference_returns
from spin_bench.envs.registry import ReferenceReturns
from spin_bench.rundir import CHECKPOINT, COMPLETE, CONFIG, OPERATIVE_CONFIG, SUMMARY, final_score
from spin_bench.rundir import RunDirError  # noqa: F401  (re-exported; raised here too)
from spin_bench.train import identity, provenance
from spin_bench.train.evaluation import Evaluator
from spin_bench.train.trainer import Schedule, check_resume_step, load_checkpoint, train
from spin_bench.vocab import LEVELS


@gin.configurable
class Experiment:
    """The cell of a table: task x bins x level x method x algorithm at a scale.

    ``asm_seed``: SPIN's ASM is pre-trained with this seed instead of the run's, so the runs
    of several policy seeds share one pre-trained ASM (their spread is then the policy's only).
    ``expected_identities``: {dataset id: data identity (or its first 8+ hex digits)}; a run
    whose dataset has another identity is refused before training (a study keyed on committed
    runs' data spends nothing on other data, e.g. where a machine does not regenerate it).
    ``data_version``: the dataset version (the id's ``-v<k>``; for our data, which version of
    the shipped behaviour policies generates it); None takes the newest shipped for the task
    (the published data has version 1 only). docs/data.md says which version each committed
    result used."""

    def __init__(self, task: str = gin.REQUIRED, level: str = gin.REQUIRED,
                 method: str = gin.REQUIRED, algo: str = gin.REQUIRED, scale: str = gin.REQUIRED,
                 bins: Union[int, Sequence[int]] = 3, num_transitions: Optional[int] = None,
                 dataset_source: str = "generated", dataset_path: Optional[str] = None,
                 data_dir: Optional[str] = None, data_version: Optional[int] = None,
                 asm_cache_dir: Optional[str] = None, asm_seed: Optional[int] = None,
                 expected_identities: Optional[Mapping[str, str]] = None,
                 num_threads: Optional[int] = 1, eval_workers: int = 0):
        for what, name, known in (("task", task, vocab.tasks()), ("method", method, vocab.methods())):
            if name not in known:
                raise ValueError(f"Experiment.{what} must be one of {sorted(known) if what == 'task' else list(known)}"
                                 f", got {name!r}")
        if level not in LEVELS:
            raise ValueError(f"Experiment.level must be one of {list(LEVELS)}, got {level!r}")
        vocab.check_pair(method, algo)
        check_path_component("Experiment.scale", scale)
        num_actions = get_task_spec(task).num_actions
        try:
            normalise_bins(bins, num_actions)
        except ValueError as e:
            raise ValueError(f"Experiment.bins: {e} ({task} has {num_actions} sub-actions)") from None
        if num_transitions is not None and (isinstance(num_transitions, bool) or not isinstance(num_transitions, int)
                                            or not 1 <= num_transitions <= 10**8):
            raise ValueError(f"Experiment.num_transitions must be a positive integer (at most 10^8) or None, "
                             f"got {num_transitions!r}")
        if dataset_source not in ("generated", "published"):
            raise ValueError(f"Experiment.dataset_source must be 'generated' or 'published', got {dataset_source!r}")
        if data_version is not None and (isinstance(data_version, bool) or not isinstance(data_version, int)
                                         or not 1 <= data_version <= 10**6):
            raise ValueError(f"Experiment.data_version must be a positive integer (a dataset version, the id's "
                             f"-v<k>) or None (the newest), got {data_version!r}")
        for name, value in (("dataset_path", dataset_path), ("data_dir", data_dir), ("asm_cache_dir", asm_cache_dir)):
            if value is not None and (not isinstance(value, str) or not value):
                raise ValueError(f"Experiment.{name} must be a path (a non-empty string) or None, got {value!r}")
            problem = path_problem(value, f"Experiment.{name}") if value is not None else None
            if problem:
                raise ValueError(problem)
        if asm_seed is not None and (isinstance(asm_seed, bool) or not isinstance(asm_seed, int)
                                     or not 0 <= asm_seed <= MAX_SEED):
            raise ValueError(f"Experiment.asm_seed must be an integer in [0, {MAX_SEED}] or None, got {asm_seed!r}")
        if expected_identities is not None and (
                not isinstance(expected_identities, Mapping)
                or not all(isinstance(k, str) and isinstance(v, str) and _HEX_PREFIX.fullmatch(v)
                           for k, v in expected_identities.items())):
            raise ValueError(f"Experiment.expected_identities must map dataset ids to data identities (8 to 64 hex "
                             f"digits), got {expected_identities!r}")
        if num_threads is not None and (isinstance(num_threads, bool) or not isinstance(num_threads, int)
                                        or num_threads < 1):
            raise ValueError(f"Experiment.num_threads must be a positive integer or None, got {num_threads!r}")
        if isinstance(eval_workers, bool) or not isinstance(eval_workers, int) or eval_workers < 0:
            raise ValueError(f"Experiment.eval_workers must be an integer >= 0, got {eval_workers!r}")
        self.task, self.level, self.method, self.algo, self.scale = task, level, method, algo, scale
        self.dataset_source, self.data_version = dataset_source, data_version
        self.bins, self.num_transitions = bins, num_transitions
        self.dataset_path, self.data_dir, self.asm_cache_dir = dataset_path, data_dir, asm_cache_dir
        self.num_threads, self.eval_workers = num_threads, eval_workers
        self.asm_seed = asm_seed
        self.expected_identities = dict(expected_identities or {})

    @property
    def needs_asm(self) -> bool:
        """Whether this run pre-trains an ASM (its method's registry entry says so: SPIN)."""
        return vocab.needs_asm(self.method)

    def pretrain_seed(self, seed: int) -> int:
        """The seed of SPIN's ASM pre-training: ``asm_seed`` when bound (one ASM serves every
        policy seed), else the run's own seed."""
        return seed if self.asm_seed is None else self.asm_seed


_HEX_PREFIX = re.compile(r"[0-9a-f]{8,64}")


class DataIdentityError(ValueError):
    """The dataset is not the one ``Experiment.expected_identities`` names (nothing was trained)."""


def check_expected_version(exp: "Experiment") -> None:
    """DataIdentityError when ``Experiment.expected_identities`` names this cell's data in
    another version than the one the run would take (a run keyed on committed data, after its
    task shipped a newer version): raised before any data is made, naming the binding."""
    if not exp.expected_identities or exp.dataset_path:
        return
    req = data_request(exp)
    if req.dataset_id in exp.expected_identities:
        return
    cell = {k: v for k, v in parse_dataset_id(req.dataset_id).items() if k != "version"}
    named = {}
    for key in exp.expected_identities:
        parts = parse_dataset_id(key) if is_dataset_id(key) else None
        if parts is not None and {k: v for k, v in parts.items() if k != "version"} == cell:
            named[parts["version"]] = key
    if named:
        version = max(named)
        raise DataIdentityError(
            f"Experiment.expected_identities names {named[version]} for this cell, but the run would use "
            f"{req.dataset_id} (version {req.data_version}); bind Experiment.data_version = {version} to run on "
            f"the expected data (nothing was trained)")


def check_expected_identity(exp: "Experiment", dataset) -> None:
    """DataIdentityError unless the dataset's identity starts with the one expected for its id."""
    ds_id = dataset.attrs.get("dataset_id")
    expected = exp.expected_identities.get(ds_id)
    if expected is not None and not str(dataset.identity or "").startswith(expected):
        raise DataIdentityError(
            f"{dataset.path}: data identity {str(dataset.identity)[:12]}... is not the {expected[:12]}... "
            f"Experiment.expected_identities names for {ds_id} (this machine did not regenerate that data; "
            f"nothing was trained; see docs/data-identity.md)")


class RunInterrupted(KeyboardInterrupt):
    """SIGINT or SIGTERM stopped the run; it was recorded as `interrupted` and can be resumed."""


def resolve_device(name: str) -> torch.device:
    """'auto' -> CUDA when available, else CPU; 'cuda' without a GPU is an error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device=cuda but torch sees no CUDA device (install a CUDA build of torch)")
    if name not in ("cpu", "cuda"):
        raise ValueError(f"--device must be auto, cpu or cuda, got {name!r}")
    return torch.device(name)


def default_asm_cache_dir() -> str:
    """$SPIN_BENCH_ASM_CACHE (when set and not empty), else ~/.spin_bench/asm_cache."""
    return (os.environ.get("SPIN_BENCH_ASM_CACHE")
            or os.path.join(os.path.expanduser("~"), ".spin_bench", "asm_cache"))


def check_inputs(exp: Experiment, schedule: Schedule) -> None:
    """The checks that need more than the bindings: the schedule's final_k, the directories and
    whether the cell's data can be obtained (spin_bench.datagen.resolve.check). ValueError (one
    line) naming what is wrong; for missing data, DataUnavailableError saying how to get it.
    Reads nothing but file names; writes nothing."""
    schedule.check_final_k()
    request = data_request(exp)
    asm_cache = None
    if exp.needs_asm:  # the ASM cache: the binding, else $SPIN_BENCH_ASM_CACHE or its default
        asm_cache = (("Experiment.asm_cache_dir", exp.asm_cache_dir) if exp.asm_cache_dir else
                     ("$SPIN_BENCH_ASM_CACHE" if os.environ.get("SPIN_BENCH_ASM_CACHE") else "the ASM cache",
                      default_asm_cache_dir()))
    for what, path in (("Experiment.data_dir", request.store.root), asm_cache or ("", None)):
        problem = directory_problem(path, what) if path is not None else None
        if problem:
            raise ValueError(problem)
    resolve.check(request)


def data_request(exp: Experiment) -> DataRequest:
    """The cell's data bindings, as the resolver (spin_bench.datagen.resolve) takes them."""
    return DataRequest(task=exp.task, level=exp.level, bins=exp.bins, num_transitions=exp.num_transitions,
                       source=exp.dataset_source, path=exp.dataset_path, data_dir=exp.data_dir,
                       version=exp.data_version)


def _dataset(exp: Experiment, seed: int):
    """The run's dataset, loaded and validated: the file the resolver names (an explicit path or
    store id, the imported published data, or ours, generated on first use)."""
    from spin_bench.data import load_dataset

    return load_dataset(resolve.obtain(data_request(exp)), task=exp.task, bins=exp.bins)


def _expected_dataset(exp: Experiment, seed: int):
    """The run's dataset (:func:`_dataset`), refused (DataIdentityError) when it is not the data
    ``Experiment.expected_identities`` names: the version before any data is made, the identity
    once it is loaded."""
    check_expected_version(exp)
    dataset = _dataset(exp, seed)
    check_expected_identity(exp, dataset)
    return dataset


def _reference(exp: Experiment, dataset) -> Optional[ReferenceReturns]:
    """Reference returns for normalised scores: the dataset's own (generated data records the
    ones it was normalised with), else the registry's for its source (published or generated)."""
    attrs = dataset.attrs
    if "reference_expert" in attrs and "reference_random" in attrs:
        return ReferenceReturns(float(attrs["reference_expert"]), float(attrs["reference_random"]),
                                str(attrs.get("reference_source", "dataset")))
    bins = normalise_bins(exp.bins, dataset.actions.shape[1])
    if len(set(bins.tolist())) != 1:
        return None
    source = "published" if "source_sha256" in attrs or exp.dataset_source == "published" else "generated"
    try:
        version = parse_dataset_id(str(attrs.get("dataset_id")))["version"]
    except ValueError:
        version = 1
    return reference_returns(exp.task, int(bins[0]), source, version)


def build_actor(method: str, obs_dim: int, bins: Sequence[int], asm_checkpoint=None):
    """The actor of a method, from its registry entry: ``builder(obs_dim, bins)``, or
    ``builder(obs_dim, bins, asm_checkpoint)`` for a method that pre-trains an ASM (SPIN)."""
    spec = vocab.method_spec(method)
    if spec.actor is None:
        raise ValueError(f"method {method!r} is value-based: it has no actor")
    builder = vocab.resolve_builder(spec.actor)
    return builder(obs_dim, bins, asm_checkpoint) if spec.needs_asm else builder(obs_dim, bins)


def build_algorithm(method: str, algo: str, obs_dim: int, bins: Sequence[int], asm_checkpoint=None):
    """The algorithm of a (method, algo) pair: ``cls(actor, obs_dim, bins)`` with the method's
    actor, or ``cls(obs_dim, bins)`` for a value-based learner (DecQN, no actor)."""
    cls = vocab.algo_class(method, algo)
    if vocab.method_spec(method).actor is None:
        return cls(obs_dim, bins)
    return cls(build_actor(method, obs_dim, bins, asm_checkpoint), obs_dim, bins)


def _pretrain(exp: Experiment, data, bins, seed: int, device: torch.device, dataset,
              run_dir: Optional[str] = None):
    """SPIN's ASM: pre-trained, or loaded from the cache keyed by (dataset identity, config,
    seed), as a visible stage; with `run_dir` its curve is written there (spin_bench.train.pretraining)."""
    from spin_bench.train.pretraining import run_stage

    return run_stage(data, bins, exp.pretrain_seed(seed), device, cache_dir=exp.asm_cache_dir or default_asm_cache_dir(),
                     dataset_identity=dataset.identity, dataset_sha256=dataset.sha256, run_dir=run_dir)


def _bins(exp: Experiment, dataset) -> list:
    return [int(b) for b in normalise_bins(exp.bins, dataset.actions.shape[1])]


def _read_summary(run_dir: str) -> dict:
    """A finished run's summary.json (a regular file, not a link), its num_steps checked."""
    from spin_bench.safe_load import json_int, read_json

    path = os.path.join(run_dir, SUMMARY)
    try:
        doc = read_json(path, "run summary (summary.json)", follow_symlinks=False)
        json_int(doc, "num_steps", path, lo=0, hi=10**12, required=False)
        return doc
    except ValueError as e:  # UnreadableFileError, FieldError
        raise RunDirError(f"{configs.error_line(e)}; the run cannot be resumed, nothing was changed "
                          f"(use another --run_dir)") from None


def prepare(exp: Experiment, schedule: Schedule, seed: int, device: torch.device) -> dict:
    """The shared inputs of `exp`, made once: the dataset (generated on first use) and, for
    SPIN, the cached ASM pre-training. Sweeps call this (``spin_bench.run --prepare_only``)
    before runs."""
    check_inputs(exp, schedule)
    dataset = _expected_dataset(exp, seed)
    out = {"dataset_path": str(dataset.path), "dataset_sha256": dataset.sha256,
           "dataset_identity": dataset.identity}
    if exp.needs_asm:
        ckpt = _pretrain(exp, dataset.to_torch(device), _bins(exp, dataset), seed, device, dataset)
        out["asm_pretrain_time_s"] = float(ckpt.pretrain_seconds)
    return out


def run_experiment(run_dir: str, seed: int, device: torch.device, resume: bool = False,
                   config: Optional[str] = None, exp: Optional[Experiment] = None,
                   schedule: Optional[Schedule] = None) -> dict:
    """Execute `exp` on `schedule` into `run_dir`; returns summary.json's content.

    The entry point builds `exp` and `schedule` from the parsed configuration and passes them
    (without them, they are made from gin's bindings here). `config` (every parsed binding,
    ``configs.config_str()`` by default) is saved as config.gin; gin's operative config (the
    values the run actually used, defaults included) as operative_config.gin.

    The steps: the resume checks (nothing touched yet), the dataset and the run's identity
    (the run directory is made), the summary record, then the training itself."""
    exp = Experiment() if exp is None else exp
    schedule = Schedule() if schedule is None else schedule
    check_inputs(exp, schedule)
    if config is None:
        config = configs.config_str()
    prior = _resume_checks(run_dir, config, seed, schedule, resume)
    if prior.finished(schedule):
        return prior.complete
    if exp.num_threads and device.type == "cpu":
        torch.set_num_threads(exp.num_threads)
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)
    dataset = _open_run(run_dir, exp, seed, prior)
    summary = _summary_record(exp, schedule, seed, device)
    atomic_write_text(os.path.join(run_dir, CONFIG), config)
    atomic_write_json(os.path.join(run_dir, SUMMARY), summary)
    return _train_recorded(run_dir, exp, schedule, seed, device, dataset, summary, resume, prior.checkpoint)


@dataclasses.dataclass
class _Prior:
    """What the run directory holds for this run, as the resume checks found it."""

    identity: dict                     # this run's identity (config, seed; the data's is added later)
    recorded: Optional[dict]           # the identity the directory recorded (with --resume)
    checkpoint: Optional[dict] = None  # the training checkpoint to continue from
    complete: Optional[dict] = None    # a complete run's summary.json

    def finished(self, schedule: Schedule) -> bool:
        """The directory holds this run complete at exactly the schedule's steps."""
        return self.complete is not None and int(self.complete.get("num_steps") or 0) == schedule.num_steps


def _resume_checks(run_dir: str, config: str, seed: int, schedule: Schedule, resume: bool) -> _Prior:
    """The run directory can take this run: not a file, free or (with `resume`) holding this
    very run (config and seed), neither complete at nor checkpointed past more steps than the
    schedule's. RunDirError or RunMismatchError otherwise; nothing is touched."""
    if os.path.exists(run_dir) and not os.path.isdir(run_dir):
        raise RunDirError(f"run directory {run_dir} is a file, not a directory")
    problem = directory_problem(run_dir, "run directory")
    if problem:
        raise RunDirError(problem)
    ckpt_path, complete_path = os.path.join(run_dir, CHECKPOINT), os.path.join(run_dir, COMPLETE)
    holds_run = os.path.exists(ckpt_path) or os.path.exists(complete_path)
    if holds_run and not resume:
        raise RunDirError(f"{run_dir} already holds a run; pass --resume to continue it or choose another --run_dir")
    prior = _Prior(identity.identity(config, seed), identity.recorded(run_dir) if resume else None)
    identity.check(run_dir, prior.recorded, prior.identity)  # config and seed, before anything is touched
    if resume and os.path.exists(complete_path):
        prior.complete = _read_summary(run_dir)
        reached = int(prior.complete.get("num_steps") or 0)
        if schedule.num_steps < reached:
            raise RunDirError(f"refusing to resume {run_dir}: it is complete at {reached} steps and "
                              f"Schedule.num_steps = {schedule.num_steps} is smaller (its evaluations past the "
                              f"new end would make the final score); nothing was changed (use another --run_dir)")
        if schedule.num_steps == reached:
            return prior
    if resume and os.path.exists(ckpt_path):
        prior.checkpoint = load_checkpoint(ckpt_path)  # refuses a file that would run code
        check_resume_step(run_dir, prior.checkpoint["step"], schedule)
    return prior


def _open_run(run_dir: str, exp: Experiment, seed: int, prior: _Prior):
    """The run's dataset, checked against the expected and the recorded data identity before
    anything is touched; then the run directory made (stale temps removed, the identity
    written where it was not, a complete run reopened to extend it)."""
    dataset = _expected_dataset(exp, seed)
    prior.identity["dataset_sha256"] = dataset.sha256
    prior.identity["dataset_identity"] = dataset.identity
    identity.check(run_dir, prior.recorded, prior.identity)  # the data, still before anything is touched
    os.makedirs(run_dir, exist_ok=True)
    remove_stale_temps(run_dir)  # left by a process killed while writing
    if (prior.recorded is None or not os.path.exists(os.path.join(run_dir, identity.IDENTITY))
            or not prior.recorded.get("dataset_identity")):  # recorded before identities: complete it
        identity.write(run_dir, prior.identity)
    if prior.complete is not None:  # a larger num_steps extends a complete run
        os.unlink(os.path.join(run_dir, COMPLETE))
    return dataset


def _summary_record(exp: Experiment, schedule: Schedule, seed: int, device: torch.device) -> dict:
    """summary.json as a run starts: the cell, the schedule, versions and machine."""
    return {"status": "running", "error": None, "task": exp.task, "bins": exp.bins,
            "level": exp.level, "method": exp.method, "algo": exp.algo, "scale": exp.scale,
            "seed": seed, "device": str(device), "num_steps": schedule.num_steps,
            "final_k": schedule.final_k, "versions": provenance.package_versions(),
            "git_commit": provenance.git_commit(),
            "spin_bench_version": provenance.package_versions()["spin_bench"],
            "machine": provenance.machine(), "method_display": vocab.method_spec(exp.method).display()}


def _dataset_record(exp: Experiment, dataset, ref: Optional[ReferenceReturns]) -> dict:
    """The summary's record of the data the run trained on and its reference returns."""
    return {"dataset_id": dataset.attrs.get("dataset_id"), "dataset_sha256": dataset.sha256,
            "dataset_identity": dataset.identity,
            "dataset_level": dataset.attrs.get("level"), "dataset_source": exp.dataset_source,
            "dataset_path": str(dataset.path), "num_transitions": int(dataset.num_transitions),
            "reference": None if ref is None else {"expert": ref.expert, "random": ref.random,
                                                   "source": ref.source}}


def _train_recorded(run_dir: str, exp: Experiment, schedule: Schedule, seed: int, device: torch.device,
                    dataset, summary: dict, resume: bool, checkpoint: Optional[dict]) -> dict:
    """The training itself ((ASM pre-training,) model, evaluator, loop), its outcome recorded
    in summary.json whatever it is: complete (then COMPLETE), interrupted or failed (re-raised);
    operative_config.gin written last."""
    evaluator = None
    try:
        data = dataset.to_torch(device)
        obs_dim = dataset.observations.shape[1]
        bins = _bins(exp, dataset)
        ref = _reference(exp, dataset)
        summary.update(_dataset_record(exp, dataset, ref))
        asm_ckpt, pretrain_time = None, 0.0
        if exp.needs_asm:
            from spin_bench.train.pretraining import summary_record

            asm_ckpt = _pretrain(exp, data, bins, seed, device, dataset, run_dir=run_dir)
            pretrain_time = float(asm_ckpt.pretrain_seconds)
            summary["asm"] = {**summary_record(asm_ckpt), "seed": exp.pretrain_seed(seed)}
        torch.manual_seed(seed)  # model init independent of whether pre-training was cached
        algo = build_algorithm(exp.method, exp.algo, obs_dim, bins, asm_ckpt).to(device)
        evaluator = Evaluator(exp.task, bins, schedule.eval_episodes, seed, device,
                              max_steps=schedule.eval_max_steps, num_workers=exp.eval_workers)
        rows = train(algo, data, evaluator, run_dir, schedule, seed, device,
                     normalise=ref.normalise if ref else None, pretrain_time_s=pretrain_time,
                     resume=resume, checkpoint=checkpoint)
        final = final_score([r["return_mean"] for r in rows], schedule.final_k)
        summary.update({
            "status": "complete", "pretrain_time_s": pretrain_time,
            "train_time_s": rows[-1]["train_time_s"], "eval_time_s": rows[-1]["eval_time_s"],
            "final_return": final, "best_return": max(r["return_mean"] for r in rows),
            "final_normalized_score": ref.normalise(final) if ref else None,
            "num_evaluations": len(rows)})
        atomic_write_json(os.path.join(run_dir, SUMMARY), summary)
        atomic_write_text(os.path.join(run_dir, COMPLETE), time.strftime("%Y-%m-%dT%H:%M:%S") + "\n")
        return summary
    except KeyboardInterrupt as e:  # SIGINT, or SIGTERM turned into RunInterrupted by the CLI
        summary.update({"status": "interrupted", "error": f"interrupted ({e or 'SIGINT'}); resume with --resume"})
        atomic_write_json(os.path.join(run_dir, SUMMARY), summary)
        raise
    except Exception as e:  # NumericalError included: recorded, then re-raised
        summary.update({"status": "failed", "error": f"{type(e).__name__}: {e}"})
        atomic_write_json(os.path.join(run_dir, SUMMARY), summary)
        raise
    finally:
        atomic_write_text(os.path.join(run_dir, OPERATIVE_CONFIG), gin.operative_config_str())
        if evaluator is not None:
            evaluator.close()
