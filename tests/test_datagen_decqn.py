"""Behaviour-policy training and dataset generation at smoke scale (spin_bench.datagen)."""
import json
import os
import shutil

import gin
import numpy as np
import pytest
import torch

from spin_bench import datagen as dg
from spin_bench.datagen import decqn  # noqa: F401  (registers train_decqn with gin)
from spin_bench.data import sha256_file

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GIN = os.path.join(REPO, "gin", "datagen")
TASK = "cheetah-run"


def _train(task, out_dir, bindings=(), **kw):
    gin.clear_config()
    gin.add_config_file_search_path(REPO)
    gin.parse_config_files_and_bindings(
        [os.path.join(GIN, "base.gin"), os.path.join(GIN, "smoke.gin")], list(bindings))
    try:
        return dg.train_decqn(task=task, out_dir=str(out_dir), progress=False, **kw)
    finally:
        gin.clear_config()


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    """One smoke DecQN run on cheetah-run (checkpoints at 2,000 and 4,000 env steps) and
    its exported policies, shared by the tests below."""
    root = tmp_path_factory.mktemp("datagen")
    run = root / "run"
    summary = _train(TASK, run, ["train_decqn.eval_every = 4000"])
    pol = root / "policies"
    # medium fraction widened: at smoke scale the two snapshots are not 40-50% apart
    dg.export_policies(TASK, str(run), out_dir=str(pol / TASK), episodes=2, top_k=2,
                       medium_fraction=(0.0, 1.0))
    return dict(root=root, run=run, summary=summary, policies=pol)


def test_shipped_and_exported_policies_name_no_machine_path(smoke_run):
    """policies.json records the behaviour run by its folder name, never an absolute path."""
    from spin_bench.datagen.paths import POLICY_ROOT

    files = [os.path.join(smoke_run["policies"], TASK, "policies.json")] + \
        [os.path.join(POLICY_ROOT, d, "policies.json") for d in sorted(os.listdir(POLICY_ROOT))
         if os.path.isfile(os.path.join(POLICY_ROOT, d, "policies.json"))]
    assert len(files) >= 4
    for path in files:
        with open(path) as f:
            text = f.read()
        doc = json.loads(text)
        assert "run_dir" not in doc and os.sep not in doc["run"], path
        assert str(smoke_run["root"]) not in text and "/work/" not in text, path


@pytest.fixture
def policies(smoke_run, monkeypatch):
    monkeypatch.setenv("SPIN_BENCH_POLICY_DIR", str(smoke_run["policies"]))
    # references at smoke scale (in the temporary policy dir, never the package CSV)
    dg.write_reference(TASK, 3, 50.0, 5.0)
    return smoke_run["policies"]


def test_decqn_learns_above_random(smoke_run):
    rand = dg.collect_episodes(TASK, 3, None, range(3), seed=0, store=False)["episode_returns"]
    best = smoke_run["summary"]["last"]["eval_return_mean"]
    # uniform random on cheetah-run scores ~5 (published reference 5.39); the smoke learner
    # runs forwards (typically 30-60 after 4,000 env steps)
    assert rand.mean() < 12
    assert best > 3 * rand.mean() + 5, (best, rand)
    rows = dg.read_metrics(os.path.join(smoke_run["run"], "metrics.csv"))
    assert [int(r["env_steps"]) for r in rows] == [4000]
    assert np.isfinite(rows[-1]["loss"]) and rows[-1]["updates"] > 1000
    snaps = sorted(os.listdir(smoke_run["run"] / "snapshots"))
    assert snaps == ["step_00002000.pt", "step_00004000.pt"]
    net = dg.load_snapshot(str(smoke_run["run"] / "snapshots" / snaps[-1]))
    assert net.greedy(np.zeros((3, 17), np.float32)).shape == (3, 6)
    assert os.path.getsize(smoke_run["run"] / "snapshots" / snaps[-1]) < 200_000  # 64x64 smoke net


