"""Where a sweep's jobs run: each job is one ``python -m spin_bench.run`` subprocess (through
``spin_bench.sweeps.launch``), started by a worker.

* ``local``: a ``concurrent.futures.ThreadPoolExecutor`` of N workers; each worker thread
  starts one run subprocess at a time and waits for it (the work is in the subprocesses,
  one torch thread each: OMP_NUM_THREADS=1 etc.).
* ``ray``: one Ray task per job with ``num_cpus``/``num_gpus`` per run, on an existing cluster
  (``--ray_address``) or a local instance.  Ray is optional and imported lazily.  On a cluster
  every node needs spin_bench installed and the sweep directory (and data store) on a shared
  filesystem; the node's CUDA_VISIBLE_DEVICES (set by Ray) reaches the run.

Both return ``concurrent.futures.Future`` objects resolving to ``execute_job``'s result.
"""
from __future__ import annotations

import concurrent.futures
import os
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time
from typing import Optional

from spin_bench.atomic import UnsafePathError, atomic_write_text, open_append

ONE_THREAD_ENV = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
                  "NUMEXPR_NUM_THREADS": "1", "VECLIB_MAXIMUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
TAIL_LINES = 60

_procs_lock = threading.Lock()
_procs: set = set()


def run_args(payload: dict, config_root: Optional[str] = None) -> list:
    """The ``spin_bench.run`` arguments of a job payload (the gin file resolved in this node's
    configuration tree, ``layout.CONFIG_ROOT``)."""
    from spin_bench.layout import CONFIG_ROOT

    args = [f"--gin_file={os.path.join(config_root or CONFIG_ROOT, payload['gin_file'])}",
            *[f"--gin_bindings={b}" for b in payload["bindings"]],
            f"--seed={payload['seed']}", f"--device={payload['device']}"]
    if payload["prepare_only"]:
        args.append("--prepare_only")
    else:
        args += [f"--run_dir={payload['run_dir']}", "--resume"]
    return args


def _tail(path: str, start: int) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(start)
            text = f.read().decode("utf-8", "replace")
    except OSError:
        return ""
    lines = text.splitlines()[-TAIL_LINES:]
    return "\n".join(lines)[-12000:]


def describe_returncode(rc: int) -> str:
    if rc < 0:
        try:
            return f"killed by {signal.Signals(-rc).name}"
        except ValueError:
            return f"killed by signal {-rc}"
    return f"exit status {rc}"


