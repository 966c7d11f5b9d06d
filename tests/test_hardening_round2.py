"""Issue 26: crafted files never crash, hang or write through links; one bad run never stops
a report.  Real files, FIFOs (os.mkfifo), symbolic links and device links; each test runs in
seconds and fails if the guarantee it names is broken (a blocked read fails by alarm, not by
hanging the suite)."""
import contextlib
import json
import logging
import os
import pickle
import signal
import subprocess
import sys

import numpy as np
import pytest
import torch

from spin_bench.analysis.synthetic import write_run_dir
from spin_bench.atomic import (UnsafePathError, atomic_write_text, file_lock, open_append, remove_stale_temps,
                               try_lock)
from spin_bench.cli import check_path_component, check_seed, directory_problem, path_problem
from spin_bench.safe_load import (FieldError, UnreadableFileError, json_float, json_int, json_str, read_json,
                                  read_text)

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REF = {"expert": 500.0, "random": 0.0}
SMOKE = os.path.join(REPO, "gin", "experiments", "smoke", "finger-spin", "medium-expert")


@contextlib.contextmanager
def deadline(seconds=5):
    """Fail (TimeoutError) instead of hanging when a read blocks, e.g. on a FIFO."""
    def _raise(signum, frame):
        raise TimeoutError(f"blocked for more than {seconds}s")
    old = signal.signal(signal.SIGALRM, _raise)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def _env():
    return dict(os.environ, PYTHONUNBUFFERED="1", PYTHONPATH=REPO)


def _one_line(res, prefix, *needles):
    assert res.returncode == 2, (res.returncode, res.stderr[-2000:])
    assert "Traceback" not in res.stderr
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith(prefix), res.stderr
    for n in needles:
        assert n in lines[0], lines[0]
    return lines[0]


# ----------------------------------------------------------------------------- the reading layer
def test_reading_layer_refuses_fifos_devices_links_and_oversized_files(tmp_path):
    fifo = tmp_path / "summary.json"
    os.mkfifo(fifo)
    zero = tmp_path / "zero.json"
    os.symlink("/dev/zero", zero)
    real = tmp_path / "real.json"
    real.write_text('{"a": 1}')
    link = tmp_path / "link.json"
    os.symlink(real, link)
    with deadline():
        with pytest.raises(UnreadableFileError, match="got a FIFO"):
            read_json(fifo, "summary.json")
        with pytest.raises(UnreadableFileError, match="character device"):
            read_json(zero, "summary.json")
        with pytest.raises(UnreadableFileError, match="symbolic link"):
            read_json(link, "summary.json", follow_symlinks=False)
        assert read_json(link, "summary.json") == {"a": 1}  # a link is followed where allowed
        with pytest.raises(UnreadableFileError, match="at most 4 bytes"):
            read_text(real, "x", max_bytes=4)
    (tmp_path / "bad.txt").write_bytes(b"ok \xff\xfe")
    with pytest.raises(UnreadableFileError, match="UTF-8"):
        read_text(tmp_path / "bad.txt", "config.gin")
    (tmp_path / "deep.json").write_text("[" * 5000 + "]" * 5000)
    with pytest.raises(UnreadableFileError, match="nested 5000 deep"):
        read_json(tmp_path / "deep.json", "summary.json", expect_object=False)
    (tmp_path / "list.json").write_text("[1]")
    with pytest.raises(UnreadableFileError, match="JSON object"):
        read_json(tmp_path / "list.json", "summary.json")


def test_typed_json_fields():
    doc = json.loads('{"seed": 1e400, "n": true, "s": "3", "f": 3.0, "x": NaN, "name": 5, "ok": 7}')
    with pytest.raises(FieldError, match="seed must be an integer, got inf"):
        json_int(doc, "seed", "summary.json")
    with pytest.raises(FieldError, match="n must be an integer, got True"):
        json_int(doc, "n", "summary.json")
    with pytest.raises(FieldError, match="s must be an integer"):
        json_int(doc, "s", "summary.json")
    assert json_int(doc, "f", "w") == 3 and json_int(doc, "ok", "w", lo=0, hi=7) == 7
    with pytest.raises(FieldError, match=r"in \[0, 6\]"):
        json_int(doc, "ok", "w", lo=0, hi=6)
    with pytest.raises(FieldError, match="finite"):
        json_float(doc, "x", "w")
    with pytest.raises(FieldError, match="finite"):
        json_float(doc, "seed", "w")
    with pytest.raises(FieldError, match="name must be a string, got 5"):
        json_str(doc, "name", "w")
    with pytest.raises(FieldError, match="lacks 'missing'"):
        json_str(doc, "missing", "w")
    assert json_str(doc, "missing", "w", required=False, default="") == ""