def test_resume_continues_from_checkpoint(smoke_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(smoke_run["run"], run)
    os.remove(run / "replay.npz")  # also exercises the refill path
    out = _train(TASK, run, ["train_decqn.total_env_steps = 6000",
                             "train_decqn.eval_every = 2000"], resume=True)
    assert out["env_steps"] == 6000
    rows = dg.read_metrics(os.path.join(run, "metrics.csv"))
    assert [int(r["env_steps"]) for r in rows] == [4000, 6000]
    assert rows[0] == dg.read_metrics(os.path.join(smoke_run["run"], "metrics.csv"))[0]
    # refill of learning_starts (500) steps before updating again: 1500 steps -> 750 updates
    assert rows[1]["updates"] - rows[0]["updates"] == 750
    assert os.path.exists(run / "snapshots" / "step_00006000.pt")
    assert rows[1]["episodes"] > rows[0]["episodes"]


def test_nstep_returns_and_episode_ends():
    """n-step targets: discounted partial sums, bootstrap through truncation only."""
    buf = dg.ReplayBuffer(5000, 17, 6)
    col = dg.NStepCollector(TASK, 3, num_envs=2, n_step=3, gamma=0.5, seed=0)
    for _ in range(1000):
        col.step(np.zeros((2, 6), np.uint8), buf)
    assert buf.size == 2000  # every step of both episodes, tails flushed at the time limit
    # the last transition emitted for env 1 is the 1-step tail of its episode
    assert np.isclose(buf.disc[buf.size - 1], 0.5)
    full = buf.disc[:buf.size]
    assert np.isclose(full, 0.125).sum() == 2 * 998
    assert col.completed_returns and len(col.completed_returns) == 2


def test_collection_evaluates_the_policies_in_float64(policies):
    """Float32 greedy decisions depend on the CPU's instruction set (docs/data-identity.md)."""
    from spin_bench.datagen.policy import load_snapshot
    from spin_bench.datagen.rollouts import _SnapshotPolicy

    pol = _SnapshotPolicy(dg.policy_path(TASK, "medium"))
    assert all(p.dtype == torch.float64 for p in pol.net.parameters())
    obs = np.random.default_rng(0).normal(size=(64, pol.net.obs_dim))
    exact = pol(obs)
    with torch.no_grad():
        u = load_snapshot(dg.policy_path(TASK, "medium")).double()(torch.as_tensor(obs))
    np.testing.assert_array_equal(exact, u.argmax(-1).numpy())
    assert load_snapshot(dg.policy_path(TASK, "medium")).mlp[0].weight.dtype == torch.float32


def test_generation_is_deterministic(policies, tmp_path):
    a = dg.collect_transitions(TASK, 3, "medium", 1500, seed=3, num_envs=2, num_workers=1)
    b = dg.collect_transitions(TASK, 3, "medium", 1500, seed=3, num_envs=2, num_workers=2)
    c = dg.collect_transitions(TASK, 3, "medium", 300, seed=4, num_envs=2, num_workers=1)
    for k in ("observations", "actions", "rewards", "next_observations", "terminals", "timeouts"):
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)
    assert not np.array_equal(a["actions"][:300], c["actions"])
    assert a["timeouts"][999] and a["timeouts"][-1] and a["timeouts"].sum() == 2
    np.testing.assert_array_equal(a["observations"][1:1000], a["next_observations"][:999])


