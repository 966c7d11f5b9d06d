"""A task of your own: DM Control's walker-walk (6 sub-actions), in the cpu tier.

A task declares its name and tier; its dimensions come from the environment. A cpu-tier
task joins the cpu and smoke grids of your sweeps (never the paper's)."""
import os

from spin_bench.vocab import register_task

HERE = os.path.dirname(os.path.abspath(__file__))
register_task("walker-walk", "cpu", gin_file=os.path.join(HERE, "walker-walk.gin"))
