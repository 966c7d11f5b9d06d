"""Data generation: the datasets we generate ourselves, from behaviour policies we train.

    policy    the behaviour policy (a DecQN Q-network) and its snapshot file
    rollouts  episode streams: seeds, the collection protocol, lockstep envs, worker processes
    decqn     training a behaviour policy online (DecQN: replay, n-step returns, snapshots)
    levels    cutting the medium and expert policies from a training run's snapshots
    generate  the levels' datasets (and reference returns) from the shipped policies
    resolve   where a cell's data comes from (a path, the store, the published import or
              generation): check() and obtain(), what the runner calls
    cli       ``python -m spin_bench.datagen {train,export,generate,references}``

It builds on :mod:`spin_bench.envs` and :mod:`spin_bench.data` (the format, the store) and
nothing above them. The names below import on first use, so ``import spin_bench.datagen``
stays light.
"""
import importlib

_LAZY = {"collect_episodes": "rollouts", "collect_transitions": "rollouts", "evaluate_policy": "rollouts",
         "episode_seed": "rollouts", "COLLECT_EPSILON": "rollouts",
         "DecQNNetwork": "policy", "load_snapshot": "policy", "save_snapshot": "policy",
         "ReplayBuffer": "decqn", "NStepCollector": "decqn", "train_decqn": "decqn", "read_metrics": "decqn",
         "export_policies": "levels",
         "DEFAULT_SIZES": "generate", "level_plan": "generate", "policy_dir": "paths",
         "policy_path": "paths", "policy_versions": "paths", "newest_policy_version": "paths", "compute_references": "generate", "write_reference": "generate",
         "references_for": "generate", "generated_store": "generate", "generate_dataset": "generate",
         "ensure_dataset": "generate", "missing_policies": "generate",
         "DataRequest": "resolve", "DataUnavailableError": "resolve"}

__all__ = sorted(_LAZY)


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(f"spin_bench.datagen.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'spin_bench.datagen' has no attribute {name!r}")