def test_levels_sizes_mixtures_and_files(policies, tmp_path, monkeypatch, capsys):
    from spin_bench.data import load_dataset

    data_dir = tmp_path / "store"
    cache = {}
    path = dg.generate_dataset(TASK, "random-medium-expert", num_transitions=2500, seed=1,
                               data_dir=data_dir, num_workers=1, num_envs=2, progress=False,
                               cache=cache)
    assert path.parent.name == "n2500-s1" and path.parent.parent.name == "generated"
    ds = load_dataset(path)
    attrs = ds.attrs
    assert ds.num_transitions == 2500
    assert attrs["mixture"] == {"random": 833, "medium": 833, "expert": 834}
    assert attrs["reference_expert"] == 50.0 and attrs["reference_random"] == 5.0
    arr = ds.arrays()
    ends = np.flatnonzero(arr["timeouts"] | arr["terminals"])
    assert list(ends) == [832, 1665, 2499]  # each source's block ends its own (cut) episode
    # the random block is uniform-random, the policy blocks are not
    assert 0.25 < (arr["actions"][:833] == 0).mean() < 0.42
    me = dg.generate_dataset(TASK, "medium-expert", num_transitions=2000, seed=1,
                             data_dir=data_dir, num_workers=1, num_envs=2, progress=False,
                             cache=cache)
    med = cache[(TASK, "3", 1, "medium", 1, dg.COLLECT_EPSILON)]  # version 1: the 1,000-transition stream
    assert len(med["actions"]) == 1000
    me_arr = load_dataset(me).arrays()
    np.testing.assert_array_equal(me_arr["actions"][:1000], med["actions"])
    # the rme medium block is the prefix of the same stream
    np.testing.assert_array_equal(arr["observations"][833:1666], med["observations"][:833])
    assert load_dataset(me).attrs["mixture"] == {"medium": 1000, "expert": 1000}
    # ensure_dataset finds the registered file instead of generating again
    assert dg.ensure_dataset(TASK, "medium-expert", num_transitions=2000, seed=1,
                             data_dir=data_dir) == me
    # ... unless the shipped policies changed since: then it is regenerated from the new ones
    expert, medium = dg.policy_path(TASK, "expert"), dg.policy_path(TASK, "medium")
    original = open(expert, "rb").read()
    try:
        with open(expert, "wb") as f:
            f.write(open(medium, "rb").read())
        regenerated = dg.ensure_dataset(TASK, "medium-expert", num_transitions=2000, seed=1,
                                        data_dir=data_dir, progress=False)
        assert regenerated == me
        assert load_dataset(me).attrs["policies"]["expert"]["sha256"] == sha256_file(expert)
    finally:
        with open(expert, "wb") as f:
            f.write(original)
    # ... and a file from the float32 collector (machine-dependent data) is regenerated too
    from spin_bench.datagen import generate as gen

    assert load_dataset(me).attrs["policies"]["medium"]["precision"] == "float64"
    monkeypatch.setattr(gen, "POLICY_PRECISION", "float32")
    stale = dg.generate_dataset(TASK, "medium-expert", num_transitions=2000, seed=1, data_dir=data_dir,
                                num_workers=1, num_envs=2, progress=False)
    assert load_dataset(stale).attrs["policies"]["medium"]["precision"] == "float32"
    monkeypatch.undo()
    again = dg.ensure_dataset(TASK, "medium-expert", num_transitions=2000, seed=1, data_dir=data_dir,
                              progress=False)
    assert again == me and load_dataset(me).attrs["policies"]["expert"]["precision"] == "float64"
    assert "float32 collector" in capsys.readouterr().out
    assert dg.level_plan("medium-expert") == [("medium", 1_000_000), ("expert", 1_000_000)]
    assert sum(n for _, n in dg.level_plan("random-medium-expert")) == 200_000


@pytest.mark.parametrize("task", ["humanoid-stand", "dog-trot"])
def test_gpu_tier_tasks_smoke(task, tmp_path):
    """The same code path on the big tasks (their gin configs parse; a few hundred steps)."""
    gin.clear_config()
    gin.add_config_file_search_path(REPO)
    gin.parse_config_files_and_bindings([os.path.join(GIN, f"{task}.gin"), os.path.join(GIN, "smoke.gin")],
                                        ["train_decqn.total_env_steps = 400",
                                         "train_decqn.num_envs = 2",
                                         "train_decqn.learning_starts = 200",
                                         "train_decqn.eval_every = 10000",
                                         "train_decqn.snapshot_every = 400"])
    try:
        out = dg.train_decqn(task=task, out_dir=str(tmp_path), progress=False)
    finally:
        gin.clear_config()
    assert out["env_steps"] == 400 and out["updates"] == 100
    snap = tmp_path / "snapshots" / "step_00000400.pt"
    net = dg.load_snapshot(str(snap))
    res = dg.collect_episodes(task, 3, net.greedy, [0], seed=0, num_envs=1, store=True)
    ep = res["episodes"][0]
    assert ep["act"].shape[1] == net.num_slots and np.isfinite(res["episode_returns"]).all()


@pytest.mark.parametrize("task", ["cheetah-run", "finger-spin", "quadruped-walk"])
def test_every_cpu_tier_task_generates_from_its_shipped_policies(task, tmp_path):
    """A fresh clone can make every level: the committed expert/medium weights load and roll out."""
    from spin_bench.data import load_dataset

    path = dg.ensure_dataset(task, "random-medium-expert", num_transitions=3000, data_dir=str(tmp_path),
                             progress=False)
    ds = load_dataset(path)
    assert ds.num_transitions == 3000 and ds.task == task and ds.level == "random-medium-expert"
    assert ds.attrs["reference_source"] == "generated" and ds.attrs["reference_expert"] > ds.attrs["reference_random"]
    assert set(ds.attrs["mixture"]) == {"random", "medium", "expert"}
