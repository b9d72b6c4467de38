# ---
# id: rnn-perplexity
# title: Perplexity of the character model
# kind: experiment
# points: 2
# ---

# %% [markdown]
# Language models are compared by **perplexity**: the exponential of the mean
# cross-entropy per predicted character. A perplexity of 8 means the model is, on average,
# as unsure as a fair choice among 8 characters. Write `measure_perplexity(model, X, Y)`
# that returns the perplexity of a character model on windows `X` (inputs) and `Y`
# (next-character targets), both `(n, block)`. The check runs it on the chapter's trained
# `char_model` and validation windows. Compare the number with the vocabulary size: what
# would an untrained model score?

# %% [solution]
import math

import torch
import torch.nn.functional as F


def measure_perplexity(model, X, Y):
    ### BEGIN SOLUTION
    with torch.no_grad():
        logits = model(X)  # (n, block, vocab)
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), Y.reshape(-1))
    return math.exp(loss.item())
    ### END SOLUTION

# %% [check]
from fromscratch.checks.rnn import check_perplexity

check_perplexity(measure_perplexity, char_model, X_val, Y_val)

# %% [setup]
import torch
from fromscratch.data import CharVocab, char_windows, load_text
from fromscratch.models.rnn import CharModel, RNNConfig
from fromscratch.training import fit

text = load_text(max_chars=20_000)
vocab = CharVocab.from_text(text)
ids = vocab.encode(text)
X_val, Y_val = char_windows(ids[-4_000:], block=32)
torch.manual_seed(0)
char_model = CharModel("lstm", len(vocab), RNNConfig(embed=16, hidden=64))
fit(char_model, char_windows(ids[:-4_000], block=32), epochs=1, lr=3e-3, progress=False)

# %% [mistake] reported the cross-entropy | expect: this is the mean cross-entropy
import torch
import torch.nn.functional as F


def measure_perplexity(model, X, Y):
    with torch.no_grad():
        logits = model(X)
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), Y.reshape(-1)).item()

# %% [mistake] exponentiated the summed loss | expect: *summed* loss
import math

import torch
import torch.nn.functional as F


def measure_perplexity(model, X, Y):
    with torch.no_grad():
        logits = model(X)
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), Y.reshape(-1), reduction="sum")
    return math.exp(min(loss.item(), 700.0))
