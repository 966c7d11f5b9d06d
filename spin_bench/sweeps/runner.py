"""Run a sweep: plan, shared inputs first, runs, status, report.

Re-launching is always safe: runs with a COMPLETE marker are skipped, runs with a checkpoint
are resumed (every run is started with ``--resume``), the rest start.  A sweep directory is
locked while a sweep runs in it, and every run directory while its process runs.

Shared inputs: before the runs that need them, ``python -m spin_bench.run --prepare_only`` makes
a dataset (generated on first use) once per distinct dataset, and SPIN's cached ASM
pre-training once per distinct (dataset, seed, ASM config), so concurrent runs never make the
same input twice.  ``prepare='auto'`` (default) starts such a job only where two or more
pending runs share the input (a single consumer makes it itself, sparing a process start);
``'always'`` starts one per distinct input; ``'never'`` none.

Each job's output is appended to a log (``<run_dir>/run.log``, ``<sweep_dir>/prepare/*.log``);
a failure writes the tail to ``<run_dir>/error.log`` and to ``sweep_status.json`` and does not
stop the sweep (runs whose prepare job failed are marked failed too).
"""
from __future__ import annotations

import concurrent.futures
import dataclasses
import glob
import importlib.util
import os
import signal
import subprocess
import sys
import threading
import time
from typing import Callable, Dict, List, Optional, Sequence

from spin_bench.atomic import UnsafePathError, atomic_write_bytes, atomic_write_json, atomic_write_text, try_lock
from spin_bench.cli import directory_problem, path_problem
from spin_bench.configs import error_line as configs_error_line
from spin_bench.safe_load import MAX_CSV_BYTES, read_bytes
from spin_bench.rundir import COMPLETE
from spin_bench.sweeps.executors import describe_returncode, make_executor
from spin_bench.sweeps.launch import BUSY
from spin_bench.sweeps.spec import (ARCHIVE_FILES, RUN_INFO, RUNS_SUBDIR, RunSpec, Sweep, SweepError, load_sweep,
                                    plan_runs, split_bindings)

STATUS_FILE = "sweep_status.json"
LOCK_FILE = ".sweep.lock"
RUN_LOG, ERROR_LOG, RUN_LOCK = "run.log", "error.log", ".run.lock"
PREPARE_MODES = ("auto", "always", "never")
MAX_ARCHIVE_FILE_BYTES = MAX_CSV_BYTES  # the largest small file a run has (metrics.csv)


@dataclasses.dataclass
class Job:
    key: str
    kind: str  # "prepare" or "run"
    label: str
    payload: dict
    deps: tuple = ()
    run: Optional[RunSpec] = None
    consumers: int = 0


def _payload(run: RunSpec, device: str, prepare_only: bool, log: str, error_log: Optional[str],
             lock: Optional[str]) -> dict:
    return {"kind": "prepare" if prepare_only else "run", "gin_file": run.gin_file, "bindings": list(run.bindings),
            "seed": run.seed, "device": device, "prepare_only": prepare_only,
            "run_dir": None if prepare_only else run.run_dir, "log": log, "error_log": error_log,
            "lock": lock, "cwd": os.getcwd()}


