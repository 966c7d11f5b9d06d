"""gin plumbing: the configurables to import before parsing, where gin files are found, parsing
with clear errors, and the operative config (gin does not save it for you).

A gin file given by a relative path (``--gin_file=gin/experiments/cpu/...``) is read from the
working directory when it exists there and otherwise from the suite's own configuration tree
(``layout.GIN_DIR``: the installed package's ``spin_bench/gin/``, or a checkout's ``gin/``).
``include`` lines resolve the same way, so a user's own file can include the suite's fragments
by the names the suite uses (``include 'gin/scales/cpu.gin'``).
"""
from __future__ import annotations

import importlib
import os
import re
from typing import Sequence

import gin

from spin_bench.layout import CONFIG_ROOT, GIN_DIR  # noqa: F401  (re-exported for callers)


class ConfigError(ValueError):
    """A gin file or binding is missing or malformed."""


# Every module that defines a @gin.configurable. They are loaded by name (they register
# themselves with gin on import), so this module depends on none of them and every layer may
# use it.
CONFIGURABLE_MODULES = (
    "spin_bench.baselines.autoregressive", "spin_bench.baselines.factorised", "spin_bench.algos",
    "spin_bench.datagen.decqn", "spin_bench.models.actors", "spin_bench.models.asm",
    "spin_bench.models.critics", "spin_bench.models.spin", "spin_bench.train.experiment",
    "spin_bench.train.trainer", "spin_bench.train.graph_step",
)


def import_configurables() -> None:
    """Import every module that defines a @gin.configurable, so any file can bind them."""
    for name in CONFIGURABLE_MODULES:
        importlib.import_module(name)


def parse(gin_files: Sequence[str], bindings: Sequence[str], finalize: bool = True) -> None:
    """Parse files then bindings; a missing file, unknown configurable or malformed binding
    raises ConfigError naming it, before any work is done."""
    import_configurables()
    files = [resolve(f) for f in gin_files]
    for path in (os.getcwd(), CONFIG_ROOT):
        if path not in getattr(gin.config, "_LOCATION_PREFIXES", ()):  # gin keeps appending duplicates otherwise
            gin.add_config_file_search_path(path)
    gin.clear_config()
    try:
        gin.parse_config_files_and_bindings(files, list(bindings), finalize_config=False)
    except (ValueError, SyntaxError, KeyError, ImportError, IOError) as e:
        where = ", ".join(list(gin_files) + [f"--gin_bindings={b!r}" for b in bindings])
        raise ConfigError(f"invalid gin configuration ({where}): {e}") from None
    if finalize:
        gin.finalize()


def resolve(gin_file: str) -> str:
    """The file ``gin_file`` names: itself when it exists (absolute, or relative to the working
    directory), else the same relative path under ``CONFIG_ROOT``; ConfigError when neither exists."""
    if os.path.isfile(gin_file):
        return gin_file
    if not os.path.isabs(gin_file):
        packaged = os.path.join(CONFIG_ROOT, gin_file)
        if os.path.isfile(packaged):
            return packaged
    raise ConfigError(f"gin file not found: {gin_file} (looked in {os.getcwd()} and in {CONFIG_ROOT}, "
                      f"e.g. gin/experiments/smoke/cheetah-run/medium-expert/f_iql.gin)")


def query(name: str, default=None):
    """The value bound to ``name`` ('configurable.parameter' or a macro), or ``default`` when unbound."""
    try:
        return gin.query_parameter(name)
    except ValueError:
        return default


def config_str() -> str:
    """Every binding in effect (gin.config_str), for operative_config.gin and run ids."""
    return gin.config_str()


_GIN_CALL_SUFFIX = re.compile(r"\s*In call to configurable '[^']*' \(<[^>]*>\)")


def error_line(e: BaseException) -> str:
    """An exception as one line, without gin's "In call to configurable ..." suffix."""
    return " ".join(_GIN_CALL_SUFFIX.sub("", str(e)).split())
