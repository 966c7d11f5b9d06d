"""Discretised DM Control environments: parity with dm_control, determinism, errors."""
import numpy as np
import pytest
from dm_control import suite

from spin_bench.envs import (BENCHMARK_TASKS, AtomicActionView, EpisodeLoop, VectorEnv, available_tasks,
                             flatten_observation, get_task_spec, make_env, reference_returns)

PARITY_TASKS = ["cheetah-run", "quadruped-walk", "finger-spin", "dog-trot"]


def _direct_rollout(task, seed, continuous_actions):
    domain, name = task.split("-")
    env = suite.load(domain, name, task_kwargs={"random": seed})
    ts = env.reset()
    obs = [flatten_observation(ts.observation)]
    rews = []
    for a in continuous_actions:
        ts = env.step(a)
        obs.append(flatten_observation(ts.observation))
        rews.append(ts.reward)
    return np.stack(obs), np.array(rews)


@pytest.mark.parametrize("task", PARITY_TASKS)
def test_parity_with_dm_control(task):
    """Same seed and the linspace action map give bit-identical observations and rewards."""
    env = make_env(task, bins=3)
    rng = np.random.default_rng(0)
    idx = rng.integers(0, 3, size=(15, env.num_actions))
    continuous = np.linspace(-1, 1, 3)[idx]
    ref_obs, ref_rew = _direct_rollout(task, 7, continuous)
    obs0, _ = env.reset(seed=7)
    ours, rews = [obs0], []
    for a in idx:
        o, r, te, tr, _ = env.step(a)
        ours.append(o)
        rews.append(r)
    assert obs0.dtype == np.float32
    np.testing.assert_array_equal(np.stack(ours), ref_obs.astype(np.float32))
    np.testing.assert_allclose(rews, ref_rew)
    spec = get_task_spec(task)
    assert env.obs_dim == spec.obs_dim and env.num_actions == spec.num_actions


def test_quadruped_asymmetric_ctrlrange_uses_linspace_not_ctrlrange():
    """Bins map to linspace(-1, 1) regardless of the actuator's range (MuJoCo clamps)."""
    env = make_env("quadruped-walk", bins=5)
    ctrlrange = env.physics.model.actuator_ctrlrange
    assert np.isclose(ctrlrange[:, 1], 1.1).any() and np.isclose(ctrlrange[:, 1], 0.8).any()
    env.reset(seed=0)
    a = np.array([0, 1, 2, 3, 4] * 2 + [4, 0])
    env.step(a)
    np.testing.assert_allclose(env.physics.data.ctrl, np.linspace(-1, 1, 5)[a])


def test_per_dimension_bins_and_values():
    env = make_env("cheetah-run", bins=[2, 3, 5, 3, 3, 7])
    assert list(env.action_space.nvec) == [2, 3, 5, 3, 3, 7]
    a = np.array([1, 0, 2, 1, 2, 6])
    np.testing.assert_allclose(env.action_to_continuous(a), [1.0, -1.0, 0.0, 0.0, 1.0, 1.0])


def test_episode_truncates_at_1000_steps():
    env = make_env("cheetah-run")
    env.reset(seed=1)
    a = np.ones(6, dtype=np.int64)
    for t in range(1000):
        _, _, te, tr, _ = env.step(a)
        if t < 999:
            assert not (te or tr)
    assert tr and not te
    with pytest.raises(RuntimeError, match="reset"):
        env.step(a)


def test_reset_seed_determinism_across_episodes():
    env = make_env("cheetah-run")
    first, _ = env.reset(seed=3)
    for _ in range(5):
        env.step(np.zeros(6, dtype=int))
    env.reset(seed=4)
    again, _ = env.reset(seed=3)
    np.testing.assert_array_equal(first, again)
    other, _ = env.reset(seed=4)
    assert not np.array_equal(first, other)


def test_vector_env_equals_single_envs():
    seeds = [11, 12, 13]
    rng = np.random.default_rng(1)
    acts = rng.integers(0, 3, size=(20, 3, 6))
    singles = []
    for i, s in enumerate(seeds):
        env = make_env("cheetah-run")
        o, _ = env.reset(seed=s)
        traj = [o]
        for t in range(20):
            traj.append(env.step(acts[t, i])[0])
        singles.append(np.stack(traj))
    for workers in (0, 2):
        with VectorEnv("cheetah-run", 3, num_envs=3, num_workers=workers) as venv:
            obs = venv.reset(seeds)
            traj = [obs]
            for t in range(20):
                obs, rew, te, tr = venv.step(acts[t])
                traj.append(obs)
            np.testing.assert_array_equal(np.stack(traj, axis=1), np.stack(singles))
            assert venv.active.all()


def test_vector_env_freezes_finished_episodes():
    with VectorEnv("cheetah-run", 3, num_envs=2) as venv:
        venv.reset([0, 1])
        a = np.ones((2, 6), dtype=np.int64)
        for _ in range(1000):
            obs, rew, te, tr = venv.step(a)
        assert tr.all() and not venv.active.any()
        obs2, rew2, _, _ = venv.step(a)
        np.testing.assert_array_equal(obs, obs2)
        assert (rew2 == 0).all()


