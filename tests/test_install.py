"""The package as a user gets it: a real wheel, installed into an isolated folder and run from a
directory outside the checkout (the README's first run and the report on it). The wheel's
dependencies come from this environment; spin_bench itself must come from the installed copy."""
import json
import os
import re
import shutil
import subprocess
import sys
import zipfile

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SMOKE_CELL = "gin/experiments/smoke/cheetah-run/medium-expert/spin_iql.gin"
SOURCES = ("setup.cfg", "pyproject.toml", "README.md", "spin_bench", "baselines", "gin")
# where the checkout's folders land in the wheel (setup.cfg's package_dir)
INSTALLED_AS = {"spin_bench": "spin_bench", "baselines": "spin_bench/baselines", "gin": "spin_bench/gin"}
POLICY_TASKS = ("cheetah-run", "finger-spin", "quadruped-walk")
# an error-level log line: absl/glog's "E1203 13:45:18.123 ...", logging's "ERROR:..." or "prog: ERROR: ..."
ERROR_LINE = re.compile(r"^(E\d{4} \d\d:\d\d|ERROR\b|\S+: ERROR: )")


def _error_lines(*texts: str) -> list:
    return [line for t in texts for line in t.splitlines() if ERROR_LINE.match(line)]


def _checkout_files(folder: str, suffix: str) -> set:
    out = set()
    for dirpath, dirnames, files in os.walk(os.path.join(REPO, folder)):
        dirnames[:] = [d for d in dirnames if d != "__pycache__"]
        for f in files:
            if f.endswith(suffix):
                rel = os.path.relpath(os.path.join(dirpath, f), os.path.join(REPO, folder))
                out.add(f"{INSTALLED_AS[folder]}/{rel.replace(os.sep, '/')}")
    return out


