"""Checks for the CNN chapter's exercises."""

from __future__ import annotations

from typing import Callable, Optional

import torch
import torch.nn as nn
import torch.nn.functional as F

from .core import (
    Case,
    call_factory,
    call_measurement,
    check_function,
    compare,
    describe,
    failed,
    passed,
)

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

    ex = "cnn-small-model"
    model, problem = call_factory(ex, make_model, "make_small_cnn", (), strict, seed)
    if problem is not None:
        return problem
    x = torch.zeros(2, 1, 8, 8)
    try:
        out = model(x)
    except Exception as exc:
        return failed(ex, [
            f"the model raised {type(exc).__name__}: {exc}",
            "input: a batch of 2 digit images of shape (2, 1, 8, 8)",
            "hint: print the shape after every layer; the Linear layer's in_features must "
            "equal channels * height * width after the last pooling.",
        ], strict)
    if compare(torch.zeros(2, 10), out, atol=float("inf")) is not None:
        return failed(ex, [
            "input: a batch of 2 digit images of shape (2, 1, 8, 8)",
            f"expected: logits of shape (2, 10); received: {describe(out)}",
            "hint: end with a Linear layer to 10 outputs (one per digit), no softmax.",
        ], strict)
    n_params = count_parameters(model)
    if n_params > PARAM_BUDGET:
        return failed(ex, [
            f"the model has {n_params:,} parameters; the budget is {PARAM_BUDGET:,}.",
            "hint: convolutions are cheap (weights are shared); the dense layers after "
            "flattening are where parameters go. Pool more, or use fewer channels or a "
            "smaller hidden layer.",
        ], strict)
    split = load_digits_split()
    torch.manual_seed(seed)
    fit(model, split.train, epochs=epochs, lr=1e-2, batch_size=32, seed=seed, cosine=True,
        augment=random_shift, device=torch.device("cpu"), progress=False)
    acc = accuracy(model, *split.test)
    if acc < ACCURACY_BAR:
        return failed(ex, [
            f"after {epochs} epochs of training the model reaches {acc:.1%} test accuracy; "
            f"the bar is {ACCURACY_BAR:.0%} (with {n_params:,} parameters).",
            "hint: keep at least one convolution + pooling block with ReLU; a model that is "
            "too narrow (e.g. 2 channels) cannot separate ten digits.",
        ], strict)
    return passed(ex, f"{n_params:,} parameters (budget {PARAM_BUDGET:,}), "
                  f"{acc:.1%} test accuracy (bar {ACCURACY_BAR:.0%}).", strict)


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

    ex = "cnn-shift-experiment"
    value, problem = call_measurement(ex, measure, "measure_shifted_accuracy",
                                      (model, X, y), strict)
    if problem is not None:
        return problem
    if not 0.0 <= value <= 1.0:
        return failed(ex, [f"an accuracy is a fraction between 0 and 1, received {value:.4g}",
                           "hint: if you computed a percentage, divide by 100."], strict)
    expected = shifted_accuracy(model, X, y, dx=2)
    clean = accuracy(model, X, y)
    if abs(value - expected) < 1e-6:
        return passed(ex, f"accuracy on images shifted 2 px right: {value:.4f} "
                      f"(unshifted: {clean:.4f}, a drop of {clean - value:.1%}).", strict)
    known = {
        "this is the accuracy on the *unshifted* test images: apply "
        "`shift_images(X, dx=2)` before evaluating.": clean,
        "this is the accuracy for images shifted 2 pixels *left* (dx=-2); "
        "a shift right is dx=+2.": shifted_accuracy(model, X, y, dx=-2),
        "this is the accuracy for a shift *down* (dy=2); the exercise shifts right "
        "(dx=2).": accuracy(model, shift_images(X, dy=2), y),
    }
    lines = ["input: the chapter's trained CNN and the test images, shifted 2 pixels right",
             f"expected: {expected:.4f}", f"received: {value:.4f}"]
    for message, wrong in known.items():
        if abs(value - wrong) < 1e-6:
            lines.append(f"likely mistake: {message}")
            break
    else:
        lines.append("hint: use `shift_images(X, dx=2)` and `accuracy(model, X_shifted, y)`.")
    return failed(ex, lines, strict)