def test_names_are_matched_whole_and_paths_bounded():
    with pytest.raises(ValueError, match="simple name"):
        check_path_component("Experiment.scale", "smoke\n")
    assert check_path_component("Experiment.scale", "smoke") == "smoke"
    assert "255" in path_problem("/tmp/" + "a" * 256, "--run_dir")
    assert path_problem("/tmp/" + "a" * 255, "--run_dir") is None
    bad = os.fsdecode(b"/tmp/run-\xff")
    assert "UTF-8" in path_problem(bad, "--run_dir") and "UTF-8" in directory_problem(bad, "--run_dir")
    for seed in (2**64, -1, True, 1.5):
        with pytest.raises(ValueError, match="--seed must be >= 0 and at most"):
            check_seed("--seed", seed)


# ----------------------------------------------------------------------------- the writing rule
def test_locks_and_appends_never_follow_links_or_open_fifos(tmp_path):
    target = tmp_path / "victim.txt"
    target.write_text("precious\n")
    for name in (".sweep.lock", ".run.lock", "run.log"):
        os.symlink(target, tmp_path / name)
    dangling = tmp_path / "dangling.lock"
    os.symlink(tmp_path / "created-by-link", dangling)
    with pytest.raises(UnsafePathError, match="symbolic link"):
        try_lock(tmp_path / ".sweep.lock")
    with pytest.raises(UnsafePathError, match="symbolic link"):
        try_lock(dangling)
    with pytest.raises(UnsafePathError, match="symbolic link"):
        with file_lock(tmp_path / ".run.lock"):
            pass
    with pytest.raises(UnsafePathError, match="symbolic link"):
        open_append(tmp_path / "run.log")
    os.mkfifo(tmp_path / "fifo.log")
    with deadline():
        with pytest.raises(UnsafePathError, match="not a regular file"):
            open_append(tmp_path / "fifo.log")
    assert target.read_text() == "precious\n" and not (tmp_path / "created-by-link").exists()
    os.symlink(target, tmp_path / "leaderboard.md")  # write-and-rename replaces the link itself
    atomic_write_text(tmp_path / "leaderboard.md", "new\n")
    assert target.read_text() == "precious\n" and not os.path.islink(tmp_path / "leaderboard.md")


def test_fresh_start_removes_only_the_suites_own_temp_files(tmp_path):
    own = [".checkpoint.pt.k2j_9xa1.tmp", ".summary.json.abcdefgh.tmp", ".metrics.csv.0a1b2c3d.tmp"]
    users = [".notes.tmp", ".summary.json.tmp", ".mydata.abcdefgh.tmp", ".checkpoint.pt.my backup.tmp",
             ".metrics.csv.old.v2.tmp", ".config.gin.tmp"]
    for n in own + users:
        (tmp_path / n).write_text("x")
    removed = sorted(os.path.basename(p) for p in remove_stale_temps(tmp_path))
    assert removed == sorted(own)
    assert all((tmp_path / n).exists() for n in users)


def test_sweep_lock_and_job_log_links_are_refused_and_their_targets_untouched(tmp_path):
    from spin_bench.sweeps.executors import execute_job
    from spin_bench.sweeps.runner import _SweepLock
    from spin_bench.sweeps.spec import SweepError

    target = tmp_path / "victim.txt"
    target.write_text("precious\n")
    os.symlink(target, tmp_path / ".sweep.lock")
    with pytest.raises(SweepError, match="symbolic link"):
        with _SweepLock(str(tmp_path)):
            pass
    run_dir = tmp_path / "runs" / "r"
    run_dir.mkdir(parents=True)
    os.symlink(target, run_dir / "run.log")
    res = execute_job({"kind": "run", "gin_file": "x.gin", "bindings": [], "seed": 0, "device": "cpu",
                       "prepare_only": False, "run_dir": str(run_dir), "log": str(run_dir / "run.log"),
                       "error_log": str(run_dir / "error.log"), "lock": str(run_dir / ".run.lock"),
                       "cwd": str(tmp_path)})
    assert res["returncode"] == 2 and "symbolic link" in res["tail"]
    assert target.read_text() == "precious\n"


def test_launcher_refuses_a_linked_run_lock(tmp_path):
    target = tmp_path / "victim"
    os.symlink(target, tmp_path / ".run.lock")
    res = subprocess.run([sys.executable, "-m", "spin_bench.sweeps.launch", f"--lock={tmp_path / '.run.lock'}",
                          "--", "--help"], capture_output=True, text=True, env=_env(), timeout=60)
    assert res.returncode == 2 and "symbolic link" in res.stderr and "Traceback" not in res.stderr
    assert not target.exists()


def _spec(tmp_path, name="cheetah-run-medium-f_iql-s0-12345678"):
    from spin_bench.sweeps.spec import RunSpec

    return RunSpec(name=name, run_id="1" * 64, run_dir=str(tmp_path / "runs" / name), scale="smoke",
                   task="cheetah-run", level="medium", method="f", algo="iql", variant="", seed=0,
                   gin_file="x.gin", bindings=(), dataset_key="k", dataset_path=None, asm_key=None)


