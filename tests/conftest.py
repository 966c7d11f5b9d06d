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


# Seconds each slow test file took in one pytest process (2-core machine, `--durations`); files
# not listed are quick. `make test` runs the files in two processes (pytest-xdist, --dist loadfile
# --no-loadscope-reorder), each taking the next file in collection order when it is nearly done:
# putting the slowest files first (longest-processing-time first) keeps the two processes busy
# until the end, instead of one of them starting a slow file last while the other idles. A
# file missing here (a new one) goes first too: until measured it may be slow. Only the order
# changes, never what runs; within a file the order is kept.
SLOW_FILES = {
    "test_sweep.py": 190, "test_spin_study.py": 150, "test_install.py": 90, "test_datagen_decqn.py": 110,
    "test_cpu_tier_report.py": 70, "test_bench.py": 55, "test_run.py": 60, "test_hardening_run.py": 60,
    "test_report_paper_ready.py": 50, "test_hardening_round2.py": 50, "test_demo.py": 40,
    "test_data_import.py": 40, "test_decqn.py": 40, "test_envs.py": 30, "test_datagen_cli.py": 30,
    "test_analysis_report.py": 30, "test_hardening_inputs.py": 30, "test_data_identity.py": 25,
    "test_layout.py": 20, "test_minari.py": 20, "test_data_report.py": 20,
}
KNOWN_FILES = {
    "conftest.py", "test_algos.py", "test_analysis_identities.py", "test_analysis_loading.py",
    "test_analysis_stats.py", "test_analysis_ttt.py", "test_configs.py", "test_cuda.py", "test_data_format.py",
    "test_gpu_check.py", "test_graph_step.py", "test_hardening_report.py", "test_models_actors.py",
    "test_models_asm.py", "test_models_critics.py", "test_models_spin.py", "test_sweep_estimate.py",
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