def build_jobs(runs: Sequence[RunSpec], sweep_dir: str, device: str = "auto", prepare: str = "auto") -> List[Job]:
    """Jobs for the given (pending) runs: prepare jobs first, each run depending on its inputs."""
    if prepare not in PREPARE_MODES:
        raise ValueError(f"prepare must be one of {PREPARE_MODES}, got {prepare!r}")
    prep_dir = os.path.join(sweep_dir, "prepare")
    by_dataset: Dict[str, List[RunSpec]] = {}
    by_asm: Dict[str, List[RunSpec]] = {}
    for r in runs:
        by_dataset.setdefault(r.dataset_key, []).append(r)
        if r.asm_key is not None:
            by_asm.setdefault(r.asm_key, []).append(r)

    jobs: List[Job] = []
    dataset_job: Dict[str, str] = {}
    asm_job: Dict[str, str] = {}
    for dkey, users in by_dataset.items():
        generated = users[0].dataset_path is None
        if prepare == "never" or (prepare == "auto" and (len(users) < 2 or not generated)):
            continue
        rep = next((u for u in users if u.asm_key is None), users[0])  # prefer a run that needs no ASM
        key = f"prepare-dataset-{dkey}"
        log = os.path.join(prep_dir, f"{key}.log")
        what = f"dataset {rep.task} {rep.level}" + (" + ASM seed %d" % rep.seed if rep.asm_key else "")
        jobs.append(Job(key, "prepare", what, _payload(rep, device, True, log, log[:-4] + ".error.log", None),
                        consumers=len(users)))
        dataset_job[dkey] = key
        if rep.asm_key is not None:
            asm_job[rep.asm_key] = key
    for akey, users in by_asm.items():
        if akey in asm_job or prepare == "never" or (prepare == "auto" and len(users) < 2):
            continue
        rep = users[0]
        key = f"prepare-asm-{akey}"
        log = os.path.join(prep_dir, f"{key}.log")
        deps = (dataset_job[rep.dataset_key],) if rep.dataset_key in dataset_job else ()
        jobs.append(Job(key, "prepare", f"ASM pre-training {rep.task} {rep.level} seed {rep.seed}",
                        _payload(rep, device, True, log, log[:-4] + ".error.log", None), deps, consumers=len(users)))
        asm_job[akey] = key
    for r in runs:
        deps = []
        if r.asm_key is not None and r.asm_key in asm_job:
            deps.append(asm_job[r.asm_key])
        elif r.dataset_key in dataset_job:
            deps.append(dataset_job[r.dataset_key])
        payload = _payload(r, device, False, os.path.join(r.run_dir, RUN_LOG), os.path.join(r.run_dir, ERROR_LOG),
                           os.path.join(r.run_dir, RUN_LOCK))
        jobs.append(Job(f"run-{r.name}", "run", r.name, payload, tuple(deps), run=r))
    return jobs


# ----------------------------------------------------------------------------- status
class Status:
    """sweep_status.json: one entry per run and per prepare job, rewritten atomically."""

    def __init__(self, path: str, sweep: Sweep, executor: str, runs: Sequence[RunSpec]):
        self.path = path
        self.doc = {"sweep": sweep.to_dict(), "executor": executor, "pid": os.getpid(),
                    "started_at": _now(), "updated_at": _now(), "finished": False, "interrupted": False,
                    "counts": {}, "runs": {}, "prepare": {}}
        for r in runs:
            self.doc["runs"][r.name] = {"run_id": r.run_id, "run_dir": r.run_dir, "task": r.task, "level": r.level,
                                        "method": r.method, "algo": r.algo, "variant": r.variant, "seed": r.seed,
                                        "status": "pending", "resumed": False}

    def run(self, name: str, **kw) -> None:
        self.doc["runs"][name].update(kw)

    def prepare(self, key: str, **kw) -> None:
        self.doc["prepare"].setdefault(key, {}).update(kw)

    def counts(self) -> Dict[str, int]:
        out = {k: 0 for k in ("done", "skipped", "failed", "running", "pending")}
        for e in self.doc["runs"].values():
            out[e["status"]] = out.get(e["status"], 0) + 1
        return out

    def write(self, **kw) -> None:
        self.doc.update(kw)
        self.doc["updated_at"] = _now()
        self.doc["counts"] = self.counts()
        atomic_write_json(self.path, self.doc)


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S")


# ----------------------------------------------------------------------------- locking
class _SweepLock:
    def __init__(self, sweep_dir: str):
        self.path = os.path.join(sweep_dir, LOCK_FILE)
        self.fd = None

    def __enter__(self):
        try:
            self.fd = try_lock(self.path)  # never through a link planted at the lock's name
        except (UnsafePathError, OSError) as e:
            raise SweepError(configs_error_line(e)) from None
        if self.fd is None:
            try:
                other = read_bytes(self.path, "sweep lock", 4096, follow_symlinks=False)[:64].decode(
                    "utf-8", "replace").strip()
            except ValueError:
                other = ""
            raise SweepError(f"another sweep is running in {os.path.dirname(self.path)} (pid {other or '?'}); "
                             f"wait for it or stop it first") from None
        os.ftruncate(self.fd, 0)
        os.pwrite(self.fd, f"{os.getpid()}\n".encode(), 0)
        return self

    def __exit__(self, *exc):
        os.close(self.fd)


# ----------------------------------------------------------------------------- the sweep
@dataclasses.dataclass
class SweepResult:
    sweep: Sweep
    runs: List[RunSpec]
    counts: Dict[str, int]
    failed: List[str]
    status_path: Optional[str]
    exit_code: int


