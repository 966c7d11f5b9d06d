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
