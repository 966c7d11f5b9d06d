"""The datagen command line as a newcomer meets it: help for every flag, a progress bar that ends
at the dataset's size with a percentage, and reference returns that record their episode count."""
import csv
import re

import pytest

from spin_bench.datagen import cli
from spin_bench.datagen.generate import CappedProgress, generate_dataset, write_reference


@pytest.mark.parametrize("command", ["train", "export", "generate", "references"])
def test_every_flag_has_help_text(command, capsys):
    with pytest.raises(SystemExit) as e:
        cli.main([command, "--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    options = out[out.index("options:"):]
    # each flag's line, joined with its wrapped continuation lines
    entries = re.split(r"\n  (?=-)", options)[1:]
    assert entries, out
    for entry in entries:
        flag = entry.split()[0].rstrip(",")
        words = re.sub(r"^-\S+( [A-Z_]+)?(, -\S+( [A-Z_]+)?)*", "", entry.strip()).split()
        assert words, f"datagen {command}: {flag} has no help text"


class _Bar:
    def __init__(self):
        self.n = 0

    def update(self, n=1):
        self.n += n


def test_capped_progress_counts_what_is_kept():
    bar = _Bar()
    capped = CappedProgress(bar, 2500)
    for _ in range(3):
        capped.update(1000)  # three whole episodes for 2500 transitions
    assert bar.n == 2500


def test_generate_progress_ends_at_the_dataset_size_with_a_percentage(tmp_path, capsys):
    # 1,500 transitions from 1,000-step episodes: two episodes are rolled, 1,500 kept
    generate_dataset("finger-spin", "medium", num_transitions=1500, out=str(tmp_path / "d.hdf5"),
                     num_workers=1, num_envs=2, progress=True)
    err = capsys.readouterr().err
    last = err.replace("\r", "\n").strip().splitlines()[-1]
    assert "100%" in last and "1500/1500" in last, last
    assert "2000" not in err


def test_references_record_the_episodes_they_average(tmp_path):
    path = str(tmp_path / "reference_scores.csv")
    write_reference("cheetah-run", 3, 500.0, 5.0, path=path, episodes=7)
    write_reference("finger-spin", 3, 600.0, 4.0, path=path)
    with open(path) as f:
        header = f.readline()
        rows = {r["task"]: r for r in csv.DictReader(f)}
    assert "50 episodes" not in header and "`episodes`" in header
    assert rows["cheetah-run"]["episodes"] == "7" and rows["finger-spin"]["episodes"] == "50"
