"""The local dataset store: ``<root>/<dataset_id>.hdf5`` plus a JSON registry.

Root: the explicit argument, else ``$SPIN_BENCH_DATA_DIR``, else ``~/.spin_bench/datasets``.
The registry ``<root>/registry.json`` lists the datasets present locally::

    {"registry_version": 1,
     "datasets": {"cheetah-run-medium-b3-v1": {"path": "cheetah-run-medium-b3-v1.hdf5",
                   "sha256": "...", "size": 123, "task": "cheetah-run", "level": "medium",
                   "bins": [3, 3, 3, 3, 3, 3], "num_transitions": 1000000,
                   "num_episodes": 1000, "registered": "2026-...Z"}}}

Paths inside the root are stored relative to it (the store can be moved). The registry is
rewritten atomically under an exclusive lock (``<root>/.registry.lock``), so concurrent
registrations from a sweep do not lose entries.
"""
from __future__ import annotations

import contextlib
import datetime
import json
import os
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Tuple

from spin_bench.atomic import PathLike, atomic_write_text, file_lock
from spin_bench.data.checksum import is_sha256, read_sidecar, sha256_file, sidecar_path
from spin_bench.data.header import read_header
from spin_bench.data.identity import IDENTITY_ATTR
from spin_bench.data.schema import DatasetError, is_dataset_id, parse_dataset_id

ENV_VAR = "SPIN_BENCH_DATA_DIR"
DEFAULT_ROOT = os.path.join("~", ".spin_bench", "datasets")
REGISTRY_NAME = "registry.json"
LOCK_NAME = ".registry.lock"
REGISTRY_VERSION = 1
DATASET_SUFFIX = ".hdf5"


def default_data_dir() -> Path:
    """``$SPIN_BENCH_DATA_DIR`` if set (and non-empty), else ``~/.spin_bench/datasets``."""
    return Path(os.path.expanduser(os.environ.get(ENV_VAR) or DEFAULT_ROOT)).absolute()


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class DatasetStore:
    """A directory of datasets and its registry (see the module docstring)."""

    def __init__(self, root: Optional[PathLike] = None):
        self.root: Path = (Path(os.path.expanduser(os.fspath(root))).absolute()
                           if root is not None and os.fspath(root) != "" else default_data_dir())

    def __repr__(self) -> str:
        return f"DatasetStore({str(self.root)!r})"

    @property
    def registry_path(self) -> Path:
        return self.root / REGISTRY_NAME

    def path_for(self, ds_id: str) -> Path:
        """Where dataset `ds_id` lives in this store: ``<root>/<id>.hdf5``."""
        parse_dataset_id(ds_id)
        return self.root / f"{ds_id}{DATASET_SUFFIX}"

    # ------------------------------------------------------------------ registry file
    def _read(self) -> Dict[str, Dict[str, Any]]:
        from spin_bench.safe_load import MAX_JSON_BYTES, UnreadableFileError, read_text

        if not os.path.lexists(self.registry_path):
            return {}
        try:  # a regular file within the JSON cap: a FIFO or a device is refused, never read
            text = read_text(self.registry_path, "dataset registry", MAX_JSON_BYTES)
        except UnreadableFileError as e:
            raise DatasetError(str(e), path=self.registry_path) from None
        try:
            doc = json.loads(text)
            datasets = doc["datasets"]
            if not isinstance(datasets, dict) or not all(
                    isinstance(v, dict) and isinstance(v.get("path"), str) for v in datasets.values()):
                raise TypeError("'datasets' must map ids to entries with a 'path'")
        except (ValueError, KeyError, TypeError) as e:
            raise DatasetError(
                f"{self.registry_path}: expected a registry JSON document "
                f"{{'registry_version': {REGISTRY_VERSION}, 'datasets': {{...}}}}, got an "
                f"unreadable file ({type(e).__name__}: {e}); fix or delete it and re-register",
                path=self.registry_path) from None
        return datasets

    def _write(self, datasets: Dict[str, Dict[str, Any]]) -> None:
        doc = {"registry_version": REGISTRY_VERSION,
               "datasets": {k: datasets[k] for k in sorted(datasets)}}
        atomic_write_text(self.registry_path, json.dumps(doc, indent=2, sort_keys=True) + "\n")

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self.root.mkdir(parents=True, exist_ok=True)
        with file_lock(self.root / LOCK_NAME):
            yield

    def _resolve(self, stored: str) -> Path:
        p = Path(stored)
        return p if p.is_absolute() else self.root / p

    def _public(self, entry: Dict[str, Any]) -> Dict[str, Any]:
        out = dict(entry)
        out["path"] = str(self._resolve(entry["path"]))
        return out

    # ------------------------------------------------------------------ queries
    def entries(self) -> Dict[str, Dict[str, Any]]:
        """Registered datasets: id -> entry (with an absolute 'path')."""
        return {k: self._public(v) for k, v in self._read().items()}

    def entry(self, ds_id: str) -> Optional[Dict[str, Any]]:
        """The registry entry of `ds_id` (absolute 'path'), or None."""
        e = self._read().get(ds_id)
        return None if e is None else self._public(e)

    def find(self, ds_id: str) -> Optional[Path]:
        """Path of dataset `ds_id` if its file exists here (registered or at path_for)."""
        e = self._read().get(ds_id)
        if e is not None and self._resolve(e["path"]).is_file():
            return self._resolve(e["path"])
        p = self.path_for(ds_id)
        return p if p.is_file() else None

    def sha256_of(self, ds_id: str) -> Optional[str]:
        """The registered sha256 of `ds_id`, or None if it is not registered."""
        e = self._read().get(ds_id)
        return None if e is None else e.get("sha256")

    def entry_for_path(self, path: PathLike) -> Optional[Tuple[str, Dict[str, Any]]]:
        """(id, entry) of the registered dataset stored at `path`, or None."""
        target = os.path.realpath(path)
        for k, v in self._read().items():
            if os.path.realpath(self._resolve(v["path"])) == target:
                return k, self._public(v)
        return None

    # ------------------------------------------------------------------ updates
    def register(self, path: PathLike) -> Dict[str, Any]:
        """Add (or refresh) the dataset file at `path` in the registry; return its entry.

        Reads the file's header (attributes, keys, dtypes and shapes are checked; the data
        is not read), computes its sha256, and refuses a file whose ``.sha256`` sidecar
        disagrees.
        """
        path = Path(path).absolute()
        if not path.is_file():
            raise DatasetError(f"{path}: no such dataset file", path=path)
        header = read_header(path)
        attrs = header["attrs"]
        digest = sha256_file(path)
        recorded = read_sidecar(path)
        if recorded is not None and recorded != digest:
            raise DatasetError(
                f"{path}: checksum mismatch: the file's sha256 is {digest} but its .sha256 "
                f"sidecar records {recorded}; the file is corrupted or was modified", path=path)
        try:
            stored_path = str(path.relative_to(self.root))
        except ValueError:
            stored_path = str(path)
        entry = {
            "path": stored_path, "sha256": digest, "size": path.stat().st_size,
            "task": attrs["task"], "level": attrs["level"], "bins": list(attrs["bins"]),
            "num_transitions": int(header["num_transitions"]),
            "num_episodes": int(attrs["num_episodes"]),
            "format_version": int(attrs["format_version"]), "registered": _now(),
        }
        if attrs.get(IDENTITY_ATTR):  # files written before identities were recorded lack it
            entry[IDENTITY_ATTR] = attrs[IDENTITY_ATTR]
        assert is_sha256(entry["sha256"])
        with self._locked():
            datasets = self._read()
            datasets[attrs["dataset_id"]] = entry
            self._write(datasets)
        return self._public(entry)

    def unregister(self, ds_id: str) -> bool:
        """Drop `ds_id` from the registry (the file stays); whether it was there."""
        with self._locked():
            datasets = self._read()
            if ds_id not in datasets:
                return False
            del datasets[ds_id]
            self._write(datasets)
        return True


