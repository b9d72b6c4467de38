"""Autoencoder and variational autoencoder (VAE) for the 8x8 digits (chapter 8).

An *encoder* maps an image to a short code (the *bottleneck*), a *decoder* maps the code
back to an image. The plain :class:`Autoencoder` is trained to reconstruct its input;
the :class:`VAE` (Kingma and Welling 2014, "Auto-encoding variational Bayes") encodes each
image as a Gaussian ``q(z|x) = N(mu, diag(exp(logvar)))``, draws a code from it with the
*reparameterization trick* ``z = mu + exp(logvar / 2) * eps, eps ~ N(0, I)`` and is trained
on the negative ELBO: a reconstruction term plus ``beta`` times the KL divergence of
``q(z|x)`` from the prior ``N(0, I)``. The KL term keeps the codes where the prior puts
its mass, so that decoding prior samples ``z ~ N(0, I)`` gives digits.

Images: the models take and give images scaled to [0, 1] (as
:func:`~fromscratch.data.load_digits_split` gives them), shape ``(n, 1, 8, 8)`` or
``(n, 64)``; outputs are ``(n, 1, 8, 8)``. The decoder gives the mean of a Gaussian
likelihood per pixel, ``N(x_hat, sigma^2)`` with a fixed ``sigma`` (:class:`VAEConfig`), kept
in [0, 1] by a sigmoid; the reconstruction term is the squared error over ``2 sigma^2``.
Multiply by 16 for the grey levels that :mod:`fromscratch.generative` measures.

A trained VAE is saved with :func:`save_vae` and loaded with :func:`load_vae`;
:func:`load_or_train_vae` returns the chapter's VAE from a cache file, training it with the
chapter's recipe (:data:`CHAPTER_RECIPE`, a few seconds on a CPU) when there is none. The
diffusion chapter trains in this VAE's latent space.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Optional, Tuple

import torch
import torch.nn as nn

PIXELS = 64


@dataclass(frozen=True)
class VAEConfig:
    """Sizes of the encoder and decoder (both MLPs with two hidden layers)."""

    latent: int = 8
    hidden: int = 128
    sigma: float = 0.1  # the decoder's pixel noise, in [0, 1] units (0.1 = 1.6 grey levels)

    def __post_init__(self):
        for name in ("latent", "hidden"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"VAEConfig.{name} must be a positive integer, got {value!r}")
        if not self.sigma > 0:
            raise ValueError(f"VAEConfig.sigma must be > 0, got {self.sigma!r}")


def _mlp(d_in: int, hidden: int, d_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(d_in, hidden), nn.ReLU(), nn.Linear(hidden, hidden),
                         nn.ReLU(), nn.Linear(hidden, d_out))


def as_flat_images(x, name: str = "x") -> torch.Tensor:
    """``x`` (images ``(n, 1, 8, 8)``, ``(n, 8, 8)`` or ``(n, 64)`` in [0, 1]) as ``(n, 64)``,
    or a clear error."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor of images, got {type(x).__name__}")
    if not x.is_floating_point():
        raise TypeError(f"{name} must be a float tensor, got dtype {x.dtype} (divide integer "
                        "grey levels by 16.0)")
    if x.dim() == 4 and x.shape[1:] == (1, 8, 8) or x.dim() == 3 and x.shape[1:] == (8, 8):
        return x.reshape(len(x), PIXELS)
    if x.dim() == 2 and x.shape[1] == PIXELS:
        return x
    hint = " (one image? add the batch axis with x.unsqueeze(0))" if x.dim() < 3 else ""
    raise ValueError(f"{name} must have shape (n, 1, 8, 8), (n, 8, 8) or (n, 64), got "
                     f"{tuple(x.shape)}{hint}")


def _check_range(x: torch.Tensor, name: str = "x") -> None:
    if len(x) and (x.min() < -1e-6 or x.max() > 1 + 1e-6):
        raise ValueError(f"{name} must hold images scaled to [0, 1], got values from "
                         f"{x.min().item():.3g} to {x.max().item():.3g} (grey levels 0-16? "
                         "divide by 16)")


def _images(flat: torch.Tensor) -> torch.Tensor:
    return flat.reshape(len(flat), 1, 8, 8)


