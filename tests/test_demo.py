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


RESULTS = os.path.join(REPO, "results", "demo")


def _row(table: str, label: str) -> list:
    (line,) = [ln for ln in table.splitlines() if ln.startswith(f"| {label} ")]
    return [c.strip() for c in line.strip("|").split("|")]


def test_docs_quote_the_committed_demo_table_which_its_runs_reproduce(tmp_path):
    """docs/usage.md's demo figures are results/demo/demo_table.md's (written by `make demo`,
    copied with its runs' summaries), and `--table_only` rebuilds its rows from those summaries."""
    import re
    import shutil

    with open(os.path.join(RESULTS, "demo_table.md")) as f:
        table = f.read()
    copy = tmp_path / "demo"
    shutil.copytree(RESULTS, copy)
    proc = subprocess.run([sys.executable, "-m", "spin_bench.demo", "--table_only", f"--results_dir={copy}"],
                          capture_output=True, text=True, cwd=REPO, timeout=120)
    assert proc.returncode == 0, proc.stderr
    rows = lambda text: [ln for ln in text.splitlines() if ln.startswith("|")]  # noqa: E731
    assert rows(proc.stdout) == rows(table) and len(rows(table)) == 4

    with open(os.path.join(REPO, "docs", "usage.md")) as f:
        usage = f.read()
    demo = " ".join(usage[usage.index("## The demo"):usage.index("## One run")].split())
    spin, f_iql = _row(table, "SPIN"), _row(table, "F-IQL")
    # final return, training minutes (ASM included) and ASM minutes, as the table has them
    assert f"SPIN {spin[1]}, F-IQL {f_iql[1]} final return" in demo
    assert f"SPIN {spin[4]} training minutes ({spin[5]} of them ASM), F-IQL {f_iql[4]}" in demo
    total, prepare = re.search(r"wall-clock: (\d+) s end to end, (\d+) s of it preparing", table).groups()
    assert f"{int(total) // 60} minutes {int(total) % 60} seconds end to end, {prepare} s of it" in demo


def test_relay_shows_childrens_lines_live_and_thins_progress_bars():
    import io

    from spin_bench.demo import relay

    raw = b"dataset ready\nasm 10%\rasm 20%\rasm 30%\nstep 1000  evaluation: return 5.0\nno newline"
    log, out = io.BytesIO(), io.StringIO()
    relay(io.BytesIO(raw), "[SPIN]", log, out=out, bar_every_s=3600)
    assert log.getvalue() == raw  # the log keeps everything as it came
    assert out.getvalue().splitlines() == ["[SPIN] dataset ready", "[SPIN] asm 10%", "[SPIN] asm 30%",
                                           "[SPIN] step 1000  evaluation: return 5.0", "[SPIN] no newline"]
