"""gin plumbing: the configurables to import before parsing, where gin files are found, parsing
with clear errors, and the operative config (gin does not save it for you).

A gin file given by a relative path (``--gin_file=gin/experiments/cpu/...``) is read from the
working directory when it exists there and otherwise from the suite's own configuration tree
(``layout.GIN_DIR``: the installed package's ``spin_bench/gin/``, or a checkout's ``gin/``).
An ``include`` in one of the suite's own files (the packaged cells and fragments) is read from
the suite's tree only, never from the working directory, so a stray ``gin/scales/smoke.gin``
where you happen to run cannot change a packaged cell. An ``include`` in a file of your own
resolves like ``--gin_file``: the working directory first, then the suite's tree, so your file
can build on the suite's fragments by the names the suite uses (``include 'gin/scales/cpu.gin'``).
The suite resolves includes itself (gin only ever sees absolute paths), so gin never searches
for a file and never logs its "Path not found" errors.
"""
from __future__ import annotations

import importlib
import io
import os
import re
from typing import List, Sequence

import gin

from spin_bench.layout import CONFIG_ROOT, GIN_DIR  # noqa: F401  (re-exported for callers)


class ConfigError(ValueError):
    """A gin file or binding is missing or malformed."""


# The modules that define @gin.configurables besides the registered actors and algorithms
# (whose modules the registry names: vocab.builder_module). They are loaded by name (they
# register themselves with gin on import), so this module depends on none of them and every
# layer may use it.
CORE_CONFIGURABLE_MODULES = (
    "spin_bench.datagen.decqn", "spin_bench.models.asm", "spin_bench.models.critics",
    "spin_bench.train.experiment", "spin_bench.train.trainer", "spin_bench.train.graph_step",
)


def configurable_modules() -> List[str]:
    """The core configurable modules and those of every registered actor and algorithm."""
    from spin_bench import vocab

    vocab.load_extensions()
    builders = [s.actor for s in vocab.METHOD_SPECS.values() if s.actor is not None] + \
        [s.cls for s in vocab.ALGO_SPECS.values()]
    named = [vocab.builder_module(b) for b in builders]
    return list(dict.fromkeys([*CORE_CONFIGURABLE_MODULES, *(m for m in named if m)]))


def import_configurables() -> None:
    """Import every module that defines a @gin.configurable, so any file can bind them."""
    for name in configurable_modules():
        importlib.import_module(name)


_IMPORT_LINE = re.compile(r"^\s*import\s+(?P<module>[A-Za-z_][\w.]*)\s*(#.*)?$")


def import_extensions(gin_files: Sequence[str]) -> None:
    """Import the modules named by ``import`` lines of these gin files (and the files they
    include), so a method, algorithm or task of your own is registered before its name is
    checked (gin would import them only while parsing). ConfigError naming a module that fails."""
    seen: List[str] = []

    def visit(path: str) -> None:
        if path in seen:
            return
        seen.append(path)
        with open(path) as fh:
            for line in fh:
                m = _IMPORT_LINE.match(line)
                if m:
                    try:
                        importlib.import_module(m.group("module"))
                    except Exception as e:  # noqa: BLE001  (their module: report it in one line)
                        raise ConfigError(f"{path}: import {m.group('module')} failed: {type(e).__name__}: {e}") \
                            from None
                inc = _INCLUDE.match(line)
                if inc:
                    visit(os.path.abspath(resolve_include(inc.group("name"), path)))

    for f in gin_files:
        visit(os.path.abspath(resolve(f)))


def parse(gin_files: Sequence[str], bindings: Sequence[str], finalize: bool = True) -> None:
    """Parse files then bindings; a missing file, unknown configurable or malformed binding
    raises ConfigError naming it, before any work is done."""
    import_configurables()
    files = [resolve(f) for f in gin_files]
    gin.clear_config()
    try:
        for f in files:
            _parse_file(os.path.abspath(f), [])
        gin.parse_config(list(bindings))
    except ConfigError:
        raise
    except (ValueError, SyntaxError, KeyError, ImportError, IOError) as e:
        where = ", ".join(list(gin_files) + [f"--gin_bindings={b!r}" for b in bindings])
        raise ConfigError(f"invalid gin configuration ({where}): {e}") from None
    if finalize:
        gin.finalize()


_INCLUDE = re.compile(r"""^\s*include\s+(['"])(?P<name>[^'"]+)\1\s*(#.*)?$""")
_INCLUDE_WORD = re.compile(r"^\s*include\b")
_IMPORT = re.compile(r"^\s*(import|from)\s")


def is_suite_file(path: str) -> bool:
    """Whether ``path`` lies in the suite's own configuration tree (``GIN_DIR``)."""
    root = os.path.realpath(GIN_DIR)
    return os.path.realpath(path).startswith(root + os.sep)


def resolve_include(name: str, including: str) -> str:
    """The file an ``include '<name>'`` line of ``including`` names: in a suite file, the same
    relative path under ``CONFIG_ROOT`` only; in any other file, as ``resolve`` finds it."""
    if os.path.isabs(name):
        if os.path.isfile(name):
            return name
        raise ConfigError(f"{including}: included gin file not found: {name}")
    if is_suite_file(including):
        packaged = os.path.join(CONFIG_ROOT, name)
        if os.path.isfile(packaged):
            return packaged
        raise ConfigError(f"{including}: included gin file not found in the suite's tree {CONFIG_ROOT}: {name}")
    try:
        return resolve(name)
    except ConfigError as e:
        raise ConfigError(f"{including}: included {e}") from None


def _parse_file(path: str, chain: List[str]) -> None:
    """Parse one gin file with gin, its ``include`` lines resolved here (``resolve_include``):
    the text between includes goes to gin as its own piece, named after the file and with its
    line numbers (and the file's earlier import lines) kept, so gin's errors point at the file."""
    if path in chain:
        raise ConfigError(f"gin include cycle: {' -> '.join(chain + [path])}")
    with open(path) as fh:
        lines = fh.read().split("\n")
    segment: List[int] = []
    imports: List[int] = []

    def flush() -> None:
        keep = set(segment) | set(imports)
        if any(lines[i].strip() and not lines[i].lstrip().startswith("#") for i in segment):
            piece = io.StringIO("\n".join(line if i in keep else "" for i, line in enumerate(lines)))
            piece.name = path  # gin names the file in its error messages
            gin.parse_config(piece)

    for i, line in enumerate(lines):
        m = _INCLUDE.match(line)
        if m:
            flush()
            segment = []
            _parse_file(os.path.abspath(resolve_include(m.group("name"), path)), chain + [path])
        elif _INCLUDE_WORD.match(line):
            raise ConfigError(f"{path}, line {i + 1}: malformed include (expected include 'gin/...gin'): {line.strip()}")
        else:
            segment.append(i)
            if _IMPORT.match(line):
                imports.append(i)
    flush()


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