def test_archive_skips_linked_and_special_files_and_refuses_a_linked_destination(tmp_path):
    from spin_bench.sweeps.runner import archive_run

    secret = tmp_path / "secret.txt"
    secret.write_text("do not commit me\n")
    spec = _spec(tmp_path)
    write_run_dir(spec.run_dir, returns=[1.0, 2.0], reference=REF)
    os.unlink(os.path.join(spec.run_dir, "metrics.csv"))
    os.symlink(secret, os.path.join(spec.run_dir, "metrics.csv"))
    os.mkfifo(os.path.join(spec.run_dir, "config.gin"))
    archive, said = tmp_path / "archive", []
    with deadline():
        assert archive_run(spec, str(archive), said.append)
    got = archive / spec.name
    assert (got / "summary.json").is_file() and not os.path.lexists(got / "metrics.csv")
    assert not os.path.lexists(got / "config.gin")
    assert all("do not commit" not in p.read_text() for p in got.iterdir())
    assert any("metrics.csv" in m and "symbolic link" in m for m in said)
    assert any("config.gin" in m and "FIFO" in m for m in said)
    # a link planted at the run's place in the archive: nothing is written through it
    other = tmp_path / "elsewhere"
    other.mkdir()
    spec2 = _spec(tmp_path, "cheetah-run-medium-f_iql-s1-87654321")
    write_run_dir(spec2.run_dir, returns=[1.0], reference=REF, seed=1)
    os.symlink(other, archive / spec2.name)
    assert not archive_run(spec2, str(archive), said.append)
    assert list(other.iterdir()) == []


def test_archive_refuses_a_folder_planted_at_a_files_name(tmp_path):
    from spin_bench.sweeps.runner import archive_run

    spec, said = _spec(tmp_path), []
    write_run_dir(spec.run_dir, returns=[1.0], reference=REF)
    (tmp_path / "archive" / spec.name / "summary.json").mkdir(parents=True)
    assert not archive_run(spec, str(tmp_path / "archive"), said.append)
    assert any("cannot write" in m for m in said)


@pytest.mark.parametrize("name,make", [("runs", "file"), ("prepare", "file"), ("sweep_status.json", "dir")])
def test_sweep_refuses_planted_files_where_it_writes_before_any_work(tmp_path, name, make):
    from spin_bench.sweeps import SweepError, run_sweep

    sweep_dir = tmp_path / "s"
    sweep_dir.mkdir()
    (sweep_dir / name).mkdir() if make == "dir" else (sweep_dir / name).write_text("x")
    with pytest.raises(SweepError, match=name):
        run_sweep([f"{REPO}/gin/sweeps/smoke.gin"], str(sweep_dir), dry_run=True, log=lambda m: None)
    assert sorted(os.listdir(sweep_dir)) == [name]


def test_archive_with_fifos_never_blocks_the_plan(tmp_path):
    spec = _spec(tmp_path)
    where = tmp_path / "archive" / spec.name
    where.mkdir(parents=True)
    os.mkfifo(where / "summary.json")
    os.mkfifo(where / "sweep_run.json")
    with deadline():
        assert spec.state(str(tmp_path / "archive")) == "new"


def test_sweep_dry_run_with_a_fifo_in_the_archive_does_not_block(tmp_path):
    archive = tmp_path / "archive"
    (archive / "planted").mkdir(parents=True)
    os.mkfifo(archive / "planted" / "summary.json")
    res = subprocess.run([sys.executable, "-m", "spin_bench.sweep", f"--gin_file={REPO}/gin/sweeps/smoke.gin",
                          f"--sweep_dir={tmp_path / 's'}", f"--archive_dir={archive}", "--dry_run",
                          "--gin_bindings=Sweep.seeds=1"], capture_output=True, text=True, env=_env(),
                         cwd=str(tmp_path), timeout=120)
    assert res.returncode == 0, res.stderr[-2000:]
    assert "runs:" in res.stdout and not (tmp_path / "s").exists()


def test_sweep_names_and_seeds_are_checked_before_any_work():
    from spin_bench.sweeps.spec import Sweep, SweepError

    base = dict(scale="smoke", tasks=["cheetah-run"], levels=["medium"], methods=["f"], algos=["iql"])
    for kw, needle in ((dict(name="smoke\n"), "name"), (dict(name="s", variants={"v" * 300: []}), "invalid name"),
                       (dict(name="s", seeds=[2**64]), "Sweep.seeds"), (dict(name="s", seeds=10**12), "Sweep.seeds"),
                       (dict(name="s", scale="smoke\n"), "scale")):
        with pytest.raises(SweepError, match=needle):
            Sweep(**{**base, **kw})


# ----------------------------------------------------------------------------- the report
def _write_json(path, text):
    with open(path, "w") as f:
        f.write(text)


