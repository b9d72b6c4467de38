"""Each chapter notebook is executed once, with every exercise's reference solution in
place, and that one run is compared with the committed notebook (rules: ``chapter_run.py``).

* every code cell runs without an error and its outputs match the committed ones within
  the stated tolerances (a stale committed output fails);
* every exercise check prints [PASS] inside its own chapter with the reference solution;
* the committed notebook shows every exercise unsolved ([TODO]).
"""

from __future__ import annotations

import json

import nbformat
import pytest
from chapter_run import CHAPTERS, cell_difference, execute, exercise_role, with_reference_solutions

NOTEBOOKS = sorted(CHAPTERS.glob("[0-9][0-9]_*.ipynb"))


def _code_cells(path):
    nb = json.loads(path.read_text(encoding="utf-8"))
    return [(i, c) for i, c in enumerate(nb["cells"]) if c["cell_type"] == "code"]


CELLS = [(p, i) for p in NOTEBOOKS for i, c in _code_cells(p) if exercise_role(c) is None]
CHECKS = [(p, i) for p in NOTEBOOKS for i, c in _code_cells(p) if exercise_role(c) == "check"]


@pytest.fixture(scope="session")
def executed():
    """Each notebook executed once (lazily), with the reference solutions in place."""
    runs = {}

    def get(path):
        if path not in runs:
            committed = nbformat.read(path, as_version=4)
            fresh = with_reference_solutions(committed)
            seconds = execute(fresh)
            print(f"\n{path.name}: executed in {seconds:.1f} s")
            runs[path] = (committed, fresh)
        return runs[path]

    return get


@pytest.mark.parametrize("path,index", CELLS, ids=[f"{p.stem}:cell{i}" for p, i in CELLS])
def test_cell_outputs_match_the_committed_ones(path, index, executed):
    committed, fresh = executed(path)
    problem = cell_difference(committed.cells[index], fresh.cells[index])
    assert problem is None, f"{path.name} cell {index}:\n{committed.cells[index].source[:300]}\n\n{problem}"


@pytest.mark.parametrize("path,index", CHECKS, ids=[f"{p.stem}:cell{i}" for p, i in CHECKS])
def test_exercise_check_passes_with_the_reference_solution_in_its_chapter(path, index, executed):
    committed, fresh = executed(path)
    cell = fresh.cells[index]
    exercise = cell.metadata["nbgrader"]["grade_id"]
    answer = fresh.cells[index - 1]
    assert exercise_role(answer) == "solution", f"the answer cell of {exercise} must precede its check"
    for c in (answer, cell):
        problem = cell_difference(c, c)  # reports an error output, if any
        assert problem is None, f"{exercise} in {path.name}: {problem}"
    text = "".join("".join(o.get("data", {}).get("text/plain", o.get("text", "")))
                   for o in cell.outputs)
    assert text.startswith("[PASS]"), f"{exercise} in {path.name} with the reference solution:\n{text}"


@pytest.mark.parametrize("path,index", CHECKS, ids=[f"{p.stem}:cell{i}" for p, i in CHECKS])
def test_committed_notebook_shows_the_exercise_unsolved(path, index):
    cell = nbformat.read(path, as_version=4).cells[index]
    text = "".join("".join(o.get("data", {}).get("text/plain", "")) for o in cell.outputs)
    assert text.startswith("[TODO]"), f"{cell.metadata['nbgrader']['grade_id']}: {text[:300]}"
