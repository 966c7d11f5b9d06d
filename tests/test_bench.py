"""The speed benchmark: its FLOP count (LSTM included) and one real configuration end to end."""
import json
import os
import subprocess
import sys

import pytest
import torch

from spin_bench.perf.measure import count_flops as _flops

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_flop_count_includes_the_fused_lstm():
    torch.manual_seed(0)
    lstm = torch.nn.LSTM(20, 16, 2, batch_first=True)
    x = torch.randn(8, 5, 20)

    def fwd_bwd():
        out, _ = lstm(x)
        out.sum().backward()
    # gate matmuls 4h x (in + h) per token per layer, forward 2 FLOPs per MAC, backward twice that
    macs_per_token = 4 * 16 * (20 + 16) + 4 * 16 * (16 + 16)
    expected = 3 * 2 * 8 * 5 * macs_per_token
    with torch.backends.mkldnn.flags(enabled=True):
        fused = _flops(fwd_bwd)
    assert fused == expected


def test_op_count_counts_every_aten_call():
    from spin_bench.perf.measure import count_ops
    x = torch.randn(4, 3)
    w = torch.randn(3, 2)
    assert count_ops(lambda: (x @ w).relu().sum()) == 3


def test_bench_runs_one_configuration_and_prints_json(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "spin_bench.bench", "--tasks=cheetah-run", "--methods=f", "--scales=smoke",
         "--parts=train,reference,asm", "--steps=3", "--warmup=1", "--repeats=1", "--rounds=2", "--json"],
        capture_output=True, text=True, cwd=REPO, timeout=300)
    assert proc.returncode == 0, proc.stderr
    rows = [json.loads(l) for l in proc.stdout.splitlines() if l.startswith("{")]
    assert [r["kind"] for r in rows] == ["train", "reference", "asm"]
    row, ref, asm = rows
    assert ref["method"] == "f" and ref["algo"] == "iql" and ref["steps_per_s"] > 0
    # one timing per round here, so each round's own speed-up is fast / straightforward of that
    # round, and the row's is their median (the upper one of two)
    per_round = [f / t for f, t in zip(ref["samples"]["fast"], ref["samples"]["straightforward"])]
    assert ref["speedup"] == pytest.approx(max(per_round))
    assert len(ref["samples"]["fast"]) == len(ref["samples"]["straightforward"]) == 2
    assert all(r["rounds"] == 2 for r in rows)  # each configuration ran in two processes, round-robin
    assert asm["method"] == "asm" and asm["steps_per_s"] > 0 and len(asm["steps_per_s_samples"]) == 2
    assert asm["flops_per_step"] > 0 and asm["efficiency"] == pytest.approx(asm["gflops_per_s"] / asm["peak_gflops"])
    for key in ("method", "algo", "scale", "task", "d_model", "batch_size", "steps_per_s", "gflops_per_s",
                "peak_gflops", "efficiency", "peak_memory_mb", "layer_gflops", "ops_per_step"):
        assert key in row, key
    assert row["method"] == "f" and row["scale"] == "smoke" and row["batch_size"] == 32
    assert len(row["steps_per_s_samples"]) == 2 and row["steps_per_s"] > 0
    assert row["flops_per_step"] > 0 and 0 < row["efficiency"]
    assert row["gflops_per_s"] == pytest.approx(row["flops_per_step"] * row["steps_per_s"] / 1e9)
    out = tmp_path / "bench.jsonl"
    out.write_text(proc.stdout)
    table = subprocess.run([sys.executable, "-m", "spin_bench.bench", f"--render={out}"], capture_output=True,
                           text=True, cwd=REPO, timeout=120)
    assert table.returncode == 0, table.stderr
    lines = table.stdout.strip().splitlines()
    assert lines[0].startswith("| scale | task | method |") and len(lines) == 8
    assert lines[3].startswith("| smoke | cheetah-run | ASM (MAM) | 32 | ")
    assert lines[2].startswith("| smoke | cheetah-run | F-IQL | - | 32 | ")
    assert f"{row['steps_per_s']:.2f}" in lines[2]
    assert lines[5].startswith("| scale | task | method | d_model | fast steps/s | straightforward steps/s |")
    assert lines[7] == (f"| smoke | cheetah-run | F-IQL | - | {ref['fast_steps_per_s']:.2f} | "
                        f"{ref['steps_per_s']:.2f} | {ref['speedup']:.2f}x |")
    bad = subprocess.run([sys.executable, "-m", "spin_bench.bench", f"--render={tmp_path / 'missing.jsonl'}"],
                         capture_output=True, text=True, cwd=REPO, timeout=120)
    assert bad.returncode == 2 and "missing.jsonl" in bad.stderr


def test_combine_rounds_takes_medians_and_keeps_round_zero_counts():
    from spin_bench.perf.measure import combine_rounds
    base = {"kind": "train", "flops_per_step": 2e9, "ops_per_step": 100, "peak_memory_mb": 10}
    rounds = [dict(base, steps_per_s_samples=[10.0, 11.0], peak_gflops=80.0),
              dict(base, flops_per_step=None, ops_per_step=None, steps_per_s_samples=[30.0], peak_gflops=90.0,
                   peak_memory_mb=12),
              dict(base, flops_per_step=None, ops_per_step=None, steps_per_s_samples=[12.0], peak_gflops=60.0)]
    out = combine_rounds(rounds)
    assert out["rounds"] == 3 and out["steps_per_s_samples"] == [10.0, 11.0, 12.0, 30.0]
    assert out["steps_per_s"] == 12.0 and out["peak_gflops"] == 80.0  # upper median of an even count
    assert out["flops_per_step"] == 2e9 and out["ops_per_step"] == 100 and out["peak_memory_mb"] == 12
    assert out["gflops_per_s"] == pytest.approx(24.0) and out["efficiency"] == pytest.approx(0.3)
    ref = combine_rounds([{"kind": "reference", "peak_gflops": 1.0, "speedup": s,
                           "samples": {"fast": [f], "straightforward": [1.0]}}
                          for s, f in ((1.1, 2.0), (1.5, 3.0), (1.2, 4.0))])
    assert ref["speedup"] == 1.2 and ref["fast_steps_per_s"] == 3.0 and ref["steps_per_s"] == 1.0
