"""Chapter code fits the website's code cells: no line that scrolls sideways on a desktop.

A code cell on the website is 780 px wide inside (748 px of text) at a 1400 px desktop
window; its 14 px monospace font is 8.43 px per character, so 88 characters fit
(measured in headless Chromium, tests/browser/test_layout.py checks the built pages).
Longer lines make the whole cell scroll sideways. Prose (Markdown cells) wraps by itself
and is not checked; outputs wrap on the website (``_static/course.css``).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SOURCES = sorted((ROOT / "chapters").glob("[0-9][0-9]_*.py"))

#: The longest code line (characters) that fits a code cell at 1400 px without scrolling.
MAX_CODE_LINE = 88

CELL_MARKER = re.compile(r"^# %%(.*)$")


def long_code_lines(path: Path, limit: int = MAX_CODE_LINE) -> list:
    """``(line number, length, text)`` of every code line longer than ``limit`` in a
    jupytext percent-format chapter source (lines of Markdown cells are skipped)."""
    found = []
    in_code = True  # text before the first marker is a (header) code cell
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        marker = CELL_MARKER.match(line)
        if marker:
            in_code = "[markdown]" not in marker.group(1) and "[md]" not in marker.group(1)
            continue
        if in_code and len(line) > limit:
            found.append((number, len(line), line.strip()))
    return found


def test_the_line_checker_finds_long_code_lines_only(tmp_path):
    source = tmp_path / "99_demo.py"
    source.write_text("# %% [markdown]\n# " + "p" * 120 + "\n\n# %%\nx = 1\ny = '" + "c" * 100
                      + "'\n", encoding="utf-8")
    assert long_code_lines(source) == [(6, 106, "y = '" + "c" * 100 + "'")]


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: p.stem)
def test_code_lines_fit_a_code_cell_on_a_desktop(path):
    long = long_code_lines(path)
    report = "\n".join(f"{path.relative_to(ROOT)}:{n}: {length} characters: {text[:70]}"
                       for n, length, text in long)
    assert not long, (f"{len(long)} code line(s) longer than {MAX_CODE_LINE} characters "
                      f"scroll sideways on the website:\n{report}")
