"""Denoising diffusion for the 8x8 digits (chapter 10).

A diffusion model (Sohl-Dickstein et al. 2015; Ho et al. 2020, "Denoising diffusion
probabilistic models", DDPM) learns to undo a fixed noising process. The *forward
process* adds a little Gaussian noise at each of ``T`` steps,

    q(x_t | x_{t-1}) = N(sqrt(1 - beta_t) x_{t-1}, beta_t I),

so that after ``T`` steps nothing is left of the image. Its ``t``-step marginal has a closed
form, with ``alpha_bar_t = prod_{s <= t} (1 - beta_s)``:

    q(x_t | x_0) = N(sqrt(alpha_bar_t) x_0, (1 - alpha_bar_t) I),

so a noisy version of any image at any step is one line (:meth:`Schedule.add_noise`). A
network ``eps_theta(x_t, t)`` is trained to predict the noise that was added (a plain mean
squared error, :func:`noise_prediction_loss`). Sampling starts from pure noise and removes
the predicted noise step by step: *ancestral* (DDPM) sampling takes all ``T`` steps and
adds fresh noise at each (:func:`sample_ddpm`); DDIM (Song et al. 2021) takes a
deterministic path through a few of the steps (:func:`sample_ddim`). *Classifier-free
guidance* (Ho and Salimans 2022) trains one network with and without the class label (the
label is dropped at random) and pushes samples towards the label with
``eps = eps_uncond + w * (eps_cond - eps_uncond)`` (``w = 0``: unconditional; ``w = 1``:
conditional; ``w > 1``: beyond).

Data: the models work on vectors ``(n, d)`` of numbers around [-1, 1]: for pixels, the
digits' grey levels 0-16 mapped by :func:`to_model_space` (``x / 8 - 1``) and flattened;
for *latent diffusion*, the standardised mean codes of chapter 8's VAE
(:class:`LatentSpace`). :func:`to_grey_levels` maps pixel samples back to 0-16, which
:mod:`fromscratch.generative` measures.
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass, field
from typing import Callable, List, Optional, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

PIXELS = 64
DIGIT_MAX = 16.0


# ---------------------------------------------------------------------------------------
# Data: grey levels <-> the model's space
# ---------------------------------------------------------------------------------------

def to_model_space(images: torch.Tensor) -> torch.Tensor:
    """Digits in grey levels 0-16, ``(n, 1, 8, 8)``, ``(n, 8, 8)`` or ``(n, 64)``, as flat
    vectors ``(n, 64)`` in [-1, 1] (``x / 8 - 1``)."""
    if not isinstance(images, torch.Tensor) or not images.is_floating_point():
        raise TypeError("images must be a float tensor of grey levels 0-16")
    x = images.reshape(len(images), -1)
    if x.shape[1] != PIXELS:
        raise ValueError(f"images must hold 64 pixels each, got shape {tuple(images.shape)}")
    lo, hi = x.min().item(), x.max().item()
    if hi <= 1.0 + 1e-6 and lo >= 0 and hi > 0:
        raise ValueError(f"images lie in [{lo:.3g}, {hi:.3g}]: looks like [0, 1]-scaled "
                         "digits (load_digits_split); multiply them by 16 first")
    if lo < -1e-6 or hi > DIGIT_MAX + 1e-6:
        raise ValueError(f"images must be grey levels 0-16, got {lo:.3g} to {hi:.3g}")
    return x / (DIGIT_MAX / 2) - 1


def to_grey_levels(x: torch.Tensor) -> torch.Tensor:
    """Model-space pixel vectors ``(n, 64)`` back to images ``(n, 1, 8, 8)`` in grey levels,
    clipped to 0-16 as a display would."""
    return ((x.reshape(len(x), 1, 8, 8) + 1) * (DIGIT_MAX / 2)).clamp(0, DIGIT_MAX)


# ---------------------------------------------------------------------------------------
# The forward process
# ---------------------------------------------------------------------------------------

class Schedule:
    """The noise schedule ``beta_1..beta_T`` and what follows from it.

    Index ``t`` runs from 0 to ``T - 1`` in code (step ``t + 1`` in the papers):
    ``betas[t]``, ``alphas[t] = 1 - betas[t]``, ``alpha_bar[t] = prod(alphas[:t + 1])``.
    ``kind="linear"``: DDPM's betas from 1e-4 to 0.02 (for ``T = 1000``; rescaled by
    ``1000 / T`` otherwise, at most 0.999). ``kind="cosine"``: Nichol and Dhariwal's
    (2021) ``alpha_bar`` along a squared cosine, which destroys the signal more evenly.

    Both schedules end with ``alpha_bar`` close to 0 (cosine: 2.4e-9 at ``T = 1000``), so
    that the last step is pure noise. Estimating the clean image there divides by
    ``sqrt(alpha_bar)``, which multiplies any error in the predicted noise many
    thousand-fold: the samplers clip that estimate to the data's range (``clip``).
    """

    def __init__(self, T: int = 1000, kind: str = "cosine"):
        if isinstance(T, bool) or not isinstance(T, int) or T < 2:
            raise ValueError(f"T must be an integer >= 2, got {T!r}")
        if kind == "linear":
            scale = 1000 / T
            betas = torch.linspace(1e-4 * scale, 0.02 * scale, T,
                                   dtype=torch.float64).clamp(max=0.999)
        elif kind == "cosine":
            s = 0.008
            steps = torch.arange(T + 1, dtype=torch.float64) / T
            f = torch.cos((steps + s) / (1 + s) * math.pi / 2) ** 2
            betas = (1 - f[1:] / f[:-1]).clamp(max=0.999)
        else:
            raise ValueError(f"kind must be 'linear' or 'cosine', got {kind!r}")
        self.T, self.kind = T, kind
        self.betas = betas
        self.alphas = 1 - betas
        self.alpha_bar = torch.cumprod(self.alphas, dim=0)

    def __repr__(self):
        return f"Schedule(T={self.T}, kind={self.kind!r})"

    def _check_t(self, t) -> torch.Tensor:
        t = torch.as_tensor(t)
        if t.dtype.is_floating_point or t.dtype == torch.bool:
            raise TypeError(f"t must hold integer steps, got dtype {t.dtype}")
        if t.numel() and (t.min() < 0 or t.max() >= self.T):
            raise ValueError(f"t must lie in 0..{self.T - 1}, got {t.min()}..{t.max()}")
        return t.long()

    def add_noise(self, x0: torch.Tensor, t, noise: torch.Tensor) -> torch.Tensor:
        """A sample of ``q(x_t | x_0)`` in one step: ``sqrt(alpha_bar_t) x0 +
        sqrt(1 - alpha_bar_t) noise``, ``t`` one step per row of ``x0`` (or one for all)."""
        t = self._check_t(t)
        if noise.shape != x0.shape:
            raise ValueError(f"noise must have the shape of x0, {tuple(x0.shape)}, got "
                             f"{tuple(noise.shape)}")
        if t.dim() > 0 and t.numel() not in (1, len(x0)):
            raise ValueError(f"t must hold one step per row of x0 ({len(x0)}) or one for "
                             f"all, got {t.numel()}")
        ab = self.alpha_bar.to(x0.dtype)[t].reshape(-1, *([1] * (x0.dim() - 1)))
        return ab.sqrt() * x0 + (1 - ab).sqrt() * noise

    def noise_step(self, x_prev: torch.Tensor, t: int, noise: torch.Tensor) -> torch.Tensor:
        """One step of the forward process, ``q(x_t | x_{t-1})``:
        ``sqrt(1 - beta_t) x_prev + sqrt(beta_t) noise``."""
        b = float(self.betas[int(self._check_t(t))])
        return math.sqrt(1 - b) * x_prev + math.sqrt(b) * noise

    def signal_to_noise(self) -> torch.Tensor:
        """``alpha_bar_t / (1 - alpha_bar_t)`` for every step: how much image is left."""
        return self.alpha_bar / (1 - self.alpha_bar)


# ---------------------------------------------------------------------------------------
# The noise-prediction network
# ---------------------------------------------------------------------------------------

def timestep_embedding(t: torch.Tensor, dim: int, T: int) -> torch.Tensor:
    """Sinusoidal features ``(n, dim)`` of integer steps ``t`` (the Transformer's position
    encoding, on ``t / T`` scaled to 0-1000 so that any ``T`` gives the same range)."""
    half = dim // 2
    freqs = torch.exp(-math.log(10_000) * torch.arange(half, dtype=torch.float32) / half)
    angles = (t.float() * (1000.0 / T)).unsqueeze(1) * freqs.to(t.device)
    return torch.cat([angles.sin(), angles.cos()], dim=1)


@dataclass(frozen=True)
class DenoiserConfig:
    """A residual MLP that predicts the noise: ``dim`` inputs (64 pixels, or the latent
    size), ``hidden`` units, ``depth`` residual blocks; ``n_classes > 0`` adds a class
    embedding with one extra "no label" entry for classifier-free guidance."""

    dim: int = PIXELS
    hidden: int = 256
    depth: int = 3
    n_classes: int = 10
    time_features: int = 64

    def __post_init__(self):
        for name in ("dim", "hidden", "depth", "time_features"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"DenoiserConfig.{name} must be a positive integer, "
                                 f"got {value!r}")
        if isinstance(self.n_classes, bool) or not isinstance(self.n_classes, int) or \
                self.n_classes < 0:
            raise ValueError(f"DenoiserConfig.n_classes must be an integer >= 0, got "
                             f"{self.n_classes!r}")


class Denoiser(nn.Module):
    """``eps_theta(x_t, t, y)``: noisy vectors ``(n, dim)``, integer steps ``(n,)`` and
    optional labels ``(n,)`` (``-1`` or ``None`` = no label) to predicted noise ``(n, dim)``.

    The step and the label enter as a learned embedding ``c`` (their sum) added to the
    input of every block; each block is ``h + W2 silu(W1 layer_norm(h + c))``.
    """

    def __init__(self, config: DenoiserConfig = DenoiserConfig(), T: int = 1000):
        super().__init__()
        self.config, self.T = config, T
        h = config.hidden
        self.inp = nn.Linear(config.dim, h)
        self.time = nn.Sequential(nn.Linear(config.time_features, h), nn.SiLU(),
                                  nn.Linear(h, h))
        self.label = nn.Embedding(config.n_classes + 1, h) if config.n_classes else None
        self.blocks = nn.ModuleList(
            nn.Sequential(nn.LayerNorm(h), nn.Linear(h, h), nn.SiLU(), nn.Linear(h, h))
            for _ in range(config.depth))
        self.out = nn.Sequential(nn.LayerNorm(h), nn.Linear(h, config.dim))

    def forward(self, x: torch.Tensor, t: torch.Tensor,
                y: Optional[torch.Tensor] = None) -> torch.Tensor:
        if x.dim() != 2 or x.shape[1] != self.config.dim:
            raise ValueError(f"x must have shape (n, {self.config.dim}), got "
                             f"{tuple(x.shape)}")
        t = torch.as_tensor(t, device=x.device)
        if t.is_floating_point() or t.dtype == torch.bool:
            raise TypeError(f"t must hold integer steps, got dtype {t.dtype}")
        if t.numel() and (t.min() < 0 or t.max() >= self.T):
            raise ValueError(f"t must lie in 0..{self.T - 1}, got {t.min()}..{t.max()}")
        t = t.long().expand(len(x))
        c = self.time(timestep_embedding(t, self.config.time_features, self.T))
        if self.label is not None:
            null = self.config.n_classes
            if y is None:
                y = torch.full((len(x),), null, dtype=torch.long, device=x.device)
            else:
                y = torch.as_tensor(y, device=x.device)
                if y.is_floating_point() or y.dtype == torch.bool:
                    raise TypeError(f"labels must be integers, got dtype {y.dtype}")
                if y.numel() and (y.min() < -1 or y.max() >= null):
                    raise ValueError(f"labels must lie in 0..{null - 1} (or -1 for none), "
                                     f"got {y.min()}..{y.max()}")
                y = torch.where(y < 0, torch.full_like(y, null), y.long())
            c = c + self.label(y)
        elif y is not None:
            raise ValueError("this Denoiser has no class embedding (n_classes=0)")
        h = self.inp(x)
        for block in self.blocks:  # the step and the label enter every block
            h = h + block(h + c)
        return self.out(h)


def noise_prediction_loss(model: Callable, schedule: Schedule, x0: torch.Tensor,
                          y: Optional[torch.Tensor] = None,
                          generator: Optional[torch.Generator] = None) -> torch.Tensor:
    """DDPM's simple loss: draw a step ``t`` and noise ``eps`` per example, noise ``x0`` to
    ``x_t`` in one step, and score the predicted noise by its mean squared error."""
    t = torch.randint(schedule.T, (len(x0),), generator=generator).to(x0.device)
    eps = torch.randn(x0.shape, generator=generator).to(x0.device)
    x_t = schedule.add_noise(x0, t, eps)
    return F.mse_loss(model(x_t, t, y), eps)


# ---------------------------------------------------------------------------------------
# Training
# ---------------------------------------------------------------------------------------

@dataclass
class DiffusionHistory:
    """What :func:`train_diffusion` saw: loss per logging interval, the steps taken, time."""

    steps: List[int] = field(default_factory=list)
    loss: List[float] = field(default_factory=list)
    seconds: float = 0.0
    total_steps: int = 0


class EMA:
    """An exponential moving average of a model's weights (a copy, in eval mode):
    ``ema = decay * ema + (1 - decay) * weights`` after every step. Diffusion samples are
    drawn from the average, which smooths out the last steps' noise."""

    def __init__(self, model: nn.Module, decay: float = 0.999):
        if not 0 <= decay < 1:
            raise ValueError(f"decay must be in [0, 1), got {decay}")
        self.decay = decay
        self.model = copy.deepcopy(model).eval().requires_grad_(False)

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        for avg, w in zip(self.model.parameters(), model.parameters()):
            avg.lerp_(w.detach(), 1 - self.decay)
        for avg, b in zip(self.model.buffers(), model.buffers()):
            avg.copy_(b)  # e.g. BatchNorm's running statistics: copied, not averaged


