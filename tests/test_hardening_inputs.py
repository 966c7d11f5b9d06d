"""Bad input, refused up front in one line with exit status 2 and nothing written, in every
command: run, sweep (dry run included), datagen, data. Path-component identifiers (task, level,
scale, names) are checked against a strict pattern: no traversal, no absolute paths."""
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GIN = "gin/experiments/smoke/finger-spin/medium-expert/f_iql.gin"
SPIN_GIN = "gin/experiments/smoke/finger-spin/medium-expert/spin_iql.gin"
NO_GPU = not torch.cuda.is_available()


def _one_line(err, prefix, *needles):
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith(prefix), err
    assert "Traceback" not in err
    for n in needles:
        assert n in lines[0], lines[0]
    return lines[0]


# ----------------------------------------------------------------------------- run
_DRIVER = """
import contextlib, io, json, sys
import gin
from spin_bench import run
out = []
for argv in json.load(sys.stdin):
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        try:
            rc = run.main(run.FLAGS(argv))
        finally:
            run.FLAGS.unparse_flags()
            gin.clear_config()
    out.append([rc, err.getvalue()])
print(json.dumps(out))
"""


def _run_many(calls):
    """spin_bench.run's main for each (args, gin_file), all in one fresh process (absl flags are
    process-global: other test modules define some of the same names)."""
    import json

    argvs = [["spin_bench.run", f"--gin_file={os.path.join(REPO, gin_file)}", *args] for args, gin_file in calls]
    res = subprocess.run([sys.executable, "-c", _DRIVER], input=json.dumps(argvs), capture_output=True, text=True,
                         cwd=REPO, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    return [tuple(x) for x in json.loads(res.stdout.strip().splitlines()[-1])]


@pytest.fixture
def run_main():
    def call(*args, gin_file=GIN):
        return _run_many([(list(args), gin_file)])[0]
    return call


def _b(binding):
    return f"--gin_bindings={binding}"


RUN_CASES = [
    # identifiers that become path components
    ([_b("Experiment.task = '../../escape'")], "Experiment.task must be one of"),
    ([_b("Experiment.task = '/tmp/abs-olute'")], "Experiment.task must be one of"),
    ([_b("Experiment.level = '../up'")], "Experiment.level must be one of"),
    ([_b("Experiment.scale = '../../x'")], "Experiment.scale must be a simple name"),
    ([_b("Experiment.scale = '/etc'")], "Experiment.scale must be a simple name"),
    ([_b("Experiment.scale = 'a/b'")], "Experiment.scale must be a simple name"),
    ([_b("Experiment.method = '../f'")], "Experiment.method must be one of"),
    ([_b("Experiment.task = 'cheetah-walk'")], "Experiment.task must be one of"),
    # sizes and bins
    ([_b("Experiment.bins = 1")], "Experiment.bins: bins must be an integer >= 2"),
    ([_b("Experiment.bins = 0")], "Experiment.bins"),
    ([_b("Experiment.bins = [3, 3, 3]")], "finger-spin has 2 sub-actions"),
    ([_b("Experiment.bins = 'abc'")], "Experiment.bins"),
    ([_b("Experiment.num_transitions = 0")], "Experiment.num_transitions must be a positive integer"),
    ([_b("Experiment.num_transitions = -5")], "Experiment.num_transitions must be a positive integer"),
    ([_b("Experiment.num_transitions = 'many'")], "Experiment.num_transitions must be a positive integer"),
    ([_b("Experiment.eval_workers = -1")], "Experiment.eval_workers must be an integer >= 0"),
    # the schedule, wrong types named by their gin parameter
    ([_b("Schedule.final_k = 0")], "Schedule.final_k must be a positive integer, got 0"),
    ([_b("Schedule.final_k = 4")], "Schedule.final_k must be between 1 and the number of evaluations (3"),
    ([_b("Schedule.num_steps = 'abc'")], "Schedule.num_steps must be a positive integer, got 'abc'"),
    ([_b("Schedule.num_steps = 0")], "Schedule.num_steps must be a positive integer"),
    ([_b("Schedule.batch_size = 2.5")], "Schedule.batch_size must be a positive integer, got 2.5"),
    ([_b("Schedule.eval_every = -1")], "Schedule.eval_every must be a positive integer"),
    ([_b("Schedule.eval_max_steps = 0")], "Schedule.eval_max_steps must be a positive integer or None"),
    ([_b("Schedule.deterministic_eval = 'yes'")], "Schedule.deterministic_eval must be True or False"),
    ([_b("Schedule.eval_episodes = True")], "Schedule.eval_episodes must be a positive integer"),
    # the cell's data
    ([_b("Experiment.task = 'dog-trot'")],
     "no shipped behaviour policies"),
    ([_b("Experiment.task = 'humanoid-stand'")],
     "python -m spin_bench.data import --source=DIR --task=humanoid-stand --level=medium-expert --bins=3"),
    ([_b("Experiment.dataset_source = 'published'")],
     "the published dataset finger-spin-medium-expert-b3-v1 is not in the store"),
    ([_b("Experiment.dataset_path = '/nonexistent/d.hdf5'")], "Experiment.dataset_path '/nonexistent/d.hdf5': no such file"),
    (["--seed=-1"], "--seed must be >= 0"),
]


@pytest.fixture(scope="module")
def run_case_results(tmp_path_factory):
    """Every RUN_CASES case, each with its own results and data directories, in one process."""
    root = tmp_path_factory.mktemp("run_cases")
    calls = []
    for i, (args, _) in enumerate(RUN_CASES):
        base = root / f"c{i}"
        base.mkdir()
        calls.append(([f"--results_dir={base / 'results'}", "--device=cpu",
                       _b(f"Experiment.data_dir = '{base / 'data'}'"), *args], GIN))
    return root, _run_many(calls)


@pytest.mark.parametrize("i", range(len(RUN_CASES)), ids=[c[1][:40] for c in RUN_CASES])
def test_run_refuses_bad_input_up_front(run_case_results, i):
    root, results = run_case_results
    rc, err = results[i]
    assert rc == 2, err
    _one_line(err, "spin_bench.run: error: ", RUN_CASES[i][1])
    base = root / f"c{i}"
    assert list(base.iterdir()) == []  # no results or data directory, no run directory
    assert not any(p.name in ("escape", "up", "etc") for p in Path(root).rglob("*"))


def test_missing_data_names_the_import_command_and_the_binding(tmp_path, run_main):
    rc, err = run_main(f"--results_dir={tmp_path / 'r'}", _b(f"Experiment.data_dir = '{tmp_path / 'd'}'"),
                       _b("Experiment.task = 'dog-trot'"))
    line = _one_line(err, "spin_bench.run: error: ")
    assert rc == 2 and "no data for dog-trot medium-expert (bins 3)" in line
    assert f"--data_dir={tmp_path / 'd'}" in line and "Experiment.dataset_source='published'" in line


def test_missing_data_without_published_data_suggests_what_works(tmp_path, run_main, capsys):
    """A cell nothing was published for (fish-swim at 5 bins; no shipped policies either): the
    message suggests training behaviour policies or an explicit dataset file, never an import,
    from the runner (generated or published source) and from datagen generate alike."""
    def no_import(line):
        assert "spin_bench.data import" not in line and "dataset_source='published'\"" not in line, line
        assert "python -m spin_bench.datagen train --task=fish-swim --gin_bindings=\"train_decqn.bins = 5\"" in line
        assert "Experiment.dataset_path='FILE'" in line and "fish-swim has no published dataset at bins 5" in line

    for source in ("generated", "published"):
        rc, err = run_main(f"--results_dir={tmp_path / 'r'}", _b(f"Experiment.data_dir = '{tmp_path / 'd'}'"),
                           _b("Experiment.task = 'fish-swim'"), _b("Experiment.bins = 5"),
                           _b(f"Experiment.dataset_source = '{source}'"))
        assert rc == 2
        no_import(_one_line(err, "spin_bench.run: error: ", "no data for fish-swim medium-expert (bins 5)"))
    assert not (tmp_path / "r").exists() and not (tmp_path / "d").exists()

    from spin_bench.datagen.cli import main

    assert main(["generate", "--task=fish-swim", "--level=medium", "--bins=5", f"--data_dir={tmp_path / 'd'}"]) == 2
    line = _one_line(capsys.readouterr().err, "spin_bench.datagen: error: ", "no shipped behaviour policy")
    assert "import" not in line and "fish-swim has no published dataset at bins 5" in line


def test_a_checkpoint_past_the_end_is_refused_by_one_rule():
    """The trainer owns the refusal; run_experiment calls the same check before any work."""
    from spin_bench.train.experiment import RunDirError
    from spin_bench.train.trainer import Schedule, check_resume_step

    schedule = Schedule(num_steps=40, eval_every=20)
    check_resume_step("d", 40, schedule)
    with pytest.raises(RunDirError, match="refusing to resume d: its checkpoint is at step 60, past "
                                          "Schedule.num_steps = 40; nothing was changed"):
        check_resume_step("d", 60, schedule)


def test_the_resolver_reads_an_unknown_task_as_unpublished(tmp_path):
    """A task outside the benchmark's table (a researcher's new one) has no published data; the
    check and the obtain step give the same one message; an explicit file is what works."""
    from spin_bench.datagen.resolve import DataRequest, DataUnavailableError, check, has_published, obtain
    from spin_bench.train.experiment import DataUnavailableError as reexported

    assert reexported is DataUnavailableError
    assert has_published("cheetah-run", 3) and has_published("dog-trot", [10] * 38)
    assert not has_published("walker-walk", 3) and not has_published("cheetah-run", 5)
    assert not has_published("cheetah-run", [3, 3, 5, 3, 3, 3])
    for source in ("generated", "published"):
        req = DataRequest("walker-walk", "medium", 3, source=source, data_dir=str(tmp_path))
        with pytest.raises(DataUnavailableError) as checked:
            check(req)
        with pytest.raises(DataUnavailableError) as obtained:
            obtain(req)
        assert str(checked.value) == str(obtained.value)
        line = str(checked.value)
        assert "walker-walk has no published dataset at bins 3" in line and "import" not in line
        assert "python -m spin_bench.datagen train --task=walker-walk, then python -m spin_bench.datagen " \
               "export --task=walker-walk" in line
    own = tmp_path / "own.hdf5"
    own.write_bytes(b"")  # the check reads file names only
    req = DataRequest("walker-walk", "medium", 3, path=str(own), data_dir=str(tmp_path))
    check(req)
    assert obtain(req) == own


def test_run_refuses_unusable_directories(tmp_path):
    a_file = tmp_path / "a_file"
    a_file.write_text("x")
    cases = [
        ([f"--results_dir={a_file}"], f"--results_dir {a_file} is a file, not a directory"),
        ([f"--results_dir={a_file / 'sub'}"], f"--results_dir {a_file / 'sub'} cannot be created: {a_file} is a file"),
        ([f"--run_dir={a_file}"], f"--run_dir {a_file} is a file"),
        ([f"--results_dir={tmp_path / 'r'}", _b(f"Experiment.data_dir = '{a_file}'")],
         f"Experiment.data_dir {a_file} is a file"),
        ([f"--results_dir={tmp_path / 'r'}", _b(f"Experiment.asm_cache_dir = '{a_file / 'c'}'")],
         f"Experiment.asm_cache_dir {a_file / 'c'} cannot be created"),
    ]
    for (args, needle), (rc, err) in zip(cases, _run_many([(args, SPIN_GIN) for args, _ in cases])):
        assert rc == 2, (args, err)
        _one_line(err, "spin_bench.run: error: ", needle)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a_file"]


@pytest.mark.skipif(not NO_GPU, reason="checks the machine without a GPU")
def test_run_refuses_cuda_without_a_gpu(tmp_path, run_main):
    rc, err = run_main(f"--results_dir={tmp_path / 'r'}", "--device=cuda")
    assert rc == 2
    _one_line(err, "spin_bench.run: error: ", "--device=cuda but torch sees no CUDA device")


def test_run_flag_errors_are_one_line_exit_2(tmp_path):
    for flag, needle in (("--seed=abc", "--seed=abc"), ("--device=tpu", "--device=tpu"), ("--nope=1", "nope")):
        res = subprocess.run([sys.executable, "-m", "spin_bench.run", f"--gin_file={GIN}", flag,
                              f"--results_dir={tmp_path / 'r'}"], capture_output=True, text=True, cwd=REPO)
        assert res.returncode == 2, res.stderr
        _one_line(res.stderr, "spin_bench.run: error: ", needle)
    assert not (tmp_path / "r").exists()


# ----------------------------------------------------------------------------- sweep
def _sweep(capsys, *args):
    from spin_bench.sweep import main

    rc = main(list(args))
    out, err = capsys.readouterr()
    return rc, out, err


def test_sweep_dry_run_says_up_front_which_runs_have_no_data(tmp_path, capsys):
    out_dir = tmp_path / "t1"
    rc, out, err = _sweep(capsys, "--gin_file=gin/sweeps/table1.gin", f"--sweep_dir={out_dir}", "--dry_run",
                          f"--gin_bindings=Experiment.data_dir='{tmp_path / 'data'}'")
    assert rc == 2
    no_data = [ln for ln in out.splitlines() if "NO DATA" in ln]
    assert len(no_data) == 4 and all("humanoid-stand" in ln and "spin_bench.data import" in ln for ln in no_data)
    assert "320 runs" in out  # the plan is still listed
    _one_line(err, "spin_bench.sweep: error: ", "no data for 80 of the 320 planned runs", "humanoid-stand medium")
    assert not out_dir.exists()


def test_sweep_refuses_to_start_runs_without_data(tmp_path, capsys):
    out_dir = tmp_path / "t1"
    rc, out, err = _sweep(capsys, "--gin_file=gin/sweeps/table1.gin", f"--sweep_dir={out_dir}",
                          f"--gin_bindings=Experiment.data_dir='{tmp_path / 'data'}'")
    assert rc == 2
    _one_line(err, "spin_bench.sweep: error: ", "no data for 80 run(s) in 4 cell(s)",
              "python -m spin_bench.data import --source=DIR --task=humanoid-stand")
    assert not out_dir.exists()


@pytest.mark.parametrize("args,needle", [
    (["--gin_bindings=Schedule.num_steps = 'abc'"], "Schedule.num_steps must be a positive integer, got 'abc'"),
    (["--gin_bindings=Schedule.final_k = 10"], "Schedule.final_k must be between 1 and the number of evaluations"),
    (["--gin_bindings=Experiment.bins = 1"], "Experiment.bins"),
    (["--gin_bindings=Experiment.num_transitions = 0"], "Experiment.num_transitions must be a positive integer"),
    (["--gin_bindings=Sweep.name = '../evil'"], "Sweep.name must be a simple name"),
    (["--gin_bindings=Sweep.tasks = ['../../x']"], "Sweep.tasks: invalid entry"),
    (["--gin_bindings=Sweep.levels = ['/abs']"], "Sweep.levels: invalid entry"),
    (["--gin_bindings=Sweep.variants = {'../v': 'Schedule.num_steps = 40'}"], "Sweep.variants: invalid name"),
    (["--workers=0"], "--workers must be >= 1"),
    (["--report_args=--quiet 'unbalanced"], "--report_args"),
    (["--gin_bindings=Sweep.tasks = ['fish-swim']", "--gin_bindings=Experiment.bins = 5"],
     "no data for 4 run(s) in 1 cell(s)"),
] + ([(["--device=cuda"], "no CUDA device")] if NO_GPU else []))
def test_sweep_refuses_bad_input_up_front(tmp_path, capsys, args, needle):
    out_dir = tmp_path / "s"
    rc, out, err = _sweep(capsys, "--gin_file=gin/sweeps/smoke.gin", f"--sweep_dir={out_dir}",
                          f"--gin_bindings=Experiment.data_dir='{tmp_path / 'data'}'", *args)
    assert rc == 2, err
    _one_line(err, "spin_bench.sweep: error: ", needle)
    assert not out_dir.exists() and not (tmp_path / "data").exists()


def test_sweep_dir_that_is_a_file_is_refused(tmp_path, capsys):
    f = tmp_path / "f"
    f.write_text("x")
    for d, needle in ((f, "is a file"), (f / "sub", "cannot be created")):
        rc, _, err = _sweep(capsys, "--gin_file=gin/sweeps/smoke.gin", f"--sweep_dir={d}", "--dry_run")
        assert rc == 2
        _one_line(err, "spin_bench.sweep: error: ", f"--sweep_dir {d} {needle}")


# ----------------------------------------------------------------------------- datagen
@pytest.mark.parametrize("args,needle", [
    (["generate", "--task=nope-nope", "--level=medium"], "--task must be one of"),
    (["generate", "--task=../x", "--level=medium"], "--task must be one of"),
    (["generate", "--task=finger-spin", "--level=../../x"], "--level must be one of"),
    (["generate", "--task=finger-spin", "--level=medium", "--bins=1"], "--bins must be >= 2, got 1"),
    (["generate", "--task=finger-spin", "--level=medium", "--num_transitions=0"], "--num_transitions must be >= 1"),
    (["generate", "--task=finger-spin", "--level=medium", "--num_transitions=abc"], "invalid int value"),
    (["generate", "--task=finger-spin", "--level=medium", "--num_workers=0"], "--num_workers must be >= 1"),
    (["generate", "--task=dog-trot", "--level=medium"], "no shipped behaviour policy for dog-trot medium"),
    (["generate", "--task=finger-spin", "--level=all", "--out=x.hdf5"], "--out names one file"),
    (["references", "--task=finger-spin", "--episodes=0"], "--episodes must be >= 1"),
    (["export", "--task=finger-spin", "--run_dir=/nonexistent/run"], "no such behaviour-policy run directory"),
    (["train", "--task=finger-spin", "--gin_bindings=Nope.x = 1"], "No configurable matching 'Nope'"),
    (["train", "--task=finger-spin", "--resume_from=/nonexistent.pt"], "--resume_from /nonexistent.pt: no such"),
    (["bogus"], "invalid choice"),
    ([], "required"),
])
def test_datagen_answers_bad_input_in_one_line(tmp_path, capsys, args, needle):
    from spin_bench.datagen.cli import main

    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        try:
            rc = main(args + ([f"--out_dir={tmp_path / 'o'}"] if args and args[0] == "train" else []))
        except SystemExit as e:  # argparse usage errors
            rc = e.code
    finally:
        os.chdir(cwd)
    err = capsys.readouterr().err
    assert rc == 2, err
    _one_line(err, "spin_bench.datagen: error: ", needle)
    assert not any(tmp_path.iterdir())


def test_datagen_refuses_unusable_directories(tmp_path, capsys):
    from spin_bench.datagen.cli import main

    f = tmp_path / "f"
    f.write_text("x")
    for extra, needle in (([f"--data_dir={f}"], f"--data_dir {f} is a file"),
                          ([f"--out={f / 'x.hdf5'}"], f"--out {f / 'x.hdf5'}: its directory {f} is a file"),
                          ([f"--out={tmp_path}"], "is a directory")):
        rc = main(["generate", "--task=finger-spin", "--level=medium", *extra])
        assert rc == 2
        _one_line(capsys.readouterr().err, "spin_bench.datagen: error: ", needle)


# ----------------------------------------------------------------------------- data
def _arrays(n=20, obs_dim=17, actions=6, seed=0):
    rng = np.random.default_rng(seed)
    obs = rng.standard_normal((n + 1, obs_dim)).astype(np.float32)
    return {"observations": obs[:-1].copy(), "next_observations": obs[1:].copy(),
            "actions": rng.integers(0, 3, (n, actions)).astype(np.uint8),
            "rewards": rng.random(n).astype(np.float32), "terminals": np.zeros(n, bool),
            "timeouts": (np.arange(n) % 10) == 9}


def _data(capsys, *args):
    from spin_bench.data.cli import main

    rc = main(list(args))
    out, err = capsys.readouterr()
    return rc, out, err


def test_data_list_shows_the_runners_generated_datasets(tmp_path, capsys):
    from spin_bench.data import DatasetStore, write_dataset

    root = tmp_path / "store"
    for sub in ("generated", "generated/n4000-s0"):
        store = DatasetStore(root / sub)
        path = store.path_for("cheetah-run-medium-b3-v1")
        write_dataset(str(path), _arrays(), {"task": "cheetah-run", "level": "medium", "bins": 3, "seed": 0})
        store.register(path)
    rc, out, err = _data(capsys, "list", f"--data_dir={root}")
    assert rc == 0, err
    assert f"generated from the shipped behaviour policies (datagen generate, or a run on first use): {root / 'generated'}" in out
    assert f"generated from the shipped behaviour policies (datagen generate, or a run on first use): {root / 'generated' / 'n4000-s0'}" in out
    assert sum(ln.startswith("cheetah-run-medium-b3-v1 ") for ln in out.splitlines()) == 2
    assert "MISSING" not in out
    rc, out, _ = _data(capsys, "list", f"--data_dir={root}", "--json")
    import json
    doc = json.loads(out)
    assert set(doc["generated"]) == {"generated", os.path.join("generated", "n4000-s0")}


def test_data_checksum_error_advises_the_real_flag(tmp_path, capsys):
    from spin_bench.data import write_dataset

    path = tmp_path / "d.hdf5"
    write_dataset(str(path), _arrays(), {"task": "cheetah-run", "level": "medium", "bins": 3, "seed": 0})
    Path(str(path) + ".sha256").write_text("0" * 64 + "\n")
    for cmd in ("inspect", "table"):
        rc, _, err = _data(capsys, cmd, str(path))
        assert rc == 2
        line = _one_line(err, "error: ", "checksum mismatch", "--no_verify")
        assert "verify_checksum" not in line
        rc, _, err = _data(capsys, cmd, str(path), "--no_verify")
        assert rc == 0, err


def test_data_import_out_under_a_file_is_a_proper_message(tmp_path, capsys):
    f = tmp_path / "f"
    f.write_text("x")
    rc, _, err = _data(capsys, "import", f"--source={tmp_path}", "--task=cheetah-run", "--level=medium",
                       "--bins=3", f"--out={f / 'x.hdf5'}")
    assert rc == 2
    line = _one_line(err, "error: ", f"--out {f / 'x.hdf5'}: its directory {f} is a file")
    assert "File exists" not in line
    for args, needle in (([f"--data_dir={f}"], f"--data_dir {f} is a file"),
                         (["--bins=1"], "bins must be an integer >= 2"),
                         (["--level=../x"], "not a published level")):
        base = ["import", f"--source={tmp_path}", "--task=cheetah-run", "--level=medium", "--bins=3"]
        rc, _, err = _data(capsys, *base, *args)
        assert rc == 2, err
        _one_line(err, "error: ", needle)


def test_sweep_data_checks_count_only_runs_still_to_do(tmp_path, capsys):
    """fish-swim has no shipped policies at 5 bins: refused while its runs are to do, fine once they are done."""
    from spin_bench.sweeps import load_sweep, plan_runs

    out_dir = tmp_path / "s"
    bindings = ["Sweep.tasks = ['fish-swim']", f"Experiment.data_dir = '{tmp_path / 'data'}'", "Experiment.bins = 5"]
    unavailable = []
    runs = plan_runs(load_sweep(["gin/sweeps/smoke.gin"], bindings[:1]), str(out_dir), bindings[1:],
                     unavailable=unavailable)
    assert [(c, sorted(n)) for c, n, _ in unavailable] == [("fish-swim medium (bins 5)", sorted(r.name for r in runs))]
    args = ["--gin_file=gin/sweeps/smoke.gin", f"--sweep_dir={out_dir}", "--dry_run",
            *[f"--gin_bindings={b}" for b in bindings]]
    rc, _, err = _sweep(capsys, *args)
    assert rc == 2 and "no data for 4 of the 4 planned runs" in err
    for r in runs:  # e.g. imported from another machine
        os.makedirs(r.run_dir)
        Path(r.run_dir, "COMPLETE").touch()
    rc, out, err = _sweep(capsys, *args)
    assert rc == 0, err
    assert "4 runs: 0 new, 0 to resume, 4 complete" in out and "NO DATA" not in out