def test_report_excludes_every_bad_run_with_its_reason_and_reports_the_rest(tmp_path, caplog):
    from spin_bench.analysis import load_runs, write_report

    # the log names a folder that is not UTF-8; pytest-xdist cannot ship such captured text
    caplog.set_level(logging.CRITICAL)

    root = tmp_path / "runs"
    for s in range(2):
        write_run_dir(str(root / f"good-{s}"), returns=[100.0, 200.0 + s], reference=REF, seed=s)
    bad = {}

    def planted(name, **kw):
        d = root / name
        write_run_dir(str(d), returns=[1.0, 2.0], reference=REF, seed=7, **kw)
        bad[name] = d
        return d

    for name, field in (("seed-1e400", '"seed": 1e400'), ("bins-a", '"bins": ["a"]'), ("bins-null", '"bins": [null]'),
                        ("task-number", '"task": 5'), ("seed-string", '"seed": "zero"')):
        d = planted(name)
        doc = json.load(open(d / "summary.json"))
        key = field.split('"')[1]
        doc[key] = None
        text = json.dumps(doc).replace(f'"{key}": null', field)
        _write_json(d / "summary.json", text)
    d = planted("fifo")
    os.unlink(d / "summary.json")
    os.mkfifo(d / "summary.json")
    d = planted("zero")
    os.unlink(d / "summary.json")
    os.symlink("/dev/zero", d / "summary.json")
    d = planted("metrics-fifo")
    os.unlink(d / "metrics.csv")
    os.mkfifo(d / "metrics.csv")
    d = planted("inf-return")
    text = open(d / "metrics.csv").read().splitlines()
    cols = text[0].split(",")
    row = text[2].split(",")
    row[cols.index("return_mean")] = "inf"
    _write_json(d / "metrics.csv", "\n".join(text[:2] + [",".join(row)]) + "\n")
    raw = os.path.join(os.fsencode(str(root)), b"not-utf8-\xff")
    write_run_dir(os.fsdecode(raw), returns=[1.0], reference=REF, seed=9)
    deep = str(root)
    for _ in range(1500):  # os.makedirs recurses: one level at a time
        deep = os.path.join(deep, "n")
        os.mkdir(deep)
    with deadline(60):
        res = load_runs(str(root))
        reasons = {os.path.basename(r.run_dir): r.reason for r in res.excluded.itertuples()}
        assert sorted(res.runs["run_dir"].map(os.path.basename)) == ["good-0", "good-1"]
        assert "seed must be an integer, got inf" in reasons["seed-1e400"]
        assert "bins" in reasons["bins-a"] and "bins" in reasons["bins-null"]
        assert "task must be a string" in reasons["task-number"]
        assert "seed must be an integer" in reasons["seed-string"]
        assert "FIFO" in reasons["fifo"] and "symbolic link" in reasons["zero"]
        assert "FIFO" in reasons["metrics-fifo"]
        assert "infinite" in reasons["inf-return"]
        assert "UTF-8" in reasons[os.fsdecode(b"not-utf8-\xff")]
        report = write_report(str(root), str(tmp_path / "report"), reps=20, figures=False)
    md = (tmp_path / "report" / "leaderboard.md").read_bytes().decode("utf-8")  # valid UTF-8
    assert len(report.load.runs) == 2 and "Excluded runs" in md and "seed-1e400" in md
    assert "not-utf8-\\udcff" in md
    while deep != str(root):  # rmtree recurses too: remove the nest bottom-up
        os.rmdir(deep)
        deep = os.path.dirname(deep)


def test_report_never_writes_through_a_link_in_its_output_folder(tmp_path):
    from spin_bench import report as report_cli

    for s in range(2):
        write_run_dir(str(tmp_path / "runs" / f"r{s}"), returns=[10.0, 20.0], reference=REF, seed=s)
    out = tmp_path / "report"
    out.mkdir()
    victim = tmp_path / "victim.md"
    victim.write_text("precious\n")
    for name in ("leaderboard.md", "leaderboard.tex", "scores.csv"):
        os.symlink(victim, out / name)
    assert report_cli.main([f"--results_dir={tmp_path / 'runs'}", f"--out={out}", "--reps=20", "--no_figures",
                            "--quiet"]) == 0
    assert victim.read_text() == "precious\n"
    assert not any(os.path.islink(out / n) for n in ("leaderboard.md", "leaderboard.tex", "scores.csv"))


def test_report_refuses_bad_flags_in_one_line(tmp_path, capsys):
    from spin_bench import report as report_cli

    assert report_cli.main([f"--results_dir={tmp_path}", f"--out={tmp_path / ('o' * 300)}"]) == 2
    assert "255" in capsys.readouterr().err
    assert report_cli.main([f"--results_dir={tmp_path}", f"--out={tmp_path}", f"--seed={2**64}"]) == 2
    assert "--seed must be >= 0" in capsys.readouterr().err


