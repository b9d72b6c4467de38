"""nbval with the course's rules (tests/nbval_course.py), on a small notebook: an unmodified
committed notebook passes; a stale number, a missing figure or a changed shape fails and
names the cell and what differs; an exercise answer runs its reference solution and its
check must pass. The chapters themselves run under the same plugin in `make test`."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

TESTS = Path(__file__).resolve().parent
EXERCISE = "cnn-max-pool"  # a real exercise: its reference solution is swapped in

CONFTEST = f"""
import sys
sys.path.insert(0, {str(TESTS)!r})
pytest_plugins = ["nbval_course"]
"""

FIGURE = ("%matplotlib inline\nimport matplotlib.pyplot as plt\n"
          "plt.figure(figsize=(1, 1))\nplt.plot([0, 1])\nplt.show()")


def _stream(text):
    return nbformat.v4.new_output("stream", name="stdout", text=text)


def _figure():
    data = {"image/png": "iVBORw0KGgo=", "text/plain": "<Figure>"}
    return nbformat.v4.new_output("display_data", data=data)


def _result(text):
    return nbformat.v4.new_output("execute_result", data={"text/plain": text}, execution_count=1)


def _code(source, outputs=(), tags=(), nbgrader=None):
    meta = {"tags": list(tags)}
    if nbgrader:
        meta["nbgrader"] = nbgrader
    cell = nbformat.v4.new_code_cell(source, metadata=meta, outputs=list(outputs))
    cell.execution_count = 1
    return cell


def notebook(accuracy="0.912", shape="(2, 10)", figure=True, solution_stub=None):
    """A committed notebook: a measured number and a shape, a figure, a timing cell, and an
    exercise (stub answer, check showing [TODO])."""
    stub = solution_stub or "def max_pool2d(x, kernel_size, stride=None):\n    raise NotImplementedError()"
    cells = [
        _code('print("test accuracy 0.9118")\nprint("logits shape (2, 10)")',
              [_stream(f"test accuracy {accuracy}\nlogits shape {shape}\n")]),
        _code(FIGURE, [_figure()] if figure else []),
        _code("import time\nprint(time.time())", [_stream("1700000000.0\n")],
              tags=["nbval-ignore-output"]),
        _code(stub, nbgrader={"solution": True, "grade": False, "grade_id": EXERCISE,
                              "locked": False, "schema_version": 3}),
        _code("from fromscratch.checks.cnn import check_max_pool2d\n\ncheck_max_pool2d(max_pool2d)",
              [_result("[TODO] cnn-max-pool: not attempted")],
              nbgrader={"solution": False, "grade": True, "grade_id": EXERCISE + "-check",
                        "locked": True, "points": 3, "schema_version": 3}),
    ]
    nb = nbformat.v4.new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return nb


VARIANTS = {
    "committed": notebook(),
    "stale_number": notebook(accuracy="0.812"),
    "noisy_number": notebook(accuracy="0.93"),
    "changed_shape": notebook(shape="(2, 11)"),
    "missing_figure": notebook(figure=False),
}
_raising = notebook()
_raising.cells[2].source = "raise ValueError('boom')"
VARIANTS["raising"] = _raising


def _pytest(folder: Path, conftest: str, names) -> tuple:
    """Run ``pytest --nbval`` on the notebooks ``names`` in ``folder``; (outcome by item, output)."""
    (folder / "conftest.py").write_text(conftest)
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "--nbval", *[f"{n}.ipynb" for n in names],
         "-p", "no:cacheprovider", "-v", "--color=no", "-p", "no:xdist"],
        cwd=folder, capture_output=True, text=True, timeout=600)
    outcome = dict(re.findall(r"^(\S+\.ipynb::Cell \d+[^\n]*?) (PASSED|FAILED)", proc.stdout, re.M))
    return outcome, proc.stdout


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """One nbval run over every variant (one kernel each), and one with a wrong reference."""
    folder = tmp_path_factory.mktemp("nbval")
    for name, nb in VARIANTS.items():
        nbformat.write(nb, folder / f"{name}.ipynb")
    main = _pytest(folder, CONFTEST, VARIANTS)
    # The reference solutions come from exercises/; replace them with a wrong one.
    wrong = _pytest(folder, CONFTEST + (
        "import nbval_course\n"
        "nbval_course.reference_solutions = lambda: {'cnn-max-pool': "
        "'def max_pool2d(x, kernel_size, stride=None):\\n    return x'}\n"), ["committed"])
    return {"main": main, "wrong": wrong}


def _failed(outcome, notebook_name):
    return sorted(k.split("::")[1] for k, v in outcome.items()
                  if k.startswith(notebook_name + ".ipynb") and v == "FAILED")


def _section(output, title):
    """The failure report of one item (pytest prints ``___ title ___`` above it)."""
    parts = re.split(r"^_{3,} (.+?) _{3,}$", output, flags=re.M)
    found = [parts[i + 1] for i in range(1, len(parts) - 1, 2) if parts[i] == title]
    assert found, f"no failure report titled {title!r} in:\n{output[-3000:]}"
    return found[0]


def test_a_committed_notebook_passes_with_the_reference_solution_in_place(runs):
    outcome, out = runs["main"]
    assert len([k for k in outcome if k.startswith("committed.ipynb")]) == 5, out[-3000:]
    assert _failed(outcome, "committed") == []
    assert outcome["committed.ipynb::Cell 3 (solution cnn-max-pool)"] == "PASSED"
    assert outcome["committed.ipynb::Cell 4 (check cnn-max-pool-check)"] == "PASSED"
    assert "notebooks executed by nbval" in out and "committed.ipynb:" in out


def test_a_number_outside_the_tolerance_fails_and_names_the_cell(runs):
    outcome, out = runs["main"]
    assert _failed(outcome, "stale_number") == ["Cell 0"]
    report = _section(out, "Cell 0")
    assert "committed 0.812, now 0.9118" in out and "outside the tolerance" in out
    assert "Cell outputs differ" in report


def test_a_number_within_the_tolerance_passes(runs):
    assert _failed(runs["main"][0], "noisy_number") == []


def test_a_changed_shape_fails(runs):
    outcome, out = runs["main"]
    assert _failed(outcome, "changed_shape") == ["Cell 0"]
    assert "committed 11, now 10" in out


def test_a_missing_or_extra_figure_fails(runs):
    outcome, out = runs["main"]
    assert _failed(outcome, "missing_figure") == ["Cell 1"]
    assert "outputs differ in kind: committed [], now ['figure']" in out


def test_a_cell_that_raises_fails_even_when_its_output_is_ignored(runs):
    outcome, out = runs["main"]
    assert _failed(outcome, "raising") == ["Cell 2"]
    assert "ValueError" in out and "boom" in out


def test_a_check_that_fails_with_the_reference_fails_its_item(runs):
    outcome, out = runs["wrong"]
    assert _failed(outcome, "committed") == ["Cell 4 (check cnn-max-pool-check)"], out[-3000:]
    assert "does not pass with the reference solution" in out and "[FAIL]" in out
