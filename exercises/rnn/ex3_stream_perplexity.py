# ---
# id: rnn-perplexity
# title: Does the LSTM use more than its window?
# kind: experiment
# points: 2
# ---

# %% [markdown]
# The chapter trains and scores the character model on windows of 64 characters, each
# read from a zero state: the first characters of every window are predicted almost
# without context. What if the model reads the whole test text as **one sequence**,
# carrying its state from the first character to the last? Every prediction then has
# context, but the state runs for thousands of steps, far longer than the 64 it was
# trained on. Write `measure_stream_perplexity(model, ids)`: the perplexity (exp of the
# mean cross-entropy in nats) of predicting `ids[1:]` from everything before, reading
# `ids` (a 1-D tensor of character ids) left to right in one pass. The check runs it on
# the chapter's `char_model` and `test_ids`. Is the number lower or higher than the
# chapter's test perplexity on windows, and what does that say about the state?

# %% [solution]
import math

import torch
import torch.nn.functional as F


def measure_stream_perplexity(model, ids):
    ### BEGIN SOLUTION
    model.eval()  # no dropout while measuring
    with torch.no_grad():
        logits = model(ids[None, :-1])[0]  # (N - 1, vocab): the state carried along
        loss = F.cross_entropy(logits, ids[1:])
    return math.exp(loss.item())
    ### END SOLUTION

# %% [check]
from fromscratch.checks.rnn import check_stream_perplexity

check_stream_perplexity(measure_stream_perplexity, char_model, test_ids)

# %% [setup]
import torch
from fromscratch.data import CharVocab, char_windows, load_text
from fromscratch.models.rnn import CharModel, RNNConfig
from fromscratch.training import fit

text = load_text(max_chars=20_000)
vocab = CharVocab.from_text(text)
ids = vocab.encode(text)
test_ids = ids[-3_000:]
torch.manual_seed(0)
char_model = CharModel("lstm", len(vocab), RNNConfig(embed=16, hidden=64, dropout=0.1))
fit(char_model, char_windows(ids[:-3_000], block=32), epochs=1, lr=3e-3, progress=False)

# %% [mistake] forgot model.eval() | expect: Call model.eval() before measuring
import math

import torch
import torch.nn.functional as F


def measure_stream_perplexity(model, ids):
    with torch.no_grad():
        logits = model(ids[None, :-1])[0]
        return math.exp(F.cross_entropy(logits, ids[1:]).item())

# %% [mistake] reported the cross-entropy | expect: this is the mean cross-entropy
import torch
import torch.nn.functional as F


def measure_stream_perplexity(model, ids):
    model.eval()
    with torch.no_grad():
        return F.cross_entropy(model(ids[None, :-1])[0], ids[1:]).item()

# %% [mistake] a fresh state for every character | expect: read from a fresh zero state
import math

import torch
import torch.nn.functional as F


def measure_stream_perplexity(model, ids):
    model.eval()
    with torch.no_grad():
        logits = model(ids[:-1, None])[:, 0]  # N - 1 sequences of one character
        return math.exp(F.cross_entropy(logits, ids[1:]).item())

# %% [mistake] scored against the inputs | expect: predicts the *next* character
import math

import torch
import torch.nn.functional as F


def measure_stream_perplexity(model, ids):
    model.eval()
    with torch.no_grad():
        logits = model(ids[None, :-1])[0]
        return math.exp(F.cross_entropy(logits, ids[:-1]).item())

# %% [mistake] the course's perplexity | expect: an existing implementation
from fromscratch.models.rnn import perplexity


def measure_stream_perplexity(model, ids):
    return perplexity(model, ids[None, :-1], ids[None, 1:])