# ----------------------------------------------------------------------------- resume records
@pytest.mark.parametrize("record,needle", [
    ({"format": 1, "seed": 0, "dataset_sha256": None, "dataset_identity": None, "config": {"Experiment.bins": 3}},
     "config['Experiment.bins'] must be a string"),
    ({"format": 1, "seed": 0, "dataset_sha256": None, "dataset_identity": 12345, "config": {}},
     "dataset_identity must be a string"),
    ({"format": 1, "seed": 1e400, "config": {}}, "seed must be an integer"),
    ({"format": 1, "seed": 0, "config": ["x"]}, "config must be a JSON object"),
])
def test_resume_refuses_mistyped_run_records(tmp_path, record, needle):
    from spin_bench.train.identity import RunMismatchError, recorded

    (tmp_path / "run_identity.json").write_text(json.dumps(record))
    with pytest.raises(RunMismatchError, match="nothing was changed") as info:
        recorded(str(tmp_path))
    assert needle in str(info.value)


def test_resume_refuses_a_legacy_record_with_an_overflowing_seed_and_a_bad_num_steps(tmp_path):
    from spin_bench.train.experiment import RunDirError, _read_summary
    from spin_bench.train.identity import RunMismatchError, recorded

    (tmp_path / "config.gin").write_text("Experiment.method = 'f'\n")
    (tmp_path / "summary.json").write_text('{"seed": 1e400, "status": "complete"}')
    with pytest.raises(RunMismatchError, match="seed must be an integer"):
        recorded(str(tmp_path))
    (tmp_path / "summary.json").write_text('{"seed": 0, "status": "complete", "num_steps": "sixty"}')
    with pytest.raises(RunDirError, match="num_steps must be an integer.*nothing was changed"):
        _read_summary(str(tmp_path))
    os.symlink("/dev/zero", tmp_path / "run_identity.json")
    with deadline():
        with pytest.raises(RunMismatchError, match="symbolic link"):
            recorded(str(tmp_path))


def test_run_cli_resume_with_a_mistyped_record_exits_2_and_touches_nothing(tmp_path):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "run_identity.json").write_text('{"format": 1, "seed": 0, "config": {"Experiment.task": 7}}')
    (run_dir / "checkpoint.pt").write_bytes(b"not used")
    before = {p.name: p.read_bytes() for p in run_dir.iterdir()}
    res = subprocess.run([sys.executable, "-m", "spin_bench.run", f"--gin_file={SMOKE}/f_iql.gin", "--device=cpu",
                          f"--run_dir={run_dir}", "--resume",
                          f"--gin_bindings=Experiment.data_dir='{tmp_path / 'data'}'"],
                         capture_output=True, text=True, env=_env(), cwd=REPO, timeout=300)
    _one_line(res, "spin_bench.run: error: ", "config['Experiment.task'] must be a string")
    assert {p.name: p.read_bytes() for p in run_dir.iterdir()} == before


# ----------------------------------------------------------------------------- validation up front
@pytest.mark.parametrize("args,env,needle", [
    ([f"--run_dir=/tmp/{'r' * 300}"], {}, "255"),
    ([f"--seed={2**64}"], {}, "--seed must be >= 0"),
    (["--gin_bindings=Experiment.scale='smoke\\n'"], {}, "simple name"),
    ([f"--gin_bindings=Experiment.num_transitions={10**20}"], {}, "at most 10^8"),
    ([f"--gin_bindings=Experiment.data_dir='/tmp/{'d' * 300}'"], {}, "255"),
    ([], {"SPIN_BENCH_ASM_CACHE": "FILE"}, "$SPIN_BENCH_ASM_CACHE"),
])
def test_run_refuses_bad_paths_sizes_and_seeds_before_any_work(tmp_path, args, env, needle):
    (tmp_path / "FILE").write_text("a file, not a directory\n")
    env = {k: str(tmp_path / v) for k, v in env.items()}
    res = subprocess.run([sys.executable, "-m", "spin_bench.run", f"--gin_file={SMOKE}/spin_iql.gin", "--device=cpu",
                          f"--results_dir={tmp_path / 'runs'}",
                          f"--gin_bindings=Experiment.data_dir='{tmp_path / 'data'}'", *args],
                         capture_output=True, text=True, env=dict(_env(), **env), cwd=REPO, timeout=300)
    _one_line(res, "spin_bench.run: error: ", needle)
    assert sorted(os.listdir(tmp_path)) == ["FILE"]


def test_run_refuses_a_run_dir_that_is_not_utf8(tmp_path):
    run_dir = os.path.join(os.fsencode(str(tmp_path)), b"run-\xff")
    res = subprocess.run([sys.executable.encode(), b"-m", b"spin_bench.run", f"--gin_file={SMOKE}/f_iql.gin".encode(),
                          b"--device=cpu", b"--run_dir=" + run_dir,
                          f"--gin_bindings=Experiment.data_dir='{tmp_path / 'data'}'".encode()],
                         capture_output=True, env=_env(), cwd=REPO, timeout=300)
    res.stderr = res.stderr.decode("utf-8", "replace")
    _one_line(res, "spin_bench.run: error: ", "not valid UTF-8")
    assert os.listdir(tmp_path) == []


