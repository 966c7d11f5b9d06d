"""Where the shipped behaviour policies live, by dataset version.

Version 1 of a task's policies is its directory itself, ``spin_bench/policies/<task>/``
(``<task>-b<bins>`` for other bins than 3); version k >= 2 is its subdirectory ``v<k>/``
(``spin_bench/policies/finger-spin/v2/``). Each holds ``medium.pt`` and ``expert.pt``; the
data they generate has the dataset id ending in ``-v<k>`` (``spin_bench.data.schema.dataset_id``).
``$SPIN_BENCH_POLICY_DIR`` replaces the root. A version's files never change once shipped:
new policies are a new version, so every committed dataset identity still regenerates.
"""
from __future__ import annotations

import os
import re
from typing import List, Optional

import numpy as np

POLICY_ROOT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "policies")
POLICY_FILES = ("medium.pt", "expert.pt")
_VERSION_DIR = re.compile(r"v([1-9][0-9]{0,5})")


def _task_dir(task: str, bins=3) -> str:
    root = os.environ.get("SPIN_BENCH_POLICY_DIR") or POLICY_ROOT
    b = list(np.atleast_1d(bins))
    suffix = "" if len(set(int(x) for x in b)) == 1 and int(b[0]) == 3 else \
        "-b" + "x".join(str(int(x)) for x in (b if len(set(b)) > 1 else b[:1]))
    return os.path.join(root, task + suffix)


def policy_dir(task: str, bins=3, version: int = 1) -> str:
    """Where version `version` of (task, bins)'s behaviour policies lives: spin_bench/policies/<task>
    for version 1 (<task>-b<bins> for other bins than 3), its subdirectory v<version> otherwise."""
    base = _task_dir(task, bins)
    return base if int(version) == 1 else os.path.join(base, f"v{int(version)}")


def policy_versions(task: str, bins=3) -> List[int]:
    """The versions of (task, bins)'s behaviour policies that are there (a version counts when
    its directory holds medium.pt or expert.pt), ascending."""
    base = _task_dir(task, bins)
    found = []
    if any(os.path.exists(os.path.join(base, f)) for f in POLICY_FILES):
        found.append(1)
    if os.path.isdir(base):
        for name in os.listdir(base):
            m = _VERSION_DIR.fullmatch(name)
            if m and int(m.group(1)) > 1 and any(os.path.exists(os.path.join(base, name, f)) for f in POLICY_FILES):
                found.append(int(m.group(1)))
    return sorted(found)


def newest_policy_version(task: str, bins=3) -> Optional[int]:
    """The newest version of (task, bins)'s behaviour policies, or None when there is none: the
    version new runs and ``datagen generate`` use unless told otherwise."""
    versions = policy_versions(task, bins)
    return versions[-1] if versions else None


def policy_path(task: str, source: str, bins=3, version: int = 1) -> str:
    path = os.path.join(policy_dir(task, bins, version), f"{source}.pt")
    if not os.path.exists(path):
        have = policy_versions(task, bins)
        there = f" (versions there: {', '.join(f'v{v}' for v in have)})" if have else ""
        raise FileNotFoundError(
            f"no shipped {source} behaviour policy for {task} (bins {bins}, version {version}) at {path}{there}; "
            f"train one with `python -m spin_bench.datagen train --task={task}` and cut the levels with "
            f"`python -m spin_bench.datagen export --task={task}`")
    return path


def resolve_version(task: str, bins=3, version: Optional[int] = None) -> int:
    """The dataset version a request means: `version` itself, or (None) the newest version of
    the shipped policies, 1 where none is shipped (a generated file of version 1 may still be in
    the store)."""
    if version is not None:
        return int(version)
    newest = newest_policy_version(task, bins)
    return 1 if newest is None else newest
