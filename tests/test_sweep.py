"""Sweeps: the shipped paper grids expand as intended, run ids are stable and config-derived,
--dry_run does no work, shared inputs are planned once, and at the smoke scale (2 methods x 2
seeds) a local sweep survives a killed run, resumes it on re-launch and then skips everything;
the same sweep on a real local Ray instance gives the same run set."""
import fcntl
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from spin_bench.sweeps import RUNS_SUBDIR, STATUS_FILE, SweepError, build_jobs, load_sweep, plan_runs, run_sweep
from spin_bench.sweeps.launch import BUSY
from spin_bench.sweeps.executors import RAY_NICENESS_ENV

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SWEEPS = os.path.join(REPO, "gin", "sweeps")
SMOKE = os.path.join(SWEEPS, "smoke.gin")
# 100 steps (5 evaluations) instead of 60 so a run spends a few seconds between its first
# checkpoint and COMPLETE: room to kill it mid-run.
LONGER = ["Schedule.num_steps = 100"]


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    """A ~4000-transition cheetah-run dataset of random actions and an ASM cache directory."""
    from spin_bench.data import write_dataset
    from spin_bench.envs import VectorEnv

    root = tmp_path_factory.mktemp("sweep_inputs")
    envs, steps = 4, 1000
    rng = np.random.default_rng(0)
    venv = VectorEnv("cheetah-run", 3, envs)
    obs = venv.reset(list(range(envs)))
    cols = {k: [] for k in ("observations", "actions", "rewards", "next_observations", "terminals", "timeouts")}
    for _ in range(steps):
        a = rng.integers(0, 3, (envs, 6))
        nxt, r, term, trunc = venv.step(a)
        for k, v in zip(cols, (obs, a, r, nxt, term, trunc)):
            cols[k].append(v)
        obs = nxt
    close = getattr(venv, "close", None)
    if close:
        close()
    arrays = {k: np.concatenate(np.stack(v, 1)) for k, v in cols.items()}
    path = root / "cheetah-run-medium.hdf5"
    write_dataset(str(path), arrays, {"task": "cheetah-run", "level": "medium", "bins": 3, "seed": 0})
    return [f"Experiment.dataset_path = '{path}'", f"Experiment.asm_cache_dir = '{root / 'asm'}'"]


# ----------------------------------------------------------------------------- planning
@pytest.mark.parametrize("name,count,algos", [
    ("table1", 320, ["iql"]), ("table2_dog_bins", 60, ["iql"]), ("appendix_awac", 320, ["awac"]),
    ("appendix_bcq", 320, ["bcq"]), ("ablation_pretrain_epochs", 50, ["iql"]), ("cpu", 36, ["iql"]),
    ("cpu_all_levels", 144, ["iql"]), ("cpu_tier", 75, ["iql"]),
    ("smoke", 4, ["iql"]), ("cpu_calibration", 4, ["iql"])])
