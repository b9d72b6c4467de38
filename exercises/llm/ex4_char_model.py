# ---
# id: llm-char-model
# title: A character language model of your own
# kind: model
# points: 3
# ---

# %% [markdown]
# Write `make_char_lm(vocab_size, block_size)` returning a model that maps character ids
# `(B, T)` (any `T <= block_size`) to next-character logits `(B, T, vocab_size)`, is
# **causal** (the output at position `t` may depend on positions `0..t` only), and
# reaches a **validation loss of at most 2.1 nats per character** after the check's
# training: 300 steps of the chapter's recipe (AdamW at 3e-3, warm-up and cosine
# decay, batches of 24 windows of 64 characters) on the chapter's 90/10 split, about
# 10 s. Use the chapter's `GPT` and `GPTConfig`, or build your own. Before you run it:
# what would a non-causal model's *training* loss do?

# %% [solution]
from fromscratch.models.gpt import GPT, GPTConfig


def make_char_lm(vocab_size, block_size):
    ### BEGIN SOLUTION
    return GPT(GPTConfig.default(vocab_size, block_size=block_size))
    ### END SOLUTION

# %% [check]
from fromscratch.checks.llm import check_char_lm

check_char_lm(make_char_lm)

# %% [mistake] not causal | expect: the model sees the future
import torch.nn as nn

from fromscratch.models.transformer import Block


class Peeking(nn.Module):
    def __init__(self, vocab_size, block_size):
        super().__init__()
        self.emb = nn.Embedding(vocab_size, 64)
        self.pos = nn.Parameter(0.02 * torch.randn(block_size, 64))
        self.block = Block(64, 4, causal=False)
        self.head = nn.Linear(64, vocab_size)

    def forward(self, x):
        return self.head(self.block(self.emb(x) + self.pos[: x.shape[1]]))


import torch  # noqa: E402


def make_char_lm(vocab_size, block_size):
    return Peeking(vocab_size, block_size)

# %% [mistake] a bigram model | expect: the bar is
import torch.nn as nn


def make_char_lm(vocab_size, block_size):
    return nn.Sequential(nn.Embedding(vocab_size, 32), nn.Linear(32, vocab_size))

# %% [mistake] one output per sequence | expect: an output of shape
import torch.nn as nn


class LastOnly(nn.Module):
    def __init__(self, vocab_size):
        super().__init__()
        self.emb = nn.Embedding(vocab_size, 32)
        self.head = nn.Linear(32, vocab_size)

    def forward(self, x):
        return self.head(self.emb(x).mean(1))


def make_char_lm(vocab_size, block_size):
    return LastOnly(vocab_size)
