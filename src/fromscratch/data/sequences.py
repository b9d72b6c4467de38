"""Synthetic sequence tasks, generated on the fly from a seed."""

from __future__ import annotations

import torch


def remember_first(
    n: int, length: int, n_symbols: int = 4, n_noise: int = 4, seed: int = 0
) -> tuple:
    """The long-range memory task: remember the first token of a sequence.

    Each sequence starts with one of ``n_symbols`` symbols (ids ``0 .. n_symbols-1``)
    followed by ``length - 1`` random noise tokens (ids ``n_symbols .. n_symbols+n_noise-1``).
    The target is the first symbol, to be predicted after reading the whole sequence,
    so the information must survive ``length - 1`` steps. Chance accuracy is
    ``1 / n_symbols``.

    Returns ``X`` of shape ``(n, length)`` (token ids) and ``y`` of shape ``(n,)``.
    """
    if length < 1 or n < 1 or n_symbols < 2 or n_noise < 1:
        raise ValueError(
            f"need n >= 1, length >= 1, n_symbols >= 2, n_noise >= 1; got "
            f"n={n}, length={length}, n_symbols={n_symbols}, n_noise={n_noise}"
        )
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, n_symbols, (n,), generator=g)
    X = torch.randint(n_symbols, n_symbols + n_noise, (n, length), generator=g)
    X[:, 0] = y
    return X, y
