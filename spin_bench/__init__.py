"""spin_bench: offline RL in large discrete combinatorial action spaces (SPIN and baselines)."""
import os as _os
import sys as _sys

from spin_bench import layout as _layout

__version__ = "0.1.0"

# Headless machines: pick EGL for MuJoCo rendering unless the user chose a backend (this also
# keeps glfw from warning about a missing DISPLAY on every import of dm_control).
if "MUJOCO_GL" not in _os.environ and not _os.environ.get("DISPLAY"):
    _os.environ["MUJOCO_GL"] = "egl"


class _CheckoutBaselines:
    """Run from a source checkout, ``spin_bench.baselines`` is the checkout's top-level
    ``baselines/`` folder (the wheel installs that folder as ``spin_bench/baselines``)."""

    @staticmethod
    def find_spec(name, path=None, target=None):
        if name != "spin_bench.baselines":
            return None
        import importlib.util

        return importlib.util.spec_from_file_location(
            name, _os.path.join(_layout.BASELINES_DIR, "__init__.py"),
            submodule_search_locations=[_layout.BASELINES_DIR])


if _layout.BASELINES_DIR != _os.path.join(_layout.PACKAGE_DIR, "baselines") and \
        not any(isinstance(f, type) and f.__name__ == "_CheckoutBaselines" for f in _sys.meta_path):
    _sys.meta_path.append(_CheckoutBaselines)
