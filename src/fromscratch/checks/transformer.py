"""Checks for the Transformer chapter's exercises."""

from __future__ import annotations

import math
from typing import Callable, Optional

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..models import transformer as tr
from .core import Case, check_function, check_measurement, check_trained_model

SORT_BAR = 0.95


#: PyTorch's fused attention kernels, refused however they are reached: under an alias
#: imported before the check, through ``torch.ops.aten``, or inside nn.MultiheadAttention
#: (``_safe_softmax`` is the softmax of PyTorch's reference "math" attention).
ATTENTION_OPS = ("aten::_scaled_dot_product_flash_attention_for_cpu",
                 "aten::_scaled_dot_product_flash_attention",
                 "aten::_scaled_dot_product_efficient_attention",
                 "aten::_scaled_dot_product_cudnn_attention",
                 "aten::_scaled_dot_product_fused_attention_overrideable",
                 "aten::_native_multi_head_attention", "aten::_safe_softmax",
                 "aten::_masked_softmax")
#: PyTorch's attention written in Python: the quantizable MultiheadAttention (all of
#: ``torch.ao.nn``) and flex attention.
ATTENTION_PACKAGES = ("torch.ao.nn", "torch.nn.attention")


def _forbidden_attention() -> list:
    """What the attention exercise refuses: the course's answer and PyTorch's."""
    return [tr.attention, tr.MultiHeadAttention.forward, nn.MultiheadAttention.forward,
            (F, "scaled_dot_product_attention"), (F, "multi_head_attention_forward"),
            (torch._C._nn, "scaled_dot_product_attention"), *ATTENTION_OPS,
            *ATTENTION_PACKAGES]


def _attention_reference(x, in_proj_weight, in_proj_bias, out_proj_weight, out_proj_bias,
                         n_heads):
    E = x.shape[-1]
    mha = nn.MultiheadAttention(E, n_heads, batch_first=True)
    with torch.no_grad():
        mha.in_proj_weight.copy_(in_proj_weight)
        mha.in_proj_bias.copy_(in_proj_bias)
        mha.out_proj.weight.copy_(out_proj_weight)
        mha.out_proj.bias.copy_(out_proj_bias)
        T = x.shape[1]
        future = torch.ones(T, T, dtype=torch.bool).triu(1)  # True: may not attend
        return mha(x, x, x, attn_mask=future, need_weights=False)[0]


def _attention_variant(scale="d_head", mask="causal", split="transpose", softmax_dim=-1,
                       out_proj=True):
    """Typical wrong causal self-attentions, used to recognise the learner's mistake."""

    def attend(x, in_proj_weight, in_proj_bias, out_proj_weight, out_proj_bias, n_heads):
        B, T, E = x.shape
        d = E // n_heads
        q, k, v = (x @ in_proj_weight.T + in_proj_bias).chunk(3, dim=-1)
        if split == "transpose":
            q, k, v = (t.view(B, T, n_heads, d).transpose(1, 2) for t in (q, k, v))
        else:  # reshaped straight to (B, H, T, d): mixes positions and features
            q, k, v = (t.reshape(B, n_heads, T, d) for t in (q, k, v))
        scores = q @ k.transpose(-2, -1)
        scores = scores / {"d_head": math.sqrt(d), "d_model": math.sqrt(E), "none": 1.0}[scale]
        i, j = torch.arange(T)[:, None], torch.arange(T)[None, :]
        if mask == "causal":
            scores = scores.masked_fill(j > i, float("-inf"))
        elif mask == "reversed":
            scores = scores.masked_fill(j < i, float("-inf"))
        w = scores.softmax(dim=softmax_dim)
        out = w @ v
        out = out.transpose(1, 2).reshape(B, T, E) if split == "transpose" else out.reshape(B, T, E)
        return out @ out_proj_weight.T + out_proj_bias if out_proj else out

    return attend


