"""Build the chapter notebooks from their sources, and execute them.

Each chapter is written as a plain Python file in jupytext's percent format,
``chapters/NN_name.py``. This script turns it into ``chapters/NN_name.ipynb``:

1. a hidden first cell that installs the course package on Google Colab;
2. the chapter's cells, with an "Open in Colab" badge and a notebook download link right
   after the chapter's title;
3. a cell ``# EXERCISES: <chapter>`` replaced by that chapter's exercises (prompt, stub,
   check), generated from ``exercises/<chapter>/`` with nbgrader metadata;

then executes it in a fresh kernel (with progress bars off) and stores the outputs.

    python tools/build_notebooks.py              # build and execute every chapter
    python tools/build_notebooks.py 01_cnn       # one chapter
    python tools/build_notebooks.py --check      # fail if a committed notebook's cells
                                                 # differ from what its sources give
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import time
from pathlib import Path

import jupytext
import nbformat
import yaml

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = ROOT / "chapters"
sys.path.insert(0, str(ROOT / "src"))

from fromscratch import exercises  # noqa: E402

PLACEHOLDER = re.compile(r"^# EXERCISES: (\w+)\s*$")

# Run-time budget of each chapter (COURSE.md: 60 s on 2 CPU cores; the LLM and diffusion
# chapters 90 s). The build stores each chapter's time in its notebook's metadata and
# tests/test_notebooks.py fails when a committed build exceeds its budget by over 25%.
BUDGET_S = {"04_llm": 90, "10_diffusion": 90}
DEFAULT_BUDGET_S = 60
OVER_BUDGET = 1.25


def budget_seconds(stem: str) -> int:
    return BUDGET_S.get(stem, DEFAULT_BUDGET_S)


def cpu_busy(seconds: float = 1.0):
    """The fraction of all cores busy over the next ``seconds`` (from /proc/stat; ``None``
    where there is none): other work running beside a build makes its time too long."""
    def sample():
        with open("/proc/stat") as fh:
            values = [int(v) for v in fh.readline().split()[1:]]
        return sum(values), values[3] + values[4]  # total, idle + iowait

    try:
        total0, idle0 = sample()
        time.sleep(seconds)
        total1, idle1 = sample()
    except (OSError, ValueError, IndexError):
        return None
    return 1 - (idle1 - idle0) / max(total1 - total0, 1)


def build_record(seconds: float, busy_before) -> dict:
    """What the notebook's metadata keeps of its build: the time it took, how busy the
    cores were just before (other work makes the time meaningless) and the versions."""
    import platform

    import torch

    busy = None if busy_before is None else round(busy_before, 2)
    return {"build_seconds": round(seconds, 1), "cpu_busy_before": busy,
            "cpu_count": os.cpu_count(), "machine": platform.machine(),
            "python": platform.python_version(), "torch": torch.__version__.split("+")[0]}


def _repository() -> tuple:
    cfg = yaml.safe_load((ROOT / "_config.yml").read_text())
    return cfg["repository"]["url"].rstrip("/"), cfg["repository"].get("branch", "main")


def badges_cell(stem: str) -> str:
    """Markdown (HTML links, so it reads the same in Jupyter and on the website) with an
    "Open in Colab" badge and a download link for ``chapters/<stem>.ipynb``. The website
    serves each notebook next to its page, so the relative download link works there and
    in a local Jupyter; the Colab address comes from ``repository`` in ``_config.yml``."""
    url, branch = _repository()
    owner_repo = url.removeprefix("https://github.com/")
    colab = f"https://colab.research.google.com/github/{owner_repo}/blob/{branch}/chapters/{stem}.ipynb"
    return (
        '<p class="chapter-badges">'
        f'<a class="badge-colab" href="{colab}" target="_blank" rel="noopener">Open in Colab</a> '
        f'<a class="badge-download" href="{stem}.ipynb" download="{stem}.ipynb">'
        "Download the notebook (.ipynb)</a></p>"
    )


def colab_cell() -> str:
    url, branch = _repository()
    return (
        "# Google Colab set-up: install the course package (skipped elsewhere, and when\n"
        "# already installed). Colab's own torch is kept: the package only needs torch>=2.1.\n"
        "import importlib.util\n"
        "import subprocess\n"
        "import sys\n\n"
        'if "google.colab" in sys.modules and importlib.util.find_spec("fromscratch") is None:\n'
        "    subprocess.run(\n"
        f'        [sys.executable, "-m", "pip", "install", "-q", "fromscratch @ git+{url}@{branch}"],\n'
        "        check=True,\n"
        "    )"
    )


def build(source: Path) -> nbformat.NotebookNode:
    """The notebook (without outputs) that ``source`` describes."""
    nb = jupytext.read(source)
    cells = [nbformat.v4.new_code_cell(colab_cell(), metadata={"tags": ["remove-cell"]})]
    badges = nbformat.v4.new_markdown_cell(badges_cell(source.stem))
    first = nb.cells[0] if nb.cells else None
    if first is not None and first.cell_type == "markdown" and first.source.startswith("# "):
        title, _, rest = first.source.partition("\n")
        cells += [nbformat.v4.new_markdown_cell(title), badges]
        if rest.strip():
            cells.append(nbformat.v4.new_markdown_cell(rest.strip("\n"), metadata=first.metadata))
        nb.cells = nb.cells[1:]
    else:
        cells.append(badges)
    for cell in nb.cells:
        m = PLACEHOLDER.match(cell.source.strip()) if cell.cell_type == "code" else None
        if not m:
            cells.append(cell)
            continue
        for number, ex in enumerate(exercises.load(m.group(1)), start=1):
            for c in exercises.notebook_cells(ex, number):
                maker = nbformat.v4.new_code_cell if c["cell_type"] == "code" else (
                    nbformat.v4.new_markdown_cell)
                cells.append(maker(c["source"], metadata=c["metadata"]))
    for i, cell in enumerate(cells):
        cell.id = f"{source.stem}-{i:03d}"
        cell.metadata.pop("lines_to_next_cell", None)
    nb.cells = cells
    nb.metadata = {
        "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
        "language_info": {"name": "python"},
    }
    return nb


def execute(nb: nbformat.NotebookNode, timeout: int = 600) -> float:
    from nbclient import NotebookClient

    os.environ["FROMSCRATCH_PROGRESS"] = "0"
    start = time.perf_counter()
    NotebookClient(nb, timeout=timeout, kernel_name="python3",
                   resources={"metadata": {"path": str(CHAPTERS)}}).execute()
    return time.perf_counter() - start


def same_cells(a: nbformat.NotebookNode, b: nbformat.NotebookNode) -> list:
    """Differences between two notebooks' cells (type, source, tags), ignoring outputs."""
    problems = []
    if len(a.cells) != len(b.cells):
        problems.append(f"{len(a.cells)} cells vs {len(b.cells)}")
    for i, (x, y) in enumerate(zip(a.cells, b.cells)):
        if (x.cell_type, x.source) != (y.cell_type, y.source):
            problems.append(f"cell {i} differs: {x.source[:60]!r} vs {y.source[:60]!r}")
        elif x.metadata.get("tags") != y.metadata.get("tags"):
            problems.append(f"cell {i} tags differ: {x.metadata.get('tags')} vs {y.metadata.get('tags')}")
    return problems


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("chapters", nargs="*", help="chapter stems such as 01_cnn (default: all)")
    parser.add_argument("--check", action="store_true",
                        help="compare committed notebooks with their sources; do not write")
    args = parser.parse_args(argv)
    sources = sorted(CHAPTERS.glob("[0-9][0-9]_*.py"))
    if args.chapters:
        sources = [CHAPTERS / f"{c}.py" for c in args.chapters]
        missing = [s for s in sources if not s.exists()]
        if missing:
            parser.error(f"no chapter source {missing[0]}")
    status = 0
    for src in sources:
        target = src.with_suffix(".ipynb")
        nb = build(src)
        if args.check:
            if not target.exists():
                print(f"{target.name}: missing; run python tools/build_notebooks.py {src.stem}")
                status = 1
                continue
            problems = same_cells(nb, nbformat.read(target, as_version=4))
            for p in problems:
                print(f"{target.name}: {p}")
            if problems:
                print(f"{target.name}: out of date; run python tools/build_notebooks.py {src.stem}")
                status = 1
            continue
        busy = cpu_busy()
        if busy is not None and busy > 0.2:
            print(f"{target.name}: {busy:.0%} of the CPU is busy with other work; "
                  "the recorded build time will be too long")
        seconds = execute(nb)
        nb.metadata["fromscratch"] = build_record(seconds, busy)
        nbformat.write(nb, target)
        budget = budget_seconds(src.stem)
        print(f"{target.name}: executed in {seconds:.1f} s (budget {budget} s)")
        if seconds > budget:
            print(f"{target.name}: OVER ITS BUDGET of {budget} s")
    return status


if __name__ == "__main__":
    sys.exit(main())
