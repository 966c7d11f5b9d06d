"""The suite's vocabulary and its registries, written down once: the benchmark tasks, the
dataset levels, the scales, the methods (actor, whether an ASM is pre-trained, label, plot
style, table place) and the offline RL algorithms. Every other module asks these registries;
nothing else lists methods, algorithms or tasks.

A researcher's own method, algorithm or task joins with ``register_method``,
``register_algo`` or ``register_task`` in a module of theirs, loaded by an ``import`` line of
a gin file (``import my_method``), by ``$SPIN_BENCH_EXTENSIONS`` (``my_method,my_task``) or by an entry
point in the ``spin_bench.extensions`` group (docs/extending.md). Unknown names are refused in one line naming the known ones.

Nothing here imports more than the standard library, so every layer (environments, data,
models, training, analysis, the command lines) can use it; builders are named by
``"module:attribute"`` strings and imported only when used.
"""
from __future__ import annotations

import dataclasses
import importlib
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

Builder = Union[str, Callable[..., Any]]  # "module:attribute" or the callable itself
EXTENSION_GROUP = "spin_bench.extensions"  # entry points loaded on the first registry lookup
EXTENSIONS_ENV = "SPIN_BENCH_EXTENSIONS"  # comma-separated modules loaded on the first lookup


class UnknownNameError(ValueError):
    """A method, algorithm or task name that no registry entry has."""


class RegistryError(ValueError):
    """A registration that contradicts the registry (a name taken, a bad field)."""


def resolve_builder(builder: Builder) -> Callable[..., Any]:
    """``"pkg.module:Name"`` -> the object (imported now); a callable is returned as it is."""
    if callable(builder):
        return builder
    module, _, attr = str(builder).partition(":")
    obj: Any = importlib.import_module(module)
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj


def builder_module(builder: Builder) -> Optional[str]:
    """The module a builder lives in (for the configurables gin must see before parsing)."""
    return str(builder).partition(":")[0] if isinstance(builder, str) else getattr(builder, "__module__", None)


# ---------------------------------------------------------------------------------------- tasks
@dataclasses.dataclass(frozen=True)
class TaskSpec:
    """A benchmark task: its name ('domain-task') and hardware tier ('cpu': this hardware can
    run it, in the cpu and smoke grids; 'gpu'). Its dimensions come from the environment
    (``spin_bench.envs.get_task_spec``); ``dims`` (num_actions, obs_dim) is the built-in tasks'
    record of them, for machines without a simulator (a bare GPU image), checked against the
    environment by the tests; a task of your own leaves it out. ``published_bins``: the bins with published datasets (none for a new
    task); ``paper``: one of the paper's tasks (its grid); ``gin_file``: the task's fragment."""

    name: str
    tier: str = "cpu"
    published_bins: Tuple[int, ...] = ()
    paper: bool = False
    dims: Optional[Tuple[int, int]] = None
    gin_file: Optional[str] = None
    datagen_gin_file: Optional[str] = None
    builtin: bool = False

    @property
    def domain(self) -> str:
        return split_task_name(self.name)[0]

    @property
    def task(self) -> str:
        return split_task_name(self.name)[1]

    @property
    def fragment(self) -> str:
        """Its gin fragment: ``gin_file``, else the suite's ``gin/tasks/<name>.gin``."""
        return self.gin_file or f"gin/tasks/{self.name}.gin"


def split_task_name(task: str) -> Tuple[str, str]:
    """'cheetah-run' -> ('cheetah', 'run'); 'ball_in_cup-catch' keeps underscores."""
    if not isinstance(task, str) or task.count("-") != 1:
        raise ValueError(
            f"task {task!r} must be spelled 'domain-task' (e.g. 'cheetah-run'); "
            f"see spin_bench.envs.available_tasks()")
    domain, name = task.split("-")
    return domain, name


# The task registry (live: a registration adds to it).
BENCHMARK_TASKS: Dict[str, TaskSpec] = {}
TIERS: Tuple[str, ...] = ("cpu", "gpu")