def archive_run(run: RunSpec, archive_dir: str, log: Callable[[str], None] = print) -> bool:
    """Copy a finished run's small files (``ARCHIVE_FILES``: summaries, metrics, configs; never
    checkpoints) to ``archive_dir/<run name>/``, each file atomically and summary.json last, so
    a half-copied run is never taken for a finished one.  False if the run is not complete.

    The archive is a folder users commit: a file in the run directory that is a symbolic link
    (or a FIFO, a device, an oversized file) is skipped with a warning, never its target
    copied; a link planted at ``archive_dir/<run name>`` makes the run not archived (warning);
    files in the archive are replaced by rename, never written through."""
    src = run.run_dir
    if not os.path.isfile(os.path.join(src, COMPLETE)) or os.path.islink(src):
        return False
    dst = os.path.join(archive_dir, run.name)
    if os.path.islink(dst) or (os.path.exists(dst) and not os.path.isdir(dst)):
        log(f"warning: not archiving {run.name}: {dst} is a symbolic link or not a directory; remove it")
        return False
    os.makedirs(dst, exist_ok=True)
    for name in ARCHIVE_FILES:
        path = os.path.join(src, name)
        if not os.path.lexists(path):
            continue
        try:
            data = read_bytes(path, f"run file {name}", MAX_ARCHIVE_FILE_BYTES, follow_symlinks=False)
        except ValueError as e:  # UnreadableFileError: a link, a FIFO, a device, too large
            log(f"warning: archiving {run.name}: skipped {name}: {configs_error_line(e)}")
            continue
        try:
            atomic_write_bytes(os.path.join(dst, name), data)  # a rename: replaces a link, never follows it
        except OSError as e:  # e.g. a directory planted at the file's name
            log(f"warning: not archiving {run.name}: cannot write {os.path.join(dst, name)} ({e.strerror})")
            return False
    return True


def dry_run_listing(sweep: Sweep, runs: Sequence[RunSpec], sweep_dir: str, jobs: Sequence[Job],
                    archive_dir: Optional[str] = None) -> str:
    state_word = {"complete": "skip", "partial": "resume", "new": "new"}
    lines = [f"sweep {sweep.name}: {sweep.describe()} -> {os.path.join(sweep_dir, RUNS_SUBDIR)}"]
    states = {"complete": 0, "partial": 0, "new": 0}
    for r in runs:
        st = r.state(archive_dir)
        states[st] += 1
        extra = f" [{len(r.bindings)} extra binding(s)]" if r.bindings else ""
        lines.append(f"  {state_word[st]:<6} {r.run_dir}  seed={r.seed}  {r.gin_file}{extra}")
    for j in jobs:
        if j.kind == "prepare":
            lines.append(f"  prepare: {j.label} (shared by {j.consumers} runs)")
    lines.append(f"{len(runs)} runs: {states['new']} new, {states['partial']} to resume, "
                 f"{states['complete']} complete (skipped); {sum(j.kind == 'prepare' for j in jobs)} prepare job(s)")
    return "\n".join(lines)


