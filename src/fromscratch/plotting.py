"""Plotting helpers on matplotlib: loss curves, image grids, heatmaps, line plots.

Every helper shows its figure once in a notebook and attaches a text description to the
displayed output (output metadata :data:`FIGURE_METADATA_KEY`): ``alt`` (what the figure
shows, built from its title, axes and series unless you pass ``alt=``) and, when you pass
``caption=``, a caption. The website uses them as the image's alt text and the figure's
caption (the book's ``notebook_figures`` extension), so no cell needs tagging by hand.
"""

from __future__ import annotations

import inspect
from typing import Optional, Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch

#: Output-metadata key under which a displayed figure carries ``{"alt": ..., "caption": ...}``.
FIGURE_METADATA_KEY = "fromscratch_figure"


def _join(names, limit: int = 6) -> str:
    names = [str(n) for n in names]
    if len(names) > limit:
        names = names[:limit] + [f"and {len(names) - limit} more"]
    return ", ".join(names)


def describe(fig) -> str:
    """A plain-text description of a figure from its titles and axis labels (alt text)."""
    parts = []
    suptitle = fig._suptitle.get_text() if getattr(fig, "_suptitle", None) else ""
    if suptitle:
        parts.append(suptitle)
    for ax in fig.axes:
        if hasattr(ax, "_colorbar"):  # a colour bar's own axes
            continue
        bits = [ax.get_title()]
        x, y = ax.get_xlabel(), ax.get_ylabel()
        if x and y:
            bits.append(f"{y} against {x}")
        bits = [b for b in bits if b]
        if bits:
            parts.append(": ".join(bits))
    return "; ".join(dict.fromkeys(parts)) or "A figure"


def figure_metadata(fig, alt: Optional[str] = None, caption: Optional[str] = None) -> dict:
    """The output metadata :func:`_finish` attaches to a displayed figure."""
    meta = {"alt": (alt or describe(fig)).strip()}
    if caption:
        meta["caption"] = caption.strip()
    return {FIGURE_METADATA_KEY: meta}


def _finish(fig, alt: Optional[str] = None, caption: Optional[str] = None):
    """In a notebook, show the figure once now (with its alt text and caption in the
    output's metadata) and close it, so it is not shown twice and later cells cannot draw
    on it by accident; elsewhere, return it."""
    try:
        from IPython import get_ipython
        from IPython.display import display
    except ImportError:  # pragma: no cover - IPython is installed with the notebooks
        return fig
    if get_ipython() is None:
        fig._fromscratch_metadata = figure_metadata(fig, alt, caption)
        return fig
    display(fig, metadata=figure_metadata(fig, alt, caption))
    plt.close(fig)
    return None


def _np(x):
    return x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)


def plot_history(histories: dict, title: str = "training", smooth: int = 10, *,
                 metric: str = "validation metric", loss: str = "training loss",
                 caption: Optional[str] = None, alt: Optional[str] = None):
    """Loss per step (smoothed) for one or more runs: ``{"CNN": history, ...}``.

    If the runs recorded a validation metric, it is drawn per epoch in a second panel
    (whole-number epoch ticks); ``metric`` names it (e.g. ``"validation accuracy"``) and
    ``loss`` names the training loss (e.g. ``"cross-entropy (nats)"``)."""
    from matplotlib.ticker import MaxNLocator

    with_val = any(h.val_metric for h in histories.values())
    fig, axes = plt.subplots(1, 2 if with_val else 1, figsize=(10 if with_val else 5, 3.2))
    axes = np.atleast_1d(axes)
    for name, h in histories.items():
        curve = np.asarray(h.step_loss)
        steps = np.arange(1, len(curve) + 1)
        if smooth > 1 and len(curve) >= smooth:
            curve = np.convolve(curve, np.ones(smooth) / smooth, mode="valid")
            steps = steps[smooth - 1:]
        axes[0].plot(steps, curve, label=name)
        if with_val and h.val_metric:
            axes[1].plot(range(1, len(h.val_metric) + 1), h.val_metric, marker="o", label=name)
    smoothed = f" (mean of {smooth} steps)" if smooth > 1 else ""
    axes[0].set(xlabel="training step (mini-batches)", ylabel=loss + smoothed, title=title,
                yscale="log")
    axes[0].xaxis.set_major_locator(MaxNLocator(integer=True))
    axes[0].legend()
    if with_val:
        axes[1].set(xlabel="epoch", ylabel=metric, title="validation")
        axes[1].xaxis.set_major_locator(MaxNLocator(integer=True))
        axes[1].legend()
    fig.tight_layout()
    if alt is None:
        alt = (f"{title}: {loss} per training step (log scale) of {_join(histories)}"
               + (f", and {metric} per epoch" if with_val else ""))
    return _finish(fig, alt, caption)


