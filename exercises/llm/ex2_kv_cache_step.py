# ---
# id: llm-kv-cache-step
# title: One decoding step with a KV cache
# kind: implement
# points: 2
# ---

# %% [markdown]
# When a decoder generates token by token, the keys and values of the earlier positions
# never change, so it keeps them in a **KV cache** and computes, for the new position,
# only its query, key and value. Write `cache_step(q, k_new, v_new, cache_k, cache_v)`
# for one attention head layout: `q`, `k_new`, `v_new` are the new position's query,
# key and value, each `(B, H, 1, d)`; `cache_k`, `cache_v` hold the `P` earlier
# positions, `(B, H, P, d)` (`P` may be 0). Return `(out, k, v)`: the new position's
# attention output `(B, H, 1, d)` over the earlier positions **and itself**, and the
# grown cache `k`, `v` of `P + 1` positions. Calling the chapter's attention or
# PyTorch's fused attention is refused.

# %% [solution]
import math

import torch


def cache_step(q, k_new, v_new, cache_k, cache_v):
    ### BEGIN SOLUTION
    k = torch.cat([cache_k, k_new], dim=-2)  # (B, H, P + 1, d): the time axis grows
    v = torch.cat([cache_v, v_new], dim=-2)
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])  # (B, H, 1, P + 1)
    # no mask: the newest position may see every earlier one and itself
    return scores.softmax(dim=-1) @ v, k, v
    ### END SOLUTION

# %% [check]
from fromscratch.checks.llm import check_cache_step

check_cache_step(cache_step)

# %% [mistake] attends to the new key only | expect: attends to the new key only
import math


def cache_step(q, k_new, v_new, cache_k, cache_v):
    scores = q @ k_new.transpose(-2, -1) / math.sqrt(q.shape[-1])
    return scores.softmax(dim=-1) @ v_new, k_new, v_new

# %% [mistake] unscaled scores | expect: the scores are not scaled
import torch


def cache_step(q, k_new, v_new, cache_k, cache_v):
    k = torch.cat([cache_k, k_new], dim=-2)
    v = torch.cat([cache_v, v_new], dim=-2)
    return (q @ k.transpose(-2, -1)).softmax(dim=-1) @ v, k, v

# %% [mistake] appends along the feature axis | expect: case 1 of
import math

import torch


def cache_step(q, k_new, v_new, cache_k, cache_v):
    k = torch.cat([cache_k, k_new], dim=-1)
    v = torch.cat([cache_v, v_new], dim=-1)
    scores = q @ k[..., -q.shape[-1]:].transpose(-2, -1) / math.sqrt(q.shape[-1])
    return scores.softmax(dim=-1) @ v[..., -q.shape[-1]:], k, v

# %% [mistake] calls PyTorch's fused attention | expect: an existing implementation
import torch
import torch.nn.functional as F


def cache_step(q, k_new, v_new, cache_k, cache_v):
    k = torch.cat([cache_k, k_new], dim=-2)
    v = torch.cat([cache_v, v_new], dim=-2)
    return F.scaled_dot_product_attention(q, k, v), k, v
