# ---
# id: llm-top-p
# title: Nucleus (top-p) filtering
# kind: implement
# points: 2
# ---

# %% [markdown]
# Write `top_p(logits, p)`: keep, in every row of the last axis of `logits`, the
# **smallest set of most likely tokens whose probabilities add up to at least `p`**, and
# set every other logit to `-inf`, in place of the token (the output has the shape and
# the order of `logits`). The probabilities are `softmax(logits)` of the row. The most
# likely token is always kept; `p = 1` keeps everything. Sampling from the result is
# top-p sampling (Holtzman et al. 2020). The check compares with the chapter's
# `top_p_filter` on rows it chose so that ties cannot occur; calling that function (or
# `sample_next`, `generate`) is refused.

# %% [solution]
import torch


def top_p(logits, p):
    ### BEGIN SOLUTION
    if p >= 1:  # in floats the cumulative mass can reach 1 before the last token
        return logits
    sorted_logits, _ = torch.sort(logits, dim=-1, descending=True)
    probs = sorted_logits.softmax(dim=-1)
    mass_before = probs.cumsum(dim=-1) - probs  # mass of the more likely tokens
    n_keep = (mass_before < p).sum(dim=-1, keepdim=True)  # at least 1
    cutoff = sorted_logits.gather(-1, n_keep - 1)  # the least likely kept logit
    return logits.masked_fill(logits < cutoff, float("-inf"))
    ### END SOLUTION

# %% [check]
from fromscratch.checks.llm import check_top_p

check_top_p(top_p)

# %% [mistake] drops the token that crosses p | expect: the token that carries the mass past p
import torch


def top_p(logits, p):
    sorted_logits, _ = torch.sort(logits, dim=-1, descending=True)
    probs = sorted_logits.softmax(dim=-1)
    n_keep = (probs.cumsum(dim=-1) < p).sum(dim=-1, keepdim=True).clamp(min=1)
    cutoff = sorted_logits.gather(-1, n_keep - 1)
    return logits.masked_fill(logits < cutoff, float("-inf"))

# %% [mistake] cumulative sum of logits | expect: the cumulative sum runs over logits
import torch


def top_p(logits, p):
    sorted_logits, _ = torch.sort(logits, dim=-1, descending=True)
    n_keep = (sorted_logits.cumsum(-1) - sorted_logits < p).sum(-1, keepdim=True)
    cutoff = sorted_logits.gather(-1, n_keep.clamp(min=1) - 1)
    return logits.masked_fill(logits < cutoff, float("-inf"))

# %% [mistake] returns the sorted row | expect: case 2 of
import torch


def top_p(logits, p):
    sorted_logits, _ = torch.sort(logits, dim=-1, descending=True)
    probs = sorted_logits.softmax(dim=-1)
    keep = probs.cumsum(dim=-1) - probs < p
    return sorted_logits.masked_fill(~keep, float("-inf"))

# %% [mistake] calls the chapter's filter | expect: an existing implementation
from fromscratch.models.gpt import top_p_filter


def top_p(logits, p):
    return top_p_filter(logits, p)

# %% [mistake] keeps the token at exactly p | expect: below p (<, not <=)
import torch


def top_p(logits, p):
    if p >= 1:
        return logits
    sorted_logits, _ = torch.sort(logits, dim=-1, descending=True)
    probs = sorted_logits.softmax(dim=-1)
    n_keep = (probs.cumsum(dim=-1) - probs <= p).sum(dim=-1, keepdim=True)
    cutoff = sorted_logits.gather(-1, n_keep - 1)
    return logits.masked_fill(logits < cutoff, float("-inf"))

# %% [mistake] no special case for p = 1 | expect: p = 1 keeps everything
import torch


def top_p(logits, p):
    sorted_logits, _ = torch.sort(logits, dim=-1, descending=True)
    probs = sorted_logits.softmax(dim=-1)
    n_keep = (probs.cumsum(dim=-1) - probs < p).sum(dim=-1, keepdim=True)
    cutoff = sorted_logits.gather(-1, n_keep - 1)
    return logits.masked_fill(logits < cutoff, float("-inf"))