def train_diffusion(model: nn.Module, schedule: Schedule, X: torch.Tensor,
                    y: Optional[torch.Tensor] = None, *, steps: int = 4000,
                    batch_size: int = 128, lr: float = 2e-3, label_dropout: float = 0.1,
                    ema_decay: float = 0.999, seed: int = 0, log_every: int = 100,
                    callback: Optional[Callable] = None):
    """Train ``model`` to predict noise on data ``X (n, dim)`` (model space) with Adam and
    a learning rate that decays to 0 along a cosine; returns ``(ema_model, history)``.

    ``y``: class labels ``(n,)`` for a conditional model; each label is replaced by "no
    label" with probability ``label_dropout``, so that the same network also learns the
    unconditional prediction (classifier-free guidance). Deterministic given ``seed``
    (batches, steps, noise, dropped labels). ``callback(step, ema_model)`` runs every
    ``log_every`` steps (e.g. to score samples during training). Runs on the CPU with one
    thread: a network this small gains nothing from more.
    """
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be a positive integer, got {steps!r}")
    if not 0 <= label_dropout < 1:
        raise ValueError(f"label_dropout must be in [0, 1), got {label_dropout}")
    X = torch.as_tensor(X).float()
    config = getattr(model, "config", None)  # any module with forward(x, t, y) trains
    dim = getattr(config, "dim", X.shape[-1]) if X.dim() == 2 else None
    if X.dim() != 2 or X.shape[1] != dim:
        raise ValueError(f"X must have shape (n, {dim or 'dim'}), got {tuple(X.shape)}")
    if y is not None:
        y = torch.as_tensor(y).long()
        if len(y) != len(X):
            raise ValueError(f"got {len(X)} examples but {len(y)} labels")
    g = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    ema = EMA(model, ema_decay)
    history = DiffusionHistory()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    model.train()
    start, running = time.perf_counter(), 0.0
    try:
        for step in range(1, steps + 1):
            idx = torch.randint(len(X), (batch_size,), generator=g)
            yb = None
            if y is not None:
                yb = y[idx].clone()
                yb[torch.rand(batch_size, generator=g) < label_dropout] = -1
            loss = noise_prediction_loss(model, schedule, X[idx], yb, generator=g)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            ema.update(model)
            running += loss.item()
            if step % log_every == 0 or step == steps:
                n = step - (history.steps[-1] if history.steps else 0)
                history.steps.append(step)
                history.loss.append(running / n)
                running = 0.0
                if callback is not None:
                    history.seconds += time.perf_counter() - start
                    callback(step, ema.model)
                    start = time.perf_counter()
    finally:
        torch.set_num_threads(threads)
    history.seconds += time.perf_counter() - start
    history.total_steps = steps
    model.eval()
    return ema.model, history


