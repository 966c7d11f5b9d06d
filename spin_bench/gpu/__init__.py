"""The one-command CUDA check: python -m spin_bench.gpu [--out=DIR] [--dry_run] [--parts=...]

Made for a bare GPU image with a short time window (docs/gpu.md): torch, numpy, h5py,
absl-py, tqdm, tensorboard and pytest installed; gin-config carried as a wheel in
``gpu_kit/wheels`` (``make gpu-kit``) and put on ``sys.path`` here; no simulator. The kit never
imports gymnasium, dm_control or mujoco (it blocks them, also where they are installed, so the
dry run in CI proves it), so nothing it exercises needs one: the training run's actor snapshots
are evaluated afterwards on a machine with the simulator (``--evaluate``).

Parts (``--parts``, all by default), each writing into ``--out`` as soon as it is done:

- ``tests``: the model and algorithm tests that need no simulator (CPU, under the image's torch)
  and ``tests/test_cuda.py`` on the device: device boundaries, one IQL step per actor against
  the CPU's, the captured graph against eager steps.
- ``equality``: one IQL step of every actor (F, AR, SAINT, SPIN) at the paper's sizes on the
  device against the CPU (same weights and batch, dropout off, TF32 off): loss differences and
  relative gradient errors; and N steps replayed from a CUDA graph against N eager steps.
- ``bench``: the paper-scale bench (``spin_bench.perf.measure``, in this process) for every
  method x IQL on cheetah-run, quadruped-walk, humanoid-stand and dog-trot, eager against
  graph (and bf16/TF32 on one task): steps/s, ms/step, FLOPs and ATen calls per step, peak
  memory; and ASM pre-training steps/s per task.
- ``precision``: the losses of fp32, TF32 and bf16 steps from the same weights and batches.
- ``train``: a short real training of one paper-scale cell (SPIN-IQL on cheetah-run by
  default; ASM pre-training included) on the carried HDF5 dataset, through the suite's
  trainer with the graph step, checkpointing as a run does; actor snapshots at every
  evaluation point go to ``snapshots.pt``.

Files written to ``--out`` (at most 8): ``gpu_check.json`` (everything, rewritten after each
part), ``bench.jsonl`` (``python -m spin_bench.bench --render`` reads it), ``pytest.txt``,
``train_metrics.csv``, ``snapshots.pt``, ``log.txt``; ``--evaluate`` adds ``evaluation.json``.

``--dry_run``: the same code paths on the CPU at toy sizes (a synthetic HDF5 dataset, a few
steps, the static-buffer step in place of the graph) in well under a minute; CI runs it.

Modules: :mod:`.kit` (the bare image: sys.path, the blocked simulator, the results file and
log, the environment record), :mod:`.checks` (the tests, equality, bench and precision parts),
:mod:`.training` (the training part, its snapshots and ``--evaluate``), ``__main__`` (the
command line). Like the command-line faces it may import every layer but analysis; at module
level only the standard library and the vocabulary, so ``--help`` and the refusals need no
torch or gin.
"""
