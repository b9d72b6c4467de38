"""Self-checks for the exercises: run the learner's code on several inputs, compare
with a trusted reference, and say exactly what went wrong and what to try.

Each chapter's checks live in a module named after the chapter (``checks.cnn``, ...).
A check returns a :class:`~fromscratch.checks.core.CheckResult` whose text is shown in
the notebook; with ``strict=True`` (or ``FROMSCRATCH_STRICT_CHECKS=1``, used when
grading) a failing check raises :class:`~fromscratch.checks.core.CheckFailed`.
"""

from .core import Case, CheckFailed, CheckResult, compare, describe

__all__ = ["Case", "CheckFailed", "CheckResult", "compare", "describe"]
