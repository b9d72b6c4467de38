"""Chapter results that other pages read: each chapter records its measured numbers once.

``record("cnn", test_accuracy=0.99, ...)`` shows a small table in the notebook and attaches
the numbers to that output's metadata, so the benchmark script and the website's
comparison table read them from the executed notebook instead of retyping them.
"""

from __future__ import annotations

import json
from pathlib import Path

METADATA_KEY = "fromscratch_metrics"


def record(chapter: str, **metrics) -> None:
    """Display ``metrics`` as a table and store them in the output's metadata.

    Keys stay machine-readable in the metadata (``test_accuracy``); the table shows them
    with spaces (``test accuracy``)."""
    for name, value in metrics.items():
        if not isinstance(value, (int, float, str)):
            raise TypeError(f"metric {name!r} must be a number or text, got {type(value).__name__}")
    rows = "\n".join(f"| {k.replace('_', ' ')} | {_fmt(v)} |" for k, v in metrics.items())
    table = f"| {chapter} | value |\n|---|---|\n{rows}"
    try:
        from IPython.display import Markdown, display

        display(Markdown(table), metadata={METADATA_KEY: {"chapter": chapter, **metrics}})
    except ImportError:  # plain Python: print the table
        print(table)


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, int):
        return f"{v:,}"
    return str(v)


def metrics_in(nb: dict) -> dict:
    """The metrics recorded in a notebook's outputs (merged, in order); ``nb`` is the
    notebook as a dict (``json.load``) or an ``nbformat`` node."""
    found = {}
    for cell in nb.get("cells", []):
        for out in cell.get("outputs", []):
            meta = out.get("metadata", {}).get(METADATA_KEY)
            if meta:
                found.update(meta)
    return found


def read_metrics(notebook: Path) -> dict:
    """The metrics a chapter notebook recorded, from its stored outputs."""
    return metrics_in(json.loads(Path(notebook).read_text(encoding="utf-8")))


def bound(value: float, limit: float) -> str:
    """``"< 1e-05"`` after checking that ``value`` (e.g. a largest difference) is below
    ``limit``: float noise differs between CPUs, so print the bound, not the noise digits."""
    value = float(value)
    if not value < limit:  # also catches NaN
        raise AssertionError(f"{value:.3g} is not below {limit:g}")
    return f"< {limit:g}"


def mean_sd(values, digits: int = 2) -> str:
    """``"mean ± sd"`` of a list of numbers (one per seed; sd with n - 1 in the
    denominator), each rounded to ``digits`` decimals."""
    import numpy as np

    v = np.asarray(list(values), dtype=float)
    if v.size < 2:
        raise ValueError(f"a spread needs at least 2 values, got {v.size}")
    return f"{v.mean():.{digits}f} ± {v.std(ddof=1):.{digits}f}"
