"""One sample-quality measure shared by the generative chapters (autoencoder/VAE, GAN, diffusion).

A generator's samples are compared with real digits in the feature space of a small digits
classifier (a :class:`~fromscratch.models.cnn.DigitsCNN` from chapter 1), the way the
Frechet Inception Distance (FID) compares photos in the feature space of an Inception
network (Heusel et al. 2017, "GANs trained by a two time-scale update rule converge to a
local Nash equilibrium"). Both sets of features are summarised by a Gaussian (mean and
covariance) and the Frechet distance between the two Gaussians is the score:

    FD = ||mu_1 - mu_2||^2 + Tr(S_1 + S_2 - 2 (S_1 S_2)^(1/2))     (lower is better, 0 = same)

The classifier ships as a small weights file (``data/fd_classifier.pt``) that
``tools/train_fd_classifier.py`` trains deterministically in seconds on a CPU; every
chapter loads the same weights, so their numbers compare side by side.

Which layer: the *penultimate* one, the 64 units of the hidden layer that feeds the last
linear layer. The classes are separated there (the decision is a ReLU and one linear map
away), so it holds what the classifier learned makes a digit a digit (strokes and their
arrangement) in a few numbers per image. Earlier, the conv feature maps are closer to
pixels (they reward pixel statistics, not shapes); later, the 10 logits throw most of it
away and saturate: pure noise gets a confident label (see :func:`calibrate_fd`), which is
why classifier confidence alone is no score. The features are taken *before* the ReLU:
after it, 29 of the 64 units are zero on every real digit, so their covariance is singular
and FD would be blind to whatever those units see in a generator's samples.

Next to FD, three measures catch what a single distance hides:

- :func:`class_entropy`: are all ten digits generated (ln 10 = 2.30 nats), or one (0)?
- :func:`nearest_train_distance`: does the generator copy its training images (0)?
  :func:`copy_test` asks the same of the checks' way: shift-aware, in feature space.
- :func:`label_accuracy`: does a class-conditional generator draw the digit it was asked for?

Images are in the digits' own grey levels, 0 to 16 (``sklearn.datasets.load_digits``);
:func:`~fromscratch.data.load_digits_split` divides by 16, so multiply its images by 16.
FD is biased upwards for small sample sets: compare FDs computed from the same number
of samples (the calibration uses 450, the size of the held-out test split).
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict
from functools import lru_cache
from pathlib import Path
from typing import Optional, Tuple

import numpy as np
import torch

from .data.digits import load_digits_split, random_shift
from .models.cnn import CNNConfig, DigitsCNN
from .training import accuracy, fit

#: The digits' grey levels run from 0 to this value.
DIGIT_MAX = 16.0
#: How far (in grey levels) a value may lie outside 0-16 before it counts as a mistake.
RANGE_TOLERANCE = 0.5
#: The classifier's size: chapter 1's network, narrower, so its weights stay small (about 55 kB).
FD_CLASSIFIER_CONFIG = CNNConfig(channels=(16, 32), hidden=64, dropout=0.0)
#: Chapter 1's recipe (Adam, cosine decay, +-1 pixel shifts), a few more epochs.
FD_TRAIN_RECIPE = dict(epochs=40, lr=3e-3, batch_size=32, cosine=True)
WEIGHTS_FILE = Path(__file__).resolve().parent / "data" / "fd_classifier.pt"
CALIBRATION_FILE = Path(__file__).resolve().parent / "data" / "fd_calibration.json"

#: The sample sets of :func:`calibrate_fd`, from a perfect generator to a useless one.
CALIBRATION_SAMPLES = {
    "real": "held-out real digits (the test split)",
    "noisy": "held-out real digits + Gaussian noise, sigma 2 grey levels",
    "gaussian_full": "a full-covariance Gaussian fitted to the training pixels",
    "gaussian_diagonal": "a per-pixel (diagonal) Gaussian fitted to the training pixels",
    "uniform": "uniform noise in 0-16",
}


# ---------------------------------------------------------------------------------------
# The classifier: trained once by tools/train_fd_classifier.py, shipped, loaded everywhere
# ---------------------------------------------------------------------------------------


def train_fd_classifier(seed: int = 0) -> Tuple[DigitsCNN, float]:
    """Train the feature classifier from scratch: ``(model, test_accuracy)``.

    Deterministic given ``seed``: the weights come from ``torch.manual_seed(seed)``, the data
    order and shifts from ``fit``'s own generator. Training runs on the CPU in float64, so
    that the small rounding differences between CPUs stay far too small to change the
    result; the model is returned in float32 (as shipped), in eval mode.
    """
    split = load_digits_split()
    torch.manual_seed(seed)
    model = DigitsCNN(FD_CLASSIFIER_CONFIG).double()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a network this small gains nothing from threads, and on a
    try:  # busy machine they cost many times over (8 s on one thread, 55 s on two shared)
        fit(model, (split.X_train.double(), split.y_train), augment=random_shift, seed=seed,
            device=torch.device("cpu"), progress=False, desc="FD classifier", **FD_TRAIN_RECIPE)
    finally:
        torch.set_num_threads(threads)
    model = model.float().eval()
    return model, accuracy(model, split.X_test, split.y_test)


def save_fd_classifier(model: DigitsCNN, test_accuracy: float, seed: int,
                       path: Path = WEIGHTS_FILE) -> None:
    """Write the weights with what is needed to rebuild and check them."""
    torch.save({
        "config": asdict(model.config),
        "recipe": dict(FD_TRAIN_RECIPE),
        "seed": seed,
        "test_accuracy": float(test_accuracy),
        "state_dict": {k: v.detach().float().cpu() for k, v in model.state_dict().items()},
    }, path)


def read_weights_file(path: Path = WEIGHTS_FILE) -> dict:
    """The stored dictionary: ``config``, ``recipe``, ``seed``, ``test_accuracy``, ``state_dict``."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no FD classifier weights at {path}; create them with "
                                "`python tools/train_fd_classifier.py`")
    return torch.load(path, map_location="cpu", weights_only=True)