def register_task(name: str, tier: str = "cpu", *, published_bins: Sequence[int] = (),
                  gin_file: Optional[str] = None, datagen_gin_file: Optional[str] = None,
                  paper: bool = False, dims: Optional[Tuple[int, int]] = None,
                  builtin: bool = False) -> TaskSpec:
    """Add a task (see TaskSpec); its dimensions are read from the environment when used.
    ``gin_file``: the task's fragment (``Experiment.task = ...``); a task of your own gives its
    path. Re-registering the same spec is a no-op; a different one under a taken name is refused."""
    split_task_name(name)
    if tier not in TIERS:
        raise RegistryError(f"register_task({name!r}): tier must be one of {list(TIERS)}, got {tier!r}")
    spec = TaskSpec(name, tier, tuple(int(b) for b in published_bins), bool(paper),
                    None if dims is None else (int(dims[0]), int(dims[1])), gin_file, datagen_gin_file, builtin)
    return _add(BENCHMARK_TASKS, "task", spec)


def task_spec(name: str) -> TaskSpec:
    """The registry entry of a task; UnknownNameError naming the known ones."""
    load_extensions()
    return _get(BENCHMARK_TASKS, "task", name)


def tasks(tier: Optional[str] = None) -> Tuple[str, ...]:
    """The registered tasks (of one tier), in registration order."""
    load_extensions()
    return tuple(n for n, s in BENCHMARK_TASKS.items() if tier is None or s.tier == tier)


def cpu_tasks() -> Tuple[str, ...]:
    return tasks("cpu")


# Dataset levels, in the order of the published datasets' files; LEVEL_ORDER is the paper's
# table order (Table 1).
LEVELS: Tuple[str, ...] = ("medium", "expert", "medium-expert", "random-medium-expert")
LEVEL_ORDER: Tuple[str, ...] = ("medium", "medium-expert", "random-medium-expert", "expert")

# The scales; each one's grid of tasks (gin/tasks/<entry>.gin each) is grid_tasks(scale). The
# paper grid adds dog-trot with more bins (gin/tasks/dog-trot-b<bins>.gin) to the paper's tasks.
SCALE_NAMES: Tuple[str, ...] = ("paper", "cpu", "smoke")
PAPER_GRID_EXTRA: Tuple[str, ...] = ("dog-trot-b10", "dog-trot-b30")


def grid_tasks(scale: str, builtin_only: bool = False) -> Tuple[str, ...]:
    """The task entries of a scale's grid: the cpu-tier tasks at the cpu and smoke scales; the
    paper's tasks (cpu tier first) and PAPER_GRID_EXTRA at the paper scale. A task of your own
    joins the cpu and smoke grids by its tier, never the paper's."""
    if scale not in SCALE_NAMES:
        raise UnknownNameError(f"unknown scale {scale!r}; known scales: {', '.join(SCALE_NAMES)}")
    load_extensions()
    specs = [s for s in BENCHMARK_TASKS.values() if s.builtin or not builtin_only]
    if scale == "paper":
        ordered = [s.name for s in specs if s.paper and s.tier == "cpu"] + \
                  [s.name for s in specs if s.paper and s.tier != "cpu"]
        return tuple(ordered) + PAPER_GRID_EXTRA
    return tuple(s.name for s in specs if s.tier == "cpu")


# -------------------------------------------------------------------------------- algorithms
ALGO_KINDS: Tuple[str, ...] = ("actor", "value")  # trains an actor; value-based (no actor: DecQN)


@dataclasses.dataclass(frozen=True)
class AlgoSpec:
    """An offline RL algorithm. ``kind`` 'actor': ``cls(actor, obs_dim, bins)`` trains a
    method's actor; 'value': ``cls(obs_dim, bins)`` is a value-based learner (no actor).
    ``label`` is its table name ('IQL'); ``reference``: its runs join every other algorithm's
    tables of their scale as reference rows (F-BC); ``gin_file``: its fragment."""

    name: str
    kind: str
    cls: Builder
    label: str
    gin_file: str
    reference: bool = False
    builtin: bool = False


ALGO_SPECS: Dict[Tuple[str, str], AlgoSpec] = {}  # (kind, name) -> spec