def show_images(images, titles: Optional[Sequence] = None, ncols: int = 8, cmap: str = "gray",
                size: float = 1.2, suptitle: str = "", symmetric: bool = False, *,
                shared_scale: bool = False, colorbar: bool = False, cbar_label: str = "",
                caption: Optional[str] = None, alt: Optional[str] = None):
    """A grid of images ``(N, H, W)`` or ``(N, 1, H, W)``, with optional titles.

    By default each panel is scaled to its own range (``symmetric``: to ``-m..m`` around
    zero). ``shared_scale=True`` puts every panel on one colour scale, so panels can be
    compared by colour; ``colorbar=True`` (which implies a shared scale) adds one colour
    bar for the grid, labelled ``cbar_label``."""
    imgs = _np(images)
    if imgs.ndim == 4:
        imgs = imgs[:, 0]
    if imgs.ndim != 3:
        raise ValueError(f"expected images (N, H, W) or (N, 1, H, W), got shape {imgs.shape}")
    n = len(imgs)
    ncols = min(ncols, n)
    nrows = (n + ncols - 1) // ncols
    shared = shared_scale or colorbar
    scale = {}
    if shared:
        if symmetric:
            m = float(np.abs(imgs).max()) or 1.0
            scale = {"vmin": -m, "vmax": m}
        else:
            scale = {"vmin": float(imgs.min()), "vmax": float(imgs.max())}
    width = size * ncols + (0.6 if colorbar else 0.0)
    fig, axes = plt.subplots(nrows, ncols, figsize=(width, size * nrows + 0.3 * bool(suptitle)),
                             squeeze=False)
    axes = axes.ravel()
    shown = None
    for i, ax in enumerate(axes):
        ax.axis("off")
        if i < n:
            kw = dict(scale)
            if symmetric and not shared:
                m = np.abs(imgs[i]).max() or 1.0
                kw = {"vmin": -m, "vmax": m}
            shown = ax.imshow(imgs[i], cmap=cmap, **kw)
            if titles is not None:
                ax.set_title(str(titles[i]), fontsize=8)
    if suptitle:
        fig.suptitle(suptitle)
    fig.tight_layout()
    if colorbar and shown is not None:
        bar = fig.colorbar(shown, ax=list(axes), fraction=0.02 if ncols > 4 else 0.05, pad=0.02)
        if cbar_label:
            bar.set_label(cbar_label)
    if alt is None:
        what = f"A grid of {n} image{'s' * (n != 1)}"
        if titles is not None:
            what += f" titled {_join(titles)}"
        if shared:
            what += ", on one shared colour scale"
        alt = f"{suptitle}: {what}" if suptitle else what
    return _finish(fig, alt, caption)


