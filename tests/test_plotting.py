"""Plotting helpers: readable figures, alt text and captions for the website."""

from __future__ import annotations

import base64
import importlib.util
import io
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from fromscratch import plotting  # noqa: E402
from fromscratch.training import History  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
KEY = plotting.FIGURE_METADATA_KEY


def _load_site_extension():
    spec = importlib.util.spec_from_file_location("course_site", ROOT / "_ext" / "course_site.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _history(n_epochs=3):
    return History(step_loss=list(np.linspace(2.0, 0.1, 60)),
                   val_metric=list(np.linspace(0.5, 0.9, n_epochs)))


def test_existing_calls_still_work():
    plotting.plot_history({"CNN": _history()}, title="digits")
    plotting.plot_history({"a": History(step_loss=[1.0, 0.5])})
    plotting.show_images(torch.rand(4, 1, 8, 8), titles=list("abcd"), suptitle="s")
    plotting.show_images(torch.randn(3, 5, 5), cmap="RdBu_r", symmetric=True, ncols=16, size=0.8)
    plotting.heatmap(np.random.rand(3, 4), xlabels=range(4), ylabels=list("abc"), title="h",
                     annotate=True, xlabel="x", ylabel="y", fmt="{:.1f}")
    plotting.plot_lines([0, 1, 2], {"a": [1, 2, 3]}, xlabel="x", ylabel="y", title="t",
                        logy=True, hline=1.5, hline_label="bar")


def test_history_has_whole_epoch_ticks_and_labelled_axes():
    fig = plotting.plot_history({"CNN": _history(3), "MLP": _history(3)}, title="digits",
                                metric="validation accuracy")
    loss_ax, val_ax = fig.axes
    ticks = [t for t in val_ax.get_xticks() if 1 <= t <= 3]
    assert ticks and all(float(t).is_integer() for t in ticks)
    assert val_ax.get_xlabel() == "epoch" and val_ax.get_ylabel() == "validation accuracy"
    assert "step" in loss_ax.get_xlabel() and "loss" in loss_ax.get_ylabel()
    alt = fig._fromscratch_metadata[KEY]["alt"]
    assert "digits" in alt and "CNN" in alt and "validation accuracy" in alt


def test_show_images_shared_scale_and_colour_bar():
    images = torch.stack([torch.zeros(4, 4), torch.ones(4, 4) * 3])
    fig = plotting.show_images(images, titles=["zero", "three"], colorbar=True,
                               cbar_label="activation")
    panels = [ax for ax in fig.axes if ax.images]
    limits = {ax.images[0].get_clim() for ax in panels}
    assert limits == {(0.0, 3.0)}, "compared panels must share one colour scale"
    bars = [ax for ax in fig.axes if hasattr(ax, "_colorbar")]
    assert len(bars) == 1 and bars[0].get_ylabel() == "activation"
    own = plotting.show_images(images)  # default: each panel on its own scale
    assert len({ax.images[0].get_clim() for ax in own.axes if ax.images}) == 2


def test_symmetric_shared_scale_is_centred_on_zero():
    images = torch.tensor([[[-1.0, 2.0]], [[0.5, -4.0]]])
    fig = plotting.show_images(images, symmetric=True, shared_scale=True)
    assert {ax.images[0].get_clim() for ax in fig.axes if ax.images} == {(-4.0, 4.0)}


def test_alt_text_and_caption_are_attached():
    fig = plotting.heatmap(np.eye(3), title="identity", xlabel="column", ylabel="row",
                           caption="The identity matrix.")
    meta = fig._fromscratch_metadata[KEY]
    assert meta["caption"] == "The identity matrix."
    assert "identity" in meta["alt"] and "row" in meta["alt"]
    custom = plotting.plot_lines([1, 2], {"a": [1, 2]}, alt="my own words")
    assert custom._fromscratch_metadata[KEY] == {"alt": "my own words"}


def test_describe_uses_titles_and_axis_labels():
    fig, ax = plt.subplots()
    ax.set(title="loss", xlabel="step", ylabel="nats")
    fig.suptitle("training")
    assert plotting.describe(fig) == "training; loss: nats against step"


def _notebook_with(outputs):
    return {"cells": [{"cell_type": "code", "source": "", "metadata": {}, "outputs": outputs}]}


def _png_output(fig, metadata):
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    data = buf.getvalue()
    return data, {"output_type": "display_data", "metadata": metadata,
                  "data": {"image/png": base64.b64encode(data).decode(),
                           "text/plain": "<Figure size 640x480 with 1 Axes>"}}


def test_site_extension_reads_alt_and_caption_from_output_metadata():
    import hashlib

    site = _load_site_extension()
    assert site.METADATA_KEY == KEY
    fig = plotting.plot_lines([1, 2], {"a": [1, 2]}, title="t", caption="A caption.")
    raw, described = _png_output(fig, fig._fromscratch_metadata)
    raw2, bare = _png_output(plt.figure(), {})
    explorer = {"output_type": "display_data", "metadata": {},
                "data": {"image/png": base64.b64encode(raw2 + b"x").decode(),
                         "text/plain": "Feature maps of one digit (static view)"}}
    found = site.describe_outputs(json.loads(json.dumps(_notebook_with([described, bare, explorer]))))
    entry = found[hashlib.sha256(raw).hexdigest()]
    assert entry == {"alt": fig._fromscratch_metadata[KEY]["alt"], "caption": "A caption."}
    assert found[hashlib.sha256(raw2).hexdigest()] == {"alt": site.GENERIC_ALT}
    assert found[hashlib.sha256(raw2 + b"x").hexdigest()]["alt"].startswith("Feature maps")


def test_show_grid_shares_one_scale_and_checks_its_input():
    rows = [torch.zeros(3, 3, 3), torch.full((2, 3, 3), -2.0)]
    fig = plotting.show_grid(rows, ["a", "b"], "kernels", cbar_label="weight")
    images = [im for ax in fig.axes for im in ax.get_images()]
    assert len(images) == 5 and {im.get_clim() for im in images} == {(-2.0, 2.0)}
    assert "kernels" in fig._fromscratch_metadata[plotting.FIGURE_METADATA_KEY]["alt"]
    with pytest.raises(ValueError, match="row titles"):
        plotting.show_grid(rows, ["a"])
    with pytest.raises(ValueError, match=r"\(N, H, W\)"):
        plotting.show_grid([torch.zeros(3, 3)], ["a"])


def _shown_in_a_notebook(monkeypatch, draw):
    """Run ``draw()`` as if in a notebook; return the (data, metadata) it displayed."""
    import IPython
    import IPython.display

    shown = []
    monkeypatch.setattr(IPython, "get_ipython", lambda: object())
    monkeypatch.setattr(IPython.display, "display",
                        lambda data, raw=False, metadata=None: shown.append((data, metadata)))
    draw()
    assert len(shown) == 1
    return shown[0]


def _png_size(b64: str) -> tuple:
    import struct

    raw = base64.b64decode(b64)
    return struct.unpack(">II", raw[16:24])


def test_show_stores_a_phone_layout_with_the_same_font_sizes(monkeypatch):
    def draw():
        fig, axes = plt.subplots(1, 2, figsize=(10, 3.2))
        for ax in axes:
            ax.plot([1, 2, 3], label="a long legend entry for this curve")
            ax.set(title="a panel", xlabel="step", ylabel="loss")
            ax.legend(fontsize=8)
        plotting.show(fig, caption="Two panels side by side.")

    data, meta = _shown_in_a_notebook(monkeypatch, draw)
    entry = meta[KEY]
    assert entry["caption"] == "Two panels side by side." and entry["dpi"] == plotting.DPI
    assert entry["font_pt"] == entry["narrow_font_pt"] == 8
    wide_w, wide_h = _png_size(data["image/png"])
    narrow_w, narrow_h = _png_size(entry["narrow"])
    assert wide_w > 800 and narrow_w <= 400 and narrow_h > wide_h, "panels are stacked"


def test_image_grids_split_their_rows_on_a_phone(monkeypatch):
    _, meta = _shown_in_a_notebook(monkeypatch, lambda: plotting.show_images(
        torch.rand(32, 8, 8), ncols=16, size=0.6, colorbar=True, cbar_label="grey level",
        suptitle="rows: one kind of sample, then another", caption="Thirty-two samples."))
    width, _ = _png_size(meta[KEY]["narrow"])
    assert width <= 400


def test_site_extension_numbers_figures_by_chapter():
    site = _load_site_extension()
    assert site.chapter_number("chapters/03_transformer") == 3
    assert site.chapter_number("overview") is None
    assert site.NOQA.sub("", "import x  # noqa: F401  (for the learner)\ny = 1") == "import x\ny = 1"


def test_record_tables_show_readable_labels():
    from fromscratch import report

    assert report.label("fd_bar_met") == "FD bar met (every seed)"
    assert report.label("lstm_val_loss_40s") == "LSTM validation loss at 40 s"
    assert report._fmt(1, "fd_bar_met") == "yes" and report._fmt(0, "fd_stretch_met") == "no"


def test_show_table_prints_aligned_text_outside_a_notebook(capsys):
    from fromscratch import report

    report.show_table(["name", "value"], [["a", "1.00"], ["longer", 2]])
    assert capsys.readouterr().out.splitlines() == ["  name  value", "     a   1.00", "longer      2"]
    with pytest.raises(ValueError, match="cells"):
        report.show_table(["a", "b"], [["only one"]])
