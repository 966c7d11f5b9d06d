"""Where the shipped behaviour policies live: ``spin_bench/policies/<task>/{medium,expert}.pt``
(``<task>-b<bins>`` for other bins than 3; ``$SPIN_BENCH_POLICY_DIR`` replaces the root)."""
from __future__ import annotations

import os

import numpy as np

POLICY_ROOT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "policies")


def policy_dir(task: str, bins=3) -> str:
    """Where the shipped behaviour policies of (task, bins) live: spin_bench/policies/<task>
    for 3 bins, <task>-b<bins> otherwise ($SPIN_BENCH_POLICY_DIR replaces the root)."""
    root = os.environ.get("SPIN_BENCH_POLICY_DIR") or POLICY_ROOT
    b = list(np.atleast_1d(bins))
    suffix = "" if len(set(int(x) for x in b)) == 1 and int(b[0]) == 3 else \
        "-b" + "x".join(str(int(x)) for x in (b if len(set(b)) > 1 else b[:1]))
    return os.path.join(root, task + suffix)


def policy_path(task: str, source: str, bins=3) -> str:
    path = os.path.join(policy_dir(task, bins), f"{source}.pt")
    if not os.path.exists(path):
        raise FileNotFoundError(
            f"no shipped {source} behaviour policy for {task} (bins {bins}) at {path}; train one "
            f"with `python -m spin_bench.datagen train --task={task}` and cut the levels with "
            f"`python -m spin_bench.datagen export --task={task}`")
    return path
