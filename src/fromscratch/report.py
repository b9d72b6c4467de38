"""Chapter results that other pages read: each chapter records its measured numbers once.

``record("cnn", test_accuracy=0.99, ...)`` shows a small table in the notebook and attaches
the numbers to that output's metadata, so the benchmark script and the website's
comparison table read them from the executed notebook instead of retyping them.
"""

from __future__ import annotations

import json
from pathlib import Path

METADATA_KEY = "fromscratch_metrics"


#: Words of a metric's key written for readers (``fd`` -> ``FD``); see :func:`label`.
_WORDS = {
    "fd": "FD", "lstm": "LSTM", "rnn": "RNN", "mlp": "MLP", "pca": "PCA", "vae": "VAE",
    "ddim": "DDIM", "dpo": "DPO", "gpt": "GPT", "logreg": "logistic regression",
    "ngram": "n-gram", "ngram64": "64-gram", "nanogpt": "nanoGPT", "val": "validation",
    "recon": "reconstruction", "rmse": "RMSE", "seconds": "time (s)", "40s": "at 40 s",
    "w0": "at w = 0", "w": "strength w", "std": "std", "met": "met",
}

#: Keys whose words alone would not say what they measure.
LABELS = {
    "fd": "Frechet distance (FD)",
    "fd_bar_translated": "FD bar",
    "fd_bar_met": "FD bar met (every seed)",
    "fd_stretch_met": "FD stretch goal met (every seed)",
    "compute_growth": "compute grows",
    "train_seconds": "training time (s)",
    "sample_seconds": "time to draw 1,000 samples (s)",
    "copy_ratio_2_layers": "second copy / first copy loss, 2 layers",
    "copy_ratio_1_layer": "second copy / first copy loss, 1 layer",
    "scaling_exponent_size": "loss-size scaling exponent",
    "class_entropy": "class entropy (nats)",
}


def label(key: str) -> str:
    """A metric's key as a reader reads it: ``fd_bar_met`` -> ``FD bar met (every seed)``,
    ``lstm_val_loss_40s`` -> ``LSTM validation loss at 40 s``."""
    if key in LABELS:
        return LABELS[key]
    text = " ".join(_WORDS.get(word, word) for word in key.split("_"))
    return text[:1].upper() + text[1:]


def record(chapter: str, **metrics) -> None:
    """Display ``metrics`` as a table and store them in the output's metadata.

    Keys stay machine-readable in the metadata (``test_accuracy``); the table shows them
    as a reader reads them (:func:`label`: ``test accuracy``), and a condition recorded
    as 0 or 1 (a key ending in ``_met``) as "no" or "yes"."""
    for name, value in metrics.items():
        if not isinstance(value, (int, float, str)):
            raise TypeError(f"metric {name!r} must be a number or text, got {type(value).__name__}")
    rows = "\n".join(f"| {label(k)} | {_fmt(v, k)} |" for k, v in metrics.items())
    table = f"| Result | Value |\n|---|---|\n{rows}"
    try:
        from IPython.display import Markdown, display

        display(Markdown(table), metadata={METADATA_KEY: {"chapter": chapter, **metrics}})
    except ImportError:  # plain Python: print the table
        print(table)


def _fmt(v, key: str = "") -> str:
    if key.endswith("_met") and v in (0, 1):
        return "yes" if v else "no"
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


def show_table(header, rows) -> None:
    """Show a table of already formatted cells: a Markdown table in a notebook (the
    website renders it as a table, which a phone can scroll sideways), aligned text
    elsewhere. ``header``: the column names; ``rows``: one sequence of cells per row
    (numbers are formatted with ``str``; format them first to choose the digits)."""
    header = [str(h) for h in header]
    rows = [[str(c) for c in row] for row in rows]
    if any(len(r) != len(header) for r in rows):
        raise ValueError(f"every row needs {len(header)} cells, got {[len(r) for r in rows]}")
    try:
        from IPython import get_ipython
        from IPython.display import Markdown, display
    except ImportError:  # pragma: no cover - IPython is installed with the notebooks
        get_ipython = None
    if get_ipython is not None and get_ipython() is not None:
        def cell(text: str) -> str:
            return text.replace("|", "\\|") or " "

        lines = ["| " + " | ".join(cell(h) for h in header) + " |",
                 "|" + "|".join("---" for _ in header) + "|"]
        lines += ["| " + " | ".join(cell(c) for c in row) + " |" for row in rows]
        display(Markdown("\n".join(lines)))
        return
    widths = [max(len(x) for x in col) for col in zip(header, *rows)]
    for row in [header, *rows]:
        print("  ".join(c.rjust(w) for c, w in zip(row, widths)))
