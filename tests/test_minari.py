"""Minari export and import (the optional ``minari`` extra): a generated dataset makes the
round trip exactly, Minari itself reads it (episodes, MultiDiscrete actions, environment,
provenance), and a modified Minari file or an existing target is refused with one line."""
import json
import os
import subprocess
import sys

import h5py
import numpy as np
import pytest

minari = pytest.importorskip("minari")

from spin_bench.data import load_dataset, write_dataset  # noqa: E402
from spin_bench.data.minari_io import minari_id  # noqa: E402
from spin_bench.datagen.paths import newest_policy_version  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TASK = "finger-spin"  # generated from the shipped finger-spin behaviour policies


def _cli(*args, env_extra=None):
    env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""))
    env.update(env_extra or {})
    return subprocess.run([sys.executable, "-m", "spin_bench.data", *args], capture_output=True,
                          text=True, env=env, timeout=300)


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    from spin_bench.datagen.generate import generate_dataset

    root = tmp_path_factory.mktemp("minari")
    path = generate_dataset(TASK, "medium-expert", bins=3, num_transitions=2000, seed=0,
                            data_dir=str(root / "datasets"), progress=False, num_workers=0, num_envs=4)
    return root, path


def test_round_trip_of_a_generated_dataset_is_exact(generated):
    root, path = generated
    mroot = root / "minari_rt"
    res = _cli("export-minari", str(path), "--minari_root", str(mroot))
    assert res.returncode == 0, res.stderr
    src = load_dataset(path)
    mid = minari_id(src.dataset_id)
    assert mid == f"dmc-discrete/finger-spin/medium-expert-b3-v{newest_policy_version(TASK)}"  # the default version
    assert res.stdout.strip() == str(mroot / mid)

    # what a Minari user sees
    os.environ["MINARI_DATASETS_PATH"] = str(mroot)
    try:
        mds = minari.load_dataset(mid)
    finally:
        del os.environ["MINARI_DATASETS_PATH"]
    assert mds.total_episodes == src.num_episodes and mds.total_steps == src.num_transitions
    assert list(mds.action_space.nvec) == [3, 3]
    eps = list(mds.iterate_episodes())
    assert [len(e.rewards) for e in eps] == src.episode_lengths().tolist()
    np.testing.assert_array_equal(eps[0].observations[:-1], src.observations[:len(eps[0].rewards)])
    prov = json.loads(mds.storage.metadata["spin_bench"])
    assert prov["sha256"] == src.sha256 and prov["dataset_id"] == src.dataset_id
    env = mds.recover_environment()
    obs, _ = env.reset(seed=0)
    assert obs.shape == (src.obs_dim,) and env.action_space == mds.action_space
    env.close()

    out = root / "back.hdf5"
    res = _cli("import-minari", mid, "--minari_root", str(mroot), "--out", str(out))
    assert res.returncode == 0, res.stderr
    back = load_dataset(out)  # verifies the new file's sha256 sidecar
    for key, arr in src.arrays().items():
        assert back.arrays()[key].dtype == arr.dtype, key
        np.testing.assert_array_equal(back.arrays()[key], arr, err_msg=key)
    extra = {"minari_id", "minari_source_sha256"}
    assert set(back.attrs) == set(src.attrs) | extra
    for k, v in src.attrs.items():
        np.testing.assert_equal(back.attrs[k], v, err_msg=k)
    assert back.attrs["minari_source_sha256"] == src.sha256
    assert back.identity == src.identity  # the data identity (arrays + defining attributes)


def test_modified_minari_data_and_existing_targets_are_refused(generated):
    root, path = generated
    mroot = root / "minari_bad"
    assert _cli("export-minari", str(path), "--minari_root", str(mroot)).returncode == 0
    again = _cli("export-minari", str(path), "--minari_root", str(mroot))
    assert again.returncode != 0 and again.stderr.count("\n") == 1 and "--overwrite" in again.stderr
    assert _cli("export-minari", str(path), "--minari_root", str(mroot), "--overwrite").returncode == 0

    mid = minari_id(load_dataset(path).dataset_id)
    with h5py.File(mroot / mid / "data" / "main_data.hdf5", "r+") as f:
        f["episode_0/rewards"][0] += 1.0
    out = root / "tampered.hdf5"
    res = _cli("import-minari", mid, "--minari_root", str(mroot), "--out", str(out))
    assert res.returncode != 0 and res.stderr.count("\n") == 1, res.stderr
    assert "rewards" in res.stderr and "checksum mismatch" in res.stderr
    assert not out.exists()


def test_observations_that_do_not_chain_cannot_be_exported(tmp_path):
    rng = np.random.default_rng(0)
    n = 20
    arrays = {"observations": rng.standard_normal((n, 9)).astype(np.float32),
              "next_observations": rng.standard_normal((n, 9)).astype(np.float32),
              "actions": rng.integers(0, 3, (n, 2)).astype(np.uint8),
              "rewards": rng.random(n).astype(np.float32),
              "terminals": np.zeros(n, bool), "timeouts": np.arange(n) % 10 == 9}
    path = tmp_path / "d.hdf5"
    write_dataset(path, arrays, {"task": TASK, "level": "medium", "bins": 3})
    res = _cli("export-minari", str(path), "--minari_root", str(tmp_path / "m"))
    assert res.returncode != 0 and res.stderr.count("\n") == 1
    assert "next_observations" in res.stderr and "transition 0" in res.stderr
    assert not (tmp_path / "m" / "dmc-discrete").exists()
