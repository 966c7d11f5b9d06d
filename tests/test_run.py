"""The runner end to end at the smoke scale, on real generated data: every method x algorithm,
SPIN's frozen ASM, resume after kill -9, and clear errors for bad configuration."""
import csv
import json
import os
import re
import signal
import subprocess
import sys
import time

import gin
import numpy as np
import pytest
import torch

from spin_bench import configs, vocab
from spin_bench.train.experiment import resolve_device, run_experiment

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TIME_COLUMNS = {"train_time_s", "eval_time_s"}


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """A dataset store and ASM cache shared by the module's runs."""
    root = tmp_path_factory.mktemp("store")
    return {"data_dir": str(root / "datasets"), "asm_cache": str(root / "asm")}


def _bindings(store, extra=()):
    # Version 1 of the finger-spin data: the smoke-scale learning checks below (60 steps) were
    # calibrated on it; on version 2's stronger expert data AR's and SAINT's behaviour NLL at 60
    # steps is not yet below the one at 20. Other test files train on version 2.
    return [f"Experiment.data_dir = '{store['data_dir']}'",
            f"Experiment.asm_cache_dir = '{store['asm_cache']}'", "Experiment.data_version = 1", *extra]


# Real generated data: the shipped finger-spin behaviour policies (cheetah-run's are still training).
TASK = "finger-spin"


def _gin_file(method, algo, task=TASK, level="medium-expert"):
    return os.path.join(REPO, "gin", "experiments", "smoke", task, level, f"{method}_{algo}.gin")


def _run(tmp_path, store, method, algo, extra=(), seed=0):
    configs.parse([_gin_file(method, algo)], _bindings(store, extra))
    run_dir = str(tmp_path / f"{method}_{algo}")
    try:
        summary = run_experiment(run_dir, seed, torch.device("cpu"), config=configs.config_str())
    finally:
        gin.clear_config()
    return run_dir, summary


def _metrics(run_dir):
    with open(os.path.join(run_dir, "metrics.csv")) as f:
        return list(csv.DictReader(f))


@pytest.mark.parametrize("method", vocab.actor_methods(builtin_only=True))
@pytest.mark.parametrize("algo", vocab.algo_names("actor", builtin_only=True))
def test_every_method_and_algorithm_trains(tmp_path, store, method, algo):
    extra = ["Experiment.algo = 'bc'"] if algo == "bc" else []
    run_dir, summary = _run(tmp_path, store, method, algo if algo != "bc" else "iql", extra)
    assert summary["status"] == "complete" and summary["algo"] == algo and summary["method"] == method
    rows = _metrics(run_dir)
    assert [int(r["step"]) for r in rows] == [20, 40, 60]
    assert np.isfinite(float(summary["final_return"]))
    # every algorithm fits the actor to (weighted) data actions: their likelihood must rise
    assert float(rows[-1]["behaviour_nll"]) < float(rows[0]["behaviour_nll"])
    for k in ("critic_loss", "value_loss"):
        if k in rows[0]:
            assert np.isfinite(float(rows[-1][k])) and float(rows[-1][k]) < float(rows[0][k]), k
    for name in ("operative_config.gin", "config.gin", "summary.json", "COMPLETE", "checkpoint.pt"):
        assert os.path.exists(os.path.join(run_dir, name)), name
    assert summary["dataset_sha256"] and len(summary["dataset_sha256"]) == 64
    from spin_bench.data import load_dataset

    assert summary["dataset_identity"] == load_dataset(summary["dataset_path"]).identity
    assert any(f.startswith("events.out.tfevents") for f in os.listdir(run_dir))
    if method == "spin":
        assert summary["pretrain_time_s"] > 0
        assert float(rows[0]["train_time_s"]) >= summary["pretrain_time_s"]
        _assert_frozen_asm_unchanged(run_dir, store)