def _tree(root: str) -> dict:
    """path -> (size, mtime) of every file under root, bytecode caches aside."""
    out = {}
    for dirpath, dirnames, files in os.walk(root):
        dirnames[:] = [d for d in dirnames if d != "__pycache__"]
        for f in files:
            st = os.stat(os.path.join(dirpath, f))
            out[os.path.relpath(os.path.join(dirpath, f), root)] = (st.st_size, st.st_mtime_ns)
    return out


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> str:
    """Build the wheel from a clean copy of the sources (no stale build/ from earlier builds)."""
    tmp = tmp_path_factory.mktemp("wheel")
    src = tmp / "src"
    for name in SOURCES:
        path = os.path.join(REPO, name)
        if os.path.isdir(path):
            shutil.copytree(path, src / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info"))
        else:
            os.makedirs(src, exist_ok=True)
            shutil.copy2(path, src / name)
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                           "--quiet", "-w", str(tmp / "dist"), str(src)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    (whl,) = [p for p in os.listdir(tmp / "dist") if p.endswith(".whl")]
    return str(tmp / "dist" / whl)


def test_wheel_holds_the_package_the_gin_tree_and_the_policies_and_no_other_top_level_name(wheel):
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
        (top_level,) = [n for n in names if n.endswith(".dist-info/top_level.txt")]
        assert z.read(top_level).decode().split() == ["spin_bench"]
    assert {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")} == {"spin_bench"}
    missing = (_checkout_files("spin_bench", ".py") | _checkout_files("baselines", ".py")
               | _checkout_files("gin", ".gin")) - names
    assert not missing, f"{len(missing)} files of the checkout are not in the wheel, e.g. {sorted(missing)[:5]}"
    assert SMOKE_CELL.replace("gin/", "spin_bench/gin/", 1) in names
    for task in POLICY_TASKS:
        for f in ("expert.pt", "medium.pt", "policies.json"):
            assert f"spin_bench/policies/{task}/{f}" in names
    # every shipped version of every task's policies (version k in <task>/v<k>/)
    shipped = {os.path.relpath(os.path.join(d, f), REPO).replace(os.sep, "/")
               for d, _, files in os.walk(os.path.join(REPO, "spin_bench", "policies"))
               for f in files if f in ("expert.pt", "medium.pt", "policies.json", "learning_curve.csv")}
    assert shipped and not shipped - names, sorted(shipped - names)[:5]
    assert not [n for n in names if n.endswith("checkpoint.pt")], "DecQN training checkpoints must not ship"
    for f in ("spin_bench/envs/generated_reference_scores.csv", "spin_bench/envs/published_reference_scores.csv",
              "spin_bench/analysis/reference/paper_table1_returns.csv"):
        assert f in names


def test_installed_copy_runs_the_readme_smoke_cell_and_the_report_from_anywhere(wheel, tmp_path):
    with open(os.path.join(REPO, "README.md")) as f:
        assert SMOKE_CELL in f.read(), "the README's first run names another cell than this test"
    site = tmp_path / "site"
    proc = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--quiet", "--target", str(site),
                           wheel], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    before = _tree(site)
    user = tmp_path / "user"  # a working directory outside the checkout
    user.mkdir()
    env = dict(os.environ, PYTHONPATH=str(site), SPIN_BENCH_DATA_DIR=str(tmp_path / "data"),
               SPIN_BENCH_ASM_CACHE=str(tmp_path / "asm"), OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")

    def py(*args, timeout=300):
        return subprocess.run([sys.executable, *args], cwd=user, env=env, capture_output=True, text=True,
                              timeout=timeout)

    # where everything comes from, and a user's own gin file that includes the package's
    # fragments by the suite's names
    (user / "mine.gin").write_text("include 'gin/scales/smoke.gin'\ninclude 'gin/tasks/finger-spin.gin'\n"
                                   "Schedule.num_steps = 7\n")
    where = py("-c", "import spin_bench, spin_bench.baselines as b, spin_bench.layout as l\n"
                     "from spin_bench import configs\n"
                     "configs.parse(['mine.gin'], [], finalize=False)\n"
                     "print(spin_bench.__file__, b.__file__, l.GIN_DIR, l.CHECKOUT_ROOT)\n"
                     "print(configs.query('Experiment.task'), configs.query('Schedule.num_steps'))")
    assert where.returncode == 0, where.stderr[-3000:]
    (pkg, baselines, gin_dir, checkout), mine = [line.split() for line in where.stdout.strip().splitlines()[-2:]]
    for path in (pkg, baselines, gin_dir):
        assert path.startswith(str(site) + os.sep), where.stdout
    assert checkout == "None" and mine == ["finger-spin", "7"]

    run = py("-m", "spin_bench.run", f"--gin_file={SMOKE_CELL}", "--seed=0")
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-3000:]
    # a clean first run is quiet: no error-level line (gin used to log "Path not found" for
    # every include it first looked for in the working directory)
    assert _error_lines(where.stderr, run.stderr) == [], _error_lines(where.stderr, run.stderr)[:5]
    assert "evaluation: return" in run.stderr and "(normalised " in run.stdout
    (run_dir,) = [d for d, _, files in os.walk(user / "runs") if "COMPLETE" in files]
    with open(os.path.join(run_dir, "summary.json")) as f:
        summary = json.load(f)
    assert summary["status"] == "complete" and summary["method"] == "spin" and summary["scale"] == "smoke"
    assert summary["git_commit"] is None  # an installed copy has no commit (the checkout's would)

    report = py("-m", "spin_bench.report", "--results_dir=runs", "--out=report", "--reps=50", "--quiet")
    assert report.returncode == 0, report.stderr[-3000:]
    assert _error_lines(report.stderr) == []
    with open(user / "report" / "scores.csv") as f:
        assert len(f.read().strip().splitlines()) == 2  # header + the one run
    assert (user / "report" / "leaderboard.md").exists()
    assert any(p.endswith(".png") for p in os.listdir(user / "report"))

    # the README's sweep listing and the data commands, from here too
    dry = py("-m", "spin_bench.sweep", "--gin_file=gin/sweeps/cpu_tier.gin", "--sweep_dir=sweeps/cpu_tier",
             "--dry_run")
    assert dry.returncode == 0 and "75" in dry.stdout, dry.stdout[-2000:] + dry.stderr[-2000:]
    listing = py("-m", "spin_bench.data", "list")
    assert listing.returncode == 0 and "cheetah-run-medium-expert-b3-v1" in listing.stdout, listing.stderr
    inspect = py("-m", "spin_bench.data", "inspect", "cheetah-run-medium-expert-b3-v1")
    assert inspect.returncode == 0 and "normalised   min" in inspect.stdout, inspect.stderr[-2000:]
    assert _error_lines(dry.stderr, listing.stderr, inspect.stderr) == []
    missing = py("-m", "spin_bench.report", "--results_dir=nowhere", "--out=r2")
    assert missing.returncode == 2 and missing.stderr.count("\n") == 1

    # the installed tree is checked, never written
    assert py("-m", "spin_bench.gin_experiments", "--check").returncode == 0
    write = py("-m", "spin_bench.gin_experiments")
    assert write.returncode == 2 and "--gin_dir" in write.stderr and len(write.stderr.strip().splitlines()) == 1
    assert _tree(site) == before, "something wrote into the installed package"


def test_a_method_and_an_algorithm_of_ones_own_join_a_sweep_and_the_report_from_the_installed_wheel(wheel, tmp_path):
    """docs/extending.md's ResF (a method: an actor with another trunk) and CRR (an algorithm:
    AWAC with another advantage weighting), each one file and gin in a folder of the user's,
    registered by the sweep file's `import` lines; nothing inside the installed package changes."""
    site = tmp_path / "site"
    proc = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--quiet", "--target", str(site),
                           wheel], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    before = _tree(site)
    user = tmp_path / "user"
    shutil.copytree(os.path.join(REPO, "examples", "extending"), user)
    (user / "two.gin").write_text("include 'my_sweep.gin'\nSweep.methods = ['resf']\n")  # 2 runs: ResF-IQL, ResF-CRR
    env = dict(os.environ, PYTHONPATH=str(site), SPIN_BENCH_DATA_DIR=str(tmp_path / "data"),
               SPIN_BENCH_ASM_CACHE=str(tmp_path / "asm"), OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    sweep = subprocess.run([sys.executable, "-m", "spin_bench.sweep", "--gin_file=two.gin", "--sweep_dir=sweeps/ext",
                            "--workers=1", "--no_report"], cwd=user, env=env, capture_output=True, text=True,
                           timeout=900)
    assert sweep.returncode == 0, sweep.stdout[-3000:] + sweep.stderr[-3000:]
    runs = sorted(os.listdir(user / "sweeps" / "ext" / "runs"))
    assert [r.rsplit("-", 2)[0] for r in runs] == ["cheetah-run-medium-expert-resf_crr",
                                                   "cheetah-run-medium-expert-resf_iql"]
    with open(user / "sweeps" / "ext" / "runs" / runs[0] / "summary.json") as f:
        summary = json.load(f)
    assert summary["status"] == "complete" and summary["method_display"]["label"] == "ResF"
    assert (user / "sweeps" / "ext" / "cells" / "smoke" / "cheetah-run" / "medium-expert" / "resf_crr.gin").exists()
    # the report reads the run directories only (no import of the user's modules) and names them
    report = subprocess.run([sys.executable, "-m", "spin_bench.report", "--results_dir=sweeps/ext/runs",
                             "--out=report", "--reps=50", "--quiet", "--no_figures"], cwd=user,
                            env={k: v for k, v in env.items() if k != "SPIN_BENCH_EXTENSIONS"},
                            capture_output=True, text=True, timeout=300)
    assert report.returncode == 0, report.stderr[-3000:]
    board = (user / "report" / "leaderboard.md").read_text()
    assert "ResF-IQL" in board and "ResF-CRR" in board
    assert _tree(site) == before, "something wrote into the installed package"