def register_algo(name: str, cls: Builder, *, kind: str = "actor", label: Optional[str] = None,
                  gin_file: Optional[str] = None, reference: bool = False, builtin: bool = False) -> AlgoSpec:
    """Add an algorithm (see AlgoSpec). An algorithm of your own gives ``cls`` (the class or
    ``"module:Class"``) and its gin fragment's path (``Experiment.algo = '<name>'`` and its
    bindings); the suite's own live in gin/algos/."""
    _check_name("register_algo", name)
    if kind not in ALGO_KINDS:
        raise RegistryError(f"register_algo({name!r}): kind must be one of {list(ALGO_KINDS)}, got {kind!r}")
    default_gin = f"gin/algos/{name}.gin" if kind == "actor" else f"gin/algos/decqn_{name}.gin"
    spec = AlgoSpec(name, kind, cls, label or name.upper(), gin_file or default_gin, bool(reference), builtin)
    return _add(ALGO_SPECS, "algorithm", spec, key=(kind, name))


def algo_spec(name: str, kind: str = "actor") -> AlgoSpec:
    """The registry entry of an algorithm of a kind; UnknownNameError naming the known ones."""
    load_extensions()
    spec = ALGO_SPECS.get((kind, name))
    if spec is None:
        raise UnknownNameError(f"unknown {'value-based ' if kind == 'value' else ''}algorithm {name!r}; known: "
                               f"{', '.join(algo_names(kind)) or 'none'}")
    return spec


def algo_names(kind: str = "actor", builtin_only: bool = False) -> Tuple[str, ...]:
    """The registered algorithms of a kind, in registration order."""
    load_extensions()
    return tuple(s.name for (k, _), s in ALGO_SPECS.items() if k == kind and (s.builtin or not builtin_only))


def reference_algos() -> Tuple[str, ...]:
    """Algorithms whose runs are reference rows (F-BC) in every other algorithm's tables."""
    load_extensions()
    return tuple(dict.fromkeys(s.name for s in ALGO_SPECS.values() if s.reference))


def algo_label(algo: str) -> str:
    """'iql' -> 'IQL'; 'onestep' -> 'OneStep' (the published benchmark's spelling); an unknown
    name upper-cased."""
    algo = str(algo).lower()
    load_extensions()
    for kind in ALGO_KINDS:
        if (kind, algo) in ALGO_SPECS:
            return ALGO_SPECS[(kind, algo)].label
    return algo.upper()


# ----------------------------------------------------------------------------------- methods
@dataclasses.dataclass(frozen=True)
class MethodSpec:
    """A method: how its actor is built and how it is shown.

    ``actor``: ``builder(obs_dim, bins)`` -> the actor (``builder(obs_dim, bins, asm)`` when
    ``needs_asm``: the run pre-trains an ASM first and passes it); None for a value-based
    method, which pairs with the 'value' algorithms. ``label``: the table prefix ('F' ->
    F-IQL, F-AWAC); ``bare_with``: algorithms under which the label stands alone (SAINT, SPIN
    under IQL). ``order``: its place in tables and legends (lower first). ``role``:
    'subject' (the method the report compares with every other: SPIN), 'ttt_baseline' (whose
    asymptote is the time-to-target target: F) or ''. ``gin_files``: its fragments, in order
    (``{scale}`` is replaced by the scale)."""

    name: str
    label: str
    actor: Optional[Builder]
    needs_asm: bool = False
    gin_files: Tuple[str, ...] = ()
    order: float = 100.0
    color: Optional[str] = None
    marker: str = "v"
    linestyle: str = ":"
    bare_with: Tuple[str, ...] = ()
    role: str = ""
    builtin: bool = False

    @property
    def algo_kind(self) -> str:
        return "value" if self.actor is None else "actor"

    def fragments(self, scale: str) -> Tuple[str, ...]:
        return tuple(f.replace("{scale}", scale) for f in self.gin_files)

    def display(self) -> Dict[str, Any]:
        """What a run records of its method so the report shows it without this registry."""
        return {"label": self.label, "order": self.order, "color": self.color, "marker": self.marker,
                "linestyle": self.linestyle, "bare_with": list(self.bare_with)}


METHOD_SPECS: Dict[str, MethodSpec] = {}
ROLES: Tuple[str, ...] = ("", "subject", "ttt_baseline")


