"""Datasets: the HDF5 format (D4RL style, bin-index actions), its reader/validator and
writer, sha256 checksums, the local store and the importer for the published datasets.

Quick reference::

    from spin_bench.data import dataset_id, write_dataset, load_dataset, DatasetStore

    ds_id = dataset_id("cheetah-run", "medium", 3)            # 'cheetah-run-medium-b3-v1'
    store = DatasetStore()                                    # $SPIN_BENCH_DATA_DIR or ~/.spin_bench/datasets
    sha = write_dataset(store.path_for(ds_id), arrays, {"task": "cheetah-run",
                        "level": "medium", "bins": 3, "seed": 0})
    store.register(store.path_for(ds_id))
    ds = load_dataset(ds_id)                                  # or a path; device="cuda" for tensors
    batch = ds.to_torch("cpu")                                # actions int64, flags float32

Command line: ``python -m spin_bench.data {import,inspect,list,register} --help``.
The schema is documented in :mod:`spin_bench.data.schema`.
"""
from spin_bench.data.checksum import read_sidecar, sha256_file, sidecar_path, write_sidecar
from spin_bench.data.dataset import Dataset, load_dataset, write_dataset
from spin_bench.data.header import read_header
from spin_bench.data.schema import (ARRAY_KEYS, FORMAT_VERSION, REQUIRED_ATTRS, DatasetError,
                                    action_dtype, coerce_arrays, dataset_id, parse_dataset_id)
from spin_bench.data.store import ENV_VAR as DATA_DIR_ENV_VAR
from spin_bench.data.store import DatasetStore, default_data_dir, registered_checksums

__all__ = [
    "ARRAY_KEYS", "DATA_DIR_ENV_VAR", "Dataset", "DatasetError", "DatasetStore", "FORMAT_VERSION",
    "REQUIRED_ATTRS", "action_dtype", "coerce_arrays", "dataset_id", "default_data_dir",
    "load_dataset", "parse_dataset_id", "read_header", "read_sidecar", "registered_checksums",
    "sha256_file", "sidecar_path", "write_dataset", "write_sidecar",
]
