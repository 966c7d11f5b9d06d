"""spin_bench.analysis loading: final scores, exclusion rules, duplicates, empty input."""
import json
import os

import numpy as np
import pytest

from spin_bench.analysis import AnalysisError, final_score, load_runs
from spin_bench.analysis.synthetic import write_run_dir

REF = {"expert": 600.0, "random": 0.0}


def _run(root, name, **kw):
    kw.setdefault("returns", [100, 200, 300, 400, 500, 600, 700])
    kw.setdefault("reference", REF)
    return write_run_dir(os.path.join(root, name), **kw)


def test_final_score_is_mean_of_last_k(tmp_path):
    returns = [10.0, 20.0, 30.0, 40.0, 50.0, 60.0, 70.0]
    assert final_score(returns, 5) == pytest.approx(50.0)
    assert final_score(returns, 2) == pytest.approx(65.0)
    assert final_score(returns, 100) == pytest.approx(40.0)   # fewer evaluations than K: all
    _run(tmp_path, "a", returns=returns, seed=0)
    res = load_runs(str(tmp_path), final_k=3)
    r = res.runs.iloc[0]
    assert r["final_return"] == pytest.approx(60.0)
    assert r["best_return"] == pytest.approx(70.0)
    assert r["final_normalized_score"] == pytest.approx(60.0 / 600.0)
    assert r["final_k"] == 3 and r["num_evals"] == 7
    assert len(res.evals) == 7
    assert set(res.evals.columns) >= {"task", "bins", "level", "method", "algo", "scale", "seed",
                                      "step", "train_time_s", "train_min", "return_mean",
                                      "normalized_score", "run_dir"}
    assert res.evals["bins"].iloc[0] == "3"
    assert res.evals["train_min"].iloc[0] == pytest.approx(res.evals["train_time_s"].iloc[0] / 60)


def test_short_run_warns_about_k(tmp_path):
    _run(tmp_path, "a", returns=[1.0, 2.0])
    res = load_runs(str(tmp_path), final_k=5)
    assert res.runs["final_return"].iloc[0] == pytest.approx(1.5)
    assert any("only 2 evaluation" in t for t in res.messages.texts())


def test_normalised_score_from_reference_when_column_empty(tmp_path):
    _run(tmp_path, "a", returns=[300.0] * 5, write_normalized=False)
    _run(tmp_path, "b", returns=[300.0] * 5, seed=1, reference=None)
    res = load_runs(str(tmp_path))
    by_seed = res.runs.set_index("seed")
    assert by_seed.loc[0, "final_normalized_score"] == pytest.approx(0.5)
    assert np.isnan(by_seed.loc[1, "final_normalized_score"])
    assert any("without a reference" in t or "no reference" in t for t in res.messages.texts())


def test_exclusion_rules(tmp_path):
    good = [_run(tmp_path, f"good{s}", seed=s) for s in range(3)]
    _run(tmp_path, "running", seed=10, status="running")
    _run(tmp_path, "nomarker", seed=11, complete=False)
    _run(tmp_path, "failed", seed=12, status="failed", error="ValueError: boom")
    _run(tmp_path, "othersha", seed=13, dataset_sha256="f" * 64)
    d = _run(tmp_path, "badjson", seed=14)
    with open(os.path.join(d, "summary.json"), "w") as f:
        f.write("{not json")
    d = _run(tmp_path, "nometrics", seed=15)
    os.remove(os.path.join(d, "metrics.csv"))
    res = load_runs(str(tmp_path))
    assert sorted(res.runs["run_dir"]) == sorted(good)
    reasons = dict(zip(res.excluded["run_dir"].map(os.path.basename), res.excluded["reason"]))
    assert "incomplete" in reasons["running"] and "running" in reasons["running"]
    assert "COMPLETE marker" in reasons["nomarker"]
    assert "failed" in reasons["failed"] and "boom" in reasons["failed"]
    assert "dataset identity" in reasons["othersha"] and "majority" in reasons["othersha"]
    assert "summary.json" in reasons["badjson"]
    assert "metrics.csv" in reasons["nometrics"]
    # Each exclusion is also a report message.
    assert sum("excluded" in str(n) for n in res.messages) == 6
    # Excluded runs contribute no evaluations.
    assert set(res.evals["run_dir"]) == set(good)


