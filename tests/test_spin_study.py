"""What the SPIN study rests on: ASM pre-training as a recorded stage of a run (curve in
asm_pretrain.csv and TensorBoard, also from the cache; the structure probe in summary.json),
and configuration variants as rows of their own in the report."""
import csv
import json
import os

import gin
import pytest
import torch

from spin_bench import configs
from spin_bench.analysis.loading import load_runs
from spin_bench.analysis.synthetic import write_run_dir
from spin_bench.analysis.variants import binding_label, variant_labels
from spin_bench.train.experiment import run_experiment

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SMOKE_SPIN = os.path.join(REPO, "gin", "experiments", "smoke", "finger-spin", "medium-expert", "spin_iql.gin")


@pytest.fixture(scope="module")
def datasets(tmp_path_factory):
    """One dataset store for the module's real runs: the smoke finger-spin medium-expert data is
    generated (from the shipped policies) by the first run that needs it and found there by the
    others. Each test keeps its own ASM cache, so what it says about the cache is its own."""
    return tmp_path_factory.mktemp("spin_study_store") / "datasets"


def _run_spin(run_dir, store, datasets, seed=0, extra=()):
    configs.parse([SMOKE_SPIN], [f"Experiment.data_dir = '{datasets}'",
                                 f"Experiment.asm_cache_dir = '{store / 'asm'}'", *extra])
    try:
        return run_experiment(str(run_dir), seed, torch.device("cpu"), config=configs.config_str())
    finally:
        gin.clear_config()


def _curve(run_dir):
    with open(os.path.join(run_dir, "asm_pretrain.csv")) as f:
        return list(csv.DictReader(f))


def test_asm_stage_is_recorded_also_from_the_cache(tmp_path, capsys, datasets):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    first = _run_spin(tmp_path / "a", tmp_path / "store", datasets)
    err = capsys.readouterr().err
    assert "ASM pre-training:" in err and "masked acc" in err and "structure" in err
    rows = _curve(tmp_path / "a")
    assert rows and list(rows[0]) == ["step", "mam_loss", "masked_accuracy", "wall_s", "steps_per_s"]
    assert int(rows[-1]["step"]) == first["asm"]["steps"]
    asm = first["asm"]
    assert asm["from_cache"] is False
    for k in ("nll_state", "nll_loo", "structure"):
        assert len(asm[k]) == 2, k  # finger-spin: 2 slots
    assert asm["mean_structure"] == pytest.approx(asm["mean_nll_state"] - asm["mean_nll_loo"], abs=1e-6)
    acc = EventAccumulator(str(tmp_path / "a"))
    acc.Reload()
    assert {"asm/mam_loss", "asm/masked_accuracy", "asm/steps_per_s"} <= set(acc.Tags()["scalars"])

    second = _run_spin(tmp_path / "b", tmp_path / "store", datasets)  # same data, config and seed: the cache
    assert "loaded from the cache" in capsys.readouterr().err
    assert second["asm"]["from_cache"] is True
    assert _curve(tmp_path / "b") == rows
    assert second["asm"]["structure"] == pytest.approx(asm["structure"])
    assert second["pretrain_time_s"] == pytest.approx(first["pretrain_time_s"])
    assert second["machine"]["cpu"] and second["machine"]["logical_cores"] >= 1
    # another policy seed with Experiment.asm_seed = 0 shares seed 0's ASM; without it, its own
    third = _run_spin(tmp_path / "c", tmp_path / "store", datasets, seed=1, extra=["Experiment.asm_seed = 0"])
    assert third["asm"]["from_cache"] is True and third["asm"]["seed"] == 0
    assert third["asm"]["structure"] == pytest.approx(asm["structure"])
    fourth = _run_spin(tmp_path / "d", tmp_path / "store", datasets, seed=1)
    assert fourth["asm"]["from_cache"] is False and fourth["asm"]["seed"] == 1


def _config(epochs=10, freeze=None, beta=3.0):
    lines = ["Experiment.task = 'cheetah-run'", "Experiment.method = 'spin'", f"IQL.beta = {beta}",
             "Experiment.data_dir = '/somewhere'", f"pretrain_asm.epochs = {epochs}"]
    if freeze is not None:
        lines.append(f"make_spin_actor.freeze = {freeze}")
    return "\n".join(lines) + "\n"


def _write(root, name, method, seed, returns, config):
    d = write_run_dir(str(root / name), method=method, seed=seed, returns=returns)
    with open(os.path.join(d, "config.gin"), "w") as f:
        f.write(config)
    return d


