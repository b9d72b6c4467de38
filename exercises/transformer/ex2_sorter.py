# ---
# id: transformer-sorter
# title: A Transformer that sorts
# kind: model
# points: 3
# ---

# %% [markdown]
# Sort with attention: output position `t` holds the `t`-th smallest input token, so
# every output position must **see every token** and **know which position it is
# writing**. Write `make_sorter(vocab_size,
# length)` returning a model that maps token ids `(B, length)` to logits
# `(B, length, vocab_size)` and that reaches **95% token accuracy** on new sequences. Use
# the chapter's pieces (`TokenTransformer`, `TransformerConfig`, or your own module built
# from `Block`). The check trains it on 3,000 sequences of 8 tokens from a vocabulary of
# 10 (`fromscratch.data.sort_task`) for 6 epochs (Adam, learning rate 3e-3 with cosine
# decay; a few seconds). Sorting functions (`torch.sort`, `argsort`, `topk`, ...) are
# refused, and the trained model must need its attention: with the attention outputs set
# to zero it should fail. Before you run it: what happens without positional encodings?
# With `causal=True`?

# %% [solution]
from fromscratch.models.transformer import TokenTransformer, TransformerConfig


def make_sorter(vocab_size, length):
    ### BEGIN SOLUTION
    config = TransformerConfig(d_model=64, n_heads=4, n_layers=2, max_len=length,
                               positions="learned")
    return TokenTransformer(vocab_size, vocab_size, config)
    ### END SOLUTION

# %% [check]
from fromscratch.checks.transformer import check_sorter

check_sorter(make_sorter)

# %% [mistake] no positions | expect: permutation-equivariant
from fromscratch.models.transformer import TokenTransformer, TransformerConfig


def make_sorter(vocab_size, length):
    config = TransformerConfig(d_model=64, n_layers=2, max_len=length, positions="none")
    return TokenTransformer(vocab_size, vocab_size, config)

# %% [mistake] causal blocks | expect: the blocks are causal
from fromscratch.models.transformer import TokenTransformer, TransformerConfig


def make_sorter(vocab_size, length):
    config = TransformerConfig(d_model=64, n_layers=2, max_len=length)
    return TokenTransformer(vocab_size, vocab_size, config, causal=True)

# %% [mistake] one output per sequence | expect: one prediction per output position
import torch.nn as nn


class Pooled(nn.Module):
    def __init__(self, vocab_size):
        super().__init__()
        self.embed, self.out = nn.Embedding(vocab_size, 32), nn.Linear(32, vocab_size)

    def forward(self, x):
        return self.out(self.embed(x).mean(dim=1))


def make_sorter(vocab_size, length):
    return Pooled(vocab_size)

# %% [mistake] an MLP on the embeddings, no attention | expect: holds no attention layer
import torch.nn as nn


def make_sorter(vocab_size, length):
    return nn.Sequential(nn.Embedding(vocab_size, 32), nn.Linear(32, vocab_size))

# %% [mistake] sorts with torch.sort | expect: your code calls `Tensor.sort`
import torch
import torch.nn as nn
import torch.nn.functional as F
from fromscratch.models.transformer import MultiHeadAttention


class Sorted(nn.Module):
    def __init__(self, vocab_size):
        super().__init__()
        self.attention = MultiHeadAttention(8, 2)  # present, never used
        self.bias = nn.Parameter(F.one_hot(torch.arange(1), vocab_size)[0].float() * 0)
        self.vocab_size = vocab_size

    def forward(self, x):
        return F.one_hot(x.sort(dim=1).values, self.vocab_size).float() * 10 + self.bias


def make_sorter(vocab_size, length):
    return Sorted(vocab_size)

# %% [mistake] an MLP on token counts beside an unused attention | expect: not what sorts
import torch.nn as nn
import torch.nn.functional as F


class CountsMLP(nn.Module):
    def __init__(self, vocab_size, length):
        super().__init__()
        self.unused = nn.MultiheadAttention(8, 2, batch_first=True)
        self.mlp = nn.Sequential(nn.Linear(vocab_size, 128), nn.ReLU(),
                                 nn.Linear(128, length * vocab_size))
        self.shape = (length, vocab_size)

    def forward(self, x):
        counts = F.one_hot(x, self.shape[1]).float().sum(dim=1)
        return self.mlp(counts).view(-1, *self.shape)


def make_sorter(vocab_size, length):
    return CountsMLP(vocab_size, length)
