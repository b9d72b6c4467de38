"""After a kernel restart, a cell that needs an earlier cell's variable says what to run."""

import subprocess
import sys

import pytest

from fromscratch.hints import HINT, install_restart_hint

pytest.importorskip("IPython")

SHELL = """
from IPython.core.interactiveshell import InteractiveShell
shell = InteractiveShell.instance()
shell.run_cell("from fromscratch.checks.core import describe")  # what a check cell imports
result = shell.run_cell("describe(char_model)")
assert isinstance(result.error_in_exec, NameError)  # still an error for nbval and nbgrader
assert shell.run_cell("x = 1 + 1").success
shell.run_cell("1 / 0")
"""


def test_outside_ipython_nothing_is_installed():
    assert install_restart_hint() is False


def test_a_name_error_in_a_notebook_says_what_to_run():
    proc = subprocess.run([sys.executable, "-c", SHELL], capture_output=True, text=True, timeout=120)
    out = proc.stdout
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "NameError" in out and HINT.format(name="char_model") in out
    assert out.count("[hint]") == 1  # only for the NameError
    assert "ZeroDivisionError" in out
