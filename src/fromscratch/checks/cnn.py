"""Checks for the CNN chapter's exercises."""

from __future__ import annotations

from typing import Callable, Optional

import torch
import torch.nn as nn
import torch.nn.functional as F

from .core import (
    Case,
    Evaluation,
    ModelSummary,
    accuracy_evaluation,
    call_learner,
    check_function,
    check_measurement,
    check_trained_model,
    failed,
    finish,
    model_numbers,
)
from .core import stored_numbers as core_stored_numbers

PARAM_BUDGET = 5_000
ACCURACY_BAR = 0.95


def _cases_max_pool():
    g = torch.Generator().manual_seed(0)
    r = lambda *s: torch.randn(*s, generator=g)  # noqa: E731
    return [
        Case((r(1, 1, 4, 6), 2), label="one 4x6 image, 2x2 windows"),
        Case((r(1, 1, 7, 9), 2), label="a 7x9 image (not a multiple of 2), stride=None"),
        Case((r(2, 3, 6, 6), 2), label="a batch with 3 channels"),
        Case((r(2, 2, 5, 7), 3), label="3x3 windows on 5x7 (a multiple of neither), stride=None"),
        Case((r(1, 2, 5, 5), 2), {"stride": 1}, label="overlapping windows (stride 1)"),
        Case((r(2, 1, 7, 7), 3), {"stride": 2}, label="3x3 windows, stride 2"),
        Case((r(1, 2, 8, 9), 2), {"stride": 3}, label="2x2 windows, stride 3 (gaps between)"),
        Case((-1 - r(1, 1, 4, 4).abs(), 2), label="all values negative"),
        Case((r(1, 1, 3, 5), 1), label="1x1 windows (should change nothing)"),
    ]


def _fresh_max_pool(g: torch.Generator) -> list:
    """Two inputs drawn at check time: sizes and windows no answer can have stored."""
    def draw(lo, hi):
        return int(torch.randint(lo, hi + 1, (1,), generator=g))

    out = []
    for _ in range(2):
        k = draw(1, 3)
        stride = draw(1, 3) if draw(0, 1) else None
        shape = (draw(1, 3), draw(1, 3), draw(k + 1, 11), draw(k + 1, 11))
        kwargs = {} if stride is None else {"stride": stride}
        out.append(Case((torch.randn(*shape, generator=g), k), kwargs,
                        label=f"drawn at check time: shape {shape}, {k}x{k} windows, "
                        f"stride={stride}"))
    return out


def _ref_max_pool(x, kernel_size, stride=None):
    return F.max_pool2d(x, kernel_size, kernel_size if stride is None else stride)


def _forbidden_max_pools() -> list:
    """What the max-pool exercise refuses: the course's answer and PyTorch's."""
    from ..models import cnn

    pools = [(owner, f"max_pool{d}d{suffix}") for d in (2, 1, 3)  # 2d named first
             for owner, suffix in [(F, ""), (F, "_with_indices"), (torch, ""),
                                   (torch._C._nn, "_with_indices")]]
    pools = [(owner, name) for owner, name in pools if hasattr(owner, name)]
    aten = [(torch.ops.aten, f"max_pool{d}d{suffix}") for d in (1, 2, 3)
            for suffix in ("", "_with_indices")]
    return [cnn.max_pool2d, cnn.MaxPool2d.forward, *pools, *aten]


def check_max_pool2d(fn: Callable, strict: Optional[bool] = None):
    """Compare ``fn(x, kernel_size, stride=None)`` with ``F.max_pool2d`` on nine inputs;
    calling the course's ``max_pool2d`` / ``MaxPool2d`` or PyTorch's max pooling is refused."""
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
            lambda x, k, stride=None: F.max_pool2d(x, k, stride or k, ceil_mode=True),
            "your output keeps the windows that hang over the border (ceil mode, e.g. 4x5 "
            "from a 7x9 input with 2x2 windows). A window that does not fit completely is "
            "dropped: (H - kernel_size) // stride + 1 rows, here 3x4.",
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
        hint="the output has size (H - kernel_size) // stride + 1 along each spatial axis: "
        "when H or W is not a multiple of the window, the windows that do not fit are dropped "
        "(a reshape into blocks fails there). Each output pixel is the max over one window, "
        "separately for every image and channel.",
        forbid=_forbidden_max_pools(),
        strict=strict, fresh=_fresh_max_pool,
    )