def _attention_cases(g: Optional[torch.Generator] = None, fresh: bool = False):
    drawn = g is not None
    g = torch.Generator().manual_seed(3) if g is None else g

    def case(B, T, E, H, label, x_scale=1.0):
        r = lambda *s: torch.randn(*s, generator=g)  # noqa: E731
        return Case((r(B, T, E) * x_scale, r(3 * E, E) / math.sqrt(E), r(3 * E) * 0.1,
                     r(E, E) / math.sqrt(E), r(E) * 0.1, H), label=label)

    if drawn and fresh:
        H = int(torch.randint(1, 4, (1,), generator=g))
        T = int(torch.randint(2, 40, (1,), generator=g))
        return [case(2, T, 4 * H, H, f"drawn at check time: 2 sequences of {T} tokens, "
                     f"width {4 * H}, {H} heads")]
    return [
        case(1, 4, 4, 1, "one sequence of 4 tokens, width 4, one head"),
        case(2, 5, 8, 2, "batch of 2, 5 tokens, width 8, 2 heads"),
        case(1, 1, 6, 3, "a single token (it can only attend to itself)"),
        case(3, 7, 12, 4, "3 sequences of 7 tokens, width 12, 4 heads"),
        case(2, 6, 8, 2, "large inputs (softmax close to one-hot)", x_scale=4.0),
        case(1, 33, 8, 2, "33 tokens (longer than any sequence above)"),
        case(1, 100, 8, 4, "100 tokens, 4 heads"),
    ]


def check_causal_attention(fn: Callable, strict: Optional[bool] = None):
    """Compare ``fn(x, in_proj_weight, in_proj_bias, out_proj_weight, out_proj_bias, n_heads)``
    with ``nn.MultiheadAttention`` (causal mask, same weights); the course's attention and
    PyTorch's fused ones are refused."""
    mistakes = [
        (_attention_variant(scale="none"),
         "the scores are not scaled: divide q k^T by sqrt(d_head) before the softmax."),
        (_attention_variant(scale="d_model"),
         "the scores are divided by sqrt(d_model); each head's dot products have d_head = "
         "d_model / n_heads terms, so divide by sqrt(d_head)."),
        (_attention_variant(mask="none"),
         "there is no causal mask: position t must not see positions after t (set those "
         "scores to -inf before the softmax)."),
        (_attention_variant(mask="reversed"),
         "the mask is the wrong way round: each position sees itself and the *future*; it "
         "must see itself and the past (mask key j > query i)."),
        (_attention_variant(split="reshape"),
         "the heads are split with reshape(B, n_heads, T, d_head), which mixes positions and "
         "features; view (B, T, n_heads, d_head) first, then transpose(1, 2)."),
        (_attention_variant(softmax_dim=-2),
         "the softmax runs over the queries (dim -2); each query's weights over the keys "
         "must sum to 1: softmax over the last axis."),
        (_attention_variant(out_proj=False),
         "the output projection is missing: after concatenating the heads, multiply by "
         "out_proj_weight^T and add out_proj_bias."),
    ]
    return check_function(
        "transformer-causal-attention", fn, _attention_reference, _attention_cases(),
        mistakes=mistakes, forbid=_forbidden_attention(), atol=1e-5,
        fresh=lambda g: _attention_cases(g, fresh=True),
        hint="q, k, v = (x @ in_proj_weight.T + in_proj_bias).chunk(3, -1); split each into "
        "heads (B, H, T, d_head); scores = q k^T / sqrt(d_head) with -inf where key > query; "
        "softmax over the keys; weights @ v; concatenate the heads back to (B, T, E); apply "
        "the output projection.",
        strict=strict)


def _has_attention(model) -> Optional[list]:
    kinds = (tr.MultiHeadAttention, nn.MultiheadAttention)
    if not any(isinstance(m, kinds) for m in model.modules()):
        return ["the exercise asks for a Transformer, and the model holds no attention layer.",
                "hint: build it from the chapter's pieces, e.g. TokenTransformer(vocab, vocab, "
                "TransformerConfig(...))."]
    return None


def _sorter_hint(model, score):
    hints = []
    blocks = [m for m in model.modules() if isinstance(m, tr.Block)]
    if isinstance(model, tr.TokenTransformer) and model.pos is None:
        hints.append("hint: the model has no positional encoding, so it is permutation-"
                     "equivariant: every output position computes the same function of its "
                     "own token and the set of tokens. Sorting needs to know which place it "
                     "is writing: add positions (learned or sinusoidal).")
    if any(b.causal for b in blocks):
        hints.append("hint: the blocks are causal: position t sees only tokens 0..t, but the "
                     "t-th smallest token can be anywhere. Use causal=False.")
    if not hints:
        hints.append("hint: every output position must see every token and know its own "
                     "position; a 2-layer model of width 64 with learned positions reaches "
                     "the bar with the check's recipe.")
    return hints


