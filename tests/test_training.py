import pytest
import torch
import torch.nn as nn

from fromscratch import config
from fromscratch.training import (
    History,
    accuracy,
    count_parameters,
    ensemble_accuracy,
    fit,
)


def _toy():
    g = torch.Generator().manual_seed(0)
    X = torch.randn(200, 2, generator=g)
    y = (X[:, 0] + X[:, 1] > 0).long()
    return X, y


def test_fit_learns_and_is_reproducible():
    X, y = _toy()
    runs = []
    for _ in range(2):
        torch.manual_seed(0)
        model = nn.Linear(2, 2)
        h = fit(model, (X, y), val=(X, y), epochs=15, lr=0.05, batch_size=32, seed=3, progress=False)
        runs.append(h)
    assert isinstance(runs[0], History)
    assert runs[0].epoch_loss[-1] < runs[0].epoch_loss[0]
    assert runs[0].final_val > 0.9
    assert runs[0].step_loss == runs[1].step_loss


def test_fit_rejects_bad_data():
    X, y = _toy()
    with pytest.raises(ValueError, match="rows"):
        fit(nn.Linear(2, 2), (X, y[:10]), progress=False)
    with pytest.raises(TypeError, match="pair of tensors"):
        fit(nn.Linear(2, 2), (X.numpy(), y), progress=False)
    with pytest.raises(ValueError, match="no validation metric"):
        _ = History().final_val


def test_accuracy_and_parameter_count():
    model = nn.Linear(3, 2)
    with torch.no_grad():
        model.weight.copy_(torch.tensor([[1.0, 0, 0], [-1.0, 0, 0]]))
        model.bias.zero_()
    X = torch.tensor([[1.0, 0, 0], [-1.0, 0, 0]])
    assert accuracy(model, X, torch.tensor([0, 1])) == 1.0
    assert accuracy(model, X, torch.tensor([1, 1])) == 0.5
    assert count_parameters(model) == 8


def _fixed(logits):
    """A 'model' that returns the given logits whatever the input."""
    class Fixed(nn.Module):
        def __init__(self):
            super().__init__()
            self.p = nn.Parameter(torch.zeros(1))

        def forward(self, x):
            return torch.as_tensor(logits, dtype=torch.float32)[: len(x)] + 0 * self.p

    return Fixed()


def test_ensemble_accuracy_averages_probabilities():
    X, y = torch.zeros(3, 1), torch.tensor([0, 1, 1])
    sure = _fixed([[5.0, 0.0], [0.0, 5.0], [5.0, 0.0]])  # right, right, wrong (confident)
    unsure = _fixed([[0.0, 0.2], [0.0, 0.2], [0.0, 0.2]])  # wrong, right, right (barely)
    assert accuracy(sure, X, y) == pytest.approx(2 / 3)
    assert accuracy(unsure, X, y) == pytest.approx(2 / 3)
    # averaged probabilities: the confident member wins rows 1-2, row 3 stays wrong
    assert ensemble_accuracy([sure, unsure], X, y) == pytest.approx(2 / 3)
    assert ensemble_accuracy([sure], X, y) == accuracy(sure, X, y)
    with pytest.raises(ValueError, match="at least one"):
        ensemble_accuracy([], X, y)


def test_device_and_seed_settings(monkeypatch):
    monkeypatch.setenv("FROMSCRATCH_DEVICE", "cpu")
    assert config.device().type == "cpu"
    monkeypatch.setenv("FROMSCRATCH_DEVICE", "tpu")
    with pytest.raises(ValueError, match="cpu, cuda or mps"):
        config.device()
    if not torch.cuda.is_available():
        monkeypatch.setenv("FROMSCRATCH_DEVICE", "cuda")
        with pytest.raises(RuntimeError, match="no CUDA"):
            config.device()
    with pytest.raises(ValueError, match="non-negative"):
        config.seed_everything(-1)


def test_best_time_takes_the_minimum_after_warmup():
    from fromscratch.training import best_time

    calls = []
    assert best_time(lambda: calls.append(1), repeat=3, warmup=2, number=4) >= 0
    assert len(calls) == 2 + 3 * 4
    with pytest.raises(ValueError):
        best_time(lambda: None, repeat=0)


def test_bound_prints_the_limit_not_the_noise():
    from fromscratch.report import bound

    assert bound(2.9e-6, 1e-5) == "< 1e-05"
    with pytest.raises(AssertionError, match="not below"):
        bound(float("nan"), 1e-5)
