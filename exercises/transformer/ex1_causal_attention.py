# ---
# id: transformer-causal-attention
# title: Causal multi-head self-attention
# kind: implement
# points: 3
# ---

# %% [markdown]
# Write `causal_self_attention(x, in_proj_weight, in_proj_bias, out_proj_weight,
# out_proj_bias, n_heads)`: multi-head self-attention with a **causal mask**, the attention
# of a GPT-style decoder, from tensor operations. `x` is `(B, T, E)`; the weights are in
# `nn.MultiheadAttention`'s layout: `in_proj_weight` `(3E, E)` stacks the query, key and
# value projections, `in_proj_bias` is `(3E,)`, `out_proj_weight` `(E, E)`,
# `out_proj_bias` `(E,)`. Each of the `n_heads` heads works on its own slice of
# `d_head = E / n_heads` features; position `t` may attend to positions `0 .. t` only.
# Return `(B, T, E)`. The check compares with `nn.MultiheadAttention` holding the same
# weights; calling the chapter's `attention`, `MultiHeadAttention` or PyTorch's
# attention functions is refused.

# %% [solution]
import math

import torch


def causal_self_attention(x, in_proj_weight, in_proj_bias, out_proj_weight,
                          out_proj_bias, n_heads):
    ### BEGIN SOLUTION
    B, T, E = x.shape
    d = E // n_heads
    q, k, v = (x @ in_proj_weight.T + in_proj_bias).chunk(3, dim=-1)  # (B, T, E) each
    q, k, v = (t.view(B, T, n_heads, d).transpose(1, 2) for t in (q, k, v))  # (B, H, T, d)
    scores = q @ k.transpose(-2, -1) / math.sqrt(d)  # (B, H, T, T)
    future = torch.ones(T, T, dtype=torch.bool).triu(1)  # key after query
    weights = scores.masked_fill(future, float("-inf")).softmax(dim=-1)
    out = (weights @ v).transpose(1, 2).reshape(B, T, E)  # heads side by side
    return out @ out_proj_weight.T + out_proj_bias
    ### END SOLUTION

# %% [check]
from fromscratch.checks.transformer import check_causal_attention

check_causal_attention(causal_self_attention)

# %% [mistake] no scaling | expect: the scores are not scaled
import torch


def causal_self_attention(x, in_proj_weight, in_proj_bias, out_proj_weight,
                          out_proj_bias, n_heads):
    B, T, E = x.shape
    d = E // n_heads
    q, k, v = (x @ in_proj_weight.T + in_proj_bias).chunk(3, dim=-1)
    q, k, v = (t.view(B, T, n_heads, d).transpose(1, 2) for t in (q, k, v))
    scores = q @ k.transpose(-2, -1)
    scores = scores.masked_fill(torch.ones(T, T, dtype=torch.bool).triu(1), float("-inf"))
    out = (scores.softmax(-1) @ v).transpose(1, 2).reshape(B, T, E)
    return out @ out_proj_weight.T + out_proj_bias

# %% [mistake] mask the wrong way round | expect: the mask is the wrong way round
import math

import torch


def causal_self_attention(x, in_proj_weight, in_proj_bias, out_proj_weight,
                          out_proj_bias, n_heads):
    B, T, E = x.shape
    d = E // n_heads
    q, k, v = (x @ in_proj_weight.T + in_proj_bias).chunk(3, dim=-1)
    q, k, v = (t.view(B, T, n_heads, d).transpose(1, 2) for t in (q, k, v))
    scores = q @ k.transpose(-2, -1) / math.sqrt(d)
    scores = scores.masked_fill(torch.ones(T, T, dtype=torch.bool).tril(-1), float("-inf"))
    out = (scores.softmax(-1) @ v).transpose(1, 2).reshape(B, T, E)
    return out @ out_proj_weight.T + out_proj_bias

# %% [mistake] heads split by reshape | expect: which mixes positions and features
import math

import torch


def causal_self_attention(x, in_proj_weight, in_proj_bias, out_proj_weight,
                          out_proj_bias, n_heads):
    B, T, E = x.shape
    d = E // n_heads
    q, k, v = (x @ in_proj_weight.T + in_proj_bias).chunk(3, dim=-1)
    q, k, v = (t.reshape(B, n_heads, T, d) for t in (q, k, v))
    scores = q @ k.transpose(-2, -1) / math.sqrt(d)
    scores = scores.masked_fill(torch.ones(T, T, dtype=torch.bool).triu(1), float("-inf"))
    out = (scores.softmax(-1) @ v).reshape(B, T, E)
    return out @ out_proj_weight.T + out_proj_bias

# %% [mistake] calls PyTorch's fused attention | expect: an existing implementation
import torch.nn.functional as F


def causal_self_attention(x, in_proj_weight, in_proj_bias, out_proj_weight,
                          out_proj_bias, n_heads):
    B, T, E = x.shape
    q, k, v = (x @ in_proj_weight.T + in_proj_bias).chunk(3, dim=-1)
    q, k, v = (t.view(B, T, n_heads, -1).transpose(1, 2) for t in (q, k, v))
    out = F.scaled_dot_product_attention(q, k, v, is_causal=True)
    return out.transpose(1, 2).reshape(B, T, E) @ out_proj_weight.T + out_proj_bias

# %% [mistake] PyTorch's attention imported under another name | expect: an existing implementation
from torch.nn.functional import scaled_dot_product_attention as attend


def causal_self_attention(x, in_proj_weight, in_proj_bias, out_proj_weight,
                          out_proj_bias, n_heads):
    B, T, E = x.shape
    q, k, v = (x @ in_proj_weight.T + in_proj_bias).chunk(3, dim=-1)
    q, k, v = (t.view(B, T, n_heads, -1).transpose(1, 2) for t in (q, k, v))
    out = attend(q, k, v, is_causal=True)
    return out.transpose(1, 2).reshape(B, T, E) @ out_proj_weight.T + out_proj_bias

# %% [mistake] PyTorch's fused multi-head attention | expect: an existing implementation
import torch


def causal_self_attention(x, in_proj_weight, in_proj_bias, out_proj_weight,
                          out_proj_bias, n_heads):
    T, E = x.shape[1], x.shape[2]
    future = torch.ones(T, T, dtype=torch.bool).triu(1)
    return torch._native_multi_head_attention(
        x, x, x, E, n_heads, in_proj_weight, in_proj_bias, out_proj_weight, out_proj_bias,
        future, False, True, 0)[0]
