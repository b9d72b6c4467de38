"""Checks for the autoencoder / VAE chapter's exercises."""

from __future__ import annotations

import math
from typing import Callable, Optional

import torch
import torch.nn as nn

from ..models import vae as V
from .core import Case, check_function, check_measurement, check_trained_model, failed

#: The model exercise's bars: test reconstruction RMSE (grey levels) after the check's
#: training recipe, and prior-sample FD (450 samples).
MODEL_RMSE_BAR = 2.5
MODEL_FD_BAR = 50.0  # well below the per-pixel Gaussian of the calibration (77.5)
MODEL_RECIPE = dict(epochs=40, lr=2e-3, batch_size=64, sigma=0.1)


# --- implement: the reparameterized sample and the KL term -------------------------------

def _sample_reference(mu, logvar, eps):
    return mu + torch.exp(0.5 * logvar) * eps


def _kl_reference(mu, logvar):
    return 0.5 * (mu.pow(2) + logvar.exp() - 1 - logvar).sum(dim=-1)


def _cases(with_eps: bool, g: Optional[torch.Generator] = None):
    drawn = g is not None
    g = torch.Generator().manual_seed(3) if g is None else g

    def case(n, d, label, mu_scale=1.0, lv_scale=1.0):
        mu = torch.randn(n, d, generator=g) * mu_scale
        lv = torch.randn(n, d, generator=g) * lv_scale
        args = (mu, lv, torch.randn(n, d, generator=g)) if with_eps else (mu, lv)
        return Case(args, label=label)

    if drawn:
        n, d = (int(torch.randint(1, 7, (1,), generator=g)) for _ in range(2))
        return [case(n, d, f"drawn at check time: {n} codes of {d} dimensions",
                     lv_scale=2.0)]
    return [case(1, 2, "one code of 2 dimensions"), case(4, 3, "a batch of 4"),
            case(3, 5, "log-variance 0 (sigma = 1)", lv_scale=0.0),
            case(2, 4, "large log-variances", lv_scale=3.0),
            case(5, 1, "latent size 1", mu_scale=2.0)]


def check_reparameterization(sample_fn: Callable, kl_fn: Callable,
                             strict: Optional[bool] = None):
    """``sample_fn(mu, logvar, eps)`` against ``mu + exp(logvar / 2) * eps`` and
    ``kl_fn(mu, logvar)`` against the closed-form KL from ``N(0, I)`` (per example)."""
    import torch.distributions as dist

    # the course's functions and PyTorch's distributions (rsample, every KL formula)
    forbid = [V.reparameterize, V.kl_divergence, "torch.distributions.kl",
              dist.Normal.rsample, dist.Normal.entropy,
              dist.Independent.rsample, dist.MultivariateNormal.rsample]
    sample_mistakes = [
        (lambda mu, lv, eps: mu + torch.exp(lv) * eps,
         "you scaled eps by exp(logvar), the variance; the standard deviation is "
         "exp(logvar / 2)."),
        (lambda mu, lv, eps: mu + lv * eps,
         "you used logvar as the standard deviation; it is the log of the variance, so "
         "sigma = exp(logvar / 2)."),
        (lambda mu, lv, eps: mu + torch.randn_like(mu) * torch.exp(0.5 * lv),
         "you drew new noise instead of using eps"),
    ]
    result = check_function(
        "vae-reparameterize", sample_fn, _sample_reference, _cases(True),
        mistakes=sample_mistakes, forbid=forbid, strict=strict,
        fresh=lambda g: _cases(True, g),
        hint="z = mu + sigma * eps with sigma = exp(logvar / 2), elementwise; use the eps "
        "you are given (that is the trick: all randomness sits in eps).")
    if not result.passed:
        return result
    kl_mistakes = [
        (lambda mu, lv: -_kl_reference(mu, lv),
         "the sign is flipped: a KL divergence is never negative."),
        (lambda mu, lv: 2 * _kl_reference(mu, lv), "the factor 0.5 is missing"),
        (lambda mu, lv: 0.5 * (mu.pow(2) + lv.exp() - 1 - lv),
         "you returned one KL per latent dimension; sum over the last axis, giving one "
         "number per example"),
        (lambda mu, lv: 0.5 * (mu.pow(2) + lv.exp() - 1 - lv).mean(dim=-1),
         "you averaged over the latent dimensions; the KL of independent dimensions is "
         "their sum"),
        (lambda mu, lv: 0.5 * (mu.pow(2) + lv.exp().pow(2) - 1 - 2 * lv).sum(dim=-1),
         "you treated logvar as log(sigma): with logvar = log(sigma^2) the variance is "
         "exp(logvar)"),
    ]
    kl_result = check_function(
        "vae-reparameterize", kl_fn, _kl_reference, _cases(False), mistakes=kl_mistakes,
        forbid=forbid, strict=strict, fresh=lambda g: _cases(False, g),
        hint="KL(N(mu, sigma^2) || N(0, 1)) = 0.5 (mu^2 + sigma^2 - 1 - log sigma^2) per "
        "dimension, summed over the latent axis: shape (n,).")
    if kl_result.passed:
        kl_result.lines = ["the sample and the KL term match the reference on all "
                           f"{kl_result.cases_total} cases each."]
    return kl_result


