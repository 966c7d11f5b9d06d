"""The report's dataset rule on data identities, old runs (file sha256 only), and backfill."""
from __future__ import annotations

import json
import os

import h5py
import numpy as np

from spin_bench.analysis import load_runs
from spin_bench.analysis.data_identities import BACKFILL_KEY
from spin_bench.identities import main as identities_main
from spin_bench.analysis.synthetic import write_run_dir
from spin_bench.data import load_dataset, sha256_file, write_dataset
from spin_bench.data.checksum import write_sidecar

T, EP = 40, 20
DS_ID = "cheetah-run-medium-b3-v1"


def _dataset(path, seed=0, old=False, **kw):
    """A small dataset file; `old`: as written before identities (no attribute, no sidecar
    line). Returns (sha256, identity)."""
    rng = np.random.default_rng(seed)
    timeouts = np.zeros(T, bool)
    timeouts[EP - 1::EP] = True
    arrays = {"observations": rng.standard_normal((T, 17)), "actions": rng.integers(0, 3, (T, 6)),
              "rewards": rng.random(T), "next_observations": rng.standard_normal((T, 17)),
              "terminals": np.zeros(T, bool), "timeouts": timeouts}
    write_dataset(path, arrays, {"task": "cheetah-run", "level": "medium", "bins": 3, "seed": 0},
                  **kw)
    identity = load_dataset(path).identity
    if old:
        with h5py.File(path, "a") as f:
            del f.attrs["data_identity"]
        write_sidecar(path, sha256_file(path))
    return sha256_file(path), identity


def _run(root, name, seed, sha, identity="", path=None):
    return write_run_dir(os.path.join(root, "runs", name), seed=seed, returns=[100.0] * 6,
                         dataset_id=DS_ID, dataset_sha256=sha, dataset_identity=identity,
                         dataset_path=None if path is None else str(path))


def test_report_keeps_runs_of_two_machines_regenerations(tmp_path):
    # the same data made on two machines: different HDF5 packing, different file sha256
    sha_a, ident = _dataset(tmp_path / "a.hdf5")
    sha_b, ident_b = _dataset(tmp_path / "b.hdf5", compression="lzf")
    assert sha_a != sha_b and ident == ident_b
    sha_c, other = _dataset(tmp_path / "c.hdf5", seed=1)  # other data
    kept = [_run(tmp_path, "m1s0", 0, sha_a, ident), _run(tmp_path, "m1s1", 1, sha_a, ident),
            _run(tmp_path, "m2s2", 2, sha_b, ident)]
    _run(tmp_path, "other", 3, sha_c, other)
    res = load_runs(str(tmp_path / "runs"))
    assert sorted(res.runs["run_dir"]) == sorted(kept)
    assert set(res.runs["dataset_identity"]) == {ident}
    [reason] = res.excluded["reason"]
    assert "dataset identity" in reason and "majority" in reason and other[:12] in reason


def test_old_runs_recomputed_from_the_file_at_hand_else_unverifiable(tmp_path):
    sha_old, ident = _dataset(tmp_path / "old.hdf5", old=True)       # this machine's file
    sha_new, ident_new = _dataset(tmp_path / "new.hdf5", compression="lzf")  # a regeneration
    sha_x, other = _dataset(tmp_path / "x.hdf5", seed=1, old=True)   # other data
    assert ident_new == ident and other != ident
    new = _run(tmp_path, "new", 0, sha_new, ident)
    old = _run(tmp_path, "old", 1, sha_old, path=tmp_path / "old.hdf5")
    # listed first, its file gone: the same sha256 as "old", whose file is at hand
    same_bytes = _run(tmp_path, "a_same_bytes", 2, sha_old, path=tmp_path / "gone.hdf5")
    lost = _run(tmp_path, "lost", 3, "e" * 64, path=tmp_path / "gone.hdf5")
    wrong = _run(tmp_path, "wrong", 4, sha_x, path=tmp_path / "x.hdf5")
    res = load_runs(str(tmp_path / "runs"))
    assert sorted(res.runs["run_dir"]) == sorted([new, old, same_bytes, lost])
    by_dir = res.runs.set_index("run_dir")["dataset_identity"]
    assert by_dir[old] == by_dir[same_bytes] == ident and by_dir[lost] == ""
    [(run_dir, reason)] = res.excluded.itertuples(index=False)
    assert run_dir == wrong and "majority" in reason
    texts = res.messages.texts()
    assert any("unverifiable" in t and lost in t and "eeeeeeeeeeee" in t for t in texts)
    assert any(old in t and "recomputed from" in t for t in texts)


def test_old_runs_of_one_file_need_no_identity(tmp_path):
    for s in range(3):
        _run(tmp_path, f"s{s}", s, "d" * 64)
    res = load_runs(str(tmp_path / "runs"))
    assert len(res.runs) == 3 and res.excluded.empty
    assert not any("unverifiable" in t for t in res.messages.texts())


def test_backfill_writes_identities_into_old_run_directories(tmp_path, capsys):
    data = tmp_path / "data"
    data.mkdir()
    sha, ident = _dataset(data / "moved.hdf5", old=True)
    _dataset(data / "unrelated.hdf5", seed=2, old=True)
    run = _run(tmp_path, "old", 0, sha, path=tmp_path / "elsewhere.hdf5")  # the file moved
    lost = _run(tmp_path, "lost", 1, "e" * 64)
    before = open(os.path.join(run, "summary.json")).read()
    args = ["--results_dir", str(tmp_path / "runs"), "--data", str(data)]
    assert identities_main(args) == 0
    out = capsys.readouterr().out
    assert ident in out and "unverifiable" in out
    assert open(os.path.join(run, "summary.json")).read() == before  # a dry run by default
    assert identities_main(args + ["--write"]) == 0
    summary = json.load(open(os.path.join(run, "summary.json")))
    assert summary["dataset_identity"] == ident and summary["dataset_sha256"] == sha
    assert summary[BACKFILL_KEY] == str(data / "moved.hdf5")
    assert "dataset_identity" not in json.load(open(os.path.join(lost, "summary.json")))
    assert identities_main(["--results_dir", str(tmp_path / "runs"),
                            "--data", str(tmp_path / "nowhere")]) == 2
    assert "--data" in capsys.readouterr().err