# ---------------------------------------------------------------------------------------
# Sampling
# ---------------------------------------------------------------------------------------

def _labels(y, n):
    if y is None:
        return None
    y = torch.as_tensor(y).long().reshape(-1)
    if len(y) != n:
        raise ValueError(f"need one label per sample ({n}), got {len(y)}")
    return y


def guided_noise(model: Callable, x: torch.Tensor, t: torch.Tensor,
                 y: Optional[torch.Tensor], guidance: float) -> torch.Tensor:
    """The predicted noise with classifier-free guidance of strength ``guidance`` (``w``):
    ``eps_u + w (eps_c - eps_u)``; ``y=None`` gives the unconditional prediction."""
    if y is None:
        return model(x, t)
    if guidance == 1.0:
        return model(x, t, y)
    both = model(torch.cat([x, x]), torch.cat([t, t]),
                 torch.cat([y, torch.full_like(y, -1)]))
    cond, uncond = both.chunk(2)
    return uncond + guidance * (cond - uncond)


@torch.no_grad()
def sample_ddpm(model: Callable, schedule: Schedule, n: int, dim: int = PIXELS,
                y=None, guidance: float = 1.0,
                generator: Optional[torch.Generator] = None,
                clip: Optional[float] = 1.0) -> torch.Tensor:
    """Ancestral (DDPM) sampling: start from ``N(0, I)`` and take all ``T`` reverse steps.
    Each step estimates the clean ``x0_hat = (x_t - sqrt(1 - alpha_bar_t) eps) /
    sqrt(alpha_bar_t)`` (clipped to ``[-clip, clip]``; ``None``: not clipped) and draws
    ``x_{t-1}`` from ``q(x_{t-1} | x_t, x_0 = x0_hat)``, a Gaussian with

        mean = sqrt(alpha_bar_{t-1}) beta_t / (1 - alpha_bar_t) x0_hat
               + sqrt(alpha_t) (1 - alpha_bar_{t-1}) / (1 - alpha_bar_t) x_t,
        variance = beta_t (1 - alpha_bar_{t-1}) / (1 - alpha_bar_t)   (0 at the last step).

    Without the clip this is DDPM's ``(x_t - beta_t / sqrt(1 - alpha_bar_t) eps) /
    sqrt(alpha_t) + sigma_t z``; the clip matters at the first steps, where
    ``alpha_bar_t`` is nearly 0 and a small error in ``eps`` gives a huge ``x0_hat``."""
    _check_clip(schedule, clip)
    y = _labels(y, n)
    x = torch.randn(n, dim, generator=generator)
    sb = schedule
    for t in range(sb.T - 1, -1, -1):
        tt = torch.full((n,), t, dtype=torch.long)
        eps = guided_noise(model, x, tt, y, guidance)
        a, ab, b = float(sb.alphas[t]), float(sb.alpha_bar[t]), float(sb.betas[t])
        ab_prev = float(sb.alpha_bar[t - 1]) if t > 0 else 1.0
        x0 = (x - math.sqrt(1 - ab) * eps) / math.sqrt(ab)
        if clip is not None:
            x0 = x0.clamp(-clip, clip)
        x = (math.sqrt(ab_prev) * b / (1 - ab)) * x0 + \
            (math.sqrt(a) * (1 - ab_prev) / (1 - ab)) * x
        if t > 0:
            var = b * (1 - ab_prev) / (1 - ab)
            x = x + math.sqrt(var) * torch.randn(n, dim, generator=generator)
    return x


