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


def _check_task(n: int, length: int, vocab: int, need_distinct: bool = False):
    if n < 1 or length < 2 or vocab < 2:
        raise ValueError(f"need n >= 1, length >= 2, vocab >= 2; got n={n}, length={length}, "
                         f"vocab={vocab}")
    if need_distinct and vocab < length:
        raise ValueError(f"sequences of {length} distinct tokens need vocab >= {length}, "
                         f"got {vocab}")


def reverse_task(n: int, length: int = 10, vocab: int = 20, seed: int = 0) -> tuple:
    """A task that needs order: write the sequence backwards, ``Y[:, t] = X[:, length-1-t]``.

    Each sequence holds ``length`` distinct tokens, so a model that knows *which* tokens
    are present but not *where* can do no better than guessing one of the other
    ``length - 1`` tokens. Returns ``X`` and ``Y``, both ``(n, length)``."""
    _check_task(n, length, vocab, need_distinct=True)
    g = torch.Generator().manual_seed(seed)
    X = torch.rand(n, vocab, generator=g).argsort(dim=1)[:, :length]
    return X, X.flip(1)


def count_task(n: int, length: int = 10, vocab: int = 5, seed: int = 0) -> tuple:
    """A task that needs no order: at every position, how often its token occurs in the
    whole sequence (``1 .. length``). Permuting the input permutes the answer the same way.
    Returns ``X`` and ``Y``, both ``(n, length)``."""
    _check_task(n, length, vocab)
    g = torch.Generator().manual_seed(seed)
    X = torch.randint(0, vocab, (n, length), generator=g)
    Y = (X[:, :, None] == X[:, None, :]).sum(dim=2)
    return X, Y


def two_relations(n: int, length: int = 12, vocab: int = 16, seed: int = 0) -> tuple:
    """A task that needs two different relations at once: at every position ``t`` name the
    previous token ``X[:, t-1]`` and the first token ``X[:, 0]``.

    Returns ``X (n, length)`` and ``Y (n, length, 2)``: ``Y[..., 0]`` the previous token
    (-100, PyTorch's "ignore" label, at ``t = 0`` where there is none), ``Y[..., 1]`` the
    first token."""
    _check_task(n, length, vocab)
    g = torch.Generator().manual_seed(seed)
    X = torch.randint(0, vocab, (n, length), generator=g)
    previous = torch.cat([torch.full((n, 1), -100), X[:, :-1]], dim=1)
    first = X[:, :1].expand(n, length)
    return X, torch.stack([previous, first], dim=2)


def sort_task(n: int, length: int = 8, vocab: int = 10, seed: int = 0) -> tuple:
    """Write the sequence's tokens in increasing order, ``Y = X.sort(dim=1).values``.

    Output position ``t`` holds the ``t``-th smallest token: a model must know *which*
    position it is writing and see *every* input token. Returns ``X`` and ``Y``, ``(n, length)``."""
    _check_task(n, length, vocab)
    g = torch.Generator().manual_seed(seed)
    X = torch.randint(0, vocab, (n, length), generator=g)
    return X, X.sort(dim=1).values


def repeated_tokens(n: int, length: int = 32, vocab: int = 32, min_copy: int = 6,
                    max_copy: int = 12, seed: int = 0) -> tuple:
    """In-context copying: random tokens in which one random stretch appears twice.

    Each sequence of ``length`` uniform random tokens holds a stretch ``A`` of ``L`` tokens
    (``L`` drawn from ``min_copy .. max_copy``) starting at a random place, and ``A`` again
    right after it. Nothing but the context tells what comes next: a model that has learnt
    to look back for the previous occurrence of the current token and copy the token that
    followed it (an *induction head*) predicts the second copy, and nothing predicts the
    first. Because ``L`` and the start vary, no fixed offset or position gives the answer.

    Returns ``X (n, length)`` and two bool masks ``(n, length)`` over the positions whose
    *next* token is to be predicted: ``first`` where that token is in the first copy (its
    2nd to last token), ``second`` where it is in the second copy (its 2nd to last token:
    the second copy's first token follows ``A``'s end, which only knowing ``L`` predicts).
    """
    if n < 1 or vocab < 2 or not 2 <= min_copy <= max_copy or length < 2 * max_copy + 1:
        raise ValueError(f"need n >= 1, vocab >= 2, 2 <= min_copy <= max_copy and length >= "
                         f"2 * max_copy + 1; got n={n}, vocab={vocab}, min_copy={min_copy}, "
                         f"max_copy={max_copy}, length={length}")
    g = torch.Generator().manual_seed(seed)
    X = torch.randint(0, vocab, (n, length), generator=g)
    L = torch.randint(min_copy, max_copy + 1, (n,), generator=g)
    start = (torch.rand(n, generator=g) * (length - 2 * L + 1)).long()  # 0 .. length - 2L
    first = torch.zeros(n, length, dtype=torch.bool)
    second = torch.zeros(n, length, dtype=torch.bool)
    for i in range(n):
        s, m = start[i].item(), L[i].item()
        X[i, s + m:s + 2 * m] = X[i, s:s + m]
        first[i, s:s + m - 1] = True  # predicts tokens s+1 .. s+m-1
        second[i, s + m:s + 2 * m - 1] = True  # predicts tokens s+m+1 .. s+2m-1
    return X, first, second
