"""python -m spin_bench.data {import,inspect,table,list,register} (see spin_bench.data.cli)."""
from spin_bench.data.cli import run

if __name__ == "__main__":
    run()
