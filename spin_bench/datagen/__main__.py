"""python -m spin_bench.datagen {train,export,generate,references} (see spin_bench.datagen.cli)."""
import sys

from spin_bench.datagen.cli import main

if __name__ == "__main__":
    sys.exit(main())