def run_sweep(gin_files: Sequence[str], sweep_dir: str, bindings: Sequence[str] = (), executor: str = "local",
              workers: Optional[int] = None, ray_address: Optional[str] = None, cpus_per_run: float = 1.0,
              gpus_per_run: float = 0.0, device: str = "auto", dry_run: bool = False, report: bool = True,
              report_args: Sequence[str] = ("--quiet",), prepare: str = "auto", log: Callable[[str], None] = print,
              archive_dir: Optional[str] = None) -> SweepResult:
    """The whole sweep (see the module docstring).  Raises SweepError for an invalid sweep
    before any work; failing runs are recorded, not raised.  With ``archive_dir``, runs whose
    small files are there count as complete, and every run that finishes is copied there."""
    if executor not in ("local", "ray"):
        raise SweepError(f"--executor must be local or ray, got {executor!r}")
    if prepare not in PREPARE_MODES:
        raise SweepError(f"--prepare must be one of {', '.join(PREPARE_MODES)}, got {prepare!r}")
    if workers is not None and workers < 1:
        raise SweepError(f"--workers must be >= 1, got {workers}")
    if cpus_per_run < 0 or gpus_per_run < 0:
        raise SweepError("--cpus_per_run and --gpus_per_run must be >= 0")
    if device not in ("auto", "cpu", "cuda"):
        raise SweepError(f"--device must be auto, cpu or cuda, got {device!r}")
    if executor == "local":  # ray runs on the cluster's nodes: their devices are checked there
        from spin_bench.train.experiment import resolve_device
        try:
            resolve_device(device)
        except ValueError as e:
            raise SweepError(str(e)) from None
    problem = directory_problem(sweep_dir, "--sweep_dir")
    if problem:
        raise SweepError(problem)
    sweep_dir = os.path.abspath(sweep_dir)
    for name, want_dir in ((RUNS_SUBDIR, True), ("prepare", True), ("report", True), (STATUS_FILE, False)):
        path = os.path.join(sweep_dir, name)  # what the sweep makes there, checked before any work
        if os.path.lexists(path) and os.path.isdir(path) != want_dir:
            raise SweepError(f"--sweep_dir {sweep_dir}: {name} is {'not a directory' if want_dir else 'a directory'}; "
                             f"remove it (the sweep writes its {'folder' if want_dir else 'status file'} there)")
    sweep_bindings, run_bindings = split_bindings(bindings)
    sweep = load_sweep(gin_files, sweep_bindings)
    if archive_dir is not None:
        problem = path_problem(archive_dir, "--archive_dir")
        if problem:
            raise SweepError(problem)
        archive_dir = os.path.abspath(archive_dir)
        if os.path.exists(archive_dir) and not os.path.isdir(archive_dir):
            raise SweepError(f"--archive_dir {archive_dir} exists and is not a directory")
    unavailable: list = []
    runs = plan_runs(sweep, sweep_dir, run_bindings, unavailable=unavailable)
    states = {r.name: r.state(archive_dir) for r in runs}
    pending = [r for r in runs if states[r.name] != "complete"]
    # cells whose data cannot be obtained matter only for runs still to do
    no_data = [(cell, [n for n in names if states[n] != "complete"], msg) for cell, names, msg in unavailable]
    no_data = [(cell, names, msg) for cell, names, msg in no_data if names]
    if no_data and not dry_run:
        raise SweepError(f"sweep {sweep.name}: no data for {sum(len(n) for _, n, _ in no_data)} run(s) in "
                         f"{len(no_data)} cell(s) ({', '.join(c for c, _, _ in no_data)}); first: {no_data[0][2]}")
    jobs = build_jobs(pending, sweep_dir, device, prepare)
    if dry_run:
        log(dry_run_listing(sweep, runs, sweep_dir, jobs, archive_dir))
        if no_data:
            for cell, names, msg in no_data:
                log(f"  NO DATA for {len(names)} run(s): {msg}")
            raise SweepError(f"sweep {sweep.name}: no data for {sum(len(n) for _, n, _ in no_data)} of the "
                             f"{len(runs)} planned runs ({', '.join(c for c, _, _ in no_data)}): they would "
                             f"fail; the NO DATA lines above say how to get it")
        counts = {"new": sum(s == "new" for s in states.values()),
                  "resume": sum(s == "partial" for s in states.values()),
                  "skipped": sum(s == "complete" for s in states.values())}
        return SweepResult(sweep, runs, counts, [], None, 0)

    if executor == "local" and gpus_per_run:
        log("note: --gpus_per_run is for --executor=ray; local runs see every GPU (--device picks)")
    os.makedirs(os.path.join(sweep_dir, RUNS_SUBDIR), exist_ok=True)
    with _SweepLock(sweep_dir):
        status = Status(os.path.join(sweep_dir, STATUS_FILE), sweep, executor, runs)
        for r in runs:
            if states[r.name] == "complete":
                status.run(r.name, status="skipped")
            elif states[r.name] == "partial":
                status.run(r.name, resumed=True)
        status.write()
        if archive_dir is not None:  # finished here before, not yet archived (e.g. archiving was off)
            n = sum(archive_run(r, archive_dir, log) for r in runs if states[r.name] == "complete"
                    and not r.archived(archive_dir))
            if n:
                log(f"archived {n} finished run(s) to {archive_dir}")
        log(f"sweep {sweep.name}: {sweep.describe()}; {len(runs) - len(pending)} complete (skipped), "
            f"{sum(s == 'partial' for s in states.values())} to resume, {sum(s == 'new' for s in states.values())} new"
            + (f"; {sum(j.kind == 'prepare' for j in jobs)} prepare job(s)" if jobs else ""))
        interrupted = False
        if jobs:
            try:
                ex = make_executor(executor, workers, ray_address, cpus_per_run, gpus_per_run)
            except RuntimeError as e:
                raise SweepError(str(e)) from None
            log(f"sweep {sweep.name}: {ex.describe()}")
            interrupted = _execute(jobs, ex, status, log, archive_dir)
        counts = status.counts()
        failed = [n for n, e in status.doc["runs"].items() if e["status"] == "failed"]
        status.write(finished=not interrupted, interrupted=interrupted)
    log(f"sweep {sweep.name}: {len(runs)} runs: {counts['done']} done, {counts['skipped']} skipped "
        f"(already complete), {counts['failed']} failed" + (", interrupted" if interrupted else "")
        + f" (status: {status.path})")
    for n in failed:
        e = status.doc["runs"][n]
        log(f"  failed: {n}: {e.get('error')} (see {os.path.join(e['run_dir'], ERROR_LOG)})")
    if report and not interrupted and counts["done"] + counts["skipped"] > 0:
        make_report(sweep_dir, runs, log, report_args)
    code = 130 if interrupted else (1 if failed else 0)
    return SweepResult(sweep, runs, counts, failed, status.path, code)


