"""The package's layout matches its data flow: envs -> data -> datagen; models -> algos ->
train -> the command-line faces; analysis reads run directories only. Imports are read with
``ast`` (every import, also those inside functions), so an upward import or a cycle anywhere
fails here, before anyone has to trace it by hand. Also: the shared vocabulary and the one
lock implementation."""
import ast
import os

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ROOTS = {"spin_bench": os.path.join(REPO, "spin_bench"), "spin_bench.baselines": os.path.join(REPO, "baselines")}

# Each layer and the layers it may import (besides itself). "base" is what every layer may use:
# the vocabulary, the run-directory names, file writes and locks, safe loading, path layout,
# gin plumbing (spin_bench.configs loads the configurable modules by name, depending on none).
ALLOWED = {
    "base": set(),
    "envs": {"base"},
    "data": {"base", "envs"},
    "datagen": {"base", "envs", "data"},
    "models": {"base"},
    "baselines": {"base", "models"},
    "algos": {"base", "models", "baselines"},
    "train": {"base", "envs", "data", "datagen", "models", "baselines", "algos"},
    "perf": {"base", "envs", "data", "datagen", "models", "baselines", "algos", "train"},
    "sweeps": {"base", "envs", "data", "datagen", "models", "baselines", "algos", "train", "perf"},
    "gpu": {"base", "envs", "data", "datagen", "models", "baselines", "algos", "train", "perf"},
    "analysis": {"base", "envs", "data"},
}
BASE = {"spin_bench", "spin_bench.layout", "spin_bench.vocab", "spin_bench.rundir", "spin_bench.atomic",
        "spin_bench.safe_load", "spin_bench.cli", "spin_bench.configs"}
SUBPACKAGES = {"envs", "data", "datagen", "models", "baselines", "algos", "train", "perf", "sweeps", "gpu",
               "analysis"}


def layer(module: str) -> str:
    """The layer of a module: base, a sub-package, or 'faces' (the command lines: top-level
    entry points and every ``__main__``/``cli`` module, which may import anything)."""
    if module in BASE:
        return "base"
    parts = module.split(".")
    if parts[-1] in ("__main__", "cli"):
        return "faces"
    if len(parts) >= 2 and parts[1] in SUBPACKAGES:
        return parts[1]
    return "faces"


def modules() -> dict:
    """module name -> source path, for spin_bench and its baselines."""
    out = {}
    for prefix, root in ROOTS.items():
        for dirpath, dirnames, files in os.walk(root):
            dirnames[:] = [d for d in dirnames if d not in ("__pycache__", "policies", "gin")]
            for f in files:
                if not f.endswith(".py"):
                    continue
                rel = os.path.relpath(os.path.join(dirpath, f[:-3]), root).replace(os.sep, ".")
                name = prefix if rel == "__init__" else f"{prefix}.{rel.removesuffix('.__init__')}"
                out[name] = os.path.join(dirpath, f)
    return out


def import_edges(mods: dict) -> dict:
    """module -> the spin_bench modules it imports (a name imported from a package counts as
    its submodule when there is one)."""
    edges = {}
    for name, path in mods.items():
        package = name if path.endswith("__init__.py") else name.rpartition(".")[0]
        targets = set()
        for node in ast.walk(ast.parse(open(path).read(), path)):
            if isinstance(node, ast.Import):
                targets |= {a.name for a in node.names if a.name.startswith("spin_bench")}
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")[: len(package.split(".")) - node.level + 1]
                    source = ".".join(base + ([node.module] if node.module else []))
                else:
                    source = node.module or ""
                if source.startswith("spin_bench"):
                    for a in node.names:
                        sub = f"{source}.{a.name}"
                        targets.add(sub if sub in mods else source)
        edges[name] = {t for t in targets if t != name and t in mods}
    return edges