@lru_cache(maxsize=4)
def load_fd_classifier(path: Optional[str] = None) -> DigitsCNN:
    """The shipped digits classifier (float32, CPU, eval mode); loaded once, then cached.

    It expects images scaled to [0, 1] like chapter 1's; :func:`features` does the
    scaling, so use that (or :func:`predicted_labels`) rather than calling it directly.
    """
    stored = read_weights_file(WEIGHTS_FILE if path is None else Path(path))
    config = dict(stored["config"])
    config["channels"] = tuple(config["channels"])
    model = DigitsCNN(CNNConfig(**config))
    model.load_state_dict(stored["state_dict"])
    model.requires_grad_(False)
    return model.eval()


# ---------------------------------------------------------------------------------------
# Checking what a learner passes in
# ---------------------------------------------------------------------------------------


def check_digit_images(images, name: str = "images", check_range: bool = True) -> torch.Tensor:
    """``images`` as a float32 CPU tensor ``(n, 1, 8, 8)`` in grey levels 0-16, or a clear error.

    Accepts ``(n, 8, 8)`` or ``(n, 1, 8, 8)`` tensors or NumPy arrays. The range check
    catches the usual slip: images still scaled to [0, 1] (as ``load_digits_split`` gives
    them) or to [-1, 1] (a tanh output), or raw generator outputs outside 0-16.
    ``check_range=False`` turns it off (e.g. for a batch that really is almost black).
    """
    if isinstance(images, np.ndarray):
        images = torch.from_numpy(images)
    if not isinstance(images, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor or NumPy array, got {type(images).__name__}")
    if images.is_complex() or images.dtype == torch.bool:
        raise TypeError(f"{name} must hold real grey levels, got dtype {images.dtype}")
    x = images.detach().cpu().float()
    if x.dim() == 3 and x.shape[1:] == (8, 8):
        x = x.unsqueeze(1)
    if x.dim() != 4 or x.shape[1:] != (1, 8, 8):
        hint = ""
        if x.dim() == 2 and x.shape[-1] == 64:
            hint = " (flat vectors? reshape them with x.reshape(-1, 8, 8))"
        elif x.dim() == 2 and x.shape == (8, 8):
            hint = " (one image? add the batch axis with x.unsqueeze(0))"
        raise ValueError(f"{name} must have shape (n, 8, 8) or (n, 1, 8, 8), got "
                         f"{tuple(x.shape)}{hint}")
    if len(x) == 0:
        raise ValueError(f"{name} is empty: need at least one image")
    if not torch.isfinite(x).all():
        raise ValueError(f"{name} contains NaN or infinite values "
                         f"({int((~torch.isfinite(x)).sum())} of {x.numel()})")
    if check_range:
        lo, hi = x.min().item(), x.max().item()
        if hi <= 1.0 + 1e-6 and lo >= -1.0 - 1e-6:
            raise ValueError(
                f"{name} lie between {lo:.3g} and {hi:.3g}, but the digits' grey levels run "
                f"from 0 to 16. Scaled images? From [0, 1] (load_digits_split divides by 16) "
                f"multiply by 16; from [-1, 1] (a tanh output) use (x + 1) * 8. If the "
                f"images really are this dark, pass check_range=False."
            )
        if lo < -RANGE_TOLERANCE or hi > DIGIT_MAX + RANGE_TOLERANCE:
            raise ValueError(
                f"{name} range from {lo:.3g} to {hi:.3g}, outside the digits' grey levels "
                f"0-16. Clip generated images as a display would, with x.clamp(0, 16); "
                f"scale other ranges to 0-16 first (e.g. 0-255: x * 16 / 255)."
            )
    return x


# ---------------------------------------------------------------------------------------
# What the classifier sees: features, labels, confidence
# ---------------------------------------------------------------------------------------


@torch.no_grad()
def _penultimate_and_logits(model: DigitsCNN, x: torch.Tensor):
    h = model.block2(model.block1(x / DIGIT_MAX))  # the classifier was trained on x / 16
    flat, linear, relu, dropout, last = model.head
    hidden = linear(flat(h))  # the features: the hidden layer before its ReLU
    return hidden, last(dropout(relu(hidden)))


def _run(images, model, check_range, batch_size: int = 2048):
    x = check_digit_images(images, check_range=check_range)
    model = model or load_fd_classifier()
    was_training = model.training
    model.eval()  # no dropout
    dev = next(model.parameters()).device
    parts = [_penultimate_and_logits(model, x[i : i + batch_size].to(dev))
             for i in range(0, len(x), batch_size)]
    model.train(was_training)
    return torch.cat([p for p, _ in parts]).cpu(), torch.cat([z for _, z in parts]).cpu()


def features(images, model: Optional[DigitsCNN] = None, check_range: bool = True) -> torch.Tensor:
    """The classifier's penultimate-layer features of ``images`` (grey levels 0-16): ``(n, 64)``,
    the hidden layer before its ReLU (see the module's docstring for why this layer)."""
    return _run(images, model, check_range)[0]


def predicted_labels(images, model: Optional[DigitsCNN] = None,
                     check_range: bool = True) -> torch.Tensor:
    """The digit (0-9) the classifier sees in each image: ``(n,)`` integers."""
    return _run(images, model, check_range)[1].argmax(dim=1)


def label_accuracy(images, labels, model: Optional[DigitsCNN] = None,
                   check_range: bool = True) -> float:
    """Fraction of ``images`` that the classifier labels as ``labels`` (the digits asked for).

    For class-conditional generators (e.g. classifier-free guidance in chapter 10). Real
    held-out digits score the classifier's test accuracy, the ceiling of this measure.
    """
    labels = torch.as_tensor(labels).long().reshape(-1).cpu()
    pred = predicted_labels(images, model, check_range)
    if len(labels) != len(pred):
        raise ValueError(f"got {len(pred)} images but {len(labels)} labels")
    return (pred == labels).float().mean().item()


def mean_confidence(images, model: Optional[DigitsCNN] = None, check_range: bool = True) -> float:
    """The classifier's mean max-softmax probability over ``images``.

    A weak score on its own: the calibration shows that uniform noise gets a high value.
    """
    return _run(images, model, check_range)[1].softmax(dim=1).amax(dim=1).mean().item()


def label_entropy(labels, n_classes: int = 10) -> float:
    """Entropy (nats) of the histogram of integer ``labels``: 0 if all are one class,
    ``ln(n_classes)`` if all classes are equally frequent."""
    labels = torch.as_tensor(labels).long().reshape(-1)
    if len(labels) == 0:
        raise ValueError("labels is empty")
    if labels.min() < 0 or labels.max() >= n_classes:
        raise ValueError(f"labels must lie in 0..{n_classes - 1}, got {labels.min()}..{labels.max()}")
    p = torch.bincount(labels, minlength=n_classes).double() / len(labels)
    p = p[p > 0]
    return float(-(p * p.log()).sum())


def class_entropy(samples, model: Optional[DigitsCNN] = None, check_range: bool = True) -> float:
    """Entropy (nats) of the predicted-label histogram of ``samples``: ln 10 = 2.30 when all
    ten digits are drawn equally often, 0 when the generator draws a single digit
    (mode collapse). Real digits score close to ln 10."""
    return label_entropy(predicted_labels(samples, model, check_range))


def nearest_train_distance(samples, train, check_range: bool = True) -> float:
    """Mean Euclidean pixel distance (grey levels 0-16) from each sample to its nearest
    training image. 0 means the samples are training images: a generator that copies its
    training set gets a perfect FD, and this number shows it. Compare with held-out real
    digits (in the calibration table), which are new images of the same kind."""
    a = check_digit_images(samples, "samples", check_range).flatten(1).double()
    b = check_digit_images(train, "train", check_range).flatten(1).double()
    # the direct formula, not the faster |a|^2 + |b|^2 - 2ab, which is not exactly 0 for a == b
    d = torch.cdist(a, b, compute_mode="donot_use_mm_for_euclid_dist")
    return d.min(dim=1).values.mean().item()


#: The copy test (:func:`copy_test`): how far (pixels) a sample is shifted to find its
#: nearest real digit. The classifier was trained to ignore 1-pixel shifts, so a training
#: digit moved by a pixel scores like a new digit on FD; moved back, it is a copy again.
COPY_MAX_SHIFT = 1
#: The copy test's yardstick: the nearest-neighbour distance that only this fraction of
#: held-out real digits get below (they are new images of the same kind).
COPY_QUANTILE = 0.1
#: Samples count as copies when more than this fraction of them get below that distance
#: (held-out real digits: :data:`COPY_QUANTILE`; a generator that stores digits: about 1).
COPY_LIMIT = 0.4


def shifted_images(images: torch.Tensor, max_shift: int = COPY_MAX_SHIFT) -> torch.Tensor:
    """Every shift of ``images (n, 1, 8, 8)`` by up to ``max_shift`` pixels in each direction
    (the uncovered border is 0, the background): ``((2 max_shift + 1)^2, n, 1, 8, 8)``."""
    out = []
    for dy in range(-max_shift, max_shift + 1):
        for dx in range(-max_shift, max_shift + 1):
            moved = torch.zeros_like(images)
            H, W = images.shape[-2:]
            moved[..., max(dy, 0):H + min(dy, 0), max(dx, 0):W + min(dx, 0)] = \
                images[..., max(-dy, 0):H + min(-dy, 0), max(-dx, 0):W + min(-dx, 0)]
            out.append(moved)
    return torch.stack(out)


def nearest_feature_distances(images, pool, max_shift: int = COPY_MAX_SHIFT,
                              model: Optional[DigitsCNN] = None) -> torch.Tensor:
    """For each of ``images`` (grey levels 0-16), the distance in the classifier's feature
    space to the nearest image of ``pool`` shifted by up to ``max_shift`` pixels in each
    direction (a training digit moved by a pixel is as near as the digit itself): ``(n,)``."""
    x = check_digit_images(images, "images", check_range=False)
    moved = shifted_images(check_digit_images(pool, "pool", check_range=False), max_shift)
    pool_feats = features(moved.flatten(0, 1), model, check_range=False).double()
    feats = features(x, model, check_range=False).double()
    return torch.cdist(feats, pool_feats).min(dim=1).values


def copy_verdict(sample_distances, real_distances, quantile: float = COPY_QUANTILE,
                 limit: float = COPY_LIMIT) -> dict:
    """Whether samples are copies, from nearest-neighbour distances alone: the samples'
    (to every real digit) against held-out real digits' (to the training digits). The
    yardstick is the distance only ``quantile`` of the real digits get below; samples
    are copies when more than ``limit`` of them do. Returns ``threshold``, ``fraction``
    (of the samples below it), ``real_fraction`` and ``copying``."""
    samples = torch.as_tensor(sample_distances, dtype=torch.float64).flatten()
    real = torch.as_tensor(real_distances, dtype=torch.float64).flatten()
    if samples.numel() == 0 or real.numel() == 0:
        raise ValueError("copy_verdict needs at least one distance of each kind")
    threshold = torch.quantile(real, quantile).item()
    fraction = (samples <= threshold).double().mean().item()
    return {"threshold": threshold, "fraction": fraction,
            "real_fraction": (real <= threshold).double().mean().item(),
            "copying": fraction > limit}


@lru_cache(maxsize=2)
def _copy_reference(seed: int) -> tuple:
    """The shifted real digits' features (training and test images) and the held-out
    digits' nearest distances to the training digits: computed once per process."""
    train, test = reference_digits(seed)
    pool = features(shifted_images(torch.cat([train, test])).flatten(0, 1),
                    check_range=False).double()
    return pool, nearest_feature_distances(test, train)


def copy_test(samples, seed: int = 0, model: Optional[DigitsCNN] = None) -> dict:
    """Does a generator copy real digits? Each sample's nearest real digit (training and
    test images, shifted by up to a pixel, in the classifier's feature space) against how
    near held-out real digits come to the training digits: see :func:`copy_verdict`."""
    if model is not None:
        train, test = reference_digits(seed)
        return copy_verdict(
            nearest_feature_distances(samples, torch.cat([train, test]), model=model),
            nearest_feature_distances(test, train, model=model))
    pool, real_d = _copy_reference(seed)
    feats = features(check_digit_images(samples, "samples", check_range=False),
                     check_range=False).double()
    return copy_verdict(torch.cdist(feats, pool).min(dim=1).values, real_d)


def copy_lines(verdict: dict) -> list:
    """Feedback when :func:`copy_test` finds copies (no bar value a learner could aim at
    beyond what the verdict says)."""
    return [f"{verdict['fraction']:.0%} of the samples lie nearer to a real digit (shifted "
            f"by up to {COPY_MAX_SHIFT} pixel) than all but {verdict['real_fraction']:.0%} of "
            "held-out real digits do: the samples are copies of real digits, not new ones.",
            "hint: the model must learn to generate; storing digits (or digits moved by a "
            "pixel) is not generating."]


# ---------------------------------------------------------------------------------------
# The Frechet distance
# ---------------------------------------------------------------------------------------


def feature_statistics(feats) -> Tuple[torch.Tensor, torch.Tensor]:
    """Mean ``(d,)`` and covariance ``(d, d)`` (unbiased, float64) of features ``(n, d)``."""
    f = torch.as_tensor(feats).detach().cpu().double()
    if f.dim() != 2:
        raise ValueError(f"features must have shape (n, d), got {tuple(f.shape)}")
    if len(f) < 2:
        raise ValueError(f"need at least 2 feature vectors for a covariance, got {len(f)}")
    return f.mean(dim=0), torch.cov(f.T)


def _sqrtm_psd(a: torch.Tensor) -> torch.Tensor:
    """Square root of a symmetric positive semi-definite matrix by its eigendecomposition:
    ``a = U diag(w) U^T`` gives ``a^(1/2) = U diag(sqrt(w)) U^T`` (negative rounding noise
    in ``w`` is set to 0)."""
    w, u = torch.linalg.eigh(a)
    return (u * w.clamp(min=0).sqrt()) @ u.T


def frechet_distance_from_stats(mu1, cov1, mu2, cov2) -> float:
    """FD between the Gaussians ``N(mu1, cov1)`` and ``N(mu2, cov2)``, computed in float64.

    ``S_1 S_2`` is not symmetric, but with ``A = S_1^(1/2)`` it has the same eigenvalues
    as the symmetric ``A S_2 A`` (``XY`` and ``YX`` share eigenvalues), so
    ``Tr (S_1 S_2)^(1/2)`` is the sum of the square roots of the eigenvalues of ``A S_2 A``:
    two symmetric eigendecompositions, no general matrix square root needed.
    """
    mu1, mu2 = (torch.as_tensor(m).double().reshape(-1) for m in (mu1, mu2))
    cov1, cov2 = (torch.as_tensor(c).double() for c in (cov1, cov2))
    d = len(mu1)
    if len(mu2) != d or cov1.shape != (d, d) or cov2.shape != (d, d):
        raise ValueError(f"need means (d,) and covariances (d, d) of one d; got {tuple(mu1.shape)}, "
                         f"{tuple(cov1.shape)}, {tuple(mu2.shape)}, {tuple(cov2.shape)}")
    root1 = _sqrtm_psd(cov1)
    middle = root1 @ cov2 @ root1
    middle = (middle + middle.T) / 2  # symmetric up to rounding; make it exactly so
    tr_sqrt = torch.linalg.eigvalsh(middle).clamp(min=0).sqrt().sum()
    diff = mu1 - mu2
    value = diff @ diff + cov1.trace() + cov2.trace() - 2 * tr_sqrt
    return max(float(value), 0.0)  # >= 0 in exact arithmetic; rounding can give -1e-13


def frechet_distance(feats_a, feats_b) -> float:
    """FD between two sets of feature vectors ``(n_a, d)`` and ``(n_b, d)``."""
    return frechet_distance_from_stats(*feature_statistics(feats_a), *feature_statistics(feats_b))


def reference_digits(seed: int = 0) -> Tuple[torch.Tensor, torch.Tensor]:
    """The digits' training and test images ``(n, 1, 8, 8)`` in grey levels 0-16 (the split
    of ``load_digits_split(seed=seed)``, times 16)."""
    split = load_digits_split(seed=seed)
    return split.X_train * DIGIT_MAX, split.X_test * DIGIT_MAX


def fd(samples, reference=None, model: Optional[DigitsCNN] = None, check_range: bool = True) -> float:
    """The Frechet distance between ``samples`` and ``reference`` (both grey levels 0-16) in
    the classifier's feature space; ``reference`` defaults to the training digits.

    The calibration table (:func:`load_calibration`) says what a value means: held-out real
    digits score about 1, uniform noise about 100. Use the same number of samples as it does
    (450) when comparing with it: FD grows as the sample set shrinks.
    """
    reference = reference_digits()[0] if reference is None else reference
    fa = features(samples, model, check_range)
    fb = features(reference, model, check_range)
    if len(fa) < 2 or len(fb) < 2:
        raise ValueError(f"FD needs at least 2 samples on each side, got {len(fa)} and {len(fb)}")
    return frechet_distance(fa, fb)


# ---------------------------------------------------------------------------------------
# Calibration: what FD values mean
# ---------------------------------------------------------------------------------------


def _gaussian_samples(pixels: torch.Tensor, n: int, generator: torch.Generator,
                      diagonal: bool) -> torch.Tensor:
    """``n`` images drawn from a Gaussian fitted to ``pixels (N, 64)``, clipped to 0-16."""
    mu, cov = feature_statistics(pixels)
    z = torch.randn(n, len(mu), generator=generator, dtype=torch.float64)
    if diagonal:
        x = mu + z * cov.diagonal().sqrt()
    else:  # x = mu + z L^T with L L^T = cov: here L = cov^(1/2) (cov is singular: blank corners)
        x = mu + z @ _sqrtm_psd(cov)
    return x.clamp(0, DIGIT_MAX).float().reshape(n, 1, 8, 8)


def calibration_samples(seed: int = 0) -> dict:
    """The sample sets of :data:`CALIBRATION_SAMPLES`, each as many images as the test split
    (450), clipped to 0-16 like any image: ``{name: images (n, 1, 8, 8)}``."""
    train, test = reference_digits()
    g = torch.Generator().manual_seed(seed)
    n = len(test)
    pixels = train.flatten(1)
    return {
        "real": test,
        "noisy": (test + 2.0 * torch.randn(test.shape, generator=g)).clamp(0, DIGIT_MAX),
        "gaussian_full": _gaussian_samples(pixels, n, g, diagonal=False),
        "gaussian_diagonal": _gaussian_samples(pixels, n, g, diagonal=True),
        "uniform": DIGIT_MAX * torch.rand(n, 1, 8, 8, generator=g),
    }


def calibrate_fd(seed: int = 0, model: Optional[DigitsCNN] = None) -> dict:
    """FD against the training digits, and the other measures, for sample sets from perfect
    (held-out real digits) to useless (uniform noise): ``{name: {measure: value}}``.

    The measures: ``fd``, ``class_entropy`` (nats), ``confidence`` (mean max-softmax),
    ``nearest_train_distance`` (grey levels). Confidence is reported to show that it is no
    score: the classifier is confident on pure noise too.
    """
    train, _ = reference_digits()
    model = model or load_fd_classifier()
    train_feats = features(train, model)
    table = {}
    for name, x in calibration_samples(seed).items():
        table[name] = {
            "fd": frechet_distance(features(x, model), train_feats),
            "class_entropy": class_entropy(x, model),
            "confidence": mean_confidence(x, model),
            "nearest_train_distance": nearest_train_distance(x, train),
        }
    return table


def load_calibration(path: Path = CALIBRATION_FILE) -> dict:
    """The calibration table shipped with the package (written by
    ``tools/train_fd_classifier.py``): ``{"n_samples", "seed", "classifier_test_accuracy",
    "description", "table"}``."""
    return json.loads(Path(path).read_text(encoding="utf-8"))


def calibration_markdown(table: dict) -> str:
    """The calibration table (from :func:`calibrate_fd` or ``load_calibration()["table"]``)
    as a Markdown table, one row per sample set."""
    lines = ["| samples | FD | class entropy (nats) | confidence | nearest-train distance |",
             "|---|---|---|---|---|"]
    for name, m in table.items():
        lines.append(f"| {CALIBRATION_SAMPLES.get(name, name)} | {m['fd']:.1f} | "
                     f"{m['class_entropy']:.2f} | {m['confidence']:.2f} | "
                     f"{m['nearest_train_distance']:.1f} |")
    lines.append(f"\nAt most ln 10 = {math.log(10):.2f} nats of class entropy.")
    return "\n".join(lines)


#: The full-covariance Gaussian's FD on the prototype classifier that the course plan's
#: bars were set on (its real, noisy, full, diagonal, uniform rows: 3.9, 12, 111, 236, 288).
PROTOTYPE_GAUSSIAN_FULL_FD = 111.0


def translate_prototype_bar(value: float) -> float:
    """A bar set on the prototype classifier's FD scale, on the shipped classifier's: the
    same fraction of the full-covariance Gaussian's FD (rounded to 0.1), as chapter 8
    derives it."""
    full = load_calibration()["table"]["gaussian_full"]["fd"]
    return round(value / PROTOTYPE_GAUSSIAN_FULL_FD * full, 1)
