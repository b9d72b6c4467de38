"""The Transformer from scratch: attention, multi-head attention, positions, blocks (chapter 3).

References: Vaswani et al. 2017, "Attention is all you need"; Ba et al. 2016, "Layer
normalization"; Xiong et al. 2020, "On layer normalization in the Transformer architecture"
(pre-norm); Olsson et al. 2022, "In-context learning and induction heads".

Every module keeps PyTorch's parameter names and layouts (``MultiHeadAttention`` those of
``nn.MultiheadAttention``, ``Block`` those of ``nn.TransformerEncoderLayer``), so a state
dict copies one-to-one and the outputs can be compared. The block is the one reused by
the LLM, MoE, SSM, VLM and VLA chapters.

Mask conventions (the same as PyTorch's ``nn.MultiheadAttention``):
``key_padding_mask`` is ``(B, T_k)`` and **True marks padding** (a key to ignore);
``causal=True`` lets query ``i`` see keys ``0 .. i`` only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..config import pick

POSITIONS = ("sinusoidal", "learned", "none")


def causal_mask(t_q: int, t_k: int, device=None) -> torch.Tensor:
    """``(t_q, t_k)`` boolean, True where query ``i`` may see key ``j``.

    With a cache of earlier keys (``t_k > t_q``) the queries are the *last* ``t_q``
    positions, so query ``i`` sits at position ``t_k - t_q + i`` and sees keys up to it."""
    if t_k < t_q:
        raise ValueError(f"a causal mask needs at least as many keys as queries, got "
                         f"{t_k} keys for {t_q} queries")
    i = torch.arange(t_q, device=device)[:, None] + (t_k - t_q)
    return torch.arange(t_k, device=device)[None, :] <= i


def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, *, causal: bool = False,
              key_padding_mask: Optional[torch.Tensor] = None) -> tuple:
    """Scaled dot-product attention: ``softmax(q k^T / sqrt(d_k)) v``.

    ``q`` is ``(..., T_q, d_k)``, ``k`` ``(..., T_k, d_k)``, ``v`` ``(..., T_k, d_v)``;
    leading axes (batch, heads) broadcast. ``key_padding_mask`` is ``(B, T_k)``, True for
    padding, and applies to ``q`` of shape ``(B, T_q, d)`` or ``(B, H, T_q, d)``.
    Returns the output ``(..., T_q, d_v)`` and the attention weights ``(..., T_q, T_k)``
    (each row sums to 1: how much each query takes from each key).
    """
    if q.dim() < 2 or q.shape[-1] != k.shape[-1] or k.shape[-2] != v.shape[-2]:
        raise ValueError(f"need q (..., T_q, d), k (..., T_k, d), v (..., T_k, d_v); got "
                         f"{tuple(q.shape)}, {tuple(k.shape)}, {tuple(v.shape)}")
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])  # (..., T_q, T_k)
    allowed = None
    if causal:
        allowed = causal_mask(q.shape[-2], k.shape[-2], q.device)
    if key_padding_mask is not None:
        if key_padding_mask.dtype != torch.bool or key_padding_mask.shape != (q.shape[0],
                                                                               k.shape[-2]):
            raise ValueError(f"key_padding_mask must be bool of shape (batch, T_k) = "
                             f"{(q.shape[0], k.shape[-2])} with True for padding; got "
                             f"{key_padding_mask.dtype} {tuple(key_padding_mask.shape)}")
        keep = ~key_padding_mask  # (B, T_k)
        keep = keep.view(keep.shape[0], *([1] * (q.dim() - 2)), keep.shape[1])
        allowed = keep if allowed is None else allowed & keep
    if allowed is not None:
        allowed = allowed.expand(scores.shape)
        if not allowed.any(dim=-1).all():
            raise ValueError("a query has every key masked (all padding, or padding before "
                             "it under the causal mask): its softmax would be undefined")
        scores = scores.masked_fill(~allowed, float("-inf"))
    weights = scores.softmax(dim=-1)
    return weights @ v, weights


class LayerNorm(nn.Module):
    """Normalise each vector over its last axis to mean 0 and variance 1, then scale and
    shift it: ``weight * (x - mean) / sqrt(var + eps) + bias`` (the biased variance).
    ``bias=False`` leaves the shift out (``bias`` is then None), as ``nn.LayerNorm(bias=False)``.
    ``fused=True`` computes the same with ``F.layer_norm``, one kernel instead of six."""

    def __init__(self, d: int, eps: float = 1e-5, bias: bool = True, fused: bool = False):
        super().__init__()
        self.eps, self.fused = eps, fused
        self.weight = nn.Parameter(torch.ones(d))
        self.bias = nn.Parameter(torch.zeros(d)) if bias else None

    def forward(self, x):
        if self.fused:  # PyTorch's kernel for the same formula (faster to train)
            return F.layer_norm(x, self.weight.shape, self.weight, self.bias, self.eps)
        mean = x.mean(dim=-1, keepdim=True)
        var = ((x - mean) ** 2).mean(dim=-1, keepdim=True)
        out = self.weight * (x - mean) / torch.sqrt(var + self.eps)
        return out if self.bias is None else out + self.bias


class KVCache:
    """The keys and values one attention layer has seen so far, ``(B, H, T, d_head)`` each;
    a decoder reuses them instead of recomputing them for every new token."""

    def __init__(self):
        self.k = self.v = None

    def __len__(self):
        return 0 if self.k is None else self.k.shape[-2]

    def append(self, k: torch.Tensor, v: torch.Tensor) -> tuple:
        if self.k is not None:
            k, v = torch.cat([self.k, k], dim=-2), torch.cat([self.v, v], dim=-2)
        self.k, self.v = k, v
        return k, v


class MultiHeadAttention(nn.Module):
    """``n_heads`` attentions side by side, each on its own ``d_model / n_heads`` slice of
    learned projections of the input; their outputs are concatenated and mixed by
    ``out_proj``. Parameters as in ``nn.MultiheadAttention``: ``in_proj_weight`` stacks the
    query, key and value projections ``(3 d_model, d_model)``.

    ``head_mask`` (``(n_heads,)``, 1 keep / 0 remove) switches heads off for ablations;
    ``context`` gives keys and values from another sequence (cross-attention);
    ``cache`` (a :class:`KVCache`) appends this call's keys and values to earlier ones.
    ``fused=True`` uses ``F.scaled_dot_product_attention`` (checked equal to
    :func:`attention`) whenever no weights are asked for and no padding mask is given.
    """

    def __init__(self, d_model: int, n_heads: int, bias: bool = True, fused: bool = False):
        super().__init__()
        if d_model % n_heads:
            raise ValueError(f"d_model={d_model} is not divisible by n_heads={n_heads}")
        self.d_model, self.n_heads, self.d_head = d_model, n_heads, d_model // n_heads
        self.fused = fused
        self.in_proj_weight = nn.Parameter(torch.empty(3 * d_model, d_model))
        self.in_proj_bias = nn.Parameter(torch.zeros(3 * d_model)) if bias else None
        self.out_proj = nn.Linear(d_model, d_model, bias=bias)
        nn.init.xavier_uniform_(self.in_proj_weight)  # PyTorch's initialisation
        if bias:
            nn.init.zeros_(self.out_proj.bias)

    def _split(self, x):  # (B, T, d_model) -> (B, H, T, d_head)
        B, T, _ = x.shape
        return x.view(B, T, self.n_heads, self.d_head).transpose(1, 2)

    def forward(self, x: torch.Tensor, *, causal: bool = False,
                key_padding_mask: Optional[torch.Tensor] = None,
                head_mask: Optional[torch.Tensor] = None,
                context: Optional[torch.Tensor] = None,
                cache: Optional[KVCache] = None, need_weights: bool = False):
        if x.dim() != 3 or x.shape[-1] != self.d_model:
            raise ValueError(f"expected x of shape (batch, time, {self.d_model}), got "
                             f"{tuple(x.shape)}")
        b = self.in_proj_bias
        w_q, w_kv = self.in_proj_weight.split([self.d_model, 2 * self.d_model])
        b_q, b_kv = (None, None) if b is None else b.split([self.d_model, 2 * self.d_model])
        source = x if context is None else context
        q = F.linear(x, w_q, b_q)
        k, v = F.linear(source, w_kv, b_kv).chunk(2, dim=-1)
        q, k, v = self._split(q), self._split(k), self._split(v)  # (B, H, T, d_head)
        if cache is not None:
            k, v = cache.append(k, v)
        if self.fused and not need_weights and key_padding_mask is None and (
                not causal or q.shape[-2] in (1, k.shape[-2])):
            # PyTorch's fused kernel for the same attention; no weights to return. With a
            # cache, a single new query may see every key, so it needs no causal mask.
            is_causal = causal and q.shape[-2] > 1
            out = F.scaled_dot_product_attention(q, k, v, is_causal=is_causal)
            weights = None
        else:
            out, weights = attention(q, k, v, causal=causal, key_padding_mask=key_padding_mask)
        if head_mask is not None:
            if head_mask.shape != (self.n_heads,):
                raise ValueError(f"head_mask must have shape ({self.n_heads},), got "
                                 f"{tuple(head_mask.shape)}")
            out = out * head_mask.to(out.dtype).view(1, -1, 1, 1)
        B, H, T, d = out.shape
        out = self.out_proj(out.transpose(1, 2).reshape(B, T, H * d))  # concatenate heads
        return (out, weights) if need_weights else out


def sinusoidal_positions(length: int, d_model: int) -> torch.Tensor:
    """``(length, d_model)``: ``PE[p, 2i] = sin(p / 10000^(2i/d))``, ``PE[p, 2i+1] = cos(...)``.

    Each pair of columns is a clock turning at its own speed, from one turn every 2 pi
    positions to one every 10000 * 2 pi, so every position gets a distinct pattern and a
    shift by k positions is the same rotation wherever it starts."""
    if length < 1 or d_model < 2 or d_model % 2:
        raise ValueError(f"need length >= 1 and an even d_model >= 2, got {length}, {d_model}")
    position = torch.arange(length, dtype=torch.float32)[:, None]  # (length, 1)
    rate = torch.exp(-math.log(10000.0) * torch.arange(0, d_model, 2) / d_model)  # (d/2,)
    pe = torch.zeros(length, d_model)
    pe[:, 0::2] = torch.sin(position * rate)
    pe[:, 1::2] = torch.cos(position * rate)
    return pe


class Block(nn.Module):
    """One Transformer block: self-attention and a feed-forward network, each wrapped in a
    residual connection and a LayerNorm.

    Post-norm (``norm_first=False``, the 2017 paper): ``x = norm(x + sublayer(x))``.
    Pre-norm (``norm_first=True``, GPT-2 and most models since): ``x = x + sublayer(norm(x))``,
    which keeps an unnormalised residual path from input to output and trains more easily.
    Names and shapes equal ``nn.TransformerEncoderLayer(batch_first=True)``'s, so its state
    dict loads directly (``bias=False`` drops the biases of the linear layers and the
    LayerNorms, as there). ``causal=True`` makes it a decoder block (GPT); ``cache`` (a
    :class:`KVCache`) then lets it take only the new positions of a sequence.
    ``d_ff=0`` leaves the feed-forward network out (an attention-only block);
    ``fused=True`` uses PyTorch's kernels for attention and LayerNorm (same results).
    """

    def __init__(self, d_model: int, n_heads: int, d_ff: Optional[int] = None,
                 dropout: float = 0.0, norm_first: bool = True, activation: str = "relu",
                 causal: bool = False, bias: bool = True, fused: bool = False):
        super().__init__()
        if activation not in ("relu", "gelu"):
            raise ValueError(f"activation must be 'relu' or 'gelu', got {activation!r}")
        d_ff = 4 * d_model if d_ff is None else d_ff
        if d_ff < 0:
            raise ValueError(f"d_ff must be >= 0 (0: no feed-forward network), got {d_ff}")
        self.norm_first, self.causal, self.activation = norm_first, causal, activation
        self.self_attn = MultiHeadAttention(d_model, n_heads, bias=bias, fused=fused)
        self.d_ff = d_ff
        if d_ff:
            self.linear1 = nn.Linear(d_model, d_ff, bias=bias)
            self.linear2 = nn.Linear(d_ff, d_model, bias=bias)
        self.norm1 = LayerNorm(d_model, bias=bias, fused=fused)
        self.norm2 = LayerNorm(d_model, bias=bias, fused=fused) if d_ff else None
        self.dropout = nn.Dropout(dropout)  # inside the feed-forward network
        self.dropout1, self.dropout2 = nn.Dropout(dropout), nn.Dropout(dropout)

    def _attend(self, x, key_padding_mask, head_mask, cache, keep):
        if keep is None:
            out = self.self_attn(x, causal=self.causal, key_padding_mask=key_padding_mask,
                                 head_mask=head_mask, cache=cache)
        else:
            out, weights = self.self_attn(x, causal=self.causal,
                                          key_padding_mask=key_padding_mask,
                                          head_mask=head_mask, cache=cache, need_weights=True)
            keep.append(weights.detach())
        return self.dropout1(out)

    def _feed_forward(self, x):
        act = F.relu if self.activation == "relu" else F.gelu
        return self.dropout2(self.linear2(self.dropout(act(self.linear1(x)))))

    def forward(self, x, key_padding_mask=None, head_mask=None, cache=None, keep=None):
        """``keep``: a list that receives this block's attention weights ``(B, H, T, T)``."""
        if not self.d_ff:  # attention only
            if self.norm_first:
                return x + self._attend(self.norm1(x), key_padding_mask, head_mask, cache, keep)
            return self.norm1(x + self._attend(x, key_padding_mask, head_mask, cache, keep))
        if self.norm_first:
            x = x + self._attend(self.norm1(x), key_padding_mask, head_mask, cache, keep)
            return x + self._feed_forward(self.norm2(x))
        x = self.norm1(x + self._attend(x, key_padding_mask, head_mask, cache, keep))
        return self.norm2(x + self._feed_forward(x))


