"""gin plumbing: the configurables to import before parsing, include search paths, parsing
with clear errors, and the operative config (gin does not save it for you)."""
from __future__ import annotations

import os
import re
from typing import Sequence

import gin

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GIN_DIR = os.path.join(REPO_ROOT, "gin")


class ConfigError(ValueError):
    """A gin file or binding is missing or malformed."""


def import_configurables() -> None:
    """Import every module that defines a @gin.configurable, so any file can bind them."""
    import warnings

    with warnings.catch_warnings():  # gin.torch registers torch's deprecated NLLLoss2d: noise
        warnings.filterwarnings("ignore", message=".*NLLLoss2d.*", category=FutureWarning)
        import gin.torch.external_configurables  # noqa: F401  (optimisers)

    import baselines.autoregressive  # noqa: F401
    import baselines.factorised  # noqa: F401
    import spin_bench.algos  # noqa: F401
    import spin_bench.data.behaviour  # noqa: F401
    import spin_bench.data.datagen  # noqa: F401
    import spin_bench.models.actors  # noqa: F401
    import spin_bench.models.asm  # noqa: F401
    import spin_bench.models.critics  # noqa: F401
    import spin_bench.models.spin  # noqa: F401
    import spin_bench.train.experiment  # noqa: F401
    import spin_bench.train.trainer  # noqa: F401


def parse(gin_files: Sequence[str], bindings: Sequence[str], finalize: bool = True) -> None:
    """Parse files then bindings; a missing file, unknown configurable or malformed binding
    raises ConfigError naming it, before any work is done."""
    import_configurables()
    for f in gin_files:
        if not os.path.isfile(f):
            raise ConfigError(f"gin file not found: {f}")
    for path in (os.getcwd(), REPO_ROOT):
        gin.add_config_file_search_path(path)
    gin.clear_config()
    try:
        gin.parse_config_files_and_bindings(list(gin_files), list(bindings), finalize_config=False)
    except (ValueError, SyntaxError, KeyError, ImportError, IOError) as e:
        where = ", ".join(list(gin_files) + [f"--gin_bindings={b!r}" for b in bindings])
        raise ConfigError(f"invalid gin configuration ({where}): {e}") from None
    if finalize:
        gin.finalize()


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