def test_datagen_and_data_check_their_flags_before_reading_anything(tmp_path, capsys):
    from spin_bench.data.cli import main as data_main
    from spin_bench.datagen.cli import main as datagen_main

    existing = tmp_path / "d.hdf5"
    existing.write_bytes(b"user data")
    assert datagen_main(["generate", "--task=finger-spin", "--level=medium", f"--out={existing}"]) == 2
    assert "already exists; pass --overwrite" in capsys.readouterr().err
    assert existing.read_bytes() == b"user data"
    assert datagen_main(["generate", "--task=finger-spin", "--level=medium", f"--num_transitions={10**20}",
                         f"--out={tmp_path / 'n.hdf5'}"]) == 2
    assert "--num_transitions must be at most" in capsys.readouterr().err
    assert datagen_main(["generate", "--task=finger-spin", "--level=medium", f"--seed={2**64}",
                         f"--out={tmp_path / 'n.hdf5'}"]) == 2
    assert "--seed must be at most" in capsys.readouterr().err
    src = tmp_path / "src" / "3_bins"
    src.mkdir(parents=True)
    os.mkfifo(src / "cheetah-run-medium")  # would block if it were read before the flags are checked
    with deadline():
        assert data_main(["import", f"--source={tmp_path / 'src'}", "--task=cheetah-run", "--level=medium",
                          "--bins=3", "--episode_length=-5", f"--out={tmp_path / 'o.hdf5'}"]) == 2
        assert "--episode_length must be an integer >= 0" in capsys.readouterr().err
        assert data_main(["import", f"--source={tmp_path / 'src'}", "--task=cheetah-run", "--level=medium",
                          "--bins=3", f"--out={tmp_path / 'o.hdf5'}"]) == 2
        assert "FIFO" in capsys.readouterr().err
    assert not (tmp_path / "o.hdf5").exists()


def test_estimate_and_identities_refuse_bad_paths(tmp_path, capsys):
    from spin_bench.identities import main as identities_main
    from spin_bench.sweeps.estimate import main as estimate_main

    long = str(tmp_path / ("x" * 300))
    assert identities_main([f"--results_dir={long}"]) == 2
    assert "255" in capsys.readouterr().err
    with pytest.raises(SystemExit) as info:
        estimate_main([f"--gin_file={REPO}/gin/sweeps/smoke.gin", f"--calibration={long}", f"--bench={long}"])
    assert info.value.code == 2 and "255" in capsys.readouterr().err


# ----------------------------------------------------------------------------- published pickles
class _Crafted:
    """Pickles as numpy.dtype('f8') with a crafted state: a field (of `inner`) at an offset far
    outside the 8-byte item, which numpy does not check."""

    def __init__(self, inner):
        self.inner = inner

    def __reduce__(self):
        return (np.dtype, ("f8", False, True),
                (3, "|", None, ("a",), {"a": (np.dtype(self.inner), 1 << 20)}, 8, 1, 0x3f))


class _CraftedArray:
    def __init__(self, inner):
        self.inner = inner

    def __reduce__(self):
        from numpy._core.multiarray import _reconstruct

        return (_reconstruct, (np.ndarray, (0,), b"b"), (1, (1,), _Crafted(self.inner), False, b"\0" * 8))


@pytest.mark.parametrize("inner,needle", [("O", "dtype 'O8'"), ("f8", "structured")])
def test_crafted_dtype_state_is_refused_without_reaching_numpy(tmp_path, inner, needle):
    payload = pickle.dumps([(_CraftedArray(inner), 1)], protocol=2)
    assert len(payload) < 400
    src = tmp_path / "src" / "3_bins"
    src.mkdir(parents=True)
    (src / "cheetah-run-medium").write_bytes(payload)
    # in a subprocess: were numpy to rebuild the array, the process would die (SIGSEGV)
    res = subprocess.run([sys.executable, "-m", "spin_bench.data", "import", f"--source={tmp_path / 'src'}",
                          "--task=cheetah-run", "--level=medium", "--bins=3", f"--out={tmp_path / 'o.hdf5'}"],
                         capture_output=True, text=True, env=_env(), timeout=120)
    line = _one_line(res, "error: ", "unsafe pickle: refusing", needle, "nothing was executed")
    assert "cheetah-run-medium" in line and not (tmp_path / "o.hdf5").exists()


