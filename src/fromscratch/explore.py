"""Interactive explorers for the chapters, with a static figure for the website.

Each explorer returns an :class:`Explorer`. Displayed in a live notebook (JupyterLab,
Colab) it is an ipywidgets control panel; its output also carries a PNG of a few
representative settings, which is what the website (and any viewer without a kernel)
shows. The book's ``_config.yml`` tells MyST-NB to skip the widget view for HTML, so the
static figure appears there instead of an empty widget placeholder.

- :func:`feature_map_explorer`: pick an image and a CNN block, see its feature maps.
- :func:`hidden_state_explorer`: step through a sequence, see a recurrent model's state.
"""

from __future__ import annotations

import base64
import io
from typing import Callable, Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def _static(fig, caption: str = "") -> tuple:
    """The static view: PNG bytes, and the figure metadata the website reads (alt text,
    caption, and a phone layout: :func:`fromscratch.plotting.show` explains them)."""
    from .plotting import DPI, FIGURE_METADATA_KEY, describe, narrow_layout, png_bytes, smallest_text_pt

    meta = {"alt": describe(fig), "dpi": DPI, "font_pt": smallest_text_pt(fig)}
    if caption:
        meta["caption"] = caption
    wide = png_bytes(fig)
    narrow_layout(fig)
    meta["narrow"] = base64.b64encode(png_bytes(fig)).decode("ascii")
    meta["narrow_font_pt"] = smallest_text_pt(fig)
    plt.close(fig)
    return wide, {FIGURE_METADATA_KEY: meta}


class Explorer:
    """A widget plus a static fallback figure, displayed as two outputs.

    The first output is the static figure (what the website and any viewer without a
    kernel show); the second holds only the widget's view. They are separate so that the
    figure survives a save: a notebook saved and opened again has lost its widgets
    (JupyterLab then shows "model not found" in the widget's output), but not the figure.
    ``widget`` is ``None`` when ipywidgets is not installed; then only the figure shows.
    """

    def __init__(self, widget, static_png: bytes, description: str, metadata=None):
        self.widget = widget
        self.static_png = static_png
        self.description = description
        self.metadata = metadata or {}

    def _repr_mimebundle_(self, include=None, exclude=None):
        """The static figure's output."""
        live = " (live controls below it in a running notebook)" if self.widget is not None else ""
        data = {
            "text/plain": f"{self.description}: static view of representative settings{live}",
            "image/png": base64.b64encode(self.static_png).decode("ascii"),
        }
        return (data, self.metadata) if self.metadata else data

    def widget_bundle(self):
        """The widget's output: its view only (the website renders nothing for it)."""
        if self.widget is None:
            return None
        view = self.widget._repr_mimebundle_()
        view = view[0] if isinstance(view, tuple) else view
        return {WIDGET_VIEW: view[WIDGET_VIEW]} if WIDGET_VIEW in view else None

    def _ipython_display_(self):
        from IPython.display import display

        bundle = self._repr_mimebundle_()
        data, meta = bundle if isinstance(bundle, tuple) else (bundle, {})
        display(data, raw=True, metadata=meta)
        widget = self.widget_bundle()
        if widget is not None:
            display(widget, raw=True)


def _widgets():
    try:
        import ipywidgets

        return ipywidgets
    except ImportError:  # the website build and plain Python work without it
        return None


def _show_in(output, fig) -> None:
    """Replace the contents of an ``ipywidgets.Output`` with ``fig``."""
    from IPython.display import display

    output.clear_output(wait=True)
    with output:
        display(fig)
    plt.close(fig)


# --- CNN: feature maps ------------------------------------------------------------------


@torch.no_grad()
def compute_feature_maps(model, images: torch.Tensor) -> list:
    """``model.feature_maps(images)`` in eval mode, as a list of numpy arrays (N, C, H, W)."""
    was_training = model.training
    model.eval()
    try:
        maps = model.feature_maps(images)
    finally:
        model.train(was_training)
    return [m.detach().cpu().numpy() for m in maps]


def feature_map_figure(image, maps: Sequence[np.ndarray], rows: Sequence[tuple],
                       n_maps: int = 8, titles: Sequence[str] | None = None):
    """One row per ``(image index, layer index)``: the input image, then ``n_maps`` maps."""
    image = image.detach().cpu().numpy() if isinstance(image, torch.Tensor) else image
    fig, axes = plt.subplots(len(rows), n_maps + 1, figsize=(1.0 * (n_maps + 1), 1.15 * len(rows)),
                             squeeze=False)
    for r, (i, layer) in enumerate(rows):
        fmap = maps[layer][i]
        axes[r, 0].imshow(image[i].reshape(image.shape[-2:]), cmap="gray")
        name = f"label {titles[i]}" if titles is not None else f"image {i}"
        axes[r, 0].set_title(f"{name}\nblock {layer + 1}", fontsize=7)
        for k in range(n_maps):
            ax = axes[r, k + 1]
            if k < fmap.shape[0]:
                ax.imshow(fmap[k], cmap="magma", vmin=0, vmax=max(fmap.max(), 1e-6))
                ax.set_title(f"map {k}", fontsize=7)
        for ax in axes[r]:
            ax.axis("off")
    fig.tight_layout()
    return fig


