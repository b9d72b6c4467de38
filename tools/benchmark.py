"""Execute every chapter notebook (a copy; the committed file is untouched) and print a table
of run time, the kernel's peak memory and the chapter's recorded quality figures.

    python tools/benchmark.py            # all chapters
    python tools/benchmark.py 01_cnn     # one
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "tools"))

from build_notebooks import budget_seconds, execute  # noqa: E402

from fromscratch.report import metrics_in  # noqa: E402

LIMIT_MB = 2048
PEAK = (
    "import resource, sys\n"
    "_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
    "print('PEAK_MB', _kb / 1024 if sys.platform != 'darwin' else _kb / 2**20)"
)


def run(path: Path) -> dict:
    nb = nbformat.read(path, as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell(PEAK))
    seconds = execute(nb)
    peak = float(nb.cells[-1].outputs[0]["text"].split()[-1])
    return {"seconds": seconds, "peak_mb": peak, "metrics": metrics_in(nb)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("chapters", nargs="*")
    args = parser.parse_args(argv)
    paths = sorted((ROOT / "chapters").glob("[0-9][0-9]_*.ipynb"))
    if args.chapters:
        paths = [ROOT / "chapters" / f"{c}.ipynb" for c in args.chapters]
    print(f"| chapter | run time (s) | peak memory (MB) | quality | within the time limit "
          f"(60 s; 90 s for the LLM and diffusion) / {LIMIT_MB} MB |")
    print("|---|---|---|---|---|")
    ok = True
    for path in paths:
        r = run(path)
        quality = ", ".join(f"{k}={v}" for k, v in r["metrics"].items()
                            if k not in ("chapter", "model", "compute_growth", "train_seconds"))
        limit = budget_seconds(path.stem)
        within = r["seconds"] <= limit and r["peak_mb"] <= LIMIT_MB
        ok &= within
        print(f"| {path.stem} | {r['seconds']:.1f} | {r['peak_mb']:.0f} | {quality} | "
              f"{'yes' if within else 'NO'} |", flush=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
