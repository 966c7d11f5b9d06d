"""The dataset format: ids, writer, reader/validator, checksums, atomic writes, the store."""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import h5py
import numpy as np
import pytest

from spin_bench.data import (FORMAT_VERSION, DatasetError, DatasetStore, action_dtype, dataset_id,
                             load_dataset, parse_dataset_id, read_header, sha256_file, sidecar_path,
                             write_dataset)

T, EP = 200, 100
ATTRS = {"task": "cheetah-run", "level": "medium", "bins": 3, "seed": 7,
         "behaviour_policy": "test policy", "behaviour_returns": [1.5, 2.5],
         "generator": "tests", "generator_version": "0"}


def make_arrays(n: int = T, ep: int = EP, obs_dim: int = 17, bins=(3,) * 6, seed: int = 0):
    rng = np.random.default_rng(seed)
    obs = rng.standard_normal((n + 1, obs_dim)).astype(np.float32)
    return {
        "observations": obs[:-1].copy(), "next_observations": obs[1:].copy(),
        "actions": np.stack([rng.integers(0, b, n) for b in bins], axis=1).astype(np.uint8),
        "rewards": rng.random(n).astype(np.float32),
        "terminals": np.zeros(n, bool), "timeouts": (np.arange(n) % ep) == ep - 1,
    }


@pytest.fixture
def written(tmp_path):
    """A valid cheetah-run file and its arrays."""
    arrays = make_arrays()
    path = tmp_path / "d.hdf5"
    write_dataset(path, arrays, ATTRS)
    return path, arrays


def no_sidecar(path: Path) -> Path:
    sidecar_path(path).unlink(missing_ok=True)
    return path


# ----------------------------------------------------------------------------- ids

def test_dataset_id_spellings():
    assert dataset_id("cheetah-run", "medium-expert", 3) == "cheetah-run-medium-expert-b3-v1"
    assert dataset_id("cheetah-run", "medium", [3] * 6) == "cheetah-run-medium-b3-v1"
    assert dataset_id("cheetah-run", "medium", [3, 5, 3], version=2) == "cheetah-run-medium-b3x5x3-v2"
    assert dataset_id("ball_in_cup-catch", "expert", np.array([4, 4])) == "ball_in_cup-catch-expert-b4-v1"
    assert parse_dataset_id("dog-trot-random-medium-expert-b100-v1") == {
        "task": "dog-trot", "level": "random-medium-expert", "bins": [100], "version": 1}
    assert parse_dataset_id("cheetah-run-medium-b3x5x3-v2")["bins"] == [3, 5, 3]
    for bad in [("cheetah", "medium", 3), ("cheetah-run", "Medium", 3), ("cheetah-run", "medium", 1),
                ("cheetah-run", "medium", [3, 1]), ("cheetah-run", "b3", 3),
                ("cheetah-run", "medium", 3.0)]:
        with pytest.raises(ValueError):
            dataset_id(*bad)
    with pytest.raises(ValueError):
        dataset_id("cheetah-run", "medium", 3, version=0)
    with pytest.raises(ValueError, match="not a dataset id"):
        parse_dataset_id("cheetah-run-medium")


def test_action_dtype_is_smallest_unsigned():
    assert action_dtype(3) == np.uint8 and action_dtype(256) == np.uint8
    assert action_dtype([3, 257]) == np.uint16 and action_dtype(70000) == np.uint32


# ----------------------------------------------------------------------------- round trip

def test_round_trip(written):
    path, arrays = written
    ds = load_dataset(path)
    for key, arr in arrays.items():
        got = getattr(ds, key)
        assert got.dtype == arr.dtype and got.shape == arr.shape
        np.testing.assert_array_equal(got, arr)
    assert ds.num_transitions == T and ds.num_episodes == T // EP
    assert ds.sha256 == sha256_file(path) == hashlib.sha256(path.read_bytes()).hexdigest()
    assert sidecar_path(path).read_text() == (f"{ds.sha256}  d.hdf5\n"
                                              f"# data identity {ds.identity}\n")
    a = ds.attrs
    assert a["data_identity"] == ds.identity and len(ds.identity) == 64
    assert a["dataset_id"] == "cheetah-run-medium-b3-v1" and a["task"] == "cheetah-run"
    assert a["bins"] == [3] * 6 and a["level"] == "medium" and a["num_episodes"] == 2
    assert a["seed"] == 7 and a["behaviour_policy"] == "test policy"
    assert a["behaviour_returns"] == [1.5, 2.5] and a["format_version"] == FORMAT_VERSION
    assert a["generator"] == "tests" and a["obs_dim"] == 17 and a["num_actions"] == 6
    assert a["created"].endswith("Z")
    np.testing.assert_allclose(ds.episode_returns(), arrays["rewards"].reshape(2, EP).sum(1),
                               rtol=1e-6)
    np.testing.assert_array_equal(ds.episode_lengths(), [EP, EP])
    assert read_header(path)["num_transitions"] == T


