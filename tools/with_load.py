"""Run a command while other work keeps the CPU busy, as on a shared or loaded machine.

    python tools/with_load.py 2 -- pytest --nbval chapters/

starts 2 busy processes, runs the command, stops them, and exits with its exit code. Each
busy process runs in a session of its own, as separate jobs or users do: Linux shares the
CPU fairly between sessions (autogroups), so busy processes in the command's own session
would take much less from it than other jobs on the machine do.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import subprocess
import sys


def _spin() -> None:
    if hasattr(os, "setsid"):
        os.setsid()
    x = 0
    while True:
        x = (x * 1103515245 + 12345) % 2147483648


def main(argv: list) -> int:
    if len(argv) < 3 or argv[1] != "--" or not argv[0].isdigit():
        print(__doc__, file=sys.stderr)
        return 2
    workers = [mp.Process(target=_spin, daemon=True) for _ in range(int(argv[0]))]
    for w in workers:
        w.start()
    try:
        return subprocess.call(argv[2:])
    finally:
        for w in workers:
            w.terminate()
            w.join()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