# --- model: a VAE of one's own reaching the bars ------------------------------------------

def _train_and_score(model, split, generator_seed: int = 0):
    """The check's recipe: Adam, batches of 64, reconstruction / (2 sigma^2) + KL."""
    from ..generative import fd

    X = split.X_train.reshape(-1, 64)
    g = torch.Generator().manual_seed(generator_seed)
    opt = torch.optim.Adam(model.parameters(), lr=MODEL_RECIPE["lr"])
    bs, sigma = MODEL_RECIPE["batch_size"], MODEL_RECIPE["sigma"]
    model.train()
    for _ in range(MODEL_RECIPE["epochs"]):
        order = torch.randperm(len(X), generator=g)
        for i in range(0, len(X), bs):
            xb = X[order[i : i + bs]]
            mu, logvar = model.encode_distribution(xb)
            z = _sample_reference(mu, logvar, torch.randn(mu.shape, generator=g))
            x_hat = model.decode(z).reshape(len(xb), 64)
            loss = ((x_hat - xb).pow(2).sum(-1) / (2 * sigma**2)
                    + _kl_reference(mu, logvar)).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
    model.eval()
    with torch.no_grad():
        x_hat = model.decode(model.encode_distribution(split.X_test)[0])
        rmse = math.sqrt(((x_hat.reshape(-1, 64) - split.X_test.reshape(-1, 64)) * 16)
                         .pow(2).mean().item())
        latent = model.encode_distribution(split.X_test[:1])[0].shape[-1]
        z = torch.randn(450, latent, generator=torch.Generator().manual_seed(0))
        samples = model.decode(z).reshape(-1, 1, 8, 8).clamp(0, 1) * 16
    return rmse, fd(samples), samples


def check_vae_model(make_vae: Callable, strict: Optional[bool] = None, latent: int = 8):
    """Build ``make_vae(latent)`` (one's own VAE: ``encode_distribution``, ``decode``,
    ``forward``), train it with the check's recipe and require test RMSE and prior-sample
    FD bars. The course's own ``VAE`` / ``Autoencoder`` classes are refused."""
    from ..data import load_digits_split

    split = load_digits_split()
    scores = {}

    def requirements(model):
        for name in ("encode_distribution", "decode"):
            if not callable(getattr(model, name, None)):
                return [f"the model has no method `{name}`.",
                        "hint: encode_distribution(x) returns (mu, logvar), each "
                        "(n, latent); decode(z) returns images (n, 1, 8, 8) in [0, 1]."]
        with torch.no_grad():
            out = model.encode_distribution(split.X_test[:3])
            if not (isinstance(out, tuple) and len(out) == 2):
                return ["encode_distribution(x) must return a pair (mu, logvar)."]
            mu, logvar = out
            if tuple(mu.shape) != (3, latent) or tuple(logvar.shape) != (3, latent):
                return [f"encode_distribution on 3 images gave shapes {tuple(mu.shape)} and "
                        f"{tuple(logvar.shape)}; expected a latent of size {latent}: "
                        f"(3, {latent}) each."]
            images = model.decode(torch.zeros(3, latent))
            if tuple(images.shape) != (3, 1, 8, 8):
                return [f"decode on 3 codes gave shape {tuple(images.shape)}; expected "
                        "(3, 1, 8, 8) (reshape the 64 outputs)."]
            if images.min() < 0 or images.max() > 1:
                return ["decode gives values outside [0, 1]; end the decoder with a "
                        "sigmoid, as the images are scaled to [0, 1]."]
        return None

    def train(model):
        scores["rmse"], scores["fd"], scores["samples"] = _train_and_score(model, split)
        # one score for check_trained_model: passes if both bars are met
        return max(scores["rmse"] / MODEL_RMSE_BAR, scores["fd"] / MODEL_FD_BAR)

    def text(v):
        if "rmse" not in scores or v == 1.0:
            return (f"test RMSE <= {MODEL_RMSE_BAR} grey levels and prior-sample FD <= "
                    f"{MODEL_FD_BAR}")
        return f"test RMSE {scores['rmse']:.2f} grey levels, prior-sample FD {scores['fd']:.1f}"

    return check_trained_model(
        "vae-model", make_vae, "make_vae", (latent,), probe=split.X_test[:3],
        probe_text="3 test digits of shape (3, 1, 8, 8) in [0, 1]", out_shape=(3, 1, 8, 8),
        shape_hint="forward(x) returns the reconstruction from the mean code, shape "
        "(n, 1, 8, 8).", requirements=[requirements], train=train, bar=1.0,
        score_text=text, higher_is_better=False,
        below_bar=lambda m, s: ["hint: give the encoder and decoder a hidden layer or two "
                                "of 128 units, and return the log-variance (not the "
                                "standard deviation) from the encoder."],
        after_training=[lambda model: _through_latent(model, split),
                        lambda model: _not_copies(scores["samples"])],
        forbid=[V.reparameterize, V.kl_divergence], refuse_classes=[V.Autoencoder],
        strict=strict)


