"""Benchmarking: how fast the suite is, never part of a training run.

    measure  one benchmark configuration in this process (training steps/s, FLOPs, memory,
             ASM pre-training, batched vs one-at-a-time evaluation) and combining its rounds
    render   result lines, markdown tables, reading ``--json`` output back
    oracle   the straightforward IQL step and one-episode-at-a-time evaluation, the
             computations the fast ones are checked and timed against
    micro    micro-benchmarks of the model layer (``python -m spin_bench.perf.micro``)

The command line is ``python -m spin_bench.bench``. This package sits above training
(models -> algos -> train -> perf) and nothing below imports it.
"""