def execute_job(payload: dict) -> dict:
    """Run one job to the end (on this node); never raises for a failing run.

    The subprocess's stdout+stderr are appended to payload['log']; on failure its tail goes to
    payload['error_log'] (if given), which a later success removes."""
    from spin_bench.layout import PACKAGE_DIR

    import_root = os.path.dirname(PACKAGE_DIR)  # the run imports this same spin_bench
    cwd = payload.get("cwd")
    if not cwd or not os.path.isdir(cwd):
        cwd = os.getcwd()
    env = dict(os.environ, **ONE_THREAD_ENV)
    env["PYTHONPATH"] = os.pathsep.join([import_root] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
    args = run_args(payload)
    cmd = [sys.executable, "-m", "spin_bench.sweeps.launch", f"--parent={os.getpid()}"]
    if payload.get("lock"):
        cmd.append(f"--lock={payload['lock']}")
    cmd += ["--", *args]
    log = payload["log"]
    os.makedirs(os.path.dirname(log), exist_ok=True)
    host = socket.gethostname()
    t0 = time.time()
    try:
        f = open_append(log, "job log")  # O_NOFOLLOW: never appends through a planted link
    except (UnsafePathError, OSError) as e:
        return {"returncode": 2, "elapsed_s": 0.0, "tail": f"spin_bench.sweep: error: {e}", "host": host}
    with f:
        header = (f"\n===== {time.strftime('%Y-%m-%d %H:%M:%S')} {payload['kind']} on {host}: "
                  f"python -m spin_bench.run {' '.join(shlex.quote(a) for a in args)}\n")
        f.write(header.encode())
        f.flush()
        start = f.tell()
        try:
            proc = subprocess.Popen(cmd, stdout=f, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    cwd=cwd, env=env)
        except OSError as e:
            return {"returncode": 127, "elapsed_s": 0.0, "tail": f"could not start: {e}", "host": host}
        with _procs_lock:
            _procs.add(proc)
        try:
            rc = proc.wait()
        finally:
            with _procs_lock:
                _procs.discard(proc)
    elapsed = time.time() - t0
    tail = _tail(log, start)
    error_log = payload.get("error_log")
    if error_log:
        if rc != 0:
            os.makedirs(os.path.dirname(error_log), exist_ok=True)
            atomic_write_text(error_log, f"{payload['kind']} failed ({describe_returncode(rc)}) on {host} at "
                                    f"{time.strftime('%Y-%m-%d %H:%M:%S')} after {elapsed:.1f}s\n"
                                    f"command: python -m spin_bench.run {' '.join(shlex.quote(a) for a in args)}\n"
                                    f"full log: {log}\n--- last lines ---\n{tail}\n")
        elif os.path.exists(error_log):
            os.unlink(error_log)
    return {"returncode": rc, "elapsed_s": elapsed, "tail": tail, "host": host}


def kill_local_jobs(sig: int = signal.SIGTERM) -> None:
    """Signal every run subprocess this process started."""
    with _procs_lock:
        procs = list(_procs)
    for p in procs:
        try:
            p.send_signal(sig)
        except OSError:
            pass


class LocalExecutor:
    name = "local"

    def __init__(self, workers: Optional[int] = None):
        self.workers = max(1, int(workers or os.cpu_count() or 1))
        self.pool = concurrent.futures.ThreadPoolExecutor(max_workers=self.workers,
                                                          thread_name_prefix="sweep-worker")

    def describe(self) -> str:
        return f"local executor, {self.workers} worker(s)"

    def submit(self, payload: dict) -> concurrent.futures.Future:
        return self.pool.submit(execute_job, payload)

    def shutdown(self, cancel: bool = False) -> None:
        if cancel:
            self.pool.shutdown(wait=False, cancel_futures=True)
            kill_local_jobs(signal.SIGTERM)
            deadline = time.time() + 10
            while time.time() < deadline:
                with _procs_lock:
                    if not _procs:
                        break
                time.sleep(0.1)
            kill_local_jobs(signal.SIGKILL)
        self.pool.shutdown(wait=True, cancel_futures=cancel)


RAY_NICENESS_ENV = "RAY_worker_niceness"  # Ray's own setting: the niceness its worker processes start with


class RayExecutor:
    name = "ray"

    def __init__(self, address: Optional[str] = None, workers: Optional[int] = None,
                 cpus_per_run: float = 1.0, gpus_per_run: float = 0.0):
        try:
            import ray
        except ImportError:
            raise RuntimeError("--executor=ray needs the optional `ray` package "
                               "(pip install 'spin_bench[ray]'), or use --executor=local") from None
        self.ray = ray
        self.owns = False
        if not ray.is_initialized():
            if address:
                ray.init(address=address, log_to_driver=False)
            else:
                # Ray starts its workers at nice 15 (RAY_worker_niceness); runs are the whole
                # point of this local instance, and beside any other process on the machine
                # (another sweep, a build) nice 15 made them ~10x slower. An explicit setting wins.
                os.environ.setdefault(RAY_NICENESS_ENV, "0")
                ray.init(num_cpus=workers or None, include_dashboard=False, log_to_driver=False)
            self.owns = True
        self.cpus_per_run, self.gpus_per_run = float(cpus_per_run), float(gpus_per_run)
        self.remote = ray.remote(execute_job).options(num_cpus=self.cpus_per_run, num_gpus=self.gpus_per_run,
                                                      max_retries=0)
        self.refs: list = []

    def describe(self) -> str:
        res = self.ray.cluster_resources()
        return (f"ray executor ({int(res.get('CPU', 0))} CPUs, {int(res.get('GPU', 0))} GPUs in the cluster; "
                f"{self.cpus_per_run:g} CPU(s) and {self.gpus_per_run:g} GPU(s) per run)")

    def submit(self, payload: dict) -> concurrent.futures.Future:
        ref = self.remote.remote(payload)
        self.refs.append(ref)
        return ref.future()

    def shutdown(self, cancel: bool = False) -> None:
        if cancel:
            for ref in self.refs:
                try:
                    self.ray.cancel(ref, force=True)
                except Exception:  # noqa: BLE001 - already finished
                    pass
        if self.owns:
            self.ray.shutdown()


def make_executor(kind: str, workers: Optional[int] = None, ray_address: Optional[str] = None,
                  cpus_per_run: float = 1.0, gpus_per_run: float = 0.0):
    if kind == "local":
        return LocalExecutor(workers)
    if kind == "ray":
        return RayExecutor(ray_address, workers, cpus_per_run, gpus_per_run)
    raise ValueError(f"unknown executor {kind!r} (local or ray)")