def register_method(name: str, actor: Optional[Builder], *, label: Optional[str] = None, needs_asm: bool = False,
                    gin_file: Union[None, str, Sequence[str]] = None, order: float = 100.0,
                    color: Optional[str] = None, marker: str = "v", linestyle: str = ":",
                    bare_with: Sequence[str] = (), role: str = "", builtin: bool = False) -> MethodSpec:
    """Add a method (see MethodSpec). A method of your own gives its actor builder and its gin
    fragment's path (``Experiment.method = '<name>'`` and the actor's bindings)."""
    _check_name("register_method", name)
    if "_" in name:
        raise RegistryError(f"register_method({name!r}): a method name has no '_' (run names are <method>_<algo>)")
    if role not in ROLES:
        raise RegistryError(f"register_method({name!r}): role must be one of {list(ROLES)}, got {role!r}")
    if needs_asm and actor is None:
        raise RegistryError(f"register_method({name!r}): needs_asm without an actor")
    if role:
        taken = [s.name for s in METHOD_SPECS.values() if s.role == role and s.name != name]
        if taken:
            raise RegistryError(f"register_method({name!r}): role {role!r} is {taken[0]!r}'s")
    files = (f"gin/methods/{name}.gin",) if gin_file is None else \
        ((gin_file,) if isinstance(gin_file, str) else tuple(gin_file))
    spec = MethodSpec(name, label or name.upper(), actor, bool(needs_asm), files, float(order), color, marker,
                      linestyle, tuple(bare_with), role, builtin)
    return _add(METHOD_SPECS, "method", spec)


def method_spec(name: str) -> MethodSpec:
    """The registry entry of a method; UnknownNameError naming the known ones."""
    load_extensions()
    return _get(METHOD_SPECS, "method", name)


def methods(builtin_only: bool = False, kind: Optional[str] = None) -> Tuple[str, ...]:
    """The registered methods in table order (optionally only those with an actor: kind 'actor')."""
    load_extensions()
    specs = [s for s in METHOD_SPECS.values() if (s.builtin or not builtin_only)
             and (kind is None or s.algo_kind == kind)]
    return tuple(s.name for s in sorted(specs, key=lambda s: s.order))


def actor_methods(builtin_only: bool = False) -> Tuple[str, ...]:
    """The methods with an actor (they pair with every 'actor' algorithm), in table order."""
    return methods(builtin_only, kind="actor")


def algos_for(method: str, builtin_only: bool = False) -> Tuple[str, ...]:
    """The algorithms a method pairs with."""
    return algo_names(method_spec(method).algo_kind, builtin_only)


def role_method(role: str) -> Optional[str]:
    """The method holding a report role ('subject': SPIN; 'ttt_baseline': F), or None."""
    load_extensions()
    return next((s.name for s in METHOD_SPECS.values() if s.role == role), None)


def needs_asm(method: str) -> bool:
    """Whether a method's runs pre-train an ASM (SPIN)."""
    return method_spec(method).needs_asm


def grid_pairs(builtin_only: bool = False) -> List[Tuple[str, str]]:
    """Every (method, algo) pair of the experiment grid: each actor method with each 'actor'
    algorithm, each value-based method with each 'value' algorithm."""
    return [(m, a) for m in methods(builtin_only) for a in algos_for(m, builtin_only)]


def algo_class(method: str, algo: str) -> Callable[..., Any]:
    """The algorithm class of a (method, algo) pair (imported now)."""
    return resolve_builder(algo_spec(algo, method_spec(method).algo_kind).cls)


def check_pair(method: str, algo: str, where: str = "Experiment") -> None:
    """UnknownNameError unless ``method`` and ``algo`` are registered and pair."""
    spec = method_spec(method)
    if (spec.algo_kind, algo) not in ALGO_SPECS:
        raise UnknownNameError(f"{where}.algo must be one of {list(algos_for(method))} for method {method!r}, "
                               f"got {algo!r}")


def register_display(name: str, display: Dict[str, Any]) -> None:
    """Make a method the registry does not know showable (label, order, style) from what its
    runs recorded (``MethodSpec.display``): the report reads run directories, not your module.
    A registered method keeps its own entry."""
    load_extensions()
    if name in METHOD_SPECS or not isinstance(display, dict):
        return
    try:
        register_method(name, None, label=str(display.get("label") or name.upper()),
                        order=float(display.get("order", 100.0)), color=display.get("color") or None,
                        marker=str(display.get("marker") or "v"), linestyle=str(display.get("linestyle") or ":"),
                        bare_with=tuple(str(a) for a in display.get("bare_with") or ()), gin_file=())
    except (RegistryError, TypeError, ValueError):
        pass  # a malformed record: the method is shown by its name