@pytest.mark.parametrize("protocol", [0, 2, 4, 5])
def test_plain_arrays_round_trip_and_everything_else_is_refused(protocol):
    from spin_bench.data.safe_pickle import UnsafePickleError, restricted_loads

    arrays = [np.arange(6, dtype=d).reshape(2, 3) for d in ("f8", "f4", "f2", "i8", "i4", "i2", "i1", "u1", "u8")]
    arrays += [np.array([True, False]), np.asfortranarray(np.arange(6.0).reshape(2, 3)), np.arange(3, dtype=">i4"),
               np.zeros((0, 4))]
    scalars = [np.float64(2.5), np.int64(-3), np.bool_(True)]
    out = restricted_loads(pickle.dumps([tuple(arrays), scalars, {"k": arrays[0]}], protocol=protocol))
    for a, b in zip(out[0], arrays):
        assert np.array_equal(np.asarray(a), b) and np.asarray(a).dtype == b.dtype.newbyteorder("=")
    assert [type(s) for s in out[1]] == [type(s) for s in scalars] and list(out[1]) == scalars
    assert np.array_equal(np.asarray(out[2]["k"]), arrays[0])
    for bad in (np.array([None, 1], dtype=object), np.array(["ab"]), np.zeros(2, dtype=[("a", "f4")]),
                np.array([1 + 2j]), np.zeros(2, dtype="M8[s]"), np.zeros(2, dtype=[("a", "f4", (3,))])):
        with pytest.raises(UnsafePickleError, match="refusing"):
            restricted_loads(pickle.dumps(bad, protocol=protocol))


def test_array_whose_bytes_do_not_match_its_shape_is_refused():
    from numpy._core.multiarray import _reconstruct

    from spin_bench.data.safe_pickle import UnsafePickleError, restricted_loads

    class Short:
        def __reduce__(self):
            return (_reconstruct, (np.ndarray, (0,), b"b"), (1, (1000,), np.dtype("f8"), False, b"\0" * 8))

    with pytest.raises(UnsafePickleError, match="8 bytes of data"):
        restricted_loads(pickle.dumps(Short(), protocol=2))


# ----------------------------------------------------------------------------- HDF5 bombs
def test_hdf5_declaring_more_rows_than_it_stores_is_refused_before_loading(tmp_path):
    import h5py

    from spin_bench.data.dataset import load_dataset, write_dataset
    from spin_bench.data.schema import DatasetError

    rng = np.random.default_rng(0)
    t, obs = 200, rng.standard_normal((201, 17)).astype(np.float32)
    arrays = {"observations": obs[:-1].copy(), "next_observations": obs[1:].copy(),
              "actions": rng.integers(0, 3, (t, 6)).astype(np.uint8), "rewards": rng.random(t).astype(np.float32),
              "terminals": np.zeros(t, bool), "timeouts": (np.arange(t) % 100) == 99}
    attrs = {"task": "cheetah-run", "level": "medium", "bins": 3, "seed": 7, "behaviour_policy": "test",
             "behaviour_returns": [1.5, 2.5], "generator": "tests", "generator_version": "0"}
    small = tmp_path / "s.hdf5"
    write_dataset(small, arrays, attrs)
    ds = load_dataset(small)
    n = 200_000_000
    with h5py.File(small, "r") as src, h5py.File(tmp_path / "bomb.hdf5", "w") as dst:
        for k, v in src.attrs.items():
            dst.attrs[k] = v
        for key in ("observations", "next_observations", "actions", "rewards", "terminals", "timeouts"):
            d = src[key]
            dst.create_dataset(key, shape=(n,) + d.shape[1:], dtype=d.dtype, chunks=(65536,) + d.shape[1:],
                               compression="gzip")
        if "num_transitions" in dst.attrs:
            dst.attrs["num_transitions"] = n
    assert os.path.getsize(tmp_path / "bomb.hdf5") < 200_000
    with deadline(30):
        with pytest.raises(DatasetError, match="expected stored data for its declared shape"):
            load_dataset(tmp_path / "bomb.hdf5", verify_checksum=False)
    write_dataset(tmp_path / "ok.hdf5", ds.arrays(), attrs)  # a real file still loads
    assert load_dataset(tmp_path / "ok.hdf5").num_transitions == ds.num_transitions