def cycles(edges: dict) -> list:
    """The strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on_stack, out = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return out


def upward_imports(edges: dict) -> list:
    bad = []
    for src, targets in edges.items():
        have = layer(src)
        if have == "faces":
            continue
        for t in sorted(targets):
            want = layer(t)
            if want != have and want not in ALLOWED[have]:
                bad.append(f"{src} ({have}) imports {t} ({want})")
    return sorted(bad)


def test_no_import_cycles_and_no_upward_imports():
    edges = import_edges(modules())
    assert "spin_bench.train.experiment" in edges and "spin_bench.baselines.factorised" in edges
    assert cycles(edges) == []
    assert upward_imports(edges) == []


def test_the_checks_can_fail():
    """A planted cycle and a planted upward import are found."""
    edges = {"spin_bench.models.actors": {"spin_bench.algos.iql"}, "spin_bench.algos.iql": {"spin_bench.models.actors"},
             "spin_bench.envs.dmc": {"spin_bench.data.dataset"}, "spin_bench.data.dataset": set()}
    assert cycles(edges) == [["spin_bench.algos.iql", "spin_bench.models.actors"]]
    assert upward_imports(edges) == ["spin_bench.envs.dmc (envs) imports spin_bench.data.dataset (data)",
                                     "spin_bench.models.actors (models) imports spin_bench.algos.iql (algos)"]
    assert layer("spin_bench.data.__main__") == "faces" and layer("spin_bench.vocab") == "base"


def test_the_registry_is_the_grid_and_every_entry_builds():
    from spin_bench import configs, vocab
    from spin_bench.algos.base import OfflineAlgorithm
    from spin_bench.gin_experiments import experiment_files

    cells = {rel.split(os.sep)[-1][:-4] for rel in experiment_files()}
    assert cells == {f"{m}_{a}" for m, a in vocab.grid_pairs(builtin_only=True)}
    for (kind, name), spec in vocab.ALGO_SPECS.items():  # every registered class resolves
        assert issubclass(vocab.resolve_builder(spec.cls), OfflineAlgorithm), name
    for name in vocab.methods():
        spec = vocab.method_spec(name)
        assert spec.actor is None or callable(vocab.resolve_builder(spec.actor)), name
        for scale in vocab.SCALE_NAMES:
            for part in spec.fragments(scale):
                assert os.path.isfile(os.path.join(configs.CONFIG_ROOT, part)), part
    # every method's label is its own, and one method holds each report role
    labels = [vocab.method_label(m, "iql") for m in vocab.methods()]
    assert len(set(labels)) == len(labels)
    assert vocab.role_method("subject") in vocab.methods() and vocab.role_method("ttt_baseline") in vocab.methods()


def test_unknown_names_are_refused_naming_the_known_ones():
    from spin_bench import vocab

    with pytest.raises(vocab.UnknownNameError, match="known methods: " + ", ".join(vocab.METHOD_SPECS)):
        vocab.method_spec("resf")
    with pytest.raises(vocab.UnknownNameError, match="known: " + ", ".join(vocab.algo_names())):
        vocab.algo_spec("crr")
    with pytest.raises(vocab.UnknownNameError, match="walker-walk"):
        vocab.task_spec("walker-walk")
    with pytest.raises(vocab.RegistryError, match="already registered"):
        vocab.register_method("f", "x:y")


def test_the_generated_levels_are_the_vocabulary_levels():
    from spin_bench import vocab
    from spin_bench.datagen.generate import DEFAULT_SIZES

    assert tuple(DEFAULT_SIZES) == vocab.LEVELS and set(vocab.LEVEL_ORDER) == set(vocab.LEVELS)


def test_try_lock_refuses_a_held_lock_and_file_lock_waits_for_none(tmp_path):
    from spin_bench.atomic import file_lock, try_lock

    path = tmp_path / "x.lock"
    fd = try_lock(path)
    assert fd is not None
    assert try_lock(path) is None  # another open file description: refused, not blocked
    os.close(fd)
    again = try_lock(path)
    assert again is not None
    os.close(again)
    with file_lock(path):
        assert try_lock(path) is None
    free = try_lock(path)
    assert free is not None
    os.close(free)


if __name__ == "__main__":  # pragma: no cover
    pytest.main([__file__])
