"""The course's rules for comparing a re-executed chapter notebook with its committed
outputs. nbval executes the notebooks (``pytest --nbval chapters/``); the plugin in
``tests/nbval_course.py`` hands each cell's outputs to ``outputs_difference`` below in place
of nbval's exact comparison, and puts the exercises' reference solutions in place first.

Output rules (one mechanism for every chapter; nothing is tagged cell by cell):

* Text that is not a number must match exactly (runs of spaces count as one space), and so
  must integers (shapes, parameter counts, epochs): they do not depend on the CPU.
* A decimal number (``0.9911``, ``8.88``, ``97.6%``) measured by training or timing may
  differ, because float results differ in the last digits between CPUs and PyTorch
  builds and training amplifies that. A committed value up to 1 in size (an accuracy, a
  fraction) matches within ``DECIMAL_ABS`` (3 points); a larger one (a loss, a
  perplexity, a ratio) within ``DECIMAL_REL`` (5%). A percentage counts as its fraction,
  so 97.6% and 95.0% differ by 0.026.
* A measured value printed with its spread over seeds, ``0.67 ± 0.06`` (mean ± standard
  deviation), matches within that committed spread when it is wider than the rule above:
  the chapter states how much the number moves between runs, and a different CPU is
  another run. The spread itself (a standard deviation over a few seeds, itself uncertain
  by about half its size at three seeds) matches by the usual rules or within a factor of
  ``SPREAD_FACTOR``.
* A number in scientific notation (``1.3e-11``) matches within ``SCIENTIFIC_REL``.
  Float noise itself (a largest difference of 2.9e-06) is not meant to be printed: the
  chapters print a bound (``< 1e-05``, see ``fromscratch.report.bound``).
* Figures must be there (same number, same place); their pixels are not compared.
* Memory addresses (``0x7f...``) and standard-error text (warnings differ between
  releases) are ignored.
* A cell tagged ``nbval-ignore-output`` (timings, random samples) must run without an
  error; its outputs are not compared.
"""

from __future__ import annotations

import math
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = ROOT / "chapters"
sys.path.insert(0, str(ROOT / "src"))

from fromscratch import exercises  # noqa: E402

DECIMAL_ABS = 0.03  # 3 points of accuracy
DECIMAL_REL = 0.05  # 5% of a loss, perplexity or ratio
SCIENTIFIC_REL = 0.10
SPREAD_FACTOR = 2.0  # a spread from 3 seeds may halve or double on another run
IGNORE_TAG = "nbval-ignore-output"
_ROUNDING = 1e-9  # 0.27 - 0.24 is 0.030000000000000027 in floats: still within 3 points

_NUMBER = re.compile(
    r"(?<![\w.])[-+]?(?:\d{1,3}(?:,\d{3})+|\d+)?(?:\.\d+)?(?:[eE][-+]?\d+)?%?(?!\w)(?!\.\w)"
)
_ADDRESS = re.compile(r"\b0x[0-9a-fA-F]+\b")
_SPACES = re.compile(r"\s+")


def _is_number(token: str) -> bool:
    return any(c.isdigit() for c in token)


def tokens(text: str) -> list:
    """Split text into non-number text and number tokens, alternating."""
    text = _ADDRESS.sub("0xADDRESS", text)
    out, last = [], 0
    for m in _NUMBER.finditer(text):
        if not _is_number(m.group()):
            continue
        out.append(text[last:m.start()])
        out.append(m.group())
        last = m.end()
    out.append(text[last:])
    return out


def _value(token: str) -> float:
    pct = token.endswith("%")
    v = float(token.rstrip("%").replace(",", ""))
    return v / 100 if pct else v


def _kind(token: str) -> str:
    body = token.rstrip("%")
    if "e" in body.lower():
        return "scientific"
    if "." in body or token.endswith("%"):
        return "decimal"
    return "integer"


def numbers_match(committed: str, fresh: str) -> bool:
    """Whether two number tokens match by the rules in the module docstring."""
    kinds = {_kind(committed), _kind(fresh)}
    if kinds == {"integer"}:
        return committed.replace(",", "") == fresh.replace(",", "")
    a, b = _value(committed), _value(fresh)
    if "scientific" in kinds:
        return math.isclose(a, b, rel_tol=SCIENTIFIC_REL, abs_tol=0.0)
    return abs(a - b) <= (DECIMAL_ABS if abs(a) <= 1 else DECIMAL_REL * abs(a)) + _ROUNDING


def text_difference(committed: str, fresh: str) -> str | None:
    """``None`` if ``fresh`` matches ``committed``; otherwise the first difference, in words."""
    a, b = tokens(committed), tokens(fresh)
    if len(a) != len(b):
        return _first_text_difference(committed, fresh)
    for i, (x, y) in enumerate(zip(a, b)):
        if i % 2 == 0:
            if _SPACES.sub(" ", x) != _SPACES.sub(" ", y):
                return _first_text_difference(committed, fresh)
        elif not (numbers_match(x, y) or _within_stated_spread(a, i, y)
                  or _spread_within_factor(a, i, y)):
            context = "".join(a[max(0, i - 1):i]).strip()[-40:]
            return (f"number after {context!r}: committed {x}, now {y} "
                    f"(outside the tolerance for {_kind(x)} numbers)")
    return None


