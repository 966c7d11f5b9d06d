"""python -m spin_bench.sweeps.launch [--parent=PID] [--lock=PATH] -- RUN_ARGS

The sweep's worker command: becomes (exec) ``python -m spin_bench.run RUN_ARGS`` after
  * asking Linux to SIGKILL it when the worker that started it dies (PR_SET_PDEATHSIG), so a
    killed sweep leaves no orphan run writing into a directory the next launch resumes;
  * taking an exclusive lock on PATH (held through the exec until the run exits), so two
    processes never write one run directory; exit status 75 if another process holds it.
Deliberately light: no torch import before the exec.
"""
from __future__ import annotations

import os
import signal
import sys

BUSY = 75  # EX_TEMPFAIL: another process holds the run's lock


def _pdeathsig(parent: int) -> None:
    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGKILL))  # PR_SET_PDEATHSIG
    except Exception:  # noqa: BLE001 - best effort
        return
    if parent and os.getppid() != parent:  # the parent died before prctl took effect
        os._exit(1)


def main(argv) -> int:
    if "--" not in argv:
        sys.stderr.write("usage: python -m spin_bench.sweeps.launch [--parent=PID] [--lock=PATH] -- RUN_ARGS\n")
        return 2
    i = argv.index("--")
    opts, args = argv[:i], argv[i + 1:]
    parent, lock = 0, None
    for o in opts:
        if o.startswith("--parent="):
            parent = int(o.split("=", 1)[1])
        elif o.startswith("--lock="):
            lock = o.split("=", 1)[1]
        else:
            sys.stderr.write(f"spin_bench.sweeps.launch: unknown option {o}\n")
            return 2
    _pdeathsig(parent)
    if lock:
        from spin_bench.atomic import UnsafePathError, try_lock

        os.makedirs(os.path.dirname(os.path.abspath(lock)), exist_ok=True)
        try:
            fd = try_lock(lock)  # O_NOFOLLOW: a link planted at the lock's name is refused
        except (UnsafePathError, OSError) as e:
            sys.stderr.write(f"spin_bench.sweeps.launch: error: {e}\n")
            return 2
        if fd is None:
            sys.stderr.write(f"spin_bench.sweeps.launch: another process is running {os.path.dirname(lock)} "
                             f"(it holds {lock}); not starting a second one\n")
            return BUSY
        os.set_inheritable(fd, True)  # the lock lives as long as the exec'd run
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(sys.executable, [sys.executable, "-m", "spin_bench.run", *args])
    return 1  # not reached


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