def _through_latent(model, split) -> Optional[list]:
    """``None`` if the reconstruction is computed through the latent code only: decode(z)
    gives the same images for the same z whatever the model encoded last, and forward(x)
    is decode of x's mean code. Else the feedback lines (a model that hands its input
    around the bottleneck reconstructs perfectly and learns nothing)."""
    x1, x2 = split.X_test[:8], split.X_test[8:16]
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            mu = model.encode_distribution(x1)[0]
            first = model.decode(mu)
            model.encode_distribution(x2)
            model(x2)
            again = model.decode(mu)
            out = model(x1)
    finally:
        model.train(was_training)
    if not torch.allclose(first, again, atol=1e-5):
        return ["decode(z) depends on more than z: the same codes gave other images after the "
                "model had encoded other digits, so the reconstruction passes the input around "
                "the bottleneck.",
                "hint: decode must compute the image from z alone; keep no state between calls."]
    if out.shape != first.shape or not torch.allclose(out, first, atol=1e-5):
        return ["forward(x) is not decode(mu) of x's mean code mu: the reconstruction must go "
                "through the latent code (the bottleneck) only.",
                "hint: forward(x): mu, logvar = self.encode_distribution(x); return "
                "self.decode(mu)."]
    return None


def _not_copies(samples) -> Optional[list]:
    """``None`` unless the prior samples are copies of real digits (see
    :func:`fromscratch.generative.copy_test`)."""
    from .. import generative as gen

    verdict = gen.copy_test(samples)
    return gen.copy_lines(verdict) if verdict["copying"] else None


# --- experiment: reconstruction RMSE in grey levels ---------------------------------------

def check_reconstruction_rmse(measure: Callable, model: nn.Module, X: torch.Tensor,
                              strict: Optional[bool] = None):
    """``measure(model, X)``: RMSE in grey levels of the reconstructions from the mean code."""
    model.eval()
    with torch.no_grad():
        diff = (model(X) - X).reshape(len(X), -1)
    mse = diff.pow(2).mean().item()
    expected = math.sqrt(mse) * 16
    known = {
        "this is the RMSE on the [0, 1] scale; multiply the errors by 16 for grey levels.":
        math.sqrt(mse),
        "this is the mean squared error; RMSE is its square root.": mse * 256,
        "this is the mean squared error on the [0, 1] scale; take the square root and "
        "multiply by 16.": mse,
        "this is the mean of per-image RMSEs; the RMSE is the root of the mean squared "
        "error over all pixels of all images.":
        (diff.pow(2).mean(dim=1).sqrt().mean() * 16).item(),
        "this is the mean absolute error, not the root mean squared one.":
        diff.abs().mean().item() * 16,
    }
    def fresh(g):
        keep = torch.randperm(len(X), generator=g)[: max(20, len(X) // 2)]
        Xs = X[keep].clone()
        with torch.no_grad():
            value = math.sqrt((model(Xs) - Xs).pow(2).mean().item()) * 16
        return ((model, Xs), value, f"the same VAE and {len(keep)} of the test digits, "
                "chosen at check time")

    return check_measurement(
        "vae-rmse", measure, "measure_rmse", (model, X), expected, known=known, fresh=fresh,
        forbid=[V.reconstruction_rmse], rel_tol=1e-4,
        input_text=f"the chapter's VAE and {len(X)} test digits in [0, 1]",
        hint="reconstruct with model(X) in eval mode without gradients (the mean code, no "
        "sampling), take the squared differences of all pixels, their mean, the root, "
        "times 16.",
        success=lambda v: f"reconstruction RMSE {v:.3f} grey levels (the digits run 0-16).",
        strict=strict)


__all__ = ["check_reparameterization", "check_vae_model", "check_reconstruction_rmse",
           "failed"]
