"""A method, algorithm or task of one's own, from a folder outside the package (docs/extending.md):
the worked examples are the files under examples/extending/, shown verbatim in the doc; the
task example goes the whole way here (behaviour policies, data, a run). The method and the
algorithm run through a sweep and the report from the installed wheel (tests/test_install.py)."""
import json
import os
import re
import shutil
import subprocess
import sys

from spin_bench import vocab

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXAMPLES = os.path.join(REPO, "examples", "extending")
DOC = os.path.join(REPO, "docs", "extending.md")
# a block of the doc that shows a file: "`examples/extending/<name>`:" then a fenced block
SHOWN = re.compile(r"`examples/extending/(?P<name>[\w.-]+)`:\n\n```[a-z]*\n(?P<body>.*?)```", re.S)


def _shown() -> dict:
    with open(DOC) as f:
        return {m.group("name"): m.group("body") for m in SHOWN.finditer(f.read())}


def test_the_doc_shows_every_example_file_verbatim():
    shown = _shown()
    files = sorted(f for f in os.listdir(EXAMPLES) if not f.startswith((".", "__")))
    assert sorted(shown) == files
    for name in files:
        with open(os.path.join(EXAMPLES, name)) as f:
            assert shown[name] == f.read(), f"docs/extending.md shows another {name} than examples/extending/"


def _user_folder(tmp_path):
    user = tmp_path / "user"
    shutil.copytree(EXAMPLES, user)
    env = dict(os.environ, SPIN_BENCH_DATA_DIR=str(tmp_path / "data"), SPIN_BENCH_ASM_CACHE=str(tmp_path / "asm"),
               SPIN_BENCH_POLICY_DIR=str(user / "policies"), SPIN_BENCH_EXTENSIONS="walker_task",
               OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    return user, env


def test_a_task_of_ones_own_joins_the_cpu_grid_and_runs_on_its_own_behaviour_data(tmp_path):
    user, env = _user_folder(tmp_path)

    def py(*args, check=True):
        proc = subprocess.run([sys.executable, *args], cwd=user, env=env, capture_output=True, text=True, timeout=600)
        if check:
            assert proc.returncode == 0, " ".join(args) + "\n" + proc.stdout[-2000:] + proc.stderr[-3000:]
        return proc

    # the registry: dimensions from the environment; the cpu and smoke grids, never the paper's
    grid = py("-c", "from spin_bench import vocab\nfrom spin_bench.envs import get_task_spec\n"
                    "t = get_task_spec('walker-walk')\n"
                    "print(t.num_actions, t.obs_dim, 'walker-walk' in vocab.grid_tasks('cpu'), "
                    "'walker-walk' in vocab.grid_tasks('smoke'), 'walker-walk' in vocab.grid_tasks('paper'))")
    assert grid.stdout.split() == ["6", "24", "True", "True", "False"]
    # without policies, the run says what works for a task with no published data, before any work
    cell = user / "walker_cell.gin"
    cell.write_text("include 'gin/scales/smoke.gin'\ninclude 'walker-walk.gin'\n"
                    "include 'gin/levels/medium-expert.gin'\ninclude 'gin/methods/f.gin'\ninclude 'gin/algos/iql.gin'\n")
    early = py("-m", "spin_bench.run", f"--gin_file={cell}", "--run_dir=runs/first", check=False)
    assert early.returncode == 2 and early.stderr.count("\n") == 1, early.stderr[-2000:]
    assert "datagen train --task=walker-walk" in early.stderr and not os.path.exists(user / "runs")
    # behaviour policies with the suite's recipe (tiny numbers), cut into levels, their references
    tiny = [f"--gin_bindings=train_decqn.{k} = {v}" for k, v in (
        ("total_env_steps", 1000), ("learning_starts", 200), ("eval_every", 500), ("snapshot_every", 500),
        ("checkpoint_every", 500))]
    py("-m", "spin_bench.datagen", "train", "--task=walker-walk", "--gin_file=walker-walk-decqn.gin", *tiny,
       "--out_dir=behaviour/walker-walk", "--no_progress")
    py("-m", "spin_bench.datagen", "export", "--task=walker-walk", "--run_dir=behaviour/walker-walk",
       "--out_dir=policies/walker-walk", "--episodes=2")
    py("-m", "spin_bench.datagen", "references", "--task=walker-walk", "--episodes=2")
    run = py("-m", "spin_bench.run", f"--gin_file={cell}", "--run_dir=runs/first")
    assert "final return" in run.stdout
    with open(user / "runs" / "first" / "summary.json") as f:
        summary = json.load(f)
    assert summary["status"] == "complete" and summary["task"] == "walker-walk" and summary["num_transitions"] == 4000


def test_a_name_no_registry_knows_is_refused_in_one_line_before_any_work(tmp_path):
    user, env = _user_folder(tmp_path)
    (user / "typo.gin").write_text("include 'gin/experiments/smoke/cheetah-run/medium-expert/f_iql.gin'\n"
                                   "Experiment.method = 'resf'\n")  # resf.gin (its import) not included
    proc = subprocess.run([sys.executable, "-m", "spin_bench.run", "--gin_file=typo.gin", "--run_dir=runs/x"],
                          cwd=user, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr[-2000:]
    assert f"Experiment.method must be one of {list(vocab.methods())}, got 'resf'" in proc.stderr
    assert not os.path.exists(user / "runs")  # no failed run directory left behind
    (user / "bad_sweep.gin").write_text("Sweep.name = 'x'\nSweep.scale = 'smoke'\nSweep.tasks = ['cheetah-run']\n"
                                        "Sweep.levels = ['medium-expert']\nSweep.methods = ['f']\n"
                                        "Sweep.algos = ['crr']\nSweep.seeds = 1\n")
    sweep = subprocess.run([sys.executable, "-m", "spin_bench.sweep", "--gin_file=bad_sweep.gin", "--sweep_dir=s",
                            "--dry_run"], cwd=user, env=env, capture_output=True, text=True, timeout=300)
    assert sweep.returncode == 2 and "unknown" not in sweep.stdout, sweep.stdout + sweep.stderr
    assert f"must be one of {list(vocab.algo_names())} for method 'f', got 'crr'" in sweep.stderr
