"""Results analysis: load run directories, rliable aggregates, time to target, tables, plots.

    from spin_bench.analysis import load_runs, per_cell_table, aggregate, time_to_target, write_report

    res = load_runs("results/sweep")              # .evals, .runs, .excluded, .messages
    table = per_cell_table(res)                   # final return per cell x method (+ paper)
    agg = aggregate(res, reps=2000, seed=0)       # rliable IQM/mean/median/optimality gap, ...
    ttt = time_to_target(res, target_fraction=0.95, smoothing_window=1)
    write_report(res, "results/report", seed=0)   # leaderboard.md/.tex, scores.csv, figures

Definitions: docs/report.md (and the docstrings of ``ttt`` and ``stats``).
"""
from spin_bench.analysis.labels import method_color, method_colors, order_methods
from spin_bench.analysis.loading import LoadResult, find_run_dirs, load_runs
from spin_bench.analysis.notes import AnalysisError, Note, Notes
from spin_bench.analysis.reference import (paper_returns, paper_time_to_target,
                                           published_reference_scores)
from spin_bench.analysis.stats import (AGGREGATE_METRICS, AggregateResult, GroupAggregate,
                                       aggregate, aggregate_func, bootstrap_ci,
                                       probability_of_improvement_fast, score_matrices)
from spin_bench.analysis.tables import CellTable, per_cell_table
from spin_bench.analysis.ttt import (TimeToTargetResult, run_time_to_target, smooth_trailing,
                                     time_to_target)
from spin_bench.analysis.writer import Report, write_report
from spin_bench.rundir import final_score
from spin_bench.vocab import method_label, methods

__all__ = [
    "AGGREGATE_METRICS", "AggregateResult", "AnalysisError", "CellTable", "GroupAggregate",
    "LoadResult", "Note", "Notes", "Report",
    "TimeToTargetResult", "aggregate", "aggregate_func", "bootstrap_ci", "final_score",
    "find_run_dirs", "load_runs", "method_color", "method_colors", "method_label", "methods", "order_methods",
    "paper_returns", "paper_time_to_target", "per_cell_table",
    "probability_of_improvement_fast", "published_reference_scores", "run_time_to_target",
    "score_matrices", "smooth_trailing", "time_to_target", "write_report",
]
