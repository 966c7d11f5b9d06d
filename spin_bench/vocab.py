"""The suite's vocabulary, written down once: the benchmark tasks (with their dimensions and
hardware tier), the dataset levels, the scales, the methods (with their display labels and
fixed order) and the offline RL algorithms.  Everything else imports these names from here.

Nothing here imports more than the standard library, so every layer (environments, data,
models, training, analysis, the command lines) can use it.
"""
from __future__ import annotations

import dataclasses
from typing import Dict, List, Tuple


@dataclasses.dataclass(frozen=True)
class TaskSpec:
    """Static facts about one benchmark task."""

    name: str                      # "domain-task"
    num_actions: int               # N, the number of sub-actions
    obs_dim: int                   # flattened observation size
    published_bins: Tuple[int, ...]  # bins with published datasets
    tier: str                      # "cpu" (this hardware can run it) or "gpu"

    @property
    def domain(self) -> str:
        return split_task_name(self.name)[0]

    @property
    def task(self) -> str:
        return split_task_name(self.name)[1]


BENCHMARK_TASKS: Dict[str, TaskSpec] = {
    spec.name: spec
    for spec in (
        TaskSpec("cheetah-run", 6, 17, (3,), "cpu"),
        TaskSpec("finger-spin", 2, 9, (3,), "cpu"),
        TaskSpec("fish-swim", 5, 24, (3,), "cpu"),
        TaskSpec("quadruped-walk", 12, 78, (3,), "cpu"),
        TaskSpec("humanoid-stand", 21, 67, (3,), "gpu"),
        TaskSpec("dog-trot", 38, 223, (3, 10, 30, 50, 75, 100), "gpu"),
    )
}


def split_task_name(task: str) -> Tuple[str, str]:
    """'cheetah-run' -> ('cheetah', 'run'); 'ball_in_cup-catch' keeps underscores."""
    if not isinstance(task, str) or task.count("-") != 1:
        raise ValueError(
            f"task {task!r} must be spelled 'domain-task' (e.g. 'cheetah-run'); "
            f"see spin_bench.envs.available_tasks()")
    domain, name = task.split("-")
    return domain, name


# Dataset levels, in the order of the published datasets' files; LEVEL_ORDER is the paper's
# table order (Table 1).
LEVELS: Tuple[str, ...] = ("medium", "expert", "medium-expert", "random-medium-expert")
LEVEL_ORDER: Tuple[str, ...] = ("medium", "medium-expert", "random-medium-expert", "expert")

# The experiment grid's task lists per scale (gin/tasks/<task>.gin each; the dog-trot-b<bins>
# files are dog-trot with more bins).
CPU_TASKS: Tuple[str, ...] = tuple(name for name, spec in BENCHMARK_TASKS.items() if spec.tier == "cpu")
PAPER_TASKS: Tuple[str, ...] = CPU_TASKS + ("humanoid-stand", "dog-trot", "dog-trot-b10", "dog-trot-b30")
SCALES: Dict[str, Tuple[str, ...]] = {"paper": PAPER_TASKS, "cpu": CPU_TASKS, "smoke": CPU_TASKS}

# Methods: the actor-based ones pair with every algorithm of ALGOS; "decqn" (value-based, no
# actor) pairs with DECQN_ALGOS only.
ACTOR_METHODS: Tuple[str, ...] = ("spin", "saint", "f", "ar")
METHODS: Tuple[str, ...] = ACTOR_METHODS + ("decqn",)
ALGOS: Tuple[str, ...] = ("iql", "awac", "bcq", "bc")
DECQN_ALGOS: Tuple[str, ...] = ("cql", "bcq", "iql", "onestep")

# Fixed display order everywhere: baselines first, SPIN last.
METHOD_ORDER: Tuple[str, ...] = ("f", "ar", "saint", "decqn", "spin")
ACTOR_METHOD_ORDER: Tuple[str, ...] = tuple(m for m in METHOD_ORDER if m in ACTOR_METHODS)  # the paper's IQL grid
# The paper's names: F-IQL, AR-IQL, SAINT and SPIN for IQL; the algorithm appended otherwise
# (F-AWAC, SAINT-AWAC, ...); the value-decomposition learners as DecQN-CQL, DecQN-OneStep, ...
METHOD_PREFIX: Dict[str, str] = {"f": "F", "ar": "AR", "saint": "SAINT", "spin": "SPIN", "decqn": "DecQN"}
_ALGO_NAMES = {"onestep": "OneStep"}
# Algorithms whose runs are reference rows: a run of one of them (e.g. F-BC, the factorised
# actor trained by behaviour cloning) joins every other algorithm's tables of its scale as
# the method "<method>_<algo>" ("f_bc"), shown after the grid's methods.
REFERENCE_ALGOS: Tuple[str, ...] = ("bc",)


def algo_label(algo: str) -> str:
    """'iql' -> 'IQL'; 'onestep' -> 'OneStep' (the published benchmark's spelling)."""
    algo = str(algo).lower()
    return _ALGO_NAMES.get(algo, algo.upper())


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
    if own_algo:
        return f"{METHOD_PREFIX.get(base, base.upper())}-{algo_label(own_algo)}"
    algo_u = algo_label(algo)
    prefix = METHOD_PREFIX.get(method, str(method).upper())
    if method in ("saint", "spin") and str(algo).lower() == "iql":
        return prefix
    return f"{prefix}-{algo_u}"


def cell_parts(scale: str, task: str, level: str, method: str, algo: str) -> List[str]:
    """The gin files (relative to the gin tree, without .gin) a cell of the grid (scale x task x
    level x method x algorithm) is composed of, in order.
    DecQN cells add their scale's network width (methods/decqn-<scale>) in a file of their own,
    so the other methods' configurations (and run ids) do not carry it."""
    if method == "decqn":
        return [f"scales/{scale}", f"tasks/{task}", f"levels/{level}", "methods/decqn", f"methods/decqn-{scale}",
                f"algos/decqn_{algo}"]
    return [f"scales/{scale}", f"tasks/{task}", f"levels/{level}", f"methods/{method}", f"algos/{algo}"]