def show_grid(rows, row_titles: Sequence[str], suptitle: str = "", *, cmap: str = "RdBu_r",
              symmetric: bool = True, cbar_label: str = "", size: float = 0.75,
              caption: Optional[str] = None, alt: Optional[str] = None):
    """Rows of images, each row ``(N, H, W)`` with a title at its left, all on one colour
    scale with one colour bar: for comparing panels by colour (kernels before and after
    training, feature maps of several layers). ``symmetric`` centres the scale on zero."""
    rows = [_np(r) for r in rows]
    if not rows or any(r.ndim != 3 for r in rows):
        raise ValueError("expected a list of image rows, each of shape (N, H, W), got shapes "
                         f"{[tuple(r.shape) for r in rows]}")
    if len(row_titles) != len(rows):
        raise ValueError(f"{len(rows)} rows but {len(row_titles)} row titles")
    top = max(float(np.abs(r).max()) for r in rows) or 1.0
    lo, hi = (-top, top) if symmetric else (min(float(r.min()) for r in rows), top)
    ncols = max(len(r) for r in rows)
    fig, axes = plt.subplots(len(rows), ncols, squeeze=False,
                             figsize=(size * ncols + 1.0, (size + 0.05) * len(rows) + 0.5))
    shown = None
    for axrow, imgs, title in zip(axes, rows, row_titles):
        for i, ax in enumerate(axrow):
            ax.set_xticks([]), ax.set_yticks([])
            if i < len(imgs):
                shown = ax.imshow(imgs[i], cmap=cmap, vmin=lo, vmax=hi)
            else:
                ax.axis("off")
        axrow[0].set_ylabel(title, rotation=0, ha="right", va="center")
    bar = fig.colorbar(shown, ax=axes, shrink=0.8)
    if cbar_label:
        bar.set_label(cbar_label)
    if suptitle:
        fig.suptitle(suptitle)
    if alt is None:
        alt = (f"{suptitle + ': ' if suptitle else ''}rows of images ({_join(row_titles)}), "
               f"on one shared colour scale")
    return _finish(fig, alt, caption)


def heatmap(matrix, xlabels=None, ylabels=None, title: str = "", cmap: str = "viridis",
            annotate: bool = False, xlabel: str = "", ylabel: str = "", fmt: str = "{:.2f}", *,
            cbar_label: str = "", caption: Optional[str] = None, alt: Optional[str] = None):
    """A labelled heatmap of a 2-D array; ``annotate`` writes each value in its cell;
    ``cbar_label`` names the colour bar's quantity (with its unit)."""
    m = _np(matrix)
    if m.ndim != 2:
        raise ValueError(f"heatmap needs a 2-D array, got shape {m.shape}")
    fig, ax = plt.subplots(figsize=(min(10.0, 0.5 * m.shape[1] + 2), min(6.0, 0.4 * m.shape[0] + 1.5)))
    im = ax.imshow(m, cmap=cmap, aspect="auto")
    bar = plt.colorbar(im, ax=ax)
    if cbar_label:
        bar.set_label(cbar_label)
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
    if alt is None:
        rows, cols = ylabel or "rows", xlabel or "columns"
        alt = (f"{title + ': ' if title else ''}heatmap, {rows} ({m.shape[0]}) by {cols} "
               f"({m.shape[1]})" + (f", colour showing {cbar_label}" if cbar_label else "")
               + f", values from {m.min():.3g} to {m.max():.3g}")
    return _finish(fig, alt, caption)


def plot_lines(x, series: dict, xlabel: str = "", ylabel: str = "", title: str = "",
               logy: bool = False, hline: Optional[float] = None, hline_label: str = "", *,
               integer_x: bool = False, caption: Optional[str] = None, alt: Optional[str] = None):
    """Several named series against one x axis (``integer_x``: whole-number x ticks)."""
    from matplotlib.ticker import MaxNLocator

    fig, ax = plt.subplots(figsize=(5.5, 3.4))
    xs = _np(x)
    for name, ys in series.items():
        ax.plot(xs, _np(ys), marker="o", markersize=3, label=name)
    if hline is not None:
        ax.axhline(hline, color="gray", linestyle="--", label=hline_label or None)
    ax.set(xlabel=xlabel, ylabel=ylabel, title=title)
    if logy:
        ax.set_yscale("log")
    if integer_x or (xs.dtype.kind in "iu"):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.legend()
    fig.tight_layout()
    if alt is None:
        alt = (f"{title + ': ' if title else ''}{ylabel or 'value'}"
               f"{' (log scale)' if logy else ''} against {xlabel or 'x'} for {_join(series)}"
               + (f", with a dashed line at {hline:g}" + (f" ({hline_label})" if hline_label else "")
                  if hline is not None else ""))
    return _finish(fig, alt, caption)


def show_source(obj) -> None:
    """Show the source code of a function or class from the course package."""
    source = inspect.getsource(obj)
    try:
        from IPython.display import Markdown, display

        display(Markdown(f"```python\n{source}```"))
    except ImportError:
        print(source)