# ----------------------------------------------------------------------------- lookup
def registered_checksums(path: PathLike, store: Optional[DatasetStore] = None
                         ) -> List[Tuple[str, str]]:
    """[(where, sha256)] recorded for `path`: its ``.sha256`` sidecar, the registry of the
    store in its directory (if any), and the registry of `store` (if given)."""
    path = Path(path)
    found: List[Tuple[str, str]] = []
    side = read_sidecar(path)
    if side is not None:
        found.append((str(sidecar_path(path)), side))
    stores = []
    if (path.parent / REGISTRY_NAME).is_file():
        stores.append(DatasetStore(path.parent))
    if store is not None and all(s.root != store.root for s in stores):
        stores.append(store)
    for st in stores:
        hit = st.entry_for_path(path)
        if hit is not None and hit[1].get("sha256"):
            found.append((f"{st.registry_path} (entry {hit[0]})", hit[1]["sha256"]))
    return found


GENERATED_SUBDIR = "generated"


def generated_stores(store: DatasetStore) -> List[Tuple[str, DatasetStore]]:
    """The stores of generated datasets inside `store` (name relative to its root, store):
    ``generated/`` (default sizes, seed 0), then each ``generated/n<T>-s<seed>/``, sorted."""
    gen_root = store.root / GENERATED_SUBDIR
    subs = [gen_root] + sorted(p for p in gen_root.glob("n*-s*") if p.is_dir())
    return [(str(sub.relative_to(store.root)), DatasetStore(sub)) for sub in subs
            if (sub / "registry.json").is_file()]


def resolve_path(path: PathLike, data_dir: Optional[PathLike] = None) -> Tuple[Path, Optional[DatasetStore]]:
    """A dataset file named by its path, or by its dataset id: looked up in the store `data_dir`
    (else the default store), then in its generated datasets (``generated/``, then one
    ``generated/n<T>-s<seed>/`` when exactly one holds it; several: DatasetError listing them).
    Returns (path, the store it was found in, or None for a path)."""
    p = Path(path)
    if p.exists() or not is_dataset_id(os.fspath(path)):
        return p, None
    store = DatasetStore(data_dir)
    found = store.find(os.fspath(path))
    if found is None:
        hits = [(name, sub, sub.find(os.fspath(path))) for name, sub in generated_stores(store)]
        hits = [h for h in hits if h[2] is not None]
        default = [h for h in hits if h[0] == GENERATED_SUBDIR]
        if default or len(hits) == 1:
            return (default or hits)[0][2], (default or hits)[0][1]
        if hits:
            raise DatasetError(
                f"{path}: generated at several sizes or seeds in {store.root} "
                f"({', '.join(name for name, _, _ in hits)}); name the file: "
                f"{'; '.join(str(f) for _, _, f in hits)}", path=path)
    if found is None:
        raise DatasetError(
            f"{path}: no such dataset in the store {store.root} (import it with "
            f"'python -m spin_bench.data import ...' or generate it; see "
            f"'python -m spin_bench.data list')", path=path)
    return found, store
