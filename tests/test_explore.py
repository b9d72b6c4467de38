"""The interactive explorers build, and carry a static figure for the website."""

from __future__ import annotations

import base64

import pytest
import torch

from fromscratch import explore
from fromscratch.models.cnn import CNNConfig, DigitsCNN
from fromscratch.models.rnn import CharModel, RNNConfig, SequenceClassifier

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _check_bundle(explorer):
    bundle, meta = explorer._repr_mimebundle_()
    figure = meta["fromscratch_figure"]  # alt text and a phone layout for the website
    assert figure["alt"] and base64.b64decode(figure["narrow"]).startswith(PNG_MAGIC)
    assert base64.b64decode(bundle["image/png"]).startswith(PNG_MAGIC)
    assert "static view" in bundle["text/plain"] and explore.WIDGET_VIEW not in bundle
    if explorer.widget is not None:
        view = explorer.widget_bundle()
        assert list(view) == [explore.WIDGET_VIEW]  # nothing for the website to show
        assert view[explore.WIDGET_VIEW]["model_id"] == explorer.widget.model_id


def test_an_explorer_is_two_outputs_so_its_figure_survives_a_save():
    """In a kernel, the static figure and the widget are separate outputs: a notebook saved
    and reopened loses the widget's model, not the figure."""
    pytest.importorskip("ipywidgets")
    import ipywidgets
    from IPython.core.interactiveshell import InteractiveShell

    shown = []
    shell = InteractiveShell.instance()
    try:
        shell.display_pub.publish = lambda data, metadata=None, **kw: shown.append(data)
        explorer = explore.Explorer(ipywidgets.IntSlider(), PNG_MAGIC + b"x", "An explorer")
        shell.run_cell("pass")
        from IPython.display import display

        display(explorer)
    finally:
        InteractiveShell.clear_instance()
    assert len(shown) == 2, shown
    assert "image/png" in shown[0] and explore.WIDGET_VIEW not in shown[0]
    assert list(shown[1]) == [explore.WIDGET_VIEW]


@pytest.fixture
def cnn():
    torch.manual_seed(0)
    return DigitsCNN(CNNConfig(channels=(4, 6), hidden=8))


def test_feature_map_explorer_builds_with_static_fallback(cnn):
    images = torch.rand(5, 1, 8, 8)
    ex = explore.feature_map_explorer(cnn, images, labels=torch.arange(5), n_maps=3)
    _check_bundle(ex)
    assert ex.widget is not None
    assert cnn.training, "the explorer must leave the model's mode as it was"


def test_feature_map_explorer_controls_update(cnn):
    ex = explore.feature_map_explorer(cnn, torch.rand(3, 1, 8, 8))
    controls = ex.widget.children[0].children + (ex.widget.children[1],)
    image, count, layer = controls
    image.value, layer.value, count.value = 2, 1, 6  # each change redraws without error
    assert count.max == 6


def test_feature_map_explorer_rejects_wrong_shape(cnn):
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        explore.feature_map_explorer(cnn, torch.rand(8, 8))


def test_feature_map_figure_has_one_row_per_setting(cnn):
    images = torch.rand(2, 1, 8, 8)
    maps = explore.compute_feature_maps(cnn, images)
    fig = explore.feature_map_figure(images, maps, [(0, 0), (1, 1)], n_maps=4)
    assert len(fig.axes) == 2 * 5


@pytest.mark.parametrize("make", [
    lambda: SequenceClassifier("lstm", 8, 4, RNNConfig(embed=4, hidden=6)),
    lambda: SequenceClassifier("rnn", 8, 4, RNNConfig(embed=4, hidden=6)),
    lambda: CharModel("gru", 8, RNNConfig(embed=4, hidden=6)),
])
def test_hidden_state_explorer_builds_with_static_fallback(make):
    torch.manual_seed(0)
    tokens = torch.randint(0, 8, (3, 12))
    ex = explore.hidden_state_explorer(make(), tokens, decode=list("abcdefgh"))
    _check_bundle(ex)
    seq, play, step = ex.widget.children[0].children
    seq.value, step.value = 2, 11
    assert step.max == 11 and play.max == 11


def test_hidden_states_match_the_model():
    torch.manual_seed(0)
    model = SequenceClassifier("gru", 8, 4, RNNConfig(embed=4, hidden=6))
    tokens = torch.randint(0, 8, (2, 5))
    hs = explore.compute_hidden_states(model, tokens)
    with torch.no_grad():
        expected, _ = model.rnn(model.embed(tokens))
    assert hs.shape == (2, 5, 6)
    torch.testing.assert_close(torch.from_numpy(hs), expected)


def test_explorers_work_without_ipywidgets(cnn, monkeypatch):
    monkeypatch.setattr(explore, "_widgets", lambda: None)
    ex = explore.feature_map_explorer(cnn, torch.rand(2, 1, 8, 8))
    assert ex.widget is None
    bundle, _ = ex._repr_mimebundle_()
    assert explore.WIDGET_VIEW not in bundle and "image/png" in bundle
