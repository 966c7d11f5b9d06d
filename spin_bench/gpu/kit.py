"""The kit's frame on a bare GPU image: sys.path (the repository, the carried gin wheel), the
blocked simulator, the results file and log written after every part, the environment record."""
from __future__ import annotations

import glob
import os
import platform
import sys
import tempfile
import time
import traceback
from typing import Callable, Dict, List

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
KIT_DIR = os.path.join(REPO_ROOT, "gpu_kit")
# Not on the bare GPU image (the simulator, and the report's statistics): blocked here too.
SIMULATOR_MODULES = ("gymnasium", "dm_control", "mujoco", "rliable", "arch")


def block_simulator() -> None:
    """Make importing the simulator (and rliable, arch) fail with ImportError, as on the bare GPU image."""
    for name in SIMULATOR_MODULES:
        sys.modules[name] = None  # type: ignore[assignment]


def carried_wheels() -> List[str]:
    """Pure-Python wheels carried in gpu_kit/wheels (importable straight from the zip)."""
    return sorted(glob.glob(os.path.join(KIT_DIR, "wheels", "*-py3-none-any.whl")))


def bootstrap_path() -> None:
    """Put the repository and, where gin is missing, the carried wheels on sys.path."""
    entries = [REPO_ROOT]
    try:
        import gin  # noqa: F401
    except ImportError:
        entries += carried_wheels()
    for e in reversed(entries):
        if e not in sys.path:
            sys.path.insert(0, e)


class Kit:
    """Results of the parts, written to ``out`` after each one (a killed run keeps what it had)."""

    def __init__(self, out: str, dry_run: bool, device_name: str):
        self.out, self.dry_run = out, dry_run
        self.results: Dict[str, object] = {"dry_run": dry_run, "started": time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                                                                          time.gmtime())}
        self.t0 = time.perf_counter()
        self.device_name = device_name
        self.log_file = open(os.path.join(out, "log.txt"), "a")
        self.scratch = tempfile.mkdtemp(prefix="gpu_check_")  # run dir, dry-run dataset; removed at the end

    def log(self, msg: str) -> None:
        line = f"[gpu_check {time.perf_counter() - self.t0:7.1f}s] {msg}"
        print(line, flush=True)
        self.log_file.write(line + "\n")
        self.log_file.flush()

    def save(self) -> None:
        from spin_bench.atomic import atomic_write_json

        self.results["elapsed_s"] = time.perf_counter() - self.t0
        atomic_write_json(os.path.join(self.out, "gpu_check.json"), self.results)

    def part(self, name: str, fn: Callable[[], object]) -> None:
        self.log(f"part {name} ...")
        t = time.perf_counter()
        try:
            self.results[name] = {"ok": True, "result": fn()}
        except Exception as e:  # one broken part must not cost the others their window
            self.results[name] = {"ok": False, "error": f"{type(e).__name__}: {e}",
                                  "traceback": traceback.format_exc()}
            self.log(f"part {name} FAILED: {type(e).__name__}: {e}")
        self.results[name]["seconds"] = time.perf_counter() - t
        self.save()
        self.log(f"part {name} done in {time.perf_counter() - t:.1f}s")


# ----------------------------------------------------------------------------------- environment
def environment(device) -> dict:
    """Versions, commit, carried wheels and the device's properties, for gpu_check.json."""
    import torch

    from spin_bench.train import provenance

    commit = provenance.git_commit()
    stamp = os.path.join(KIT_DIR, "COMMIT")
    if commit is None and os.path.exists(stamp):
        with open(stamp) as f:
            commit = f.read().strip() + " (gpu_kit/COMMIT, written by make gpu-kit)"
    info = {"python": platform.python_version(), "torch": torch.__version__, "cuda": torch.version.cuda,
            "device": str(device), "git_commit": commit, "versions": provenance.package_versions(),
            "wheels": [os.path.basename(w) for w in carried_wheels()], "cpu_count": os.cpu_count()}
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        info.update(gpu=props.name, gpu_memory_gb=props.total_memory / 2**30, sm_count=props.multi_processor_count,
                    cudnn=torch.backends.cudnn.version())
    return info