@pytest.mark.parametrize("workers", [0, 2])
def test_episode_loop_streams_seeded_episodes_through_slots(workers):
    """The stepping loop: slot i starts episode i of the seed stream, an ended slot starts the
    next one at once (lower slots first), then idles; every step equals single envs'."""
    acts = np.random.default_rng(0).integers(0, 3, (2000, 2, 6))
    ref = {}  # seed -> (observations (1001, obs_dim), rewards (1000,)) of a single env
    for seed, slot, t0 in ((5, 0, 0), (6, 1, 0), (7, 0, 1000)):
        env = make_env("cheetah-run")
        obs = [env.reset(seed=seed)[0]]
        rews = []
        for t in range(1000):
            o, r, *_ = env.step(acts[t0 + t, slot])
            obs.append(o)
            rews.append(r)
        ref[seed] = (np.stack(obs), np.asarray(rews))
    with VectorEnv("cheetah-run", 3, num_envs=2, num_workers=workers) as venv:
        with pytest.raises(ValueError, match="2 environments need at least 2 episode seeds, got 1"):
            EpisodeLoop(venv, [5])
        loop = EpisodeLoop(venv, iter([5, 6, 7]))
        calls = iter(acts)
        steps = list(loop.run(lambda obs: next(calls)))
    assert len(steps) == 2000 and loop.started == 3 and not loop.active.any()
    for seed, slot, t0 in ((5, 0, 0), (6, 1, 0), (7, 0, 1000)):
        obs, rews = ref[seed]
        mine = steps[t0:t0 + 1000]
        np.testing.assert_array_equal([s.obs[slot] for s in mine], obs[:-1])
        np.testing.assert_array_equal([s.next_obs[slot] for s in mine], obs[1:])
        np.testing.assert_array_equal([s.rewards[slot] for s in mine], rews)  # float64, unrounded
        assert [int(s.t[slot]) for s in mine] == list(range(1000))
        assert all(s.stepped[slot] for s in mine) and mine[-1].truncated[slot] and mine[-1].ended[slot]
        assert not any(s.ended[slot] for s in mine[:-1])
    assert [list(s.episode) for s in (steps[0], steps[999], steps[1000])] == [[0, 1], [0, 1], [2, -1]]
    idle = steps[1000:]  # slot 1: the stream is used up, frozen at its last observation
    assert not any(s.stepped[1] or s.rewards[1] or s.ended[1] for s in idle)
    np.testing.assert_array_equal(idle[-1].next_obs[1], ref[6][0][-1])


def test_errors_for_bad_tasks_bins_actions():
    with pytest.raises(ValueError, match="unknown task 'cheetah-fly'.*cheetah-run"):
        make_env("cheetah-fly")
    with pytest.raises(ValueError, match="domain-task"):
        make_env("cheetah")
    with pytest.raises(ValueError, match="bins must be an integer >= 2"):
        make_env("cheetah-run", bins=1)
    with pytest.raises(ValueError, match="list of 6 integers"):
        make_env("cheetah-run", bins=[3, 3])
    env = make_env("cheetah-run")
    env.reset(seed=0)
    with pytest.raises(ValueError, match=r"shape \(6,\)"):
        env.step(np.zeros(5, dtype=int))
    with pytest.raises(ValueError, match="out of range for sub-action 2"):
        env.step(np.array([0, 0, 3, 0, 0, 0]))
    with pytest.raises(ValueError, match="integer bin indices"):
        env.step(np.full(6, 0.5))
    with pytest.raises(ValueError, match="not a benchmark task"):
        get_task_spec("cartpole-swingup")


def test_atomic_view_roundtrip_and_refusal():
    view = AtomicActionView([2, 3, 4])
    assert view.n == 24
    np.testing.assert_array_equal(view.to_factored(1), [0, 0, 1])  # last dimension fastest
    np.testing.assert_array_equal(view.to_factored(4), [0, 1, 0])
    joint = np.arange(24)
    np.testing.assert_array_equal(view.to_joint(view.to_factored(joint)), joint)
    with pytest.raises(ValueError, match="too large|more than"):
        AtomicActionView([3] * 38)
    with pytest.raises(ValueError, match="out of range"):
        view.to_factored(24)


def test_registry_reference_scores():
    ref = reference_returns("cheetah-run", 3)
    assert ref.expert == pytest.approx(664.57) and ref.random == pytest.approx(5.39)
    assert ref.normalise(ref.expert) == pytest.approx(1.0)
    assert reference_returns("dog-trot", 30).expert == pytest.approx(768.24)
    # every registered task's recorded dimensions (for simulator-free machines) are its environment's
    from spin_bench.envs.registry import environment_dims

    for name, spec in BENCHMARK_TASKS.items():
        info = get_task_spec(name)
        assert (info.num_actions, info.obs_dim) == environment_dims(name), name


def test_every_continuous_suite_task_can_be_made_and_stepped():
    rng = np.random.default_rng(0)
    for task in available_tasks():
        env = make_env(task, bins=3)
        obs, _ = env.reset(seed=0)
        assert obs.shape == (env.obs_dim,) and obs.dtype == np.float32
        for _ in range(3):
            obs, r, te, tr, _ = env.step(rng.integers(0, 3, env.num_actions))
            assert np.isfinite(obs).all() and np.isfinite(r)
        env.close()


@pytest.mark.parametrize("task", ["lqr-lqr_2_1", "fish-swim"])
def test_seeded_reset_matches_fresh_load_for_seed_dependent_tasks(task):
    env = make_env(task)
    env.reset(seed=5)
    env.step(np.ones(env.num_actions, dtype=int))
    obs, _ = env.reset(seed=9)
    domain, name = task.split("-")
    ref = suite.load(domain, name, task_kwargs={"random": 9}).reset()
    np.testing.assert_array_equal(obs, flatten_observation(ref.observation))