#: A sorter whose attention is cut down to each position attending to itself alone may
#: keep no more than this accuracy (it can still guess from its own token and position).
SELF_ONLY_LIMIT = 0.6


#: Sorting done for the model: refused while the sorter is trained and scored.
SORTING = [(owner, name) for owner in (torch, torch.Tensor)
           for name in ("sort", "argsort", "msort", "topk", "kthvalue", "bincount", "unique",
                        "unique_consecutive", "histc", "searchsorted", "cummax", "cummin")
           if hasattr(owner, name)] + [sorted, (list, "sort")]


def _attention_modules(model) -> list:
    return [m for m in model.modules()
            if isinstance(m, (tr.MultiHeadAttention, nn.MultiheadAttention))]


def _zero_attention(module, args, output):
    if isinstance(output, tuple):
        return (torch.zeros_like(output[0]), *output[1:])
    return torch.zeros_like(output)


def _other_sequences_attention(module, args, output):
    """Each sequence's attention output replaced by the next sequence's in the batch: the
    layer still 'fires', but carries another sequence's content."""
    if isinstance(output, tuple):
        return (output[0].roll(1, dims=0), *output[1:])
    return output.roll(1, dims=0)


def _self_only_attention(module, args, kwargs, output):
    """Each position's attention output as if it attended to itself alone (the layer run
    on every position separately): what an attention layer that only passes each token's
    own content through would give anyway."""
    if isinstance(module, nn.MultiheadAttention):
        names = ("query", "key", "value")
        qkv = list(args[:3]) + [kwargs.get(n) for n in names[len(args[:3]):]]
        time_dim = 1 if module.batch_first else 0
        rest = {k: v for k, v in kwargs.items() if k not in names and k != "key_padding_mask"
                and k != "attn_mask" and k != "is_causal"}
        parts = [module.forward(*[t.narrow(time_dim, i, 1) for t in qkv], **rest)[0]
                 for i in range(qkv[0].shape[time_dim])]
        first = torch.cat(parts, dim=time_dim)
        return (first, *output[1:]) if isinstance(output, tuple) else first
    x = args[0] if args else kwargs["x"]
    rest = {k: v for k, v in kwargs.items() if k not in ("x", "key_padding_mask", "causal")}
    parts = [module.forward(x[:, i:i + 1], **rest) for i in range(x.shape[1])]
    if isinstance(output, tuple):
        return (torch.cat([p[0] for p in parts], dim=1), *output[1:])
    return torch.cat(parts, dim=1)


def _uses_attention(X, Y, accuracy_fn):
    """A requirement: with every attention layer's output set to zero, and with it taken
    from other sequences, the trained model must lose most of its accuracy (else it sorts
    without attention, or uses attention only as an on/off gate)."""

    def with_hook(model, hook, with_kwargs=False):
        handles = [m.register_forward_hook(hook, with_kwargs=with_kwargs)
                   for m in _attention_modules(model)]
        try:
            return accuracy_fn(model, X, Y)
        finally:
            for h in handles:
                h.remove()

    def requirement(model):
        without = with_hook(model, _zero_attention)
        if without >= 0.5:
            return [f"the attention layers are not what sorts: with their outputs set to zero "
                    f"the trained model still scores {without:.1%}.",
                    "hint: build the sorter from the chapter's attention blocks "
                    "(TokenTransformer) and let them do the work."]
        swapped = with_hook(model, _other_sequences_attention)
        if swapped >= 0.6:
            return [f"the attention layers do not carry what the model sorts: with each "
                    f"sequence's attention output taken from another sequence, the trained "
                    f"model still scores {swapped:.1%} on its own tokens (attention used as "
                    "an on/off switch, with the sorting done elsewhere?).",
                    "hint: let attention move the tokens' content to the output positions, "
                    "as the chapter's TokenTransformer does."]
        alone = with_hook(model, _self_only_attention, with_kwargs=True)
        if alone >= SELF_ONLY_LIMIT:
            return [f"the attention layers move nothing between positions: with every "
                    f"position attending to itself alone, the trained model still scores "
                    f"{alone:.1%}. Sorting needs each output position to gather the tokens "
                    "from the others; here attention only passes each token's own content "
                    "on, and the sorting is done elsewhere.",
                    "hint: let attention move the tokens' content to the output positions, "
                    "as the chapter's TokenTransformer does."]
        return None

    return requirement


