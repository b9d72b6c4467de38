"""Checks for the diffusion chapter's exercises."""

from __future__ import annotations

import math
from typing import Callable, Optional

import torch
import torch.nn as nn

from ..models import diffusion as D
from .core import (
    Case,
    UsedForbidden,
    call_factory,
    call_guarded,
    check_function,
    check_measurement,
    course_model_inside,
    describe,
    failed,
    forbidden,
    fresh_generator,
    passed,
    used_forbidden,
)

#: The model exercise: the check's training budget and its bars (DDIM, 25 steps,
#: guidance w = 2, 450 samples with labels at the training frequencies). The FD bar is
#: the chapter's: the course plan's 22 on its prototype classifier, translated to the
#: shipped one as chapter 8 does (the same fraction of the full-covariance Gaussian's FD).
MODEL_STEPS = 800
MODEL_ACCURACY_BAR = 0.95
#: Copies of real digits (stored, or moved by a pixel) are refused by the shared copy
#: test, :func:`fromscratch.generative.copy_test`.


def fd_bar() -> float:
    """The chapter's DDIM-25 bar: the course plan's 22, translated (5.8)."""
    from ..generative import translate_prototype_bar

    return translate_prototype_bar(22.0)


# --- implement: one jump of the forward process and one DDIM step -------------------------

def _add_noise_reference(x0, alpha_bar, noise):
    return math.sqrt(alpha_bar) * x0 + math.sqrt(1 - alpha_bar) * noise


def _ddim_reference(x_t, eps, alpha_bar, alpha_bar_next):
    x0 = (x_t - math.sqrt(1 - alpha_bar) * eps) / math.sqrt(alpha_bar)
    return math.sqrt(alpha_bar_next) * x0 + math.sqrt(1 - alpha_bar_next) * eps


def _noise_cases():
    g = torch.Generator().manual_seed(5)
    drawn = torch.rand(2, generator=fresh_generator()).mul(0.9).add(0.05).tolist()  # fresh

    def case(n, ab, label):
        return Case((torch.rand(n, 64, generator=g) * 2 - 1, ab,
                     torch.randn(n, 64, generator=g)), label=label)

    return [case(2, 0.5, "alpha_bar 0.5"), case(3, 0.99, "little noise (alpha_bar 0.99)"),
            case(1, 0.01, "mostly noise (alpha_bar 0.01)"), case(4, 0.3, "alpha_bar 0.3")] + \
        [case(2, ab, f"alpha_bar {ab:.4f}") for ab in drawn]


def _ddim_cases():
    g = torch.Generator().manual_seed(6)
    a, b = sorted(torch.rand(2, generator=fresh_generator()).mul(0.9).add(0.05).tolist())

    def case(n, ab, ab_next, label):
        return Case((torch.randn(n, 64, generator=g), torch.randn(n, 64, generator=g),
                     ab, ab_next), label=label)

    return [case(2, 0.2, 0.6, "from alpha_bar 0.2 to 0.6"),
            case(3, 0.05, 0.3, "an early, noisy step: 0.05 to 0.3"),
            case(1, 0.9, 1.0, "the last step, to alpha_bar 1 (the clean image)"),
            case(2, 0.5, 0.5, "a step to the same noise level (nothing changes)"),
            case(2, a, b, f"from alpha_bar {a:.4f} to {b:.4f}")]


def _dtype_problem(exercise, fn, name, cases, strict, forbid=()):
    """Feedback if ``fn`` returns another dtype than its inputs have (e.g. float64 from
    float32), which the value comparison alone would let through."""
    for case in cases:
        try:
            out = call_guarded(fn, tuple(a.clone() if isinstance(a, torch.Tensor) else a
                                         for a in case.args), forbid=forbid)
        except UsedForbidden as exc:
            return used_forbidden(exercise, name, exc.name, strict)
        except Exception:  # reported with its input by check_function
            return None
        if isinstance(out, torch.Tensor) and out.dtype != case.args[0].dtype:
            return failed(exercise, [
                f"`{name}` returned dtype {out.dtype} for inputs of dtype "
                f"{case.args[0].dtype}; keep the inputs' dtype."], strict)
    return None


def _check_part(fn, name, reference, cases, mistakes, forbid, strict, hint):
    """One of the two functions: every case against the reference (``check_function``
    also refuses changed inputs), then the output's dtype."""
    result = check_function("diffusion-noise-ddim", fn, reference, cases,
                            mistakes=mistakes, forbid=forbid, strict=strict, hint=hint)
    if not result.passed:
        return result
    return _dtype_problem("diffusion-noise-ddim", fn, name, cases, strict, forbid) or result