def test_shipped_sweeps_expand_to_their_grids(tmp_path, name, count, algos):
    sweep = load_sweep([os.path.join(SWEEPS, f"{name}.gin")])
    assert sweep.name == name and sweep.num_runs == count and list(sweep.algos) == algos
    unavailable = []  # cells whose data cannot be obtained here (no shipped policies, nothing imported)
    runs = plan_runs(sweep, str(tmp_path), [f"Experiment.data_dir = '{tmp_path / 'data'}'"], unavailable=unavailable)
    assert len(runs) == count and len({r.run_id for r in runs}) == count and len({r.run_dir for r in runs}) == count
    lacking = {cell.split()[0] for cell, _, _ in unavailable}
    no_policies = ("humanoid", "dog", "fish")
    assert lacking == {t.split("-b")[0] for t in sweep.tasks if t.startswith(no_policies)}
    assert sum(len(n) for _, n, _ in unavailable) == sum(r.task.startswith(no_policies) for r in runs)
    if unavailable:  # without the list, planning refuses these sweeps up front
        with pytest.raises(SweepError, match="no data for"):
            plan_runs(sweep, str(tmp_path), [f"Experiment.data_dir = '{tmp_path / 'data'}'"])
    assert all(os.path.dirname(r.run_dir) == os.path.join(str(tmp_path), RUNS_SUBDIR) for r in runs)
    assert all(r.gin_file == f"gin/experiments/{sweep.scale}/{r.task}/{r.level}/{r.method}_{r.algo}.gin" for r in runs)
    if name in ("table1", "appendix_awac", "appendix_bcq"):
        assert sweep.scale == "paper" and len(sweep.seeds) == 5
        assert set(sweep.tasks) == {"cheetah-run", "finger-spin", "humanoid-stand", "quadruped-walk"}
        assert set(sweep.methods) == {"spin", "saint", "f", "ar"} and len(sweep.levels) == 4
    if name == "table2_dog_bins":
        assert set(sweep.tasks) == {"dog-trot", "dog-trot-b10", "dog-trot-b30"} and sweep.levels == ("medium-expert",)
    if name == "cpu_all_levels":  # its medium-expert runs are the cpu sweep's, so a cpu sweep dir is reused
        cpu = plan_runs(load_sweep([os.path.join(SWEEPS, "cpu.gin")]), str(tmp_path))
        assert {r.run_dir for r in cpu} < {r.run_dir for r in runs}
    if name == "ablation_pretrain_epochs":
        assert [b for _, b in sweep.variants] == [(f"pretrain_asm.epochs = {e}",) for e in (1, 5, 20, 50, 100)]
        assert all(f"-e{r.bindings[0].split('= ')[1]}-s{r.seed}-" in r.name for r in runs)
    if name == "cpu":
        assert sweep.scale == "cpu" and len(sweep.seeds) == 3 and len(sweep.tasks) == 3


def test_run_ids_are_stable_and_derived_from_config_and_seed(tmp_path, inputs):
    sweep = load_sweep([SMOKE])
    a = plan_runs(sweep, str(tmp_path), inputs)
    assert [r.run_id for r in a] == [r.run_id for r in plan_runs(sweep, str(tmp_path), inputs)]
    assert [r.name for r in a] == ["cheetah-run-medium-f_iql-s0-" + a[0].run_id[:8],
                                   "cheetah-run-medium-f_iql-s1-" + a[1].run_id[:8],
                                   "cheetah-run-medium-spin_iql-s0-" + a[2].run_id[:8],
                                   "cheetah-run-medium-spin_iql-s1-" + a[3].run_id[:8]]
    assert len({r.run_id for r in a}) == 4
    changed = plan_runs(sweep, str(tmp_path), inputs + ["Schedule.num_steps = 61"])
    assert not {r.run_id for r in changed} & {r.run_id for r in a}
    # locations only (the dataset store, the ASM cache) do not change what a run computes
    moved = plan_runs(sweep, str(tmp_path / "elsewhere"),
                      inputs + ["Experiment.asm_cache_dir = '/other/asm'", "Experiment.data_dir = '/other/data'"])
    assert [r.run_id for r in moved] == [r.run_id for r in a]
    # the spin runs share neither ASM key across seeds nor with the F runs
    assert a[0].asm_key is None and a[2].asm_key and a[2].asm_key != a[3].asm_key
    assert len({r.dataset_key for r in a}) == 1


def test_dry_run_lists_runs_and_does_no_work(tmp_path, inputs, capsys):
    from spin_bench.sweep import main

    out_dir = tmp_path / "sweep"
    rc = main([f"--gin_file={SMOKE}", f"--sweep_dir={out_dir}", "--dry_run",
               *[f"--gin_bindings={b}" for b in inputs]])
    out = capsys.readouterr().out
    assert rc == 0, out
    listed = [line.split()[1] for line in out.splitlines() if line.startswith("  new ")]
    expected = [r.run_dir for r in plan_runs(load_sweep([SMOKE]), str(out_dir), inputs)]
    assert listed == expected
    assert "4 runs: 4 new, 0 to resume, 0 complete" in out
    assert not out_dir.exists()


