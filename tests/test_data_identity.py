"""Data identity: what defines the data, not the file's bytes; byte-reproducible files."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from spin_bench.data import DatasetError, load_dataset, read_sidecar, sha256_file, write_dataset
from spin_bench.data.checksum import read_sidecar_identity, write_sidecar
from spin_bench.data.dataset import identity_of_file
from spin_bench.data.identity import canonical_attrs_json, data_identity

REPO = Path(__file__).resolve().parents[1]
T, EP = 40, 20


def _arrays(seed: int = 0):
    rng = np.random.default_rng(seed)
    timeouts = np.zeros(T, bool)
    timeouts[EP - 1::EP] = True
    return {"observations": rng.standard_normal((T, 17)).astype(np.float32),
            "next_observations": rng.standard_normal((T, 17)).astype(np.float32),
            "actions": rng.integers(0, 3, (T, 6)).astype(np.uint8),
            "rewards": rng.random(T).astype(np.float32),
            "terminals": np.zeros(T, bool), "timeouts": timeouts}


ATTRS = {"task": "cheetah-run", "level": "medium", "bins": 3, "seed": 1,
         "mixture": {"medium": T}, "collection_epsilon": 0.1,
         "policies": {"medium": {"sha256": "a" * 64, "env_steps": 5, "greedy_return": 1.5}},
         "reference_expert": 50.0, "reference_random": 5.0, "reference_source": "generated",
         "behaviour_policy": "test"}


def test_identity_is_recorded_and_ignores_packing_and_volatile_attributes(tmp_path, monkeypatch):
    a = tmp_path / "gzip.hdf5"
    sha_a = write_dataset(a, _arrays(), ATTRS)
    ds = load_dataset(a)
    assert ds.attrs["data_identity"] == ds.identity == read_sidecar_identity(a)
    assert ds.attrs["created"] == "1970-01-01T00:00:00Z"  # never the clock
    # other HDF5 packing, creation time, description, counts, package version: other bytes,
    # the same data
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    b = tmp_path / "lzf.hdf5"
    sha_b = write_dataset(b, _arrays(), dict(ATTRS, behaviour_policy="other words",
                                             generator_version="9.9.9",
                                             policies={"medium": {"sha256": "a" * 64}}),
                          compression="lzf")
    assert load_dataset(b).attrs["created"] == "2023-11-14T22:13:20Z"
    assert sha_a != sha_b and load_dataset(b).identity == ds.identity
    # the identity is a function of the arrays and attributes, wherever they come from
    assert data_identity(_arrays(), dict(ATTRS, bins=[3] * 6, dataset_id="cheetah-run-medium-b3-v1",
                                         generator="spin_bench")) == ds.identity
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "yesterday")
    with pytest.raises(DatasetError, match="SOURCE_DATE_EPOCH"):
        write_dataset(tmp_path / "bad.hdf5", _arrays(), ATTRS)


@pytest.mark.parametrize("change", ["observations", "actions", "rewards", "timeouts"])
def test_one_array_element_changes_the_identity(change):
    base = data_identity(_arrays(), ATTRS)
    arrays = _arrays()
    arr = arrays[change]
    if change == "timeouts":
        arr[3] = True
    elif change == "actions":
        arr[5, 2] = (arr[5, 2] + 1) % 3
    else:
        arr.reshape(-1)[7] = np.nextafter(arr.reshape(-1)[7], np.float32(np.inf))
    assert data_identity(arrays, ATTRS) != base


@pytest.mark.parametrize("key,value", [
    ("task", "cheetah-walk"), ("level", "expert"), ("bins", 5), ("seed", 2),
    ("mixture", {"medium": T - 1}), ("collection_epsilon", 0.2),
    ("policies", {"medium": {"sha256": "b" * 64}}), ("reference_expert", 50.5),
    ("reference_random", 4.0), ("source_sha256", "c" * 64), ("dataset_id", "x-y-medium-b3-v2")])
def test_one_defining_attribute_changes_the_identity(key, value):
    assert data_identity(_arrays(), dict(ATTRS, **{key: value})) != data_identity(_arrays(), ATTRS)


def test_canonical_attributes_are_plain_sorted_json():
    a = canonical_attrs_json({"seed": np.int64(1), "bins": np.array([3, 3]), "task": "t",
                              "reference_expert": np.float32(0.5), "created": "now",
                              "policies": {"expert": {"sha256": "e", "env_steps": 3}}})
    assert a == ('{"bins":[3,3],"policies":{"expert":"e"},"reference_expert":0.5,"seed":1,'
                 '"task":"t"}')


def test_load_refuses_modified_data_and_old_files_get_their_identity(tmp_path):
    path = tmp_path / "d.hdf5"
    write_dataset(path, _arrays(), ATTRS)
    identity = load_dataset(path).identity
    # a file written before identities: no attribute, a one-line sidecar
    import h5py

    with h5py.File(path, "a") as f:
        del f.attrs["data_identity"]
    write_sidecar(path, sha256_file(path))
    old = load_dataset(path)
    assert "data_identity" not in old.attrs and old.identity == identity
    assert identity_of_file(path, old.sha256) == (old.sha256, identity)
    with pytest.raises(DatasetError, match="expected sha256"):
        identity_of_file(path, "f" * 64)
    # a recorded identity that the data does not give is refused
    with h5py.File(path, "a") as f:
        f.attrs["data_identity"] = "0" * 64
    write_sidecar(path, sha256_file(path))
    with pytest.raises(DatasetError, match="data identity mismatch"):
        load_dataset(path)
    assert load_dataset(path, verify_checksum=False).identity == identity


def _generate(cwd: Path, out: Path) -> None:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    env.pop("SOURCE_DATE_EPOCH", None)
    proc = subprocess.run(
        [sys.executable, "-m", "spin_bench.datagen", "generate", "--task=finger-spin",
         "--level=medium-expert", "--num_transitions=1000", "--version=1", f"--out={out}", "--num_workers=1",
         "--num_envs=2", "--no_progress"], cwd=cwd, env=env, capture_output=True, text=True,
        timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]


def _documented_check_row() -> dict:
    """The reproduction-check row of docs/data.md (the file this test regenerates)."""
    lines = (REPO / "docs" / "data.md").read_text().splitlines()
    start = lines.index("<!-- reproduction-check: the test reads this row -->")
    header = [c.strip() for c in lines[start + 1].strip("|").split("|")]
    cells = [c.strip() for c in lines[start + 3].strip("|").split("|")]
    return dict(zip(header, cells))


def test_two_generations_in_separate_processes_give_the_same_bytes(tmp_path):
    """The same command twice gives the same file and identity, and both match the row that
    docs/data.md publishes (made on another machine or day than any CI run's)."""
    import h5py

    files = []
    for name in ("first", "second"):
        d = tmp_path / name
        d.mkdir()
        _generate(d, d / "finger.hdf5")
        files.append(d / "finger.hdf5")
    a, b = (load_dataset(f) for f in files)
    assert a.identity == b.identity and a.sha256 == b.sha256 == read_sidecar(files[1])
    assert files[0].read_bytes() == files[1].read_bytes()
    assert a.attrs["mixture"] == {"medium": 500, "expert": 500}
    row = _documented_check_row()
    assert (row["task"], row["level"], int(row["transitions"])) == ("finger-spin", "medium-expert", 1000)
    assert a.identity == row["identity"], "the regenerated data differ from the published row"
    if (h5py.__version__, h5py.version.hdf5_version) == (row["h5py"], row["HDF5"]):
        assert a.sha256 == row["sha256"], "same h5py/HDF5 but other file bytes"
