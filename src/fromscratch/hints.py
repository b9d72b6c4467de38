"""Hints for learners in a notebook: what to run when a cell fails for a reason that is not
their code.

After a kernel restart (or when a learner opens a notebook again the next day) the
variables an earlier cell defined are gone, and a later cell, an exercise's check for
example, fails with a bare ``NameError``. :func:`install_restart_hint` makes IPython add
one line to such an error saying what to run. Importing :mod:`fromscratch` installs it
(nothing happens outside IPython), so any cell that imports the course gets it.
"""

from __future__ import annotations

HINT = (
    "[hint] `{name}` is defined by an earlier cell of this notebook. After a restart, or "
    "when you open the notebook again, the kernel has forgotten it: run the cells above "
    "first (JupyterLab: Run > Run All Above Selected Cell; Colab: Runtime > Run before), "
    "then this cell again."
)


def _missing_name(value) -> str | None:
    name = getattr(value, "name", None)  # Python 3.10+
    if name:
        return name
    text = str(value)
    if text.startswith("name '") and "'" in text[6:]:
        return text[6:text.index("'", 6)]
    return None


def _restart_hint(shell, etype, value, tb, tb_offset=None):
    shell.showtraceback((etype, value, tb), tb_offset=tb_offset)
    name = _missing_name(value)
    if name:
        print(HINT.format(name=name))


def install_restart_hint() -> bool:
    """Add the restart hint to ``NameError`` in the running IPython shell. Returns whether
    it is installed; it never replaces a handler someone else set."""
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    if shell is None:
        return False
    if getattr(shell, "_fromscratch_restart_hint", False):
        return True
    if shell.custom_exceptions:  # someone else's handler: leave it alone
        return False
    shell.set_custom_exc((NameError,), _restart_hint)
    shell._fromscratch_restart_hint = True
    return True
