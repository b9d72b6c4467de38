"""A count-based n-gram language model: the baseline for the character models.

An order-``n`` model predicts the next symbol from the ``n - 1`` symbols before it, by
counting in the training text how often each symbol followed that context. Unseen
contexts are the rule, not the exception, so the estimate is smoothed by interpolating
with the next-shorter context (additive smoothing towards the lower order, as in
Chen & Goodman 1999, "An empirical study of smoothing techniques for language modeling"):

    P_k(c | h) = (N(h, c) + alpha * P_{k-1}(c | h')) / (N(h) + alpha)

where ``h`` holds the last ``k`` symbols, ``h'`` the last ``k - 1``, ``N`` counts in the
training text, and ``P_{-1}`` is uniform over the vocabulary. ``alpha`` says how many
counts the shorter context is worth. The order and ``alpha`` are chosen on validation data.
"""

from __future__ import annotations

import math
from collections import defaultdict

import torch


class NGramModel:
    """Counts of every context of up to ``max_order - 1`` symbols and what followed it.

    ``fit(ids)`` counts once; ``log_probs(X, Y, order, alpha)`` then scores windows with
    any order up to ``max_order`` and any ``alpha``, so tuning both costs one count.
    """

    def __init__(self, vocab_size: int, max_order: int = 8):
        if vocab_size < 1 or max_order < 1:
            raise ValueError(f"need vocab_size >= 1 and max_order >= 1, got {vocab_size}, "
                             f"{max_order}")
        self.vocab_size, self.max_order = vocab_size, max_order
        self.follow = defaultdict(int)  # (context tuple, next id) -> count
        self.total = defaultdict(int)  # context tuple -> count

    def fit(self, ids: torch.Tensor) -> NGramModel:
        """Count every context (0 to max_order - 1 symbols) in the 1-D tensor ``ids``."""
        if ids.dim() != 1 or len(ids) < 2:
            raise ValueError(f"ids must be a 1-D tensor of at least 2 ids, got {tuple(ids.shape)}")
        seq = ids.tolist()
        for t in range(len(seq)):
            for k in range(min(self.max_order, t + 1)):  # k symbols of context
                h = tuple(seq[t - k : t])
                self.follow[h, seq[t]] += 1
                self.total[h] += 1
        return self

    def _counts(self, X: torch.Tensor, Y: torch.Tensor):
        """``N(h_k, y)`` and ``N(h_k)`` for every target and context length ``k``.

        Target ``Y[i, t]`` follows ``X[i, : t + 1]``: only the window's own symbols count
        as context, as for a recurrent model that starts each window from a zero state.
        Context lengths the window cannot supply get counts 0 (so they change nothing)."""
        if X.shape != Y.shape or X.dim() != 2:
            raise ValueError(f"X and Y must both be (n, block), got {tuple(X.shape)} and "
                             f"{tuple(Y.shape)}")
        hits, totals = [], []
        for x_row, y_row in zip(X.tolist(), Y.tolist()):
            for t, y in enumerate(y_row):
                h_row, n_row = [0] * self.max_order, [0] * self.max_order
                for k in range(min(self.max_order, t + 2)):
                    h = tuple(x_row[t + 1 - k : t + 1])  # the last k symbols read
                    n_row[k] = self.total.get(h, 0)
                    h_row[k] = self.follow.get((h, y), 0)
                hits.append(h_row)
                totals.append(n_row)
        shape = (*X.shape, self.max_order)
        hits = torch.tensor(hits, dtype=torch.float64).reshape(shape)
        totals = torch.tensor(totals, dtype=torch.float64).reshape(shape)
        return hits, totals

    def log_probs(self, X: torch.Tensor, Y: torch.Tensor, order: int, alpha: float,
                  counts=None) -> torch.Tensor:
        """``log P(Y[i, t] | context)`` of shape ``(n, block)``, in nats."""
        if not 1 <= order <= self.max_order:
            raise ValueError(f"order must be in 1..{self.max_order}, got {order}")
        if alpha <= 0:
            raise ValueError(f"alpha must be > 0, got {alpha}")
        hits, totals = self._counts(X, Y) if counts is None else counts
        p = torch.full(hits.shape[:2], 1.0 / self.vocab_size, dtype=torch.float64)
        for k in range(order):  # from no context up to order - 1 symbols
            p = (hits[..., k] + alpha * p) / (totals[..., k] + alpha)
        return p.log()

    def perplexity(self, X: torch.Tensor, Y: torch.Tensor, order: int, alpha: float,
                   counts=None) -> float:
        """exp(mean cross-entropy per predicted symbol), as for the recurrent models."""
        return math.exp(-self.log_probs(X, Y, order, alpha, counts).mean().item())

    def tune(self, X: torch.Tensor, Y: torch.Tensor, orders, alphas) -> dict:
        """Perplexity on ``(X, Y)`` (validation data) for every ``(order, alpha)``."""
        counts = self._counts(X, Y)
        return {(n, a): self.perplexity(X, Y, n, a, counts) for n in orders for a in alphas}
