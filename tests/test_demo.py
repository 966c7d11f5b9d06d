"""`make demo` end to end, shrunk to seconds: dataset from the shipped policies, SPIN and F-IQL
side by side, the comparison table."""
import os
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_demo_trains_both_methods_and_prints_the_table(tmp_path):
    shrink = ["Experiment.num_transitions = 2000", f"Experiment.data_dir = '{tmp_path / 'data'}'",
              f"Experiment.asm_cache_dir = '{tmp_path / 'asm'}'", "Schedule.num_steps = 20",
              "Schedule.eval_every = 10", "Schedule.eval_episodes = 1", "Schedule.eval_max_steps = 20",
              "Schedule.log_every = 10", "pretrain_asm.epochs = 2", "D_MODEL = 16", "TransformerActor.head_hidden = 16",
              "ActionStructureModel.head_hidden = 16"]
    proc = subprocess.run([sys.executable, "-m", "spin_bench.demo", f"--results_dir={tmp_path / 'demo'}",
                           *[f"--gin_bindings={b}" for b in shrink]],
                          capture_output=True, text=True, cwd=REPO, timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    rows = [l for l in proc.stdout.splitlines() if l.startswith("| SPIN") or l.startswith("| F-IQL")]
    assert len(rows) == 2, proc.stdout
    for method in ("spin", "f"):
        assert (tmp_path / "demo" / method / "summary.json").is_file()