def test_sweep_errors_are_clear_and_early(tmp_path, capsys):
    from spin_bench.sweep import main

    cases = [([f"--gin_file={tmp_path / 'nope.gin'}"], "gin file not found"),
             ([f"--gin_file={SMOKE}", "--gin_bindings=Sweep.tasks=['humanoid-stand']"],
              "experiment file(s) missing, e.g. gin/experiments/smoke/humanoid-stand/medium/f_iql.gin"),
             ([f"--gin_file={SMOKE}", "--gin_bindings=Schedule.num_steps = 0"], "invalid run configuration"),
             ([f"--gin_file={SMOKE}", "--gin_bindings=Sweep.seeds = 0"], "Sweep.seeds must be >= 1")]
    for args, needle in cases:
        rc = main(args + [f"--sweep_dir={tmp_path / 's'}"])
        err = capsys.readouterr().err
        assert rc == 2 and needle in err and "Traceback" not in err, (args, err)
    assert not (tmp_path / "s").exists()


def test_shared_inputs_are_planned_once(tmp_path):
    store = [f"Experiment.data_dir = '{tmp_path}/data'", f"Experiment.asm_cache_dir = '{tmp_path}/asm'"]
    sweep = load_sweep([SMOKE], ["Sweep.algos = ['iql', 'awac']"])
    runs = plan_runs(sweep, str(tmp_path), store)
    jobs = build_jobs(runs, str(tmp_path), prepare="auto")
    prep = {j.key: j for j in jobs if j.kind == "prepare"}
    # one dataset job (made by an F run: no ASM), one ASM job per seed (shared by iql and awac)
    assert sorted(k.split("-")[1] for k in prep) == ["asm", "asm", "dataset"]
    dataset_job = next(k for k in prep if "dataset" in k)
    assert prep[dataset_job].payload["prepare_only"] and prep[dataset_job].consumers == 8
    for j in jobs:
        if j.kind == "prepare" and "asm" in j.key:
            assert j.deps == (dataset_job,) and j.consumers == 2
        if j.kind == "run":
            want = dataset_job if j.run.method == "f" else f"prepare-asm-{j.run.asm_key}"
            assert j.deps == (want,)
    assert not [j for j in build_jobs(runs, str(tmp_path), prepare="never") if j.kind == "prepare"]
    # a single-algorithm grid from a given file: nothing is shared, so auto starts no prepare job
    (tmp_path / "x.hdf5").touch()  # planning checks that the file is there
    single = plan_runs(load_sweep([SMOKE]), str(tmp_path), [f"Experiment.dataset_path = '{tmp_path}/x.hdf5'"])
    assert not [j for j in build_jobs(single, str(tmp_path)) if j.kind == "prepare"]
    assert len([j for j in build_jobs(single, str(tmp_path), prepare="always") if j.kind == "prepare"]) == 3


class _FakeExecutor:
    """Runs nothing: ASM pre-training for seed 1 fails, f_awac seed 0 raises in the executor."""

    def __init__(self):
        self.submitted = []

    def describe(self):
        return "fake executor"

    def submit(self, payload):
        import concurrent.futures

        self.submitted.append(payload)
        fut = concurrent.futures.Future()
        if payload["kind"] == "prepare" and payload["seed"] == 1:
            fut.set_result({"returncode": 1, "elapsed_s": 0.1, "tail": "Traceback\nValueError: boom", "host": "h"})
        elif payload["kind"] == "run" and "f_awac-s0-" in payload["run_dir"]:
            fut.set_exception(RuntimeError("worker died"))
        else:
            fut.set_result({"returncode": 0, "elapsed_s": 0.1, "tail": "", "host": "h"})
        return fut

    def shutdown(self, cancel=False):
        pass


