"""Plotting helpers on matplotlib: loss curves, image grids, heatmaps, line plots.

Every figure a chapter shows goes through :func:`show` (the helpers below call it; a
chapter that draws its own figure ends with ``show(fig, caption=...)`` instead of
``plt.show()``). In a notebook, :func:`show` displays the figure once and stores in the
displayed output's metadata (:data:`FIGURE_METADATA_KEY`):

- ``alt``: what the figure shows, for screen readers (built from its title, axes and
  series unless you pass ``alt=``);
- ``caption``: one or two sentences saying what the figure shows; the website numbers it
  ("Figure 3.2: ...") so the prose can refer to the figure by number;
- ``narrow``: the same figure laid out for a phone (panels stacked, about
  :data:`PHONE_WIDTH_IN` inches wide, the same font sizes), as a base64 PNG; the website
  shows it instead of the wide one on narrow screens, so the text stays readable;
- ``font_pt``, ``narrow_font_pt`` and ``dpi``: the smallest text in each rendering
  (points) and the pixels per inch, from which the browser tests work out how tall the
  figure's text is on screen.

The website (``_ext/course_site.py``) turns these into the image's alt text, a numbered
caption and the phone layout, so no cell needs tagging by hand.
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
    """The output metadata :func:`show` attaches to a displayed figure (without the phone
    layout, which only a notebook display renders)."""
    meta = {"alt": (alt or describe(fig)).strip()}
    if caption:
        meta["caption"] = caption.strip()
    return {FIGURE_METADATA_KEY: meta}


#: Width (inches) of a figure's phone layout: at :data:`DPI` it fits a 390 px phone's
#: text column at its natural size, so a 10 pt label is about 14 px tall there.
PHONE_WIDTH_IN = 3.4
#: Resolution of the PNGs the notebooks store (matplotlib-inline's default).
DPI = 100
#: Narrowest panel (inches) in a phone layout: figures with smaller panels keep several
#: per row.
_MIN_PANEL_IN = 1.6


def smallest_text_pt(fig) -> Optional[float]:
    """The font size (points) of the smallest visible, non-empty text in ``fig``."""
    from matplotlib.text import Text

    sizes = [t.get_fontsize() for t in fig.findobj(Text)
             if t.get_visible() and t.get_text().strip() and t.figure is fig]
    return min(sizes) if sizes else None


def png_bytes(fig, dpi: int = DPI) -> bytes:
    """``fig`` as PNG bytes, cropped to its content (as a notebook shows it)."""
    import io

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight",
                facecolor=fig.get_facecolor(), edgecolor=fig.get_edgecolor())
    return buf.getvalue()


def _is_colorbar(ax) -> bool:
    return hasattr(ax, "_colorbar")


def narrow_layout(fig, width: float = PHONE_WIDTH_IN):
    """Lay ``fig`` out again for a phone, in place: at most ``width`` inches wide, its
    panels stacked into as few columns as keep each at least ``_MIN_PANEL_IN`` wide (one
    column for side-by-side plots), with the same font sizes. Colour bars are drawn again
    beside the panels they belong to. Returns ``fig``."""
    w, h = fig.get_size_inches()
    panels = [ax for ax in fig.axes if not _is_colorbar(ax) and ax.get_subplotspec() is not None]
    bars = []
    for ax in [a for a in fig.axes if _is_colorbar(a)]:
        cb = ax._colorbar
        bars.append((cb.mappable, ax.get_ylabel() or ax.get_xlabel()))
        cb.remove()
    if len(panels) > 1:
        grid = panels[0].get_subplotspec().get_gridspec()
        nrows, ncols = grid.get_geometry()
        panel_w, panel_h = w / ncols, h / nrows
        # panels that only show an image (feature maps, digits) can be smaller than plots
        images_only = all(ax.get_images() and not ax.axison for ax in panels)
        smallest = 0.65 if images_only else _MIN_PANEL_IN
        cols = 1 if panel_w >= 3.0 else max(1, min(ncols, int(width // smallest)))
        per_row = -(-ncols // cols)  # each original row becomes per_row rows, in order
        rows = nrows * per_row
        new = fig.add_gridspec(rows, cols)
        for ax in panels:
            spec = ax.get_subplotspec()
            r, j = spec.rowspan.start, spec.colspan.start
            ax.set_subplotspec(new[r * per_row + j // cols, j % cols])
            if cols == 1:  # shared axes hid inner tick labels; every panel shows its own
                ax.tick_params(labelbottom=True, labelleft=True)
        height = rows * (max(panel_h * min(1.0, width / cols / panel_w), 2.6 if cols == 1 else 0)
                         + 0.3 * (cols > 1))
        fig.set_size_inches(width, max(height, 1.5))
    elif w > width:
        fig.set_size_inches(width, h)
    fig.set_layout_engine("constrained")  # places colour bars, titles and legends
    for mappable, label in bars:
        owners = [a for a in panels if mappable in (*a.get_images(), *a.collections)]
        fig.colorbar(mappable, ax=owners or panels, label=label or None, shrink=0.9)
    fit_text(fig)
    return fig


def _wrap(text: str, inches: float, points: float) -> str:
    import textwrap

    chars = max(12, int(inches * 72 / (0.55 * points)))
    return "\n".join(textwrap.fill(line, chars) for line in text.split("\n"))


def _tight(fig) -> None:
    """Lay ``fig`` out again and draw it once (so text extents are current): a constrained
    layout runs as part of the draw; otherwise ``tight_layout`` runs first."""
    from matplotlib.layout_engine import ConstrainedLayoutEngine

    if not isinstance(fig.get_layout_engine(), ConstrainedLayoutEngine):
        try:
            fig.tight_layout()
        except Exception:  # pragma: no cover - tight_layout cannot place every layout
            pass
    fig.canvas.draw()


def fit_text(fig) -> None:
    """Make ``fig``'s text fit its width without shrinking it: long titles, labels and
    the suptitle are wrapped onto several lines, and a legend that would cover much of its
    panel is moved below the panel."""
    width = fig.get_size_inches()[0]
    if getattr(fig, "_suptitle", None) is not None:
        t = fig._suptitle
        t.set_text(_wrap(t.get_text(), width * 0.95, t.get_fontsize()))
    from matplotlib.ticker import FixedLocator, MaxNLocator

    fig.canvas.draw()
    for ax in fig.axes:
        for axis in (ax.xaxis, ax.yaxis):  # fewer ticks, so their labels do not collide
            locator = axis.get_major_locator()
            if isinstance(locator, MaxNLocator) and axis.get_scale() == "linear":
                locator.set_params(nbins=4)
        box = ax.get_position()
        w_in, h_in = box.width * width, box.height * fig.get_size_inches()[1]
        if _is_colorbar(ax):
            continue
        shown = [t for t in ax.get_xticklabels() if t.get_visible() and t.get_text()]
        # fixed tick labels (token names): keep every k-th, so they do not collide
        if shown and isinstance(ax.xaxis.get_major_locator(), FixedLocator):
            chars = max(len(t.get_text()) for t in shown) + 1.5
            fit = max(2, int(w_in * 72 / (0.6 * shown[0].get_fontsize() * chars)))
            step = -(-len(shown) // fit)
            for i, t in enumerate(shown):
                t.set_visible(i % step == 0)
        title = ax.title
        title.set_text(_wrap(title.get_text(), max(w_in, 1.2), title.get_fontsize()))
        label = ax.xaxis.label
        label.set_text(_wrap(label.get_text(), max(w_in, 1.2), label.get_fontsize()))
        label = ax.yaxis.label
        label.set_text(_wrap(label.get_text(), max(h_in, 1.2), label.get_fontsize()))
    _tight(fig)
    moved = False
    for ax in fig.axes:
        legend = ax.get_legend()
        if legend is None or _is_colorbar(ax):
            continue
        lb = legend.get_window_extent()
        ab = ax.get_window_extent()
        if lb.width < 0.6 * ab.width and lb.height < 0.45 * ab.height:
            continue
        handles, labels = ax.get_legend_handles_labels()
        size = legend.get_texts()[0].get_fontsize() if legend.get_texts() else 10
        legend.remove()
        w_in, h_in = fig.get_size_inches()
        fig.set_size_inches(w_in, h_in + len(labels) * size * 1.5 / 72 + 0.2)
        ax.legend(handles, labels, fontsize=size, loc="upper center", ncol=1,
                  bbox_to_anchor=(0.5, -0.3), frameon=False)
        moved = True
    if not moved:  # the layout drawn above is final
        return
    _tight(fig)
    for ax in fig.axes:  # put each moved legend just under its axis's labels
        legend = ax.get_legend()
        if legend is None or legend.get_bbox_to_anchor() is None or _is_colorbar(ax):
            continue
        if getattr(legend, "_loc", None) != 9:  # "upper center", set above
            continue
        below = ax.get_tightbbox(fig.canvas.get_renderer(), bbox_extra_artists=[])
        bottom = min(below.y0, ax.xaxis.get_tightbbox(fig.canvas.get_renderer()).y0)
        y = ax.transAxes.inverted().transform((0, bottom))[1]
        legend.set_bbox_to_anchor((0.5, y - 0.02), transform=ax.transAxes)
    _tight(fig)


def show(fig, caption: Optional[str] = None, alt: Optional[str] = None, *, narrow=None):
    """Show ``fig`` once in a notebook, with its alt text, caption and phone layout in
    the output's metadata (see the module's docstring), and close it, so it is not shown
    twice and later cells cannot draw on it by accident. Outside a notebook, return it.

    ``narrow``: a function returning the phone layout as a new figure (the helpers that
    draw image grids redraw with fewer columns); by default :func:`narrow_layout`
    rearranges ``fig`` itself after its wide rendering is stored."""
    meta = figure_metadata(fig, alt, caption)
    try:
        from IPython import get_ipython
        from IPython.display import display
    except ImportError:  # pragma: no cover - IPython is installed with the notebooks
        return fig
    if get_ipython() is None:
        fig._fromscratch_metadata = meta
        return fig
    import base64

    entry = meta[FIGURE_METADATA_KEY]
    text = repr(fig)
    wide = png_bytes(fig)
    entry.update(dpi=DPI, font_pt=smallest_text_pt(fig))
    if fig.get_size_inches()[0] > PHONE_WIDTH_IN + 0.2:
        small = narrow() if narrow is not None else narrow_layout(fig)
        entry["narrow"] = base64.b64encode(png_bytes(small)).decode("ascii")
        entry["narrow_font_pt"] = smallest_text_pt(small)
        if small is not fig:
            plt.close(small)
    display({"image/png": base64.b64encode(wide).decode("ascii"), "text/plain": text},
            raw=True, metadata=meta)
    plt.close(fig)
    return None


def _finish(fig, alt: Optional[str] = None, caption: Optional[str] = None, narrow=None):
    return show(fig, caption, alt, narrow=narrow)


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


def _phone_columns(ncols: int, most: int = 8) -> int:
    while ncols > most:
        ncols = -(-ncols // 2)
    return ncols


def show_images(images, titles: Optional[Sequence] = None, ncols: int = 8, cmap: str = "gray",
                size: float = 1.2, suptitle: str = "", symmetric: bool = False, *,
                shared_scale: bool = False, colorbar: bool = False, cbar_label: str = "",
                caption: Optional[str] = None, alt: Optional[str] = None):
    """A grid of images ``(N, H, W)`` or ``(N, 1, H, W)``, with optional titles.

    By default each panel is scaled to its own range (``symmetric``: to ``-m..m`` around
    zero). ``shared_scale=True`` puts every panel on one colour scale, so panels can be
    compared by colour; ``colorbar=True`` (which implies a shared scale) adds one colour
    bar for the grid, labelled ``cbar_label``. On a phone each row of ``ncols`` images is
    split into two or more shorter rows."""
    imgs = _np(images)
    if imgs.ndim == 4:
        imgs = imgs[:, 0]
    if imgs.ndim != 3:
        raise ValueError(f"expected images (N, H, W) or (N, 1, H, W), got shape {imgs.shape}")
    n = len(imgs)
    ncols = min(ncols, n)
    shared = shared_scale or colorbar
    scale = {}
    if shared:
        if symmetric:
            m = float(np.abs(imgs).max()) or 1.0
            scale = {"vmin": -m, "vmax": m}
        else:
            scale = {"vmin": float(imgs.min()), "vmax": float(imgs.max())}

    def draw(cols: int, cell: float, wrap: Optional[float] = None):
        per_row = -(-ncols // cols)  # grid rows per original row
        nrows = -(-n // ncols) * per_row
        width = cell * cols + (0.6 if colorbar else 0.0)
        title = _wrap(suptitle, wrap, 12) if wrap else suptitle
        fig, axes = plt.subplots(nrows, cols, squeeze=False,
                                 figsize=(width, cell * nrows + 0.3 * bool(suptitle)
                                          + 0.25 * title.count("\n")
                                          + (0.15 * nrows if titles is not None and wrap else 0)))
        shown = None
        for ax in axes.ravel():
            ax.axis("off")
        for i in range(n):
            row, j = divmod(i, ncols)
            ax = axes[row * per_row + j // cols, j % cols]
            kw = dict(scale)
            if symmetric and not shared:
                m = np.abs(imgs[i]).max() or 1.0
                kw = {"vmin": -m, "vmax": m}
            shown = ax.imshow(imgs[i], cmap=cmap, **kw)
            if titles is not None:
                ax.set_title(str(titles[i]), fontsize=8)
        if title:
            fig.suptitle(title)
        fig.tight_layout()
        if colorbar and shown is not None:
            bar = fig.colorbar(shown, ax=list(axes.ravel()), fraction=0.02 if cols > 4 else 0.05,
                               pad=0.02)
            if cbar_label:
                bar.set_label(cbar_label)
        return fig

    fig = draw(ncols, size)

    def narrow():
        cols = _phone_columns(ncols)
        cell = min(size, (PHONE_WIDTH_IN - (0.9 if colorbar else 0.0)) / cols)
        return draw(cols, cell, wrap=PHONE_WIDTH_IN)

    if alt is None:
        what = f"A grid of {n} image{'s' * (n != 1)}"
        if titles is not None:
            what += f" titled {_join(titles)}"
        if shared:
            what += ", on one shared colour scale"
        alt = f"{suptitle}: {what}" if suptitle else what
    return _finish(fig, alt, caption, narrow)


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

    def draw(cols: int, cell: float):
        per_row = -(-ncols // cols)
        fig, axes = plt.subplots(len(rows) * per_row, cols, squeeze=False,
                                 figsize=(cell * cols + 1.0,
                                          (cell + 0.05) * len(rows) * per_row + 0.5))
        shown = None
        for r, (imgs, title) in enumerate(zip(rows, row_titles)):
            for k in range(per_row * cols):
                ax = axes[r * per_row + k // cols, k % cols]
                ax.set_xticks([]), ax.set_yticks([])
                if k < len(imgs):
                    shown = ax.imshow(imgs[k], cmap=cmap, vmin=lo, vmax=hi)
                else:
                    ax.axis("off")
            axes[r * per_row, 0].set_ylabel(title, rotation=0, ha="right", va="center")
        bar = fig.colorbar(shown, ax=axes, shrink=0.8)
        if cbar_label:
            bar.set_label(cbar_label)
        if suptitle:
            fig.suptitle(suptitle)
        return fig

    fig = draw(ncols, size)

    def narrow():
        cols = _phone_columns(ncols, 6)
        small = draw(cols, min(size, (PHONE_WIDTH_IN - 1.9) / cols))
        fit_text(small)
        return small

    if alt is None:
        alt = (f"{suptitle + ': ' if suptitle else ''}rows of images ({_join(row_titles)}), "
               f"on one shared colour scale")
    return _finish(fig, alt, caption, narrow)


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