def test_checksum_without_majority_excludes_all(tmp_path):
    _run(tmp_path, "a", seed=0, dataset_sha256="a" * 64)
    _run(tmp_path, "b", seed=1, dataset_sha256="b" * 64)
    res = load_runs(str(tmp_path))
    assert res.runs.empty and len(res.excluded) == 2
    assert all("no majority" in r for r in res.excluded["reason"])


def test_duplicates_keep_one_and_report(tmp_path):
    _run(tmp_path, "a", seed=0, returns=[1.0] * 6)
    _run(tmp_path, "b", seed=0, returns=[2.0] * 8)   # more evaluations: kept
    res = load_runs(str(tmp_path))
    assert len(res.runs) == 1
    assert res.runs["run_dir"].iloc[0].endswith("b")
    assert len(res.excluded) == 1 and "duplicate" in res.excluded["reason"].iloc[0]


def test_runs_found_at_any_depth_and_by_glob(tmp_path):
    _run(tmp_path, os.path.join("x", "y", "z", "run"), seed=0)
    _run(tmp_path, os.path.join("w", "run"), seed=1)
    assert len(load_runs(str(tmp_path)).runs) == 2
    assert len(load_runs(os.path.join(str(tmp_path), "x", "**", "summary.json")).runs) == 1
    assert len(load_runs([os.path.join(str(tmp_path), "x"), os.path.join(str(tmp_path), "w")]).runs) == 2


def test_list_bins_and_empty_and_missing_input(tmp_path):
    _run(tmp_path, "a", bins=[3, 3, 3, 3, 3, 3])
    _run(tmp_path, "b", bins=[3, 5], seed=1, task="finger-spin")
    res = load_runs(str(tmp_path))
    assert sorted(res.runs["bins"]) == ["3", "3,5"]
    empty = tmp_path / "empty"
    empty.mkdir()
    res = load_runs(str(empty))
    assert res.empty and any("no run directories" in t for t in res.messages.texts())
    with pytest.raises(AnalysisError, match="no such file"):
        load_runs(str(tmp_path / "does-not-exist"))


def test_summary_written_like_the_runner(tmp_path):
    d = _run(tmp_path, "a", method="spin", pretrain_time_s=120.0, seed=3)
    with open(os.path.join(d, "summary.json")) as f:
        s = json.load(f)
    assert s["status"] == "complete" and s["pretrain_time_s"] == 120.0
    res = load_runs(str(tmp_path))
    assert res.runs["label"].iloc[0] == "SPIN"
    assert res.runs["pretrain_min"].iloc[0] == pytest.approx(2.0)
    # The first evaluation's clock already includes pre-training.
    assert res.evals["train_time_s"].iloc[0] >= 120.0


def test_two_cpus_of_one_name_are_two_machines(tmp_path):
    """summary.json's machine: 'AMD EPYC' with different family/model/stepping is two machines
    (their minutes differ ~2.4x in the SPIN study), so the report warns; without cpu_id (older
    runs) the name is all there is."""
    import json

    from spin_bench.train.provenance import machine

    def run(name, cpu_id):
        d = write_run_dir(str(tmp_path / name), seed=int(name[-1]), returns=[1, 2, 3])
        p = os.path.join(d, "summary.json")
        with open(p) as f:
            s = json.load(f)
        s["machine"] = {"cpu": "AMD EPYC", "logical_cores": 2, **({"cpu_id": cpu_id} if cpu_id else {})}
        with open(p, "w") as f:
            json.dump(s, f)

    run("a0", "cpu family 25, model 17, stepping 1")
    run("a1", "cpu family 23, model 49, stepping 0")
    res = load_runs(str(tmp_path))
    assert sorted(set(res.runs["machine"])) == ["AMD EPYC (cpu family 23, model 49, stepping 0)",
                                                 "AMD EPYC (cpu family 25, model 17, stepping 1)"]
    assert any("different machines" in str(w) for w in res.messages.warnings()), res.messages
    if os.path.isfile("/proc/cpuinfo"):
        assert machine()["cpu_id"].startswith("cpu family ")
