"""The data identity: a digest of what defines a dataset's data, not of the file's bytes.

One of three identities (docs/data-identity.md): this one is a property of a dataset; the
*run identity* (:mod:`spin_bench.train.identity`) records which configuration, seed and data
a run directory holds; :mod:`spin_bench.analysis.data_identities` checks and backfills the
data identities that run directories recorded.

The file sha256 (``<file>.sha256``) proves that a file is byte for byte the one written; it
changes with anything the HDF5 library puts into the file (format details, compression,
a different h5py/HDF5 or zlib). The *data identity* proves that two files hold the same
data: it is the sha256 of a canonical encoding of

- the six arrays (``ARRAY_KEYS`` order; for each: key, little-endian dtype, shape, then the
  C-order little-endian bytes), and
- the attributes that define the data (``DEFINING_ATTRS``, those present), as canonical
  JSON: sorted keys, no whitespace, numpy values as Python values, the behaviour
  policies reduced to their sha256.

Volatile or derived attributes (creation time, source path, counts, descriptions, the
package version that wrote the file) are not part of it, and neither is anything about
how HDF5 packs the arrays. Two regenerations of the same data on two machines have the
same identity even where their files differ.
"""
from __future__ import annotations

import hashlib
import json
from typing import Any, Dict, Mapping

import numpy as np

from spin_bench.data.schema import ARRAY_KEYS

IDENTITY_VERSION = 1
IDENTITY_ATTR = "data_identity"  # the file attribute that records it
# What defines a dataset besides its arrays. A key absent from a file is left out.
DEFINING_ATTRS = (
    "dataset_id", "task", "level", "bins", "generator", "seed", "mixture",
    "collection_epsilon", "policies", "reference_expert", "reference_random",
    "reference_source", "source_sha256")
_HEADER = f"spin_bench data identity v{IDENTITY_VERSION}\n".encode()


def _plain(value: Any) -> Any:
    """numpy scalars/arrays, tuples and mappings -> JSON-ready Python values."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return [_plain(v) for v in value.tolist()]
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return value


def defining_attrs(attrs: Mapping[str, Any]) -> Dict[str, Any]:
    """The attributes of `attrs` that enter the identity, as plain Python values."""
    out = {k: _plain(attrs[k]) for k in DEFINING_ATTRS if k in attrs and attrs[k] is not None}
    policies = out.get("policies")
    if isinstance(policies, dict):  # only which policy files were used, not their metadata
        out["policies"] = {k: (v.get("sha256") if isinstance(v, dict) else v)
                           for k, v in policies.items()}
    return out


def canonical_attrs_json(attrs: Mapping[str, Any]) -> str:
    """The canonical JSON of the defining attributes (what the identity digests)."""
    return json.dumps(defining_attrs(attrs), sort_keys=True, separators=(",", ":"),
                      ensure_ascii=True)


def data_identity(arrays: Mapping[str, np.ndarray], attrs: Mapping[str, Any]) -> str:
    """Hex sha256 of the arrays and the defining attributes (see the module docstring)."""
    h = hashlib.sha256(_HEADER)
    text = canonical_attrs_json(attrs).encode("ascii")
    h.update(f"attrs {len(text)}\n".encode())
    h.update(text)
    for key in ARRAY_KEYS:
        arr = np.asarray(arrays[key])
        arr = np.ascontiguousarray(arr.astype(arr.dtype.newbyteorder("<"), copy=False))
        h.update(f"\n{key} {arr.dtype.str} {list(arr.shape)}\n".encode())
        if arr.size:
            h.update(arr.reshape(-1).view(np.uint8))
    return h.hexdigest()
