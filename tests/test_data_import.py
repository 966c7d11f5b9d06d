"""Importer for the published dmc_datasets pickles, the restricted unpickler and the CLI."""
from __future__ import annotations

import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from spin_bench.data import DatasetError, DatasetStore, load_dataset, sha256_file
from spin_bench.data.published import import_published, published_path
from spin_bench.data.safe_pickle import UnsafePickleError, restricted_loads

EP_LEN = 1000
CALLS: list = []  # anything a malicious pickle manages to run appends here


def _record(marker: str) -> str:
    """What a malicious __reduce__ would call: must never run."""
    CALLS.append(marker)
    Path(marker).write_text("pwned")
    return marker


class Evil:
    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return (_record, (self.marker,))


def transitions(episodes: int = 2, obs_dim: int = 17, n: int = 6, bins: int = 3, seed: int = 0):
    """Published-style list of (state, action, reward, next_state, done), float64 states."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(episodes):
        states = rng.standard_normal((EP_LEN + 1, obs_dim))
        acts = rng.integers(0, bins, (EP_LEN, n))
        rews = rng.random(EP_LEN)
        for t in range(EP_LEN):
            out.append((states[t], acts[t], float(rews[t]), states[t + 1], t == EP_LEN - 1))
    return out


def publish(root: Path, data, task="cheetah-run", level="medium", bins=3, protocol=4) -> Path:
    path = published_path(root, task, level, bins)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data if isinstance(data, bytes) else pickle.dumps(data, protocol=protocol))
    return path


@pytest.fixture(autouse=True)
def _clear_calls():
    CALLS.clear()
    yield
    assert CALLS == [], "a pickled callable was executed"


# ----------------------------------------------------------------------------- importer

@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_import_round_trip(tmp_path, protocol):
    data = transitions()
    src = publish(tmp_path / "src", data, protocol=protocol)
    res = import_published(tmp_path / "src", "cheetah-run", "medium", 3, data_dir=tmp_path / "store")
    store = DatasetStore(tmp_path / "store")
    assert res.path == store.path_for("cheetah-run-medium-b3-v1") == store.find(res.dataset_id)
    assert store.sha256_of(res.dataset_id) == res.sha256 == sha256_file(res.path)
    ds = load_dataset(res.path, task="cheetah-run", bins=3)
    assert ds.observations.dtype == np.float32 and ds.actions.dtype == np.uint8
    np.testing.assert_array_equal(ds.observations, np.stack([d[0] for d in data]).astype(np.float32))
    np.testing.assert_array_equal(ds.next_observations, np.stack([d[3] for d in data]).astype(np.float32))
    np.testing.assert_array_equal(ds.actions, np.stack([d[1] for d in data]))
    np.testing.assert_array_equal(ds.rewards, np.array([d[2] for d in data], np.float32))
    assert not ds.terminals.any()
    np.testing.assert_array_equal(np.flatnonzero(ds.timeouts), [999, 1999])
    assert ds.num_episodes == 2 and res.num_episodes == 2 and res.warnings == []
    assert ds.attrs["source_path"] == "3_bins/cheetah-run-medium"
    assert ds.attrs["source_sha256"] == sha256_file(src)
    assert ds.attrs["level"] == "medium" and ds.attrs["bins"] == [3] * 6
    np.testing.assert_allclose(ds.attrs["behaviour_returns"], ds.episode_returns(), rtol=1e-5)
    with pytest.raises(DatasetError, match="already exists"):
        import_published(tmp_path / "src", "cheetah-run", "medium", 3, data_dir=tmp_path / "store")


def test_numpy1_module_names_and_numpy_scalars(tmp_path):
    data = [(s, a, np.float64(r), s2, np.bool_(d)) for s, a, r, s2, d in transitions(episodes=1)]
    raw = pickle.dumps(data, protocol=2).replace(b"numpy._core.multiarray", b"numpy.core.multiarray")
    assert b"numpy.core.multiarray\n_reconstruct" in raw
    publish(tmp_path, raw, level="expert")
    out = tmp_path / "out.hdf5"
    res = import_published(tmp_path, "cheetah-run", "expert", 3, out=out)
    assert res.path == out and load_dataset(out).num_transitions == EP_LEN


def test_malicious_pickle_is_refused_and_never_runs(tmp_path):
    marker = tmp_path / "marker"
    data = transitions(episodes=1)
    data[10] = (data[10][0], data[10][1], Evil(str(marker)), data[10][3], False)
    publish(tmp_path, data)
    with pytest.raises(DatasetError, match=r"refusing to load global '.*_record'.*nothing was executed"):
        import_published(tmp_path, "cheetah-run", "medium", 3, data_dir=tmp_path / "store")
    assert not marker.exists() and CALLS == []
    assert not (tmp_path / "store").exists() or not any((tmp_path / "store").iterdir())


@pytest.mark.parametrize("payload", [
    b"cos\nsystem\n(S'touch MARKER'\ntR.",                 # os.system, protocol 0
    b"cbuiltins\neval\n(S'1+1'\ntR.",                      # builtins.eval
    b"cbuiltins\ngetattr\n(cbuiltins\nobject\nS'x'\ntR.",  # builtins.getattr
    b"c_codecs\nencode\n(S'x'\nS'rot13'\ntR.",             # allowed name, refused argument
])
def test_restricted_unpickler_refuses_globals(tmp_path, monkeypatch, payload):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(UnsafePickleError, match="refus"):
        restricted_loads(payload)
    assert not (tmp_path / "MARKER").exists()
    with pytest.raises(UnsafePickleError):
        restricted_loads(pickle.dumps(Evil(str(tmp_path / "m"))))
    assert restricted_loads(pickle.dumps([(np.arange(3.0), 1, 2.5, None, True)], protocol=5))[0][2] == 2.5


BAD_SOURCES = {
    "not a list": ({"a": 1}, r"expected a list of \(state, action, reward, next_state, done\)"),
    "short tuple": ([(np.zeros(17), np.zeros(6, int), 0.0, np.zeros(17))],
                    r"transition 0: expected a 5-tuple"),
    "obs dim": ("obs16", r"transition 0: state: expected 17 values \(the task's observation size\), "
                         r"got shape \(16,\)"),
    "num actions": ("n5", r"transition 0: action: expected 6 bin indices"),
    "action range": ("a3", r"transition 7: action: expected bin indices 0 <= a < 3"),
    "done misplaced": ("done500", r"expected done flags exactly at the end of each 1000-step "
                                  r"episode, got done=True at transition 500"),
    "partial episode": ("cut", r"expected a whole number of 1000-step episodes, got 1500"),
    "truncated pickle": ("trunc", r"not a readable published dataset pickle \(.*\): truncated or corrupted"),
    "object array": ([(np.array([None] * 17), np.zeros(6, int), 0.0, np.zeros(17), True)],
                     r"unsafe pickle: refusing dtype 'O8'.*nothing was executed"),
}


def _bad_data(kind):
    if not isinstance(kind, str):
        return kind
    if kind == "obs16":
        return transitions(episodes=1, obs_dim=16)
    if kind == "n5":
        return transitions(episodes=1, n=5)
    data = transitions(episodes=2)
    if kind == "a3":
        data[7] = (data[7][0], np.array([0, 1, 2, 3, 0, 0]), *data[7][2:])
    elif kind == "done500":
        data[500] = (*data[500][:4], True)
    elif kind == "cut":
        data = data[:1500]
    elif kind == "trunc":
        return pickle.dumps(data, protocol=4)[:5000]
    return data


@pytest.mark.parametrize("name", sorted(BAD_SOURCES))
def test_bad_sources_are_clear_errors(tmp_path, name):
    data, pattern = BAD_SOURCES[name]
    src = publish(tmp_path, _bad_data(data))
    with pytest.raises(DatasetError, match=pattern) as info:
        import_published(tmp_path, "cheetah-run", "medium", 3, data_dir=tmp_path / "store")
    assert str(src) in str(info.value)
    assert not (tmp_path / "store").exists()


def test_missing_done_flags_and_trusting_done_flags(tmp_path):
    data = [(*d[:4], False) for d in transitions(episodes=2)]
    publish(tmp_path, data)
    res = import_published(tmp_path, "cheetah-run", "medium", 3, out=tmp_path / "a.hdf5")
    assert any("no done flags" in w for w in res.warnings)
    np.testing.assert_array_equal(np.flatnonzero(load_dataset(res.path).timeouts), [999, 1999])
    res = import_published(tmp_path, "cheetah-run", "medium", 3, out=tmp_path / "b.hdf5",
                           episode_length=None)
    assert load_dataset(res.path).num_episodes == 1 and any("mid-episode" in w for w in res.warnings)


def test_import_argument_errors(tmp_path):
    with pytest.raises(DatasetError, match=r"3_bins/cheetah-run-medium: no such file \(expected the "
                                           r"published layout"):
        import_published(tmp_path, "cheetah-run", "medium", 3, out=tmp_path / "x.hdf5")
    with pytest.raises(ValueError, match="not a benchmark task"):
        import_published(tmp_path, "cheetah-walk", "medium", 3)
    with pytest.raises(ValueError, match="not a published level"):
        import_published(tmp_path, "cheetah-run", "hard", 3)


# ----------------------------------------------------------------------------- command line

def cli(*args: str, env_extra=None) -> subprocess.CompletedProcess:
    env = dict(os.environ, **(env_extra or {}))
    env.pop("SPIN_BENCH_DEBUG", None)
    return subprocess.run([sys.executable, "-m", "spin_bench.data", *args], capture_output=True,
                          text=True, env=env, timeout=120)


def assert_one_line_failure(proc: subprocess.CompletedProcess, *needles: str) -> None:
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]


def test_cli_import_list_inspect(tmp_path):
    publish(tmp_path / "src", transitions(episodes=2))
    store = tmp_path / "store"
    proc = cli("import", f"--source={tmp_path / 'src'}", "--task=cheetah-run", "--level=medium",
               "--bins=3", f"--data_dir={store}")
    assert proc.returncode == 0, proc.stderr
    path = Path(proc.stdout.strip())
    assert path == store / "cheetah-run-medium-b3-v1.hdf5" and path.is_file()

    proc = cli("list", env_extra={"SPIN_BENCH_DATA_DIR": str(store)})
    assert proc.returncode == 0 and "cheetah-run-medium-b3-v1" in proc.stdout and "ok" in proc.stdout

    proc = cli("inspect", str(path))
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "cheetah-run-medium-b3-v1" in out and "2000 transitions, 2 episodes" in out
    assert "returns      min" in out and "median" in out
    assert "checksum     verified against" in out and load_dataset(path).sha256 in out
    assert out.count("\n  a") == 6 and "%" in out  # one histogram per sub-action

    proc = cli("inspect", "cheetah-run-medium-b3-v1", f"--data_dir={store}", "--json")
    assert proc.returncode == 0 and '"num_episodes": 2' in proc.stdout

    out_file = tmp_path / "explicit.hdf5"
    proc = cli("import", f"--source={tmp_path / 'src'}", "--task=cheetah-run", "--level=medium",
               "--bins=3", f"--out={out_file}")
    assert proc.returncode == 0 and Path(proc.stdout.strip()) == out_file and out_file.is_file()


def test_cli_failures_are_one_line(tmp_path):
    bad = tmp_path / "bad.hdf5"
    bad.write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0" * 40)
    assert_one_line_failure(cli("inspect", str(bad)), str(bad))

    marker = tmp_path / "marker"
    data = transitions(episodes=1)
    data[3] = (*data[3][:2], Evil(str(marker)), *data[3][3:])
    src = publish(tmp_path / "src", data)
    proc = cli("import", f"--source={tmp_path / 'src'}", "--task=cheetah-run", "--level=medium",
               "--bins=3", f"--data_dir={tmp_path / 'store'}")
    assert_one_line_failure(proc, str(src), "refusing to load global")
    assert not marker.exists()

    assert_one_line_failure(cli("import", f"--source={tmp_path}", "--task=cheetah", "--level=medium",
                                "--bins=3", f"--out={tmp_path / 'o.hdf5'}"), "cheetah")
    proc = cli("import", "--source=x", "--level=medium", "--bins=3")
    assert_one_line_failure(proc, "--task")
    assert proc.returncode == 2
    assert_one_line_failure(cli("inspect", "cheetah-run-expert-b3-v1",
                                f"--data_dir={tmp_path / 'empty'}"), "no such dataset in the store")