def _assert_frozen_asm_unchanged(run_dir, store):
    """After training, SPIN's state encoder and blocks equal the ASM checkpoint bit for bit;
    its slot embeddings and decision heads moved."""
    from spin_bench.models.asm import ASMCheckpoint

    (asm_file,) = [f for f in os.listdir(store["asm_cache"]) if f.endswith(".pt")]
    asm = ASMCheckpoint.load(os.path.join(store["asm_cache"], asm_file)).state_dict
    trained = torch.load(os.path.join(run_dir, "checkpoint.pt"), weights_only=False)["algo"]["modules"]
    frozen = [k for k in asm if k.startswith(("state_encoder.", "encoder."))]
    assert frozen
    for k in frozen:
        assert torch.equal(trained["actor." + k], asm[k]), k
    from spin_bench.envs import get_task_spec
    from spin_bench.models.spin import make_spin_actor

    spec = get_task_spec(TASK)
    torch.manual_seed(0)  # the runner re-seeds (seed 0) before building the actor: same initial values
    init = make_spin_actor(spec.obs_dim, [3] * spec.num_actions,
                           ASMCheckpoint.load(os.path.join(store["asm_cache"], asm_file)))
    assert not torch.equal(init.slot_embeddings.detach(), trained["actor.slot_embeddings"])
    heads = [k for k in trained if k.startswith("actor.heads.")]
    assert heads and any(not torch.equal(init.state_dict()[k[len("actor."):]], trained[k]) for k in heads)


def test_device_flag():
    assert resolve_device("cpu").type == "cpu"
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no CUDA device"):
            resolve_device("cuda")


def _cli(args, **kw):
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    return subprocess.run([sys.executable, "-m", "spin_bench.run", *args], capture_output=True,
                          text=True, cwd=REPO, env=env, **kw)


@pytest.mark.parametrize("args,needle", [
    (["--gin_file=gin/nope.gin"], "gin file not found: gin/nope.gin"),
    (["--gin_file=gin/experiments/smoke/cheetah-run/medium/f_iql.gin", "--gin_bindings=Nope.x = 1"],
     "Nope"),
    (["--gin_file=gin/experiments/smoke/cheetah-run/medium/f_iql.gin", "--gin_bindings=Schedule.num_steps = "],
     "invalid gin configuration"),
    (["--gin_file=gin/experiments/smoke/cheetah-run/medium/f_iql.gin", "--gin_bindings=Experiment.method = 'x'"],
     "Experiment.method must be one of"),
    ([], "--gin_file is required"),
])
def test_cli_config_errors_before_any_work(tmp_path, args, needle):
    res = _cli(args + [f"--results_dir={tmp_path}"])
    assert res.returncode == 2, res.stderr
    assert needle in res.stderr
    assert "Traceback" not in res.stderr
    assert not any(tmp_path.iterdir())


def test_progress_lines_show_the_evaluation_at_their_step_and_the_summaries_are_readable(tmp_path, store):
    """Not on a TTY: a line per log step and per evaluation; an evaluation's line carries that
    evaluation's return and normalised score (metrics.csv's row), a log line names the step of the
    last evaluation it shows; the last line rounds; --prepare_only prints a summary, not a dict;
    nothing is logged at error level."""
    cell = f"--gin_file=gin/experiments/smoke/{TASK}/medium-expert/f_iql.gin"
    flags = [cell, "--device=cpu", *[f"--gin_bindings={b}" for b in _bindings(store, ["Schedule.log_every = 10"])]]
    prep = _cli(flags + ["--prepare_only"])
    assert prep.returncode == 0, prep.stderr[-2000:]
    assert "\ndataset: " in "\n" + prep.stdout and "{" not in prep.stdout and "  sha256 " in prep.stdout
    run_dir = tmp_path / "run"
    res = _cli(flags + [f"--run_dir={run_dir}"])
    assert res.returncode == 0, res.stderr[-2000:]
    lines = [line for line in res.stderr.splitlines() if line.startswith("step ")]
    rows = _metrics(run_dir)
    assert [int(r["step"]) for r in rows] == [20, 40, 60]
    evals = [line for line in lines if "evaluation:" in line]
    assert len(evals) == 3 and len(lines) == 6
    for line, r in zip(evals, rows):
        assert line.startswith(f"step {r['step']} ")
        assert line.endswith(f"return {float(r['return_mean']):.1f}, normalised {float(r['normalized_score']):.3f}")
    assert lines[0].startswith("step 10 ") and "return" not in lines[0]
    assert lines[2].startswith("step 30 ") and f"(last evaluation step 20: return {float(rows[0]['return_mean']):.1f}" in lines[2]
    summary = json.loads((run_dir / "summary.json").read_text())
    assert res.stdout.strip().endswith(f"final return {summary['final_return']:.1f} "
                                       f"(normalised {summary['final_normalized_score']:.3f}) after 60 steps")
    errors = [line for line in (prep.stderr + res.stderr).splitlines() if re.match(r"E\d{4} ", line)]
    assert errors == []