def _check_clip(schedule: Schedule, clip: Optional[float]) -> None:
    ab = float(schedule.alpha_bar[-1])
    if clip is None and ab < 1e-4:
        raise ValueError(
            f"clip=None: the last step's alpha_bar is {ab:.2g}, so the clean-image estimate "
            f"there is divided by {math.sqrt(ab):.2g} and any error in the predicted noise "
            "explodes. Pass clip= the data's range (1.0 for pixels in [-1, 1], "
            "LatentSpace.clip for latent codes).")
    if clip is not None and not clip > 0:
        raise ValueError(f"clip must be > 0 or None, got {clip!r}")


def ddim_steps(schedule: Schedule, n_steps: int) -> List[int]:
    """The ``n_steps`` steps (descending, from ``T - 1`` to 0) that DDIM visits, evenly
    spaced; one step visits ``T - 1`` only (pure noise to an image in one jump)."""
    if isinstance(n_steps, bool) or not isinstance(n_steps, int) or \
            not 1 <= n_steps <= schedule.T:
        raise ValueError(f"n_steps must be an integer in 1..{schedule.T}, got {n_steps!r}")
    steps = torch.linspace(schedule.T - 1, 0, n_steps, dtype=torch.float64).round().long()
    return sorted(set(steps.tolist()), reverse=True)


