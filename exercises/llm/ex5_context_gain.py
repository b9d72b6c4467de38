# ---
# id: llm-context-gain
# title: What is the context worth?
# kind: experiment
# points: 2
# ---

# %% [markdown]
# A language model at position 0 of a window has read one character; at position 63 it
# has read 64. How much does that context lower the loss? Write
# `measure_context_gain(model, ids)`: cut the 1-D tensor `ids` into consecutive,
# non-overlapping windows of 64 characters (inputs) with the characters one step later
# as targets; compute the cross-entropy (nats) at every position of every window; average
# over windows; return **the mean loss over positions 0-7 minus the mean loss over
# positions 56-63** (bands of 8, since single positions are noisy). The check runs it on
# the chapter's trained GPT (`model`) and the validation characters (`val_ids`); in an
# assignment notebook a setup cell trains a GPT for 400 steps first. Then plot the whole
# curve: where does the gain stop? Does the chapter's 8-gram flatten earlier?

# %% [setup]
import torch

from fromscratch.data import CharVocab, load_text
from fromscratch.models.gpt import GPT, GPTConfig, LMRecipe, train_lm

text = load_text()
char_vocab = CharVocab.from_text(text)
ids = char_vocab.encode(text)
train_ids, val_ids = ids[: int(0.9 * len(ids))], ids[int(0.9 * len(ids)):]
torch.manual_seed(0)
model = GPT(GPTConfig.default(len(char_vocab)))
train_lm(model, train_ids, LMRecipe.default(), steps=400, seed=0)

# %% [solution]
import torch
import torch.nn.functional as F


def measure_context_gain(model, ids):
    ### BEGIN SOLUTION
    n = (len(ids) - 1) // 64
    x = ids[: n * 64].view(n, 64)
    y = ids[1 : n * 64 + 1].view(n, 64)  # the next character of every position
    model.eval()
    with torch.no_grad():
        ce = F.cross_entropy(model(x).transpose(1, 2), y, reduction="none")  # (n, 64)
    per_position = ce.mean(dim=0)
    return (per_position[:8].mean() - per_position[-8:].mean()).item()
    ### END SOLUTION

# %% [check]
from fromscratch.checks.llm import check_context_gain

check_context_gain(measure_context_gain, model, val_ids)

# %% [mistake] targets not shifted | expect: the targets are not shifted
import torch
import torch.nn.functional as F


def measure_context_gain(model, ids):
    n = len(ids) // 64
    x = ids[: n * 64].view(n, 64)
    model.eval()
    with torch.no_grad():
        ce = F.cross_entropy(model(x).transpose(1, 2), x, reduction="none")
    return (ce.mean(0)[:8].mean() - ce.mean(0)[-8:].mean()).item()

# %% [mistake] in bits | expect: the loss is in bits
import math

import torch
import torch.nn.functional as F


def measure_context_gain(model, ids):
    n = (len(ids) - 1) // 64
    x, y = ids[: n * 64].view(n, 64), ids[1 : n * 64 + 1].view(n, 64)
    model.eval()
    with torch.no_grad():
        ce = F.cross_entropy(model(x).transpose(1, 2), y, reduction="none") / math.log(2)
    return (ce.mean(0)[:8].mean() - ce.mean(0)[-8:].mean()).item()

# %% [mistake] last minus first | expect: the sign is reversed
import torch
import torch.nn.functional as F


def measure_context_gain(model, ids):
    n = (len(ids) - 1) // 64
    x, y = ids[: n * 64].view(n, 64), ids[1 : n * 64 + 1].view(n, 64)
    model.eval()
    with torch.no_grad():
        ce = F.cross_entropy(model(x).transpose(1, 2), y, reduction="none")
    return (ce.mean(0)[-8:].mean() - ce.mean(0)[:8].mean()).item()