def _has_convolution(model: nn.Module):
    from ..models.cnn import Conv2d

    if any(isinstance(m, (Conv2d, nn.Conv2d)) for m in model.modules()):
        return None
    layers = ", ".join(sorted({type(m).__name__ for m in model.modules()} - {"Sequential"}))
    return [f"your model has no convolution layer (its layers: {layers}); the exercise asks "
            "for a CNN.",
            "hint: start with `Conv2d(1, channels, 3, padding=1)` (this chapter's) or "
            "`nn.Conv2d`, followed by ReLU and max pooling, before the dense layer."]


def _has_pooling(model: nn.Module):
    from ..models.cnn import MaxPool2d

    if any(isinstance(m, (MaxPool2d, nn.MaxPool2d)) for m in model.modules()):
        return None
    return ["your model has no max-pooling layer; the exercise asks for convolution and "
            "pooling.",
            "hint: add `MaxPool2d(2)` (this chapter's) or `nn.MaxPool2d(2)` after a "
            "convolution and its ReLU."]


def stored_numbers(model: nn.Module) -> int:
    """Every number the model holds or computes with: its parameters, trainable or frozen,
    its buffers, every tensor it keeps anywhere else (see
    :func:`fromscratch.checks.core.stored_numbers`) and any table it builds in ``forward``
    (see :func:`fromscratch.checks.core.model_numbers`; under the grader's judge, the
    count the answer's process reported)."""
    if isinstance(model, ModelSummary):
        return model.numbers
    return max(core_stored_numbers(model), model_numbers(model, torch.zeros(2, 1, 8, 8)))


def check_small_cnn(
    make_model: Callable, strict: Optional[bool] = None, epochs: int = 20, seed: int = 0
):
    """Build the learner's model, check that it is a CNN within the parameter budget, train
    it with the check's fixed recipe and test it."""
    from ..data import load_digits_split, random_shift
    from ..training import count_parameters, fit

    def within_budget(model):
        n = stored_numbers(model)
        if n > PARAM_BUDGET:
            frozen = n - count_parameters(model)
            return [f"the model has {n:,} parameters; the budget is {PARAM_BUDGET:,}"
                    + (f" (counting {frozen:,} frozen parameters, buffer values and other "
                       "tensors the model holds: every number the model stores counts)."
                       if frozen else "."),
                    "hint: convolutions are cheap (weights are shared); the dense layers after "
                    "flattening are where parameters go. Pool more, or use fewer channels or a "
                    "smaller hidden layer."]
        return None

    def train(model):
        split = load_digits_split()
        fit(model, split.train, epochs=epochs, lr=1e-2, batch_size=32, seed=seed, cosine=True,
            augment=random_shift, device=torch.device("cpu"), progress=False)

    return check_trained_model(
        "cnn-small-model", make_model, "make_small_cnn", (),
        probe=torch.zeros(2, 1, 8, 8), probe_text="a batch of 2 digit images of shape (2, 1, 8, 8)",
        out_shape=(2, 10),
        shape_hint="print the shape after every layer; the Linear layer's in_features must "
        "equal channels * height * width after the last pooling, and the model ends with a "
        "Linear layer to 10 outputs (one per digit), no softmax.",
        requirements=[_has_convolution, _has_pooling, within_budget], train=train, bar=ACCURACY_BAR,
        # counted again after training on real batches: state built lazily counts too
        after_training=[within_budget],
        score_text=lambda a: f"{a:.1%} test accuracy",
        below_bar=lambda model, acc: [
            "hint: keep at least one convolution + pooling block with ReLU; a model that is "
            "too narrow (e.g. 2 channels) cannot separate ten digits."],
        success=lambda model, acc: f"{stored_numbers(model):,} parameters (budget "
        f"{PARAM_BUDGET:,}), {acc:.1%} test accuracy (bar {ACCURACY_BAR:.0%}).",
        strict=strict, seed=seed, evaluation=digit_evaluation())


def digit_evaluation() -> Evaluation:
    """The test digits a trained classifier is scored on. In a notebook: the test split as
    it is. Under the grader (a generator ``g`` drawn at check time): the same images in a
    new order, each pixel moved by up to 0.01 (a sixth of one grey level), so that a model
    that looks its input up in the course's copy of the digits finds no exact match; the
    labels stay with the judge."""
    def data(g):
        from ..data import load_digits_split

        X, y = load_digits_split().test
        if g is not None:
            order = torch.randperm(len(y), generator=g)
            noise = (torch.rand(X.shape, generator=g) - 0.5) * 0.02
            X, y = X[order] + noise, y[order]
        return X, y

    return accuracy_evaluation(data)