class Autoencoder(nn.Module):
    """A plain autoencoder: ``z = encoder(x)``, ``x_hat = sigmoid(decoder(z))``."""

    def __init__(self, config: VAEConfig = VAEConfig()):
        super().__init__()
        self.config = config
        self.encoder = _mlp(PIXELS, config.hidden, config.latent)
        self.decoder = _mlp(config.latent, config.hidden, PIXELS)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Codes ``(n, latent)`` of images ``x`` in [0, 1]."""
        return self.encoder(as_flat_images(x))

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Images ``(n, 1, 8, 8)`` in [0, 1] from codes ``z``."""
        return torch.sigmoid(_images(self.decoder(z)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Reconstructions ``(n, 1, 8, 8)`` in [0, 1]."""
        return self.decode(self.encode(x))


def reparameterize(mu: torch.Tensor, logvar: torch.Tensor,
                   eps: Optional[torch.Tensor] = None,
                   generator: Optional[torch.Generator] = None) -> torch.Tensor:
    """``z = mu + sigma * eps`` with ``sigma = exp(logvar / 2)`` and ``eps ~ N(0, I)``: a
    sample of ``N(mu, sigma^2)`` that is a differentiable function of ``mu`` and
    ``logvar`` (the randomness sits in ``eps``, which does not depend on them)."""
    if mu.shape != logvar.shape:
        raise ValueError(f"mu and logvar must have one shape, got {tuple(mu.shape)} and "
                         f"{tuple(logvar.shape)}")
    if eps is None:
        eps = torch.randn(mu.shape, generator=generator, dtype=mu.dtype).to(mu.device)
    return mu + torch.exp(0.5 * logvar) * eps


def kl_divergence(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """``KL(N(mu, exp(logvar)) || N(0, I))`` per example, summed over the latent axis:
    ``0.5 * sum(mu^2 + exp(logvar) - 1 - logvar)``, shape ``(n,)``, in nats."""
    return 0.5 * (mu.pow(2) + logvar.exp() - 1 - logvar).sum(dim=-1)


def reconstruction_nll(x_hat: torch.Tensor, x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Negative log-likelihood of images ``x`` under a Gaussian decoder ``N(x_hat, sigma^2)``
    per pixel (both in [0, 1]), without its constant: ``sum (x - x_hat)^2 / (2 sigma^2)``
    over the 64 pixels, shape ``(n,)``, in nats."""
    d = as_flat_images(x_hat, "x_hat") - as_flat_images(x)
    return d.pow(2).sum(dim=-1) / (2 * sigma ** 2)


class VAE(Autoencoder):
    """A variational autoencoder: the encoder gives ``mu`` and ``logvar`` of ``q(z|x)``."""

    def __init__(self, config: VAEConfig = VAEConfig()):
        super().__init__(config)
        self.encoder = _mlp(PIXELS, config.hidden, 2 * config.latent)

    def encode_distribution(self, x: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """``(mu, logvar)`` of ``q(z|x)``, each ``(n, latent)``."""
        mu, logvar = self.encoder(as_flat_images(x)).chunk(2, dim=-1)
        return mu, logvar

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """The mean code ``mu`` (deterministic; what a probe or an interpolation uses)."""
        return self.encode_distribution(x)[0]

    def elbo_terms(self, x: torch.Tensor, generator: Optional[torch.Generator] = None
                   ) -> Tuple[torch.Tensor, torch.Tensor]:
        """Per-example reconstruction NLL and KL, each ``(n,)`` in nats; one sample of
        ``z`` per image. The negative ELBO is their sum."""
        mu, logvar = self.encode_distribution(x)
        z = reparameterize(mu, logvar, generator=generator)
        return reconstruction_nll(self.decode(z), x, self.config.sigma), kl_divergence(mu, logvar)

    def loss(self, x: torch.Tensor, beta: float = 1.0,
             generator: Optional[torch.Generator] = None) -> torch.Tensor:
        """The mean over the batch of ``reconstruction + beta * KL`` (beta = 1: -ELBO)."""
        recon, kl = self.elbo_terms(x, generator)
        return (recon + beta * kl).mean()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Reconstructions from the mean code (no sampling)."""
        return self.decode(self.encode(x))

    @torch.no_grad()
    def sample(self, n: int, generator: Optional[torch.Generator] = None) -> torch.Tensor:
        """``n`` images ``(n, 1, 8, 8)`` in [0, 1]: prior codes ``z ~ N(0, I)`` decoded."""
        dev = next(self.parameters()).device
        z = torch.randn(n, self.config.latent, generator=generator).to(dev)
        return self.decode(z)


# ---------------------------------------------------------------------------------------
# Training
# ---------------------------------------------------------------------------------------

@dataclass
class VAEHistory:
    """Per-epoch means of the loss terms (nats per image) and the training time."""

    recon: list = field(default_factory=list)
    kl: list = field(default_factory=list)
    seconds: float = 0.0


#: The chapter's recipe for its VAE (and the autoencoder beside it).
CHAPTER_RECIPE = dict(epochs=200, lr=2e-3, batch_size=64, beta=1.0)
CHAPTER_CONFIG = VAEConfig(latent=8, hidden=128, sigma=0.13)


def train_autoencoder(model: Autoencoder, X: torch.Tensor, *, epochs: int = 150,
                      lr: float = 2e-3, batch_size: int = 64, seed: int = 0,
                      beta: float = 1.0, cosine: bool = False) -> VAEHistory:
    """Train ``model`` on images ``X`` in [0, 1] with Adam: a :class:`VAE` on
    ``reconstruction + beta * KL``, a plain :class:`Autoencoder` on the reconstruction
    alone (``beta`` is ignored). ``cosine``: the learning rate decays to 0 along a cosine.
    Deterministic given ``seed`` (batch order and ``eps``). Leaves the model in eval mode
    and returns the per-epoch loss terms. (One model: :func:`train_together`.)"""
    return train_together([model], X, epochs=epochs, lr=lr, batch_size=batch_size,
                          seeds=[seed], betas=[beta], cosine=cosine)[0]


def _stacked_mlp(p: dict, prefix: str, x: torch.Tensor) -> torch.Tensor:
    """The MLP of :func:`_mlp` for S models at once: ``x (S, B, d_in)``, weights
    ``(S, d_out, d_in)``, biases ``(S, d_out)``."""
    for i in (0, 2, 4):
        x = torch.baddbmm(p[f"{prefix}.{i}.bias"].unsqueeze(1), x,
                          p[f"{prefix}.{i}.weight"].transpose(1, 2))
        if i < 4:
            x = torch.relu(x)
    return x


def train_together(models, X: torch.Tensor, *, epochs: int = 150, lr: float = 2e-3,
                   batch_size: int = 64, seeds=None, betas=None,
                   cosine: bool = False) -> list:
    """Train several models of one class and config at once (e.g. one per seed, or one
    per ``beta``), as one batched computation: each model keeps its own batch order and
    noise (a generator seeded with its seed), and Adam's update is elementwise, so this is
    the same as training them one by one, only faster on a CPU, where a small network's
    time goes into per-step overhead. Returns one :class:`VAEHistory` per model."""
    models = list(models)
    if not models or any(not isinstance(m, Autoencoder) for m in models):
        raise TypeError("models must be a non-empty list of Autoencoder or VAE modules")
    kind, config = type(models[0]), models[0].config
    if any(type(m) is not kind or m.config != config for m in models):
        raise ValueError("models trained together must share their class and config")
    S = len(models)
    seeds = list(range(S)) if seeds is None else list(seeds)
    betas = [1.0] * S if betas is None else [float(b) for b in betas]
    if len(seeds) != S or len(betas) != S:
        raise ValueError(f"need one seed and one beta per model ({S}), got {len(seeds)} "
                         f"and {len(betas)}")
    if any(b < 0 for b in betas):
        raise ValueError(f"beta must be >= 0, got {betas}")
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1 or \
            batch_size < 1 or not lr > 0:
        raise ValueError(f"need epochs >= 1, batch_size >= 1 and lr > 0, got {epochs}, "
                         f"{batch_size}, {lr}")
    X = as_flat_images(X, "X").detach().float().cpu()
    _check_range(X, "X")
    is_vae = issubclass(kind, VAE)
    names = [n for n, _ in models[0].named_parameters()]
    p = {n: torch.stack([dict(m.named_parameters())[n].detach().cpu() for m in models])
         .requires_grad_() for n in names}
    gens = [torch.Generator().manual_seed(s) for s in seeds]
    beta = torch.tensor(betas).unsqueeze(1)
    opt = torch.optim.Adam(p.values(), lr=lr)
    steps = epochs * math.ceil(len(X) / batch_size)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps) if cosine else None
    histories = [VAEHistory() for _ in models]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # small matrices: threads only add overhead, and on a busy
    try:  # machine they cost many times over
        _epochs(p, X, gens, beta, opt, sched, histories, epochs, batch_size, is_vae,
                config.sigma)
    finally:
        torch.set_num_threads(threads)
    with torch.no_grad():
        for s, m in enumerate(models):
            for n, param in m.named_parameters():
                param.copy_(p[n][s].to(param.device))
            m.eval()
    return histories


def _epochs(p, X, gens, beta, opt, sched, histories, epochs, batch_size, is_vae, sigma):
    S = len(gens)
    start = time.perf_counter()
    for _ in range(epochs):
        orders = [torch.randperm(len(X), generator=g) for g in gens]
        tot_r, tot_k = torch.zeros(S), torch.zeros(S)
        for i in range(0, len(X), batch_size):
            xb = torch.stack([X[o[i : i + batch_size]] for o in orders])  # (S, B, 64)
            code = _stacked_mlp(p, "encoder", xb)
            if is_vae:
                mu, logvar = code.chunk(2, dim=-1)
                eps = torch.stack([torch.randn(mu.shape[1:], generator=g) for g in gens])
                code = mu + torch.exp(0.5 * logvar) * eps  # reparameterize, per model
                kl = kl_divergence(mu, logvar)  # (S, B)
            x_hat = torch.sigmoid(_stacked_mlp(p, "decoder", code))
            recon = (x_hat - xb).pow(2).sum(-1) / (2 * sigma ** 2)
            if not is_vae:
                kl = torch.zeros_like(recon)
            loss = (recon + beta * kl).mean(dim=1).sum()  # each model's own mean loss
            opt.zero_grad()
            loss.backward()
            opt.step()
            if sched is not None:
                sched.step()
            tot_r += recon.detach().sum(dim=1)
            tot_k += kl.detach().sum(dim=1)
        for h, r, k in zip(histories, tot_r.tolist(), tot_k.tolist()):
            h.recon.append(r / len(X))
            h.kl.append(k / len(X))
    seconds = time.perf_counter() - start
    for h in histories:
        h.seconds = seconds / S


def train_vae(X: Optional[torch.Tensor] = None, config: VAEConfig = CHAPTER_CONFIG, *,
              seed: int = 0, **recipe) -> Tuple[VAE, VAEHistory]:
    """A :class:`VAE` trained with the chapter's recipe (:data:`CHAPTER_RECIPE`, overridden
    by ``recipe``) on ``X`` (default: the digits' training split): ``(model, history)``.
    The weights come from ``torch.manual_seed(seed)``; it runs on the CPU."""
    if X is None:
        from ..data import load_digits_split

        X = load_digits_split().X_train
    torch.manual_seed(seed)
    model = VAE(config)
    history = train_autoencoder(model, X, seed=seed, **{**CHAPTER_RECIPE, **recipe})
    return model, history


# ---------------------------------------------------------------------------------------
# Measures
# ---------------------------------------------------------------------------------------

@torch.no_grad()
def reconstruction_rmse(model: Autoencoder, X: torch.Tensor) -> float:
    """Root mean squared error, in grey levels (0-16), of ``model``'s reconstructions of
    images ``X`` in [0, 1] (a VAE reconstructs from its mean code). Eval mode."""
    X = as_flat_images(X, "X").float()
    was_training = model.training
    model.eval()
    x_hat = as_flat_images(model(X))
    model.train(was_training)
    return math.sqrt(((x_hat - X) * 16).pow(2).mean().item())


# ---------------------------------------------------------------------------------------
# Saving and loading
# ---------------------------------------------------------------------------------------

def save_vae(model: VAE, path, **info) -> None:
    """Write ``model``'s config and weights (and any ``info``, e.g. its recipe) to ``path``."""
    if not isinstance(model, VAE):
        raise TypeError(f"save_vae saves a VAE, got {type(model).__name__}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"config": asdict(model.config), "info": info,
                "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()}},
               path)


def load_vae(path) -> VAE:
    """The :class:`VAE` stored by :func:`save_vae` (CPU, eval mode)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no saved VAE at {path}; train one with train_vae() and "
                                "save it with save_vae(model, path)")
    stored = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(stored, dict) or "state_dict" not in stored:
        raise ValueError(f"{path} does not hold a VAE saved by save_vae")
    model = VAE(VAEConfig(**stored["config"]))
    model.load_state_dict(stored["state_dict"])
    return model.eval()


def default_cache_dir() -> Path:
    """Where :func:`load_or_train_vae` keeps the chapter's VAE: ``$FROMSCRATCH_CACHE`` or
    ``~/.cache/fromscratch``."""
    return Path(os.environ.get("FROMSCRATCH_CACHE", Path.home() / ".cache" / "fromscratch"))


def load_or_train_vae(path=None, seed: int = 0) -> VAE:
    """The chapter's VAE (:data:`CHAPTER_CONFIG`, :data:`CHAPTER_RECIPE`, training split,
    ``seed``): loaded from ``path`` (default: ``vae_seed{seed}.pt`` in
    :func:`default_cache_dir`) if saved there, else trained (seconds) and saved."""
    path = Path(path) if path is not None else default_cache_dir() / f"vae_seed{seed}.pt"
    if path.exists():
        stored = torch.load(path, map_location="cpu", weights_only=True)
        if stored.get("info", {}).get("recipe") == dict(CHAPTER_RECIPE) and \
                stored["config"] == asdict(CHAPTER_CONFIG):
            return load_vae(path)  # else: saved with another recipe, train afresh
    model, history = train_vae(seed=seed)
    try:
        save_vae(model, path, recipe=dict(CHAPTER_RECIPE), seed=seed,
                 config=asdict(CHAPTER_CONFIG))
    except OSError:  # a read-only home: the model is still returned
        pass
    return model