def test_variants_are_rows_of_their_own_and_duplicates_still_go(tmp_path):
    for seed in (0, 1):
        _write(tmp_path, f"f{seed}", "f", seed, [100, 110, 120], _config())
        _write(tmp_path, f"spin{seed}", "spin", seed, [50, 60, 70], _config())
        _write(tmp_path, f"spin_e100_{seed}", "spin", seed, [80, 90, 100], _config(epochs=100))
        _write(tmp_path, f"spin_ft{seed}", "spin", seed, [60, 70, 80], _config(freeze="()"))
    # a true duplicate: the same configuration (a location aside) and seed
    _write(tmp_path, "spin0_again", "spin", 0, [1, 2], _config().replace("/somewhere", "/elsewhere"))
    res = load_runs(str(tmp_path))
    labels = sorted(set(res.runs["label"]))
    assert labels == ["F-IQL", "SPIN", "SPIN [ASM 100 ep]", "SPIN [fine-tuned]"]
    assert (res.runs.groupby("label").size() == 2).all()
    assert len(res.excluded) == 1 and "duplicate" in res.excluded["reason"].iloc[0]
    assert res.excluded["run_dir"].iloc[0].endswith("spin0_again")
    e100 = res.runs[res.runs.label == "SPIN [ASM 100 ep]"]
    assert sorted(e100["final_return"]) == [90.0, 90.0]  # mean of the last 5 (all 3) evaluations
    assert set(res.evals.loc[res.evals.run_dir.isin(e100.run_dir), "label"]) == {"SPIN [ASM 100 ep]"}
    notes = [m for m in res.messages if "variants" in str(m)]
    assert any("pretrain_asm.epochs = 100" in str(m) for m in notes), notes


def test_report_shows_variant_rows(tmp_path):
    from spin_bench.report import main

    for seed in (0, 1, 2):
        _write(tmp_path / "runs", f"f{seed}", "f", seed, [100, 110, 120], _config())
        _write(tmp_path / "runs", f"spin{seed}", "spin", seed, [50, 60, 70], _config())
        _write(tmp_path / "runs", f"b{seed}", "spin", seed, [70, 80, 90], _config(beta=10.0))
    # the rows only (no figure, no CI digit is checked): tables only, fewer bootstrap replicates
    assert main(["--results_dir", str(tmp_path / "runs"), "--out", str(tmp_path / "rep"), "--quiet",
                 "--no_figures", "--reps=200"]) == 0
    board = open(tmp_path / "rep" / "leaderboard.md").read()
    assert "SPIN [IQL.beta=10.0]" in board and "| SPIN |" in board.replace("**", "")


def test_variant_default_is_the_cells_common_value():
    cell = ("cpu", "iql", "t", "3", "l")
    rows = [(cell, "f", {"pretrain_asm.epochs": "10"}), (cell, "saint", {"pretrain_asm.epochs": "10"}),
            (cell, "spin", {"pretrain_asm.epochs": "10"}), (cell, "spin", {"pretrain_asm.epochs": "100"}),
            (cell, "spin", {"pretrain_asm.epochs": "100", "make_spin_actor.freeze": "()"})]
    labels, legends = variant_labels(rows)
    assert labels == ["", "", "", "ASM 100 ep", "ASM 100 ep, fine-tuned"]
    assert set(legends[(cell, "spin")]) == {"", "ASM 100 ep", "ASM 100 ep, fine-tuned"}
    # one configuration per method: no variants at all, whatever differs between methods
    assert variant_labels([(cell, "f", {"a": "1"}), (cell, "spin", {"a": "2"})])[0] == ["", ""]
    assert binding_label("D_MODEL", "128") == "d_model 128"
    assert binding_label("X.y", "<unbound>") == "X.y unbound"


def test_committed_study_sweep_parses_and_plans_the_variants():
    from spin_bench.sweeps.spec import load_sweep

    sweep = load_sweep([os.path.join(REPO, "gin", "sweeps", "spin_study.gin")])
    assert [v for v, _ in sweep.variants] == ["e30", "e100", "ft_e10", "ft_e100"]
    assert sweep.methods == ("spin",) and sweep.seeds == (0, 1, 2)
    assert json.dumps(sweep.to_dict())


