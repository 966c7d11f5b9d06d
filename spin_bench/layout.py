"""Where the suite's own files are, installed or in a source checkout.

An installed copy (``pip install spin-bench`` or ``pip install .``) holds everything inside the
package: ``spin_bench/gin/`` (the configuration tree), ``spin_bench/baselines/``,
``spin_bench/policies/``. A source checkout keeps the configuration tree and the baselines at
its top level (``gin/``, ``baselines/``) beside ``spin_bench/``. Either way ``CONFIG_ROOT`` is
the directory that holds ``gin/``, so every file and ``include`` line names a configuration the
same way (``gin/scales/cpu.gin``). Nothing here imports more than ``os``.
"""
from __future__ import annotations

import os
from typing import Optional

PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))


def _checkout_root() -> Optional[str]:
    """The source checkout this package runs from, or None when it is installed."""
    root = os.path.dirname(PACKAGE_DIR)
    markers = ("setup.cfg", os.path.join("baselines", "__init__.py"), os.path.join("gin", "scales"))
    return root if all(os.path.exists(os.path.join(root, m)) for m in markers) else None


CHECKOUT_ROOT: Optional[str] = _checkout_root()
# the installed tree when there is one (the wheel's spin_bench/gin), else the checkout's gin/
CONFIG_ROOT: str = PACKAGE_DIR if os.path.isdir(os.path.join(PACKAGE_DIR, "gin")) or CHECKOUT_ROOT is None \
    else CHECKOUT_ROOT
GIN_DIR: str = os.path.join(CONFIG_ROOT, "gin")
# a checkout's baselines/ is the installed spin_bench/baselines/
BASELINES_DIR: str = os.path.join(CHECKOUT_ROOT, "baselines") if CHECKOUT_ROOT and \
    not os.path.isdir(os.path.join(PACKAGE_DIR, "baselines")) else os.path.join(PACKAGE_DIR, "baselines")


def checkout_dir(what: str, *parts: str) -> str:
    """A path inside the source checkout, for commands that write into the repository (the
    generated experiment files, exported behaviour policies); an installed copy is never
    written to, so without a checkout this raises ValueError asking for an explicit ``what``."""
    if CHECKOUT_ROOT is None:
        raise ValueError(f"spin_bench is installed at {PACKAGE_DIR}, not run from a source checkout, and "
                         f"never writes into its installed files: give {what}")
    return os.path.join(CHECKOUT_ROOT, *parts)