def check_noise_and_ddim(add_noise: Callable, ddim_step: Callable,
                         strict: Optional[bool] = None):
    """``add_noise(x0, alpha_bar, noise)`` against ``q(x_t | x_0)``'s closed form and
    ``ddim_step(x_t, eps, alpha_bar, alpha_bar_next)`` against DDIM's (``eta = 0``)."""
    forbid = [D.Schedule.add_noise, D.sample_ddim, D.sample_ddpm]
    noise_mistakes = [
        (lambda x0, ab, n: ab * x0 + (1 - ab) * n,
         "you used alpha_bar and 1 - alpha_bar as weights; they are variances, the "
         "weights are their square roots."),
        (lambda x0, ab, n: x0 + math.sqrt(1 - ab) * n,
         "the image is not shrunk: multiply x0 by sqrt(alpha_bar), so that the total "
         "variance stays 1."),
        (lambda x0, ab, n: math.sqrt(1 - ab) * x0 + math.sqrt(ab) * n,
         "the weights are swapped: sqrt(alpha_bar) goes with the image, sqrt(1 - "
         "alpha_bar) with the noise."),
    ]
    result = _check_part(
        add_noise, "add_noise", _add_noise_reference, _noise_cases(), noise_mistakes,
        forbid, strict,
        hint="x_t = sqrt(alpha_bar) * x0 + sqrt(1 - alpha_bar) * noise (alpha_bar is a "
        "number; use math.sqrt or ** 0.5).")
    if not result.passed:
        return result

    def no_x0(x, e, ab, abn):
        return math.sqrt(abn) * x + math.sqrt(1 - abn) * e

    def x0_without_sqrt(x, e, ab, abn):
        x0 = (x - (1 - ab) * e) / ab
        return math.sqrt(abn) * x0 + math.sqrt(1 - abn) * e

    def returns_x0(x, e, ab, abn):
        return (x - math.sqrt(1 - ab) * e) / math.sqrt(ab)

    ddim_mistakes = [
        (no_x0, "you re-noised x_t itself; first estimate the clean image x0_hat = "
         "(x_t - sqrt(1 - alpha_bar) eps) / sqrt(alpha_bar), then re-noise x0_hat."),
        (x0_without_sqrt, "x0_hat needs square roots: (x_t - sqrt(1 - alpha_bar) eps) / "
         "sqrt(alpha_bar)."),
        (returns_x0, "you returned the clean-image estimate x0_hat; the step goes on to "
         "the next noise level: sqrt(alpha_bar_next) x0_hat + sqrt(1 - alpha_bar_next) "
         "eps."),
    ]
    ddim = _check_part(
        ddim_step, "ddim_step", _ddim_reference, _ddim_cases(), ddim_mistakes, forbid,
        strict, hint="x0_hat = (x_t - sqrt(1 - alpha_bar) eps) / sqrt(alpha_bar); then "
        "sqrt(alpha_bar_next) x0_hat + sqrt(1 - alpha_bar_next) eps (no fresh noise).")
    if ddim.passed:
        ddim.lines = [f"both functions match the reference on all {ddim.cases_total} "
                      "cases each."]
    return ddim


# --- model: a denoiser of one's own ---------------------------------------------------------

