"""Plotting helpers on matplotlib: loss curves, image grids, heatmaps, line plots."""

from __future__ import annotations

import inspect
from typing import Optional, Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch


def _finish(fig):
    """In a notebook, show the figure once now and close it (so it is not shown twice and
    later cells cannot draw on it by accident); elsewhere, return it."""
    try:
        from IPython import get_ipython
        from IPython.display import display
    except ImportError:  # pragma: no cover - IPython is installed with the notebooks
        return fig
    if get_ipython() is None:
        return fig
    display(fig)
    plt.close(fig)
    return None


def _np(x):
    return x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)


def plot_history(histories: dict, title: str = "training", smooth: int = 10):
    """Loss per step (smoothed) for one or more runs: ``{"CNN": history, ...}``.

    If the runs recorded a validation metric, it is drawn in a second panel."""
    with_val = any(h.val_metric for h in histories.values())
    fig, axes = plt.subplots(1, 2 if with_val else 1, figsize=(10 if with_val else 5, 3.2))
    axes = np.atleast_1d(axes)
    for name, h in histories.items():
        loss = np.asarray(h.step_loss)
        if smooth > 1 and len(loss) >= smooth:
            loss = np.convolve(loss, np.ones(smooth) / smooth, mode="valid")
        axes[0].plot(loss, label=name)
        if with_val and h.val_metric:
            axes[1].plot(range(1, len(h.val_metric) + 1), h.val_metric, marker="o", label=name)
    axes[0].set(xlabel="step", ylabel="training loss", title=title, yscale="log")
    axes[0].legend()
    if with_val:
        axes[1].set(xlabel="epoch", ylabel="validation metric", title="validation")
        axes[1].legend()
    fig.tight_layout()
    return _finish(fig)


def show_images(images, titles: Optional[Sequence] = None, ncols: int = 8, cmap: str = "gray",
                size: float = 1.2, suptitle: str = "", symmetric: bool = False):
    """A grid of images ``(N, H, W)`` or ``(N, 1, H, W)``, with optional titles."""
    imgs = _np(images)
    if imgs.ndim == 4:
        imgs = imgs[:, 0]
    if imgs.ndim != 3:
        raise ValueError(f"expected images (N, H, W) or (N, 1, H, W), got shape {imgs.shape}")
    n = len(imgs)
    ncols = min(ncols, n)
    nrows = (n + ncols - 1) // ncols
    fig, axes = plt.subplots(nrows, ncols, figsize=(size * ncols, size * nrows + 0.3 * bool(suptitle)))
    axes = np.atleast_1d(axes).ravel()
    for i, ax in enumerate(axes):
        ax.axis("off")
        if i < n:
            kw = {}
            if symmetric:
                m = np.abs(imgs[i]).max() or 1.0
                kw = {"vmin": -m, "vmax": m}
            ax.imshow(imgs[i], cmap=cmap, **kw)
            if titles is not None:
                ax.set_title(str(titles[i]), fontsize=8)
    if suptitle:
        fig.suptitle(suptitle)
    fig.tight_layout()
    return _finish(fig)


def heatmap(matrix, xlabels=None, ylabels=None, title: str = "", cmap: str = "viridis",
            annotate: bool = False, xlabel: str = "", ylabel: str = "", fmt: str = "{:.2f}"):
    """A labelled heatmap of a 2-D array; ``annotate`` writes each value in its cell."""
    m = _np(matrix)
    if m.ndim != 2:
        raise ValueError(f"heatmap needs a 2-D array, got shape {m.shape}")
    fig, ax = plt.subplots(figsize=(min(10.0, 0.5 * m.shape[1] + 2), min(6.0, 0.4 * m.shape[0] + 1.5)))
    im = ax.imshow(m, cmap=cmap, aspect="auto")
    plt.colorbar(im, ax=ax)
    if xlabels is not None:
        ax.set_xticks(range(len(xlabels)), [str(x) for x in xlabels])
    if ylabels is not None:
        ax.set_yticks(range(len(ylabels)), [str(y) for y in ylabels])
    if annotate:
        for i in range(m.shape[0]):
            for j in range(m.shape[1]):
                ax.text(j, i, fmt.format(m[i, j]), ha="center", va="center", fontsize=7,
                        color="w")
    ax.set(title=title, xlabel=xlabel, ylabel=ylabel)
    fig.tight_layout()
    return _finish(fig)


def plot_lines(x, series: dict, xlabel: str = "", ylabel: str = "", title: str = "",
               logy: bool = False, hline: Optional[float] = None, hline_label: str = ""):
    """Several named series against one x axis."""
    fig, ax = plt.subplots(figsize=(5.5, 3.4))
    for name, ys in series.items():
        ax.plot(_np(x), _np(ys), marker="o", markersize=3, label=name)
    if hline is not None:
        ax.axhline(hline, color="gray", linestyle="--", label=hline_label or None)
    ax.set(xlabel=xlabel, ylabel=ylabel, title=title)
    if logy:
        ax.set_yscale("log")
    ax.legend()
    fig.tight_layout()
    return _finish(fig)


def show_source(obj) -> None:
    """Show the source code of a function or class from the course package."""
    source = inspect.getsource(obj)
    try:
        from IPython.display import Markdown, display

        display(Markdown(f"```python\n{source}```"))
    except ImportError:
        print(source)
