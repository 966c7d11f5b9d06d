"""Configuration variants: runs of one method in one cell whose bindings differ (a sweep's
``Sweep.variants``, a ``--gin_bindings`` trial) are rows of their own, labelled by what differs.

A run's configuration is its config.gin read as text (``rundir.config_bindings``; nothing in
it is executed), less the cell's axes (task, level, method, algorithm, scale, bins: they key
the row already) and what does not change results (``rundir.NON_RESULT_BINDINGS``).

Rule: within a (scale, algorithm, task, bins, level, method) group, the *varying* bindings
are those whose value is not the same in every configuration of the group (an unbound one
counts as the value ``<unbound>``). The *default* value of a varying binding is its most
common value over the distinct configurations of every method of the cell (so
the scale's ``pretrain_asm.epochs = 10``, which every method's configuration carries, is the
default a SPIN variant with 100 epochs differs from); ties go to ``<unbound>``, then to the
value of the configuration with the most runs, then to the sorted first. A configuration is
labelled by its varying bindings that differ from their defaults (``SPIN [ASM 100 ep]``);
one that differs in none is the method's own row.

The dataset version a run used (its dataset id's ``-v<k>``, :func:`with_data_version`) counts
as the binding ``Experiment.data_version`` whether or not the run bound it (a run that left
it unbound took the newest version there was), so runs of one method on two versions of a
cell's data are two rows (``F-IQL [data v2]``), never duplicates of each other.
"""
from __future__ import annotations

from collections import Counter
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

from spin_bench.data.schema import parse_dataset_id
from spin_bench.rundir import NON_RESULT_BINDINGS

UNBOUND = "<unbound>"
# The cell's axes: already part of a row's key.
AXIS_BINDINGS = ("Experiment.task", "Experiment.level", "Experiment.method", "Experiment.algo",
                 "Experiment.scale", "Experiment.bins")


def _short(value: str) -> str:
    return value.strip("'\"")


# Readable labels for the bindings the suite's studies vary; anything else is 'name=value'.
_LABELS = {
    "pretrain_asm.epochs": lambda v: f"ASM {_short(v)} ep",
    "pretrain_asm.steps": lambda v: f"ASM {_short(v)} steps",
    "make_spin_actor.freeze": lambda v: "fine-tuned" if v in ("()", "[]") else f"frozen {v}",
    "Experiment.asm_seed": lambda v: "shared ASM",  # one ASM (this seed) for every policy seed
    "D_MODEL": lambda v: f"d_model {_short(v)}",
    "Schedule.num_steps": lambda v: f"{_short(v)} steps",
    "Experiment.data_version": lambda v: f"data v{_short(v)}",
}
DATA_VERSION = "Experiment.data_version"


def _label_order(name: str) -> tuple:
    """The order of a label's parts: the known bindings as listed above, then the rest by name."""
    order = list(_LABELS)
    return (order.index(name) if name in order else len(order), name)


def binding_label(name: str, value: str) -> str:
    """('pretrain_asm.epochs', '100') -> 'ASM 100 ep'; unknown bindings -> 'name=value'."""
    if value == UNBOUND:
        return f"{name} unbound"
    fn = _LABELS.get(name)
    return fn(value) if fn is not None else f"{name}={value}"


def result_config(bindings: Optional[Mapping[str, str]]) -> Dict[str, str]:
    """The bindings that make a configuration (axes and non-result bindings dropped)."""
    return {k: v for k, v in (bindings or {}).items()
            if k not in AXIS_BINDINGS and k not in NON_RESULT_BINDINGS}


def with_data_version(config: Mapping[str, str], dataset_id: Optional[str]) -> Dict[str, str]:
    """`config` with ``Experiment.data_version`` set to the version in `dataset_id`, the data the
    run used (unchanged when the id is not a dataset id, e.g. a file of the user's own)."""
    try:
        version = parse_dataset_id(str(dataset_id))["version"]
    except ValueError:
        return dict(config)
    return {**config, DATA_VERSION: str(version)}


def _frozen(config: Mapping[str, str]) -> Tuple[Tuple[str, str], ...]:
    return tuple(sorted(config.items()))


def variant_labels(rows: Sequence[Tuple[tuple, str, Mapping[str, str]]]
                   ) -> Tuple[List[str], Dict[tuple, Dict[str, str]]]:
    """Variant labels for runs given as (cell key, method, configuration), in order.

    Returns the label of each run ('' for a method's default configuration) and, per
    (cell, method) that has variants, ``{label: 'binding = value, ...'}`` for every
    configuration of that method (the default's bindings too), for the report's notes."""
    cells: Dict[tuple, List[int]] = {}
    for i, (cell, _, _) in enumerate(rows):
        cells.setdefault(cell, []).append(i)
    labels = [""] * len(rows)
    legends: Dict[tuple, Dict[str, str]] = {}
    for cell, idx in cells.items():
        configs = {i: _frozen(rows[i][2]) for i in idx}
        # each method's distinct configurations (two methods with the same bindings count twice)
        distinct = sorted({(rows[i][1], configs[i]) for i in idx})
        runs_per_config = Counter((rows[i][1], configs[i]) for i in idx)
        names = sorted({k for _, c in distinct for k, _ in c})
        by_method: Dict[str, List[int]] = {}
        for i in idx:
            by_method.setdefault(rows[i][1], []).append(i)
        for method, m_idx in by_method.items():
            m_configs = sorted({configs[i] for i in m_idx})
            if len(m_configs) < 2:
                continue
            as_dicts = [dict(c) for c in m_configs]
            varying = sorted((k for k in names if len({d.get(k, UNBOUND) for d in as_dicts}) > 1),
                             key=_label_order)
            defaults = {k: _default(k, distinct, runs_per_config) for k in varying}
            legend: Dict[str, str] = {}
            label_of = {}
            for c, d in zip(m_configs, as_dicts):
                diff = [k for k in varying if d.get(k, UNBOUND) != defaults[k]]
                label_of[c] = ", ".join(binding_label(k, d.get(k, UNBOUND)) for k in diff)
                legend[label_of[c]] = ", ".join(f"{k} = {d.get(k, UNBOUND)}" for k in varying)
            for i in m_idx:
                labels[i] = label_of[configs[i]]
            legends[(cell, method)] = legend
    return labels, legends


def _default(name: str, distinct: Sequence[tuple], runs_per_config: Counter) -> str:
    """The most common value of `name` over the cell's distinct (method, configuration) pairs
    (ties: unbound, then the value of the configuration with the most runs, then the sorted first)."""
    values = Counter(dict(c).get(name, UNBOUND) for _, c in distinct)
    top = max(values.values())
    tied = sorted(v for v, n in values.items() if n == top)
    if len(tied) == 1:
        return tied[0]
    if UNBOUND in tied:
        return UNBOUND
    runs = {v: max(runs_per_config[mc] for mc in distinct if dict(mc[1]).get(name, UNBOUND) == v) for v in tied}
    return max(tied, key=lambda v: (runs[v], -tied.index(v)))
