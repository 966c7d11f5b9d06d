"""Dataset versions: version k of a task's shipped behaviour policies generates the data whose id
ends in -v<k>; new runs take the newest, every older version still regenerates, the report keeps
runs on two versions apart, and a bad version is refused before any work."""
import os
import shutil
import subprocess
import sys

import pytest

from spin_bench.analysis.loading import load_runs
from spin_bench.analysis.synthetic import write_run_dir
from spin_bench.data import load_dataset
from spin_bench.datagen import generate as gen
from spin_bench.datagen.paths import POLICY_ROOT, newest_policy_version, policy_dir, policy_versions
from spin_bench.datagen.resolve import DataRequest, DataUnavailableError, obtain

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TASK = "cheetah-run"


@pytest.fixture
def two_versions(tmp_path, monkeypatch):
    """A policy root with version 1 (the shipped cheetah-run policies, in the task's directory)
    and version 2 (the same two networks swapped: other data), and its own reference CSV."""
    root = tmp_path / "policies"
    v1 = root / TASK
    v2 = v1 / "v2"
    v2.mkdir(parents=True)
    shipped = os.path.join(POLICY_ROOT, TASK)
    for name in ("medium.pt", "expert.pt"):
        shutil.copyfile(os.path.join(shipped, name), v1 / name)
    shutil.copyfile(os.path.join(shipped, "expert.pt"), v2 / "medium.pt")
    shutil.copyfile(os.path.join(shipped, "medium.pt"), v2 / "expert.pt")
    monkeypatch.setenv("SPIN_BENCH_POLICY_DIR", str(root))
    for version in (1, 2):  # references measured once here, not by every generation
        gen.write_reference(TASK, 3, 500.0 + version, 5.0, episodes=1, version=version)
    return root


def test_versions_are_directories_and_the_newest_is_the_default(two_versions):
    assert policy_versions(TASK) == [1, 2] and newest_policy_version(TASK) == 2
    assert policy_dir(TASK, 3, 1) == str(two_versions / TASK)
    assert policy_dir(TASK, 3, 2) == str(two_versions / TASK / "v2")
    assert DataRequest(TASK, "medium").dataset_id == "cheetah-run-medium-b3-v2"
    assert DataRequest(TASK, "medium", version=1).dataset_id == "cheetah-run-medium-b3-v1"
    assert DataRequest(TASK, "medium", source="published").dataset_id == "cheetah-run-medium-b3-v1"
    assert newest_policy_version("humanoid-stand") is None
    # the package's own: version 1 of the three tasks it shipped first
    os.environ.pop("SPIN_BENCH_POLICY_DIR")
    assert {t: policy_versions(t)[:1] for t in ("cheetah-run", "finger-spin", "quadruped-walk")} == {
        "cheetah-run": [1], "finger-spin": [1], "quadruped-walk": [1]}


def test_each_version_generates_its_own_data(two_versions, tmp_path):
    store = tmp_path / "store"
    paths = {v: obtain(DataRequest(TASK, "medium", num_transitions=300, data_dir=str(store), version=v))
             for v in (1, 2)}
    ds = {v: load_dataset(p) for v, p in paths.items()}
    assert ds[1].dataset_id == "cheetah-run-medium-b3-v1" and ds[2].dataset_id == "cheetah-run-medium-b3-v2"
    assert ds[1].identity != ds[2].identity
    assert ds[1].attrs["policies"]["medium"]["sha256"] != ds[2].attrs["policies"]["medium"]["sha256"]
    assert (ds[1].attrs["reference_expert"], ds[2].attrs["reference_expert"]) == (501.0, 502.0)
    # the default is the newest: the file already made is found, not regenerated
    assert obtain(DataRequest(TASK, "medium", num_transitions=300, data_dir=str(store))) == paths[2]
    # version 1 regenerates bit for bit beside version 2
    again = gen.generate_dataset(TASK, "medium", num_transitions=300, out=str(tmp_path / "again.hdf5"),
                                 num_workers=1, num_envs=2, progress=False, version=1)
    assert load_dataset(again).identity == ds[1].identity
    with pytest.raises(DataUnavailableError, match=r"data_version = 3.*versions 1, 2"):
        obtain(DataRequest(TASK, "medium", num_transitions=300, data_dir=str(store), version=3))
    with pytest.raises(DataUnavailableError, match="published datasets have version 1 only"):
        obtain(DataRequest(TASK, "medium", source="published", data_dir=str(store), version=2))


def _cli(*args, env=None):
    return subprocess.run([sys.executable, "-m", "spin_bench.datagen", *args], capture_output=True, text=True,
                          timeout=300, cwd=REPO, env=env)