def check_sorter(make_model: Callable, strict: Optional[bool] = None, seed: int = 0):
    """Train ``make_model(vocab_size, length)`` on the sort task (3,000 sequences of 8
    tokens from 10, 6 epochs of Adam at 3e-3 with a cosine schedule) and score its token
    accuracy on 1,000 new sequences. Sorting functions are refused while the model is
    trained and scored, and the trained model must need its attention layers."""
    from ..data import sort_task
    from ..training import accuracy, fit

    vocab, length = 10, 8
    train_set = sort_task(3000, length, vocab, seed=seed)  # made before sorting is refused
    test_set = sort_task(1000, length, vocab, seed=seed + 1)

    def train(model):
        fit(model, train_set, epochs=6, lr=3e-3, batch_size=64, cosine=True, seed=seed,
            device=torch.device("cpu"), progress=False)
        return accuracy(model, *test_set)

    return check_trained_model(
        "transformer-sorter", make_model, "make_sorter", (vocab, length),
        probe=sort_task(3, length, vocab, seed=seed + 2)[0],
        probe_text=f"token ids of shape (3, {length}) from a vocabulary of {vocab}",
        out_shape=(3, length, vocab),
        shape_hint="return logits of shape (batch, length, vocab_size): one prediction per "
        "output position.",
        requirements=[_has_attention], train=train, bar=SORT_BAR,
        score_text=lambda a: f"{a:.1%} token accuracy on new sequences",
        below_bar=_sorter_hint, after_training=[_uses_attention(*test_set, accuracy)],
        forbid=SORTING, strict=strict, seed=seed)


@torch.no_grad()
def _relation_accuracy(model, X, Y, relation, head_mask=None, skip_first=True):
    model.eval()
    V = model.head.out_features // 2
    pred = model(X, head_mask=head_mask).view(*Y.shape, V).argmax(-1)[..., relation]
    target = Y[..., relation]
    start = 1 if skip_first else 0
    return (pred[:, start:] == target[:, start:]).float().mean().item()


def _mass(model, X, key):
    """Mean attention weight of each head of layer 0 from query t (t = 1 .. T-1) on key
    t - 1 (``key="previous"``) or on key 0 (``key="first"``)."""
    w = model.attention_maps(X)[0]  # (B, H, T, T)
    t = torch.arange(1, X.shape[1])
    on = w[:, :, t, t - 1] if key == "previous" else w[:, :, t, 0]
    return on.mean(dim=(0, 2))  # (H,)


def head_drop(model, X, Y, key="previous", relation=0, skip_first=True,
              invert=False) -> float:
    """How much ``relation``'s accuracy falls when the head of layer 0 that attends most
    to the previous token (or to the first: ``key="first"``) is removed."""
    head = int(_mass(model, X, key).argmax())
    n_layers, n_heads = len(model.blocks), model.blocks[0].self_attn.n_heads
    mask = torch.ones(n_layers, n_heads)
    mask[0, head] = 0.0
    if invert:
        mask[0] = 1.0 - mask[0]
    before = _relation_accuracy(model, X, Y, relation, skip_first=skip_first)
    return before - _relation_accuracy(model, X, Y, relation, mask, skip_first)