def test_file_layout_chunked_compressed_checksummed(tmp_path):
    for comp in ("gzip", "lzf"):
        path = tmp_path / f"{comp}.hdf5"
        write_dataset(path, make_arrays(), ATTRS, compression=comp)
        with h5py.File(path) as f:
            for key in f:
                assert f[key].chunks is not None and f[key].compression == comp
                assert f[key].fletcher32
        load_dataset(path)


def test_coercion_and_json_attrs(tmp_path):
    arrays = make_arrays()
    arrays.update(actions=arrays["actions"].astype(np.int64), rewards=arrays["rewards"][:, None]
                  .astype(np.float64), timeouts=arrays["timeouts"].astype(np.int32),
                  observations=arrays["observations"].astype(np.float64))
    attrs = dict(ATTRS, extra={"nested": [1, 2]}, tags=["a", "b"], seed=None)
    write_dataset(tmp_path / "c.hdf5", arrays, attrs)
    ds = load_dataset(tmp_path / "c.hdf5")
    assert ds.actions.dtype == np.uint8 and ds.rewards.shape == (T,) and ds.timeouts.dtype == bool
    assert ds.attrs["extra"] == {"nested": [1, 2]} and ds.attrs["tags"] == ["a", "b"]
    assert "seed" not in ds.attrs


def test_reproducible_bytes(tmp_path, monkeypatch):
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    a = write_dataset(tmp_path / "a.hdf5", make_arrays(), ATTRS)
    b = write_dataset(tmp_path / "b.hdf5", make_arrays(), ATTRS)
    assert a == b


def test_to_torch_and_device(written):
    import torch

    path, arrays = written
    ds = load_dataset(path, device="cpu")
    t = ds.tensors
    assert t["actions"].dtype == torch.int64 and t["terminals"].dtype == torch.float32
    assert t["timeouts"].dtype == torch.float32 and t["observations"].dtype == torch.float32
    assert t["observations"].device.type == "cpu" and t["rewards"].shape == (T,)
    np.testing.assert_array_equal(t["actions"].numpy(), arrays["actions"])
    assert float(t["timeouts"].sum()) == 2.0
    assert set(ds.to_torch().keys()) == set(arrays)


def test_non_benchmark_task_uses_file_attrs_and_explicit_expectations(tmp_path):
    bins = [300, 5]
    arrays = make_arrays(n=50, ep=25, obs_dim=4, bins=bins)
    arrays["actions"] = arrays["actions"].astype(np.int64)
    arrays["actions"][0, 0] = 299
    path = tmp_path / "p.hdf5"
    write_dataset(path, arrays, {"task": "pendulum-swingup", "level": "random", "bins": bins})
    ds = load_dataset(path, task="pendulum-swingup", bins=[300, 5], obs_dim=4)
    assert ds.actions.dtype == np.uint16 and ds.dataset_id == "pendulum-swingup-random-b300x5-v1"
    with pytest.raises(DatasetError, match=r"p\.hdf5: obs_dim: expected 5 \(as requested\), got 4"):
        load_dataset(path, obs_dim=5)
    with pytest.raises(DatasetError, match=r"bins: expected \[3, 3\] \(as requested\), got \[300, 5\]"):
        load_dataset(path, bins=3)
    with pytest.raises(DatasetError, match=r"task: expected 'cheetah-run' \(as requested\)"):
        load_dataset(path, task="cheetah-run")


# ----------------------------------------------------------------------------- reader failures

def _set(key, fn):
    """Tamper: replace dataset `key` by fn(old array)."""
    def tamper(f):
        new = fn(f[key][()])
        del f[key]
        f.create_dataset(key, data=new)
    return tamper


def _attr(key, value):
    def tamper(f):
        if value is None:
            del f.attrs[key]
        else:
            f.attrs[key] = value
    return tamper


def _nan_reward(r):
    r = r.copy()
    r[17] = np.nan
    return r


def _inf_obs(o):
    o = o.copy()
    o[3, 4] = np.inf
    return o


def _bad_action(a):
    a = a.copy()
    a[5, 2] = 3
    return a