class _Interrupt(Exception):
    pass


def _execute(jobs: Sequence[Job], ex, status: Status, log, archive_dir: Optional[str] = None) -> bool:
    """Submit jobs as their prerequisites finish; record each result. True if interrupted."""
    waiting = {j.key: j for j in jobs}
    ok: set = set()
    bad: Dict[str, str] = {}
    running: Dict[concurrent.futures.Future, Job] = {}
    total_runs = sum(j.kind == "run" for j in jobs)
    finished_runs = 0

    old_term = None
    if threading.current_thread() is threading.main_thread():
        def _on_term(signum, frame):
            raise _Interrupt(signal.Signals(signum).name)
        old_term = signal.signal(signal.SIGTERM, _on_term)
    try:
        while waiting or running:
            for key in list(waiting):
                j = waiting[key]
                failed_dep = next((d for d in j.deps if d in bad), None)
                if failed_dep is not None:
                    del waiting[key]
                    bad[key] = f"prerequisite {failed_dep} failed: {bad[failed_dep]}"
                    finished_runs += _record_failure(j, bad[key], None, status, log, finished_runs, total_runs)
                elif all(d in ok for d in j.deps):
                    del waiting[key]
                    if j.run is not None and (os.path.islink(j.run.run_dir) or (
                            os.path.lexists(j.run.run_dir) and not os.path.isdir(j.run.run_dir))):
                        # never run through a planted link (or into a file planted at the run's place)
                        bad[key] = (f"{j.run.run_dir} is a symbolic link or not a directory; remove it "
                                    f"(nothing was written through it)")
                        finished_runs += _record_failure(j, bad[key], None, status, log, finished_runs, total_runs,
                                                         write_error_log=False)
                        continue
                    os.makedirs(os.path.dirname(j.payload["log"]), exist_ok=True)
                    if j.run is not None:
                        _write_run_info(j.run)
                        status.run(j.run.name, status="running", started_at=_now())
                    else:
                        status.prepare(j.key, label=j.label, status="running", log=j.payload["log"])
                    running[ex.submit(j.payload)] = j
            status.write()
            if not running:
                break
            done, _ = concurrent.futures.wait(running, return_when=concurrent.futures.FIRST_COMPLETED)
            for fut in done:
                j = running.pop(fut)
                try:
                    res = fut.result()
                except Exception as e:  # noqa: BLE001 - the executor itself failed (e.g. a Ray worker died)
                    res = {"returncode": 1, "elapsed_s": None, "tail": f"{type(e).__name__}: {e}", "host": None,
                           "executor_error": True}
                rc = res["returncode"]
                if rc == 0:
                    ok.add(j.key)
                    if j.run is not None:
                        finished_runs += 1
                        status.run(j.run.name, status="done", returncode=0, error=None, elapsed_s=res["elapsed_s"],
                                   host=res["host"], finished_at=_now())
                        log(f"[{finished_runs}/{total_runs}] done    {j.label} ({res['elapsed_s']:.0f}s)")
                        if archive_dir is not None and archive_run(j.run, archive_dir, log):
                            log(f"archived {j.label} to {archive_dir}")
                    else:
                        status.prepare(j.key, status="done", returncode=0, elapsed_s=res["elapsed_s"])
                        log(f"prepared {j.label} ({res['elapsed_s']:.0f}s)")
                else:
                    reason = ("another process is running this run directory" if rc == BUSY
                              else describe_returncode(rc))
                    detail = _last_error_line(res.get("tail", "")) if rc > 0 else ""
                    bad[j.key] = reason + (f" ({detail})" if detail else "")
                    finished_runs += _record_failure(j, reason, res, status, log, finished_runs, total_runs)
            status.write()
    except (KeyboardInterrupt, _Interrupt) as e:
        log(f"interrupted ({e or 'SIGINT'}): stopping the running jobs ({len(running)} submitted); re-launch the "
            f"same command to resume")
        for j in running.values():
            if j.run is not None:
                status.run(j.run.name, status="pending")
        ex.shutdown(cancel=True)
        status.write(interrupted=True)
        return True
    finally:
        if old_term is not None:
            signal.signal(signal.SIGTERM, old_term)
    ex.shutdown()
    return False