@dataclass
class TransformerConfig:
    """Sizes of a token Transformer. ``default()`` follows ``FROMSCRATCH_SCALE``."""

    d_model: int = 64
    n_heads: int = 4
    n_layers: int = 2
    d_ff: Optional[int] = None  # 4 * d_model when None
    max_len: int = 64
    positions: str = "learned"  # "sinusoidal", "learned" or "none"
    dropout: float = 0.0
    norm_first: bool = True

    @classmethod
    def default(cls, **changes) -> TransformerConfig:
        """The chapter's sizes on a CPU; a wider, deeper model with FROMSCRATCH_SCALE=large."""
        base = pick(cls(), cls(d_model=384, n_heads=6, n_layers=6, max_len=256, dropout=0.1))
        for name, value in changes.items():
            if not hasattr(base, name):
                raise ValueError(f"TransformerConfig has no field {name!r}")
            setattr(base, name, value)
        return base


class TokenTransformer(nn.Module):
    """Embed tokens, add positions, run ``n_layers`` blocks, a final LayerNorm (pre-norm)
    and a linear read-out at every position: ``(B, T)`` ids -> ``(B, T, out_dim)``.

    ``positions="none"`` leaves the order out entirely: the model is then
    permutation-equivariant (permuting the input permutes the output the same way)."""

    def __init__(self, vocab_size: int, out_dim: int, config: Optional[TransformerConfig] = None,
                 causal: bool = False):
        super().__init__()
        c = config or TransformerConfig.default()
        if c.positions not in POSITIONS:
            raise ValueError(f"positions must be one of {POSITIONS}, got {c.positions!r}")
        self.config, self.causal = c, causal
        self.embed = nn.Embedding(vocab_size, c.d_model)
        if c.positions == "learned":
            self.pos = nn.Parameter(torch.randn(c.max_len, c.d_model) * 0.02)  # as GPT-2
        elif c.positions == "sinusoidal":
            self.register_buffer("pos", sinusoidal_positions(c.max_len, c.d_model),
                                 persistent=False)
        else:
            self.pos = None
        self.blocks = nn.ModuleList(
            Block(c.d_model, c.n_heads, c.d_ff, c.dropout, c.norm_first, causal=causal)
            for _ in range(c.n_layers))
        self.norm = LayerNorm(c.d_model) if c.norm_first else nn.Identity()
        self.head = nn.Linear(c.d_model, out_dim)

    def forward(self, tokens: torch.Tensor, key_padding_mask=None, head_mask=None,
                keep=None):
        """``head_mask``: ``(n_layers, n_heads)`` of 1 (keep) / 0 (remove);
        ``keep``: a list that receives every block's attention weights."""
        if tokens.dim() != 2:
            raise ValueError(f"expected token ids of shape (batch, time), got "
                             f"{tuple(tokens.shape)}")
        T = tokens.shape[1]
        if T > self.config.max_len:
            raise ValueError(f"sequence of {T} tokens is longer than max_len="
                             f"{self.config.max_len}")
        x = self.embed(tokens)
        if self.pos is not None:
            x = x + self.pos[:T]
        for i, block in enumerate(self.blocks):
            mask = None if head_mask is None else head_mask[i]
            x = block(x, key_padding_mask=key_padding_mask, head_mask=mask, keep=keep)
        return self.head(self.norm(x))

    @torch.no_grad()
    def attention_maps(self, tokens: torch.Tensor) -> list:
        """Every block's attention weights ``(B, n_heads, T, T)`` for ``tokens``, in eval mode."""
        was_training = self.training
        self.eval()
        keep = []
        self(tokens, keep=keep)
        self.train(was_training)
        return keep
