"""Checks for the CNN chapter's exercises."""

from __future__ import annotations

from typing import Callable, Optional

import torch
import torch.nn as nn
import torch.nn.functional as F

from .core import Case, check_function, check_measurement, check_trained_model

PARAM_BUDGET = 5_000
ACCURACY_BAR = 0.95


def _cases_max_pool():
    g = torch.Generator().manual_seed(0)
    r = lambda *s: torch.randn(*s, generator=g)  # noqa: E731
    return [
        Case((r(1, 1, 4, 6), 2), label="one 4x6 image, 2x2 windows"),
        Case((r(2, 3, 6, 6), 2), label="a batch with 3 channels"),
        Case((r(1, 2, 5, 5), 2), {"stride": 1}, label="overlapping windows (stride 1)"),
        Case((r(2, 1, 7, 7), 3), {"stride": 2}, label="3x3 windows, stride 2"),
        Case((-1 - r(1, 1, 4, 4).abs(), 2), label="all values negative"),
        Case((r(1, 1, 3, 5), 1), label="1x1 windows (should change nothing)"),
    ]


def _ref_max_pool(x, kernel_size, stride=None):
    return F.max_pool2d(x, kernel_size, kernel_size if stride is None else stride)


def check_max_pool2d(fn: Callable, strict: Optional[bool] = None):
    """Compare ``fn(x, kernel_size, stride=None)`` with ``F.max_pool2d`` on six inputs."""
    mistakes = [
        (
            lambda x, k, stride=None: F.avg_pool2d(x, k, stride or k),
            "this is the *average* of each window; max pooling keeps the largest value.",
        ),
        (
            lambda x, k, stride=None: F.max_pool2d(x, k, k),
            "the stride argument is ignored: the window must move by `stride` "
            "(it defaults to kernel_size only when stride is None).",
        ),
        (
            lambda x, k, stride=None: F.max_pool2d(x, k, stride or k).clamp(min=0),
            "negative windows came out as 0: start the running maximum at -inf or at the "
            "first value of the window, not at 0.",
        ),
        (
            lambda x, k, stride=None: -F.max_pool2d(-x, k, stride or k),
            "this is the *minimum* of each window; max pooling keeps the largest value.",
        ),
        (
            lambda x, k, stride=None: F.max_pool2d(x, k, stride or 1),
            "with stride=None the window must move by kernel_size (non-overlapping "
            "windows); your default moves it by 1.",
        ),
        (
            lambda x, k, stride=None: F.max_pool2d(x, k, stride or k).transpose(-1, -2),
            "height and width are swapped in your output: the result must be "
            "(N, C, H_out, W_out); check the order in your permute.",
        ),
    ]
    return check_function(
        "cnn-max-pool",
        fn,
        _ref_max_pool,
        _cases_max_pool(),
        mistakes=mistakes,
        hint="the output has size (H - kernel_size) // stride + 1 along each spatial axis; "
        "each output pixel is the max over one window, separately for every image and channel.",
        strict=strict,
    )


def check_small_cnn(
    make_model: Callable, strict: Optional[bool] = None, epochs: int = 20, seed: int = 0
):
    """Build the learner's model, check its interface and size, train it, test it."""
    from ..data import load_digits_split, random_shift
    from ..training import accuracy, count_parameters, fit

    def within_budget(model):
        n = count_parameters(model)
        if n > PARAM_BUDGET:
            return [f"the model has {n:,} parameters; the budget is {PARAM_BUDGET:,}.",
                    "hint: convolutions are cheap (weights are shared); the dense layers after "
                    "flattening are where parameters go. Pool more, or use fewer channels or a "
                    "smaller hidden layer."]
        return None

    def train(model):
        split = load_digits_split()
        fit(model, split.train, epochs=epochs, lr=1e-2, batch_size=32, seed=seed, cosine=True,
            augment=random_shift, device=torch.device("cpu"), progress=False)
        return accuracy(model, *split.test)

    return check_trained_model(
        "cnn-small-model", make_model, "make_small_cnn", (),
        probe=torch.zeros(2, 1, 8, 8), probe_text="a batch of 2 digit images of shape (2, 1, 8, 8)",
        out_shape=(2, 10),
        shape_hint="print the shape after every layer; the Linear layer's in_features must "
        "equal channels * height * width after the last pooling, and the model ends with a "
        "Linear layer to 10 outputs (one per digit), no softmax.",
        requirements=[within_budget], train=train, bar=ACCURACY_BAR,
        score_text=lambda a: f"{a:.1%} test accuracy",
        below_bar=lambda model, acc: [
            "hint: keep at least one convolution + pooling block with ReLU; a model that is "
            "too narrow (e.g. 2 channels) cannot separate ten digits."],
        success=lambda model, acc: f"{count_parameters(model):,} parameters (budget "
        f"{PARAM_BUDGET:,}), {acc:.1%} test accuracy (bar {ACCURACY_BAR:.0%}).",
        strict=strict, seed=seed)


def shifted_accuracy(model: nn.Module, X: torch.Tensor, y: torch.Tensor, dx: int = 2) -> float:
    """Test accuracy of ``model`` on images shifted ``dx`` pixels to the right."""
    from ..data import shift_images
    from ..training import accuracy

    return accuracy(model, shift_images(X, dx=dx), y)


def check_shifted_accuracy(measure: Callable, model: nn.Module, X: torch.Tensor,
                           y: torch.Tensor, strict: Optional[bool] = None):
    """Run ``measure(model, X, y)`` and compare with the accuracy on images shifted 2 px right."""
    from ..data import shift_images
    from ..training import accuracy

    expected = shifted_accuracy(model, X, y, dx=2)
    clean = accuracy(model, X, y)
    known = {
        "this is the accuracy on the *unshifted* test images: apply "
        "`shift_images(X, dx=2)` before evaluating.": clean,
        "this is the accuracy for images shifted 2 pixels *left* (dx=-2); "
        "a shift right is dx=+2.": shifted_accuracy(model, X, y, dx=-2),
        "this is the accuracy for a shift *down* (dy=2); the exercise shifts right "
        "(dx=2).": accuracy(model, shift_images(X, dy=2), y),
        "this is a percentage: an accuracy is a fraction between 0 and 1; divide by 100.":
            100 * expected,
    }
    return check_measurement(
        "cnn-shift-experiment", measure, "measure_shifted_accuracy", (model, X, y), expected,
        known=known, model=model,
        input_text="the chapter's trained CNN and the test images, shifted 2 pixels right",
        hint="use `shift_images(X, dx=2)` and `accuracy(model, X_shifted, y)`.",
        success=lambda v: f"accuracy on images shifted 2 px right: {v:.4f} "
        f"(unshifted: {clean:.4f}, a drop of {clean - v:.1%}).",
        strict=strict)