def _no_end(t):
    t = t.copy()
    t[-1] = False
    return t


TAMPERS = {
    "wrong dtype": (_set("observations", lambda o: o.astype(np.float64)),
                    r"observations: expected dtype float32, got dtype float64"),
    "action dtype": (_set("actions", lambda a: a.astype(np.int64)),
                     r"actions: expected dtype uint8 \(smallest unsigned int for bins .*\), got dtype int64"),
    "wrong shape": (_set("observations", lambda o: o[:, :16]),
                    r"observations: expected shape \(200, 17\), got shape \(200, 16\)"),
    "short rewards": (_set("rewards", lambda r: r[:-1]),
                      r"rewards: expected shape \(200,\) \(all arrays must have the same number of "
                      r"transitions\), got shape \(199,\)"),
    "2-D rewards": (_set("rewards", lambda r: r[:, None]), r"rewards: expected shape \(200,\)"),
    "flag dtype": (_set("terminals", lambda t: t.astype(np.uint8)),
                   r"terminals: expected dtype bool, got dtype uint8"),
    "out of range action": (_set("actions", _bad_action),
                            r"actions: expected bin indices 0 <= a < 3 for sub-action 2, got 3 at "
                            r"transition 5"),
    "nan": (_set("rewards", _nan_reward), r"rewards: expected finite values, got nan at index 17"),
    "inf": (_set("next_observations", _inf_obs),
            r"next_observations: expected finite values, got inf at index \(3, 4\)"),
    "missing key": (lambda f: f.__delitem__("timeouts"), r"timeouts: expected an array .*missing"),
    "extra key": (lambda f: f.create_dataset("infos", data=np.zeros(3)),
                  r"infos: expected no such key"),
    "missing attr": (_attr("generator", None), r"generator: expected a dataset attribute"),
    "registry obs dim": (_attr("obs_dim", 16),
                         r"obs_dim: expected 17 for cheetah-run \(task registry\), got 16"),
    "bins attr": (_attr("bins", np.array([3, 3])),
                  r"bins: expected 6 integers >= 2 \(one per sub-action\), got 2 values"),
    "id mismatch": (_attr("dataset_id", "cheetah-run-expert-b3-v1"),
                    r"dataset_id: expected 'cheetah-run-medium-b3-v1'"),
    "episodes attr": (_attr("num_episodes", 3), r"num_episodes: expected 2 .*got 3"),
    "unended data": (_set("timeouts", _no_end), r"timeouts: expected the last transition to end"),
    "newer format": (_attr("format_version", FORMAT_VERSION + 1),
                     r"format_version: expected <= 1 \(written by a newer spin_bench"),
}


