"""Run one experiment: python -m spin_bench.run --gin_file=gin/experiments/smoke/cheetah-run/medium-expert/spin_iql.gin

Flags: --gin_file (repeatable; a relative path missing from the working directory is read
from the suite's own gin tree), --gin_bindings (repeatable), --results_dir, --run_dir,
--device (auto/cpu/cuda), --seed, --resume, --prepare_only. The run directory,
<results_dir>/<task>-b<bins>/<level>/<method>_<algo>/<scale>/seed_<seed> unless --run_dir
names one, gets config.gin, operative_config.gin, run_identity.json, metrics.csv,
TensorBoard events, summary.json, checkpoint.pt and, when done, COMPLETE.
"""
from __future__ import annotations

import os
import signal
import sys

os.environ.setdefault("MUJOCO_GL", "egl")

from absl import app, flags  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_multi_string("gin_file", [], "gin config file(s), parsed in order; a relative path that is not "
                          "in the working directory is read from the suite's gin tree")
flags.DEFINE_multi_string("gin_bindings", [], "extra gin bindings, e.g. \"Schedule.num_steps=1000\"")
flags.DEFINE_string("results_dir", "runs", "parent directory of run directories")
flags.DEFINE_string("run_dir", None, "exact run directory (default: <results_dir>/<task>-b<bins>/<level>/<method>_<algo>/<scale>/seed_<seed>)")
flags.DEFINE_enum("device", "auto", ["auto", "cpu", "cuda"], "training device; auto picks CUDA when present")
flags.DEFINE_integer("seed", 0, "run seed (data order, initialisation, evaluation episodes)")
flags.DEFINE_bool("resume", False, "continue a killed run from its last checkpoint")
flags.DEFINE_bool("prepare_only", False, "only make the run's inputs (dataset, cached ASM pre-training) and exit")


def _on_sigterm(signum, frame):
    from spin_bench.train.experiment import RunInterrupted

    raise RunInterrupted(signal.Signals(signum).name)


def main(argv):
    if len(argv) > 1:
        print(f"spin_bench.run: error: unexpected arguments: {argv[1:]}", file=sys.stderr)
        return 2
    from spin_bench import configs
    from spin_bench.atomic import UnsafePathError
    from spin_bench.cli import check_seed, directory_problem
    from spin_bench.data.schema import DatasetError
    from spin_bench.rundir import default_run_dir
    from spin_bench.safe_load import UnreadableFileError, UnsafeFileError
    from spin_bench.train.experiment import (DataIdentityError, Experiment, RunDirError, check_inputs, prepare,
                                             resolve_device, run_experiment)
    from spin_bench.train.identity import RunMismatchError
    from spin_bench.train.trainer import Schedule

    # One validation pass before anything is written or computed: bindings, types, schedule,
    # device, directories, whether the cell's data can be obtained.
    try:
        if not FLAGS.gin_file:
            raise configs.ConfigError("--gin_file is required (e.g. gin/experiments/cpu/cheetah-run/medium-expert/spin_iql.gin)")
        configs.parse(FLAGS.gin_file, FLAGS.gin_bindings, finalize=False)
        device = resolve_device(FLAGS.device)
        exp, schedule = Experiment(), Schedule()  # validate required bindings now, before any work
        import gin
        gin.finalize()
        check_seed("--seed", FLAGS.seed)
        check_inputs(exp, schedule)
        if not FLAGS.prepare_only:
            problem = directory_problem(FLAGS.run_dir or FLAGS.results_dir,
                                        "--run_dir" if FLAGS.run_dir else "--results_dir")
            if problem:
                raise ValueError(problem)
    except (configs.ConfigError, ValueError, TypeError, RuntimeError) as e:
        print(f"spin_bench.run: error: {configs.error_line(e)}", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        if FLAGS.prepare_only:
            print(prepared_text(prepare(exp, schedule, FLAGS.seed, device)))
            return 0
        run_dir = FLAGS.run_dir or default_run_dir(FLAGS.results_dir, exp.task, exp.bins, exp.level, exp.method,
                                                   exp.algo, exp.scale, FLAGS.seed)
        summary = run_experiment(run_dir, FLAGS.seed, device, resume=FLAGS.resume, config=configs.config_str(),
                                 exp=exp, schedule=schedule)
    except KeyboardInterrupt as e:
        name = str(e) or "SIGINT"
        print(f"spin_bench.run: interrupted ({name}); continue with the same command and --resume", file=sys.stderr)
        return 128 + int(getattr(signal, name, signal.SIGINT))
    except (UnsafeFileError, UnreadableFileError, UnsafePathError, RunDirError, RunMismatchError,
            DatasetError, DataIdentityError) as e:  # bad input
        print(f"spin_bench.run: error: {configs.error_line(e)}", file=sys.stderr)
        return 2
    print(final_text(run_dir, summary))
    return 0


def final_text(run_dir: str, summary: dict) -> str:
    """The run's last line: final return (and normalised score, rounded) after its steps."""
    norm = summary.get("final_normalized_score")
    return (f"{run_dir}: final return {summary['final_return']:.1f}"
            + ("" if norm is None else f" (normalised {norm:.3f})") + f" after {summary['num_steps']} steps")


def prepared_text(prepared: dict) -> str:
    """What --prepare_only made, one line each: the dataset and its identity, SPIN's cached ASM."""
    lines = [f"dataset: {prepared['dataset_path']}",
             f"  sha256 {prepared['dataset_sha256']}, data identity {prepared['dataset_identity']}"]
    if "asm_pretrain_time_s" in prepared:
        lines.append(f"ASM pre-training: cached ({prepared['asm_pretrain_time_s'] / 60:.1f} min when it was made)")
    return "\n".join(lines)


def _parse_flags(argv):
    """absl's flag parsing with a one-line error and exit status 2 (absl exits 1)."""
    try:
        return FLAGS(argv)
    except flags.Error as e:
        sys.stderr.write(f"spin_bench.run: error: {e} (see --helpshort)\n")
        sys.exit(2)


def run():
    app.run(main, flags_parser=_parse_flags)


if __name__ == "__main__":
    run()