def test_failures_are_isolated_and_recorded(tmp_path, monkeypatch):
    import spin_bench.sweeps.runner as runner

    fake = _FakeExecutor()
    monkeypatch.setattr(runner, "make_executor", lambda *a, **k: fake)
    store = [f"Experiment.data_dir = '{tmp_path}/data'", f"Experiment.asm_cache_dir = '{tmp_path}/asm'"]
    lines = []
    result = run_sweep([SMOKE], str(tmp_path / "sweep"), bindings=store + ["Sweep.algos = ['iql', 'awac']"],
                       report=False, log=lines.append)
    assert result.exit_code == 1
    status = _status(str(tmp_path / "sweep"))
    assert status["counts"] == {"done": 5, "failed": 3, "skipped": 0, "running": 0, "pending": 0}
    failed = {n: e for n, e in status["runs"].items() if e["status"] == "failed"}
    assert sorted(n.rsplit("-", 2)[0] for n in failed) == ["cheetah-run-medium-f_awac", "cheetah-run-medium-spin_awac",
                                                        "cheetah-run-medium-spin_iql"]
    for n, e in failed.items():
        assert os.path.exists(os.path.join(e["run_dir"], "error.log"))
        if "spin" in n:
            assert "prerequisite prepare-asm-" in e["error"] and "ValueError: boom" in e["error"]
            assert "-s1-" in n and "not started" in open(os.path.join(e["run_dir"], "error.log")).read()
        else:
            assert "RuntimeError: worker died" in e["error"]
    assert [p["status"] for p in status["prepare"].values()].count("failed") == 1
    assert len(fake.submitted) == 3 + 6  # 3 prepare jobs, 6 runs (the 2 whose input failed never start)
    assert any("FAILED  prepare ASM pre-training" in line for line in lines)
    assert any("5 done, 0 skipped (already complete), 3 failed" in line for line in lines)


def test_launcher_respects_the_run_lock_and_dies_with_its_worker(tmp_path):
    lock = tmp_path / ".run.lock"
    fd = os.open(lock, os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_EX)
    res = subprocess.run([sys.executable, "-m", "spin_bench.sweeps.launch", f"--lock={lock}", "--", "--help"],
                         capture_output=True, text=True, timeout=60)
    os.close(fd)
    assert res.returncode == BUSY and "another process is running" in res.stderr
    if not sys.platform.startswith("linux"):
        return
    # a worker that dies (SIGKILL) takes its run with it: no orphan keeps writing
    worker = subprocess.Popen([sys.executable, "-c", (
        "import os, subprocess, sys, time\n"
        "p = subprocess.Popen([sys.executable, '-m', 'spin_bench.sweeps.launch', f'--parent={os.getpid()}', '--',"
        f" '--gin_file={REPO}/gin/experiments/smoke/cheetah-run/medium/f_iql.gin', '--run_dir={tmp_path}/r',"
        " '--gin_bindings=Schedule.num_steps = 100000'], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)\n"
        "print(p.pid, flush=True)\n"
        "time.sleep(300)\n")], stdout=subprocess.PIPE, text=True)
    child = int(worker.stdout.readline())
    time.sleep(0.5)
    worker.kill()
    worker.wait()
    assert _wait_gone(child, 30), "the run outlived its killed worker"


def _alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def _wait_gone(pid, timeout):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if not _alive(pid):
            return True
        time.sleep(0.05)
    return False


# ----------------------------------------------------------------------------- executing
def _cli(sweep_dir, bindings, *extra):
    return [sys.executable, "-m", "spin_bench.sweep", f"--gin_file={SMOKE}", f"--sweep_dir={sweep_dir}",
            *[f"--gin_bindings={b}" for b in bindings], *extra]


def _run_pid(run_dir):
    """Pid of the `python -m spin_bench.run` process writing run_dir (Linux /proc)."""
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                argv = f.read().decode(errors="replace").split("\0")
        except OSError:
            continue
        if "spin_bench.run" in argv and f"--run_dir={run_dir}" in argv:
            return int(pid)
    return None


def _status(sweep_dir):
    with open(os.path.join(sweep_dir, STATUS_FILE)) as f:
        return json.load(f)


