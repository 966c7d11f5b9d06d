"""The runner against hostile or damaged run directories: planted pickles (checkpoint, ASM
cache, DecQN checkpoint) refused without running, resume refused on any identity mismatch
with nothing touched, interrupted runs recorded and resumed, stale temp files removed,
directories made by earlier versions still resumed."""
import csv
import hashlib
import json
import os
import pickle
import signal
import subprocess
import sys
import time

import gin
import pytest
import torch

from spin_bench import configs
from spin_bench.safe_load import UnreadableFileError, UnsafeFileError
from spin_bench.train.experiment import RunDirError, run_experiment
from spin_bench.train.identity import IDENTITY, RunMismatchError

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TASK = "finger-spin"
GIN = os.path.join(REPO, "gin", "experiments", "smoke", TASK, "medium-expert", "f_iql.gin")
TIME_COLUMNS = {"train_time_s", "eval_time_s"}


class Boom:
    """A pickle that runs code: creates MARKER when unpickled."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.mkdir, (self.marker,))


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    root = tmp_path_factory.mktemp("hstore")
    return {"data_dir": str(root / "datasets"), "asm_cache": str(root / "asm")}


def _bindings(store, extra=()):
    return [f"Experiment.data_dir = '{store['data_dir']}'", f"Experiment.asm_cache_dir = '{store['asm_cache']}'",
            *extra]


def _api(run_dir, store, extra=(), seed=0, resume=False, gin_file=GIN):
    configs.parse([gin_file], _bindings(store, extra))
    try:
        return run_experiment(str(run_dir), seed, torch.device("cpu"), resume=resume, config=configs.config_str())
    finally:
        gin.clear_config()


def _cli(args, **kw):
    return subprocess.run([sys.executable, "-m", "spin_bench.run", *args], capture_output=True, text=True,
                          cwd=REPO, env=dict(os.environ, PYTHONUNBUFFERED="1"), **kw)


def _args(store, run_dir, extra=(), seed=0):
    return [f"--gin_file={GIN}", "--device=cpu", f"--seed={seed}", f"--run_dir={run_dir}",
            *[f"--gin_bindings={b}" for b in _bindings(store, extra)]]


def _snapshot(run_dir):
    """name -> sha256 of every file (what 'touches nothing' is checked against)."""
    out = {}
    for name in sorted(os.listdir(run_dir)):
        p = os.path.join(run_dir, name)
        if os.path.isfile(p):
            out[name] = hashlib.sha256(open(p, "rb").read()).hexdigest()
    return out


def _one_line_usage_error(res, *needles):
    assert res.returncode == 2, res.stderr[-3000:]
    assert "Traceback" not in res.stderr
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("spin_bench.run: error: "), res.stderr
    for n in needles:
        assert n in lines[0], lines[0]
    return lines[0]


def _metrics(run_dir):
    with open(os.path.join(run_dir, "metrics.csv")) as f:
        return [{k: v for k, v in r.items() if k not in TIME_COLUMNS} for r in csv.DictReader(f)]


@pytest.fixture(scope="module")
def finished(tmp_path_factory, store):
    """One complete smoke run (seed 0), made through the API; tests copy it."""
    run_dir = tmp_path_factory.mktemp("finished") / "run"
    summary = _api(run_dir, store)
    assert summary["status"] == "complete"
    return run_dir


def _copy(src, dst):
    import shutil

    shutil.copytree(src, dst)
    return dst


# ----------------------------------------------------------------------------- untrusted files
@pytest.mark.parametrize("kind", ["torch", "raw pickle"])
def test_planted_checkpoint_is_refused_and_never_runs(tmp_path, store, finished, kind):
    run_dir = _copy(finished, tmp_path / "run")
    os.unlink(run_dir / "COMPLETE")
    marker = tmp_path / "pwned"
    if kind == "torch":
        torch.save({"algo": Boom(str(marker)), "step": 20}, run_dir / "checkpoint.pt")
    else:
        (run_dir / "checkpoint.pt").write_bytes(pickle.dumps({"rows": Boom(str(marker))}))
    before = _snapshot(run_dir)
    res = _cli(_args(store, run_dir) + ["--resume"])
    line = _one_line_usage_error(res, str(run_dir / "checkpoint.pt"), "nothing in it was executed")
    assert "refusing to load this training checkpoint" in line
    assert not marker.exists()
    assert _snapshot(run_dir) == before


@pytest.mark.parametrize("protocol", [0, 2, 4, 5])
def test_safe_load_refuses_every_pickle_that_names_code(tmp_path, protocol):
    from spin_bench.safe_load import load_torch_file

    marker = tmp_path / "pwned"
    raw = tmp_path / "raw.pt"
    raw.write_bytes(pickle.dumps({"a": Boom(str(marker))}, protocol=protocol))
    with pytest.raises(UnsafeFileError, match=f"{raw}: refusing to load this thing"):
        load_torch_file(raw, "thing")
    wrapped = tmp_path / "wrapped.pt"
    torch.save([1, {"b": Boom(str(marker))}], wrapped, pickle_protocol=max(protocol, 2))
    with pytest.raises(UnsafeFileError, match="nothing in it was executed"):
        load_torch_file(wrapped, "thing")
    assert not marker.exists()
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a checkpoint at all")
    with pytest.raises(UnreadableFileError, match="truncated, corrupted or not a torch file"):
        load_torch_file(garbage, "thing")
    ok = tmp_path / "ok.pt"
    torch.save({"t": torch.ones(2), "rows": [{"x": 1.5, "y": None}], "s": "text"}, ok)
    assert load_torch_file(ok, "thing")["rows"] == [{"x": 1.5, "y": None}]


def test_truncated_checkpoint_is_refused_in_one_line(tmp_path, store, finished):
    run_dir = _copy(finished, tmp_path / "run")
    os.unlink(run_dir / "COMPLETE")
    data = (run_dir / "checkpoint.pt").read_bytes()
    (run_dir / "checkpoint.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(UnreadableFileError, match="not a readable training checkpoint"):
        _api(run_dir, store, resume=True)
    torch.save({"step": 3}, run_dir / "checkpoint.pt")  # a torch file, but not a checkpoint
    with pytest.raises(UnreadableFileError, match="not a spin_bench training checkpoint"):
        _api(run_dir, store, resume=True)


def test_checkpoints_hold_only_tensors_and_plain_values(finished):
    state = torch.load(finished / "checkpoint.pt", weights_only=True)
    assert state["step"] == 60 and len(state["rows"]) == 3
    assert all(type(v) in (int, float, str, type(None)) for row in state["rows"] for v in row.values())


def test_planted_asm_cache_file_is_refused_and_never_runs(tmp_path, store):
    from spin_bench.data import load_dataset
    from spin_bench.datagen.generate import ensure_dataset
    from spin_bench.models.asm import pretrain_asm

    data = load_dataset(ensure_dataset(TASK, "medium-expert", bins=3, num_transitions=4000,
                                       data_dir=store["data_dir"])).to_torch("cpu")
    cache = tmp_path / "cache"
    configs.parse([os.path.join(REPO, "gin", "scales", "smoke.gin")], [], finalize=False)
    try:
        first = pretrain_asm(data, bins=[3, 3], steps=5, epochs=None, batch_size=64, cache_dir=str(cache))
        marker = tmp_path / "pwned"
        torch.save({"state_dict": Boom(str(marker))}, first.path)
        with pytest.raises(UnsafeFileError, match="refusing to load this ASM cache file"):
            pretrain_asm(data, bins=[3, 3], steps=5, epochs=None, batch_size=64, cache_dir=str(cache))
        assert not marker.exists()
        with open(first.path, "wb") as f:  # a truncated (crashed) file is retrained over
            f.write(b"PK\x03\x04 truncated")
        again = pretrain_asm(data, bins=[3, 3], steps=5, epochs=None, batch_size=64, cache_dir=str(cache))
        assert not again.from_cache and ASMok(first.path)
    finally:
        gin.clear_config()


def ASMok(path):
    from spin_bench.models.asm import ASMCheckpoint

    return ASMCheckpoint.load(path).state_dict is not None


def test_planted_decqn_checkpoint_is_refused_by_resume_from(tmp_path):
    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.pt"
    torch.save({"format": "spin_bench.decqn_checkpoint.v1", "net": Boom(str(marker))}, evil)
    out_dir = tmp_path / "behaviour"
    res = subprocess.run([sys.executable, "-m", "spin_bench.datagen", "train", f"--task={TASK}", "--resume",
                          f"--resume_from={evil}", f"--out_dir={out_dir}", "--no_progress",
                          "--gin_bindings=train_decqn.total_env_steps = 100"],
                         capture_output=True, text=True, cwd=REPO, timeout=300)
    assert res.returncode == 2, res.stderr[-2000:]
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and str(evil) in lines[0] and "refusing to load this DecQN checkpoint" in lines[0]
    assert not marker.exists() and not out_dir.exists()


def test_shipped_decqn_checkpoints_load_without_code():
    from spin_bench.safe_load import load_torch_file

    path = os.path.join(REPO, "spin_bench", "policies", TASK, "checkpoint.pt")
    ck = load_torch_file(path, "DecQN checkpoint")
    assert ck["format"] == "spin_bench.decqn_checkpoint.v1" and ck["task"] == TASK


# ----------------------------------------------------------------------------- resume mismatches
def test_resume_of_a_finished_run_with_another_method_is_refused_and_touches_nothing(tmp_path, store, finished):
    run_dir = _copy(finished, tmp_path / "run")
    before = _snapshot(run_dir)
    res = _cli(_args(store, run_dir, ["Experiment.method = 'saint'"]) + ["--resume"])
    _one_line_usage_error(res, f"refusing to resume {run_dir}", "Experiment.method: 'f' -> 'saint'")
    assert _snapshot(run_dir) == before


@pytest.mark.parametrize("extra,seed,needle", [
    (["FactorisedMLPActor.hidden = (32, 32)"], 0, "FactorisedMLPActor.hidden: (64, 64) -> (32, 32)"),
    (["IQL.beta = 1.0"], 0, "IQL.beta: 3.0 -> 1.0"),
    (["Schedule.eval_every = 30"], 0, "Schedule.eval_every: 20 -> 30"),
    (["Experiment.num_transitions = 3000"], 0, "Experiment.num_transitions: 4000 -> 3000"),
    ([], 1, "seed: 0 -> 1"),
])
def test_resume_with_a_different_run_is_refused(tmp_path, store, finished, extra, seed, needle):
    run_dir = _copy(finished, tmp_path / "run")
    os.unlink(run_dir / "COMPLETE")  # an unfinished run too
    before = _snapshot(run_dir)
    with pytest.raises(RunMismatchError, match="refusing to resume") as e:
        _api(run_dir, store, extra, seed=seed, resume=True)
    assert needle in str(e.value) and "\n" not in str(e.value)
    assert _snapshot(run_dir) == before


def test_resume_with_another_dataset_file_is_refused(tmp_path, store, finished):
    import shutil

    from spin_bench.data import load_dataset, write_dataset

    run_dir = _copy(finished, tmp_path / "run")
    os.unlink(run_dir / "COMPLETE")
    src = json.loads((run_dir / "summary.json").read_text())["dataset_path"]
    ds = load_dataset(src)
    arrays = {k: getattr(ds, k) for k in ("observations", "actions", "rewards", "next_observations",
                                          "terminals", "timeouts")}
    arrays["rewards"] = arrays["rewards"] * 2  # same shape, other data
    other = tmp_path / "other.hdf5"
    write_dataset(str(other), arrays, {"task": TASK, "level": "medium-expert", "bins": 3, "seed": 0})
    before = _snapshot(run_dir)
    with pytest.raises(RunMismatchError, match="dataset identity"):
        _api(run_dir, store, [f"Experiment.dataset_path = '{other}'"], resume=True)
    assert _snapshot(run_dir) == before
    # the same data in other file bytes (a regeneration, another compression) is the same run
    same = tmp_path / "same.hdf5"
    write_dataset(str(same), {k: getattr(ds, k) for k in arrays}, dict(ds.attrs), compression="lzf")
    assert load_dataset(str(same)).sha256 != ds.sha256 and load_dataset(str(same)).identity == ds.identity
    summary = _api(run_dir, store, [f"Experiment.dataset_path = '{same}'"], resume=True)
    assert summary["status"] == "complete"
    shutil.copy(src, tmp_path / "copy.hdf5")  # and the same file elsewhere
    summary = _api(run_dir, store, [f"Experiment.dataset_path = '{tmp_path / 'copy.hdf5'}'"], resume=True)
    assert summary["status"] == "complete"


def test_smaller_num_steps_never_completes_a_run_from_evaluations_past_its_end(tmp_path, store, finished):
    run_dir = _copy(finished, tmp_path / "run")
    before = _snapshot(run_dir)
    with pytest.raises(RunDirError, match="complete at 60 steps and Schedule.num_steps = 40 is smaller"):
        _api(run_dir, store, ["Schedule.num_steps = 40"], resume=True)
    assert _snapshot(run_dir) == before
    os.unlink(run_dir / "COMPLETE")  # unfinished, its checkpoint at step 60
    before = _snapshot(run_dir)
    with pytest.raises(RunDirError, match="checkpoint is at step 60, past Schedule.num_steps = 40"):
        _api(run_dir, store, ["Schedule.num_steps = 40"], resume=True)
    assert _snapshot(run_dir) == before


def test_larger_num_steps_extends_a_finished_run_and_same_one_is_a_no_op(tmp_path, store, finished):
    run_dir = _copy(finished, tmp_path / "run")
    before = _snapshot(run_dir)
    assert _api(run_dir, store, resume=True)["num_steps"] == 60
    assert _snapshot(run_dir) == before
    summary = _api(run_dir, store, ["Schedule.num_steps = 80"], resume=True)
    assert summary["status"] == "complete" and summary["num_steps"] == 80
    assert [int(r["step"]) for r in _metrics(run_dir)] == [20, 40, 60, 80]
    assert (run_dir / "COMPLETE").exists()


def test_a_run_directory_that_holds_a_run_needs_resume(tmp_path, store, finished):
    run_dir = _copy(finished, tmp_path / "run")
    before = _snapshot(run_dir)
    res = _cli(_args(store, run_dir))
    _one_line_usage_error(res, "already holds a run; pass --resume")
    assert _snapshot(run_dir) == before


def test_run_directories_of_earlier_versions_resume_and_are_checked(tmp_path, store, finished):
    """Directories made before run_identity.json: identity rebuilt from config.gin + summary.json."""
    old = _copy(finished, tmp_path / "old")
    os.unlink(old / IDENTITY)
    os.unlink(old / "COMPLETE")
    before = _snapshot(old)
    with pytest.raises(RunMismatchError, match="Experiment.method: 'f' -> 'ar'"):
        _api(old, store, ["Experiment.method = 'ar'"], resume=True)
    assert _snapshot(old) == before
    summary = _api(old, store, resume=True)  # the same run: resumed, and now recorded
    assert summary["status"] == "complete" and (old / IDENTITY).exists()
    assert _metrics(old) == _metrics(finished)


# ----------------------------------------------------------------------------- interruptions
def _start_and_wait_for_checkpoint(args, run_dir):
    # SIGINT as from a terminal: a test session started in the background (`make test &`)
    # hands its children SIGINT ignored, and Python then keeps it ignored
    proc = subprocess.Popen([sys.executable, "-m", "spin_bench.run", *args], cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.time() + 180
    while time.time() < deadline and proc.poll() is None:
        if (run_dir / "checkpoint.pt").exists():
            return proc
        time.sleep(0.02)
    proc.kill()
    pytest.fail(f"no checkpoint appeared: {proc.communicate()[1][-2000:]}")


LONGER = ["Schedule.num_steps = 240", "Schedule.eval_every = 20", "Schedule.log_every = 20"]


@pytest.fixture(scope="module")
def longer_reference(tmp_path_factory, store):
    """An uninterrupted run of LONGER (seed 0): what an interrupted and resumed one must equal."""
    ref = tmp_path_factory.mktemp("longer") / "ref"
    assert _api(ref, store, LONGER)["status"] == "complete"
    return ref


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_signalled_run_records_interrupted_and_resumes_to_the_same_metrics(tmp_path, store, longer_reference,
                                                                           sig):
    longer, ref = LONGER, longer_reference
    run_dir = tmp_path / "run"
    proc = _start_and_wait_for_checkpoint(_args(store, run_dir, longer), run_dir)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 128 + sig, err[-2000:]
    assert "Traceback" not in err and "interrupted" in err
    assert not (run_dir / "COMPLETE").exists(), "finished before the signal"
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "interrupted"
    res = _cli(_args(store, run_dir, longer) + ["--resume"])
    assert res.returncode == 0, res.stderr[-2000:]
    assert json.loads((run_dir / "summary.json").read_text())["status"] == "complete"
    assert _metrics(run_dir) == _metrics(ref)


def test_a_kill_during_a_checkpoint_write_leaves_the_old_one_and_resume_cleans_up(tmp_path, store, finished):
    """A process SIGKILLed inside atomic_torch_save's write: checkpoint.pt is the previous one,
    the temp file stays behind, and the resumed run removes it and finishes."""
    run_dir = _copy(finished, tmp_path / "run")
    os.unlink(run_dir / "COMPLETE")
    before = (run_dir / "checkpoint.pt").read_bytes()
    writer = subprocess.Popen([sys.executable, "-c", (
        "import sys, time, torch\n"
        "from spin_bench import atomic\n"
        "class Slow:\n"
        "    def __reduce__(self):\n"
        "        print('writing', flush=True); time.sleep(600); return (int, (0,))\n"
        f"atomic.atomic_torch_save({{'x': Slow()}}, {str(run_dir / 'checkpoint.pt')!r})\n")],
        cwd=REPO, stdout=subprocess.PIPE, text=True)
    assert writer.stdout.readline().strip() == "writing"
    writer.kill()
    writer.wait()
    stale = [n for n in os.listdir(run_dir) if n.startswith(".checkpoint.pt.") and n.endswith(".tmp")]
    assert stale and (run_dir / "checkpoint.pt").read_bytes() == before
    (run_dir / ".metrics.csv.x1y2z3.tmp").write_text("half a row")
    summary = _api(run_dir, store, ["Schedule.num_steps = 80"], resume=True)
    assert summary["status"] == "complete" and summary["num_steps"] == 80
    assert not [n for n in os.listdir(run_dir) if n.endswith(".tmp")]
    assert [int(r["step"]) for r in _metrics(run_dir)] == [20, 40, 60, 80]
