"""nbgrader's Validate button (and `nbgrader validate`) tells the truth: a notebook whose
exercise is untouched or wrong fails validation, with the check's feedback; a right answer
passes. nbgrader sets NBGRADER_EXECUTION while it runs a notebook, and the checks then
raise instead of printing [FAIL] or [TODO] (checks.core.strict_mode)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from fromscratch import exercises as E
from fromscratch.grading.cli import assign_main

NBGRADER = Path(sys.executable).with_name("nbgrader")
pytestmark = pytest.mark.skipif(not NBGRADER.exists() and shutil.which("nbgrader") is None,
                                reason="nbgrader is not installed (pip install -e '.[dev]')")

WRONG = ("import torch\n\n\ndef max_pool2d(x, kernel_size, stride=None):\n"
         "    return torch.nn.functional.avg_pool2d(x, kernel_size, stride)\n")


def _validate(folder: Path, answer: str | None) -> str:
    nb = nbformat.read(folder / "hw.ipynb", as_version=4)
    if answer is not None:
        cell = next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("solution"))
        cell.source = answer
    path = folder / f"hw-{abs(hash(answer))}.ipynb"
    nbformat.write(nb, path)
    command = str(NBGRADER) if NBGRADER.exists() else "nbgrader"
    proc = subprocess.run([command, "validate", str(path)], capture_output=True, text=True,
                          timeout=300, cwd=folder)
    return proc.stdout + proc.stderr


@pytest.fixture(scope="module")
def assignment(tmp_path_factory):
    folder = tmp_path_factory.mktemp("validate")
    assert assign_main(["cnn", "-e", "cnn-max-pool", "-n", "hw", "-o", str(folder)]) == 0
    return folder


def test_validate_fails_an_untouched_exercise(assignment):
    out = _validate(assignment, None)
    assert "VALIDATION FAILED" in out and "[TODO] cnn-max-pool" in out, out[-2000:]


def test_validate_fails_a_wrong_answer_with_the_checks_feedback(assignment):
    out = _validate(assignment, WRONG)
    assert "VALIDATION FAILED" in out and "[FAIL] cnn-max-pool" in out, out[-2000:]


def test_validate_passes_the_reference_solution(assignment):
    out = _validate(assignment, E.get("cnn-max-pool").reference)
    assert "Success! Your notebook passes all the tests." in out, out[-2000:]