@torch.no_grad()
def sample_ddim(model: Callable, schedule: Schedule, n: int, n_steps: int = 25,
                dim: int = PIXELS, y=None, guidance: float = 1.0,
                generator: Optional[torch.Generator] = None,
                clip: Optional[float] = 1.0) -> torch.Tensor:
    """DDIM sampling (``eta = 0``: no fresh noise): at each visited step predict the clean
    ``x_0`` from the predicted noise, then jump to the next visited step along the same
    noise, ``x_s = sqrt(alpha_bar_s) x0_hat + sqrt(1 - alpha_bar_s) eps``.

    ``clip``: ``x0_hat`` is clipped to ``[-clip, clip]``: 1 for pixels in [-1, 1], the
    largest training code for latent codes (:attr:`LatentSpace.clip`). Without it the
    first step, from ``alpha_bar`` near 0, blows the estimate up (see :class:`Schedule`),
    so ``clip=None`` is refused for such schedules."""
    _check_clip(schedule, clip)
    y = _labels(y, n)
    x = torch.randn(n, dim, generator=generator)
    visit = ddim_steps(schedule, n_steps)
    for i, t in enumerate(visit):
        tt = torch.full((n,), t, dtype=torch.long)
        eps = guided_noise(model, x, tt, y, guidance)
        ab = float(schedule.alpha_bar[t])
        x0 = (x - math.sqrt(1 - ab) * eps) / math.sqrt(ab)
        if clip is not None:
            x0 = x0.clamp(-clip, clip)
            eps = (x - math.sqrt(ab) * x0) / math.sqrt(1 - ab)
        ab_next = float(schedule.alpha_bar[visit[i + 1]]) if i + 1 < len(visit) else 1.0
        x = math.sqrt(ab_next) * x0 + math.sqrt(1 - ab_next) * eps
    return x