def test_kill_and_resume_gives_the_same_metrics(tmp_path, store):
    """kill -9 mid-run, --resume: metrics.csv equals an uninterrupted run (clock columns aside)."""
    args = [f"--gin_file=gin/experiments/smoke/{TASK}/medium-expert/saint_iql.gin", "--device=cpu",
            "--seed=3", *[f"--gin_bindings={b}" for b in _bindings(store, [
                "Schedule.num_steps = 400", "Schedule.eval_every = 40", "Schedule.log_every = 40"])]]
    ref_dir, run_dir = tmp_path / "ref", tmp_path / "killed"
    res = _cli(args + [f"--run_dir={ref_dir}"])
    assert res.returncode == 0, res.stderr[-2000:]
    proc = subprocess.Popen([sys.executable, "-m", "spin_bench.run", *args, f"--run_dir={run_dir}"],
                            cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    metrics = run_dir / "metrics.csv"
    while time.time() < deadline:
        if metrics.exists() and len(metrics.read_text().splitlines()) >= 3:
            break
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (run_dir / "COMPLETE").exists(), "the run finished before it could be killed"
    res = _cli(args + [f"--run_dir={run_dir}", "--resume"])
    assert res.returncode == 0, res.stderr[-2000:]
    ref, got = _metrics(ref_dir), _metrics(run_dir)
    assert len(ref) == len(got) == 10
    for a, b in zip(ref, got):
        assert {k: v for k, v in a.items() if k not in TIME_COLUMNS} == \
               {k: v for k, v in b.items() if k not in TIME_COLUMNS}
    assert json.loads((run_dir / "summary.json").read_text())["status"] == "complete"


def test_experiment_gin_files_are_in_sync_and_parse():
    from spin_bench.gin_experiments import experiment_files, stale_files

    assert stale_files() == []
    files = experiment_files()
    # every (scale, grid task) x level x (method, algo) pair the registry's grid has
    grid = sum(len(vocab.grid_tasks(s, builtin_only=True)) for s in vocab.SCALE_NAMES)
    assert len(files) == grid * len(vocab.LEVELS) * len(vocab.grid_pairs(builtin_only=True))
    # each scale's first and last task, every level once, every (method, algo) pair once
    pairs = vocab.grid_pairs(builtin_only=True)
    picks = []
    for i, (method, algo) in enumerate(pairs):
        scale = vocab.SCALE_NAMES[i % len(vocab.SCALE_NAMES)]
        tasks = vocab.grid_tasks(scale, builtin_only=True)
        task, level = tasks[-(i % 2)], vocab.LEVELS[i % len(vocab.LEVELS)]
        picks.append(f"experiments/{scale}/{task}/{level}/{method}_{algo}.gin")
    assert set(picks) <= set(files)
    for rel in picks:
        configs.parse([os.path.join(REPO, "gin", rel)], [], finalize=False)
        assert gin.query_parameter("Experiment.scale") == rel.split("/")[1]
        gin.clear_config()


def test_asm_pretraining_on_generated_data_beats_chance(store):
    """Masked action modelling on real behaviour data: well above the 1/3 chance of 3 bins."""
    from spin_bench.data import load_dataset
    from spin_bench.datagen.generate import ensure_dataset
    from spin_bench.models.asm import pretrain_asm

    path = ensure_dataset(TASK, "medium-expert", bins=3, num_transitions=4000, data_dir=store["data_dir"])
    data = load_dataset(path).to_torch("cpu")
    configs.parse([os.path.join(REPO, "gin", "scales", "smoke.gin")], [], finalize=False)
    try:
        ckpt = pretrain_asm(data, bins=[3, 3], steps=300, epochs=None, batch_size=256, seed=0, log_every=100)
    finally:
        gin.clear_config()
    accuracy = ckpt.history[-1]["masked_accuracy"]
    assert accuracy > 0.5, ckpt.history  # measured 0.66 at 300 steps
    assert ckpt.final_metrics["exact_match"] > 1 / 9