def reference_method(method: str, algo: str) -> str:
    """('f', 'bc') -> 'f_bc': the method key of a reference run inside another algorithm's group."""
    return f"{str(method).lower()}_{str(algo).lower()}"


def variant_method(method: str, variant: str) -> str:
    """('spin', 'ASM 100 ep') -> 'spin[ASM 100 ep]': the method key of a configuration variant
    (a run whose bindings differ from its cell's default); no variant -> the method itself."""
    return f"{method}[{variant}]" if variant else str(method)


def split_variant(method: str) -> Tuple[str, str]:
    """'spin[ASM 100 ep]' -> ('spin', 'ASM 100 ep'); 'f' -> ('f', '')."""
    method = str(method)
    if method.endswith("]") and "[" in method:
        base, _, rest = method.partition("[")
        return base, rest[:-1]
    return method, ""


def method_label(method: str, algo: str) -> str:
    """('f', 'iql') -> 'F-IQL'; ('spin', 'iql') -> 'SPIN'; ('spin', 'awac') -> 'SPIN-AWAC';
    a reference run's method key ('f_bc') keeps its own algorithm: 'F-BC' in any group;
    a variant's key ('spin[ASM 100 ep]') -> 'SPIN [ASM 100 ep]'."""
    method, variant = split_variant(method)
    if variant:
        return f"{method_label(method, algo)} [{variant}]"
    method = method.lower()
    base, _, own_algo = method.partition("_")
    load_extensions()
    spec = METHOD_SPECS.get(base)
    prefix = spec.label if spec else base.upper()
    if own_algo:
        return f"{prefix}-{algo_label(own_algo)}"
    if spec is not None and str(algo).lower() in spec.bare_with:
        return prefix
    return f"{prefix}-{algo_label(algo)}"


def cell_parts(scale: str, task: str, level: str, method: str, algo: str) -> List[str]:
    """The gin files a cell of the grid (scale x task x level x method x algorithm) is composed
    of, in order: the suite's ``gin/...`` paths, or a registered extension's own paths. A grid
    entry that is not a registered task (dog-trot-b10) is the suite's gin/tasks/<entry>.gin.
    DecQN cells add their scale's network width (methods/decqn-<scale>) in a file of their own,
    so the other methods' configurations (and run ids) do not carry it."""
    if scale not in SCALE_NAMES:
        raise UnknownNameError(f"unknown scale {scale!r}; known scales: {', '.join(SCALE_NAMES)}")
    if level not in LEVELS:
        raise UnknownNameError(f"unknown level {level!r}; known levels: {', '.join(LEVELS)}")
    load_extensions()
    task_file = BENCHMARK_TASKS[task].fragment if task in BENCHMARK_TASKS else f"gin/tasks/{task}.gin"
    m = method_spec(method)
    return [f"gin/scales/{scale}.gin", task_file, f"gin/levels/{level}.gin", *m.fragments(scale),
            algo_spec(algo, m.algo_kind).gin_file]


def is_builtin_cell(task: str, method: str, algo: str) -> bool:
    """Whether a cell is the suite's own (its experiment file is in the package's grid)."""
    load_extensions()
    t = BENCHMARK_TASKS.get(task)
    m = METHOD_SPECS.get(method)
    a = ALGO_SPECS.get((m.algo_kind, algo)) if m else None
    return (t is None or t.builtin) and bool(m and m.builtin and a and a.builtin)


# ------------------------------------------------------------------------------- plumbing
_NAME_CHARS = set("abcdefghijklmnopqrstuvwxyz0123456789_-")
_extensions_loaded = False


def _check_name(where: str, name: str) -> None:
    if not isinstance(name, str) or not name or not set(name) <= _NAME_CHARS or not name[0].isalpha():
        raise RegistryError(f"{where}: the name must be lower-case letters, digits, '_' or '-' starting with a "
                            f"letter, got {name!r}")


def _add(table: Dict, what: str, spec, key=None):
    key = spec.name if key is None else key
    old = table.get(key)
    if old is not None and old != spec:
        raise RegistryError(f"a {what} named {spec.name!r} is already registered (as {old!r})")
    table[key] = spec
    return spec


def _get(table: Dict, what: str, name: str):
    spec = table.get(name) if isinstance(name, str) else None
    if spec is None:
        raise UnknownNameError(f"unknown {what} {name!r}; known {what}s: {', '.join(table) or 'none'}")
    return spec


