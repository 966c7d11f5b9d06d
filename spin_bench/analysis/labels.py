"""Method display names, the fixed method order, and one colour per method.

The paper's names for the IQL results are F-IQL, AR-IQL, SAINT and SPIN; with another
offline RL algorithm the algorithm is appended (F-AWAC, AR-AWAC, SAINT-AWAC, SPIN-AWAC).
The value-decomposition learners (method ``decqn``) carry the published benchmark's names:
DecQN-CQL, DecQN-BCQ, DecQN-IQL, DecQN-OneStep.
Colours come from the Okabe-Ito colour-blind-safe palette and never change between figures;
markers and line styles differ too, so the figures also read in grey scale.
"""
from __future__ import annotations

from typing import Iterable, List, Sequence, Tuple

# Fixed order everywhere: baselines first, SPIN last.
METHOD_ORDER: Tuple[str, ...] = ("f", "ar", "saint", "decqn", "spin")
BASELINE_METHOD = "f"      # the method whose asymptote defines the time-to-target target
SPIN_METHOD = "spin"

# Okabe & Ito (2008), "Color Universal Design".
METHOD_COLORS = {
    "f": "#0072B2",      # blue
    "ar": "#E69F00",     # orange
    "saint": "#009E73",  # bluish green
    "spin": "#D55E00",   # vermillion
    "decqn": "#CC79A7",  # reddish purple
}
OTHER_COLORS = ("#56B4E9", "#F0E442", "#000000")
METHOD_MARKERS = {"f": "o", "ar": "s", "saint": "^", "spin": "D", "decqn": "P"}
METHOD_LINESTYLES = {"f": "-", "ar": "--", "saint": "-.", "spin": "-", "decqn": ":"}

_PREFIX = {"f": "F", "ar": "AR", "saint": "SAINT", "spin": "SPIN", "decqn": "DecQN"}
_ALGO_NAMES = {"onestep": "OneStep"}


def algo_label(algo: str) -> str:
    """'iql' -> 'IQL'; 'onestep' -> 'OneStep' (the published benchmark's spelling)."""
    algo = str(algo).lower()
    return _ALGO_NAMES.get(algo, algo.upper())

# Algorithms whose runs are reference rows: a run of one of them (e.g. F-BC, the factorised
# actor trained by behaviour cloning) joins every other algorithm's tables of its scale as
# the method "<method>_<algo>" ("f_bc"), shown after the grid's methods.
REFERENCE_ALGOS: Tuple[str, ...] = ("bc",)


def reference_method(method: str, algo: str) -> str:
    """('f', 'bc') -> 'f_bc': the method key of a reference run inside another algorithm's group."""
    return f"{str(method).lower()}_{str(algo).lower()}"


def method_label(method: str, algo: str) -> str:
    """('f', 'iql') -> 'F-IQL'; ('spin', 'iql') -> 'SPIN'; ('spin', 'awac') -> 'SPIN-AWAC';
    a reference run's method key ('f_bc') keeps its own algorithm: 'F-BC' in any group."""
    method = str(method).lower()
    base, _, own_algo = method.partition("_")
    if own_algo:
        return f"{_PREFIX.get(base, base.upper())}-{algo_label(own_algo)}"
    algo_u = algo_label(algo)
    prefix = _PREFIX.get(method, str(method).upper())
    if method in ("saint", "spin") and str(algo).lower() == "iql":
        return prefix
    return f"{prefix}-{algo_u}"


def method_sort_key(method: str) -> Tuple[int, str]:
    method = str(method).lower()
    if method in METHOD_ORDER:
        return (METHOD_ORDER.index(method), method)
    if "_" in method:  # reference rows last
        return (len(METHOD_ORDER) + 1, method)
    return (len(METHOD_ORDER), method)


def order_methods(methods: Iterable[str]) -> List[str]:
    """Unique methods in the fixed order F, AR, SAINT, SPIN (unknown ones after, sorted;
    reference rows such as F-BC last)."""
    return sorted({str(m).lower() for m in methods}, key=method_sort_key)


def method_color(method: str) -> str:
    method = str(method).lower()
    if method in METHOD_COLORS:
        return METHOD_COLORS[method]
    # Unknown methods: a stable colour from the rest of the palette.
    return OTHER_COLORS[sum(map(ord, method)) % len(OTHER_COLORS)]


def method_marker(method: str) -> str:
    return METHOD_MARKERS.get(str(method).lower(), "v")


def method_linestyle(method: str) -> str:
    return METHOD_LINESTYLES.get(str(method).lower(), ":")


def bins_label(bins) -> str:
    """3 -> '3'; [3, 3, 3] -> '3'; [3, 5] -> '3,5' (per-dimension bins)."""
    if isinstance(bins, (list, tuple)):
        values = [int(b) for b in bins]
        if values and all(v == values[0] for v in values):
            return str(values[0])
        return ",".join(str(v) for v in values)
    if isinstance(bins, float) and bins.is_integer():
        return str(int(bins))
    return str(bins)


CELL_KEYS: Tuple[str, ...] = ("task", "bins", "level")
GROUP_KEYS: Tuple[str, ...] = ("scale", "algo")

# The paper's order (Table 1).
LEVEL_ORDER = ("medium", "medium-expert", "random-medium-expert", "expert")


def level_sort_key(level: str) -> Tuple[int, str]:
    return (LEVEL_ORDER.index(level), level) if level in LEVEL_ORDER else (len(LEVEL_ORDER), str(level))


def bins_sort_key(bins: str) -> Tuple[int, ...]:
    try:
        return tuple(int(b) for b in str(bins).split(","))
    except ValueError:
        return (10 ** 9,)


def cell_sort_key(cell: Sequence) -> tuple:
    task, bins, level = cell
    return (str(task), bins_sort_key(bins), level_sort_key(level))


def cell_name(task: str, bins: str, level: str, show_bins: bool = True) -> str:
    """'cheetah-run / medium-expert / 3 bins'."""
    name = f"{task} / {level}"
    return f"{name} / {bins} bins" if show_bins else name