# ---------------------------------------------------------------------------------------
# Latent diffusion: the same model in the code space of chapter 8's VAE
# ---------------------------------------------------------------------------------------

class LatentSpace:
    """Map digits to a VAE's mean codes, standardised per dimension (mean 0, sd 1 over
    the training codes, so that the noise schedule fits them as it fits pixels in
    [-1, 1]), and codes back to digits through the VAE's decoder."""

    def __init__(self, vae, X_train: torch.Tensor):
        """``vae``: a trained :class:`~fromscratch.models.vae.VAE`; ``X_train``: the
        training images in [0, 1] (as ``load_digits_split`` gives them)."""
        self.vae = vae.eval()
        with torch.no_grad():
            mu, _ = vae.encode_distribution(X_train)
        self.mean, self.std = mu.mean(0), mu.std(0)
        self.dim = mu.shape[1]
        #: the largest standardised training code: DDIM clips its x0 estimates to it,
        #: as it clips pixel estimates to [-1, 1]
        self.clip = float(((mu - self.mean) / self.std).abs().max())

    @torch.no_grad()
    def encode(self, X: torch.Tensor) -> torch.Tensor:
        """Images in [0, 1] to standardised codes ``(n, latent)``."""
        mu, _ = self.vae.encode_distribution(X)
        return (mu - self.mean) / self.std

    @torch.no_grad()
    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Standardised codes to images ``(n, 1, 8, 8)`` in grey levels 0-16."""
        return self.vae.decode(z * self.std + self.mean) * DIGIT_MAX


__all__: Sequence[str] = (
    "Schedule", "Denoiser", "DenoiserConfig", "EMA", "DiffusionHistory", "LatentSpace",
    "timestep_embedding", "noise_prediction_loss", "train_diffusion", "sample_ddpm",
    "sample_ddim", "ddim_steps", "guided_noise", "to_model_space", "to_grey_levels",
)