def feature_map_explorer(model, images: torch.Tensor, labels=None, n_maps: int = 8,
                         static_images: Sequence[int] = (0, 1), caption: str = "") -> Explorer:
    """Pick an image and a layer of a CNN with ``.feature_maps(x)``; see that layer's maps.

    ``images``: ``(N, 1, H, W)``; ``labels``: optional names/classes shown as titles. The
    static figure shows ``static_images`` at every layer.
    """
    if images.dim() != 4:
        raise ValueError(f"expected images (N, C, H, W), got shape {tuple(images.shape)}")
    images = images[:64]
    maps = compute_feature_maps(model, images)
    titles = None if labels is None else [str(int(v) if torch.is_tensor(v) else v)
                                          for v in list(labels)[: len(images)]]
    picks = [i for i in static_images if i < len(images)] or [0]
    rows = [(i, layer) for i in picks for layer in range(len(maps))]
    static, meta = _static(feature_map_figure(images, maps, rows, n_maps, titles), caption)

    w = _widgets()
    if w is None:
        return Explorer(None, static, "Feature map explorer", meta)
    image_slider = w.IntSlider(0, 0, len(images) - 1, description="image")
    layer = w.ToggleButtons(options=[(f"block {k + 1}", k) for k in range(len(maps))],
                            description="layer")
    count = w.IntSlider(n_maps, 1, max(m.shape[1] for m in maps), description="maps")
    out = w.Output()

    def update(_=None):
        n = min(count.value, maps[layer.value].shape[1])
        _show_in(out, feature_map_figure(images, maps, [(image_slider.value, layer.value)], n,
                                         titles))

    for control in (image_slider, layer, count):
        control.observe(update, names="value")
    update()
    return Explorer(w.VBox([w.HBox([image_slider, count]), layer, out]), static,
                    "Feature map explorer", meta)


# --- RNN: hidden state over time -------------------------------------------------------


@torch.no_grad()
def compute_hidden_states(model, tokens: torch.Tensor) -> np.ndarray:
    """All hidden states ``(N, T, H)`` of a model with ``.embed`` and ``.rnn``."""
    if tokens.dim() != 2:
        raise ValueError(f"expected token ids (N, T), got shape {tuple(tokens.shape)}")
    was_training = model.training
    model.eval()
    try:
        hs, _ = model.rnn(model.embed(tokens))
    finally:
        model.train(was_training)
    return hs.detach().cpu().numpy()


def _token_names(tokens: torch.Tensor, decode) -> list:
    if decode is None:
        return [[str(int(t)) for t in row] for row in tokens]
    if callable(decode):
        return [[str(decode(int(t))) for t in row] for row in tokens]
    return [[str(decode[int(t)]) for t in row] for row in tokens]


def hidden_state_figure(hs: np.ndarray, names: list, index: int, steps: Sequence[int],
                        max_units: int = 32, title: str = ""):
    """Left: hidden units (rows) over time, with the chosen ``steps`` marked.
    Right: the hidden vector at each chosen step, as bars."""
    h = hs[index][:, :max_units]  # (T, U)
    T, U = h.shape
    fig, (ax_map, ax_bar) = plt.subplots(1, 2, figsize=(10, 3.2),
                                         gridspec_kw={"width_ratios": [2.2, 1]})
    lim = max(np.abs(h).max(), 1e-6)
    im = ax_map.imshow(h.T, aspect="auto", cmap="RdBu_r", vmin=-lim, vmax=lim)
    fig.colorbar(im, ax=ax_map, fraction=0.03)
    every = max(1, T // 25)
    ax_map.set_xticks(range(0, T, every), [names[index][t] for t in range(0, T, every)],
                      fontsize=7)
    ax_map.set(xlabel="input token at each step", ylabel=f"hidden unit (first {U})",
               title=title or f"sequence {index}: hidden state over time")
    colours = plt.cm.viridis(np.linspace(0, 0.85, len(steps)))
    width = 0.8 / len(steps)
    for k, (t, c) in enumerate(zip(steps, colours)):
        ax_map.axvline(t, color=c, linewidth=2)
        ax_bar.barh(np.arange(U) + k * width, h[t], height=width, color=c,
                    label=f"step {t} ({names[index][t]!r})")
    ax_bar.invert_yaxis()
    ax_bar.set(xlim=(-lim, lim), xlabel="value", title="hidden state at the marked steps")
    ax_bar.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    return fig


def hidden_state_explorer(model, tokens: torch.Tensor,
                          decode: Callable | Sequence | dict | None = None,
                          max_units: int = 32, static_steps: Sequence[int] | None = None,
                          title: str = "", caption: str = "") -> Explorer:
    """Step through a sequence and watch a recurrent model's hidden state change.

    ``model``: anything with ``.embed`` (token ids -> vectors) and ``.rnn`` (a
    ``Recurrent`` returning all states ``(N, T, H)``), such as ``SequenceClassifier`` or
    ``CharModel``. ``tokens``: ``(N, T)`` ids; ``decode`` turns one id into its label (a
    function, list or dict). The static figure marks the first, middle and last steps of
    the first sequence (or ``static_steps``).
    """
    tokens = tokens[:32]
    hs = compute_hidden_states(model, tokens)
    names = _token_names(tokens, decode)
    T = hs.shape[1]
    steps = list(static_steps) if static_steps is not None else sorted({0, T // 2, T - 1})
    static, meta = _static(hidden_state_figure(hs, names, 0, steps, max_units, title), caption)

    w = _widgets()
    if w is None:
        return Explorer(None, static, "Hidden state explorer", meta)
    seq = w.IntSlider(0, 0, len(tokens) - 1, description="sequence")
    step = w.IntSlider(0, 0, T - 1, description="time step")
    play = w.Play(value=0, min=0, max=T - 1, interval=400, description="play")
    w.jslink((play, "value"), (step, "value"))
    out = w.Output()

    def update(_=None):
        _show_in(out, hidden_state_figure(hs, names, seq.value, [step.value], max_units, title))

    seq.observe(update, names="value")
    step.observe(update, names="value")
    update()
    return Explorer(w.VBox([w.HBox([seq, play, step]), out]), static, "Hidden state explorer",
                    meta)
