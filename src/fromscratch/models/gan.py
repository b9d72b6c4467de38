"""Generative adversarial networks (chapter 9): a generator against a discriminator.

The generator ``G`` maps noise ``z ~ N(0, I)`` to a sample (an 8x8 digit, or a point in
the plane); the discriminator ``D`` maps a sample to one logit, "real" when positive.
They play the min-max game of Goodfellow et al. (2014, "Generative adversarial nets"):

    min_G max_D  E_x[log D(x)] + E_z[log(1 - D(G(z)))]        (D(x) = sigmoid(logit))

Written with logits ``l`` and ``softplus(t) = log(1 + e^t)``:

- the discriminator minimises ``softplus(-l_real) + softplus(l_fake)``;
- the *saturating* generator loss is the game's own term, ``log(1 - D(G(z))) =
  -softplus(l_fake)``, minimised;
- the *non-saturating* generator loss, ``-log D(G(z)) = softplus(-l_fake)``, has the
  same fixed point but a strong gradient exactly where the saturating one has none: at
  the start of training, when ``D`` rejects every fake (``l_fake`` very negative).

Stabilisers, each an option of :class:`GANConfig` so that it can be measured against
the plain GAN: the *minibatch standard deviation* feature (Karras et al. 2018,
"Progressive growing of GANs"), which lets ``D`` see how varied a batch is, and
*packing* (Lin et al. 2018, "PacGAN"), where ``D`` judges ``pack`` samples at once.
Remedies against a discriminator that overfits: an exponential moving average (EMA) of
the generator's weights (Yazici et al. 2019) and keeping the best checkpoint.

Toy data: :func:`ring_of_gaussians`, 8 Gaussians on a circle (Metz et al. 2017,
"Unrolled GANs"), where mode collapse is visible and countable (:func:`ring_coverage`).

Like :func:`fromscratch.models.vae.train_together`, :func:`train_gans` trains several
GANs (seeds) as one batched computation: each keeps its own initialisation, batches and
noise, and Adam's update is elementwise, so this is training them one by one, up to float
rounding (which a GAN's chaotic training can amplify: compare runs by their spread).
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass, field
from typing import Callable, Optional, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

LEAK = 0.2  # the discriminator's LeakyReLU slope


@dataclass(frozen=True)
class GANConfig:
    data_dim: int = 64  # 64 pixels of an 8x8 digit, or 2 for points in the plane
    latent: int = 16  # size of the noise z
    hidden: int = 128  # width of the two hidden layers of G and of D
    output: str = "sigmoid"  # G's last activation: "sigmoid" (images in [0, 1]) or "linear"
    minibatch_std: bool = False  # D gets the batch's feature spread as one more input
    pack: int = 1  # D judges `pack` samples at once (PacGAN); 1 = the plain GAN

    def __post_init__(self):
        if self.output not in ("sigmoid", "linear"):
            raise ValueError(f"output must be 'sigmoid' or 'linear', got {self.output!r}")
        for name in ("data_dim", "latent", "hidden", "pack"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"{name} must be a positive integer, got {v!r}")


#: The chapter's digits GAN and the ring GAN (tiny: they train on one CPU thread).
DIGITS_CONFIG = GANConfig(data_dim=64, latent=16, hidden=96, output="sigmoid")
RING_CONFIG = GANConfig(data_dim=2, latent=4, hidden=32, output="linear")


class Generator(nn.Module):
    """``z (n, latent)`` -> samples ``(n, data_dim)``: an MLP with two hidden ReLU layers."""

    def __init__(self, config: GANConfig = DIGITS_CONFIG):
        super().__init__()
        self.config = config
        h = config.hidden
        self.net = nn.Sequential(nn.Linear(config.latent, h), nn.ReLU(), nn.Linear(h, h),
                                 nn.ReLU(), nn.Linear(h, config.data_dim))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        if z.dim() != 2 or z.shape[1] != self.config.latent:
            raise ValueError(f"z must have shape (n, {self.config.latent}), got "
                             f"{tuple(z.shape)}")
        x = self.net(z)
        return torch.sigmoid(x) if self.config.output == "sigmoid" else x

    @torch.no_grad()
    def sample(self, n: int, generator: Optional[torch.Generator] = None) -> torch.Tensor:
        """``n`` samples ``(n, data_dim)`` from noise drawn with ``generator``."""
        dev = next(self.parameters()).device
        return self(torch.randn(n, self.config.latent, generator=generator).to(dev))


def minibatch_std(h: torch.Tensor) -> torch.Tensor:
    """One feature per batch: the standard deviation of each unit of ``h (..., B, d)``
    over the batch axis, averaged over the units, appended as a last column:
    ``(..., B, d + 1)``. A collapsed generator's batch has a small spread, which ``D``
    can now see; a single sample cannot show it. (With ``pack > 1`` the
    :class:`Discriminator` applies it to the packed rows: pass those.)"""
    if h.dim() < 2 or h.shape[-2] < 2:
        raise ValueError("minibatch_std needs a batch of at least 2")
    s = h.std(dim=-2, keepdim=True).mean(dim=-1, keepdim=True)  # (..., 1, 1)
    return torch.cat([h, s.expand(*h.shape[:-1], 1)], dim=-1)


class Discriminator(nn.Module):
    """Samples ``(n, data_dim)`` -> logits ``(n // pack,)``: an MLP with two hidden
    LeakyReLU layers; positive logits say "real". With ``pack > 1`` each group of
    ``pack`` consecutive samples is judged together; with ``minibatch_std`` the last
    hidden layer gets the batch's spread as one more feature."""

    def __init__(self, config: GANConfig = DIGITS_CONFIG):
        super().__init__()
        self.config = config
        h = config.hidden
        self.body = nn.Sequential(nn.Linear(config.data_dim * config.pack, h),
                                  nn.LeakyReLU(LEAK), nn.Linear(h, h), nn.LeakyReLU(LEAK))
        self.head = nn.Linear(h + int(config.minibatch_std), 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c = self.config
        if x.dim() > 2 and x[0].numel() == c.data_dim:  # images (n, 1, 8, 8): flatten
            x = x.reshape(len(x), c.data_dim)
        if x.dim() != 2 or x.shape[1] != c.data_dim:
            raise ValueError(f"x must have shape (n, {c.data_dim}), got {tuple(x.shape)}")
        if len(x) % c.pack:
            raise ValueError(f"the batch ({len(x)}) must be a multiple of pack ({c.pack})")
        h = self.body(x.reshape(len(x) // c.pack, c.data_dim * c.pack))
        if c.minibatch_std:
            h = minibatch_std(h)
        return self.head(h).squeeze(-1)


# ---------------------------------------------------------------------------------------
# The losses, from logits
# ---------------------------------------------------------------------------------------

def _need_logits(logits: torch.Tensor, name: str) -> None:
    if not isinstance(logits, torch.Tensor) or logits.numel() == 0:
        raise ValueError(f"{name} must be a non-empty tensor of logits, got "
                         f"{getattr(logits, 'shape', type(logits).__name__)}")


def discriminator_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """``-[log D(x) + log(1 - D(G(z)))]``, averaged: ``mean softplus(-l_real) +
    mean softplus(l_fake)`` (the binary cross-entropy with labels 1 and 0)."""
    _need_logits(real_logits, "real_logits")
    _need_logits(fake_logits, "fake_logits")
    return F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean()


def generator_loss(fake_logits: torch.Tensor, kind: str = "nonsaturating") -> torch.Tensor:
    """The generator's loss on the logits of its samples, averaged, minimised by ``G``:
    ``"nonsaturating"``: ``-log D(G(z)) = softplus(-l)``; ``"saturating"``: the min-max
    game's own ``log(1 - D(G(z))) = -softplus(l)``."""
    _need_logits(fake_logits, "fake_logits")
    if kind == "nonsaturating":
        return F.softplus(-fake_logits).mean()
    if kind == "saturating":
        return -F.softplus(fake_logits).mean()
    raise ValueError(f"kind must be 'nonsaturating' or 'saturating', got {kind!r}")


# ---------------------------------------------------------------------------------------
# Toy data: a ring of Gaussians, and how many of its modes a generator covers
# ---------------------------------------------------------------------------------------

RING_MODES, RING_RADIUS, RING_SIGMA = 8, 2.0, 0.05


def ring_centres(modes: int = RING_MODES, radius: float = RING_RADIUS) -> torch.Tensor:
    """The ``(modes, 2)`` centres, evenly spaced on a circle of ``radius``."""
    if isinstance(modes, bool) or not isinstance(modes, int) or modes < 1 or radius <= 0:
        raise ValueError(f"need modes >= 1 and radius > 0, got {modes} and {radius}")
    a = 2 * math.pi * torch.arange(modes, dtype=torch.float64) / modes
    return (radius * torch.stack([a.cos(), a.sin()], dim=1)).float()


def ring_of_gaussians(n: int, generator: Optional[torch.Generator] = None,
                      modes: int = RING_MODES, radius: float = RING_RADIUS,
                      sigma: float = RING_SIGMA) -> torch.Tensor:
    """``n`` points ``(n, 2)``: a mode chosen uniformly, plus ``N(0, sigma^2 I)`` noise."""
    if n < 1 or sigma <= 0:
        raise ValueError(f"need n >= 1 and sigma > 0, got {n} and {sigma}")
    k = torch.randint(modes, (n,), generator=generator)
    return ring_centres(modes, radius)[k] + sigma * torch.randn(n, 2, generator=generator)


@dataclass
class Coverage:
    """How a set of 2-D samples covers the ring: ``modes`` covered, the ``quality``
    (share of samples within 3 sigma of some centre), and the ``share`` of samples
    near each centre."""

    modes: int
    quality: float
    share: list


def ring_coverage(samples: torch.Tensor, modes: int = RING_MODES,
                  radius: float = RING_RADIUS, sigma: float = RING_SIGMA,
                  min_share: Optional[float] = None) -> Coverage:
    """A mode counts as covered when at least ``min_share`` of the samples (default: a
    quarter of its fair share, ``0.25 / modes``) lie within ``3 sigma`` of its centre.
    Real data covers all modes with quality 0.99 (3 sigma in 2-D holds 98.9%)."""
    if isinstance(modes, bool) or not isinstance(modes, int) or modes < 1:
        raise ValueError(f"modes must be a positive integer, got {modes!r}")
    if not sigma > 0:
        raise ValueError(f"sigma must be > 0, got {sigma}")
    x = torch.as_tensor(samples).detach().cpu().float()
    if x.dim() != 2 or x.shape[1] != 2 or len(x) == 0:
        raise ValueError(f"samples must have shape (n, 2) with n >= 1, got {tuple(x.shape)}")
    if not torch.isfinite(x).all():
        raise ValueError("samples contain NaN or infinite values")
    min_share = 0.25 / modes if min_share is None else min_share
    if not 0 < min_share <= 1:
        raise ValueError(f"min_share must lie in (0, 1], got {min_share}")
    d = torch.cdist(x, ring_centres(modes, radius))  # (n, modes)
    dmin, nearest = d.min(dim=1)
    good = dmin <= 3 * sigma
    share = torch.bincount(nearest[good], minlength=modes).float() / len(x)
    return Coverage(int((share >= min_share).sum()), good.float().mean().item(),
                    [round(s, 4) for s in share.tolist()])


# ---------------------------------------------------------------------------------------
# Training: several GANs at once
# ---------------------------------------------------------------------------------------

def _stacked_generator(p: dict, z: torch.Tensor, output: str) -> torch.Tensor:
    """:class:`Generator` for S models at once: ``z (S, B, latent)`` -> ``(S, B, d)``."""
    x = z
    for i in (0, 2, 4):
        x = torch.baddbmm(p[f"net.{i}.bias"].unsqueeze(1), x,
                          p[f"net.{i}.weight"].transpose(1, 2))
        if i < 4:
            x = torch.relu(x)
    return torch.sigmoid(x) if output == "sigmoid" else x


def _stacked_discriminator(p: dict, x: torch.Tensor, config: GANConfig) -> torch.Tensor:
    """:class:`Discriminator` for S models at once: ``x (S, B, d)`` -> ``(S, B // pack)``."""
    S, B, d = x.shape
    h = x.reshape(S, B // config.pack, d * config.pack)
    for i in (0, 2):
        h = F.leaky_relu(torch.baddbmm(p[f"body.{i}.bias"].unsqueeze(1), h,
                                       p[f"body.{i}.weight"].transpose(1, 2)), LEAK)
    if config.minibatch_std:
        h = minibatch_std(h)
    out = torch.baddbmm(p["head.bias"].unsqueeze(1), h, p["head.weight"].transpose(1, 2))
    return out.squeeze(-1)


@dataclass
class GANHistory:
    """Per logged step: the mean losses, the generator's weights (raw and EMA) at each
    snapshot step, and the training time (``seconds``: the batched run's total divided
    by the number of seeds trained together, not one model trained alone)."""

    steps: list = field(default_factory=list)
    d_loss: list = field(default_factory=list)
    g_loss: list = field(default_factory=list)
    snapshot_steps: list = field(default_factory=list)
    snapshots: list = field(default_factory=list)  # G state_dicts at snapshot_steps
    ema_snapshots: list = field(default_factory=list)
    d_snapshots: list = field(default_factory=list)  # D state_dicts at snapshot_steps
    seconds: float = 0.0

    def generator_at(self, i: int, ema: bool = False) -> Generator:
        """The generator as it was at snapshot ``i`` (eval mode)."""
        if ema and self.snapshots and not self.ema_snapshots:
            raise ValueError("this run kept no moving average of the weights (it was "
                             "trained with ema=None): use ema=False or train with ema")
        states = self.ema_snapshots if ema else self.snapshots
        if not states:
            raise ValueError("no snapshots were kept")
        g = Generator(self.config)
        g.load_state_dict(states[i])
        return g.eval()

    def discriminator_at(self, i: int) -> Discriminator:
        """The discriminator as it was at snapshot ``i`` (eval mode)."""
        if not self.d_snapshots:
            raise ValueError("no snapshots were kept")
        d = Discriminator(self.config)
        d.load_state_dict(self.d_snapshots[i])
        return d.eval()

    config: GANConfig = DIGITS_CONFIG


#: The chapter's recipe for the digits GAN.
CHAPTER_RECIPE = dict(steps=3000, batch_size=64, lr_g=4e-3, lr_d=4e-3, betas=(0.5, 0.999),
                      loss="nonsaturating", ema=0.99)
#: The recipe of the ring GANs.
RING_RECIPE = dict(steps=1500, batch_size=128, lr_g=3e-3, lr_d=3e-3, betas=(0.5, 0.999),
                   loss="nonsaturating", ema=None)


def train_gans(config: GANConfig, data, *, seeds: Sequence[int] = (0,), steps: int = 2000,
               batch_size: int = 64, lr_g: float = 1e-3, lr_d: float = 1e-3,
               betas=(0.5, 0.999), loss: str = "nonsaturating", ema: Optional[float] = None,
               snapshot_every: Optional[int] = None, log_every: int = 100):
    """Train one GAN per seed, all at once: ``(generators, discriminators, histories)``.

    ``data``: real samples ``(N, data_dim)`` (batches drawn without replacement, a new
    order each pass, per seed), or a function ``data(n, generator)`` that draws ``n``
    fresh samples (the ring). Each step: one Adam step of ``D`` on a real and a fake
    batch, then one of ``G`` on a fresh fake batch, judged by the updated ``D``, with
    the ``loss`` chosen
    (``"nonsaturating"`` or ``"saturating"``). ``ema``: the decay of an exponential
    moving average of ``G``'s weights, kept beside them (``None``: none). Every
    ``snapshot_every`` steps (and after the last) ``G``'s weights are stored in the
    history, to measure the generator over training time. Deterministic given the
    seeds (weights from ``torch.manual_seed(seed)``, batches and noise from a generator
    per seed); runs on the CPU on one thread. Returns the final generators (raw weights;
    ``generator_at(-1, ema=True)`` gives the average) in eval mode.
    """
    seeds = list(seeds)
    if not seeds:
        raise ValueError("need at least one seed")
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be a positive integer, got {steps!r}")
    if batch_size < 2 or batch_size % config.pack:
        raise ValueError(f"batch_size must be >= 2 and a multiple of pack ({config.pack}), "
                         f"got {batch_size}")
    if not (lr_g > 0 and lr_d > 0):
        raise ValueError(f"learning rates must be > 0, got {lr_g} and {lr_d}")
    if isinstance(log_every, bool) or not isinstance(log_every, int) or log_every < 1:
        raise ValueError(f"log_every must be a positive integer, got {log_every!r}")
    if ema is not None and not 0 < ema < 1:
        raise ValueError(f"ema must lie in (0, 1) or be None, got {ema}")
    generator_loss(torch.zeros(1), loss)  # a clear error for an unknown loss
    if not callable(data):
        X = torch.as_tensor(data).detach().float().cpu()
        if X.dim() != 2 or X.shape[1] != config.data_dim or len(X) < batch_size:
            raise ValueError(f"data must have shape (N, {config.data_dim}) with N >= "
                             f"batch_size ({batch_size}), got {tuple(X.shape)}")
        if not torch.isfinite(X).all():
            raise ValueError("data contains NaN or infinite values")
        if config.output == "sigmoid" and (X.min() < 0 or X.max() > 1):
            raise ValueError(f"with a sigmoid generator the data must lie in [0, 1], got "
                             f"{X.min().item():.3g} to {X.max().item():.3g} (grey levels "
                             "0-16? divide by 16)")
    gens, discs = [], []
    for s in seeds:
        torch.manual_seed(s)
        gens.append(Generator(config))
        discs.append(Discriminator(config))
    pg = {n: torch.stack([dict(g.named_parameters())[n].detach() for g in gens])
          .requires_grad_() for n, _ in gens[0].named_parameters()}
    pd = {n: torch.stack([dict(d.named_parameters())[n].detach() for d in discs])
          .requires_grad_() for n, _ in discs[0].named_parameters()}
    opt_g = torch.optim.Adam(pg.values(), lr=lr_g, betas=betas, fused=True)
    opt_d = torch.optim.Adam(pd.values(), lr=lr_d, betas=betas, fused=True)
    pema = {n: v.detach().clone() for n, v in pg.items()} if ema is not None else None
    rngs = [torch.Generator().manual_seed(10_000 + s) for s in seeds]
    histories = [GANHistory(config=config) for _ in seeds]
    S, B = len(seeds), batch_size

    if callable(data):
        def real_batch():
            return torch.stack([data(B, g) for g in rngs])
    else:
        orders, pos = [None] * S, [len(X)] * S

        def real_batch():
            out = []
            for k, g in enumerate(rngs):
                if pos[k] + B > len(X):
                    orders[k], pos[k] = torch.randperm(len(X), generator=g), 0
                out.append(X[orders[k][pos[k]: pos[k] + B]])
                pos[k] += B
            return torch.stack(out)

    def noise():
        return torch.stack([torch.randn(B, config.latent, generator=g) for g in rngs])

    def snapshot(step):
        for k, h in enumerate(histories):
            h.snapshot_steps.append(step)
            h.snapshots.append({n: v[k].detach().clone() for n, v in pg.items()})
            h.d_snapshots.append({n: v[k].detach().clone() for n, v in pd.items()})
            if pema is not None:
                h.ema_snapshots.append({n: v[k].clone() for n, v in pema.items()})

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # small matrices: threads only add overhead
    start = time.perf_counter()
    try:
        d_sum, g_sum, n_sum = torch.zeros(S), torch.zeros(S), 0
        for step in range(1, steps + 1):
            real = real_batch()
            with torch.no_grad():
                fake = _stacked_generator(pg, noise(), config.output)  # (S, B, d)
            lr_ = _stacked_discriminator(pd, real, config)
            lf_ = _stacked_discriminator(pd, fake, config)
            d_each = F.softplus(-lr_).mean(1) + F.softplus(lf_).mean(1)  # (S,)
            opt_d.zero_grad()
            d_each.sum().backward()
            opt_d.step()
            # the generator's step: fresh fakes, judged by the updated D; D's weights
            # need no gradient here
            for v in pd.values():
                v.requires_grad_(False)
            fake = _stacked_generator(pg, noise(), config.output)
            lf = _stacked_discriminator(pd, fake, config)
            if loss == "nonsaturating":
                g_each = F.softplus(-lf).mean(1)
            else:
                g_each = -F.softplus(lf).mean(1)
            opt_g.zero_grad()
            g_each.sum().backward()
            opt_g.step()
            for v in pd.values():
                v.requires_grad_(True)
            if pema is not None:
                with torch.no_grad():
                    torch._foreach_lerp_(list(pema.values()), list(pg.values()), 1 - ema)
            d_sum += d_each.detach()
            g_sum += g_each.detach()
            n_sum += 1
            if step % log_every == 0 or step == steps:
                for k, h in enumerate(histories):
                    h.steps.append(step)
                    h.d_loss.append(d_sum[k].item() / n_sum)
                    h.g_loss.append(g_sum[k].item() / n_sum)
                d_sum, g_sum, n_sum = torch.zeros(S), torch.zeros(S), 0
            if snapshot_every and (step % snapshot_every == 0 or step == steps):
                snapshot(step)
            elif not snapshot_every and step == steps:
                snapshot(step)
    finally:
        torch.set_num_threads(threads)
    seconds = time.perf_counter() - start
    with torch.no_grad():
        for k, (g, d) in enumerate(zip(gens, discs)):
            for n, param in g.named_parameters():
                param.copy_(pg[n][k])
            for n, param in d.named_parameters():
                param.copy_(pd[n][k])
            g.eval()
            d.eval()
    for h in histories:
        h.seconds = seconds / S
    return gens, discs, histories


def copy_generator(g: Generator) -> Generator:
    """An independent copy (eval mode)."""
    return copy.deepcopy(g).eval()


@torch.no_grad()
def digit_samples(g: Generator, n: int = 450, seed: int = 0) -> torch.Tensor:
    """``n`` digits ``(n, 1, 8, 8)`` in grey levels 0-16 from a digits generator, with
    noise from ``torch.Generator().manual_seed(seed)``."""
    if g.config.data_dim != 64 or g.config.output != "sigmoid":
        raise ValueError("digit_samples needs a digits generator (64 outputs, sigmoid)")
    return (g.sample(n, torch.Generator().manual_seed(seed)) * 16).reshape(n, 1, 8, 8)


def fd_over_training(history: GANHistory, fd_fn: Callable, ema: bool = False,
                     seed: int = 0) -> list:
    """``fd_fn(samples)`` of each snapshot's generator (450 digits, noise ``seed``)."""
    if ema and history.snapshots and not history.ema_snapshots:
        raise ValueError("this run kept no moving average of the weights (it was trained "
                         "with ema=None): use ema=False or train with ema")
    n = len(history.ema_snapshots if ema else history.snapshots)
    return [fd_fn(digit_samples(history.generator_at(i, ema), seed=seed)) for i in range(n)]
