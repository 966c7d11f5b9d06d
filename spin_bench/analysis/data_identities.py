"""Which data each run used: the data identities of run directories, the report's dataset
rule on them, and their backfill.

One of three identities (docs/data-identity.md): the *data identity* of a dataset is computed
in :mod:`spin_bench.data.identity`; the *run identity* (what ``--resume`` compares) is
:mod:`spin_bench.train.identity`; this module reads the data identity each run directory
recorded and fills in the ones older runs lack. Its command line is
``python -m spin_bench.identities``.

A run records ``dataset_identity`` (a digest of the data, see ``spin_bench.data.identity``)
beside ``dataset_sha256`` (the file's bytes). Runs made before identities were recorded
have the sha256 only; their identity is

1. *matched*: another run recorded the same file sha256 with its identity (same bytes,
   same data), or
2. *recomputed*: the file the run recorded (``dataset_path``) is at hand with that sha256,
   or
3. *unverifiable*: neither; such a run is kept and reported, never silently dropped.

The report keeps, per ``dataset_id``, the runs of the majority identity. To make old run
directories self-contained, write the identities into them::

    python -m spin_bench.identities --results_dir=results/X/runs \\
        [--data=~/.spin_bench/datasets] [--write]

(:func:`backfill`; ``--data``, files or directories searched for ``*.hdf5``, supplies files
that moved since the runs; without ``--write`` it only prints what it would record).
"""
from __future__ import annotations

import os
from typing import Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

import pandas as pd

from spin_bench.analysis.notes import Notes
from spin_bench.rundir import SUMMARY

BACKFILL_KEY = "dataset_identity_backfilled"  # summary.json: where a backfilled identity came from


class IdentityResolver:
    """sha256 -> data identity, from the files at hand (memoised per sha256).

    ``candidates``: dataset files or directories (searched for ``*.hdf5``) to try besides the
    path a run recorded. A file is used only when its sha256 is the recorded one."""

    def __init__(self, candidates: Iterable[str] = ()):
        self._known: Dict[str, str] = {}  # sha256 -> identity
        self._where: Dict[str, str] = {}
        self._file_sha: Dict[str, Optional[str]] = {}
        self._candidates = list(_dataset_files(candidates))

    def learn(self, sha256: str, identity: str) -> None:
        """Record that the file with `sha256` holds the data `identity` (from a run)."""
        if sha256 and identity:
            self._known.setdefault(sha256, identity)

    def where(self, sha256: str) -> str:
        """The file an identity was recomputed from ('' if it came from a run's record)."""
        return self._where.get(sha256, "")

    def _sha_of(self, path: str) -> Optional[str]:
        """The sha256 its sidecar records, else that of its bytes (None: unreadable)."""
        from spin_bench.data.checksum import read_sidecar, sha256_file

        if path not in self._file_sha:
            try:
                self._file_sha[path] = read_sidecar(path) or sha256_file(path)
            except Exception:  # noqa: BLE001 - an unreadable file or sidecar says nothing
                self._file_sha[path] = None
        return self._file_sha[path]

    def find(self, sha256: str, paths: Sequence[str] = ()) -> Tuple[Optional[str], str]:
        """(the identity or None, the file it was recomputed from: '' when a run recorded it
        or when it was not found)."""
        identity = self.resolve(sha256, paths)
        return identity, self.where(sha256)

    def resolve(self, sha256: str, paths: Sequence[str] = ()) -> Optional[str]:
        """The identity of the data whose file had `sha256` (the runs recorded it at `paths`),
        or None when no such file is at hand."""
        if sha256 in self._known:
            return self._known[sha256]
        from spin_bench.data.dataset import identity_of_file
        from spin_bench.data.schema import DatasetError

        for p in [p for p in paths if p] + self._candidates:
            if not os.path.isfile(p) or self._sha_of(p) != sha256:
                continue
            try:
                _, identity = identity_of_file(p, sha256)  # verifies the file really has it
            except (DatasetError, OSError):
                continue
            self._known[sha256], self._where[sha256] = identity, p
            return identity
        return None


def _dataset_files(candidates: Iterable[str]) -> Iterable[str]:
    for c in candidates:
        c = os.path.expanduser(os.fspath(c))
        if os.path.isdir(c):
            stack = [(c, 0)]  # iterative: no recursion limit however deep the folders nest
            while stack:
                root, depth = stack.pop()
                try:
                    with os.scandir(root) as it:
                        entries = sorted(it, key=lambda e: e.name)
                except OSError:
                    continue
                for e in entries:
                    if e.name.endswith(".hdf5") and e.is_file():
                        yield e.path
                if depth < 64:
                    stack.extend((e.path, depth + 1) for e in reversed(entries) if e.is_dir(follow_symlinks=False))
        elif os.path.isfile(c):
            yield c


def _paths_by_sha(pairs: Iterable[Tuple[str, str]]) -> Dict[str, List[str]]:
    """sha256 -> every dataset path the runs with that sha256 recorded (sorted, unique)."""
    out: Dict[str, set] = {}
    for sha, path in pairs:
        out.setdefault(sha, set())
        if path:
            out[sha].add(path)
    return {k: sorted(v) for k, v in out.items()}