@pytest.fixture(scope="module")
def local_sweep(tmp_path_factory, inputs):
    """The smoke sweep on the local executor: launch 1 has one run SIGKILLed mid-run (after its
    first checkpoint), launch 2 resumes it, launch 3 skips everything and writes the report."""
    if not sys.platform.startswith("linux"):
        pytest.skip("finds the run's process through /proc (Linux)")
    sweep_dir = str(tmp_path_factory.mktemp("local") / "sweep")
    bindings = inputs + LONGER
    out = {"dir": sweep_dir, "bindings": bindings}
    proc = subprocess.Popen(_cli(sweep_dir, bindings, "--workers=2", "--noreport"), cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    t0 = time.time()
    killed = None
    try:
        runs_dir = os.path.join(sweep_dir, RUNS_SUBDIR)
        while killed is None and proc.poll() is None and time.time() - t0 < 240:
            for name in sorted(os.listdir(runs_dir)) if os.path.isdir(runs_dir) else []:
                d = os.path.join(runs_dir, name)
                if os.path.exists(os.path.join(d, "checkpoint.pt")) and not os.path.exists(os.path.join(d, "COMPLETE")):
                    pid = _run_pid(d)
                    if pid is not None:
                        os.kill(pid, signal.SIGKILL)
                        assert _wait_gone(pid, 10)
                        if not os.path.exists(os.path.join(d, "COMPLETE")):
                            killed = name
                            break
            time.sleep(0.05)
        log1, _ = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    out.update(killed=killed, rc1=proc.returncode, log1=log1, status1=_status(sweep_dir), t1=time.time() - t0)
    error_log = os.path.join(sweep_dir, RUNS_SUBDIR, killed or "?", "error.log")
    out["error_log1"] = open(error_log).read() if os.path.exists(error_log) else None

    t0 = time.time()
    res = subprocess.run(_cli(sweep_dir, bindings, "--workers=2", "--noreport"), cwd=REPO, capture_output=True,
                         text=True, timeout=300)
    out.update(rc2=res.returncode, log2=res.stdout + res.stderr, status2=_status(sweep_dir), t2=time.time() - t0)
    t0 = time.time()
    res = subprocess.run(_cli(sweep_dir, bindings, "--report_args=--quiet --no_figures --reps=50"), cwd=REPO,
                         capture_output=True, text=True, timeout=300)
    out.update(rc3=res.returncode, log3=res.stdout + res.stderr, status3=_status(sweep_dir), t3=time.time() - t0)
    return out


def test_local_sweep_isolates_a_killed_run_resumes_it_and_then_skips_everything(local_sweep):
    s = local_sweep
    assert s["killed"], f"no run could be killed mid-run:\n{s['log1']}"
    # launch 1: the killed run is recorded, the others finish
    assert s["rc1"] == 1, s["log1"]
    runs1 = s["status1"]["runs"]
    assert runs1[s["killed"]]["status"] == "failed" and "SIGKILL" in runs1[s["killed"]]["error"]
    assert s["status1"]["counts"] == {"done": 3, "failed": 1, "skipped": 0, "running": 0, "pending": 0}
    assert s["status1"]["finished"] is True
    assert "killed by SIGKILL" in s["error_log1"] and "spin_bench.run" in s["error_log1"]
    assert f"failed: {s['killed']}" in s["log1"] and "3 done, 0 skipped (already complete), 1 failed" in s["log1"]
    # launch 2: only the killed run runs again, resumed from its checkpoint
    assert s["rc2"] == 0, s["log2"]
    runs2 = s["status2"]["runs"]
    assert runs2[s["killed"]]["status"] == "done" and runs2[s["killed"]]["resumed"] is True
    assert sorted(e["status"] for e in runs2.values()) == ["done", "skipped", "skipped", "skipped"]
    run_dir = runs2[s["killed"]]["run_dir"]
    assert not os.path.exists(os.path.join(run_dir, "error.log"))
    with open(os.path.join(run_dir, "metrics.csv")) as f:
        steps = [int(line.split(",")[0]) for line in f.read().splitlines()[1:]]
    assert steps == [20, 40, 60, 80, 100]
    # launch 3: nothing to do, then the report
    assert s["rc3"] == 0, s["log3"]
    assert all(e["status"] == "skipped" for e in s["status3"]["runs"].values())
    assert "4 runs: 0 done, 4 skipped" in s["log3"]
    for name, e in s["status3"]["runs"].items():
        assert os.path.exists(os.path.join(e["run_dir"], "COMPLETE"))
        with open(os.path.join(e["run_dir"], "summary.json")) as f:
            summary = json.load(f)
        assert summary["status"] == "complete" and summary["seed"] == e["seed"] and summary["method"] == e["method"]
        with open(os.path.join(e["run_dir"], "sweep_run.json")) as f:
            assert json.load(f)["run_id"] == e["run_id"]
    if "report skipped" in s["log3"]:
        print(f"report not checked: {s['log3']}")
    else:
        assert os.path.exists(os.path.join(s["dir"], "report", "leaderboard.md")), s["log3"]
    print(f"launch 1 (kill {s['killed']}): {s['t1']:.0f}s, launch 2 (resume): {s['t2']:.0f}s, "
          f"launch 3 (skip + report): {s['t3']:.0f}s")


def test_ray_executor_gives_the_same_run_set(tmp_path, local_sweep, monkeypatch):
    ray = pytest.importorskip("ray", reason="ray is not installed (optional extra: pip install 'spin_bench[ray]')")
    assert not ray.is_initialized()
    monkeypatch.delenv(RAY_NICENESS_ENV, raising=False)
    sweep_dir = str(tmp_path / "sweep")
    # the executor starts (and stops) its own local instance, its workers at nice 0
    result = run_sweep([SMOKE], sweep_dir, bindings=local_sweep["bindings"], executor="ray", workers=2,
                       report=False, log=lambda m: print(m, flush=True))
    assert not ray.is_initialized()
    assert result.exit_code == 0 and result.counts["done"] == 4, result
    assert os.environ[RAY_NICENESS_ENV] == "0"
    status = _status(sweep_dir)
    assert sorted(status["runs"]) == sorted(local_sweep["status3"]["runs"])
    assert ({n: e["run_id"] for n, e in status["runs"].items()}
            == {n: e["run_id"] for n, e in local_sweep["status3"]["runs"].items()})
    assert sorted(os.listdir(os.path.join(sweep_dir, RUNS_SUBDIR))) == sorted(
        os.listdir(os.path.join(local_sweep["dir"], RUNS_SUBDIR)))
    assert all(os.path.exists(os.path.join(e["run_dir"], "COMPLETE")) for e in status["runs"].values())
    assert status["executor"] == "ray"


def test_ray_workers_of_the_executors_own_instance_run_at_our_niceness(monkeypatch):
    """Ray's default (nice 15) made runs ~10x slower beside any other process."""
    ray = pytest.importorskip("ray", reason="ray is not installed (optional extra: pip install 'spin_bench[ray]')")
    from spin_bench.sweeps.executors import RayExecutor

    monkeypatch.delenv(RAY_NICENESS_ENV, raising=False)
    ex = RayExecutor(workers=1)
    try:
        assert ray.get(ray.remote(lambda: os.nice(0)).remote()) == os.nice(0)
    finally:
        ex.shutdown()
    assert not ray.is_initialized()


# ----------------------------------------------------------------------------- cells, references, archive
def test_explicit_cells_and_reference_pairs(tmp_path):
    sweep = load_sweep([os.path.join(SWEEPS, "cpu_tier.gin")])
    assert sweep.task_levels == (("cheetah-run", "random-medium-expert"), ("cheetah-run", "medium-expert"),
                                 ("quadruped-walk", "random-medium-expert"), ("finger-spin", "medium-expert"),
                                 ("finger-spin", "random-medium-expert"))
    assert sweep.references == (("f", "bc"),) and sweep.num_runs == 5 * 5 * 3
    runs = plan_runs(sweep, str(tmp_path))
    # cell by cell in the given (priority) order, the reference pair last in each cell
    cells = [(r.task, r.level) for r in runs]
    assert cells == sorted(cells, key=sweep.task_levels.index)
    first = [f"{r.method}_{r.algo}" for r in runs[:15]]
    assert first == [m for m in ("f_iql", "ar_iql", "saint_iql", "spin_iql", "f_bc") for _ in range(3)]
    assert all("Schedule.num_steps = 20000" in r.bindings for r in runs)
    bad = [("Sweep.cells = ['cheetah-run']", "is not 'task/level'"),
           ("Sweep.cells = ['../x/medium']", "invalid entry"),
           ("Sweep.references = ['f_iql']", "already in the grid"),
           ("Sweep.references = ['bc']", "is not 'method_algo'"),
           ("Sweep.tasks = ['cheetah-run']", "not both")]
    for binding, needle in bad:
        with pytest.raises(Exception) as e:
            load_sweep([os.path.join(SWEEPS, "cpu_tier.gin")], [binding])
        assert needle in str(e.value), (binding, e.value)


def test_archived_runs_count_as_done_on_a_fresh_machine(tmp_path, local_sweep, inputs):
    """--archive_dir copies each finished run's small files (no checkpoint); a sweep directory that
    is gone (a fresh machine) then skips every archived run; a tampered archive entry does not count."""
    import shutil

    from spin_bench.sweep import main

    archive = tmp_path / "archive"
    bindings = inputs + LONGER
    res = run_sweep([SMOKE], local_sweep["dir"], bindings=bindings, archive_dir=str(archive), report=False,
                    log=lambda m: None)
    assert res.exit_code == 0 and res.counts["skipped"] == 4
    names = sorted(os.listdir(archive))
    assert len(names) == 4
    for n in names:  # SPIN runs keep their ASM pre-training curve too
        assert sorted(os.listdir(archive / n)) == sorted(
            ["COMPLETE", "config.gin", "metrics.csv", "operative_config.gin", "summary.json", "sweep_run.json"]
            + (["asm_pretrain.csv"] if "-spin_" in n else []))
    assert any("-spin_" in n for n in names)
    # the report reads the archive as it reads the sweep directory: every run, none excluded
    from spin_bench.analysis.loading import load_runs
    assert len(load_runs(str(archive)).runs) == 4
    fresh = tmp_path / "fresh_sweep"
    rc = main([f"--gin_file={SMOKE}", f"--sweep_dir={fresh}", f"--archive_dir={archive}", "--noreport",
               *[f"--gin_bindings={b}" for b in bindings]])
    assert rc == 0
    with open(fresh / STATUS_FILE) as f:
        assert all(e["status"] == "skipped" for e in json.load(f)["runs"].values())
    # an entry whose run id differs (another configuration) or that is not complete is not done
    with open(archive / names[0] / "sweep_run.json") as f:
        info = json.load(f)
    info["run_id"] = "0" * 64
    with open(archive / names[0] / "sweep_run.json", "w") as f:
        json.dump(info, f)
    with open(archive / names[1] / "summary.json") as f:
        summary = json.load(f)
    summary["status"] = "running"
    with open(archive / names[1] / "summary.json", "w") as f:
        json.dump(summary, f)
    shutil.rmtree(fresh)
    res = run_sweep([SMOKE], str(fresh), bindings=bindings, archive_dir=str(archive), dry_run=True, log=lambda m: None)
    assert res.counts == {"new": 2, "resume": 0, "skipped": 2}


def test_committed_cpu_tier_runs_keep_their_run_ids(tmp_path):
    """Every run committed under results/cpu_tier/runs is still a planned run of
    gin/sweeps/cpu_tier.gin with the same id: a configuration change that would silently make
    the sweep redo committed work (a new binding in a shared gin file, a renamed parameter)
    fails here instead."""
    archive = os.path.join(REPO, "results", "cpu_tier", "runs")
    committed = sorted(os.listdir(archive)) if os.path.isdir(archive) else []
    if not committed:
        pytest.skip("no committed cpu-tier runs yet")
    runs = {r.name: r for r in plan_runs(load_sweep([os.path.join(SWEEPS, "cpu_tier.gin")]), str(tmp_path))}
    for name in committed:
        assert name in runs, f"{name} is no longer a run of gin/sweeps/cpu_tier.gin"
        assert runs[name].archived(archive), f"{name}: not recognised as done (run id or summary)"