def _model_problems(model, x, t, y):
    """Feedback lines if ``model(x, t, y)`` does not have the exercise's interface."""
    if not isinstance(model, nn.Module):
        return [f"make_denoiser() must return an nn.Module, received {describe(model)}"]
    inside = course_model_inside(model, [D.Denoiser])
    if inside:
        return inside
    with torch.no_grad():
        try:
            out = model(x, t, y)
            out_none = model(x, t, None)
        except Exception as exc:
            return [f"calling model(x, t, y) on x {tuple(x.shape)}, t {tuple(t.shape)} "
                    f"(integer steps 0-999) and y {tuple(y.shape)} (labels, -1 = no "
                    f"label), and model(x, t, None), raised {type(exc).__name__}: {exc}",
                    "hint: forward(self, x, t, y=None); embed t (e.g. sinusoidal "
                    "features or nn.Embedding(1000, h)) and y (nn.Embedding(11, h), with "
                    "index 10 for 'no label': replace y = -1 and y = None by 10)."]
        if not isinstance(out, torch.Tensor) or tuple(out.shape) != tuple(x.shape):
            return [f"model(x, t, y) on x of shape {tuple(x.shape)} returned "
                    f"{describe(out)}; expected the predicted noise, shape "
                    f"{tuple(x.shape)}."]
        t_other = torch.full_like(t, 999) - t
        if torch.allclose(model(x, t_other, y), out, atol=1e-6):
            return ["the output does not change with the step t: the same x at t and at "
                    "999 - t gives the same prediction.",
                    "hint: the network must know how much noise there is; add an "
                    "embedding of t to its hidden layer."]
        y_other = (y + 1) % 10
        if torch.allclose(model(x, t, y_other), out, atol=1e-6):
            return ["the output does not change with the label y: labels 0-9 all give "
                    "the same prediction, so guidance has nothing to work with.",
                    "hint: add an embedding of y to the hidden layer."]
        if torch.allclose(out_none, out, atol=1e-6):
            return ["model(x, t, None) gives the same output as model(x, t, y): 'no "
                    "label' must be an input of its own (e.g. embedding index 10)."]
        out_minus = model(x, t, torch.full_like(y, -1))
        if not torch.allclose(out_minus, out_none, atol=1e-5):
            return ["model(x, t, y) with every label -1 differs from model(x, t, None); "
                    "both mean 'no label' (guidance and label dropout use -1).",
                    "hint: map -1 to the 'no label' embedding, e.g. torch.where(y < 0, "
                    "10, y); y % 10 would turn it into the digit 9."]
    return None


def check_denoiser(make_denoiser: Callable, strict: Optional[bool] = None):
    """Build ``make_denoiser()``, check its interface (``model(x, t, y)``, noise-shaped
    output that depends on ``t`` and ``y``), train it with the chapter's loop for
    :data:`MODEL_STEPS` steps and require FD and label-accuracy bars (DDIM-25, w = 2)."""
    from .. import generative as gen
    from ..data import load_digits_split

    exercise = "diffusion-denoiser"
    model, problem = call_factory(exercise, make_denoiser, "make_denoiser", (), strict,
                                  0, [(D.Denoiser, "__init__")])
    if problem is not None:
        return problem
    split = load_digits_split()
    X = D.to_model_space(split.X_train * 16)
    g = torch.Generator().manual_seed(0)
    x, t = torch.randn(4, 64, generator=g), torch.tensor([0, 10, 500, 990])
    y = torch.tensor([0, 3, -1, 9])
    try:
        with forbidden(D.Denoiser.forward):
            lines = _model_problems(model, x, t, y)
    except UsedForbidden as exc:
        return used_forbidden(exercise, "make_denoiser", exc.name, strict)
    if lines:
        return failed(exercise, lines, strict)
    schedule = D.Schedule(1000, "cosine")
    try:
        with forbidden(D.Denoiser.forward):
            ema, _ = D.train_diffusion(model, schedule, X, split.y_train,
                                       steps=MODEL_STEPS, lr=3e-3, label_dropout=0.15,
                                       ema_decay=0.99)
            labels = split.y_train[torch.randint(len(X), (450,), generator=g)]
            samples = D.to_grey_levels(D.sample_ddim(
                ema, schedule, 450, 25, y=labels, guidance=2.0,
                generator=torch.Generator().manual_seed(0)))
    except UsedForbidden as exc:
        return used_forbidden(exercise, "make_denoiser", exc.name, strict)
    except Exception as exc:
        return failed(exercise, [f"training or sampling your model raised "
                                 f"{type(exc).__name__}: {exc}"], strict)
    fd = gen.fd(samples)
    accuracy = gen.label_accuracy(samples, labels)
    copies = gen.copy_test(samples)
    bar = fd_bar()
    summary = (f"after {MODEL_STEPS} training steps, 450 DDIM-25 samples at w = 2: "
               f"FD {fd:.2f} (bar {bar}), label accuracy {accuracy:.3f} "
               f"(bar {MODEL_ACCURACY_BAR})")
    if copies["copying"]:
        return failed(exercise, [summary, "but " + gen.copy_lines(copies)[0],
                                 "hint: the network must learn to denoise, not store the "
                                 "training set (or digits moved by a pixel)."], strict)
    if fd <= bar and accuracy >= MODEL_ACCURACY_BAR:
        return passed(exercise, summary + ".", strict)
    hint = ("hint: give the MLP two or three hidden layers of 256 units with SiLU, add "
            "the embeddings of t and y to every hidden layer (not only the first), and "
            "keep the output layer linear (the noise is unbounded: no tanh or sigmoid).")
    return failed(exercise, [summary, "expected: both bars met", hint], strict)


