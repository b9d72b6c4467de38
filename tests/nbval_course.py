"""nbval with the course's rules: the pytest plugin behind ``pytest --nbval chapters/``.

nbval collects each notebook as a test file and each code cell as a test item, executes the
cells in order in one kernel, and fails an item whose cell raises. This plugin (loaded by
the repository's ``conftest.py``) changes three things, and nothing else:

* **Exercise answers**: a cell with nbgrader's ``solution`` metadata runs the exercise's
  reference solution (from ``exercises/``) instead of the stub it shows, and the check
  cell after it must print ``[PASS]``; so each chapter is executed once and that run also
  proves every exercise check passes inside its own chapter.
* **Comparison**: a cell's fresh outputs are compared with its committed ones by the
  course's tolerance rules (``tests/output_rules.py``: text and integers exact, measured
  decimals within 3 points or 5%, ``mean ± sd`` within its spread, figures by presence)
  instead of nbval's exact match. nbval's own tag ``nbval-ignore-output`` (timings, random
  samples: run, not compared) and its other markers keep their meaning.
* **Kernels**: the kernel of the Python running pytest (nbval's ``--nbval-current-env``),
  progress bars off, a cell timeout of 600 s, and one PyTorch thread per kernel (see
  ``pytest_configure``).

After the run, the terminal summary lists each notebook's execution time.
"""

from __future__ import annotations

import copy
import os

import pytest
from nbval.plugin import IPyNbCell, IPyNbFile
from output_rules import exercise_role, outputs_difference, reference_solutions

CELL_TIMEOUT_S = 600
_DEFAULT_NBVAL_TIMEOUT = 2000.0


def _nbval_on(config) -> bool:
    return bool(getattr(config.option, "nbval", False) or getattr(config.option, "nbval_lax", False))


def pytest_configure(config):
    if not _nbval_on(config):
        return
    opt = config.option
    if not opt.nbval_kernel_name:
        opt.nbval_current_env = True
    if opt.nbval_cell_timeout == _DEFAULT_NBVAL_TIMEOUT:
        opt.nbval_cell_timeout = CELL_TIMEOUT_S
    # The kernels inherit this environment.
    os.environ["FROMSCRATCH_PROGRESS"] = "0"
    os.environ.setdefault("PYDEVD_DISABLE_FILE_VALIDATION", "1")
    # One PyTorch thread per kernel. With two threads, a thread that reaches the end of an
    # operation first spins until its partner is scheduled again; beside four busy jobs a
    # 2.5 s training run took 34 s that way and 8 s with one thread (README). One thread
    # each, two notebooks at a time on two cores, uses the cores without that wait. Set
    # OMP_NUM_THREADS yourself to override.
    os.environ.setdefault("OMP_NUM_THREADS", "1")


@pytest.hookimpl(wrapper=True)
def pytest_collect_file(file_path, parent):
    """nbval's notebook collector, replaced by the course's."""
    collected = yield
    return [CourseNotebook.from_parent(parent, path=file_path) if type(node) is IPyNbFile else node
            for node in (collected or [])]


class CourseNotebook(IPyNbFile):
    """A notebook whose exercise answers hold the reference solutions."""

    def collect(self):
        references = None
        for item in super().collect():
            cell, role = item.cell, exercise_role(item.cell)
            if role == "solution":
                references = references if references is not None else reference_solutions()
                grade_id = cell.metadata["nbgrader"]["grade_id"]
                if grade_id not in references:
                    raise pytest.UsageError(
                        f"{self.path.name}: the answer cell of exercise {grade_id!r} has no "
                        "exercise file in exercises/ (renamed? run `make notebooks`)")
                cell = copy.deepcopy(cell)
                cell.source = references[grade_id]
            name = item.name if role is None else (
                f"{item.name} ({role} {cell.metadata['nbgrader']['grade_id']})")
            yield CourseCell.from_parent(self, name=name, cell_num=item.cell_num, cell=cell,
                                         options=item.options, role=role)


class CourseCell(IPyNbCell):
    """A cell compared by the course's rules; an exercise check must print [PASS]."""

    def __init__(self, name, parent, cell_num, cell, options, role=None):
        super().__init__(name, parent, cell_num, cell, options)
        self.role = role

    def reportinfo(self):
        return self.path, 0, self.name

    def compare_outputs(self, test, ref, skip_compare=None):
        self.comparison_traceback = []
        if self.role is not None:  # the committed outputs show the unsolved exercise
            return True
        problem = outputs_difference(ref, test)
        if problem is None:
            return True
        first_line = self.cell.source.strip().splitlines()[0][:100] if self.cell.source.strip() else ""
        self.comparison_traceback = [f"cell starting {first_line!r}:", problem]
        return False

    def runtest(self):
        super().runtest()
        if self.role == "check":
            text = "".join(
                "".join(out.get("data", {}).get("text/plain", "")) if "data" in out else out.get("text", "")
                for out in self.test_outputs or [])
            if not text.startswith("[PASS]"):
                grade_id = self.cell.metadata["nbgrader"]["grade_id"]
                self.raise_cell_error(
                    f"the check of exercise {grade_id} does not pass with the reference solution "
                    "in its own chapter", text[:3000])


_SECONDS: dict = {}


def pytest_runtest_logreport(report):
    """Add up the time of every cell of a notebook (set-up includes the kernel's start)."""
    path = report.nodeid.split("::")[0]
    if path.endswith(".ipynb"):
        _SECONDS[path] = _SECONDS.get(path, 0.0) + report.duration


def pytest_terminal_summary(terminalreporter, config):
    if not _SECONDS:
        return
    terminalreporter.write_sep("-", "notebooks executed by nbval (kernel start included)")
    for path, seconds in sorted(_SECONDS.items()):
        terminalreporter.write_line(f"{path}: {seconds:.1f} s")