# ----------------------------------------------------------------------------- the ASM cache
def test_planted_cache_files_with_wrong_state_are_retrained_never_a_crash(tmp_path):
    from spin_bench.models.asm import ASMCheckpoint, pretrain_asm

    g = torch.Generator().manual_seed(0)
    data = {"observations": torch.randn(64, 5, generator=g), "actions": torch.randint(0, 3, (64, 2), generator=g)}
    kw = dict(bins=[3, 3], steps=2, batch_size=16, cache_dir=str(tmp_path), probe_samples=16)
    import gin

    gin.parse_config(["ActionStructureModel.d_model = 16", "ActionStructureModel.num_blocks = 1"])
    try:
        first = pretrain_asm(data, **kw)
        good = torch.load(first.path, weights_only=True)
        plants = {
            "empty state_dict": dict(good, state_dict={}),
            "wrong tensors": dict(good, state_dict={"x": torch.zeros(3)}),
            "wrong shape": dict(good, state_dict={k: torch.zeros(1) for k in good["state_dict"]}),
            "config bomb": dict(good, config=dict(good["config"], d_model=10**7)),
            "bad seconds": dict(good, pretrain_seconds=float("inf")),
        }
        for what, doc in plants.items():
            torch.save(doc, first.path)
            with pytest.raises(Exception, match="not a usable ASM cache file"):
                ASMCheckpoint.load(first.path)
            again = pretrain_asm(data, **kw)
            assert not again.from_cache, what
            assert ASMCheckpoint.load(first.path).state_dict.keys() == good["state_dict"].keys()
        os.unlink(first.path)
        os.mkfifo(first.path)  # a FIFO in place of the cache file: retrained, never a blocked read
        with deadline(30):
            again = pretrain_asm(data, **kw)
        assert not again.from_cache and os.path.isfile(first.path) and not os.path.islink(first.path)
        assert pretrain_asm(data, **kw).from_cache
        victim = tmp_path / "victim"
        os.unlink(first.path + ".lock")
        os.symlink(victim, first.path + ".lock")  # the cache's lock: refused, never created through
        with pytest.raises(UnsafePathError, match="symbolic link"):
            pretrain_asm(data, **kw)
        assert not victim.exists()
    finally:
        gin.clear_config()


def test_linked_checkpoints_and_special_registry_files_are_refused(tmp_path):
    from spin_bench.data.schema import DatasetError
    from spin_bench.data.store import DatasetStore
    from spin_bench.train.trainer import load_checkpoint

    real = tmp_path / "elsewhere.pt"
    torch.save({"step": 1}, real)
    os.symlink(real, tmp_path / "checkpoint.pt")
    with pytest.raises(UnreadableFileError, match="symbolic link"):
        load_checkpoint(str(tmp_path / "checkpoint.pt"))
    store = tmp_path / "store"
    store.mkdir()
    os.mkfifo(store / "registry.json")
    with deadline():
        with pytest.raises(DatasetError, match="FIFO"):
            DatasetStore(store).entries()


# ----------------------------------------------------------------------------- estimate
def _calibration_run(root, meth, pre=0.0, **over):
    d = root / f"cal-{meth}"
    d.mkdir(parents=True)
    s = {"status": "complete", "method": meth, "task": "cheetah-run", "num_steps": 1000, "train_time_s": 100.0 + pre,
         "pretrain_time_s": pre, "eval_time_s": 10.0, "num_transitions": 4000}
    s.update(over)
    (d / "summary.json").write_text(json.dumps(s).replace('"INF"', "1e400"))
    return d


def test_estimate_never_imports_or_executes_what_a_calibration_gin_file_names(tmp_path, monkeypatch):
    from spin_bench.sweeps.estimate import load_calibration

    marker = tmp_path / "imported"
    (tmp_path / "evil_cal_module.py").write_text(f"open({str(marker)!r}, 'w').write('x')\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    d = _calibration_run(tmp_path / "cal", "spin", pre=20.0)
    (d / "operative_config.gin").write_text("import evil_cal_module\ninclude 'x.gin'\n"
                                            "pretrain_asm.batch_size = 1000\npretrain_asm.epochs = 10\n"
                                            "pretrain_asm.steps = None\n")
    task, calib = load_calibration([str(d)])
    assert not marker.exists() and "evil_cal_module" not in sys.modules
    assert task == "cheetah-run" and calib["spin"]["asm_rate"] == pytest.approx(40 / 20.0)


@pytest.mark.parametrize("over,needle", [
    ({"train_time_s": 20.0}, "must exceed pretrain_time_s"),
    ({"num_steps": "sixty"}, "num_steps must be an integer"),
    ({"train_time_s": "INF"}, "train_time_s must be a finite number"),
    ({"eval_time_s": -1}, "eval_time_s must be a number in"),
    ({"method": 3}, "method must be a string"),
])
def test_estimate_refuses_odd_calibration_numbers_in_one_line(tmp_path, over, needle):
    from spin_bench.sweeps.estimate import EstimateError, load_calibration

    d = _calibration_run(tmp_path, "f", pre=20.0 if "train_time_s" in over else 0.0, **over)
    with pytest.raises(EstimateError, match=needle):
        load_calibration([str(d)])


def test_minari_provenance_that_is_malformed_names_the_file(tmp_path):
    from spin_bench.data.minari_io import _provenance
    from spin_bench.data.schema import DatasetError

    for raw, needle in (("{not json", "not valid JSON"), ('{"attrs": {}}', "array_sha256"),
                        (json.dumps({"attrs": {"task": 1}, "array_sha256": {}, "sha256": "x"}), "array_sha256")):
        with pytest.raises(DatasetError, match=needle) as info:
            _provenance(raw, tmp_path)
        assert "metadata.json" in str(info.value) and "malformed provenance" in str(info.value)