def load_extensions() -> None:
    """Import the extension modules (once per process): those named in ``$SPIN_BENCH_EXTENSIONS``
    (comma-separated module names, importable from the working directory or the path), then the
    entry points of the ``spin_bench.extensions`` group; each registers its methods,
    algorithms or tasks on import. One that fails to import is reported by name."""
    global _extensions_loaded
    if _extensions_loaded:
        return
    _extensions_loaded = True
    import os
    import sys

    for module in filter(None, (m.strip() for m in os.environ.get(EXTENSIONS_ENV, "").split(","))):
        if "" not in sys.path and os.getcwd() not in sys.path:
            sys.path.append(os.getcwd())  # `python -m` puts the working directory first; a script may not
        try:
            importlib.import_module(module)
        except Exception as e:  # noqa: BLE001  (their module: reported in one line)
            raise RegistryError(f"${EXTENSIONS_ENV}: import {module} failed: {type(e).__name__}: {e}") from None
    try:
        from importlib.metadata import entry_points
        eps = entry_points(group=EXTENSION_GROUP)
    except Exception:  # noqa: BLE001  (no metadata: no extensions)
        return
    for ep in eps:
        try:
            ep.load()
        except Exception as e:  # noqa: BLE001
            raise RegistryError(f"the {EXTENSION_GROUP} entry point {ep.name!r} ({ep.value}) failed to load: "
                                f"{type(e).__name__}: {e}") from None


# ------------------------------------------------------------------------ the suite's own
def _register_builtins() -> None:
    for name, tier, published, dims in (("cheetah-run", "cpu", (3,), (6, 17)), ("finger-spin", "cpu", (3,), (2, 9)),
                                        ("fish-swim", "cpu", (3,), (5, 24)),
                                        ("quadruped-walk", "cpu", (3,), (12, 78)),
                                        ("humanoid-stand", "gpu", (3,), (21, 67)),
                                        ("dog-trot", "gpu", (3, 10, 30, 50, 75, 100), (38, 223))):
        register_task(name, tier, published_bins=published, paper=True, dims=dims, builtin=True)
    for name, cls, label, ref in (("iql", "spin_bench.algos.iql:IQL", "IQL", False),
                                  ("awac", "spin_bench.algos.awac:AWAC", "AWAC", False),
                                  ("bcq", "spin_bench.algos.bcq:BCQ", "BCQ", False),
                                  ("bc", "spin_bench.algos.bc:BC", "BC", True)):
        register_algo(name, cls, label=label, reference=ref, builtin=True)
    for name, cls, label in (("cql", "spin_bench.algos.decqn_cql:DecQNCQL", "CQL"),
                             ("bcq", "spin_bench.algos.decqn_bcq:DecQNBCQ", "BCQ"),
                             ("iql", "spin_bench.algos.decqn_iql:DecQNIQL", "IQL"),
                             ("onestep", "spin_bench.algos.decqn_onestep:DecQNOneStep", "OneStep")):
        register_algo(name, cls, kind="value", label=label, builtin=True)
    # Okabe & Ito (2008) colour-blind-safe colours; markers and line styles differ too.
    register_method("f", "spin_bench.baselines.factorised:FactorisedMLPActor", label="F", order=0,
                    color="#0072B2", marker="o", linestyle="-", role="ttt_baseline", builtin=True)
    register_method("ar", "spin_bench.baselines.autoregressive:AutoregressiveActor", label="AR", order=1,
                    color="#E69F00", marker="s", linestyle="--", builtin=True)
    register_method("saint", "spin_bench.models.actors:TransformerActor", label="SAINT", order=2,
                    color="#009E73", marker="^", linestyle="-.", bare_with=("iql",), builtin=True)
    register_method("decqn", None, label="DecQN", order=3, color="#CC79A7", marker="P", linestyle=":",
                    gin_file=("gin/methods/decqn.gin", "gin/methods/decqn-{scale}.gin"), builtin=True)
    register_method("spin", "spin_bench.models.spin:make_spin_actor", label="SPIN", needs_asm=True, order=4,
                    color="#D55E00", marker="D", linestyle="-", bare_with=("iql",), role="subject", builtin=True)


_register_builtins()