# --- experiment: how much noise does a digit survive? ---------------------------------------

def check_accuracy_under_noise(measure: Callable, images: torch.Tensor,
                               labels: torch.Tensor, t: int, schedule: D.Schedule,
                               strict: Optional[bool] = None):
    """``measure(images, labels, t, schedule)``: the FD classifier's accuracy on
    ``images`` (grey levels) noised to step ``t`` with the noise of
    ``torch.Generator().manual_seed(0)``, mapped back to clipped grey levels. Checked at
    ``t`` and at a second step whose neighbours give other accuracies (so that an
    off-by-one step index shows)."""
    from .. import generative as gen

    x0 = D.to_model_space(images)
    noise = torch.randn(x0.shape, generator=torch.Generator().manual_seed(0))

    def acc(x):
        return gen.label_accuracy(D.to_grey_levels(x), labels)

    def at(step):
        ab = float(schedule.alpha_bar[step])
        return acc(math.sqrt(ab) * x0 + math.sqrt(1 - ab) * noise)

    second = next((s for s in range(max(2, schedule.T // 2), schedule.T - 1)
                   if at(s - 1) != at(s) != at(s + 1)), None)
    def fresh(g):
        step = int(torch.randint(schedule.T // 10, schedule.T - schedule.T // 10, (1,),
                                 generator=g))
        keep = torch.randperm(len(images), generator=g)[: max(50, len(images) // 2)]
        sub_images, sub_labels = images[keep].clone(), labels[keep]
        x = D.to_model_space(sub_images)
        eps = torch.randn(x.shape, generator=torch.Generator().manual_seed(0))
        ab = float(schedule.alpha_bar[step])
        value = gen.label_accuracy(D.to_grey_levels(math.sqrt(ab) * x + math.sqrt(1 - ab)
                                                    * eps), sub_labels)
        return ((sub_images, sub_labels, step, schedule), value,
                f"{len(keep)} of the digits and step t = {step}, chosen at check time")

    result = None
    steps = [t] + ([second] if second is not None and second != t else [])
    for step in steps:
        ab = float(schedule.alpha_bar[step])
        expected = at(step)
        known = {
            "you weighted by alpha_bar and 1 - alpha_bar; the weights are their square "
            "roots.": acc(ab * x0 + (1 - ab) * noise),
            "the noise was added in grey levels (0-16) instead of the model's [-1, 1] "
            "space; map with D.to_model_space first.":
            gen.label_accuracy((math.sqrt(ab) * images + math.sqrt(1 - ab) * noise
                                .reshape(images.shape)).clamp(0, 16), labels),
            "the image was not shrunk by sqrt(alpha_bar).":
            acc(x0 + math.sqrt(1 - ab) * noise),
            "you returned the error rate, 1 - accuracy.": 1 - expected,
            "you used alpha_bar of step t - 1 (or the product of the alphas before t): "
            "alpha_bar[t] includes step t itself.": at(step - 1),
            "you used alpha_bar of step t + 1; alpha_bar[t] is the one for step t.":
            at(step + 1),
        }
        known = {k: v for k, v in known.items() if v != expected}
        result = check_measurement(
            "diffusion-noise-accuracy", measure, "accuracy_under_noise",
            (images, labels, step, schedule), expected, known=known, rel_tol=1e-6,
            abs_tol=1e-9, forbid=[D.Schedule.add_noise],
            input_text=f"{len(images)} test digits, step t = {step} (alpha_bar {ab:.3f})",
            hint="x0 = D.to_model_space(images); noise = torch.randn(x0.shape, generator="
            "torch.Generator().manual_seed(0)); x_t = sqrt(alpha_bar) x0 + sqrt(1 - "
            "alpha_bar) noise; then gen.label_accuracy(D.to_grey_levels(x_t), labels).",
            random_hint="likely mistake: the noise is drawn from the global random "
            "generator (torch.randn(shape) or randn_like); draw it with generator="
            "torch.Generator().manual_seed(0), so that the measurement repeats.",
            success=lambda v, step=step: f"accuracy {v:.3f} at step {step}.",
            strict=strict, fresh=fresh if step == steps[-1] else None)
        if not result.passed:
            return result
    return result


__all__ = ["check_noise_and_ddim", "check_denoiser", "check_accuracy_under_noise"]
