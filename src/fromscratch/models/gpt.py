"""A GPT-style decoder from scratch: the language model of chapter 4 (the LLM).

References: Radford et al. 2018/2019, "Improving language understanding by generative
pre-training" and "Language models are unsupervised multitask learners" (GPT, GPT-2);
Karpathy's nanoGPT (sizes, initialisation); Holtzman et al. 2020, "The curious case of
neural text degeneration" (top-p / nucleus sampling); Fan et al. 2018 (top-k sampling);
Pope et al. 2022, "Efficiently scaling Transformer inference" (the KV cache).

The model is chapter 3's causal pre-norm :class:`~fromscratch.models.transformer.Block`
stacked ``n_layer`` times between a token + position embedding and a linear read-out
over the vocabulary. Trained on next-token prediction it is a language model; sampling
from it one token at a time generates text.

KV cache: ``model(idx, caches=model.new_caches())`` runs the prompt and stores every
layer's keys and values; ``model(next_ids, caches=caches)`` then takes only the new
tokens, at positions ``len(cache) ...``, and gives the logits that running the whole
sequence again would give (to float rounding).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields, replace
from typing import List, Optional

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..config import pick
from .transformer import Block, KVCache, LayerNorm, sinusoidal_positions

GPT_POSITIONS = ("learned", "sinusoidal")


@dataclass
class GPTConfig:
    """Sizes of a GPT. ``bias=False`` drops the biases of every linear layer and LayerNorm
    (as nanoGPT's option); ``tie_weights`` makes the read-out use the token embedding
    matrix (GPT-2 does); ``positions`` is ``"learned"`` (GPT-2) or ``"sinusoidal"``."""

    vocab_size: int = 65
    block_size: int = 64  # the longest context, in tokens
    n_layer: int = 2
    n_head: int = 4
    d_model: int = 64
    dropout: float = 0.0
    bias: bool = True
    tie_weights: bool = True
    positions: str = "learned"
    mlp: bool = True  # False: attention-only blocks (no feed-forward network)
    activation: str = "gelu"  # of the feed-forward network: "gelu" (GPT-2) or "relu"
    fused: bool = True  # PyTorch's kernels for attention and LayerNorm (same results)
    init: str = "gpt2"  # "gpt2": normal(0, 0.02) weights; "pytorch": PyTorch's defaults

    def __post_init__(self):
        for name in ("vocab_size", "block_size", "n_layer", "n_head", "d_model"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"GPTConfig.{name} must be a positive int, got {value!r}")
        if self.d_model % self.n_head:
            raise ValueError(f"d_model={self.d_model} is not divisible by n_head={self.n_head}")
        if self.positions not in GPT_POSITIONS:
            raise ValueError(f"positions must be one of {GPT_POSITIONS}, got {self.positions!r}")
        if self.positions == "sinusoidal" and self.d_model % 2:
            raise ValueError(f"sinusoidal positions need an even d_model, got {self.d_model}")
        if self.init not in ("gpt2", "pytorch"):
            raise ValueError(f"init must be 'gpt2' or 'pytorch', got {self.init!r}")
        if self.activation not in ("gelu", "relu"):
            raise ValueError(f"activation must be 'gelu' or 'relu', got {self.activation!r}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")

    @classmethod
    def default(cls, vocab_size: int = 65, **changes) -> GPTConfig:
        """The chapter's model on a CPU, the best of ``tools/llm_search.py`` at 40 s on 2
        cores (2 layers, 4 heads, 96 wide, ReLU, context 64, no biases); with
        FROMSCRATCH_SCALE=large nanoGPT's Shakespeare-char GPU model (6 layers, 6 heads,
        384 wide, context 256, dropout 0.2)."""
        small = cls(vocab_size=vocab_size, block_size=64, n_layer=2, n_head=4, d_model=96,
                    bias=False, activation="relu")
        large = cls(vocab_size=vocab_size, block_size=256, n_layer=6, n_head=6, d_model=384,
                    dropout=0.2)
        return _with(pick(small, large), changes)

    @classmethod
    def nanogpt_cpu(cls, vocab_size: int = 65, **changes) -> GPTConfig:
        """nanoGPT's README recipe for a CPU (Shakespeare-char): 4 layers, 4 heads, 128 wide,
        context 64, no dropout, no biases (nanoGPT's ``bias=False`` default)."""
        return _with(cls(vocab_size=vocab_size, block_size=64, n_layer=4, n_head=4,
                         d_model=128, dropout=0.0, bias=False), changes)

    def n_params(self) -> int:
        """The number of parameters of ``GPT(self)``, from the sizes alone (a tied read-out
        counted once): ``V d + [T d] + L (12 d^2 + 13 d) + 2 d + [V d]`` with biases, the
        ``13 d`` becoming ``2 d`` (LayerNorm weights) and the final ``2 d`` ``d`` without."""
        V, T, L, d = self.vocab_size, self.block_size, self.n_layer, self.d_model
        b = 1 if self.bias else 0
        attention = 3 * d * d + 3 * d * b + d * d + d * b  # in_proj, out_proj
        feed_forward = d * 4 * d + 4 * d * b + 4 * d * d + d * b  # linear1, linear2
        norms = 2 * (d + d * b)
        if not self.mlp:
            feed_forward, norms = 0, d + d * b
        total = V * d + L * (attention + feed_forward + norms) + (d + d * b)
        total += T * d if self.positions == "learned" else 0
        total += 0 if self.tie_weights else V * d
        return total


def _with(config: GPTConfig, changes: dict) -> GPTConfig:
    names = {f.name for f in fields(GPTConfig)}
    for name in changes:
        if name not in names:
            raise ValueError(f"GPTConfig has no field {name!r}")
    return replace(config, **changes)  # replace() runs the checks again


class GPT(nn.Module):
    """Token + position embeddings, ``n_layer`` causal pre-norm blocks with a GELU
    feed-forward network, a final LayerNorm and a linear read-out to ``vocab_size`` logits.

    ``forward(idx)`` maps ids ``(B, T)`` to logits ``(B, T, vocab_size)``: position ``t``
    predicts token ``t + 1`` from tokens ``0 .. t`` only. ``forward(idx, targets)`` also
    returns the mean cross-entropy (targets of -1 are ignored).
    """

    def __init__(self, config: Optional[GPTConfig] = None):
        super().__init__()
        c = self.config = config or GPTConfig.default()
        self.tok_emb = nn.Embedding(c.vocab_size, c.d_model)
        if c.positions == "learned":
            self.pos_emb = nn.Parameter(torch.zeros(c.block_size, c.d_model))
        else:
            self.register_buffer("pos_emb", sinusoidal_positions(c.block_size, c.d_model),
                                 persistent=False)
        self.drop = nn.Dropout(c.dropout)
        self.blocks = nn.ModuleList(
            Block(c.d_model, c.n_head, 4 * c.d_model if c.mlp else 0, c.dropout,
                  norm_first=True, activation=c.activation, causal=True, bias=c.bias, fused=c.fused)
            for _ in range(c.n_layer))
        self.norm = LayerNorm(c.d_model, bias=c.bias, fused=c.fused)
        self.head = nn.Linear(c.d_model, c.vocab_size, bias=False)
        if c.tie_weights:
            self.head.weight = self.tok_emb.weight  # one tensor, two uses
        self._init_weights()

    def _init_weights(self):
        """GPT-2's initialisation: every weight matrix and embedding normal(0, 0.02), biases
        0, LayerNorms 1 and 0; the two projections that write into the residual stream
        (attention output, second feed-forward layer) get std 0.02 / sqrt(2 n_layer), so
        the sum of 2 n_layer residual updates does not grow with depth.

        ``init="pytorch"`` keeps PyTorch's defaults instead (uniform weights of scale
        1/sqrt(fan-in), embeddings and learned positions normal(0, 1)): larger at the
        start, which small models trained on synthetic tasks need to leave the flat start
        quickly (the in-context copying experiment)."""
        if self.config.init == "pytorch":
            if isinstance(self.pos_emb, nn.Parameter):
                nn.init.normal_(self.pos_emb, 0.0, 1.0)
            return
        std = 0.02
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.normal_(module.weight, 0.0, std)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
            elif isinstance(module, nn.Embedding):
                nn.init.normal_(module.weight, 0.0, std)
        for block in self.blocks:
            nn.init.normal_(block.self_attn.in_proj_weight, 0.0, std)
            if block.self_attn.in_proj_bias is not None:
                nn.init.zeros_(block.self_attn.in_proj_bias)
            writers = [block.self_attn.out_proj.weight]
            writers += [block.linear2.weight] if block.d_ff else []
            for w in writers:
                nn.init.normal_(w, 0.0, std / math.sqrt(2 * self.config.n_layer))
        if isinstance(self.pos_emb, nn.Parameter):
            nn.init.normal_(self.pos_emb, 0.0, std)

    def new_caches(self) -> List[KVCache]:
        """One empty :class:`KVCache` per block, to pass as ``caches``."""
        return [KVCache() for _ in self.blocks]

    @torch.no_grad()
    def attention_maps(self, idx: torch.Tensor) -> List[torch.Tensor]:
        """Every block's attention weights ``(B, n_head, T, T)`` for ``idx``, in eval mode."""
        was_training = self.training
        self.eval()
        keep = []
        self(idx, keep=keep)
        self.train(was_training)
        return keep

    def forward(self, idx: torch.Tensor, targets: Optional[torch.Tensor] = None,
                caches: Optional[List[KVCache]] = None, keep: Optional[list] = None):
        """``idx`` ``(B, T)`` -> logits ``(B, T, V)``, or ``(logits, loss)`` with ``targets``.

        With ``caches`` (from :meth:`new_caches`) the ids are the continuation of what the
        caches hold: they sit at positions ``start .. start + T - 1`` with
        ``start = len(caches[0])``, attend to the cached keys and values as well as to each
        other, and are appended to the caches."""
        c = self.config
        if idx.dim() != 2 or idx.dtype not in (torch.long, torch.int, torch.int16, torch.uint8):
            raise ValueError(f"expected integer token ids of shape (batch, time), got "
                             f"{idx.dtype} {tuple(idx.shape)}")
        B, T = idx.shape
        if T == 0:
            raise ValueError("expected at least one token, got a sequence of length 0")
        if idx.min() < 0 or idx.max() >= c.vocab_size:
            raise ValueError(f"token ids must lie in [0, {c.vocab_size}), got ids from "
                             f"{idx.min().item()} to {idx.max().item()}")
        start = 0
        if caches is not None:
            if len(caches) != c.n_layer:
                raise ValueError(f"expected {c.n_layer} caches (one per block), got "
                                 f"{len(caches)}")
            start = len(caches[0])
        if start + T > c.block_size:
            where = f" after {start} cached tokens" if start else ""
            raise ValueError(f"{T} tokens{where} exceed block_size={c.block_size}: crop the "
                             f"context to its last {c.block_size} tokens (generate() does)")
        x = self.drop(self.tok_emb(idx) + self.pos_emb[start:start + T])
        for i, block in enumerate(self.blocks):
            x = block(x, cache=None if caches is None else caches[i], keep=keep)
        logits = self.head(self.norm(x))
        if targets is None:
            return logits
        if targets.shape != idx.shape:
            raise ValueError(f"targets must have the shape of idx {tuple(idx.shape)}, got "
                             f"{tuple(targets.shape)}")
        loss = F.cross_entropy(logits.reshape(B * T, -1), targets.reshape(B * T),
                               ignore_index=-1)
        return logits, loss


def top_k_filter(logits: torch.Tensor, k: int) -> torch.Tensor:
    """Keep the ``k`` largest logits of each row (last axis), set the rest to -inf.

    Logits tied with the ``k``-th largest are all kept, so a row can keep more than ``k``
    (the choice among ties is not arbitrary). ``k`` at least the vocabulary keeps all;
    ``k = 1`` keeps the argmax (and anything tied with it)."""
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ValueError(f"top_k must be an int >= 1, got {k!r}")
    if k >= logits.shape[-1]:
        return logits
    kth = torch.topk(logits, k, dim=-1).values[..., -1:]
    return logits.masked_fill(logits < kth, float("-inf"))


def top_p_filter(logits: torch.Tensor, p: float) -> torch.Tensor:
    """Nucleus filtering: keep the smallest set of most likely tokens whose probabilities
    (``softmax(logits)``) add up to at least ``p``; set the rest to -inf.

    The most likely token is always kept; tokens tied with the least likely kept one are
    kept too; ``p = 1`` keeps everything."""
    if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0.0 < p <= 1.0:
        raise ValueError(f"top_p must be a number in (0, 1], got {p!r}")
    if p >= 1.0:
        return logits
    sorted_logits, _ = torch.sort(logits, dim=-1, descending=True)
    probs = sorted_logits.softmax(dim=-1)
    mass_before = probs.cumsum(dim=-1) - probs  # mass of the more likely tokens
    keep = mass_before < p  # a prefix: the first token has mass_before 0
    n_keep = keep.sum(dim=-1, keepdim=True)
    cutoff = sorted_logits.gather(-1, n_keep - 1)  # the least likely kept logit
    return logits.masked_fill(logits < cutoff, float("-inf"))


def sample_next(logits: torch.Tensor, temperature: float = 1.0, top_k: Optional[int] = None,
                top_p: Optional[float] = None, generator: Optional[torch.Generator] = None,
                greedy: bool = False) -> torch.Tensor:
    """One id per row of ``logits`` ``(B, V)`` -> ``(B, 1)``: the argmax when ``greedy`` or
    ``temperature == 0``, else a sample from ``softmax(logits / temperature)`` after the
    top-k and then the top-p filter."""
    if isinstance(temperature, bool) or not isinstance(temperature, (int, float)) \
            or not temperature >= 0:
        raise ValueError(f"temperature must be a number >= 0, got {temperature!r}")
    if greedy or temperature == 0:
        return logits.argmax(dim=-1, keepdim=True)
    logits = logits / temperature
    if top_k is not None:
        logits = top_k_filter(logits, top_k)
    if top_p is not None:
        logits = top_p_filter(logits, top_p)
    probs = logits.float().softmax(dim=-1)
    if generator is not None and generator.device != probs.device:
        return torch.multinomial(probs.to(generator.device), 1,
                                 generator=generator).to(logits.device)
    return torch.multinomial(probs, 1, generator=generator)


@torch.no_grad()
def generate(model: GPT, idx: torch.Tensor, max_new_tokens: int, temperature: float = 1.0,
             top_k: Optional[int] = None, top_p: Optional[float] = None,
             generator: Optional[torch.Generator] = None, use_cache: bool = True,
             greedy: bool = False) -> torch.Tensor:
    """Continue the prompt ``idx`` (``(B, T)`` or 1-D) by ``max_new_tokens`` tokens; returns
    the prompt followed by them (the shape of ``idx`` grown along time), in eval mode.

    ``temperature=0`` or ``greedy=True`` takes the argmax at every step; otherwise see
    :func:`sample_next` for ``temperature``, ``top_k`` and ``top_p``.

    The model sees at most the last ``block_size`` tokens. Without the cache every step
    runs them all again. With the cache (``use_cache=True``) the prompt is run once and
    every step then runs one token; when the cache is full (``block_size`` tokens) it is
    rebuilt from the last ``block_size`` tokens, which is exactly the cropped context the
    uncached path sees, so both paths give the same tokens, but past ``block_size`` every
    step costs a full pass again (absolute positions shift under a sliding window)."""
    if not isinstance(max_new_tokens, int) or max_new_tokens < 0:
        raise ValueError(f"max_new_tokens must be an int >= 0, got {max_new_tokens!r}")
    one_d = idx.dim() == 1
    if one_d:
        idx = idx[None]
    if idx.dim() != 2 or idx.shape[1] == 0:
        raise ValueError(f"idx must be a non-empty prompt of shape (T,) or (batch, T), got "
                         f"{tuple(idx.shape)}")
    sample_next(idx.new_zeros(1, 1, dtype=torch.float), temperature, top_k, top_p,
                greedy=True)  # check the arguments before the first forward pass
    if top_k is not None:
        top_k_filter(torch.zeros(1, 1), top_k)
    if top_p is not None:
        top_p_filter(torch.zeros(1, 1), top_p)
    block = model.config.block_size
    was_training = model.training
    model.eval()
    idx = idx.to(next(model.parameters()).device)
    caches, fresh = None, True  # fresh: the next pass must run the whole (cropped) context
    try:
        for _ in range(max_new_tokens):
            if not use_cache:
                logits = model(idx[:, -block:])
            elif fresh or len(caches[0]) >= block:
                caches, fresh = model.new_caches(), False
                logits = model(idx[:, -block:], caches=caches)
            else:
                logits = model(idx[:, -1:], caches=caches)
            nxt = sample_next(logits[:, -1], temperature, top_k, top_p, generator, greedy)
            idx = torch.cat([idx, nxt], dim=1)
    finally:
        model.train(was_training)
    return idx[0] if one_d else idx


# --- Training a language model for a step or time budget ---------------------------------

@dataclass
class LMRecipe:
    """How a language model is trained: AdamW (weight decay on weight matrices only), a
    linear warm-up, then a cosine decay from ``lr`` to ``min_lr``, gradients clipped.
    The defaults are nanoGPT's character-level recipe (``train_shakespeare_char.py``)."""

    batch_size: int = 12
    lr: float = 1e-3
    min_lr: float = 1e-4
    warmup: int = 100  # steps
    weight_decay: float = 0.1
    beta2: float = 0.99
    grad_clip: float = 1.0
    precision: str = "float32"  # "bfloat16": matrix products in bfloat16 (torch.autocast)

    def __post_init__(self):
        if self.precision not in ("float32", "bfloat16"):
            raise ValueError(f"precision must be 'float32' or 'bfloat16', got "
                             f"{self.precision!r}")
        if self.batch_size < 1 or not self.lr > 0 or self.warmup < 0:
            raise ValueError(f"need batch_size >= 1, lr > 0 and warmup >= 0, got "
                             f"{self.batch_size}, {self.lr}, {self.warmup}")

    @classmethod
    def default(cls) -> LMRecipe:
        """The chapter's recipe (the best of ``tools/llm_search.py``): nanoGPT's with a
        learning rate of 3e-3 and batches of 24; with FROMSCRATCH_SCALE=large nanoGPT's
        GPU recipe (batch 64, learning rate 1e-3)."""
        return pick(cls(lr=3e-3, batch_size=24), cls(lr=1e-3, batch_size=64))

    def lr_at(self, step: int, progress: float) -> float:
        """The learning rate at ``step``, ``progress`` (0 to 1) of the way through the run."""
        if step < self.warmup:
            return self.lr * (step + 1) / self.warmup
        cosine = 0.5 * (1 + math.cos(math.pi * min(max(progress, 0.0), 1.0)))
        return self.min_lr + (self.lr - self.min_lr) * cosine


@dataclass
class LMRun:
    """What :func:`train_lm` measured."""

    steps: int = 0
    seconds: float = 0.0  # training time only (evaluations excluded)
    train_loss: list = None  # per step
    evals: list = None  # (training seconds, step, validation loss in nats per token)


def random_windows(ids: torch.Tensor, block: int, batch: int, generator: torch.Generator):
    """``batch`` random windows of ``block + 1`` tokens, as inputs and next-token targets."""
    if ids.dim() != 1 or len(ids) <= block:
        raise ValueError(f"need a 1-D tensor of more than block={block} ids, got shape "
                         f"{tuple(ids.shape)}")
    start = torch.randint(0, len(ids) - block, (batch,), generator=generator)
    rows = start[:, None] + torch.arange(block + 1)
    window = ids[rows]
    return window[:, :-1], window[:, 1:]


def _block_of(model: nn.Module, block: Optional[int]) -> int:
    if block is not None:
        return block
    config = getattr(model, "config", None)
    if not hasattr(config, "block_size"):
        raise ValueError(f"give block=...: {type(model).__name__} has no config.block_size")
    return config.block_size


def next_token_loss(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy of ``model(x)`` (logits ``(B, T, V)``) against targets ``y``."""
    logits = model(x)
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))


@torch.no_grad()
def lm_loss(model: nn.Module, ids: torch.Tensor, block: Optional[int] = None,
            batch: int = 128) -> float:
    """Mean cross-entropy (nats per token) of predicting every token of ``ids`` after the
    first from the tokens before it, in consecutive non-overlapping windows of ``block``
    (default: the model's ``config.block_size``). ``model`` maps ids ``(B, T)`` to logits
    ``(B, T, V)``: a :class:`GPT`, or the RNN chapter's ``CharModel``."""
    block = _block_of(model, block)
    n = (len(ids) - 1) // block
    if n < 1:
        raise ValueError(f"need more than block={block} ids to measure a loss, got {len(ids)}")
    was_training = model.training
    model.eval()
    dev = next(model.parameters()).device
    x = ids[:n * block].view(n, block)
    y = ids[1:n * block + 1].view(n, block)
    total = 0.0
    for i in range(0, n, batch):
        loss = next_token_loss(model, x[i:i + batch].to(dev), y[i:i + batch].to(dev))
        total += loss.item() * len(x[i:i + batch])
    model.train(was_training)
    return total / n


def make_optimizer(model: nn.Module, recipe: LMRecipe) -> torch.optim.Optimizer:
    """AdamW with weight decay on the weight matrices and embeddings only (as nanoGPT)."""
    params = [p for p in model.parameters() if p.requires_grad]
    decay = [p for p in params if p.dim() >= 2]
    no_decay = [p for p in params if p.dim() < 2]
    groups = [{"params": decay, "weight_decay": recipe.weight_decay},
              {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=recipe.lr, betas=(0.9, recipe.beta2))


def optimizer_step(model: nn.Module, optimizer: torch.optim.Optimizer, loss: torch.Tensor,
                   grad_clip: float = 1.0) -> float:
    """One update: gradients of ``loss``, clipped to norm ``grad_clip`` (0: no clipping),
    then ``optimizer.step()``; returns the loss as a float."""
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    if grad_clip:
        nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
    optimizer.step()
    return loss.item()


def train_lm(model: nn.Module, train_ids: torch.Tensor, recipe: Optional[LMRecipe] = None,
             *, steps: Optional[int] = None, seconds: Optional[float] = None,
             val_ids: Optional[torch.Tensor] = None, eval_at: tuple = (), seed: int = 0,
             block: Optional[int] = None, device: Optional[torch.device] = None,
             progress: Optional[bool] = None, desc: str = "training") -> LMRun:
    """Train ``model`` (ids ``(B, T)`` to logits ``(B, T, V)``; windows of ``block``
    tokens, by default its ``config.block_size``) on random windows of ``train_ids`` for
    ``steps`` steps or for ``seconds`` of training time (exactly one of them).

    A step budget repeats on every machine (up to float rounding); a time budget is how
    recipes are compared on one machine (``tools/llm_search.py``). ``eval_at`` lists
    training times (with ``seconds``) or steps (with ``steps``) at which the validation
    loss on ``val_ids`` is measured; the clock stops while it is.

    A progress bar (steps, or seconds of training time, and the last loss) shows while it
    trains unless ``progress=False`` or ``FROMSCRATCH_PROGRESS=0`` (the notebook builds and
    tests set it, so stored outputs hold no bar).
    """
    import time

    from ..config import progress_enabled

    if (steps is None) == (seconds is None):
        raise ValueError("give exactly one budget: steps=... or seconds=...")
    if (steps is not None and steps < 1) or (seconds is not None and seconds <= 0):
        raise ValueError(f"the budget must be positive, got steps={steps}, seconds={seconds}")
    if eval_at and val_ids is None:
        raise ValueError("eval_at needs val_ids")
    recipe = recipe or LMRecipe()
    device = device or next(model.parameters()).device
    model.to(device).train()
    optimizer = make_optimizer(model, recipe)
    generator = torch.Generator().manual_seed(seed)
    block = _block_of(model, block)
    run = LMRun(train_loss=[], evals=[])
    pending = sorted(eval_at)
    elapsed = 0.0
    bar = None
    if progress_enabled() if progress is None else progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=steps if steps is not None else seconds, desc=desc, leave=False,
                   unit="step" if steps is not None else "s")
    try:
        while True:
            done = run.steps / steps if steps is not None else elapsed / seconds
            while pending and (pending[0] <= (run.steps if steps is not None else elapsed)):
                run.evals.append((elapsed, run.steps, lm_loss(model, val_ids, block)))
                model.train()
                pending.pop(0)
            if done >= 1:
                break
            start = time.perf_counter()
            for group in optimizer.param_groups:
                group["lr"] = recipe.lr_at(run.steps, done)
            x, y = random_windows(train_ids, block, recipe.batch_size, generator)
            with torch.autocast(device.type, dtype=torch.bfloat16,
                                enabled=recipe.precision == "bfloat16"):
                loss = next_token_loss(model, x.to(device), y.to(device))
            run.train_loss.append(optimizer_step(model, optimizer, loss, recipe.grad_clip))
            run.steps += 1
            took = time.perf_counter() - start
            elapsed += took
            if bar is not None:
                bar.update(1 if steps is not None else took)
                bar.set_postfix(loss=f"{run.train_loss[-1]:.3f}", refresh=False)
    finally:
        if bar is not None:
            bar.close()
    run.seconds = elapsed
    return run


def load_search_table() -> dict:
    """The recipe search of ``tools/llm_search.py`` shipped with the course: ``meta`` (the
    machine it ran on) and ``runs``, one dict per recipe with its ``name``, ``config``,
    ``recipe``, ``parameters``, ``steps`` and ``val_loss_at`` (rows of training seconds,
    step, validation loss in nats per character)."""
    import json
    from importlib import resources

    with resources.files("fromscratch.data").joinpath("llm_search.json").open() as f:
        return json.load(f)


# --- In-context copying (induction heads) -------------------------------------------------

def copy_losses(model: nn.Module, X: torch.Tensor, first: torch.Tensor,
                second: torch.Tensor) -> tuple:
    """Mean next-token loss (nats) over the positions marked in ``first`` and in
    ``second`` (masks from :func:`fromscratch.data.repeated_tokens`), in eval mode."""
    was_training = model.training
    model.eval()
    with torch.no_grad():
        logits = model(X[:, :-1])
    model.train(was_training)
    ce = F.cross_entropy(logits.transpose(1, 2), X[:, 1:], reduction="none")
    return ce[first[:, :-1]].mean().item(), ce[second[:, :-1]].mean().item()


def train_copying(model: nn.Module, data: tuple, *, steps: int, lr: float = 3e-3,
                  batch_size: int = 64, warmup: int = 50, seed: int = 0) -> List[float]:
    """Train ``model`` as a next-token predictor on the sequences ``data[0]`` of
    :func:`fromscratch.data.repeated_tokens` (every position counts, copies or not), AdamW
    without weight decay, linear warm-up, cosine decay, gradients clipped at 1; returns
    the loss per step."""
    X = data[0]
    recipe = LMRecipe(batch_size=batch_size, lr=lr, min_lr=lr / 10, warmup=warmup,
                      weight_decay=0.0)
    optimizer = make_optimizer(model, recipe)
    generator = torch.Generator().manual_seed(seed)
    model.train()
    losses = []
    for step in range(steps):
        for group in optimizer.param_groups:
            group["lr"] = recipe.lr_at(step, step / steps)
        x = X[torch.randint(0, len(X), (batch_size,), generator=generator)]
        loss = next_token_loss(model, x[:, :-1], x[:, 1:])
        losses.append(optimizer_step(model, optimizer, loss, recipe.grad_clip))
    return losses


def fit_power_law(x, y) -> tuple:
    """Least-squares line through ``(log x, log y)``: returns ``(slope, intercept)``, so
    ``y ~ exp(intercept) * x ** slope``. Needs at least two points, all positive."""
    x = torch.as_tensor(x, dtype=torch.float64)
    y = torch.as_tensor(y, dtype=torch.float64)
    if x.shape != y.shape or x.dim() != 1 or len(x) < 2:
        raise ValueError(f"need two 1-D sequences of the same length >= 2, got shapes "
                         f"{tuple(x.shape)} and {tuple(y.shape)}")
    if (x <= 0).any() or (y <= 0).any():
        raise ValueError("a power law needs positive x and y")
    lx, ly = x.log(), y.log()
    slope = ((lx - lx.mean()) * (ly - ly.mean())).sum() / ((lx - lx.mean()) ** 2).sum()
    return slope.item(), (ly.mean() - slope * lx.mean()).item()
