"""What a run directory records so a result can be reproduced: versions and git commit."""
from __future__ import annotations

import importlib.metadata as md
import platform
import subprocess
from typing import Dict, Optional

_PACKAGES = ("torch", "numpy", "dm_control", "mujoco", "gin-config", "h5py", "gymnasium", "absl-py")


def package_versions() -> Dict[str, str]:
    import spin_bench

    out = {"python": platform.python_version(), "spin_bench": spin_bench.__version__}
    for name in _PACKAGES:
        try:
            out[name] = md.version(name)
        except md.PackageNotFoundError:
            out[name] = "not installed"
    return out


def git_commit() -> Optional[str]:
    """HEAD of the checkout spin_bench runs from (suffixed '-dirty' with local changes), or None
    for an installed copy (never the commit of whatever repository a virtualenv sits in)."""
    from spin_bench.layout import CHECKOUT_ROOT

    root = CHECKOUT_ROOT
    if root is None:
        return None
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True,
                              text=True, timeout=10)
        if head.returncode != 0:
            return None
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                               capture_output=True, text=True, timeout=10).stdout.strip()
        return head.stdout.strip() + ("-dirty" if dirty else "")
    except (OSError, subprocess.TimeoutExpired):
        return None


def machine() -> Dict[str, object]:
    """The CPU the run's clocks were measured on (model name, logical cores; on Linux also its
    family, model and stepping, since two CPUs can report one model name, e.g. 'AMD EPYC', and
    run at very different speeds) and the platform: training minutes are comparable only
    between runs of one kind of machine."""
    cpu = platform.processor() or platform.machine()
    ids: Dict[str, str] = {}
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                key = key.strip()
                if key == "model name":
                    cpu = value.strip()
                elif key in ("cpu family", "model", "stepping") and key not in ids:
                    ids[key] = value.strip()
                elif not line.strip():  # the first processor's block is enough
                    break
    except OSError:
        pass
    import os

    out: Dict[str, object] = {"cpu": cpu, "logical_cores": os.cpu_count(), "platform": platform.platform()}
    if ids:
        out["cpu_id"] = ", ".join(f"{k} {ids[k]}" for k in ("cpu family", "model", "stepping") if k in ids)
    return out