def swap_heads(model):
    """A copy of a two-relation model whose layer-0 heads are rotated (head h becomes head
    h + 1): it computes exactly the same function, but its heads have other numbers."""
    import copy

    twin = copy.deepcopy(model)
    att = twin.blocks[0].self_attn
    H, d, E = att.n_heads, att.d_head, att.d_model
    order = torch.arange(H).roll(1)  # the new head h is the old head h - 1
    idx = torch.cat([order[h] * d + torch.arange(d) for h in range(H)])
    rows = torch.cat([idx, E + idx, 2 * E + idx])
    with torch.no_grad():
        att.in_proj_weight.copy_(att.in_proj_weight[rows])
        if att.in_proj_bias is not None:
            att.in_proj_bias.copy_(att.in_proj_bias[rows])
        att.out_proj.weight.copy_(att.out_proj.weight[:, idx])
    return twin


def noisy_labels(Y, fraction=0.2, seed=0):
    """``Y`` with a ``fraction`` of the previous-token labels (positions 1 ..) changed, so
    that even the intact model is not always right."""
    g = torch.Generator().manual_seed(seed)
    Y = Y.clone()
    flip = torch.rand(Y.shape[:2], generator=g) < fraction
    flip[:, 0] = False
    V = int(Y[..., 1].max()) + 1
    Y[..., 0] = torch.where(flip, (Y[..., 0] + 1) % V, Y[..., 0])
    return Y


def _head_role_once(measure, model, X, Y, input_text, strict, fresh=None):
    expected = head_drop(model, X, Y)
    known = {
        "position 0 is counted: it has no previous token (its label is -100, never "
        "predicted), so score positions 1 .. T-1 only.": head_drop(model, X, Y, skip_first=False),
        "you removed the head that attends to the first token, not the one that attends to "
        "the previous token.": head_drop(model, X, Y, key="first"),
        "this is the fall in the *first-token* accuracy; the exercise asks about the "
        "previous-token relation, Y[..., 0].": head_drop(model, X, Y, relation=1),
        "you kept only the previous-token head and removed every other one; remove that head "
        "alone (head_mask 0 for it, 1 for the rest).": head_drop(model, X, Y, invert=True),
        "the accuracy before removing the head is not 1 on these labels: measure it, do not "
        "assume it.": 1.0 - (_relation_accuracy(model, X, Y, 0) - head_drop(model, X, Y)),
    }
    return check_measurement(
        "transformer-head-role", measure, "measure_head_role", (model, X, Y), expected,
        known=known, model=model, rel_tol=1e-4, abs_tol=1e-6,
        forbid=[head_drop, _mass, _relation_accuracy], input_text=input_text,
        hint="attention_maps(X)[0] is (batch, head, query, key); the previous-token head has "
        "the largest mean weight w[:, h, t, t - 1] over t = 1 .. T-1. Remove it with "
        "head_mask = torch.ones(n_layers, n_heads) holding 0 at [0, h]; accuracy of "
        "Y[..., 0] over positions 1 .. T-1, before minus after.",
        success=lambda v: f"removing the previous-token head costs {v:.1%} of its accuracy.",
        strict=strict, fresh=fresh)


def check_head_role(measure: Callable, model, X, Y, strict: Optional[bool] = None):
    """Run ``measure(model, X, Y)``: the fall in previous-token accuracy when the head of
    layer 0 that attends most to the previous token is removed. It runs twice: on the
    chapter's model and labels, then on the same model with its heads renumbered and 20%
    of the previous-token labels changed (so neither the head's number nor an accuracy
    of 1 before the removal can be assumed)."""
    first = _head_role_once(measure, model, X, Y,
                            f"the chapter's two-relation model and {len(X)} validation "
                            "sequences", strict=None)
    if not first.passed:
        from .core import finish

        return finish(first, strict)
    twin = swap_heads(model)

    def fresh(g):
        keep = torch.randperm(len(X), generator=g)[: max(100, len(X) // 2)]
        fraction = 0.1 + 0.3 * float(torch.rand(1, generator=g))
        Ys = noisy_labels(Y[keep], fraction, seed=int(torch.randint(1 << 30, (1,), generator=g)))
        return ((twin, X[keep].clone(), Ys), head_drop(twin, X[keep], Ys),
                f"{len(keep)} of the sequences, chosen at check time, with {fraction:.0%} of "
                "their previous-token labels changed")

    return _head_role_once(measure, twin, X, noisy_labels(Y),
                           "the same model with its heads renumbered, and 20% of the "
                           "previous-token labels changed", strict, fresh=fresh)