def test_bad_versions_are_refused_in_one_line(two_versions, tmp_path):
    env = dict(os.environ)
    for args, needle in (
            (["generate", f"--task={TASK}", "--level=medium", "--version=3"], "--version 3"),
            (["generate", f"--task={TASK}", "--level=medium", "--version=0"], "--version must be >= 1"),
            (["references", f"--task={TASK}", "--version=5", "--dry_run"], "--version 5"),
            # a shipped version never changes
            (["export", f"--task={TASK}", "--version=2", f"--run_dir={tmp_path}"], "already exists")):
        proc = _cli(*args, env=env)
        lines = [ln for ln in proc.stderr.splitlines() if ln.strip() and "GLFW" not in ln and "warn" not in ln]
        assert proc.returncode == 2 and len(lines) == 1 and needle in lines[0], (args, proc.stderr)
    assert not (tmp_path / "store").exists()
    run = subprocess.run([sys.executable, "-m", "spin_bench.run",
                          f"--gin_file={os.path.join(REPO, 'gin/experiments/smoke/cheetah-run/medium/f_iql.gin')}",
                          "--gin_bindings=Experiment.data_version = 0", f"--run_dir={tmp_path / 'run'}"],
                         capture_output=True, text=True, timeout=300, cwd=REPO)
    assert run.returncode == 2 and "Experiment.data_version must be a positive integer" in run.stderr
    assert not (tmp_path / "run").exists()


def test_runs_on_two_versions_are_two_rows(tmp_path):
    """The same configuration and seed on v1 and v2 data: two rows, the other version labelled."""
    for seed in (0, 1):
        for version, returns in ((1, [100, 110, 120]), (2, [200, 210, 220])):
            d = write_run_dir(str(tmp_path / f"v{version}s{seed}"), seed=seed, returns=returns,
                              dataset_id=f"cheetah-run-medium-b3-v{version}",
                              dataset_sha256=f"{version:064x}")
            with open(os.path.join(d, "config.gin"), "w") as f:
                f.write("Experiment.task = 'cheetah-run'\nIQL.beta = 3.0\n")
    for seed in (0, 1, 2):  # the cell's common version is v1 here: v2 is the variant
        write_run_dir(str(tmp_path / f"ar{seed}"), method="ar", seed=seed, returns=[1, 2, 3],
                      dataset_id="cheetah-run-medium-b3-v1", dataset_sha256=f"{1:064x}")
    res = load_runs(str(tmp_path))
    assert res.excluded.empty, res.excluded
    f = res.runs[res.runs.method.str.startswith("f")]
    assert sorted(set(f["label"])) == ["F-IQL", "F-IQL [data v2]"]
    assert sorted(f.loc[f.label == "F-IQL [data v2]", "final_return"]) == [210.0, 210.0]


@pytest.mark.parametrize("task,level,identity", [
    # the CPU tier's and the SPIN study's data (docs/data.md); quadruped-walk's regenerates only on
    # some CPUs (docs/data-identity.md), so it is not checked here
    ("finger-spin", "random-medium-expert", "b9a6f351b6e597f6a79f626de5c7cc599a07a78abe98e63196550abe1a808542"),
    ("cheetah-run", "medium-expert", "ca7e45251d4cfaa14cdb931f56b08e2e2b4b0529866186e5a5d3d952cd75fa84"),
])
def test_committed_tier_identities_regenerate_from_version_1(tmp_path, task, level, identity):
    path = gen.generate_dataset(task, level, num_transitions=200_000, out=str(tmp_path / "d.hdf5"),
                                num_workers=1, num_envs=10, progress=False, version=1)
    assert load_dataset(path).identity == identity


def test_fish_swim_cell_runs_on_our_data_without_any_import(tmp_path):
    """fish-swim's cells need no published file: the smoke cell generates its data from the
    shipped version-2 policies (the newest) and trains on it."""
    import json

    assert newest_policy_version("fish-swim") == 2
    run_dir = tmp_path / "run"
    proc = subprocess.run([sys.executable, "-m", "spin_bench.run",
                           "--gin_file=gin/experiments/smoke/fish-swim/random-medium-expert/f_iql.gin",
                           f"--gin_bindings=Experiment.data_dir = '{tmp_path / 'store'}'", f"--run_dir={run_dir}"],
                          capture_output=True, text=True, timeout=600, cwd=REPO)
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "complete" and summary["dataset_source"] == "generated"
    assert summary["dataset_id"] == "fish-swim-random-medium-expert-b3-v2"
    ds = load_dataset(summary["dataset_path"])
    assert ds.attrs["mixture"] == {"random": 1333, "medium": 1333, "expert": 1334}
    assert set(ds.attrs["policies"]) == {"medium", "expert"}