def resolve_run_identities(runs: pd.DataFrame, dataset_paths: Mapping[str, str],
                           resolver: Optional[IdentityResolver] = None
                           ) -> Tuple[pd.Series, Dict[str, str]]:
    """(identity per run, '' where unverifiable; how each was found: 'recorded', 'matched',
    'recomputed from <file>' or 'unverifiable'), both indexed like ``runs``."""
    resolver = resolver or IdentityResolver()
    for sha, ident in zip(runs["dataset_sha256"], runs["dataset_identity"]):
        resolver.learn(sha, ident)
    paths = _paths_by_sha(zip(runs["dataset_sha256"],
                              (dataset_paths.get(d, "") for d in runs["run_dir"])))
    identities, how = [], {}
    for idx, r in runs.iterrows():
        if r["dataset_identity"]:
            identities.append(r["dataset_identity"])
            how[r["run_dir"]] = "recorded"
            continue
        found, where = resolver.find(r["dataset_sha256"], paths[r["dataset_sha256"]])
        identities.append(found or "")
        how[r["run_dir"]] = ("unverifiable" if found is None else
                             f"recomputed from {where}" if where else "matched")
    return pd.Series(identities, index=runs.index, dtype=object), how


def check_identities(runs: pd.DataFrame, dataset_paths: Mapping[str, str], notes: Notes
                     ) -> Tuple[pd.DataFrame, List[Dict[str, str]]]:
    """The report's dataset rule: per ``dataset_id``, keep the runs of the majority data
    identity (none when there is no strict majority). Runs whose identity cannot be
    established are kept and reported. Returns (runs with ``dataset_identity`` filled in,
    excluded rows)."""
    runs = runs.copy()
    if runs.empty:
        return runs, []
    runs["dataset_identity"], how = resolve_run_identities(runs, dataset_paths)
    recomputed: Dict[str, List[str]] = {}
    for run_dir, h in sorted(how.items()):
        if h.startswith("recomputed"):
            recomputed.setdefault(h, []).append(run_dir)
    for h, dirs in sorted(recomputed.items()):
        notes.info("dataset", f"{len(dirs)} run(s) recorded only the file sha256; data identity "
                              f"{h} ({', '.join(dirs)})")
    excluded: List[Dict[str, str]] = []
    drop = set()
    for dataset_id, grp in runs.groupby("dataset_id", sort=True):
        known = grp[grp["dataset_identity"] != ""]
        unknown = grp[grp["dataset_identity"] == ""]
        counts = known["dataset_identity"].value_counts()
        if len(counts) > 1 and (counts == counts.iloc[0]).sum() > 1:
            for _, r in known.iterrows():
                excluded.append({"run_dir": r["run_dir"], "reason":
                                 f"dataset identity {r['dataset_identity'][:12]} of dataset "
                                 f"{dataset_id!r}: no majority identity among "
                                 f"{len(counts)} different ones, all excluded"})
                drop.add(r["run_dir"])
        elif len(counts) > 1:
            majority = counts.index[0]
            for _, r in known[known["dataset_identity"] != majority].iterrows():
                excluded.append({"run_dir": r["run_dir"], "reason":
                                 f"dataset identity {r['dataset_identity'][:12]} differs from the "
                                 f"majority {majority[:12]} for dataset {dataset_id!r} (other data)"})
                drop.add(r["run_dir"])
        shas = set(unknown["dataset_sha256"])
        if unknown.empty or (len(counts) == 0 and len(shas) == 1):
            continue  # every run has a known identity, or all used the very same file bytes
        notes.warn("dataset", f"{dataset_id}: {len(unknown)} run(s) recorded only the file sha256 "
                              f"({', '.join(sorted(s[:12] for s in shas))}) and no such file is at "
                              f"hand: data identity unverifiable, kept ("
                              f"{', '.join(sorted(unknown['run_dir']))}); backfill with "
                              f"python -m spin_bench.identities --data=DATA_DIR --write")
    return runs[~runs["run_dir"].isin(drop)], excluded


# ----------------------------------------------------------------------------- backfill

def backfill(run_dirs: Sequence[str], data: Sequence[str] = (), write: bool = False
             ) -> List[Dict[str, str]]:
    """Find the data identity of every run directory that records only ``dataset_sha256``
    (from its recorded ``dataset_path``, the files under `data`, or another run with the same
    sha256) and, with `write`, record it in its summary.json (atomically, with
    ``dataset_identity_backfilled`` saying from where). Returns one row per such run."""
    from spin_bench.atomic import atomic_write_json

    from spin_bench.safe_load import read_json

    summaries = {}
    for d in run_dirs:
        try:  # a regular file, no link: run folders are shared
            summaries[d] = read_json(os.path.join(d, SUMMARY), "summary.json", follow_symlinks=False)
        except ValueError:  # unreadable (the report lists it): nothing to backfill
            continue
        s = summaries[d]
        if not all(isinstance(s.get(k), (str, type(None))) for k in ("dataset_sha256", "dataset_identity",
                                                                      "dataset_path")):
            del summaries[d]  # mistyped record: left as it is (the report excludes it)
    resolver = IdentityResolver(data)
    for s in summaries.values():
        if isinstance(s, dict):
            resolver.learn(str(s.get("dataset_sha256") or ""), str(s.get("dataset_identity") or ""))
    summaries = {d: s for d, s in summaries.items() if isinstance(s, dict)}
    paths = _paths_by_sha((str(s.get("dataset_sha256") or ""), str(s.get("dataset_path") or ""))
                          for s in summaries.values())
    rows = []
    for d, s in sorted(summaries.items()):
        if s.get("dataset_identity") or not s.get("dataset_sha256"):
            continue
        sha = str(s["dataset_sha256"])
        identity, where = resolver.find(sha, paths[sha])
        source = where or ("another run with this sha256" if identity else "")
        rows.append({"run_dir": d, "dataset_sha256": sha, "dataset_identity": identity or "",
                     "source": source or "unverifiable: no file with this sha256 at hand"})
        if write and identity:
            s = dict(s, dataset_identity=identity)
            s[BACKFILL_KEY] = source
            atomic_write_json(os.path.join(d, SUMMARY), s)
    return rows