def _last_error_line(tail: str) -> str:
    for line in reversed((tail or "").splitlines()):
        line = line.strip()
        if line and not line.startswith(("File ", "^", "~")):
            return line[:300]
    return ""


def _record_failure(j: Job, reason: str, res: Optional[dict], status: Status, log, finished: int, total: int,
                    write_error_log: bool = True) -> int:
    tail = (res or {}).get("tail") or ""
    detail = _last_error_line(tail) if (res or {}).get("returncode", 1) > 0 else ""  # not for a killed run
    error = reason + (f": {detail}" if detail else "")
    if j.run is None:
        status.prepare(j.key, label=j.label, status="failed", returncode=(res or {}).get("returncode"),
                       error=error, tail=tail[-4000:])
        log(f"FAILED  prepare {j.label}: {error} (log: {j.payload['log']})")
        return 0
    if write_error_log and (res is None or res.get("executor_error")):  # the worker wrote none: write it here
        os.makedirs(j.run.run_dir, exist_ok=True)
        atomic_write_text(os.path.join(j.run.run_dir, ERROR_LOG),  # a rename: never through a link
                          f"not started at {_now()}: {reason}\n" if res is None
                          else f"the executor failed at {_now()}: {tail}\n")
    status.run(j.run.name, status="failed", returncode=(res or {}).get("returncode"), error=error,
               elapsed_s=(res or {}).get("elapsed_s"), host=(res or {}).get("host"), stderr_tail=tail[-4000:],
               finished_at=_now())
    log(f"[{finished + 1}/{total}] FAILED  {j.label}: {error}")
    return 1


def _write_run_info(run: RunSpec) -> None:
    """<run_dir>/sweep_run.json: the run's place in the sweep (variant, id, inputs)."""
    os.makedirs(run.run_dir, exist_ok=True)
    path = os.path.join(run.run_dir, RUN_INFO)
    if not os.path.exists(path):
        atomic_write_json(path, run.to_dict())


# ----------------------------------------------------------------------------- report
def make_report(sweep_dir: str, runs: Sequence[RunSpec], log=print, extra_args: Sequence[str] = ("--quiet",)) -> bool:
    """python -m spin_bench.report on the sweep's runs (one report per variant when the sweep
    has several, since the report groups runs by cell and seed). False if it could not run."""
    if importlib.util.find_spec("spin_bench.report") is None:
        log("report skipped: spin_bench.report is not available in this installation yet")
        return False
    runs_dir = os.path.join(sweep_dir, RUNS_SUBDIR)
    variants = sorted({r.variant for r in runs})
    targets = [(runs_dir, os.path.join(sweep_dir, "report"))]
    if len(variants) > 1:
        targets = [(os.path.join(runs_dir, f"*-{v}-s[0-9]*"), os.path.join(sweep_dir, "report", v)) for v in variants
                   if glob.glob(os.path.join(runs_dir, f"*-{v}-s[0-9]*"))]
    ok = True
    for src, out in targets:
        cmd = [sys.executable, "-m", "spin_bench.report", f"--results_dir={src}", f"--out={out}", *extra_args]
        res = subprocess.run(cmd, capture_output=True, text=True)
        if res.returncode == 0:
            log(f"report: {out}")
        else:
            ok = False
            msg = (res.stderr.strip().splitlines() or ["(no output)"])[-1]
            log(f"report skipped for {src}: spin_bench.report exited {res.returncode}: {msg}")
    return ok


__all__ = ["Job", "Status", "SweepResult", "build_jobs", "dry_run_listing", "make_report", "run_sweep",
           "STATUS_FILE", "ERROR_LOG", "RUN_LOG"]
