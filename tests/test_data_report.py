"""Dataset reporting: normalised returns and return histogram in ``inspect``, and ``table``."""
from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import numpy as np
import pytest

from spin_bench.data import load_dataset, write_dataset
from spin_bench.data.cli import main
from spin_bench.data.inspection import format_summary, summarize

EP_LEN = 10
ATTRS = {"task": "cheetah-run", "level": "medium", "bins": 3, "generator": "tests",
         "generator_version": "0"}
REFS = {"reference_expert": 90.0, "reference_random": 10.0, "reference_source": "generated"}


def make_arrays(episode_returns, ep_len: int = EP_LEN, obs_dim: int = 17, seed: int = 0):
    """Episodes of `ep_len` steps whose rewards add up to `episode_returns` exactly."""
    rng = np.random.default_rng(seed)
    n = len(episode_returns) * ep_len
    obs = rng.standard_normal((n + 1, obs_dim)).astype(np.float32)
    # one reward per step, exact in float32 (multiples of 1/4)
    rewards = np.repeat(np.asarray(episode_returns, np.float64) / ep_len, ep_len)
    return {
        "observations": obs[:-1].copy(), "next_observations": obs[1:].copy(),
        "actions": rng.integers(0, 3, (n, 6)).astype(np.uint8),
        "rewards": rewards.astype(np.float32),
        "terminals": np.zeros(n, bool), "timeouts": (np.arange(n) % ep_len) == ep_len - 1,
    }


def write(path: Path, episode_returns, **attrs) -> Path:
    write_dataset(path, make_arrays(episode_returns), dict(ATTRS, **attrs))
    return path


def run_cli(capsys, *args: str):
    rc = main(list(args))
    out, err = capsys.readouterr()
    return rc, out, err


# ----------------------------------------------------------------------------- summarize

def test_summary_normalised_returns_match_hand_computation(tmp_path):
    returns = [10.0, 30.0, 50.0, 90.0, 130.0]
    ds = load_dataset(write(tmp_path / "d.hdf5", returns, **REFS))
    s = summarize(ds)
    assert s["references"] == {"expert": 90.0, "random": 10.0, "source": "generated"}
    norm = [(r - 10.0) / (90.0 - 10.0) for r in returns]  # 0, 0.25, 0.5, 1, 1.5: 0-1 as in the report
    got = s["normalized_returns"]
    assert got["n"] == 5
    assert got["min"] == pytest.approx(0.0) and got["max"] == pytest.approx(1.5)
    assert got["mean"] == pytest.approx(sum(norm) / 5) and got["median"] == pytest.approx(0.5)
    assert got["std"] == pytest.approx(float(np.std(norm)))
    json.dumps(s)  # still JSON-able

    text = format_summary(s)
    line = next(ln for ln in text.splitlines() if ln.startswith("normalised"))
    assert "mean 0.650" in line and "max 1.500" in line and "(n=5)" in line
    assert "expert 90.00" in line and "random 10.00" in line and "generated" in line


def test_summary_without_references(tmp_path):
    s = summarize(load_dataset(write(tmp_path / "d.hdf5", [1.0, 2.0])))
    assert s["normalized_returns"] is None and s["references"] is None
    assert "normalised" not in format_summary(s)


def test_return_histogram_counts_and_three_modes(tmp_path):
    rng = np.random.default_rng(1)
    # random-medium-expert: three clusters of returns, 20 episodes each
    returns = np.concatenate([rng.uniform(0, 20, 20), rng.uniform(400, 420, 20),
                              rng.uniform(880, 900, 20)]).round(1)
    ds = load_dataset(write(tmp_path / "rme.hdf5", returns.tolist(), level="random-medium-expert"))
    s = summarize(ds)
    h = s["return_histogram"]
    assert len(h["counts"]) == 20 and len(h["edges"]) == 21
    assert sum(h["counts"]) == ds.num_episodes == 60
    assert h["edges"][0] == pytest.approx(ds.episode_returns().min())
    assert h["edges"][-1] == pytest.approx(ds.episode_returns().max())

    line = next(ln for ln in format_summary(s).splitlines() if ln.startswith("return hist"))
    bar = line.split("|")[1]
    assert len(bar) == 20
    modes = [m for m in bar.split(" ") if m]  # runs of non-empty bins
    assert len(modes) == 3, line
    lo, hi = ds.episode_returns().min(), ds.episode_returns().max()
    assert line.split("|")[0].split()[-1] == f"{lo:.2f}" and f"| {hi:.2f}" in line


# ----------------------------------------------------------------------------- table