def test_report_has_the_pre_training_budget_section_and_figures(tmp_path):
    from spin_bench.report import main

    root = tmp_path / "runs"
    for seed in (0, 1, 2):
        _write(root, f"f{seed}", "f", seed, [100, 110, 120 + seed], _config())
        _write(root, f"saint{seed}", "saint", seed, [90, 100, 105 + seed], _config())
        for epochs, freeze, final in ((10, None, 60), (30, None, 80), (100, None, 95), (10, "()", 70)):
            d = _write(root, f"spin{epochs}{freeze}{seed}", "spin", seed, [final - 20, final - 10, final + seed],
                       _config(epochs=epochs, freeze=freeze))
            path = os.path.join(d, "summary.json")
            doc = json.load(open(path))
            doc["asm"] = {"masked_accuracy": 0.6 + epochs / 1000, "exact_match": 0.03, "mean_structure": 0.05}
            json.dump(doc, open(path, "w"))
    # figures on (checked below); the numbers checked are means, not bootstrap CIs: fewer replicates
    assert main(["--results_dir", str(root), "--out", str(tmp_path / "rep"), "--quiet", "--reps=200"]) == 0
    board = open(tmp_path / "rep" / "leaderboard.md").read()
    assert "## SPIN's pre-training budget" in board
    assert "SPIN [ASM 100 ep]" in board and "SPIN [fine-tuned]" in board
    import pandas as pd

    budget = pd.read_csv(tmp_path / "rep" / "spin_budget.csv")
    assert sorted(zip(budget["asm_epochs"], budget["fine_tuned"])) == [(10, False), (10, True), (30, False),
                                                                       (100, False)]
    e100 = budget[(budget.asm_epochs == 100)].iloc[0]
    assert e100["mean"] == pytest.approx(95 - 10 + 1 / 3)  # final = the mean of all 3 evaluations and e100["masked_accuracy"] == pytest.approx(0.7)
    for name in ("spin_budget.png", "spin_budget.pdf", "asm_probe.png"):
        assert os.path.getsize(tmp_path / "rep" / name) > 1000, name
    import shutil

    if shutil.which("pdflatex"):  # the section's LaTeX compiles (make test installs pdflatex)
        from test_report_paper_ready import compile_tex

        compile_tex(str(tmp_path / "rep" / "leaderboard.tex"), tmp_path)
    # without a budget axis (the CPU tier's own runs) the section is not there
    assert "pre-training budget" not in open(os.path.join(REPO, "results", "cpu_tier", "report", "leaderboard.md")).read()


def test_a_run_on_other_data_than_expected_is_refused_before_training(tmp_path, datasets):
    """Experiment.expected_identities: a study keyed on committed runs' data trains nothing on
    other data (exit 2, no run directory), and runs as usual on the data it names."""
    import subprocess
    import sys

    store = tmp_path / "store"
    base = [f"--gin_file={SMOKE_SPIN}", f"--gin_bindings=Experiment.data_dir = '{datasets}'",
            f"--gin_bindings=Experiment.asm_cache_dir = '{store / 'asm'}'"]
    from spin_bench.datagen.resolve import DataRequest

    ds = DataRequest("finger-spin", "medium-expert").dataset_id  # the newest version's, what the run takes
    bad = subprocess.run([sys.executable, "-m", "spin_bench.run", *base, f"--run_dir={tmp_path / 'bad'}",
                          f"--gin_bindings=Experiment.expected_identities = {{'{ds}': 'deadbeef'}}"],
                         capture_output=True, text=True, timeout=600)
    assert bad.returncode == 2, bad.stderr[-2000:]
    err = [line for line in bad.stderr.splitlines() if "error:" in line]
    assert len(err) == 1 and "deadbeef" in err[0] and "nothing was trained" in err[0]
    assert not (tmp_path / "bad").exists()
    from spin_bench.data import load_dataset
    from spin_bench.datagen.generate import generated_store

    identity = load_dataset(generated_store(str(datasets), 4000, 0, "medium-expert").find(ds)).identity
    good = subprocess.run([sys.executable, "-m", "spin_bench.run", *base, f"--run_dir={tmp_path / 'good'}",
                           f"--gin_bindings=Experiment.expected_identities = {{'{ds}': '{identity[:8]}'}}"],
                          capture_output=True, text=True, timeout=600)
    assert good.returncode == 0, good.stderr[-2000:]