def _within_stated_spread(committed_tokens: list, i: int, fresh: str) -> bool:
    """Whether number ``i`` is printed as ``mean ± spread`` and ``fresh`` lies within the
    committed spread of the committed mean."""
    if i + 2 >= len(committed_tokens) or committed_tokens[i + 1].strip() != "±":
        return False
    spread = abs(_value(committed_tokens[i + 2]))
    return abs(_value(committed_tokens[i]) - _value(fresh)) <= spread + _ROUNDING


def _spread_within_factor(committed_tokens: list, i: int, fresh: str) -> bool:
    """Whether number ``i`` is the spread of a ``mean ± spread`` and ``fresh`` is within a
    factor of ``SPREAD_FACTOR`` of it."""
    if i < 2 or not committed_tokens[i - 1].strip().endswith("±"):
        return False
    a, b = abs(_value(committed_tokens[i])), abs(_value(fresh))
    return min(a, b) > 0 and max(a, b) <= SPREAD_FACTOR * min(a, b) + _ROUNDING


def _first_text_difference(committed: str, fresh: str) -> str:
    a, b = committed.splitlines(), fresh.splitlines()
    for i, (x, y) in enumerate(zip(a, b)):
        if x != y:
            return f"line {i + 1}: committed {x.strip()[:100]!r}, now {y.strip()[:100]!r}"
    return f"committed {len(a)} lines, now {len(b)} lines"


def rendered(outputs: list) -> list:
    """A cell's outputs as a list of ("text", str) and ("figure", "") items; consecutive
    standard-output streams merged (how they are split is not stable), standard error
    dropped."""
    items = []
    for out in outputs:
        kind = out.get("output_type")
        if kind == "stream":
            if out.get("name") != "stdout":
                continue
            text = "".join(out.get("text", ""))
            if items and items[-1][0] == "stream":
                items[-1] = ("stream", items[-1][1] + text)
            else:
                items.append(("stream", text))
        elif kind in ("display_data", "execute_result"):
            data = out.get("data", {})
            if any(k.startswith("image/") for k in data):
                items.append(("figure", ""))
            elif "text/markdown" in data:
                items.append(("markdown", "".join(data["text/markdown"])))
            elif "text/plain" in data:
                items.append(("text", "".join(data["text/plain"])))
        elif kind == "error":
            items.append(("error", f"{out.get('ename')}: {out.get('evalue')}"))
    return items


def outputs_difference(committed: list, fresh: list) -> str | None:
    """``None`` if a cell's fresh outputs match its committed ones by the rules above,
    else what differs, in words. (Whether the cell raised is nbval's to report.)"""
    want, got = rendered(committed), rendered(fresh)
    if [k for k, _ in want] != [k for k, _ in got]:
        return (f"outputs differ in kind: committed {[k for k, _ in want]}, now {[k for k, _ in got]}"
                " (a figure or printed output missing or added: stale outputs? run `make notebooks`)")
    for (kind, a), (_, b) in zip(want, got):
        problem = text_difference(a, b)
        if problem:
            return (f"{kind} output differs: {problem}\n--- committed:\n{a[:1500]}\n--- now:\n"
                    f"{b[:1500]}\n(if the code changed on purpose, run `make notebooks`)")
    return None


def cell_difference(committed: dict, fresh: dict) -> str | None:
    """``None`` if a fresh code cell's outputs match the committed ones, else why not
    (including an error output, and honouring the ``nbval-ignore-output`` tag)."""
    errors = [o for o in fresh.get("outputs", []) if o.get("output_type") == "error"]
    if errors:
        e = errors[0]
        trace = _strip_ansi("\n".join(e.get("traceback", [])))
        return f"the cell raised {e.get('ename')}: {e.get('evalue')}\n...{trace[-2500:]}"
    if IGNORE_TAG in committed.get("metadata", {}).get("tags", []):
        return None
    return outputs_difference(committed.get("outputs", []), fresh.get("outputs", []))


def _strip_ansi(text: str) -> str:
    return re.sub(r"\x1b\[[0-9;]*m", "", text)


def exercise_role(cell: dict) -> str | None:
    """"solution", "check" or None, from the cell's nbgrader metadata."""
    meta = cell.get("metadata", {}).get("nbgrader", {})
    if meta.get("solution"):
        return "solution"
    if meta.get("grade"):
        return "check"
    return None


def reference_solutions() -> dict:
    """Each exercise's reference solution (the source of its answer cell), by grade id."""
    return {ex.id: ex.reference for ex in exercises.load()}
