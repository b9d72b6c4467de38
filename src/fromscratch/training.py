"""A small, readable training loop shared by every chapter.

``fit`` trains any ``nn.Module`` on tensors ``(X, y)`` with mini-batches, shows a
notebook-aware progress bar (``tqdm.auto``) and returns a :class:`History`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable, Optional

import torch
import torch.nn as nn
import torch.nn.functional as F

from .config import device as default_device
from .config import progress_enabled


@dataclass
class History:
    """What ``fit`` measured: one entry per step (loss) or per epoch (the rest)."""

    step_loss: list = field(default_factory=list)
    epoch_loss: list = field(default_factory=list)
    val_metric: list = field(default_factory=list)
    seconds: float = 0.0

    @property
    def final_val(self) -> float:
        if not self.val_metric:
            raise ValueError("no validation metric was recorded: pass val=(X, y) to fit()")
        return self.val_metric[-1]


def cross_entropy(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Cross-entropy for class logits ``(..., C)`` and integer targets ``(...)``."""
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), target.reshape(-1))


def _check_xy(X, y, what: str):
    if not (isinstance(X, torch.Tensor) and isinstance(y, torch.Tensor)):
        raise TypeError(f"{what} must be a pair of tensors (X, y), got {type(X)} and {type(y)}")
    if len(X) != len(y):
        raise ValueError(f"{what}: X has {len(X)} rows but y has {len(y)}")
    if len(X) == 0:
        raise ValueError(f"{what} is empty")


def fit(
    model: nn.Module,
    train: tuple,
    *,
    epochs: int = 10,
    lr: float = 1e-3,
    batch_size: int = 64,
    loss_fn: Callable = cross_entropy,
    optimizer: Optional[torch.optim.Optimizer] = None,
    val: Optional[tuple] = None,
    metric: Optional[Callable] = None,
    augment: Optional[Callable] = None,
    clip_grad: Optional[float] = None,
    cosine: bool = False,
    seed: int = 0,
    device: Optional[torch.device] = None,
    progress: Optional[bool] = None,
    desc: str = "training",
) -> History:
    """Train ``model`` on ``train = (X, y)``; evaluate ``metric`` on ``val`` after each epoch.

    ``augment(xb, generator)`` may transform each input batch (e.g. random shifts).
    ``metric(model, X, y)`` defaults to :func:`accuracy`. ``cosine=True`` decays the
    learning rate to zero over the run (a cosine schedule). The data order and
    the augmentation are drawn from a generator seeded with ``seed``; dropout and weight
    initialisation use PyTorch's global generator, so call ``torch.manual_seed`` before
    building the model. Then a run repeats exactly on the same machine.
    """
    X, y = train
    _check_xy(X, y, "train")
    if val is not None:
        _check_xy(*val, "val")
    if epochs < 1 or batch_size < 1:
        raise ValueError(f"epochs and batch_size must be >= 1, got {epochs} and {batch_size}")
    device = device or default_device()
    metric = metric or accuracy
    model.to(device)
    optimizer = optimizer or torch.optim.Adam(model.parameters(), lr=lr)
    generator = torch.Generator().manual_seed(seed)
    history = History()
    n_steps = epochs * ((len(X) + batch_size - 1) // batch_size)
    scheduler = (
        torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=n_steps) if cosine else None
    )
    show = progress_enabled() if progress is None else progress
    n_batches = (len(X) + batch_size - 1) // batch_size
    bar = None
    if show:
        from tqdm.auto import tqdm

        bar = tqdm(total=epochs * n_batches, desc=desc, leave=False)
    start = time.perf_counter()
    for _ in range(epochs):
        model.train()
        order = torch.randperm(len(X), generator=generator)
        total = 0.0
        for i in range(0, len(X), batch_size):
            idx = order[i : i + batch_size]
            xb, yb = X[idx], y[idx]
            if augment is not None:
                xb = augment(xb, generator)
            xb, yb = xb.to(device), yb.to(device)
            loss = loss_fn(model(xb), yb)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if clip_grad is not None:
                nn.utils.clip_grad_norm_(model.parameters(), clip_grad)
            optimizer.step()
            if scheduler is not None:
                scheduler.step()
            history.step_loss.append(loss.item())
            total += loss.item() * len(idx)
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f"{loss.item():.3f}")
        history.epoch_loss.append(total / len(X))
        if val is not None:
            history.val_metric.append(metric(model, *val))
    if bar is not None:
        bar.close()
    history.seconds = time.perf_counter() - start
    return history


@torch.no_grad()
def predict(model: nn.Module, X: torch.Tensor, batch_size: int = 1024) -> torch.Tensor:
    """Model outputs for ``X``, computed in batches in eval mode, returned on the CPU."""
    was_training = model.training
    model.eval()
    dev = next(model.parameters()).device
    outs = [model(X[i : i + batch_size].to(dev)).cpu() for i in range(0, len(X), batch_size)]
    model.train(was_training)
    return torch.cat(outs)


def accuracy(model: nn.Module, X: torch.Tensor, y: torch.Tensor) -> float:
    """Fraction of rows where the arg-max of the model's output equals ``y``."""
    _check_xy(X, y, "accuracy")
    pred = predict(model, X).argmax(dim=-1)
    return (pred == y).float().mean().item()


def ensemble_accuracy(models, X: torch.Tensor, y: torch.Tensor) -> float:
    """Accuracy of several classifiers voting together: their softmax probabilities are
    averaged and the most probable class is the prediction."""
    models = list(models)
    if not models:
        raise ValueError("ensemble_accuracy needs at least one model")
    _check_xy(X, y, "ensemble_accuracy")
    probs = sum(predict(m, X).softmax(dim=-1) for m in models) / len(models)
    return (probs.argmax(dim=-1) == y).float().mean().item()


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


class Timer:
    """``with Timer() as t: ...`` then ``t.seconds``."""

    def __enter__(self):
        self.start = time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.seconds = time.perf_counter() - self.start
        return False


def best_time(fn: Callable, *, repeat: int = 5, warmup: int = 1, number: int = 1) -> float:
    """Seconds one call of ``fn()`` takes: the best of ``repeat`` timings of ``number``
    calls each, after ``warmup`` untimed calls.

    The minimum is the least disturbed measurement (other work on the machine only adds
    time), so ratios of best times are stable enough to assert with a wide margin.
    """
    if repeat < 1 or number < 1 or warmup < 0:
        raise ValueError(f"repeat and number must be >= 1 and warmup >= 0, got "
                         f"{repeat}, {number}, {warmup}")
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        for _ in range(number):
            fn()
        times.append((time.perf_counter() - start) / number)
    return min(times)
