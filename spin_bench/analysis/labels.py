"""Method colours, markers and line styles, and the sort orders of the report's tables.

The names themselves (the method order, the display labels F-IQL, AR-IQL, SAINT, SPIN,
SPIN-AWAC, DecQN-CQL, ..., the reference algorithms) live in :mod:`spin_bench.vocab`.
Colours come from the Okabe-Ito colour-blind-safe palette and never change between figures;
markers and line styles differ too, so the figures also read in grey scale.
"""
from __future__ import annotations

from typing import Iterable, List, Sequence, Tuple

from spin_bench.vocab import LEVEL_ORDER, METHOD_ORDER, split_variant

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
# Other methods (F-BC among them): the rest of the palette and a neutral grey; not its yellow,
# #F0E442, which nearly vanishes on white (a test keeps every colour at 2:1 contrast or more).
OTHER_COLORS = ("#56B4E9", "#777777", "#000000")
METHOD_MARKERS = {"f": "o", "ar": "s", "saint": "^", "spin": "D", "decqn": "P"}
METHOD_LINESTYLES = {"f": "-", "ar": "--", "saint": "-.", "spin": "-", "decqn": ":"}


def method_sort_key(method: str) -> Tuple[int, str, str]:
    """Fixed method order; a method's variants ('spin[ASM 100 ep]') right after it, by label."""
    base, variant = split_variant(method)
    base = base.lower()
    if base in METHOD_ORDER:
        return (METHOD_ORDER.index(base), base, variant)
    if "_" in base:  # reference rows last
        return (len(METHOD_ORDER) + 1, base, variant)
    return (len(METHOD_ORDER), base, variant)


def order_methods(methods: Iterable[str]) -> List[str]:
    """Unique methods in the fixed order F, AR, SAINT, SPIN (unknown ones after, sorted;
    reference rows such as F-BC last; each method's variants after it)."""
    return sorted({_key(m) for m in methods}, key=method_sort_key)


def _key(method: str) -> str:
    """A method key in canonical case: the method lower-case, a variant label as written."""
    base, variant = split_variant(method)
    return base.lower() + (f"[{variant}]" if variant else "")


def method_color(method: str) -> str:
    base, variant = split_variant(method)
    base = base.lower()
    if base in METHOD_COLORS and not variant:
        return METHOD_COLORS[base]
    # Unknown methods and variants: a stable colour from the rest of the palette.
    return OTHER_COLORS[sum(map(ord, _key(method))) % len(OTHER_COLORS)]


def method_marker(method: str) -> str:
    return METHOD_MARKERS.get(split_variant(method)[0].lower(), "v")


def method_linestyle(method: str) -> str:
    base, variant = split_variant(method)
    return "--" if variant else METHOD_LINESTYLES.get(base.lower(), ":")


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
