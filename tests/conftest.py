"""Shared test setup: headless MuJoCo, one torch thread (10x faster for small matmuls here)."""
import os
import warnings

os.environ.setdefault("MUJOCO_GL", "egl")
warnings.filterwarnings("ignore", message=".*DISPLAY environment variable.*")

try:
    import torch

    torch.set_num_threads(1)
except ImportError:  # pragma: no cover
    pass


def pytest_addoption(parser):
    parser.addoption("--device", default="cpu", choices=["cpu", "cuda"],
                     help="device of the `device` fixture (tests/test_cuda.py); make gpu-check passes cuda")


# Relative cost of the slow test files: the seconds their slowest tests took in
# `pytest -n 2 --dist loadfile tests --durations=60` on a busy 2-core machine (about 3x a quiet
# one; only their order matters here); files not listed are quick. `make test` runs the files in
# two processes (pytest-xdist, --dist loadfile --no-loadscope-reorder), each taking the next file
# in collection order when it is nearly done: the slowest files first (longest-processing-time
# first) keep the two processes busy until the end, instead of one of them starting a slow file
# last while the other idles. A file missing here (a new one) goes first too: until measured it
# may be slow. Only the order changes, never what runs; within a file the order is kept.
SLOW_FILES = {
    "test_run.py": 1160, "test_hardening_run.py": 840, "test_hardening_round2.py": 380,
    "test_datagen_decqn.py": 350, "test_spin_study.py": 340, "test_sweep.py": 330,
    "test_data_versions.py": 200, "test_hardening_inputs.py": 140, "test_cpu_tier_report.py": 135, "test_bench.py": 85,
    "test_data_identity.py": 75, "test_decqn.py": 55, "test_install.py": 51, "test_gpu_check.py": 45,
    "test_demo.py": 44, "test_envs.py": 32, "test_analysis_report.py": 25, "test_report_paper_ready.py": 24,
}
KNOWN_FILES = {
    "conftest.py", "test_algos.py", "test_analysis_identities.py", "test_analysis_loading.py",
    "test_analysis_stats.py", "test_analysis_ttt.py", "test_configs.py", "test_cuda.py", "test_data_format.py",
    "test_gpu_check.py", "test_graph_step.py", "test_hardening_report.py", "test_models_actors.py",
    "test_models_asm.py", "test_models_critics.py", "test_models_spin.py", "test_sweep_estimate.py",
    "test_data_format.py", "test_data_import.py", "test_data_report.py", "test_datagen_cli.py", "test_layout.py",
    "test_minari.py", "test_extending.py",
} | set(SLOW_FILES)


def _file_cost(item):
    name = os.path.basename(str(item.fspath))
    if name not in KNOWN_FILES:
        return float("inf")
    return SLOW_FILES.get(name, 0)


def pytest_collection_modifyitems(session, config, items):
    """Slowest files first (see SLOW_FILES); a stable sort, so each file's own order is kept."""
    items.sort(key=lambda item: -_file_cost(item))


try:
    import pytest

    @pytest.fixture
    def device(request):
        """The device under test: CPU in CI, CUDA when the GPU check runs the suite."""
        name = request.config.getoption("--device")
        if name == "cuda" and not torch.cuda.is_available():
            pytest.fail("--device=cuda but torch sees no CUDA device")
        return torch.device(name)
except ImportError:  # pragma: no cover
    pass