def test_expected_data_of_an_older_version_is_refused_before_any_data_is_made(tmp_path):
    """A study keyed on version-1 data, after its task shipped version 2: the run, taking the
    newest, is refused before generating anything, naming the binding that runs it on v1."""
    import subprocess
    import sys

    from spin_bench.datagen.paths import newest_policy_version

    newest = newest_policy_version("finger-spin")
    if newest is None or newest < 2:
        pytest.skip("finger-spin ships one version only")
    store = tmp_path / "store"
    v1 = "finger-spin-medium-expert-b3-v1"
    bad = subprocess.run([sys.executable, "-m", "spin_bench.run", f"--gin_file={SMOKE_SPIN}",
                          f"--gin_bindings=Experiment.data_dir = '{store}'", f"--run_dir={tmp_path / 'run'}",
                          f"--gin_bindings=Experiment.expected_identities = {{'{v1}': 'deadbeef'}}"],
                         capture_output=True, text=True, timeout=600)
    assert bad.returncode == 2, bad.stderr[-2000:]
    err = [line for line in bad.stderr.splitlines() if "error:" in line]
    assert len(err) == 1 and v1 in err[0] and f"-v{newest}" in err[0], err
    assert "Experiment.data_version = 1" in err[0]
    assert not (tmp_path / "run").exists() and not store.exists()


STUDY_REPORT = os.path.join(REPO, "results", "spin_study", "report")


@pytest.mark.skipif(not os.path.isfile(os.path.join(STUDY_REPORT, "scores.csv")), reason="no study report yet")
def test_committed_study_report_reproduces_from_its_runs(tmp_path):
    """The study's report over the runs it lists (the study's and the tier's of the same cells)
    gives the committed tables byte for byte, and every archived study run is in it."""
    import subprocess
    import sys

    import pandas as pd

    listed = sorted(set(pd.read_csv(os.path.join(STUDY_REPORT, "scores.csv"))["run_dir"]))
    runs_root = os.path.join("results", "spin_study", "runs")
    archived = sorted(os.path.join(runs_root, n) for n in os.listdir(os.path.join(REPO, runs_root)))
    assert set(archived) <= set(listed), "study runs archived after the report: regenerate it (README command)"
    args = [f"--results_dir={d}" for d in listed]
    proc = subprocess.run([sys.executable, "-m", "spin_bench.report", *args, f"--out={tmp_path}", "--quiet"],
                          capture_output=True, text=True, cwd=REPO, env=dict(os.environ, PYTHONPATH=REPO), timeout=900)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert sorted(os.listdir(STUDY_REPORT)) == sorted(os.listdir(tmp_path))
    for name in ("leaderboard.md", "leaderboard.tex", "scores.csv", "spin_budget.csv"):
        with open(os.path.join(STUDY_REPORT, name), "rb") as a, open(tmp_path / name, "rb") as b:
            assert a.read() == b.read(), f"{name} differs from the committed results/spin_study/report/{name}"


def test_minutes_from_different_machines_are_flagged(tmp_path):
    for seed, cpu in ((0, None), (1, "AMD EPYC")):
        d = _write(tmp_path, f"f{seed}", "f", seed, [100, 110, 120], _config())
        if cpu:
            path = os.path.join(d, "summary.json")
            doc = json.load(open(path))
            doc["machine"] = {"cpu": cpu, "logical_cores": 2}
            json.dump(doc, open(path, "w"))
    res = load_runs(str(tmp_path))
    warned = [n.text for n in res.messages.warnings() if n.topic == "machines"]
    assert len(warned) == 1 and "(not recorded, AMD EPYC)" in warned[0] and "not comparable" in warned[0]
    assert sorted(res.runs["machine"]) == ["", "AMD EPYC"]


def test_figure_legend_has_every_panels_labels():
    """A variant missing from the first cell (cheetah-run before its fine-tuned runs exist) still
    has its legend entry: the legend is the union over panels, each label once."""
    from matplotlib.figure import Figure

    from spin_bench.analysis.study_report import _figure_legend

    fig = Figure()
    axes = fig.subplots(1, 2, squeeze=False)
    axes[0][0].plot([1, 2], [1, 2], label="SPIN, frozen ASM")
    axes[0][1].plot([1, 2], [1, 2], label="SPIN, frozen ASM")
    axes[0][1].plot([1, 2], [2, 3], label="SPIN, fine-tuned")
    _figure_legend(fig, axes, ncol=4)
    assert [t.get_text() for t in fig.legends[0].get_texts()] == ["SPIN, frozen ASM", "SPIN, fine-tuned"]