@pytest.mark.parametrize("name", sorted(TAMPERS))
def test_validation_failures_name_file_key_and_expectation(written, name):
    path, _ = written
    tamper, pattern = TAMPERS[name]
    with h5py.File(no_sidecar(path), "r+") as f:
        tamper(f)
    with pytest.raises(DatasetError, match=pattern) as info:
        load_dataset(path)
    assert str(info.value).startswith(f"{path}: ")
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize("cut", ["head", "half", "tail"])
def test_truncated_file_is_a_clear_error(written, cut):
    path, _ = written
    size = path.stat().st_size
    os.truncate(no_sidecar(path), {"head": 100, "half": size // 2, "tail": size - 10}[cut])
    with pytest.raises(DatasetError, match=r"d\.hdf5: expected an HDF5 dataset file.*truncated"):
        load_dataset(path)


def test_corrupted_chunk_is_detected(written):
    path, _ = written
    with h5py.File(path) as f:
        info = f["rewards"].id.get_chunk_info(0)
    with open(path, "r+b") as fh:
        fh.seek(info.byte_offset + info.size // 2)
        byte = fh.read(1)
        fh.seek(info.byte_offset + info.size // 2)
        fh.write(bytes([byte[0] ^ 0xFF]))
    with pytest.raises(DatasetError, match=r"checksum mismatch: expected sha256 [0-9a-f]{64} "
                                           r"\(recorded in .*d\.hdf5\.sha256\)"):
        load_dataset(path)
    # without the checksum, HDF5's per-chunk Fletcher-32 still refuses the wrong bytes
    with pytest.raises(DatasetError, match=r"rewards: expected readable data.*corrupted"):
        load_dataset(path, verify_checksum=False)


def test_checksum_mismatch_and_explicit_opt_out(written):
    path, arrays = written
    with h5py.File(path, "r+") as f:  # a valid but modified file
        f.attrs["note"] = "edited"
    with pytest.raises(DatasetError, match=r"d\.hdf5: checksum mismatch.*verify_checksum=False"):
        load_dataset(path)
    ds = load_dataset(path, verify_checksum=False)
    assert ds.sha256 == sha256_file(path) and ds.attrs["note"] == "edited"
    sidecar_path(path).write_text("not a checksum\n")
    with pytest.raises(DatasetError, match=r"d\.hdf5\.sha256: expected '<64 hex digits>"):
        load_dataset(path)


def test_not_hdf5_and_missing(tmp_path):
    bad = tmp_path / "x.hdf5"
    bad.write_text("hello")
    with pytest.raises(DatasetError, match=r"x\.hdf5: expected an HDF5 dataset file"):
        load_dataset(bad)
    with pytest.raises(DatasetError, match=r"nope\.hdf5: no such dataset file"):
        load_dataset(tmp_path / "nope.hdf5")


# ----------------------------------------------------------------------------- writer

def test_writer_validates_before_writing(tmp_path):
    path = tmp_path / "w.hdf5"
    arrays = make_arrays()
    bad_actions = dict(arrays, actions=arrays["actions"].astype(np.int64))
    with pytest.raises(DatasetError, match=r"w\.hdf5: actions: expected dtype uint8"):
        write_dataset(path, bad_actions, ATTRS, coerce=False)
    neg = dict(bad_actions)
    neg["actions"] = bad_actions["actions"].copy()
    neg["actions"][4, 1] = -1
    with pytest.raises(DatasetError, match=r"actions: expected bin indices >= 0, got -1"):
        write_dataset(path, neg, ATTRS)
    with pytest.raises(DatasetError, match=r"actions: expected dtype uint8.*float"):
        write_dataset(path, dict(arrays, actions=arrays["actions"].astype(np.float32)), ATTRS)
    with pytest.raises(DatasetError, match=r"rewards: expected finite values"):
        write_dataset(path, dict(arrays, rewards=_nan_reward(arrays["rewards"])), ATTRS)
    with pytest.raises(DatasetError, match=r"observations: expected shape \(200, 17\)"):
        write_dataset(path, dict(arrays, observations=arrays["observations"][:, :5]),
                      dict(ATTRS, obs_dim=17))
    with pytest.raises(DatasetError, match=r"observations: expected shape \(200, 17\), got shape "
                                           r"\(200, 5\)"):
        write_dataset(path, dict(arrays, observations=arrays["observations"][:, :5]), ATTRS)
    with pytest.raises(DatasetError, match=r"actions: expected shape \(200, 6\)"):
        write_dataset(path, dict(arrays, actions=arrays["actions"][:, :5]), ATTRS)
    with pytest.raises(DatasetError, match=r"obs_dim: expected 17 for cheetah-run \(task registry\)"):
        write_dataset(path, arrays, dict(ATTRS, obs_dim=16))
    with pytest.raises(DatasetError, match=r"observations: expected a \(T, obs_dim\) array"):
        write_dataset(path, dict(arrays, observations=arrays["rewards"]),
                      dict(ATTRS, task="pendulum-swingup"))
    with pytest.raises(DatasetError, match=r"task: expected a dataset attribute"):
        write_dataset(path, arrays, {"level": "medium", "bins": 3})
    with pytest.raises(DatasetError, match=r"observations: expected at least one transition"):
        write_dataset(path, make_arrays(n=0), ATTRS)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("exc", [RuntimeError, KeyboardInterrupt])
def test_interrupted_write_leaves_nothing_behind(tmp_path, monkeypatch, exc):
    path = tmp_path / "a.hdf5"
    old_sha = write_dataset(path, make_arrays(seed=1), ATTRS)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    real = h5py.Group.create_dataset
    calls = []

    def flaky(self, *args, **kwargs):
        calls.append(args[0])
        if len(calls) == 3:
            raise exc("disk full (simulated)")
        return real(self, *args, **kwargs)

    monkeypatch.setattr(h5py.Group, "create_dataset", flaky)
    for target in (path, tmp_path / "new.hdf5"):
        calls.clear()
        with pytest.raises(exc, match="simulated"):
            write_dataset(target, make_arrays(seed=2), ATTRS)
    # the old file and its sidecar are untouched; no new file, no temp file
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before
    monkeypatch.undo()
    assert load_dataset(path).sha256 == old_sha


# ----------------------------------------------------------------------------- store

def test_store_root_resolution(tmp_path, monkeypatch):
    monkeypatch.delenv("SPIN_BENCH_DATA_DIR", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert DatasetStore().root == tmp_path / "home" / ".spin_bench" / "datasets"
    monkeypatch.setenv("SPIN_BENCH_DATA_DIR", str(tmp_path / "env"))
    assert DatasetStore().root == tmp_path / "env"
    assert DatasetStore(tmp_path / "arg").root == tmp_path / "arg"
    ds_id = "cheetah-run-medium-b3-v1"
    assert DatasetStore(tmp_path / "arg").path_for(ds_id) == tmp_path / "arg" / f"{ds_id}.hdf5"
    with pytest.raises(ValueError):
        DatasetStore(tmp_path).path_for("../etc/passwd")


def test_store_register_find_and_load_by_id(tmp_path):
    store = DatasetStore(tmp_path / "store")
    ds_id = dataset_id("cheetah-run", "medium", 3)
    assert store.entries() == {} and store.find(ds_id) is None and store.sha256_of(ds_id) is None
    path = store.path_for(ds_id)
    sha = write_dataset(path, make_arrays(), ATTRS)
    entry = store.register(path)
    assert entry["sha256"] == sha and entry["size"] == path.stat().st_size
    assert entry["path"] == str(path) and entry["num_transitions"] == T
    assert store.entries() == {ds_id: entry}
    assert store.find(ds_id) == path and store.sha256_of(ds_id) == sha
    raw = json.loads(store.registry_path.read_text())
    assert raw["datasets"][ds_id]["path"] == f"{ds_id}.hdf5"  # relative: the store can move
    assert sorted(p.name for p in store.root.iterdir()) == sorted(
        [f"{ds_id}.hdf5", f"{ds_id}.hdf5.sha256", "registry.json", ".registry.lock"])
    ds = load_dataset(ds_id, data_dir=store.root)
    assert ds.path == path and ds.sha256 == sha
    with pytest.raises(DatasetError, match=r"cheetah-run-expert-b3-v1: no such dataset in the store"):
        load_dataset("cheetah-run-expert-b3-v1", data_dir=store.root)
    # outside files are registered with an absolute path
    other = tmp_path / "elsewhere" / "x.hdf5"
    write_dataset(other, make_arrays(), dict(ATTRS, level="expert"))
    assert store.register(other)["path"] == str(other)
    assert store.find("cheetah-run-expert-b3-v1") == other
    assert store.unregister("cheetah-run-expert-b3-v1") and not store.unregister("cheetah-run-expert-b3-v1")


def test_store_registry_checksum_is_verified(tmp_path):
    store = DatasetStore(tmp_path)
    path = store.path_for("cheetah-run-medium-b3-v1")
    write_dataset(path, make_arrays(), ATTRS)
    store.register(no_sidecar(path))
    with h5py.File(path, "r+") as f:
        f.attrs["note"] = "edited"
    with pytest.raises(DatasetError, match=r"checksum mismatch.*registry\.json \(entry "
                                           r"cheetah-run-medium-b3-v1\)"):
        load_dataset(path)
    load_dataset(path, verify_checksum=False)


def test_store_refuses_bad_files_and_registry(tmp_path):
    store = DatasetStore(tmp_path)
    path = tmp_path / "a.hdf5"
    write_dataset(path, make_arrays(), ATTRS)
    with h5py.File(path, "r+") as f:
        f.attrs["note"] = "edited"
    with pytest.raises(DatasetError, match="sidecar records"):
        store.register(path)
    with pytest.raises(DatasetError, match="no such dataset file"):
        store.register(tmp_path / "missing.hdf5")
    store.registry_path.write_text("{not json")
    with pytest.raises(DatasetError, match=r"registry\.json: expected a registry JSON document"):
        store.entries()


def _register_many(root: str, paths) -> None:
    store = DatasetStore(root)
    for p in paths:
        store.register(p)


def test_concurrent_registrations_lose_nothing(tmp_path):
    import multiprocessing

    levels = [f"l{i}" for i in range(8)]
    paths = []
    for level in levels:
        paths.append(tmp_path / f"{level}.hdf5")
        write_dataset(paths[-1], make_arrays(n=10, ep=10), dict(ATTRS, level=level))
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_register_many, args=(str(tmp_path / "store"), paths[i::4]))
             for i in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    entries = DatasetStore(tmp_path / "store").entries()
    assert sorted(entries) == sorted(f"cheetah-run-{lv}-b3-v1" for lv in levels)
    assert not [p for p in (tmp_path / "store").iterdir() if p.name.endswith(".tmp")]