def test_table_csv_two_files(tmp_path, capsys):
    a = write(tmp_path / "a.hdf5", [10.0, 50.0, 90.0], **REFS)
    b = write(tmp_path / "b.hdf5", [2.5, 7.5], level="expert")
    rc, out, err = run_cli(capsys, "table", str(a), str(b), "--format=csv")
    assert rc == 0, err
    rows = list(csv.reader(io.StringIO(out)))
    assert rows[0] == ["task", "level", "transitions", "episodes", "return mean", "return min",
                       "return max", "normalised mean", "identity", "sha256"]
    assert len(rows) == 3

    shas, ids = [], []
    for f in (a, b):
        rc, js, err = run_cli(capsys, "inspect", str(f), "--json")
        assert rc == 0, err
        shas.append(json.loads(js)["sha256"])
        ids.append(json.loads(js)["identity"])
    assert rows[1][:4] == ["cheetah-run", "medium", "30", "3"]
    assert [float(x) for x in rows[1][4:8]] == pytest.approx([50.0, 10.0, 90.0, 0.5])
    assert rows[1][8:] == [ids[0], shas[0]] and len(shas[0]) == len(ids[0]) == 64
    assert rows[2][:4] == ["cheetah-run", "expert", "20", "2"]
    assert [float(x) for x in rows[2][4:7]] == pytest.approx([5.0, 2.5, 7.5])
    assert rows[2][7] == ""  # no references
    assert rows[2][8:] == [ids[1], shas[1]] and ids[0] != ids[1]

    # rows follow the given order
    rc, out, _ = run_cli(capsys, "table", str(b), str(a), "--format", "csv")
    assert rc == 0 and [r[1] for r in csv.reader(io.StringIO(out))][1:] == ["expert", "medium"]


def test_table_markdown_and_store_id(tmp_path, capsys):
    store = tmp_path / "store"
    a = write(tmp_path / "a.hdf5", [10.0, 50.0, 90.0], **REFS)
    rc, _, err = run_cli(capsys, "register", str(a), f"--data_dir={store}")
    assert rc == 0, err
    rc, out, err = run_cli(capsys, "table", "cheetah-run-medium-b3-v1", f"--data_dir={store}")
    assert rc == 0, err
    lines = out.strip().splitlines()
    assert len(lines) == 3 and lines[0].startswith("| task | level |") and lines[1].startswith("|---")
    assert lines[2].startswith("| cheetah-run | medium | 30 | 3 | 50.00 | 10.00 | 90.00 | 0.5000 |")
    assert load_dataset(a).sha256 in lines[2]


def test_table_errors_name_the_file_and_print_nothing(tmp_path, capsys):
    a = write(tmp_path / "a.hdf5", [1.0, 2.0])
    missing = tmp_path / "missing.hdf5"
    rc, out, err = run_cli(capsys, "table", str(a), str(missing), "--format=csv")
    assert rc != 0 and out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and str(missing) in lines[0]
    assert "no such dataset file" in lines[0]

    rc, out, err = run_cli(capsys, "table", "cheetah-run-expert-b3-v1",
                           f"--data_dir={tmp_path / 'empty'}")
    assert rc != 0 and out == ""
    assert "cheetah-run-expert-b3-v1" in err and "no such dataset in the store" in err

    # a checksum mismatch fails like inspect, unless --no_verify
    b = write(tmp_path / "b.hdf5", [1.0, 2.0])
    b.with_name(b.name + ".sha256").write_text("0" * 64 + "  b.hdf5\n")
    rc, out, err = run_cli(capsys, "table", str(a), str(b))
    assert rc != 0 and out == "" and str(b) in err and "checksum mismatch" in err
    rc, out, err = run_cli(capsys, "table", str(a), str(b), "--no_verify")
    assert rc == 0 and len(out.strip().splitlines()) == 4, err


# ----------------------------------------------------------------------------- generated datasets by id

def _generated(root: Path, sub: str, returns) -> Path:
    """A dataset registered in the generated store `sub` of the store at `root`, as datagen writes it."""
    from spin_bench.data.store import DatasetStore

    store = DatasetStore(root / sub)
    path = write(store.path_for("cheetah-run-medium-b3-v1"), returns, dataset_id="cheetah-run-medium-b3-v1",
                 **REFS)
    store.register(path)
    return path


def test_inspect_finds_a_generated_dataset_by_its_id_and_list_says_who_made_it(tmp_path, capsys):
    path = _generated(tmp_path, "generated/n4000-s0", [10.0, 50.0])
    rc, out, err = run_cli(capsys, "inspect", "cheetah-run-medium-b3-v1", f"--data_dir={tmp_path}")
    assert rc == 0, err
    assert f"path         {path}" in out
    assert "created 1970-01-01T00:00:00Z (fixed on purpose" in out and "SOURCE_DATE_EPOCH" in out
    rc, out, _ = run_cli(capsys, "list", f"--data_dir={tmp_path}")
    assert rc == 0 and "generated by the runner" not in out
    assert f"generated from the shipped behaviour policies (datagen generate, or a run on first use): " \
           f"{tmp_path / 'generated' / 'n4000-s0'}" in out
    # a second size of the same id: the default-size store wins; without it, the choice is the user's
    other = _generated(tmp_path, "generated/n8000-s1", [10.0, 90.0])
    rc, _, err = run_cli(capsys, "inspect", "cheetah-run-medium-b3-v1", f"--data_dir={tmp_path}")
    assert rc == 2 and "several sizes or seeds" in err and str(path) in err and str(other) in err
    default = _generated(tmp_path, "generated", [30.0, 50.0])
    rc, out, err = run_cli(capsys, "inspect", "cheetah-run-medium-b3-v1", f"--data_dir={tmp_path}")
    assert rc == 0 and f"path         {default}" in out, err


def test_a_real_creation_date_has_no_note(tmp_path, monkeypatch):
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1767225600")
    text = format_summary(summarize(load_dataset(write(tmp_path / "d.hdf5", [1.0, 2.0]))))
    assert "created 2026-01-01T00:00:00Z   " in text and "fixed on purpose" not in text
