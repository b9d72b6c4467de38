"""Shared by every pytest run in this repository.

* The course's rules for nbval (``pytest --nbval chapters/``): see tests/nbval_course.py.
* On pytest-xdist's parallel workers (``-n 2``), one PyTorch thread per worker and per
  process it starts: two workers with two threads each on two cores would wait on each
  other at every parallel operation.
"""

import os
import sys
from pathlib import Path

if os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ.setdefault("OMP_NUM_THREADS", "1")

sys.path.insert(0, str(Path(__file__).resolve().parent / "tests"))

pytest_plugins = ["nbval_course", "pytester"]
