"""Alignment at toy scale: supervised fine-tuning, then DPO, on a programmatic preference.

A base language model continues text the way its training text does. *Alignment* moves
its outputs towards what someone prefers, without teaching it new text. The recipe of
InstructGPT (Ouyang et al. 2022) in miniature:

1. **Sample** several completions per prompt from the base model and **score** them. Here
   a program plays the human labeller (:func:`closes_brackets`: a completion is preferred
   when it opens brackets and closes every one it opens).
2. **Supervised fine-tuning (SFT)**: train on the preferred completions only (the loss
   counts the completion's tokens, not the prompt's): :func:`train_sft`.
3. **Preference optimisation** with DPO (Rafailov et al. 2023, "Direct preference
   optimization: your language model is secretly a reward model"): for pairs (preferred
   ``w``, dispreferred ``l``) of completions of the same prompt, raise
   ``log pi(w) - log pi(l)`` relative to a frozen reference model ``ref``::

       loss = -log sigmoid(beta * ((log pi(w) - log ref(w)) - (log pi(l) - log ref(l))))

   (:func:`dpo_loss`). ``beta`` sets how far the policy may move from the reference:
   the loss flattens once the policy's margin is large, so small ``beta`` tolerates less
   change per unit of margin. No reward model and no sampling during training are needed.

The baseline any alignment method must beat is **best-of-n**: sample ``n`` completions
from the base model and keep one that has the property (:func:`best_of_n_rate`): it needs
no training but ``n`` times the sampling.
"""

from __future__ import annotations

from typing import Callable, List, Optional, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from .gpt import GPT, generate, optimizer_step

BRACKETS = {"(": ")", "[": "]", "{": "}"}


def closes_brackets(text: str) -> bool:
    """The toy preference: ``text`` contains at least one bracket, every ``( [ {`` it opens
    is closed by the matching ``) ] }`` in the right order, and it closes none it did not
    open. ``"f(x[0])"`` is preferred; ``"f(x"``, ``"x)"``, ``"(]"`` and ``"no brackets"``
    are not."""
    if not isinstance(text, str):
        raise TypeError(f"expected a str, got {type(text).__name__}")
    stack, seen = [], False
    for ch in text:
        if ch in BRACKETS:
            stack.append(BRACKETS[ch])
            seen = True
        elif ch in BRACKETS.values():
            if not stack or stack.pop() != ch:
                return False
    return seen and not stack


def sample_completions(model: GPT, prompts: torch.Tensor, n: int, length: int, *,
                       temperature: float = 1.0, seed: int = 0) -> torch.Tensor:
    """``n`` sampled completions of ``length`` tokens for every prompt of ``prompts``
    ``(P, T)``: ``(P, n, length)`` ids (the prompts themselves left out)."""
    if prompts.dim() != 2 or n < 1 or length < 1:
        raise ValueError(f"need prompts (P, T), n >= 1 and length >= 1; got "
                         f"{tuple(prompts.shape)}, n={n}, length={length}")
    repeated = prompts.repeat_interleave(n, dim=0)  # (P n, T), the n copies side by side
    generator = torch.Generator().manual_seed(seed)
    out = generate(model, repeated, length, temperature=temperature, generator=generator)
    return out[:, prompts.shape[1]:].view(len(prompts), n, length).cpu()


def completion_logprob(model: nn.Module, prompts: torch.Tensor,
                       completions: torch.Tensor) -> torch.Tensor:
    """``log p(completion | prompt)`` under ``model``, summed over the completion's tokens:
    one number per row of ``prompts`` ``(N, T)`` and ``completions`` ``(N, C)``. The pair
    must fit the model's context (``T + C <= block_size``)."""
    if prompts.dim() != 2 or completions.dim() != 2 or len(prompts) != len(completions):
        raise ValueError(f"need prompts (N, T) and completions (N, C) with the same N, got "
                         f"{tuple(prompts.shape)} and {tuple(completions.shape)}")
    T = prompts.shape[1]
    ids = torch.cat([prompts, completions], dim=1)
    logits = model(ids[:, :-1])  # position t predicts token t + 1
    logp = logits[:, T - 1:].log_softmax(dim=-1)  # the positions that predict completions
    return logp.gather(-1, completions[..., None]).squeeze(-1).sum(dim=-1)


def dpo_loss(policy_chosen: torch.Tensor, policy_rejected: torch.Tensor,
             ref_chosen: torch.Tensor, ref_rejected: torch.Tensor,
             beta: float = 0.1) -> torch.Tensor:
    """The DPO loss (mean over pairs) from the summed log-probabilities of the preferred
    (``chosen``) and dispreferred (``rejected``) completions under the policy being
    trained and under the frozen reference model."""
    if not beta > 0:
        raise ValueError(f"beta must be > 0, got {beta}")
    shapes = {tuple(t.shape) for t in (policy_chosen, policy_rejected, ref_chosen, ref_rejected)}
    if len(shapes) != 1:
        raise ValueError(f"the four log-probability tensors must have one shape, got {shapes}")
    margin = (policy_chosen - ref_chosen) - (policy_rejected - ref_rejected)
    return -F.logsigmoid(beta * margin).mean()