def blank_rows(X: torch.Tensor, start: int, stop: int) -> torch.Tensor:
    """A copy of images ``X (..., H, W)`` with rows ``start:stop`` set to 0 (occluded)."""
    out = X.clone()
    out[..., start:stop, :] = 0
    return out


def check_occlusion(measure: Callable, model: nn.Module, X: torch.Tensor, y: torch.Tensor,
                    strict: Optional[bool] = None):
    """Run ``measure(model, X, y)``: the accuracy with the top half (rows 0-3) of every
    image blanked. The check computes the expected number itself."""
    from ..training import accuracy

    half = X.shape[-2] // 2
    expected = accuracy(model, blank_rows(X, 0, half), y)
    clean = accuracy(model, X, y)
    bottom = accuracy(model, blank_rows(X, half, X.shape[-2]), y)
    left = X.clone()
    left[..., :, : X.shape[-1] // 2] = 0
    known = {
        "this is the accuracy on the *unoccluded* images: set rows 0 to 3 to 0 first.": clean,
        "this is the accuracy with the *bottom* half blanked (rows 4 to 7); the top half is "
        "rows 0 to 3, `X[..., :4, :]`.": bottom,
        "this is the accuracy with the *left* half blanked (columns); the top half is the "
        "first rows: index the second-to-last axis, `X[..., :4, :]`.": accuracy(model, left, y),
        "this blanks only rows 0 to 2: the slice `:3` stops before row 3; the top half of an "
        "8-row image is `:4`.": accuracy(model, blank_rows(X, 0, half - 1), y),
        "this is a percentage: an accuracy is a fraction between 0 and 1; divide by 100.":
            100 * expected,
    }
    def fresh(g):
        keep = torch.randperm(len(X), generator=g)[: max(20, len(X) // 2)]
        Xs, ys = X[keep].clone(), y[keep]
        return ((model, Xs, ys), accuracy(model, blank_rows(Xs, 0, half), ys),
                f"the same model and {len(keep)} of the test images, chosen at check time, "
                "top half set to 0")

    given = X.clone()
    result = check_measurement(
        "cnn-occlusion", measure, "measure_top_half_blanked", (model, given, y), expected,
        known=known, model=model,
        input_text="the chapter's trained CNN and the test images, top half (rows 0-3) set to 0",
        hint="copy the images (`X.clone()`), set `X_blank[..., :4, :] = 0`, then "
        "`accuracy(model, X_blank, y)`.",
        success=lambda v: f"accuracy with the top half blanked: {v:.4f} (unoccluded: "
        f"{clean:.4f}).", strict=False, fresh=fresh)
    if result.passed:
        # the same measurement of another model: an answer must use the model it is given
        torch.manual_seed(0)
        other = nn.Sequential(nn.Flatten(), nn.Linear(X[0].numel(), 10)).eval()
        other_expected = accuracy(other, blank_rows(X, 0, half), y)
        value, problem = call_learner("cnn-occlusion", measure, "measure_top_half_blanked",
                                      (other, X.clone(), y), strict=False)
        if problem is not None:
            return finish(problem, strict)
        value = value.item() if isinstance(value, torch.Tensor) else value
        if not isinstance(value, (int, float)) or abs(value - other_expected) > 1e-6:
            from .core import direction

            how = direction(float(value), other_expected) if isinstance(value, (int, float)) \
                else "not a number"
            return failed("cnn-occlusion", [
                "input: a different model (an untrained linear classifier) and the same "
                "images, top half set to 0",
                f"received: {value}, {how}",
                "likely mistake: your function measures the chapter's `cnn_model` (or another "
                "global), not the `model` argument it is given."], strict)
    if result.passed and not torch.equal(given, X):
        return failed("cnn-occlusion", [
            "your function changed the images it was given: after the call, rows of `X` are 0.",
            "likely mistake: `X[..., :4, :] = 0` writes into the caller's tensor (the chapter's "
            "test set!). Work on a copy: `X_blank = X.clone()`."], strict)
    return finish(result, strict)
