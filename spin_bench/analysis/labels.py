"""Method colours, markers and line styles, and the sort orders of the report's tables.

Every method's label, order, colour, marker and line style is its registry entry
(:mod:`spin_bench.vocab`); these functions read it. The built-in colours come from the Okabe-Ito
colour-blind-safe palette and never change between figures; markers and line styles differ
too, so the figures also read in grey scale.
"""
from __future__ import annotations

from typing import Dict, Iterable, List, Sequence, Tuple

from spin_bench import vocab
from spin_bench.vocab import LEVEL_ORDER, split_variant

# The report's two roles, held by registered methods (vocab.register_method(role=...)).
BASELINE_METHOD = vocab.role_method("ttt_baseline")  # the method whose asymptote is the time-to-target target: F
SPIN_METHOD = vocab.role_method("subject")  # the method compared with every other: SPIN

# Methods without a colour of their own (F-BC among them, a method of yours that names none):
# the rest of the Okabe-Ito palette and a neutral grey; not its yellow, #F0E442, which nearly
# vanishes on white (a test keeps every colour at 2:1 contrast or more).
OTHER_COLORS = ("#56B4E9", "#777777", "#000000")
_UNKNOWN_ORDER, _REFERENCE_ORDER = 1e6, 2e6


def method_colors() -> Dict[str, str]:
    """Each registered method's own colour (those that name one)."""
    return {m: vocab.METHOD_SPECS[m].color for m in vocab.methods() if vocab.METHOD_SPECS[m].color}


def method_sort_key(method: str) -> Tuple[float, str, str]:
    """The registry's method order; a method's variants ('spin[ASM 100 ep]') right after it, by
    label; methods the registry does not know after, sorted; reference rows (F-BC) last."""
    base, variant = split_variant(method)
    base = base.lower()
    spec = vocab.METHOD_SPECS.get(base)
    if spec is not None:
        return (spec.order, base, variant)
    if "_" in base:  # reference rows last
        return (_REFERENCE_ORDER, base, variant)
    return (_UNKNOWN_ORDER, base, variant)


def order_methods(methods: Iterable[str]) -> List[str]:
    """Unique methods in the registry's order F, AR, SAINT, SPIN (unknown ones after, sorted;
    reference rows such as F-BC last; each method's variants after it)."""
    return sorted({_key(m) for m in methods}, key=method_sort_key)


def _key(method: str) -> str:
    """A method key in canonical case: the method lower-case, a variant label as written."""
    base, variant = split_variant(method)
    return base.lower() + (f"[{variant}]" if variant else "")


def _spec(method: str):
    return vocab.METHOD_SPECS.get(split_variant(method)[0].lower())


def _has_own_style(method: str) -> bool:
    """A registered method that names a colour, not a variant of one."""
    spec = _spec(method)
    return spec is not None and bool(spec.color) and not split_variant(method)[1]


def method_color(method: str) -> str:
    if _has_own_style(method):
        return _spec(method).color
    # Unknown methods and variants: a stable colour from the rest of the palette.
    return OTHER_COLORS[sum(map(ord, _key(method))) % len(OTHER_COLORS)]


# Styles of the methods a figure shows without a registry style of their own (variants such as
# 'spin[ASM 100 ep]', methods that name no colour, reference rows): by their place among those
# of the figure, so no two of them look alike (six before a combination repeats).
VARIANT_MARKERS = ("X", "*", "h", "p", "<", ">")
VARIANT_LINESTYLES = ("--", "-.", ":", (0, (5, 1, 1, 1)))


def figure_styles(methods: Sequence[str]) -> Dict[str, Tuple[str, str, object]]:
    """(colour, marker, line style) for each of a figure's `methods`: a registered method's own
    (:func:`method_color`, :func:`method_marker`, :func:`method_linestyle`); every other one the
    i-th of the distinct combinations of ``OTHER_COLORS`` and ``VARIANT_MARKERS``, i its place
    among the figure's others in the report's order, so same-coloured variants never share a
    marker (the hash colour alone can give two variants one look)."""
    styles: Dict[str, Tuple[str, str, object]] = {}
    others = 0
    for m in order_methods(methods):
        if _has_own_style(m):
            styles[m] = (method_color(m), method_marker(m), method_linestyle(m))
            continue
        styles[m] = (OTHER_COLORS[others % len(OTHER_COLORS)], VARIANT_MARKERS[others % len(VARIANT_MARKERS)],
                     VARIANT_LINESTYLES[others % len(VARIANT_LINESTYLES)])
        others += 1
    return {m: styles[_key(m)] for m in methods}


def method_marker(method: str) -> str:
    spec = _spec(method)
    return spec.marker if spec is not None else "v"


def method_linestyle(method: str) -> str:
    spec, variant = _spec(method), split_variant(method)[1]
    return "--" if variant else (spec.linestyle if spec is not None else ":")


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