def _fine_tune(model: nn.Module, n_rows: int, loss_of: Callable, *, steps: int, lr: float,
               batch_size: int, seed: int) -> List[float]:
    """``steps`` steps of AdamW (no weight decay, gradients clipped at 1) on
    ``loss_of(rows)`` for random batches of row indices below ``n_rows``."""
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)
    generator = torch.Generator().manual_seed(seed)
    model.train()
    losses = []
    for _ in range(steps):
        rows = torch.randint(0, n_rows, (batch_size,), generator=generator)
        losses.append(optimizer_step(model, optimizer, loss_of(rows), grad_clip=1.0))
    return losses


def train_sft(model: GPT, prompts: torch.Tensor, completions: torch.Tensor, *, steps: int,
              lr: float = 3e-4, batch_size: int = 32, seed: int = 0) -> List[float]:
    """Fine-tune ``model`` to maximise ``log p(completion | prompt)`` on the given pairs
    (rows of ``prompts`` ``(N, T)`` and ``completions`` ``(N, C)``); returns the loss per
    step (nats per completion token)."""

    def loss_of(rows):
        logp = completion_logprob(model, prompts[rows], completions[rows])
        return -logp.mean() / completions.shape[1]

    return _fine_tune(model, len(prompts), loss_of, steps=steps, lr=lr,
                      batch_size=batch_size, seed=seed)


def train_dpo(model: GPT, reference: GPT, prompts: torch.Tensor, chosen: torch.Tensor,
              rejected: torch.Tensor, *, steps: int, beta: float = 0.1, lr: float = 3e-4,
              batch_size: int = 32, seed: int = 0) -> List[float]:
    """DPO on pairs: row ``i`` of ``chosen`` is preferred to row ``i`` of ``rejected`` as a
    completion of row ``i`` of ``prompts``. ``reference`` stays frozen (its log-probs are
    computed once). Returns the loss per step."""
    if not (len(prompts) == len(chosen) == len(rejected)):
        raise ValueError(f"prompts, chosen and rejected need one row per pair, got "
                         f"{len(prompts)}, {len(chosen)}, {len(rejected)}")
    reference.eval()
    with torch.no_grad():
        ref_w = completion_logprob(reference, prompts, chosen)
        ref_l = completion_logprob(reference, prompts, rejected)

    def loss_of(rows):
        return dpo_loss(completion_logprob(model, prompts[rows], chosen[rows]),
                        completion_logprob(model, prompts[rows], rejected[rows]),
                        ref_w[rows], ref_l[rows], beta)

    return _fine_tune(model, len(prompts), loss_of, steps=steps, lr=lr,
                      batch_size=batch_size, seed=seed)


def property_rate(completions: torch.Tensor, decode: Callable[[Sequence[int]], str],
                  prop: Callable[[str], bool] = closes_brackets) -> torch.Tensor:
    """``prop`` of every completion: a bool tensor of the leading shape of ``completions``
    (``(P, n, C)`` gives ``(P, n)``)."""
    flat = completions.reshape(-1, completions.shape[-1])
    hits = torch.tensor([prop(decode(row.tolist())) for row in flat])
    return hits.view(completions.shape[:-1])


def best_of_n_rate(hits: torch.Tensor, n: int) -> float:
    """The property rate of best-of-``n`` from per-sample hits ``(P, m)`` with ``m >= n``
    samples per prompt: a prompt counts when any of its first ``n`` samples has it."""
    if hits.dim() != 2 or not 1 <= n <= hits.shape[1]:
        raise ValueError(f"need hits (prompts, samples) with at least n={n} samples per "
                         f"prompt, got {tuple(hits.shape)}")
    return hits[:, :n].any(dim=1).float().mean().item()


def preference_pairs(hits: torch.Tensor, seed: int = 0) -> Optional[tuple]:
    """For every prompt with at least one preferred and one dispreferred sample, one pair
    (prompt index, chosen sample index, rejected sample index), chosen at random; as three
    tensors, or None when no prompt has both."""
    generator = torch.Generator().manual_seed(seed)
    rows, good, bad = [], [], []
    for p in range(hits.shape[0]):
        yes, no = hits[p].nonzero().flatten(), (~hits[p]).nonzero().flatten()
        if len(yes) and len(no):
            rows.append(p)
            good.append(yes[torch.randint(len(yes), (1,), generator=generator)].item())
            bad.append(no[torch.randint(len(no), (1,), generator=generator)].item())
    if not rows:
        return None
    return torch.tensor(rows), torch.tensor(good), torch.tensor(bad)
